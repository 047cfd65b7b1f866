package results

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"rpt/internal/errclass"
)

// Excel limits.
const (
	xlsxMaxSheetName = 31
	// Excel keeps 15 significant digits; an integer beyond this would show rounded, so
	// it is written as text to stay exact (ids, not amounts, get this big).
	xlsxMaxExactInt = 999_999_999_999_999
	// xlsxWidthSample is how many leading rows size the columns: StreamWriter takes
	// widths only before the first row, so they come from a buffered sample.
	xlsxWidthSample = 1000
	xlsxMinWidth    = 8
	xlsxMaxWidth    = 60
	// xlsxMaxCellChars is the most text an Excel cell holds (excelize would cut a longer
	// value silently, and a cut value is a wrong value).
	xlsxMaxCellChars = excelize.TotalCellChars
)

// ErrCellTooLong is a text value longer than an Excel cell holds: the sheet is not
// written rather than written with the value cut. csv, json and yaml carry any length.
// It is the caller's choice of format that cannot hold the result: invalid (exit 2).
var ErrCellTooLong = errclass.New(errclass.Invalid, "value too long for an Excel cell")

// xlsxSheetRows is how many data rows one sheet holds: Excel's 1,048,576 rows less
// the header. A larger result continues on "<name> (2)", "<name> (3)", ... A variable
// so tests can spill sheets without writing a million rows.
var xlsxSheetRows = excelize.TotalRows - 1

// renderXLSX writes the rows through excelize's StreamWriter, which spills to a
// temporary file past a few MB, so memory stays flat. Every sheet starts with a bold,
// frozen header row; numbers are numeric cells, dates and datetimes date cells, money
// "#,##0.00". Column widths come from the header and the first rows' values.
func renderXLSX(w io.Writer, rr *rowReader, opts RenderOptions) (err error) {
	return writeXLSX(w, rr, opts, xlsxSheetRows)
}

func writeXLSX(w io.Writer, rr *rowReader, opts RenderOptions, sheetRows int) (err error) {
	if sheetRows < 1 || sheetRows > excelize.TotalRows-1 {
		return fmt.Errorf("xlsx rows per sheet %d: want 1..%d", sheetRows, excelize.TotalRows-1)
	}
	f := excelize.NewFile()
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if opts.Note != "" {
		if err := f.SetDocProps(&excelize.DocProperties{Description: opts.Note, Subject: opts.Note}); err != nil {
			return fmt.Errorf("xlsx document properties: %w", err)
		}
	}
	st, err := newXLSXStyles(f)
	if err != nil {
		return err
	}

	// Buffer the first rows as cells, to size the columns from what they show.
	widths := make([]int, len(rr.cols))
	for i, c := range rr.cols {
		widths[i] = utf8.RuneCountInString(c.Name)
	}
	var sample [][]any
	for len(sample) < xlsxWidthSample && rr.next() {
		cells := make([]any, len(rr.cols))
		for i, v := range rr.vals {
			if cells[i], err = st.cellAt(rr, i, v); err != nil {
				return err
			}
			widths[i] = max(widths[i], xlsxShownWidth(rr.kinds[i], v))
		}
		sample = append(sample, cells)
	}
	if rr.err != nil {
		return rr.err
	}
	for i := range widths {
		// Room for the bold header and the cell padding.
		widths[i] = min(max(widths[i]+2, xlsxMinWidth), xlsxMaxWidth)
	}

	base := xlsxSheetName(opts.SheetName)
	sheets := 0
	var sw *excelize.StreamWriter
	row := 0 // data rows on the current sheet
	// newSheet flushes the current sheet and starts the next with its header.
	newSheet := func() error {
		if sw != nil {
			if err := sw.Flush(); err != nil {
				return fmt.Errorf("sheet %d: %w", sheets, err)
			}
		}
		sheets++
		name := xlsxNumberedSheetName(base, sheets)
		if sheets == 1 {
			if err := f.SetSheetName("Sheet1", name); err != nil {
				return fmt.Errorf("sheet name %q: %w", name, err)
			}
		} else if _, err := f.NewSheet(name); err != nil {
			return fmt.Errorf("new sheet %q: %w", name, err)
		}
		var err error
		if sw, err = f.NewStreamWriter(name); err != nil {
			return fmt.Errorf("sheet %q: %w", name, err)
		}
		if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
			return err
		}
		header := make([]any, len(rr.cols))
		for i, c := range rr.cols {
			header[i] = excelize.Cell{StyleID: st.bold, Value: c.Name}
			if err := sw.SetColWidth(i+1, i+1, float64(widths[i])); err != nil {
				return err
			}
		}
		row = 0
		return sw.SetRow("A1", header)
	}
	put := func(cells []any) error {
		if row == sheetRows {
			if err := newSheet(); err != nil {
				return err
			}
		}
		row++
		ref, err := excelize.CoordinatesToCellName(1, row+1)
		if err != nil {
			return err
		}
		return sw.SetRow(ref, cells)
	}

	if err := newSheet(); err != nil {
		return err
	}
	for _, cells := range sample {
		if err := put(cells); err != nil {
			return err
		}
	}
	sample = nil
	cells := make([]any, len(rr.cols))
	for rr.next() {
		for i, v := range rr.vals {
			if cells[i], err = st.cellAt(rr, i, v); err != nil {
				return err
			}
		}
		if err := put(cells); err != nil {
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

// xlsxShownWidth is about how many characters a canonical value shows as in its cell
// (decimals with thousands separators and at least two places, dates as
// yyyy-mm-dd[ hh:mm:ss]).
func xlsxShownWidth(k kind, v any) int {
	if v == nil {
		return 0
	}
	switch k {
	case kindDecimal:
		s := v.(string)
		if strings.ContainsAny(s, "eE") {
			return len(s)
		}
		neg := 0
		if strings.HasPrefix(s, "-") {
			neg, s = 1, s[1:]
		}
		intDigits, places := len(s), 0
		if dot := strings.IndexByte(s, '.'); dot >= 0 {
			intDigits, places = dot, len(s)-dot-1
		}
		places = min(max(places, 2), 15)
		return neg + intDigits + (intDigits-1)/3 + 1 + places
	case kindDate:
		return len(time.DateOnly)
	case kindDateTime:
		return len(time.DateTime)
	case kindBool:
		return len("FALSE")
	case kindString:
		return utf8.RuneCountInString(v.(string))
	default:
		return utf8.RuneCountInString(textValue(k, v))
	}
}

// xlsxSheetName makes name a valid sheet name: the characters Excel forbids become
// "_", and it is cut to 31 UTF-16 units. Empty: "Result".
func xlsxSheetName(name string) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(name) {
		if strings.ContainsRune(`:\/?*[]`, r) || r == utf8.RuneError {
			r = '_'
		}
		b.WriteRune(r)
	}
	s := xlsxCut(b.String(), xlsxMaxSheetName)
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

// xlsxNumberedSheetName is the name of the n-th sheet of a result: base, then
// "base (2)", "base (3)", ..., base cut so the whole stays within 31 units.
func xlsxNumberedSheetName(base string, n int) string {
	if n <= 1 {
		return base
	}
	suffix := " (" + strconv.Itoa(n) + ")"
	return xlsxCut(base, xlsxMaxSheetName-len(suffix)) + suffix
}

// xlsxCut cuts s to at most units UTF-16 code units (how Excel counts a sheet name)
// without splitting a character.
func xlsxCut(s string, units int) string {
	n := 0
	for i, r := range s {
		u := 1
		if r > 0xffff {
			u = 2
		}
		if n+u > units {
			return s[:i]
		}
		n += u
	}
	return s
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

// cellAt is cell for column i of the reader's current row, refusing text that an Excel
// cell cannot hold, with the row (counted from 1, as the result's data rows) and column.
func (st *xlsxStyles) cellAt(rr *rowReader, i int, v any) (any, error) {
	c, err := st.cell(rr.kinds[i], v)
	if err != nil {
		return nil, err
	}
	if s, ok := c.(string); ok && len(s) > xlsxMaxCellChars {
		// Excel counts UTF-16 units; a byte count can only be larger, so it is the cheap
		// first look.
		if n := utf16Len(s); n > xlsxMaxCellChars {
			return nil, fmt.Errorf("%w: row %d, column %q: %d characters, an Excel cell holds at most %d; "+
				"save this result as csv or json instead", ErrCellTooLong, rr.n, rr.cols[i].Name, n, xlsxMaxCellChars)
		}
	}
	return c, nil
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
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
