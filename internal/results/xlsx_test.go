package results

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
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
