package reportdefs

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/txtar"
)

// catalogueSeeds returns the YAML files of the bad-input catalogue (testdata/bad at the
// module root) whose case names start with prefix, so fuzzing starts from every known
// mistake.
func catalogueSeeds(f *testing.F, prefix string) [][]byte {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "testdata", "bad", prefix+"*.txtar"))
	if err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, p := range paths {
		ar, err := txtar.ParseFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range ar.Files {
			if strings.HasSuffix(file.Name, ".yaml") {
				out = append(out, file.Data)
			}
		}
	}
	if len(out) == 0 {
		f.Fatalf("no %s* cases in testdata/bad", prefix)
	}
	return out
}

// FuzzCatalogue is FuzzParse started from the catalogue's bad definitions: any input
// gives a definition or an ErrInvalid error naming the file, never a panic.
func FuzzCatalogue(f *testing.F) {
	for _, s := range catalogueSeeds(f, "def-") {
		f.Add(s)
	}
	for _, s := range catalogueSeeds(f, "param-") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if _, err := d.Resolve(nil, time.Date(2025, 3, 31, 0, 0, 0, 0, time.UTC), time.UTC); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("Resolve error not ErrInvalid: %v", err)
		}
	})
}

var fuzzZones = []string{"UTC", "America/Indiana/Indianapolis", "Pacific/Kiritimati", "Asia/Kathmandu", "Australia/Lord_Howe"}

// FuzzResolve parses a parameter value of every type, relative dates included, at any
// instant in several time zones: an ErrInvalid error naming the parameter, or a value
// that binds and resolves the same way twice.
func FuzzResolve(f *testing.F) {
	types := knownTypes()
	defs := make([]*Definition, len(types))
	for i, typ := range types {
		extra := ""
		if strings.Contains(typ, "enum") {
			extra = ", values: [open, closed, 'a,b']"
		}
		d, err := Parse("fuzz.yaml", []byte("name: f\nsource: s\nparams:\n  - {name: p, type: "+typ+extra+", required: false}\nsql: SELECT :p\n"))
		if err != nil {
			f.Fatal(err)
		}
		defs[i] = d
	}
	now := time.Date(2026, 3, 31, 23, 30, 0, 0, time.UTC).Unix()
	for _, v := range []string{"", " ", "0", "-1", "+7", "9223372036854775808", "12.50", "-0.000", ".5", "5.", "1e5",
		"true", "Yes", "off", "maybe", "2026-02-28", "2026-02-30", "0000-01-01", "today", "yesterday", "this-month",
		"last-month", "-7d", "+1d", "-1m", "-99999m", "+99999d", "-100000d", "202611", "2026-11", "202613", "0001-01",
		"open", "closed", "1,2,3", "1,,2", ",", "a,b", "日本", "\x00", "' OR 1=1 --"} {
		for typ := range types {
			f.Add(uint8(typ), v, now, uint8(typ))
		}
	}
	locs := make([]*time.Location, len(fuzzZones))
	for i, z := range fuzzZones {
		loc, err := time.LoadLocation(z)
		if err != nil {
			f.Fatal(err)
		}
		locs[i] = loc
	}
	f.Fuzz(func(t *testing.T, typ uint8, value string, unix int64, zone uint8) {
		d := defs[int(typ)%len(defs)]
		loc := locs[int(zone)%len(locs)]
		// Any instant from year 1 to 9999.
		const lo, hi = -62135596800, 253402300799
		unix = lo + (unix%(hi-lo)+(hi-lo))%(hi-lo)
		at := time.Unix(unix, 0)
		given := map[string]string{"p": value}
		r1, err := d.Resolve(given, at, loc)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s %q: error not ErrInvalid: %v", d.Params[0].Type, value, err)
			}
			if !strings.Contains(err.Error(), `"p"`) {
				t.Fatalf("%s %q: error does not name the parameter: %v", d.Params[0].Type, value, err)
			}
			return
		}
		if !json.Valid(r1) {
			t.Fatalf("Resolve gave invalid JSON %s", r1)
		}
		r2, err := d.Resolve(given, at, loc)
		if err != nil || string(r1) != string(r2) {
			t.Fatalf("Resolve not deterministic: %s then %s, %v", r1, r2, err)
		}
		if _, err := d.BindValues(r1); err != nil {
			t.Fatalf("BindValues(%s): %v", r1, err)
		}
	})
}

func TestParamLimits(t *testing.T) {
	t.Parallel()
	d, err := Parse("l.yaml", []byte("name: l\nsource: s\nparams:\n  - {name: s, type: string}\nsql: SELECT :s\n"))
	if err != nil {
		t.Fatal(err)
	}
	many := map[string]string{}
	for i := range MaxParams + 1 {
		many[strings.Repeat("x", i%7+1)+string(rune('a'+i%26))+strings.Repeat("y", i/26)] = "1"
	}
	tests := []struct {
		name  string
		given map[string]string
		want  string
	}{
		{"value at the limit", map[string]string{"s": strings.Repeat("v", MaxParamValue)}, ""},
		{"UTF-8 value", map[string]string{"s": "naïve café 日本 \U0001F389"}, ""},
		{"value not UTF-8", map[string]string{"s": "caf\xe9"}, `param "s": value is not UTF-8 text (byte 0xe9 at offset 3)`},
		{"truncated sequence", map[string]string{"s": "ok \xe6\x97"}, `param "s": value is not UTF-8 text (byte 0xe6 at offset 3)`},
		{"value over the limit", map[string]string{"s": strings.Repeat("v", MaxParamValue+1)}, `param "s": value is 64.0 KiB; at most 64 KiB`},
		{"too many", many, "201 parameters given; at most 200"},
		{"long name", map[string]string{strings.Repeat("n", 101): "1"}, "name is 101 bytes"},
	}
	for _, tt := range tests {
		_, err := d.Resolve(tt.given, time.Now(), time.UTC)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestDefinitionTooBig(t *testing.T) {
	t.Parallel()
	big := []byte("name: r\nsource: s\nsql: SELECT 1\n" + strings.Repeat("#", MaxDefinitionSize))
	if _, err := Parse("big.yaml", big); err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at most 1 MiB") {
		t.Errorf("Parse of %d bytes: %v", len(big), err)
	}
}
