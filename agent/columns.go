package agent

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"rpt/internal/source"
	"rpt/reportdefs"
)

// convertFunc turns one non-NULL value into the representation of a column's type.
type convertFunc func(v any) (any, error)

// applyColumnTypes applies a definition's `columns:` type overrides to the columns the
// source reports. Sources can't always know a column's type (SQLite types values, not
// expressions), so the definition says it, and each value is converted to match: the
// result store keeps types and values consistent. convert[i] is nil for columns without
// an override.
func applyColumnTypes(cols []source.Column, overrides map[string]source.Type) ([]source.Column, []convertFunc, error) {
	out := make([]source.Column, len(cols))
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
				name, columnNames(cols), reportdefs.ErrInvalid)
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

func columnNames(cols []source.Column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

func converter(t source.Type) (convertFunc, error) {
	switch t {
	case source.TypeInt:
		return toInt, nil
	case source.TypeDecimal:
		return toDecimal, nil
	case source.TypeFloat:
		return toFloat, nil
	case source.TypeString:
		return toString, nil
	case source.TypeBool:
		return toBool, nil
	case source.TypeDate:
		return toDate, nil
	case source.TypeDateTime:
		return toDateTime, nil
	case source.TypeBytes:
		return toBytes, nil
	}
	return nil, fmt.Errorf("unknown type %q: %w", t, reportdefs.ErrInvalid)
}

func cannot(v any, t source.Type) error {
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
	return nil, cannot(v, source.TypeInt)
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
	return nil, cannot(v, source.TypeDecimal)
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
	return nil, cannot(v, source.TypeFloat)
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
	return nil, cannot(v, source.TypeString)
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
	return nil, cannot(v, source.TypeBool)
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
	return nil, cannot(v, source.TypeDate)
}

// dateTimeLayouts are the shapes databases print datetimes in; without a zone, UTC.
var dateTimeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", time.DateOnly}

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
	return nil, cannot(v, source.TypeDateTime)
}

func toBytes(v any) (any, error) {
	switch x := v.(type) {
	case []byte:
		return x, nil
	case string:
		return []byte(x), nil
	}
	return nil, cannot(v, source.TypeBytes)
}
