package crontab

import (
	"time"
)

// Schedule is the five time fields of a crontab line as sets of allowed values.
type Schedule struct {
	Minute  uint64 // bits 0-59
	Hour    uint64 // bits 0-23
	Dom     uint64 // bits 1-31
	Month   uint64 // bits 1-12
	Dow     uint64 // bits 0-6, Sunday 0 (7 is folded into 0)
	DomStar bool   // the day-of-month field starts with '*'
	DowStar bool   // the day-of-week field starts with '*'
}

// dayMatches applies the Vixie cron rule: when either day field starts with '*', a day
// must match both (the starred one matches every day); when both are restricted, a day
// matching either runs ("0 0 1 * mon": the 1st of each month and every Monday).
func (s *Schedule) dayMatches(c civil) bool {
	dom := s.Dom&(1<<uint(c.day)) != 0
	dow := s.Dow&(1<<uint(c.weekday())) != 0
	if s.DomStar || s.DowStar {
		return dom && dow
	}
	return dom || dow
}

// civil is a wall-clock minute with no zone; arithmetic is done in UTC, which has no
// daylight saving, and only the result is placed in a zone.
type civil struct {
	t   time.Time // in UTC, seconds zero
	day int
}

func civilOf(t time.Time) civil {
	u := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, time.UTC)
	return civil{t: u, day: u.Day()}
}

func (c civil) weekday() int { return int(c.t.Weekday()) }

func mk(t time.Time) civil { return civil{t: t, day: t.Day()} }

// searchLimit bounds the search for a matching minute: a line such as "0 0 30 2 *"
// never runs, and five years cover every leap day.
const searchLimit = 5 * 366 * 24 * time.Hour

// Next is the first run of s strictly after the instant from, with the fields read as
// wall-clock time in loc. The daylight-saving rule: a wall-clock time that does not
// exist (the spring gap) runs once, at the first minute after it that exists; a time
// that exists twice (the autumn overlap) runs once, at its first instance. The zero
// time means the schedule never runs (February 30th).
func (s *Schedule) Next(from time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	c := mk(civilOf(from.In(loc)).t.Add(time.Minute))
	// When from is in the second instance of a repeated hour, wall-clock minutes up to
	// from's own have already run (at their first instances); starting at from's wall
	// clock plus one minute still finds the next minute, and the instant check below
	// skips any whose first instance is not after from.
	end := c.t.Add(searchLimit)
	for c.t.Before(end) {
		t := c.t
		if s.Month&(1<<uint(t.Month())) == 0 {
			c = mk(time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC))
			continue
		}
		if !s.dayMatches(c) {
			c = mk(time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC))
			continue
		}
		if s.Hour&(1<<uint(t.Hour())) == 0 {
			c = mk(t.Truncate(time.Hour).Add(time.Hour))
			continue
		}
		if s.Minute&(1<<uint(t.Minute())) == 0 {
			c = mk(t.Add(time.Minute))
			continue
		}
		if at := place(c.t, loc); at.After(from) {
			return at
		}
		c = mk(t.Add(time.Minute))
	}
	return time.Time{}
}

// place puts a wall-clock minute (given in UTC) in loc: its first instance when it
// exists (twice in the autumn overlap), else the first later minute that exists.
func place(w time.Time, loc *time.Location) time.Time {
	if t, ok := firstInstance(w, loc); ok {
		return t
	}
	// In a gap: walk forward to the first wall-clock minute that exists. Gaps are an
	// hour in most zones; a day at most (Samoa 2011), hence the bound.
	for i := 1; i <= 48*60; i++ {
		if t, ok := firstInstance(w.Add(time.Duration(i)*time.Minute), loc); ok {
			return t
		}
	}
	return w // not reached for real zones
}

// firstInstance is the earliest instant whose wall clock in loc is w, if any.
func firstInstance(w time.Time, loc *time.Location) (time.Time, bool) {
	var best time.Time
	found := false
	for _, probe := range []time.Time{w.Add(-26 * time.Hour), w, w.Add(26 * time.Hour)} {
		_, off := probe.In(loc).Zone()
		t := w.Add(-time.Duration(off) * time.Second)
		l := t.In(loc)
		if l.Year() == w.Year() && l.Month() == w.Month() && l.Day() == w.Day() && l.Hour() == w.Hour() && l.Minute() == w.Minute() {
			if !found || t.Before(best) {
				best, found = t, true
			}
		}
	}
	return best, found
}
