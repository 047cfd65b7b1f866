package results

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	"rpt/internal/source"
)

// Formats are the output formats Render knows, in the order help text lists them.
var Formats = []string{"table", "csv", "tsv", "json", "yaml", "xlsx"}

// RenderOptions tune Render.
type RenderOptions struct {
	// MaxTableRows caps the table format (the only format that holds rows in memory,
	// to size its columns); a note line says how many rows were left out. 0: no cap.
	MaxTableRows int
	// TotalRows is the result's row count when the caller knows it (the job's rows),
	// so the table note need not read the rest of a large result to count it. 0: count.
	TotalRows int64
	// SheetName names the xlsx sheet; characters Excel forbids become "_" and it is cut
	// to 31 characters. Empty: "Result".
	SheetName string
	// Note, when set, says where and when the data was read; the xlsx format keeps it
	// in the workbook's document properties (Description and Subject), so the sheet's
	// columns stay the data's. The other formats leave it out (their stdout is data).
	Note string
}

// FormatFromPath picks the format from a file name's extension (.csv .json .yaml .yml
// .xlsx; .txt is the table); false when the extension names none.
func FormatFromPath(path string) (string, bool) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return "csv", true
	case ".tsv":
		return "tsv", true
	case ".json":
		return "json", true
	case ".yaml", ".yml":
		return "yaml", true
	case ".xlsx":
		return "xlsx", true
	case ".txt":
		return "table", true
	}
	return "", false
}

// Render writes rows to w in format. Every format but table streams, so memory stays
// flat whatever the size. Values must fit their column types (see source.Type); one
// that does not is an error naming the row and column. Render does not close rows.
func Render(ctx context.Context, w io.Writer, format string, rows source.Rows, opts RenderOptions) error {
	rr, err := newRowReader(ctx, rows)
	if err != nil {
		return fmt.Errorf("render %s: %w", format, err)
	}
	switch format {
	case "csv":
		err = renderCSV(w, rr)
	case "tsv":
		err = renderTSV(w, rr)
	case "json":
		err = renderJSON(w, rr)
	case "yaml":
		err = renderYAML(w, rr)
	case "table":
		err = renderTable(w, rr, opts)
	case "xlsx":
		err = renderXLSX(w, rr, opts)
	default:
		return fmt.Errorf("unknown output format %q (valid: %s)", format, strings.Join(Formats, ", "))
	}
	if err != nil {
		return fmt.Errorf("render %s: %w", format, err)
	}
	return nil
}

// rowReader hands renderers canonical values (see canonical) and checks ctx.
type rowReader struct {
	ctx   context.Context
	rows  source.Rows
	cols  []source.Column
	kinds []kind
	vals  []any
	n     int64
	err   error
}

func newRowReader(ctx context.Context, rows source.Rows) (*rowReader, error) {
	cols := rows.Columns()
	kinds, err := kindsOf(cols)
	if err != nil {
		return nil, err
	}
	return &rowReader{ctx: ctx, rows: rows, cols: cols, kinds: kinds, vals: make([]any, len(cols))}, nil
}

func (r *rowReader) next() bool {
	if r.err != nil {
		return false
	}
	if r.n%1024 == 0 {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			return false
		}
	}
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			r.err = fmt.Errorf("read rows: %w", err)
		}
		return false
	}
	r.n++
	src := r.rows.Values()
	if len(src) != len(r.cols) {
		r.err = fmt.Errorf("row %d: %d values for %d columns", r.n, len(src), len(r.cols))
		return false
	}
	for i, v := range src {
		cv, err := canonical(r.kinds[i], v)
		if err != nil {
			r.err = fmt.Errorf("row %d: column %q (%s): %w", r.n, r.cols[i].Name, r.cols[i].Type, err)
			return false
		}
		r.vals[i] = cv
	}
	return true
}

// textValue is a canonical value as text; NULL is empty.
func textValue(k kind, v any) string {
	if v == nil {
		return ""
	}
	switch k {
	case kindInt:
		return strconv.FormatInt(v.(int64), 10)
	case kindFloat:
		return string(appendFloat(nil, v.(float64)))
	case kindBool:
		return strconv.FormatBool(v.(bool))
	case kindBytes:
		return bytesText(v.([]byte))
	default:
		return v.(string)
	}
}

// appendFloat writes a float the way encoding/json does (plain digits in the usual
// range, an exponent outside it), and NaN, +Inf, -Inf by name.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.AppendFloat(b, f, 'e', -1, 64)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

func renderCSV(w io.Writer, rr *rowReader) error {
	cw := csv.NewWriter(w)
	record := make([]string, len(rr.cols))
	for i, c := range rr.cols {
		record[i] = c.Name
	}
	if err := cw.Write(record); err != nil {
		return err
	}
	for rr.next() {
		for i, v := range rr.vals {
			record[i] = textValue(rr.kinds[i], v)
		}
		if err := cw.Write(record); err != nil {
			return err
		}
	}
	if rr.err != nil {
		return rr.err
	}
	cw.Flush()
	return cw.Error()
}

// renderTSV writes tab-separated values for shell pipelines (awk -F'\t', cut): a
// header of column names, then one line per row, NULL empty. A line is always one row
// and a tab always separates columns, so no value may hold either: a backslash, tab,
// newline and carriage return in a value are written \\, \t, \n and \r (the text
// format of PostgreSQL's COPY and MySQL's LOAD DATA, which read it back exactly).
func renderTSV(w io.Writer, rr *rowReader) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var line []byte
	for i, c := range rr.cols {
		if i > 0 {
			line = append(line, '\t')
		}
		line = appendTSV(line, c.Name)
	}
	line = append(line, '\n')
	if _, err := bw.Write(line); err != nil {
		return err
	}
	for rr.next() {
		line = line[:0]
		for i, v := range rr.vals {
			if i > 0 {
				line = append(line, '\t')
			}
			line = appendTSV(line, textValue(rr.kinds[i], v))
		}
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	if rr.err != nil {
		return rr.err
	}
	return bw.Flush()
}

// appendTSV appends s with the four bytes TSV cannot carry escaped.
func appendTSV(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, c)
		}
	}
	return b
}

// renderJSON writes a JSON array with one object per line, keyed by column name:
// ints and decimals as numbers (decimals written from their exact text, so cents stay
// exact), dates and datetimes as strings, NULL as null, bytes as "0x..." strings and
// non-finite floats as "NaN", "+Inf", "-Inf" strings.
func renderJSON(w io.Writer, rr *rowReader) error {
	bw := bufio.NewWriterSize(w, 64*1024)
	keys := make([][]byte, len(rr.cols))
	for i, c := range rr.cols {
		keys[i] = append(appendQuoted(nil, c.Name, false), ':')
	}
	var b []byte
	first := true
	for rr.next() {
		b = b[:0]
		if first {
			b = append(b, "[\n{"...)
			first = false
		} else {
			b = append(b, ",\n{"...)
		}
		for i, v := range rr.vals {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, keys[i]...)
			b = appendJSONValue(b, rr.kinds[i], v)
		}
		b = append(b, '}')
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	if rr.err != nil {
		return rr.err
	}
	end := "\n]\n"
	if first {
		end = "[]\n"
	}
	if _, err := bw.WriteString(end); err != nil {
		return err
	}
	return bw.Flush()
}

func appendJSONValue(b []byte, k kind, v any) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	switch k {
	case kindInt:
		return strconv.AppendInt(b, v.(int64), 10)
	case kindDecimal:
		return append(b, v.(string)...) // checked by canonical: JSON number syntax
	case kindFloat:
		f := v.(float64)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return appendQuoted(b, string(appendFloat(nil, f)), false)
		}
		return appendFloat(b, f)
	case kindBool:
		return strconv.AppendBool(b, v.(bool))
	case kindBytes:
		return appendQuoted(b, bytesText(v.([]byte)), false)
	default:
		return appendQuoted(b, v.(string), false)
	}
}

// appendQuoted appends s as a JSON string, which is also a YAML double-quoted scalar.
// For YAML (forYAML) it also escapes DEL, C1 controls and the BOM, which YAML does not
// allow raw. Invalid UTF-8 becomes U+FFFD.
func appendQuoted(b []byte, s string, forYAML bool) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || (forYAML && c == 0x7f):
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029' || (forYAML && ((r >= 0x80 && r <= 0x9f) || r == 0xfeff)):
			b = append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// renderYAML writes a YAML list of maps, one map per row, keys in column order:
// numbers plain, dates and datetimes as YAML timestamps, NULL as null, strings plain
// when that cannot be read as anything else and double-quoted otherwise.
func renderYAML(w io.Writer, rr *rowReader) error {
	bw := bufio.NewWriterSize(w, 64*1024)
	keys := make([][]byte, len(rr.cols))
	for i, c := range rr.cols {
		keys[i] = append(appendYAMLString(nil, c.Name), ':', ' ')
	}
	var b []byte
	first := true
	for rr.next() {
		first = false
		b = b[:0]
		if len(rr.cols) == 0 {
			b = append(b, "- {}\n"...)
		}
		for i, v := range rr.vals {
			if i == 0 {
				b = append(b, "- "...)
			} else {
				b = append(b, "  "...)
			}
			b = append(b, keys[i]...)
			b = appendYAMLValue(b, rr.kinds[i], v)
			b = append(b, '\n')
		}
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	if rr.err != nil {
		return rr.err
	}
	if first {
		if _, err := bw.WriteString("[]\n"); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func appendYAMLValue(b []byte, k kind, v any) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	switch k {
	case kindInt:
		return strconv.AppendInt(b, v.(int64), 10)
	case kindDecimal, kindDate, kindDateTime:
		return append(b, v.(string)...) // checked by canonical
	case kindFloat:
		f := v.(float64)
		switch {
		case math.IsNaN(f):
			return append(b, ".nan"...)
		case math.IsInf(f, 1):
			return append(b, ".inf"...)
		case math.IsInf(f, -1):
			return append(b, "-.inf"...)
		}
		return appendFloat(b, f)
	case kindBool:
		return strconv.AppendBool(b, v.(bool))
	case kindBytes:
		return appendQuoted(b, bytesText(v.([]byte)), true)
	default:
		return appendYAMLString(b, v.(string))
	}
}

// appendYAMLString writes s plain when no YAML reader could take it for anything but
// that string (a letter first, then letters, digits, spaces and a few punctuation
// marks, and no YAML 1.1 boolean or null word); otherwise double-quoted.
func appendYAMLString(b []byte, s string) []byte {
	if yamlPlainSafe(s) {
		return append(b, s...)
	}
	return appendQuoted(b, s, true)
}

func yamlPlainSafe(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
		case i > 0 && (r >= '0' && r <= '9' || r == ' ' || r == '.' || r == '-' || r == '/' || r == '(' || r == ')'):
		case r >= utf8.RuneSelf && (unicode.IsLetter(r) || (i > 0 && unicode.IsDigit(r))):
		default:
			return false
		}
	}
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "true", "false", "on", "off", "null":
		return false
	}
	return true
}

// EscapeControl makes a value safe to show on a terminal: control characters (C0, DEL,
// C1, so ESC sequences cannot move the cursor, recolour or retitle the terminal), the
// invisible bidirectional and line-separator marks that reorder or break what is shown,
// and invalid UTF-8 are written as Go-style escapes (\n, \t, \x1b, \u202e). Every other
// character, backslash included, is left as it is: this is for display, and csv, json
// and yaml carry the exact value.
func EscapeControl(s string) string {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if displayUnsafe(r, size) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s
	}
	b := make([]byte, 0, len(s)+16)
	b = append(b, s[:i]...)
	const hexDigits = "0123456789abcdef"
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !displayUnsafe(r, size) {
			b = append(b, s[i:i+size]...)
			i += size
			continue
		}
		switch {
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case size == 1: // an ASCII control, or a byte that is not UTF-8
			b = append(b, '\\', 'x', hexDigits[s[i]>>4], hexDigits[s[i]&15])
		default:
			b = append(b, `\u`...)
			b = append(b, hexDigits[r>>12&15], hexDigits[r>>8&15], hexDigits[r>>4&15], hexDigits[r&15])
		}
		i += size
	}
	return string(b)
}

// displayUnsafe reports whether a decoded rune (size bytes) must be escaped for a terminal.
func displayUnsafe(r rune, size int) bool {
	switch {
	case r == utf8.RuneError && size <= 1:
		return true
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x2028, r == 0x2029:
		return true
	}
	return false
}

// renderTable writes an aligned text table, numbers right-aligned, NULL empty. It
// holds the rows it shows (to size the columns), so MaxTableRows caps it.
func renderTable(w io.Writer, rr *rowReader, opts RenderOptions) error {
	header := make([]any, len(rr.cols))
	align := make(tw.Alignment, len(rr.cols))
	for i, c := range rr.cols {
		header[i] = EscapeControl(c.Name)
		align[i] = tw.AlignLeft
		switch rr.kinds[i] {
		case kindInt, kindDecimal, kindFloat:
			align[i] = tw.AlignRight
		}
	}
	table := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off), // show column names as they are
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
		tablewriter.WithAlignment(align),
	)
	table.Header(header...)
	var shown int64
	capped := false
	for rr.next() {
		if opts.MaxTableRows > 0 && shown >= int64(opts.MaxTableRows) {
			capped = true
			break
		}
		cells := make([]string, len(rr.cols))
		for i, v := range rr.vals {
			cells[i] = EscapeControl(textValue(rr.kinds[i], v))
		}
		if err := table.Append(cells); err != nil {
			return err
		}
		shown++
	}
	if rr.err != nil {
		return rr.err
	}
	if err := table.Render(); err != nil {
		return err
	}
	if !capped {
		return nil
	}
	total := opts.TotalRows
	if total <= 0 {
		// Count the rest without converting it: the row that stopped the loop plus
		// whatever remains.
		total = shown + 1
		for rr.rows.Next() {
			total++
		}
		if err := rr.rows.Err(); err != nil {
			return fmt.Errorf("count rows: %w", err)
		}
	}
	noun := "rows"
	if total-shown == 1 {
		noun = "row"
	}
	_, err := fmt.Fprintf(w, "%d more %s not shown (%d in all); use --csv to get them all\n", total-shown, noun, total)
	return err
}
