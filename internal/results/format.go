// Package results stores the rows of a run as a result set and renders result sets in
// the output formats users ask for (table, csv, json, yaml, xlsx).
//
// A result set is a sequence of chunks kept by a Store (the queue database by
// default), keyed by (job, attempt, seq). A Writer buffers at most one chunk, so memory
// stays flat whatever the size of the result; a reader pulls one chunk at a time.
//
// # Chunk format, version 1
//
// Every chunk is a gzip stream (fast level; the CRC catches a damaged chunk). Its
// decompressed payload is a run of rows; chunk 0 starts with a header:
//
//	header = "RPTR" version:byte(1) ncols:uvarint { name:str type:str }*ncols
//	row    = value*ncols          (rows run to the end of the payload)
//	value  = 0x00                 NULL, whatever the column type
//	       | 0x01 body            a value, its body depending on the column type:
//	           int                 zigzag varint (encoding/binary AppendVarint)
//	           float               8 bytes, IEEE 754 bits, little endian
//	           bool                1 byte, 0 or 1
//	           decimal, string,
//	           date, datetime,
//	           bytes               str
//	str    = len:uvarint bytes
//
// Decimals stay exact decimal strings ("-12345678901234567.89"), dates "YYYY-MM-DD",
// datetimes RFC 3339, as source.Type describes. Types are stored by name, so a reader
// rejects a column type it does not know instead of misreading it. A new layout gets a
// new version byte; readers keep reading the old ones.
package results

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"rpt/internal/source"
)

// formatMagic and formatVersion open chunk 0.
const (
	formatMagic   = "RPTR"
	formatVersion = 1
)

// Value tags.
const (
	tagNull  = 0
	tagValue = 1
)

// kind is a column type resolved once, so the per-value code switches on a small int
// instead of comparing type names.
type kind uint8

const (
	kindInt kind = iota
	kindDecimal
	kindFloat
	kindString
	kindBool
	kindDate
	kindDateTime
	kindBytes
)

func kindOf(t source.Type) (kind, bool) {
	switch t {
	case source.TypeInt:
		return kindInt, true
	case source.TypeDecimal:
		return kindDecimal, true
	case source.TypeFloat:
		return kindFloat, true
	case source.TypeString:
		return kindString, true
	case source.TypeBool:
		return kindBool, true
	case source.TypeDate:
		return kindDate, true
	case source.TypeDateTime:
		return kindDateTime, true
	case source.TypeBytes:
		return kindBytes, true
	}
	return 0, false
}

// kindsOf resolves the columns' types. An unknown type is an error naming the column.
func kindsOf(cols []source.Column) ([]kind, error) {
	kinds := make([]kind, len(cols))
	for i, c := range cols {
		k, ok := kindOf(c.Type)
		if !ok {
			return nil, fmt.Errorf("column %q: unknown type %q", c.Name, c.Type)
		}
		kinds[i] = k
	}
	return kinds, nil
}

// canonical converts v to the Go type the column type carries (int64, string, float64,
// bool or []byte; nil for NULL), accepting the near types drivers hand out (other int
// widths, []byte text, time.Time for dates). Decimal, date and datetime text is checked
// here, so every stored value renders as what its type says.
func canonical(k kind, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch k {
	case kindInt:
		switch x := v.(type) {
		case int64:
			return v, nil
		case int:
			return int64(x), nil
		case int32:
			return int64(x), nil
		case int16:
			return int64(x), nil
		case int8:
			return int64(x), nil
		case uint8:
			return int64(x), nil
		case uint16:
			return int64(x), nil
		case uint32:
			return int64(x), nil
		case uint64:
			if x > math.MaxInt64 {
				return nil, fmt.Errorf("value %d overflows int64", x)
			}
			return int64(x), nil
		case []byte:
			n, err := strconv.ParseInt(string(x), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("value %q is not an integer", x)
			}
			return n, nil
		}
	case kindDecimal:
		switch x := v.(type) {
		case string:
			if !isDecimal(x) {
				return nil, fmt.Errorf("value %q is not a decimal number", x)
			}
			return v, nil
		case []byte:
			if !isDecimal(string(x)) {
				return nil, fmt.Errorf("value %q is not a decimal number", x)
			}
			return string(x), nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		case int:
			return strconv.Itoa(x), nil
		case float64:
			// A report that computes money in floating point gets what it computed; the
			// shortest text that reads back as the same float hides nothing.
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("value %v is not a decimal number", x)
			}
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		}
	case kindFloat:
		switch x := v.(type) {
		case float64:
			return v, nil
		case float32:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case int:
			return float64(x), nil
		case []byte:
			f, err := strconv.ParseFloat(string(x), 64)
			if err != nil {
				return nil, fmt.Errorf("value %q is not a number", x)
			}
			return f, nil
		}
	case kindString:
		switch x := v.(type) {
		case string:
			return v, nil
		case []byte:
			return string(x), nil
		}
	case kindBool:
		switch x := v.(type) {
		case bool:
			return v, nil
		case int64:
			// TINYINT(1) and SQLite integers carry booleans.
			if x == 0 || x == 1 {
				return x == 1, nil
			}
			return nil, fmt.Errorf("value %d is not a boolean (0 or 1)", x)
		}
	case kindDate:
		switch x := v.(type) {
		case string:
			if !isDate(x) {
				return nil, fmt.Errorf("value %q is not a date YYYY-MM-DD", x)
			}
			return v, nil
		case []byte:
			if !isDate(string(x)) {
				return nil, fmt.Errorf("value %q is not a date YYYY-MM-DD", x)
			}
			return string(x), nil
		case time.Time:
			return x.Format(time.DateOnly), nil
		}
	case kindDateTime:
		switch x := v.(type) {
		case string:
			if !isDateTime(x) {
				return nil, fmt.Errorf("value %q is not an RFC 3339 datetime", x)
			}
			return v, nil
		case []byte:
			if !isDateTime(string(x)) {
				return nil, fmt.Errorf("value %q is not an RFC 3339 datetime", x)
			}
			return string(x), nil
		case time.Time:
			return x.UTC().Format(time.RFC3339Nano), nil
		}
	case kindBytes:
		switch x := v.(type) {
		case []byte:
			return v, nil
		case string:
			return []byte(x), nil
		}
	}
	return nil, fmt.Errorf("value of Go type %T does not fit the column type", v)
}

// isDecimal reports whether s is a decimal number in JSON number syntax, so it can be
// written into JSON as it is and parsed by every consumer.
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}

func isDate(s string) bool { return source.IsDate(s) }

func isDateTime(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// appendHeader appends the chunk-0 header.
func appendHeader(b []byte, cols []source.Column) []byte {
	b = append(b, formatMagic...)
	b = append(b, formatVersion)
	b = binary.AppendUvarint(b, uint64(len(cols)))
	for _, c := range cols {
		b = appendStr(b, c.Name)
		b = appendStr(b, string(c.Type))
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendValue appends one canonical value (as canonical returns it) of kind k.
func appendValue(b []byte, k kind, v any) []byte {
	if v == nil {
		return append(b, tagNull)
	}
	b = append(b, tagValue)
	switch k {
	case kindInt:
		return binary.AppendVarint(b, v.(int64))
	case kindFloat:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.(float64)))
	case kindBool:
		if v.(bool) {
			return append(b, 1)
		}
		return append(b, 0)
	case kindBytes:
		x := v.([]byte)
		b = binary.AppendUvarint(b, uint64(len(x)))
		return append(b, x...)
	default:
		return appendStr(b, v.(string))
	}
}

var errCorrupt = errors.New("corrupt result chunk")

// decoder reads values from one decompressed chunk payload.
type decoder struct {
	buf []byte
	pos int
}

func (d *decoder) more() bool { return d.pos < len(d.buf) }

func (d *decoder) byte() (byte, error) {
	if d.pos >= len(d.buf) {
		return 0, errCorrupt
	}
	c := d.buf[d.pos]
	d.pos++
	return c, nil
}

func (d *decoder) uvarint() (uint64, error) {
	n, size := binary.Uvarint(d.buf[d.pos:])
	if size <= 0 {
		return 0, errCorrupt
	}
	d.pos += size
	return n, nil
}

// raw returns the next length-prefixed byte string, aliasing the chunk buffer.
func (d *decoder) raw() ([]byte, error) {
	n, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.buf)-d.pos) {
		return nil, errCorrupt
	}
	s := d.buf[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return s, nil
}

func (d *decoder) header() ([]source.Column, []kind, error) {
	if len(d.buf) < len(formatMagic)+1 || string(d.buf[:len(formatMagic)]) != formatMagic {
		return nil, nil, fmt.Errorf("%w: no result header", errCorrupt)
	}
	d.pos = len(formatMagic)
	if v := d.buf[d.pos]; v != formatVersion {
		return nil, nil, fmt.Errorf("result format version %d is not supported (this rpt reads version %d)", v, formatVersion)
	}
	d.pos++
	n, err := d.uvarint()
	if err != nil {
		return nil, nil, err
	}
	// Every column takes at least two bytes, which bounds a corrupt count.
	if n > uint64(len(d.buf)-d.pos)/2 {
		return nil, nil, errCorrupt
	}
	cols := make([]source.Column, n)
	for i := range cols {
		name, err := d.raw()
		if err != nil {
			return nil, nil, err
		}
		typ, err := d.raw()
		if err != nil {
			return nil, nil, err
		}
		cols[i] = source.Column{Name: string(name), Type: source.Type(typ)}
	}
	kinds, err := kindsOf(cols)
	if err != nil {
		return nil, nil, fmt.Errorf("result header: %w", err)
	}
	return cols, kinds, nil
}

// value decodes one value of kind k. Strings and bytes are copied out of the buffer,
// which the next chunk overwrites.
func (d *decoder) value(k kind) (any, error) {
	tag, err := d.byte()
	if err != nil {
		return nil, err
	}
	switch tag {
	case tagNull:
		return nil, nil
	case tagValue:
	default:
		return nil, errCorrupt
	}
	switch k {
	case kindInt:
		n, size := binary.Varint(d.buf[d.pos:])
		if size <= 0 {
			return nil, errCorrupt
		}
		d.pos += size
		return n, nil
	case kindFloat:
		if len(d.buf)-d.pos < 8 {
			return nil, errCorrupt
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(d.buf[d.pos:]))
		d.pos += 8
		return f, nil
	case kindBool:
		c, err := d.byte()
		if err != nil {
			return nil, err
		}
		if c > 1 {
			return nil, errCorrupt
		}
		return c == 1, nil
	case kindBytes:
		s, err := d.raw()
		if err != nil {
			return nil, err
		}
		return append([]byte{}, s...), nil
	default:
		s, err := d.raw()
		if err != nil {
			return nil, err
		}
		return string(s), nil
	}
}

// bytesText is how bytes show in text formats: 0x and hex, as SQL tools show binary.
func bytesText(b []byte) string {
	return "0x" + hex.EncodeToString(b)
}
