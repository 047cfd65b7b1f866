package demo

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// The reliability and production reports computed in Go straight from the generator,
// without SQL, so tests can check the shipped reports' SQL against them. They walk the
// log as a state machine instead of numbering islands with window functions as the SQL
// does, so the two are independent.

// MTTFRow is one row of the mean-time-to-failure report.
type MTTFRow struct {
	PCN             int
	WorkcenterCode  string
	Month           string // YYYY-MM of the failure that ends the intervals
	Failures        int    // intervals ending in the month
	ProductionHours Hours  // their production hours
	MTTFHours       Hours  // ProductionHours / Failures, rounded half up
}

// MTTRRow is one row of the mean-time-to-repair report.
type MTTRRow struct {
	PCN            int
	WorkcenterCode string
	Month          string // YYYY-MM of the production run that ends the repairs
	Repairs        int
	DowntimeHours  Hours // their unplanned-downtime hours
	MTTRHours      Hours // DowntimeHours / Repairs, rounded half up
}

// Ratio is a ratio in ten-thousandths ("0.9731"); it formats like Hours.
type Ratio int64

// String formats r with four decimals.
func (r Ratio) String() string { return Hours(r).String() }

// DailyProductionRow is one row of the daily-production report: one work center and
// part on one plant-day.
type DailyProductionRow struct {
	ReportDate     string // YYYY-MM-DD
	WorkcenterCode string
	PartNo         string
	PartRevision   string
	PartName       string
	PartsProduced  int64
	PartsScrapped  int64
	EarnedHours    Hours
	ActualHours    Hours
	Efficiency     *Ratio // EarnedHours / ActualHours rounded half up; nil when ActualHours is 0
	ScrapRate      *Ratio // PartsScrapped / (PartsProduced + PartsScrapped); nil when that is 0
}

// roundDiv is a/b rounded half up, for a >= 0 and b > 0.
func roundDiv(a, b int64) int64 { return (2*a + b) / (2 * b) }

// intervalRow is one counted interval (MTTF) or repair (MTTR) before grouping by month.
type intervalRow struct {
	pcn   int
	code  string
	month string
	hours Hours
}

// reliabilityRows walks the logs of the plants among pcns (others have no data): walk
// gets each work center's entries in time order and returns its intervals, keeping
// those that end on a counted day; workcenter "" means all.
func reliabilityRows(opts Options, pcns []int, start, end time.Time, workcenter string,
	walk func(entries []LogEntry, counted func(at time.Time) bool) []span) ([]intervalRow, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if start.After(end) {
		return nil, fmt.Errorf("%w: start_date %s is after end_date %s", ErrInvalid, start.Format(dateLayout), end.Format(dateLayout))
	}
	first := time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, time.UTC)
	after := time.Date(end.Year(), end.Month(), end.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	inRange := func(at time.Time) bool { return !at.Before(first) && at.Before(after) }
	var out []intervalRow
	for _, pcn := range pcns {
		if !o.hasPlant(pcn) {
			continue
		}
		p := newPlant(o, pcn)
		g := newShiftGen(o, p)
		var entries []LogEntry
		for i := range p.workcenters {
			wc := &p.workcenters[i]
			if workcenter != "" && wc.Code != workcenter {
				continue
			}
			entries = entries[:0]
			g.workcenterLog(wc, func(rows []LogEntry, _ *ShiftReport) bool {
				entries = append(entries, rows...)
				return true
			})
			for _, iv := range walk(entries, inRange) {
				out = append(out, intervalRow{pcn: pcn, code: wc.Code, month: iv.at.Format("2006-01"), hours: iv.h})
			}
		}
	}
	return out, nil
}

// span is a counted interval or repair: when it ended and its hours.
type span struct {
	at time.Time
	h  Hours
}

type monthKey struct {
	pcn         int
	code, month string
}

// byMonth groups intervals by PCN, work center and month: count and sum, sorted.
func byMonth(rows []intervalRow) ([]monthKey, map[monthKey]int, map[monthKey]Hours) {
	n := map[monthKey]int{}
	sum := map[monthKey]Hours{}
	var keys []monthKey
	for _, r := range rows {
		k := monthKey{r.pcn, r.code, r.month}
		if _, ok := n[k]; !ok {
			keys = append(keys, k)
		}
		n[k]++
		sum[k] += r.hours
	}
	slices.SortFunc(keys, func(a, b monthKey) int {
		return cmp.Or(cmp.Compare(a.pcn, b.pcn), cmp.Compare(a.code, b.code), cmp.Compare(a.month, b.month))
	})
	return keys, n, sum
}

// ExpectedMTTF computes the mean-time-to-failure report for the plants among pcns,
// failures ending on days start..end (inclusive), one work center code or "" for all.
// The definition is the shipped report's: a failure is an entry whose status is
// unplanned downtime (WorkCenterStatus.Failure); consecutive failure entries are one
// event; an interval is the time between two consecutive events, its hours the
// production entries' hours; it belongs to the month of the ending event's first entry.
func ExpectedMTTF(opts Options, pcns []int, start, end time.Time, workcenter string) ([]MTTFRow, error) {
	rows, err := reliabilityRows(opts, pcns, start, end, workcenter, mttfIntervals)
	if err != nil {
		return nil, err
	}
	keys, n, sum := byMonth(rows)
	out := make([]MTTFRow, len(keys))
	for i, k := range keys {
		out[i] = MTTFRow{PCN: k.pcn, WorkcenterCode: k.code, Month: k.month, Failures: n[k], ProductionHours: sum[k],
			MTTFHours: Hours(roundDiv(int64(sum[k]), int64(n[k])))}
	}
	return out, nil
}

// ExpectedMTTR computes the mean-time-to-repair report for the plants among pcns,
// repairs ending on days start..end (inclusive), one work center code or "" for all.
// A production run is a maximal sequence of production entries; a gap between two
// runs is a repair when it has failure entries, its hours theirs; it belongs to the
// month of the first entry of the run that ends it.
func ExpectedMTTR(opts Options, pcns []int, start, end time.Time, workcenter string) ([]MTTRRow, error) {
	rows, err := reliabilityRows(opts, pcns, start, end, workcenter, mttrRepairs)
	if err != nil {
		return nil, err
	}
	keys, n, sum := byMonth(rows)
	out := make([]MTTRRow, len(keys))
	for i, k := range keys {
		out[i] = MTTRRow{PCN: k.pcn, WorkcenterCode: k.code, Month: k.month, Repairs: n[k], DowntimeHours: sum[k],
			MTTRHours: Hours(roundDiv(int64(sum[k]), int64(n[k])))}
	}
	return out, nil
}

// ExpectedDailyProduction computes the daily-production report of one plant-day from
// the daily shift report rows: per work center and part, sums over the day's shifts,
// efficiency and scrap rate rounded half up to four decimals (nil for a zero divisor),
// ordered by work center code, part number and revision. A PCN without production data
// or a day outside the log gives no rows.
func ExpectedDailyProduction(opts Options, pcn int, day time.Time) ([]DailyProductionRow, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if !o.hasPlant(pcn) {
		return nil, nil
	}
	reps, err := ShiftReports(opts, pcn)
	if err != nil {
		return nil, err
	}
	date := day.Format(dateLayout)
	type key struct{ code, no, rev, name string }
	idx := map[key]int{}
	var out []DailyProductionRow
	for _, r := range reps {
		if r.ReportDate.Format(dateLayout) != date {
			continue
		}
		k := key{r.WorkcenterCode, r.PartNo, r.PartRevision, r.PartName}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, DailyProductionRow{ReportDate: date, WorkcenterCode: k.code, PartNo: k.no, PartRevision: k.rev, PartName: k.name})
		}
		row := &out[i]
		row.PartsProduced += r.PartsProduced
		row.PartsScrapped += r.PartsScrapped
		row.EarnedHours += r.EarnedHours
		row.ActualHours += r.ActualHours
	}
	for i := range out {
		row := &out[i]
		if row.ActualHours > 0 {
			e := Ratio(roundDiv(10000*int64(row.EarnedHours), int64(row.ActualHours)))
			row.Efficiency = &e
		}
		if total := row.PartsProduced + row.PartsScrapped; total > 0 {
			s := Ratio(roundDiv(10000*row.PartsScrapped, total))
			row.ScrapRate = &s
		}
	}
	slices.SortFunc(out, func(a, b DailyProductionRow) int {
		return cmp.Or(cmp.Compare(a.WorkcenterCode, b.WorkcenterCode), cmp.Compare(a.PartNo, b.PartNo), cmp.Compare(a.PartRevision, b.PartRevision))
	})
	return out, nil
}

// mttfIntervals returns the intervals between consecutive failure events of one work
// center's entries (in time order) that end on a counted day: when the ending event
// starts and the production hours in between.
func mttfIntervals(entries []LogEntry, counted func(time.Time) bool) []span {
	var out []span
	inFailure, seenEvent := false, false
	var production Hours
	for _, e := range entries {
		if !e.failure {
			inFailure = false
			if e.production {
				production += e.Hours
			}
			continue
		}
		if !inFailure { // an event starts: it ends the interval since the last one
			if seenEvent && counted(e.Start) {
				out = append(out, span{e.Start, production})
			}
			seenEvent = true
			production = 0
		}
		inFailure = true
	}
	return out
}

// mttrRepairs returns the repairs between consecutive production runs of one work
// center's entries (in time order) that end on a counted day: when production resumed
// and the failure hours in between.
func mttrRepairs(entries []LogEntry, counted func(time.Time) bool) []span {
	var out []span
	inRun, seenRun := false, false
	var repair Hours
	for _, e := range entries {
		if !e.production {
			inRun = false
			if e.failure {
				repair += e.Hours
			}
			continue
		}
		if !inRun { // a run starts: it ends the gap since the last one
			if seenRun && repair > 0 && counted(e.Start) {
				out = append(out, span{e.Start, repair})
			}
			seenRun = true
			repair = 0
		}
		inRun = true
	}
	return out
}
