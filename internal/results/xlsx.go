package results

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
)

// Excel limits.
const (
	xlsxMaxSheetName = 31
	// Excel keeps 15 significant digits; an integer beyond this would show rounded, so
	// it is written as text to stay exact (ids, not amounts, get this big).
	xlsxMaxExactInt = 999_999_999_999_999
)

// renderXLSX writes one sheet through excelize's StreamWriter, which spills to a
// temporary file past a few MB, so memory stays flat. The header row is bold and
// frozen; numbers are numeric cells, dates and datetimes date cells.
func renderXLSX(w io.Writer, rr *rowReader, opts RenderOptions) (err error) {
	f := excelize.NewFile()
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	sheet := xlsxSheetName(opts.SheetName)
	if sheet != "Sheet1" {
		if err := f.SetSheetName("Sheet1", sheet); err != nil {
			return fmt.Errorf("sheet name %q: %w", sheet, err)
		}
	}
	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		return err
	}
	st, err := newXLSXStyles(f)
	if err != nil {
		return err
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	header := make([]any, len(rr.cols))
	for i, c := range rr.cols {
		header[i] = excelize.Cell{StyleID: st.bold, Value: c.Name}
		if err := sw.SetColWidth(i+1, i+1, xlsxColWidth(rr.kinds[i], c.Name)); err != nil {
			return err
		}
	}
	if err := sw.SetRow("A1", header); err != nil {
		return err
	}
	cells := make([]any, len(rr.cols))
	row := 1
	for rr.next() {
		row++
		if row > excelize.TotalRows {
			return fmt.Errorf("more than %d rows do not fit an Excel sheet; use --csv", excelize.TotalRows-1)
		}
		for i, v := range rr.vals {
			if cells[i], err = st.cell(rr.kinds[i], v); err != nil {
				return err
			}
		}
		ref, err := excelize.CoordinatesToCellName(1, row)
		if err != nil {
			return err
		}
		if err := sw.SetRow(ref, cells); err != nil {
			return err
		}
	}
	if rr.err != nil {
		return rr.err
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	return f.Write(w)
}

// xlsxSheetName makes name a valid sheet name: the characters Excel forbids become
// "_", and it is cut to 31 UTF-16 units. Empty: "Result".
func xlsxSheetName(name string) string {
	var b strings.Builder
	units := 0
	for _, r := range strings.TrimSpace(name) {
		if strings.ContainsRune(`:\/?*[]`, r) || r == utf8.RuneError {
			r = '_'
		}
		n := 1
		if r > 0xffff {
			n = 2
		}
		if units+n > xlsxMaxSheetName {
			break
		}
		units += n
		b.WriteRune(r)
	}
	s := b.String()
	// A sheet name may not start or end with an apostrophe.
	if strings.HasPrefix(s, "'") {
		s = "_" + s[1:]
	}
	if strings.HasSuffix(s, "'") {
		s = s[:len(s)-1] + "_"
	}
	if s == "" {
		return "Result"
	}
	return s
}

func xlsxColWidth(k kind, name string) float64 {
	width := 10
	switch k {
	case kindDecimal, kindFloat:
		width = 16
	case kindInt:
		width = 12
	case kindDate:
		width = 12
	case kindDateTime:
		width = 20
	case kindString:
		width = 24
	}
	width = max(width, utf8.RuneCountInString(name)+2)
	return float64(min(width, 60))
}

type xlsxStyles struct {
	f        *excelize.File
	bold     int
	date     int
	datetime int
	decimal  map[int]int // by decimal places shown
}

func newXLSXStyles(f *excelize.File) (*xlsxStyles, error) {
	st := &xlsxStyles{f: f, decimal: map[int]int{}}
	var err error
	if st.bold, err = f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}}); err != nil {
		return nil, err
	}
	if st.date, err = customNumFmt(f, "yyyy-mm-dd"); err != nil {
		return nil, err
	}
	if st.datetime, err = customNumFmt(f, "yyyy-mm-dd hh:mm:ss"); err != nil {
		return nil, err
	}
	return st, nil
}

func customNumFmt(f *excelize.File, format string) (int, error) {
	return f.NewStyle(&excelize.Style{CustomNumFmt: &format})
}

// decimalStyle is a number format showing the value's decimal places, at least two
// (money), so 0.0125 is not shown as 0.01.
func (st *xlsxStyles) decimalStyle(places int) (int, error) {
	places = min(max(places, 2), 15)
	if id, ok := st.decimal[places]; ok {
		return id, nil
	}
	id, err := customNumFmt(st.f, "#,##0."+strings.Repeat("0", places))
	if err != nil {
		return 0, err
	}
	st.decimal[places] = id
	return id, nil
}

// cell turns a canonical value into what StreamWriter.SetRow takes.
func (st *xlsxStyles) cell(k kind, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch k {
	case kindInt:
		n := v.(int64)
		if n > xlsxMaxExactInt || n < -xlsxMaxExactInt {
			return strconv.FormatInt(n, 10), nil
		}
		return n, nil
	case kindDecimal:
		// The cell holds the double nearest to the exact decimal, because that is all
		// an Excel number can be (15 significant digits). That is fine for display and
		// sums on a sheet; the exact figures are in csv and json.
		s := v.(string)
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return s, nil
		}
		style, err := st.decimalStyle(decimalPlaces(s))
		if err != nil {
			return nil, err
		}
		return excelize.Cell{StyleID: style, Value: f}, nil
	case kindDate:
		t, err := time.Parse(time.DateOnly, v.(string))
		if err != nil {
			return v, nil
		}
		return excelize.Cell{StyleID: st.date, Value: t}, nil
	case kindDateTime:
		t, err := time.Parse(time.RFC3339Nano, v.(string))
		if err != nil {
			return v, nil
		}
		// Excel has no time zones: the sheet shows UTC, as the stored value is.
		return excelize.Cell{StyleID: st.datetime, Value: t.UTC()}, nil
	case kindBytes:
		return bytesText(v.([]byte)), nil
	default:
		return v, nil // float64, bool, string
	}
}

// decimalPlaces counts the digits after the point of a decimal's text.
func decimalPlaces(s string) int {
	dot := strings.IndexByte(s, '.')
	if dot < 0 {
		return 0
	}
	end := strings.IndexAny(s, "eE")
	if end < 0 {
		end = len(s)
	}
	return end - dot - 1
}
