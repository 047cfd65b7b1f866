package queue

import (
	"testing"
	"time"
)

// A time column reads the same from either store: MySQL's DATETIME (a time.Time, in
// UTC whatever its zone) and SQLite's microseconds; NULL is no time.
func TestDBTimeReadsEitherStore(t *testing.T) {
	want := time.Date(2026, 12, 7, 19, 10, 0, 123456000, time.UTC)
	for _, v := range []any{want.In(time.FixedZone("EST", -5*3600)), want.UnixMicro()} {
		var d dbTime
		if err := d.Scan(v); err != nil {
			t.Fatalf("Scan(%T): %v", v, err)
		}
		if p := d.ptr(); p == nil || !p.Equal(want) || p.Location() != time.UTC {
			t.Errorf("Scan(%T) = %v, want %v in UTC", v, p, want)
		}
	}
	d := dbTime{t: want, valid: true}
	if err := d.Scan(nil); err != nil || d.ptr() != nil || !d.t.IsZero() {
		t.Errorf("Scan(nil) = %v %v, want no time", d.ptr(), err)
	}
	if err := d.Scan("2026-12-07"); err == nil {
		t.Error("Scan(string): want an error, a store never stores a time as text")
	}
}
