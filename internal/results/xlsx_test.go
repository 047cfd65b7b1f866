package results

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"rpt/internal/errclass"
	"rpt/internal/source"
)

func TestRenderXLSX(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := Render(context.Background(), &out, "xlsx", &sliceRows{cols: allCols, rows: renderRows}, RenderOptions{SheetName: "TB 2024/01"})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	f, err := excelize.OpenReader(&out)
	if err != nil {
		t.Fatalf("output is not xlsx: %v", err)
	}
	defer f.Close()
	const sheet = "TB 2024_01"
	if got := f.GetSheetList(); len(got) != 1 || got[0] != sheet {
		t.Fatalf("sheets = %q, want [%q]", got, sheet)
	}

	// Header: the column names, bold.
	for i, c := range allCols {
		ref, _ := excelize.CoordinatesToCellName(i+1, 1)
		v, err := f.GetCellValue(sheet, ref)
		if err != nil || v != c.Name {
			t.Errorf("header %s = %q, %v; want %q", ref, v, err, c.Name)
		}
		styleID, err := f.GetCellStyle(sheet, ref)
		if err != nil {
			t.Fatal(err)
		}
		style, err := f.GetStyle(styleID)
		if err != nil || style.Font == nil || !style.Font.Bold {
			t.Errorf("header %s is not bold (style %+v, %v)", ref, style, err)
		}
	}

	tests := []struct {
		ref       string
		shown     string // as Excel shows it (number format applied)
		raw       string // the stored value
		typ       excelize.CellType
		numFmtHas string
	}{
		{ref: "A2", shown: "1", raw: "1", typ: excelize.CellTypeUnset},
		{ref: "B2", shown: "1,234.50", raw: "1234.5", typ: excelize.CellTypeUnset, numFmtHas: "#,##0.00"},
		// Excel keeps 15 significant digits: the huge decimal shows rounded.
		{ref: "B3", shown: "-12,345,678,901,234,500.00", raw: "-12345678901234500", numFmtHas: "#,##0.00"},
		{ref: "B5", shown: "0.0125", raw: "0.0125", numFmtHas: "#,##0.0000"},
		{ref: "C2", shown: "0.25", raw: "0.25"},
		{ref: "D3", shown: renderRows[1][3].(string), raw: renderRows[1][3].(string), typ: excelize.CellTypeInlineString},
		{ref: "E2", shown: "TRUE", raw: "1", typ: excelize.CellTypeBool},
		{ref: "F2", shown: "2024-01-31", raw: "45322", numFmtHas: "yyyy-mm-dd"},
		{ref: "G2", shown: "2024-01-31 23:59:59", raw: "45322.99998", numFmtHas: "hh:mm:ss"},
		{ref: "G5", shown: "2024-03-10 01:30:00"}, // +01:00 shown in UTC
		{ref: "H2", shown: "0xdead", raw: "0xdead", typ: excelize.CellTypeInlineString},
		{ref: "A4", shown: "", raw: ""}, // NULL: no value
		{ref: "B4", shown: "", raw: ""},
	}
	for _, tt := range tests {
		shown, err := f.GetCellValue(sheet, tt.ref)
		if err != nil || shown != tt.shown {
			t.Errorf("%s shows %q, %v; want %q", tt.ref, shown, err, tt.shown)
		}
		if tt.raw != "" || tt.shown == "" {
			raw, _ := f.GetCellValue(sheet, tt.ref, excelize.Options{RawCellValue: true})
			if !strings.HasPrefix(raw, tt.raw) {
				t.Errorf("%s holds %q, want %q", tt.ref, raw, tt.raw)
			}
		}
		if tt.typ != excelize.CellTypeUnset {
			if typ, _ := f.GetCellType(sheet, tt.ref); typ != tt.typ {
				t.Errorf("%s type = %v, want %v", tt.ref, typ, tt.typ)
			}
		}
		if tt.numFmtHas != "" {
			styleID, _ := f.GetCellStyle(sheet, tt.ref)
			style, err := f.GetStyle(styleID)
			if err != nil || style.CustomNumFmt == nil || !strings.Contains(*style.CustomNumFmt, tt.numFmtHas) {
				t.Errorf("%s number format = %+v, %v; want one containing %q", tt.ref, style, err, tt.numFmtHas)
			}
		}
	}
	rows, err := f.GetRows(sheet)
	if err != nil || len(rows) != len(renderRows)+1 {
		t.Errorf("sheet has %d rows, %v; want %d", len(rows), err, len(renderRows)+1)
	}
}

func TestRenderXLSXEmpty(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := Render(context.Background(), &out, "xlsx", &sliceRows{cols: allCols[:2]}, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows("Result")
	if err != nil || len(rows) != 1 || strings.Join(rows[0], ",") != "id,amount" {
		t.Errorf("rows = %q, %v; want only the header", rows, err)
	}
}

func TestXLSXSheetName(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "Result"},
		{"  ", "Result"},
		{"trial-balance", "trial-balance"},
		{"a:b\\c/d?e*f[g]h", "a_b_c_d_e_f_g_h"},
		{"'quoted'", "_quoted_"},
		{strings.Repeat("x", 40), strings.Repeat("x", 31)},
		{strings.Repeat("é", 40), strings.Repeat("é", 31)},
		{strings.Repeat("🙂", 20), strings.Repeat("🙂", 15)},
	}
	for _, tt := range tests {
		if got := xlsxSheetName(tt.in); got != tt.want {
			t.Errorf("xlsxSheetName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// bigRows makes n rows for the sheet-spill tests: an id counting from 1, a name
// whose long values come only after the width sample, a note over the width cap,
// money and a date.
func bigRows(n int) ([]source.Column, [][]any) {
	cols := []source.Column{
		{Name: "id", Type: source.TypeInt},
		{Name: "name", Type: source.TypeString},
		{Name: "note", Type: source.TypeString},
		{Name: "amount", Type: source.TypeDecimal},
		{Name: "day", Type: source.TypeDate},
		{Name: "a_very_long_column_header_name", Type: source.TypeBool},
	}
	rows := make([][]any, n)
	for i := range rows {
		name := fmt.Sprintf("item %d", i+1)
		if i+1 > xlsxWidthSample {
			name = strings.Repeat("late ", 40) // 200 characters, after the sample
		}
		var note any
		if i == 0 {
			note = strings.Repeat("n", 100)
		}
		rows[i] = []any{int64(i + 1), name, note, "1234567.5", "2024-01-31", i%2 == 0}
	}
	return cols, rows
}

func TestRenderXLSXSheetSpill(t *testing.T) {
	t.Parallel()
	const perSheet = 1000
	cols, rows := bigRows(2500)
	rr, err := newRowReader(context.Background(), &sliceRows{cols: cols, rows: rows})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := writeXLSX(&out, rr, RenderOptions{SheetName: "Big"}, perSheet); err != nil {
		t.Fatalf("writeXLSX: %v", err)
	}
	f, err := excelize.OpenReader(&out)
	if err != nil {
		t.Fatalf("output is not xlsx: %v", err)
	}
	defer f.Close()

	sheets := []struct {
		name     string
		firstID  string
		dataRows int
	}{
		{"Big", "1", 1000},
		{"Big (2)", "1001", 1000},
		{"Big (3)", "2001", 500},
	}
	if got := f.GetSheetList(); strings.Join(got, "|") != "Big|Big (2)|Big (3)" {
		t.Fatalf("sheets = %q, want Big, Big (2), Big (3)", got)
	}
	// Widths: header or first-rows values + 2, at least 8, at most 60; the long names
	// after the sample do not count.
	wantWidths := map[string]float64{"A": 8, "B": 11, "C": 60, "D": 14, "E": 12, "F": 32}
	for _, sh := range sheets {
		t.Run(sh.name, func(t *testing.T) {
			got, err := f.GetRows(sh.name)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != sh.dataRows+1 {
				t.Fatalf("%d rows, want %d data rows + header", len(got), sh.dataRows)
			}
			for i, c := range cols {
				if got[0][i] != c.Name {
					t.Errorf("header %d = %q, want %q", i, got[0][i], c.Name)
				}
				ref, _ := excelize.CoordinatesToCellName(i+1, 1)
				styleID, _ := f.GetCellStyle(sh.name, ref)
				if style, err := f.GetStyle(styleID); err != nil || style.Font == nil || !style.Font.Bold {
					t.Errorf("header %s not bold (%+v, %v)", ref, style, err)
				}
			}
			if got[1][0] != sh.firstID {
				t.Errorf("first id = %q, want %q", got[1][0], sh.firstID)
			}
			panes, err := f.GetPanes(sh.name)
			if err != nil || !panes.Freeze || panes.YSplit != 1 || panes.TopLeftCell != "A2" {
				t.Errorf("panes = %+v, %v; want the header row frozen", panes, err)
			}
			for col, want := range wantWidths {
				if w, err := f.GetColWidth(sh.name, col); err != nil || w != want {
					t.Errorf("column %s width = %v, %v; want %v", col, w, err, want)
				}
			}
			// Money and dates keep their types on every sheet.
			if v, _ := f.GetCellValue(sh.name, "D2"); v != "1,234,567.50" {
				t.Errorf("D2 shows %q, want 1,234,567.50", v)
			}
			if v, _ := f.GetCellValue(sh.name, "E2"); v != "2024-01-31" {
				t.Errorf("E2 shows %q, want 2024-01-31", v)
			}
			if raw, _ := f.GetCellValue(sh.name, "E2", excelize.Options{RawCellValue: true}); raw != "45322" {
				t.Errorf("E2 holds %q, want the date serial 45322", raw)
			}
		})
	}
	last, _ := f.GetCellValue("Big (3)", "A501")
	if last != "2500" {
		t.Errorf("last id = %q, want 2500", last)
	}
}

// TestRenderXLSXSheetBoundary checks the spill at the exact edges: a full sheet
// starts no empty second sheet, one more row does.
func TestRenderXLSXSheetBoundary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rows, perSheet int
		want           []int // data rows per sheet
	}{
		{0, 3, []int{0}},
		{3, 3, []int{3}},
		{4, 3, []int{3, 1}},
		{7, 1, []int{1, 1, 1, 1, 1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d_by_%d", tt.rows, tt.perSheet), func(t *testing.T) {
			t.Parallel()
			cols, rows := bigRows(tt.rows)
			rr, err := newRowReader(context.Background(), &sliceRows{cols: cols, rows: rows})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := writeXLSX(&out, rr, RenderOptions{}, tt.perSheet); err != nil {
				t.Fatal(err)
			}
			f, err := excelize.OpenReader(&out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			list := f.GetSheetList()
			if len(list) != len(tt.want) {
				t.Fatalf("sheets = %q, want %d", list, len(tt.want))
			}
			for i, name := range list {
				if want := xlsxNumberedSheetName("Result", i+1); name != want {
					t.Errorf("sheet %d = %q, want %q", i+1, name, want)
				}
				got, err := f.GetRows(name)
				if err != nil || len(got) != tt.want[i]+1 {
					t.Errorf("sheet %q has %d rows, %v; want %d + header", name, len(got), err, tt.want[i])
				}
			}
		})
	}
}

func TestRenderXLSXRowsPerSheet(t *testing.T) {
	t.Parallel()
	if xlsxSheetRows != 1_048_575 {
		t.Errorf("xlsxSheetRows = %d, want 1,048,575 (Excel's rows less the header)", xlsxSheetRows)
	}
	for _, n := range []int{0, -1, 1_048_576} {
		rr, err := newRowReader(context.Background(), &sliceRows{cols: allCols[:1]})
		if err != nil {
			t.Fatal(err)
		}
		if err := writeXLSX(io.Discard, rr, RenderOptions{}, n); err == nil {
			t.Errorf("writeXLSX with %d rows per sheet: no error", n)
		}
	}
}

func TestXLSXNumberedSheetName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base string
		n    int
		want string
	}{
		{"Result", 1, "Result"},
		{"Result", 2, "Result (2)"},
		{"TB 2024_01", 12, "TB 2024_01 (12)"},
		{strings.Repeat("x", 31), 1, strings.Repeat("x", 31)},
		{strings.Repeat("x", 31), 2, strings.Repeat("x", 27) + " (2)"},
		{strings.Repeat("x", 31), 100, strings.Repeat("x", 25) + " (100)"},
		{strings.Repeat("🙂", 15), 2, strings.Repeat("🙂", 13) + " (2)"},
	}
	for _, tt := range tests {
		got := xlsxNumberedSheetName(tt.base, tt.n)
		if got != tt.want {
			t.Errorf("xlsxNumberedSheetName(%q, %d) = %q, want %q", tt.base, tt.n, got, tt.want)
		}
	}
}

func TestXLSXShownWidth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		k    kind
		v    any
		want int
	}{
		{kindDecimal, "1234.5", len("1,234.50")},
		{kindDecimal, "-1234567.125", len("-1,234,567.125")},
		{kindDecimal, "0.0125", len("0.0125")},
		{kindDecimal, "100", len("100.00")},
		{kindInt, int64(-12345), 6},
		{kindString, "héllo", 5},
		{kindDate, "2024-01-31", 10},
		{kindDateTime, "2024-01-31T23:59:59Z", 19},
		{kindBool, true, 5},
		{kindBytes, []byte{0xde, 0xad}, 6},
		{kindString, nil, 0},
	}
	for _, tt := range tests {
		if got := xlsxShownWidth(tt.k, tt.v); got != tt.want {
			t.Errorf("xlsxShownWidth(%v, %v) = %d, want %d", tt.k, tt.v, got, tt.want)
		}
	}
}

// countRows yields n rows of one int column without holding them.
type countRows struct {
	n, i int64
	row  []any
}

func (r *countRows) Columns() []source.Column {
	return []source.Column{{Name: "n", Type: source.TypeInt}}
}
func (r *countRows) Next() bool {
	if r.i >= r.n {
		return false
	}
	r.i++
	r.row = []any{r.i}
	return true
}
func (r *countRows) Values() []any { return r.row }
func (r *countRows) Err() error    { return nil }
func (r *countRows) Close() error  { return nil }

// TestRenderXLSXFullSheet writes 1,048,575+10 rows through Render, Excel's real limit,
// which takes a while: only with RPT_TEST_XLSX_FULL=1.
func TestRenderXLSXFullSheet(t *testing.T) {
	if os.Getenv("RPT_TEST_XLSX_FULL") != "1" {
		t.Skip("set RPT_TEST_XLSX_FULL=1 to write a full 1,048,576-row sheet")
	}
	t.Parallel()
	const n = 1_048_575 + 10
	var out bytes.Buffer
	if err := Render(context.Background(), &out, "xlsx", &countRows{n: n}, RenderOptions{SheetName: "Full"}); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.GetSheetList(); strings.Join(got, "|") != "Full|Full (2)" {
		t.Fatalf("sheets = %q, want Full, Full (2)", got)
	}
	for _, c := range []struct{ sheet, ref, want string }{
		{"Full", "A1", "n"},
		{"Full", "A1048576", "1048575"},
		{"Full (2)", "A1", "n"},
		{"Full (2)", "A2", "1048576"},
		{"Full (2)", "A11", "1048585"},
		{"Full (2)", "A12", ""},
	} {
		if v, err := f.GetCellValue(c.sheet, c.ref); err != nil || v != c.want {
			t.Errorf("%s!%s = %q, %v; want %q", c.sheet, c.ref, v, err, c.want)
		}
	}
}

// TestRenderXLSXCellLimit: text that fits an Excel cell (32,767 characters) is written
// whole; one unit more is an error naming the row and column, in the width sample and
// after it, for text, emoji (two UTF-16 units each, as Excel counts) and bytes shown as
// hex, and nothing is written.
func TestRenderXLSXCellLimit(t *testing.T) {
	t.Parallel()
	cols := []source.Column{{Name: "id", Type: source.TypeInt}, {Name: "note", Type: source.TypeString}, {Name: "blob", Type: source.TypeBytes}}
	fits := strings.Repeat("x", 32767)
	rowsWith := func(at int, note any, blob any) [][]any {
		rows := make([][]any, 1200)
		for i := range rows {
			rows[i] = []any{int64(i + 1), "short", nil}
		}
		rows[0][1] = fits
		rows[at-1] = []any{int64(at), note, blob}
		return rows
	}

	var out bytes.Buffer
	if err := Render(context.Background(), &out, "xlsx", &sliceRows{cols: cols, rows: rowsWith(2, fits, make([]byte, 16382))}, RenderOptions{}); err != nil {
		t.Fatalf("values that fit: %v", err)
	}
	f, err := excelize.OpenReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"B2", "B3"} {
		if v, _ := f.GetCellValue("Result", ref); v != fits {
			t.Errorf("%s holds %d characters, want all 32767", ref, len(v))
		}
	}
	f.Close()

	for _, tc := range []struct {
		name       string
		row        int
		note, blob any
		col        string
	}{
		{"text in the sample", 7, fits + "y", nil, "note"},
		{"text after the sample", 1150, fits + "y", nil, "note"},
		{"emoji counted as Excel does", 3, strings.Repeat("😀", 16384), nil, "note"},
		{"bytes as hex", 1100, "short", make([]byte, 16383), "blob"},
	} {
		var out bytes.Buffer
		err := Render(context.Background(), &out, "xlsx", &sliceRows{cols: cols, rows: rowsWith(tc.row, tc.note, tc.blob)}, RenderOptions{})
		want := fmt.Sprintf("row %d, column %q", tc.row, tc.col)
		if !errors.Is(err, ErrCellTooLong) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want ErrCellTooLong naming %s", tc.name, err, want)
		}
		if out.Len() != 0 {
			t.Errorf("%s: %d bytes written despite the error", tc.name, out.Len())
		}
	}
}

// TestCellTooLongIsInvalid: an overlong cell is the caller's choice of format (exit 2),
// not an internal error.
func TestCellTooLongIsInvalid(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("render xlsx: %w", fmt.Errorf("%w: row 1", ErrCellTooLong))
	if c, ok := errclass.Of(err); !ok || c != errclass.Invalid {
		t.Errorf("class %v, %v; want invalid", c, ok)
	}
}
