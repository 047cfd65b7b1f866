package source

import (
	"fmt"
	"testing"
	"time"
)

// IsDate and dateText stand in for time.Parse and Format with time.DateOnly on the hot
// path of every row: they must agree with them exactly.
func TestIsDateAgreesWithTimeParse(t *testing.T) {
	var cases []string
	for _, y := range []int{0, 1, 4, 100, 1900, 1999, 2000, 2023, 2024, 2100, 2400, 9999} {
		for m := 0; m <= 13; m++ {
			for d := 0; d <= 32; d++ {
				cases = append(cases, fmt.Sprintf("%04d-%02d-%02d", y, m, d))
			}
		}
	}
	cases = append(cases, "", "2024-1-01", "2024-01-1", "2024/01/01", "20240101", "2024-01-01 ", " 2024-01-01",
		"+024-01-01", "-024-01-01", "2024-0a-01", "2024-01-0x", "２０２４-01-01", "2024-01-01T00:00:00Z", "99999-01-01")
	for _, s := range cases {
		_, err := time.Parse(time.DateOnly, s)
		want := err == nil && len(s) == 10
		if got := IsDate(s); got != want {
			t.Errorf("IsDate(%q) = %v, time.Parse says %v", s, got, want)
		}
	}
	for _, tm := range []time.Time{
		time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 0, 0, 0, 0, time.FixedZone("x", 5*3600)), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-5, 3, 4, 0, 0, 0, 0, time.UTC), time.Date(987, 6, 5, 0, 0, 0, 0, time.UTC),
	} {
		if got, want := dateText(tm), tm.Format(time.DateOnly); got != want {
			t.Errorf("dateText(%v) = %q, want %q", tm, got, want)
		}
	}
}

// Convert gives back the very value it was handed when it is already what the type
// carries, and converts the near forms exactly as before.
func TestConvertText(t *testing.T) {
	for _, c := range []struct {
		typ  Type
		in   any
		want any
	}{
		{TypeString, "abc", "abc"},
		{TypeString, []byte("a\x00b"), "a\x00b"},
		{TypeString, "", ""},
		{TypeDecimal, "-12345678901234567.89", "-12345678901234567.89"},
		{TypeDecimal, " 1.50 ", "1.50"},
		{TypeDecimal, []byte("0.10"), "0.10"},
		{TypeDate, "2024-02-29", "2024-02-29"},
		{TypeDate, "2024-02-29 10:00:00", "2024-02-29"},
		{TypeDate, " 2024-02-29", "2024-02-29"},
		{TypeDate, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "2024-02-29"},
	} {
		got, err := Convert(c.typ, c.in)
		if err != nil || got != c.want {
			t.Errorf("Convert(%s, %#v) = %#v, %v; want %#v", c.typ, c.in, got, err, c.want)
		}
	}
	for _, bad := range []any{"2023-02-29", "2024-13-01", "2024-02-29x"} {
		if got, err := Convert(TypeDate, bad); err == nil {
			t.Errorf("Convert(date, %q) = %v, want an error", bad, got)
		}
	}
}
