package reportdefs

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/source"
)

const typesDef = `name: types
source: warehouse
params:
  - {name: i, type: int, required: false}
  - {name: dec, type: decimal, required: false}
  - {name: s, type: string, required: false}
  - {name: b, type: bool, required: false}
  - {name: d, type: date, required: false}
  - {name: p, type: period, required: false}
  - {name: e, type: enum, values: [net, gross], required: false}
  - {name: li, type: list<int>, required: false}
  - {name: ld, type: list<date>, required: false}
  - {name: le, type: list<enum>, values: [a, b], required: false}
sql: SELECT :i, :dec, :s, :b, :d, :p, :e, :li, :ld, :le
`

func mustParse(t *testing.T, src string) *Definition {
	t.Helper()
	d, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestResolveValues(t *testing.T) {
	t.Parallel()
	d := mustParse(t, typesDef)
	indy, err := time.LoadLocation("America/Indiana/Indianapolis")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	// 2025-03-01 03:00 UTC is still 2025-02-28 in Indianapolis.
	now := time.Date(2025, 3, 1, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		param, value string
		loc          *time.Location
		want         any // JSON-decoded value
	}{
		{"i", "42", nil, 42.0},
		{"i", "-7", nil, -7.0},
		{"i", " 12 ", nil, 12.0},
		{"dec", "-012.3000", nil, "-12.3"},
		{"dec", "+0.50", nil, "0.5"},
		{"dec", "-0.00", nil, "0"},
		{"dec", ".5", nil, "0.5"},
		{"dec", "123456789012345678901234567890.01", nil, "123456789012345678901234567890.01"},
		{"s", " keep spaces ", nil, " keep spaces "},
		{"b", "yes", nil, true},
		{"b", "FALSE", nil, false},
		{"d", "2024-02-29", nil, "2024-02-29"},
		{"d", "today", nil, "2025-03-01"},
		{"d", "today", indy, "2025-02-28"},
		{"d", "yesterday", nil, "2025-02-28"},
		{"d", "this-month", indy, "2025-02-01"},
		{"d", "last-month", nil, "2025-02-01"},
		{"d", "-7d", nil, "2025-02-22"},
		{"d", "-1m", nil, "2025-02-01"},
		{"p", "202501", nil, 202501.0},
		{"p", "2025-01", nil, 202501.0},
		{"p", "today", nil, 202503.0},
		{"p", "today", indy, 202502.0},
		{"p", "yesterday", nil, 202502.0},
		{"p", "this-month", nil, 202503.0},
		{"p", "last-month", nil, 202502.0},
		{"p", "last-month", indy, 202501.0},
		{"p", "-13m", nil, 202402.0},
		{"p", "-1d", nil, 202502.0},
		{"e", "gross", nil, "gross"},
		{"li", "123681, 295932", nil, []any{123681.0, 295932.0}},
		{"ld", "yesterday,2025-01-31", nil, []any{"2025-02-28", "2025-01-31"}},
		{"le", "b,a", nil, []any{"b", "a"}},
		{"i", "", nil, nil},
	}
	for _, tt := range tests {
		loc := tt.loc
		if loc == nil {
			loc = time.UTC
		}
		raw, err := d.Resolve(map[string]string{tt.param: tt.value}, now, loc)
		if err != nil {
			t.Errorf("%s=%q: %v", tt.param, tt.value, err)
			continue
		}
		var got map[string]any
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(d.Params) {
			t.Errorf("%s=%q: %d keys, want %d", tt.param, tt.value, len(got), len(d.Params))
		}
		if !reflect.DeepEqual(got[tt.param], tt.want) {
			t.Errorf("%s=%q in %s: got %#v, want %#v", tt.param, tt.value, loc, got[tt.param], tt.want)
		}
	}
}

func TestResolveMonthsBackClamps(t *testing.T) {
	t.Parallel()
	d := mustParse(t, typesDef)
	raw, err := d.Resolve(map[string]string{"d": "-1m"}, time.Date(2025, 3, 31, 12, 0, 0, 0, time.UTC), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	// -1m on a date means the same day a month back, clamped: 31 March -> 28 February.
	if !strings.Contains(string(raw), `"d":"2025-02-28"`) {
		t.Errorf("resolved = %s", raw)
	}
}

func TestResolveErrors(t *testing.T) {
	t.Parallel()
	d := mustParse(t, typesDef)
	tb := mustParse(t, "name: trial-balance\nsource: w\nparams:\n  - {name: start_period, type: period}\n  - {name: pcn, type: int, default: 123681}\nsql: SELECT :start_period, :pcn\n")
	tests := []struct {
		def   *Definition
		given map[string]string
		want  string
	}{
		{tb, map[string]string{"start_period": "202501", "x": "1"}, `param "x": not declared by report trial-balance (declared: pcn, start_period)`},
		{tb, map[string]string{}, `param "start_period" (period): required (give -p start_period=VALUE)`},
		{tb, map[string]string{"start_period": ""}, `param "start_period" (period): empty value`},
		{tb, map[string]string{"start_period": "202513"}, `param "start_period" (period): invalid value "202513": month 13 is not 01-12`},
		{tb, map[string]string{"start_period": "202501", "pcn": "12x"}, `param "pcn" (int): invalid value "12x": want an integer`},
		{d, map[string]string{"i": "99999999999999999999"}, `param "i" (int): invalid value "99999999999999999999": integer out of range`},
		{d, map[string]string{"dec": "1e5"}, `param "dec" (decimal): invalid value "1e5"`},
		{d, map[string]string{"b": "maybe"}, `param "b" (bool): invalid value "maybe"`},
		{d, map[string]string{"d": "2025-02-30"}, `param "d" (date): invalid value "2025-02-30"`},
		{d, map[string]string{"d": "31/01/2025"}, `param "d" (date)`},
		{d, map[string]string{"e": "tax"}, `param "e" (enum): invalid value "tax": want one of net, gross`},
		{d, map[string]string{"li": "1,,2"}, `param "li" (list<int>): invalid value "1,,2": element 2 is empty`},
		{d, map[string]string{"li": "1,x"}, `param "li" (list<int>): invalid value "1,x": element 2 "x": want an integer`},
		{d, map[string]string{"le": "a,c"}, `param "le" (list<enum>)`},
		{d, map[string]string{"p": "99"}, `param "p" (period): invalid value "99"`},
	}
	for _, tt := range tests {
		_, err := tt.def.Resolve(tt.given, time.Now(), time.UTC)
		if err == nil {
			t.Errorf("%v: no error", tt.given)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: not ErrInvalid: %v", tt.given, err)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %q does not contain %q", tt.given, err, tt.want)
		}
	}
}

func TestResolveDeterministic(t *testing.T) {
	t.Parallel()
	d := mustParse(t, goodDef)
	now := time.Date(2025, 6, 15, 8, 0, 0, 0, time.UTC)
	a, err := d.Resolve(map[string]string{"pcn": "295932,123681", "kind": "gross", "min_amount": "10.50"}, now, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.Resolve(map[string]string{"min_amount": "010.5", "kind": "gross", "pcn": "295932, 123681"}, now, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"detail":false,"from":"2025-06-08","kind":"gross","min_amount":"10.5","note":"","pcn":[295932,123681],"to":"2025-06-14"}`
	if string(a) != want || string(b) != want {
		t.Errorf("resolved\n a = %s\n b = %s\nwant %s", a, b, want)
	}
	if CanonicalKey("sales-by-day", a) != CanonicalKey("sales-by-day", json.RawMessage(" {\"to\": \"2025-06-14\","+want[1:len(want)-len(`,"to":"2025-06-14"}`)]+"}")) {
		t.Error("CanonicalKey differs for reformatted JSON")
	}
	if CanonicalKey("sales-by-day", a) == CanonicalKey("other", a) {
		t.Error("CanonicalKey ignores the report")
	}
	c, _ := d.Resolve(map[string]string{"kind": "net"}, now, time.UTC)
	if CanonicalKey("sales-by-day", a) == CanonicalKey("sales-by-day", c) {
		t.Error("CanonicalKey ignores the params")
	}
	if k := CanonicalKey("x", a); len(k) != 64 {
		t.Errorf("key %q is not sha256 hex", k)
	}
}

func TestBindValues(t *testing.T) {
	t.Parallel()
	d := mustParse(t, typesDef)
	raw, err := d.Resolve(map[string]string{"i": "5", "dec": "-1.50", "s": "x", "b": "true", "d": "2025-01-02",
		"p": "202412", "e": "net", "li": "1,2", "ld": "2025-01-01", "le": "a"}, time.Now(), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.BindValues(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"i": int64(5), "dec": "-1.5", "s": "x", "b": true, "d": "2025-01-02", "p": int64(202412),
		"e": "net", "li": []any{int64(1), int64(2)}, "ld": []any{"2025-01-01"}, "le": []any{"a"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("BindValues = %#v\nwant %#v", got, want)
	}
	nulls, err := d.Resolve(nil, time.Now(), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	got, err = d.BindValues(nulls)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Params {
		if v, ok := got[p.Name]; !ok || v != nil {
			t.Errorf("%s = %#v, want nil (NULL)", p.Name, v)
		}
	}
	for _, bad := range []string{`[]`, `{"zz": 1}`, `{"i": "5"}`, `{"p": 202513}`, `{"d": "today"}`, `{"li": 5}`, `{"e": "tax"}`, `{"b": 1}`} {
		if _, err := d.BindValues(json.RawMessage(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("BindValues(%s) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestJobParams(t *testing.T) {
	t.Parallel()
	d := mustParse(t, goodDef)
	resolved, err := d.Resolve(nil, time.Now(), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	p := d.JobParams(resolved, map[string]source.Config{"warehouse": {Driver: "mysql", MaxConcurrent: 8}})
	if p.Kind != queue.KindReport || p.Report != "sales-by-day" || p.Source != "warehouse" || p.MaxAttempts != 5 ||
		p.Timeout != 2*time.Hour || string(p.Params) != string(resolved) || string(p.Definition) != goodDef ||
		len(p.DefinitionSHA256) != 64 || p.Route["plant"] != "albion" {
		t.Errorf("JobParams = %+v", p)
	}
	wantScopes := []queue.Scope{{Name: "group:accounting", Limit: 2}, {Name: "source:warehouse", Limit: 8}}
	if !reflect.DeepEqual(p.Scopes, wantScopes) {
		t.Errorf("scopes = %v, want %v", p.Scopes, wantScopes)
	}
	plain := mustParse(t, base+"concurrency: 1\n")
	p = plain.JobParams(json.RawMessage(`{"a":1}`), nil)
	if !reflect.DeepEqual(p.Scopes, []queue.Scope{{Name: "report:x", Limit: 1}}) || p.MaxAttempts != DefaultMaxAttempts || p.Route != nil {
		t.Errorf("plain JobParams = %+v", p)
	}
	unlimited := mustParse(t, base)
	if p := unlimited.JobParams(json.RawMessage(`{"a":1}`), map[string]source.Config{"warehouse": {}}); len(p.Scopes) != 0 {
		t.Errorf("unlimited scopes = %v", p.Scopes)
	}
}

// TestResolveRange: a definition's range: [from, to] refuses from after to at
// resolve time, naming both (it used to run and return no rows); equal ends and an
// end left NULL pass. The shipped trial balances declare their periods a range.
func TestResolveRange(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `name: r
source: warehouse
params:
  - {name: from_day, type: date}
  - {name: to_day, type: date, required: false}
range: [from_day, to_day]
sql: SELECT :from_day, :to_day
`)
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	for _, ok := range []map[string]string{
		{"from_day": "2026-01-31", "to_day": "2026-02-01"},
		{"from_day": "2026-02-01", "to_day": "2026-02-01"},
		{"from_day": "2026-02-01"}, // to_day NULL: nothing to compare
	} {
		if _, err := d.Resolve(ok, now, time.UTC); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
	_, err := d.Resolve(map[string]string{"from_day": "2026-12-02", "to_day": "yesterday"}, now, time.UTC)
	if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "from_day=2026-12-02 is after to_day=2026-11-28") {
		t.Errorf("reversed dates: %v", err)
	}
	cat, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"trial-balance", "trial-balance-live"} {
		tb, err := cat.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tb.Resolve(map[string]string{"start_period": "202512", "end_period": "202501"}, now, time.UTC)
		if err == nil || !strings.Contains(err.Error(), `params "start_period" and "end_period"`) {
			t.Errorf("%s: reversed periods: %v", name, err)
		}
	}
}

// TestResolveEmptyValue: "-p x=" of a parameter with a default is refused naming it
// (it used to take the default silently); of an optional one it is NULL.
func TestResolveEmptyValue(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `name: e
source: warehouse
params:
  - {name: p, type: period, default: last-month}
  - {name: o, type: int, required: false}
sql: SELECT :p, :o
`)
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	_, err := d.Resolve(map[string]string{"p": ""}, now, time.UTC)
	if err == nil || err.Error() != `param "p" (period): empty value (leave -p p out for its default, last-month)` {
		t.Errorf("empty with a default: %v", err)
	}
	got, err := d.Resolve(map[string]string{"o": ""}, now, time.UTC)
	if err != nil || string(got) != `{"o":null,"p":202610}` {
		t.Errorf("empty optional: %s, %v", got, err)
	}
}
