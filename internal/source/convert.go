package source

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Convert turns v into the carrier of type t (see Type): what a driver returned for a
// column (rows.go) and what a definition's columns: override asks of a value
// (retype.go) go through this one function, so a value converts the same way whichever
// path it takes. NULL (nil) stays nil. Text is trimmed before it is read as a number,
// boolean or date; decimals stay exact text and never pass through float64 unless the
// source already held a float (SQLite REAL in a DECIMAL column). A value that does not
// fit is an error naming its Go type, value and the wanted type.
func Convert(t Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if b, ok := v.([]byte); ok && t != TypeBytes && t != TypeBool {
		// Text protocols (MySQL without binary rows, SQLite TEXT read as bytes) carry
		// every type as bytes; read them as the text they are. BIT(1) is handled by
		// the bool case.
		v = string(b)
	}
	switch t {
	case TypeInt:
		return toInt(v)
	case TypeDecimal:
		return toDecimal(v)
	case TypeFloat:
		return toFloat(v)
	case TypeString:
		return toString(v)
	case TypeBool:
		return toBool(v)
	case TypeDate:
		return toDate(v)
	case TypeDateTime:
		return toDateTime(v)
	case TypeBytes:
		switch x := v.(type) {
		case []byte:
			return append([]byte(nil), x...), nil // the driver reuses its buffer
		case string:
			return []byte(x), nil
		}
		return nil, cannot(v, t)
	}
	return nil, fmt.Errorf("unknown type %q: %w", t, ErrConvert)
}

// knownType reports whether t is one of the Type constants.
func knownType(t Type) bool {
	switch t {
	case TypeInt, TypeDecimal, TypeFloat, TypeString, TypeBool, TypeDate, TypeDateTime, TypeBytes:
		return true
	}
	return false
}

func cannot(v any, t Type) error {
	if s, ok := v.(string); ok {
		return fmt.Errorf("cannot convert string value %.60s to %s", s, t)
	}
	return fmt.Errorf("cannot convert %T value %v to %s", v, v, t)
}

func toInt(v any) (any, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case int:
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			// Unsigned BIGINT above MaxInt64: an error rather than a silent wrap.
			return nil, fmt.Errorf("integer %d overflows int64", x)
		}
		return int64(x), nil
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
	case float32:
		if f := float64(x); !math.IsInf(f, 0) && !math.IsNaN(f) {
			return strconv.FormatFloat(f, 'f', -1, 32), nil
		}
	case string:
		if s := strings.TrimSpace(x); isDecimal(s) {
			if len(s) == len(x) {
				return v, nil
			}
			return s, nil
		}
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
	case float32:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return f, nil
		}
	}
	return nil, cannot(v, TypeFloat)
}

func toString(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return v, nil // the value as it came: boxing x again would allocate
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case time.Time:
		// TIME columns (MySQL without parseTime, SQL Server time) and dates typed as text.
		if x.Year() <= 1 && x.YearDay() == 1 {
			return x.Format("15:04:05.999999999"), nil
		}
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
	case []byte:
		if len(x) == 1 && (x[0] == 0 || x[0] == 1) { // MySQL BIT(1)
			return x[0] == 1, nil
		}
		return toBool(string(x))
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
			return b, nil
		}
	}
	return nil, cannot(v, TypeBool)
}

func toDate(v any) (any, error) {
	switch x := v.(type) {
	case time.Time:
		return dateText(x), nil
	case string:
		// A date, or a date-time whose date part is taken.
		s := strings.TrimSpace(x)
		if len(s) >= 10 && IsDate(s[:10]) && (len(s) == 10 || s[10] == 'T' || s[10] == ' ') {
			if len(s) == len(x) && len(s) == 10 {
				return v, nil
			}
			return s[:10], nil
		}
	}
	return nil, cannot(v, TypeDate)
}

// dateText is t.Format(time.DateOnly) without the layout interpreter (a report's dates
// are formatted once per row). Years outside 0-9999 take the general path.
func dateText(t time.Time) string {
	y, m, d := t.Date()
	if y < 0 || y > 9999 {
		return t.Format(time.DateOnly)
	}
	b := [10]byte{byte('0' + y/1000), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-',
		byte('0' + int(m)/10), byte('0' + int(m)%10), '-', byte('0' + d/10), byte('0' + d%10)}
	return string(b[:])
}

// IsDate reports whether s is a date YYYY-MM-DD that exists (what time.Parse with
// time.DateOnly accepts), without the layout interpreter.
func IsDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	num := func(t string) (int, bool) {
		n := 0
		for i := 0; i < len(t); i++ {
			if t[i] < '0' || t[i] > '9' {
				return 0, false
			}
			n = n*10 + int(t[i]-'0')
		}
		return n, true
	}
	y, ok1 := num(s[:4])
	m, ok2 := num(s[5:7])
	d, ok3 := num(s[8:])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 {
		return false
	}
	days := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 2 && y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		days = 29
	}
	return d <= days
}

var dateTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	time.DateOnly,
}

// toDateTime reads the text forms SQLite and the MySQL text protocol use; a time
// without a zone is UTC, because queue and warehouse times are stored in UTC. An
// integer is Unix seconds (SQLite's other way of keeping a time).
func toDateTime(v any) (any, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case int64:
		return time.Unix(x, 0).UTC().Format(time.RFC3339Nano), nil
	case string:
		s := strings.TrimSpace(x)
		if len(s) > 10 && s[10] == ' ' && s[len(s)-1] >= '0' && s[len(s)-1] <= '9' {
			// MySQL's text protocol ("2006-01-02 15:04:05[.f]"): the zone-less layout
			// first, which the layouts before it in the list could not have read (they
			// want a 'T' or a zone), so the result is the same without two failed parses.
			if t, err := time.Parse("2006-01-02 15:04:05.999999999", s); err == nil {
				return t.UTC().Format(time.RFC3339Nano), nil
			}
		}
		for _, layout := range dateTimeLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC().Format(time.RFC3339Nano), nil
			}
		}
	}
	return nil, cannot(v, TypeDateTime)
}
