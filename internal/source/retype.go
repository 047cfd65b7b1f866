package source

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// convertFunc turns one non-NULL value into the representation of a column's type.
type convertFunc func(v any) (any, error)

// ErrConvert marks a value that does not fit the type a definition's columns: gives
// its column, or an override naming no column: retrying will not help.
var ErrConvert = errors.New("column type")

// Retype wraps rows so that the columns named in types report that type and their
// values are converted to it (see applyColumnTypes). A value that does not convert ends
// the stream with an error wrapping ErrConvert that names the row and the column.
func Retype(rows Rows, types map[string]Type) (Rows, error) {
	cols, convert, err := applyColumnTypes(rows.Columns(), types)
	if err != nil {
		return nil, err
	}
	if len(types) == 0 {
		return rows, nil
	}
	return &retyped{Rows: rows, cols: cols, convert: convert, row: make([]any, len(cols))}, nil
}

type retyped struct {
	Rows
	cols    []Column
	convert []convertFunc
	row     []any
	n       int64
	err     error
}

func (r *retyped) Columns() []Column { return r.cols }
func (r *retyped) Values() []any     { return r.row }

func (r *retyped) Next() bool {
	if r.err != nil || !r.Rows.Next() {
		return false
	}
	r.n++
	copy(r.row, r.Rows.Values())
	for i, conv := range r.convert {
		if conv == nil || r.row[i] == nil {
			continue
		}
		v, err := conv(r.row[i])
		if err != nil {
			r.err = fmt.Errorf("row %d column %q: %w: %w", r.n, r.cols[i].Name, err, ErrConvert)
			return false
		}
		r.row[i] = v
	}
	return true
}

func (r *retyped) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.Rows.Err()
}

// applyColumnTypes applies a definition's `columns:` type overrides to the columns the
// source reports. Sources can't always know a column's type (SQLite types values, not
// expressions), so the definition says it, and each value is converted to match: the
// result store keeps types and values consistent. convert[i] is nil for columns without
// an override.
func applyColumnTypes(cols []Column, overrides map[string]Type) ([]Column, []convertFunc, error) {
	out := make([]Column, len(cols))
	copy(out, cols)
	convert := make([]convertFunc, len(cols))
	if len(overrides) == 0 {
		return out, convert, nil
	}
	index := make(map[string]int, len(cols))
	for i, c := range cols {
		index[c.Name] = i
	}
	names := make([]string, 0, len(overrides))
	for name := range overrides {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		typ := overrides[name]
		i, ok := index[name]
		if !ok {
			return nil, nil, fmt.Errorf("columns: %q is not a column of the result (columns: %s): %w",
				name, columnNames(cols), ErrConvert)
		}
		conv, err := converter(typ)
		if err != nil {
			return nil, nil, fmt.Errorf("columns: %q: %w", name, err)
		}
		out[i].Type = typ
		convert[i] = conv
	}
	return out, convert, nil
}

func columnNames(cols []Column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

func converter(t Type) (convertFunc, error) {
	switch t {
	case TypeInt:
		return toInt, nil
	case TypeDecimal:
		return toDecimal, nil
	case TypeFloat:
		return toFloat, nil
	case TypeString:
		return toString, nil
	case TypeBool:
		return toBool, nil
	case TypeDate:
		return toDate, nil
	case TypeDateTime:
		return toDateTime, nil
	case TypeBytes:
		return toBytes, nil
	}
	return nil, fmt.Errorf("unknown type %q: %w", t, ErrConvert)
}

func cannot(v any, t Type) error {
	return fmt.Errorf("cannot convert %T value %v to %s", v, v, t)
}

func toInt(v any) (any, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), nil
		}
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			return n, nil
		}
	case []byte:
		return toInt(string(x))
	}
	return nil, cannot(v, TypeInt)
}

func toDecimal(v any) (any, error) {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		if !math.IsInf(x, 0) && !math.IsNaN(x) {
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		}
	case string:
		if s := strings.TrimSpace(x); isDecimal(s) {
			return s, nil
		}
	case []byte:
		return toDecimal(string(x))
	}
	return nil, cannot(v, TypeDecimal)
}

// isDecimal accepts an optional sign, digits, and an optional fraction.
func isDecimal(s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" && (!hasDot || frac == "") {
		return false
	}
	for _, part := range []string{intPart, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

func toFloat(v any) (any, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return f, nil
		}
	case []byte:
		return toFloat(string(x))
	}
	return nil, cannot(v, TypeFloat)
}

func toString(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	}
	return nil, cannot(v, TypeString)
}

func toBool(v any) (any, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int64:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
			return b, nil
		}
	case []byte:
		return toBool(string(x))
	}
	return nil, cannot(v, TypeBool)
}

func toDate(v any) (any, error) {
	switch x := v.(type) {
	case time.Time:
		return x.Format(time.DateOnly), nil
	case string:
		s := strings.TrimSpace(x)
		if len(s) >= 10 {
			if _, err := time.Parse(time.DateOnly, s[:10]); err == nil && (len(s) == 10 || s[10] == 'T' || s[10] == ' ') {
				return s[:10], nil
			}
		}
	case []byte:
		return toDate(string(x))
	}
	return nil, cannot(v, TypeDate)
}

func toDateTime(v any) (any, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case string:
		s := strings.TrimSpace(x)
		for _, layout := range dateTimeLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC().Format(time.RFC3339Nano), nil
			}
		}
	case []byte:
		return toDateTime(string(x))
	}
	return nil, cannot(v, TypeDateTime)
}

func toBytes(v any) (any, error) {
	switch x := v.(type) {
	case []byte:
		return x, nil
	case string:
		return []byte(x), nil
	}
	return nil, cannot(v, TypeBytes)
}
