package reportdefs

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"rpt/internal/didyoumean"
)

// Parameter base types. A list type is written list<T> with T one of these.
const (
	TypeInt     = "int"
	TypeDecimal = "decimal"
	TypeString  = "string"
	TypeBool    = "bool"
	TypeDate    = "date"
	TypePeriod  = "period"
	TypeEnum    = "enum"
)

var baseTypes = []string{TypeInt, TypeDecimal, TypeString, TypeBool, TypeDate, TypePeriod, TypeEnum}

const typeWant = "want int, decimal, string, bool, date, period, enum, list<T>"

// knownTypes lists every type a definition may write, for "did you mean" advice.
func knownTypes() []string {
	out := slices.Clone(baseTypes)
	for _, t := range baseTypes {
		out = append(out, "list<"+t+">")
	}
	return out
}

// Param is one declared parameter.
type Param struct {
	Name        string
	Type        string // as written: "period", "list<int>"
	Title       string
	Description string
	Values      []string // enum values (also for list<enum>)
	// Default is the default as written (a list default joined with commas); it may be a
	// relative word such as last-month. HasDefault tells an empty default from none.
	Default    string
	HasDefault bool
	// Required is true unless the definition says `required: false`; an optional
	// parameter without a default binds NULL.
	Required bool
	Line     int
}

// List reports whether the parameter is a list<T>.
func (p *Param) List() bool { return strings.HasPrefix(p.Type, "list<") }

// Elem returns the base type: T for list<T>, else the type itself.
func (p *Param) Elem() string {
	if e, ok := strings.CutPrefix(p.Type, "list<"); ok {
		return strings.TrimSuffix(e, ">")
	}
	return p.Type
}

// validType returns the base type of t, or "" when t is not a known type.
func validType(t string) (elem string, list bool, ok bool) {
	if e, isList := strings.CutPrefix(t, "list<"); isList {
		e, closed := strings.CutSuffix(e, ">")
		if !closed || !slices.Contains(baseTypes, e) {
			return "", true, false
		}
		return e, true, true
	}
	return t, false, slices.Contains(baseTypes, t)
}

var (
	decimalRE  = regexp.MustCompile(`^([+-]?)([0-9]*)(?:\.([0-9]*))?$`)
	relDaysRE  = regexp.MustCompile(`^([+-])([0-9]{1,5})([dm])$`)
	periodRE   = regexp.MustCompile(`^([0-9]{4})-?([0-9]{2})$`)
	intValueRE = regexp.MustCompile(`^[+-]?[0-9]+$`)
	dateRE     = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
)

// relativeDay turns a relative word into a day in loc at now. monthStart says whether
// the word names a month (this-month, last-month, -Nm), whose first day it returns.
func relativeDay(word string, now time.Time) (day time.Time, isMonth bool, ok bool) {
	y, m, d := now.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	switch word {
	case "today":
		return today, false, true
	case "yesterday":
		return today.AddDate(0, 0, -1), false, true
	case "this-month":
		return first, true, true
	case "last-month":
		return first.AddDate(0, -1, 0), true, true
	}
	mm := relDaysRE.FindStringSubmatch(word)
	if mm == nil {
		return time.Time{}, false, false
	}
	n, _ := strconv.Atoi(mm[2])
	if mm[1] == "-" {
		n = -n
	}
	if mm[3] == "d" {
		return today.AddDate(0, 0, n), false, true
	}
	return first.AddDate(0, n, 0), true, true
}

// relativeYear keeps a relative word inside the years a date or period can be written
// in (1000-9999), so "-99999m" is refused at submit, not by the agent later.
func relativeYear(word string, day time.Time) error {
	if y := day.Year(); y < 1000 || y > 9999 {
		return fmt.Errorf("%s lands in year %d (want 1000-9999)", word, y)
	}
	return nil
}

// monthsBack moves a day by n months, clamping to the last day of the target month
// (so -1m from 31 March is 28/29 February, not 3 March).
func monthsBack(now time.Time, n int) time.Time {
	y, m, d := now.Date()
	first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).AddDate(0, n, 0)
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(d, last)-1)
}

// scalarValue parses one value of base type t (never a list) into its canonical
// JSON-ready form: int64 for int and period, string for decimal/string/date/enum, bool.
func scalarValue(t string, values []string, s string, now time.Time) (any, error) {
	switch t {
	case TypeInt:
		if !intValueRE.MatchString(s) {
			return nil, fmt.Errorf("want an integer")
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("integer out of range")
		}
		return v, nil
	case TypeDecimal:
		return canonicalDecimal(s)
	case TypeString:
		return s, nil
	case TypeBool:
		switch strings.ToLower(s) {
		case "true", "yes", "1", "on":
			return true, nil
		case "false", "no", "0", "off":
			return false, nil
		}
		return nil, fmt.Errorf("want true or false")
	case TypeDate:
		if day, _, ok := relativeDay(s, now); ok {
			if mm := relDaysRE.FindStringSubmatch(s); mm != nil && mm[3] == "m" {
				n, _ := strconv.Atoi(mm[2])
				if mm[1] == "-" {
					n = -n
				}
				day = monthsBack(now, n)
			}
			if err := relativeYear(s, day); err != nil {
				return nil, err
			}
			return day.Format(time.DateOnly), nil
		}
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			if msg := dayNotInMonth(s); msg != "" {
				return nil, fmt.Errorf("%s", msg)
			}
			return nil, fmt.Errorf("want YYYY-MM-DD or today, yesterday, this-month, last-month, -Nd, -Nm")
		}
		return d.Format(time.DateOnly), nil
	case TypePeriod:
		if day, _, ok := relativeDay(s, now); ok {
			if err := relativeYear(s, day); err != nil {
				return nil, err
			}
			return int64(day.Year()*100 + int(day.Month())), nil
		}
		mm := periodRE.FindStringSubmatch(s)
		if mm == nil {
			return nil, fmt.Errorf("want YYYYMM or today, yesterday, this-month, last-month, -Nm, -Nd")
		}
		y, _ := strconv.Atoi(mm[1])
		m, _ := strconv.Atoi(mm[2])
		if m < 1 || m > 12 {
			return nil, fmt.Errorf("month %02d is not 01-12", m)
		}
		if y < 1000 {
			return nil, fmt.Errorf("want a four-digit year")
		}
		return int64(y*100 + m), nil
	case TypeEnum:
		if !slices.Contains(values, s) {
			return nil, fmt.Errorf("%s", didyoumean.Append("want one of "+strings.Join(values, ", "), s, values))
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown type %q", t)
}

// canonicalDecimal checks an exact decimal and returns it without a leading "+",
// leading zeros or trailing fraction zeros, so equal values give equal text.
func canonicalDecimal(s string) (string, error) {
	m := decimalRE.FindStringSubmatch(s)
	if m == nil || (m[2] == "" && m[3] == "") || len(s) > 80 {
		return "", fmt.Errorf("want an exact decimal such as -12.30")
	}
	intPart := strings.TrimLeft(m[2], "0")
	if intPart == "" {
		intPart = "0"
	}
	frac := strings.TrimRight(m[3], "0")
	out := intPart
	if frac != "" {
		out += "." + frac
	}
	if m[1] == "-" && out != "0" {
		out = "-" + out
	}
	return out, nil
}

// value parses a parameter's text (comma separated for lists) into its canonical form.
// An empty text means "not given" for optional parameters and is handled by the caller.
func (p *Param) value(s string, now time.Time) (any, error) {
	elem := p.Elem()
	if !p.List() {
		if elem != TypeString {
			s = strings.TrimSpace(s)
		}
		return scalarValue(elem, p.Values, s, now)
	}
	parts := strings.Split(s, ",")
	out := make([]any, 0, len(parts))
	for i, part := range parts {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("element %d is empty", i+1)
		}
		v, err := scalarValue(elem, p.Values, part, now)
		if err != nil {
			return nil, fmt.Errorf("element %d %q: %w", i+1, part, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// dayNotInMonth names what is wrong with a date written right that does not exist
// ("February 2026 has 28 days", "month 13 is not 01-12"), or is "" when s is not
// YYYY-MM-DD at all: "want YYYY-MM-DD" would send one looking for a format mistake.
func dayNotInMonth(s string) string {
	var y, m, d int
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return ""
	}
	if _, err := fmt.Sscanf(s, "%4d-%2d-%2d", &y, &m, &d); err != nil || y < 1000 {
		return ""
	}
	switch {
	case m < 1 || m > 12:
		return fmt.Sprintf("month %02d is not 01-12", m)
	case d < 1:
		return fmt.Sprintf("day %02d is not a day of the month", d)
	}
	days := time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
	if d > days {
		return fmt.Sprintf("%s %d has %d days", time.Month(m), y, days)
	}
	return ""
}
