package crontab

import (
	"fmt"
	"strconv"
	"strings"
)

// field describes one of the five time fields.
type field struct {
	name     string
	min, max int
	names    []string // names[i] stands for min+i (jan=1, sun=0)
}

var fields = [5]field{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day-of-month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	// 7 is Sunday too, as in Vixie cron; it is folded into 0.
	{name: "day-of-week", min: 0, max: 7, names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

// fieldError is a problem at an offset within a field's text.
type fieldError struct {
	off int
	msg string
}

// parseField reads one field: a comma-separated list of '*', N, N-M, each optionally
// /STEP (after '*' or a range). It returns the set of values.
func parseField(f field, text string) (uint64, *fieldError) {
	var bits uint64
	off := 0
	for _, item := range strings.Split(text, ",") {
		b, err := parseItem(f, item, off)
		if err != nil {
			return 0, err
		}
		bits |= b
		off += len(item) + 1
	}
	if f.max == 7 && bits&(1<<7) != 0 {
		bits = bits&^(1<<7) | 1
	}
	return bits, nil
}

func parseItem(f field, item string, off int) (uint64, *fieldError) {
	if item == "" {
		return 0, &fieldError{off, "empty list item (two commas, or a comma at an end)"}
	}
	rng, stepText, hasStep := strings.Cut(item, "/")
	lo, hi := f.min, f.max
	if rng == "*" {
		// every value
	} else {
		a, b, isRange := strings.Cut(rng, "-")
		var err *fieldError
		if lo, err = value(f, a, off); err != nil {
			return 0, err
		}
		hi = lo
		if isRange {
			if hi, err = value(f, b, off+len(a)+1); err != nil {
				return 0, err
			}
			if hi < lo {
				return 0, &fieldError{off, fmt.Sprintf("range %s: start is after end", rng)}
			}
		} else if hasStep {
			return 0, &fieldError{off, fmt.Sprintf("%s: a step needs a range (%s-%d/%s or */%s)", item, a, f.max, stepText, stepText)}
		}
	}
	step := 1
	if hasStep {
		soff := off + len(rng) + 1
		n, err := strconv.Atoi(stepText)
		if err != nil || !isDigits(stepText) {
			return 0, &fieldError{soff, fmt.Sprintf("step %q is not a number", stepText)}
		}
		if n < 1 || n > f.max-f.min+1 {
			return 0, &fieldError{soff, fmt.Sprintf("step %d is outside 1-%d", n, f.max-f.min+1)}
		}
		step = n
	}
	var bits uint64
	for v := lo; v <= hi; v += step {
		bits |= 1 << uint(v)
	}
	return bits, nil
}

// value reads a number or, in the month and day-of-week fields, a three-letter name.
func value(f field, s string, off int) (int, *fieldError) {
	if s == "" {
		return 0, &fieldError{off, "missing value"}
	}
	if isDigits(s) {
		n, err := strconv.Atoi(s)
		if err != nil || n < f.min || n > f.max {
			return 0, &fieldError{off, fmt.Sprintf("%s is outside %d-%d", s, f.min, f.max)}
		}
		return n, nil
	}
	for i, name := range f.names {
		if strings.EqualFold(s, name) {
			return f.min + i, nil
		}
	}
	if f.names != nil {
		return 0, &fieldError{off, fmt.Sprintf("%q is not a number or a name (%s-%s)", s, f.names[0], f.names[len(f.names)-1])}
	}
	return 0, &fieldError{off, fmt.Sprintf("%q is not a number", s)}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// macros are the @-lines cron knows, as the five fields they stand for.
var macros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// ParseSchedule reads five fields or an @-macro, as on a crontab line.
func ParseSchedule(spec string) (*Schedule, error) {
	f, err := Parse("schedule", []byte(spec+" true\n"))
	if err != nil {
		return nil, err
	}
	return f.Entries[0].Schedule, nil
}
