package results

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"rpt/internal/queue"
	"rpt/internal/source"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// renderRows are allRows without the non-finite float, which JSON and YAML test
// separately, plus a string a YAML reader would take for a boolean.
var renderRows = [][]any{
	allRows[0],
	allRows[1],
	allRows[2],
	{int64(42), "0.0125", 3.0, "yes", true, "2000-02-29", "2024-03-10T02:30:00+01:00", []byte("x")},
	{int64(-7), "-0.01", 1e21, "Sub-total (net)", false, "2024-12-01", "2024-12-01T00:00:00Z", nil},
}

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	narrow := allCols[:4]
	narrowRows := [][]any{
		{int64(1), "1234.50", 0.25, "Cash"},
		{int64(22), "-12345678901234567.89", nil, "Accounts receivable"},
		{int64(333), nil, -1.5, "日本語"},
	}
	tests := []struct {
		file   string
		format string
		cols   []source.Column
		rows   [][]any
		opts   RenderOptions
	}{
		{"all.csv", "csv", allCols, renderRows, RenderOptions{}},
		{"all.tsv", "tsv", allCols, renderRows, RenderOptions{}},
		{"all.json", "json", allCols, renderRows, RenderOptions{}},
		{"all.yaml", "yaml", allCols, renderRows, RenderOptions{}},
		{"all.table", "table", allCols, renderRows, RenderOptions{}},
		{"narrow.table", "table", narrow, narrowRows, RenderOptions{}},
		{"capped.table", "table", narrow, narrowRows, RenderOptions{MaxTableRows: 2}},
		{"capped_total.table", "table", narrow, narrowRows, RenderOptions{MaxTableRows: 1, TotalRows: 1000}},
		{"empty.csv", "csv", narrow, nil, RenderOptions{}},
		{"empty.tsv", "tsv", narrow, nil, RenderOptions{}},
		{"empty.json", "json", narrow, nil, RenderOptions{}},
		{"empty.yaml", "yaml", narrow, nil, RenderOptions{}},
		{"empty.table", "table", narrow, nil, RenderOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := Render(context.Background(), &out, tt.format, &sliceRows{cols: tt.cols, rows: tt.rows}, tt.opts)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			switch tt.format {
			case "json":
				if !json.Valid(out.Bytes()) {
					t.Errorf("not valid JSON:\n%s", out.Bytes())
				}
			case "yaml":
				var v []map[string]any
				if err := yaml.Unmarshal(out.Bytes(), &v); err != nil || len(v) != len(tt.rows) {
					t.Errorf("YAML reads back as %d maps, %v; want %d", len(v), err, len(tt.rows))
				}
			}
			golden(t, tt.file, out.Bytes())
		})
	}
}

// TestRenderFromStore renders a result read back from chunks, so the whole path
// writer -> store -> reader -> renderer is checked against the same golden file.
func TestRenderFromStore(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	writeAll(t, store, queue.Lease{JobID: 3, Attempt: 1}, allCols, renderRows, func(w *Writer) { w.maxChunkRows = 2 })
	rows, err := Open(context.Background(), store, Ref{JobID: 3, Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Render(context.Background(), &out, "json", rows, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "all.json", out.Bytes())
}

func TestRenderCSVParses(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := Render(context.Background(), &out, "csv", &sliceRows{cols: allCols, rows: renderRows}, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != len(renderRows)+1 {
		t.Fatalf("%d records, want %d", len(records), len(renderRows)+1)
	}
	if got := records[2][1]; got != "-12345678901234567.89" {
		t.Errorf("decimal = %q", got)
	}
	if got := records[2][3]; got != renderRows[1][3] {
		t.Errorf("string = %q, want %q", got, renderRows[1][3])
	}
	for i, v := range records[3] {
		if v != "" {
			t.Errorf("NULL column %d = %q, want empty", i, v)
		}
	}
}

func TestRenderJSONParses(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := Render(context.Background(), &out, "json", &sliceRows{cols: allCols, rows: renderRows}, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&out)
	dec.UseNumber()
	var got []map[string]any
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	if len(got) != len(renderRows) {
		t.Fatalf("%d objects, want %d", len(got), len(renderRows))
	}
	checks := []struct {
		row  int
		key  string
		want any
	}{
		{1, "amount", json.Number("-12345678901234567.89")},
		{0, "amount", json.Number("1234.50")},
		{0, "id", json.Number("1")},
		{1, "name", renderRows[1][3]},
		{0, "day", "2024-01-31"},
		{0, "active", true},
		{0, "blob", "0xdead"},
		{2, "amount", nil},
	}
	for _, c := range checks {
		if g := got[c.row][c.key]; g != c.want {
			t.Errorf("row %d %s = %#v, want %#v", c.row, c.key, g, c.want)
		}
	}
}

func TestRenderYAMLParses(t *testing.T) {
	t.Parallel()
	cols := []source.Column{{Name: "s", Type: source.TypeString}, {Name: "d", Type: source.TypeDecimal}, {Name: "f", Type: source.TypeFloat}}
	strs := []string{"yes", "No", "null", "~", "", " lead", "trail ", "a: b", "a #b", "- x", "123", "0x1F", "1e3", ".inf",
		"Müller", "日本語", "tab\there", "line\nbreak", "quote\"s", "back\\slash", "\x7f\u0085\u2028\ufeff", "Plain text (ok)", "'single'", "@at", "%pct", "*star", "&amp", "!bang", "[x]", "{y}"}
	var rows [][]any
	for i, s := range strs {
		rows = append(rows, []any{s, "-12345678901234567.89", float64(i) / 8})
	}
	rows = append(rows, []any{nil, nil, nil})
	var out bytes.Buffer
	if err := Render(context.Background(), &out, "yaml", &sliceRows{cols: cols, rows: rows}, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []map[string]yaml.Node
	if err := yaml.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not YAML: %v\n%s", err, out.String())
	}
	if len(got) != len(rows) {
		t.Fatalf("%d maps, want %d", len(got), len(rows))
	}
	for i, s := range strs {
		n := got[i]["s"]
		if n.Tag != "!!str" || n.Value != s {
			t.Errorf("string %q came back as %s %q", s, n.Tag, n.Value)
		}
		if d := got[i]["d"]; d.Value != "-12345678901234567.89" {
			t.Errorf("decimal came back as %q", d.Value)
		}
	}
	if n := got[len(strs)]["s"]; n.Tag != "!!null" {
		t.Errorf("NULL came back as %s %q", n.Tag, n.Value)
	}

	// Non-finite floats are YAML's .inf and .nan.
	out.Reset()
	fcols := []source.Column{{Name: "f", Type: source.TypeFloat}}
	if err := Render(context.Background(), &out, "yaml", &sliceRows{cols: fcols, rows: [][]any{{allRows[4][2]}}}, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "- f: -.inf\n" {
		t.Errorf("yaml -Inf = %q", got)
	}
}

func TestRenderJSONNonFinite(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	cols := []source.Column{{Name: "f", Type: source.TypeFloat}}
	if err := Render(context.Background(), &out, "json", &sliceRows{cols: cols, rows: [][]any{{allRows[4][2]}}}, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "[\n{\"f\":\"-Inf\"}\n]\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	cols := []source.Column{{Name: "amount", Type: source.TypeDecimal}}
	tests := []struct {
		name    string
		format  string
		rows    source.Rows
		ctx     func() context.Context
		wantErr string
		wantIs  error
	}{
		{name: "unknown format", format: "xml", rows: &sliceRows{cols: cols}, wantErr: `unknown output format "xml" (valid: table, csv, tsv, json, yaml, xlsx)`},
		{name: "bad value names row and column", format: "json", rows: &sliceRows{cols: cols, rows: [][]any{{"1.00"}, {"1,00"}}}, wantErr: `render json: row 2: column "amount" (decimal): value "1,00" is not a decimal number`},
		{name: "unknown column type", format: "csv", rows: &sliceRows{cols: []source.Column{{Name: "x", Type: "money"}}}, wantErr: `column "x": unknown type "money"`},
		{name: "source error", format: "csv", rows: &sliceRows{cols: cols, rows: [][]any{{"1.00"}}, err: errors.New("boom")}, wantErr: "read rows: boom"},
		{name: "cancelled", format: "yaml", rows: &sliceRows{cols: cols, rows: [][]any{{"1.00"}}}, ctx: func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, wantIs: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			err := Render(ctx, &bytes.Buffer{}, tt.format, tt.rows, RenderOptions{})
			if err == nil {
				t.Fatal("Render succeeded")
			}
			if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.wantIs)
			}
		})
	}
}

func TestFormatFromPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path   string
		want   string
		wantOK bool
	}{
		{"out.csv", "csv", true},
		{"out.tsv", "tsv", true},
		{"/tmp/x.JSON", "json", true},
		{"a.yaml", "yaml", true},
		{"a.yml", "yaml", true},
		{"TB-2024.xlsx", "xlsx", true},
		{"report.txt", "table", true},
		{"report.xls", "", false},
		{"noext", "", false},
		{"dir.csv/file", "", false},
	}
	for _, tt := range tests {
		got, ok := FormatFromPath(tt.path)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("FormatFromPath(%q) = %q, %v; want %q, %v", tt.path, got, ok, tt.want, tt.wantOK)
		}
	}
}

// TestRenderNoColumns: a result with no columns renders in every format without error.
func TestRenderNoColumns(t *testing.T) {
	t.Parallel()
	for _, format := range Formats {
		for _, rows := range [][][]any{nil, {{}}} {
			var out bytes.Buffer
			if err := Render(context.Background(), &out, format, &sliceRows{rows: rows}, RenderOptions{}); err != nil {
				t.Errorf("%s with %d rows: %v", format, len(rows), err)
			}
		}
	}
}

func TestEscapeControl(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Cash":                      "Cash",
		"Accounts receivable – net": "Accounts receivable – net",
		`C:\reports`:                `C:\reports`,
		"a\nb\tc\rd":                `a\nb\tc\rd`,
		"\x1b[2J\x1b[31mred":        `\x1b[2J\x1b[31mred`,
		"\x1b]0;title\x07":          `\x1b]0;title\x07`,
		"del\x7f":                   `del\x7f`,
		"c1 \u009b31m":              `c1 \u009b31m`,
		"bidi \u202egnp.exe":        `bidi \u202egnp.exe`,
		"line\u2028sep":             `line\u2028sep`,
		"bad \xff\xfe utf8":         `bad \xff\xfe utf8`,
		"\x00":                      `\x00`,
	} {
		if got := EscapeControl(in); got != want {
			t.Errorf("EscapeControl(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRenderTableEscapesControl: values and column names with ESC sequences, C1 controls
// and newlines cannot reach the terminal raw through the table; csv keeps them exact.
func TestRenderTableEscapesControl(t *testing.T) {
	t.Parallel()
	cols := []source.Column{{Name: "id", Type: source.TypeInt}, {Name: "name\x1b[8m", Type: source.TypeString}}
	rows := [][]any{
		{int64(1), "\x1b[2J\x1b[H\x1b[31mpwned"},
		{int64(2), "two\nlines"},
		{int64(3), "csi \u009b2J and \u202eevil"},
	}
	var out bytes.Buffer
	if err := Render(context.Background(), &out, "table", &sliceRows{cols: cols, rows: rows}, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, r := range got {
		if (r < 0x20 && r != '\n') || (r >= 0x7f && r <= 0x9f) || r == 0x202e {
			t.Fatalf("table holds %U:\n%q", r, got)
		}
	}
	for _, want := range []string{`\x1b[2J\x1b[H\x1b[31mpwned`, `two\nlines`, `csi \u009b2J and \u202eevil`, `name\x1b[8m`} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %s:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n"); n != 7 {
		t.Errorf("table has %d lines, want 7 (3 rows, header, 3 borders):\n%s", n, got)
	}

	out.Reset()
	if err := Render(context.Background(), &out, "csv", &sliceRows{cols: cols, rows: rows}, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\x1b[2J\x1b[H\x1b[31mpwned") {
		t.Errorf("csv changed the value: %q", out.String())
	}
}

// TestRenderTSVEscapes: a value holding a tab, newline, carriage return or backslash
// stays one field of one line (escaped \t \n \r \\), so awk -F'\t' and cut see the
// columns; unescaping gives back the exact value. A comma needs no quoting, unlike CSV
// where "Selling, General and Administrative" splits awk -F, into two columns.
func TestRenderTSVEscapes(t *testing.T) {
	t.Parallel()
	cols := []source.Column{{Name: "name", Type: source.TypeString}, {Name: "amount", Type: source.TypeDecimal}}
	values := []string{"Selling, General and Administrative", "a\tb", "two\nlines", "cr\rhere", `back\slash`, `\t literal`, ""}
	rows := make([][]any, len(values))
	for i, v := range values {
		rows[i] = []any{v, "-1.50"}
	}
	rows = append(rows, []any{nil, nil})
	var out bytes.Buffer
	if err := Render(context.Background(), &out, "tsv", &sliceRows{cols: cols, rows: rows}, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(rows)+1 || lines[0] != "name\tamount" {
		t.Fatalf("%d lines (want %d), header %q:\n%s", len(lines), len(rows)+1, lines[0], out.String())
	}
	unescape := strings.NewReplacer(`\\`, `\`, `\t`, "\t", `\n`, "\n", `\r`, "\r")
	for i, v := range values {
		f := strings.Split(lines[i+1], "\t")
		if len(f) != 2 || f[1] != "-1.50" {
			t.Errorf("row %d: fields %q", i, f)
			continue
		}
		if got := unescape.Replace(f[0]); got != v {
			t.Errorf("row %d: %q unescapes to %q, want %q", i, f[0], got, v)
		}
	}
	if last := lines[len(lines)-1]; last != "\t" {
		t.Errorf("NULLs: %q, want two empty fields", last)
	}
}
