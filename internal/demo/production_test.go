package demo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"rpt/internal/testenv"
)

// prodOptions is a small production data set: two plants over 20 days (2026-10-26 to
// 2026-11-14), no accounting beyond one period.
func prodOptions() Options {
	return Options{Scale: 1, Periods: 1, End: testEnd, Seed: 42, Plants: []int{300758, 295932}, LogDays: 20}
}

func TestHoursString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		h    Hours
		want string
	}{
		{0, "0.0000"}, {1, "0.0001"}, {-1, "-0.0001"}, {12300, "1.2300"}, {80000, "8.0000"},
		{123456789, "12345.6789"}, {math.MinInt64, "-922337203685477.5808"},
	}
	for _, tt := range tests {
		if got := tt.h.String(); got != tt.want {
			t.Errorf("Hours(%d).String() = %q, want %q", int64(tt.h), got, tt.want)
		}
	}
}

func TestProductionOptionsInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  Options
		field string
	}{
		{"log days below -1", Options{Scale: 1, LogDays: -2}, "log_days"},
		{"too many log days", Options{Scale: 1, LogDays: MaxLogDays + 1}, "log_days"},
		{"zero plant", Options{Scale: 1, Plants: []int{300758, 0}}, "plants[1]"},
		{"duplicate plant", Options{Scale: 1, Plants: []int{300758, 300758}}, "plants[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checks := map[string]error{
				"Generate":           Generate(tt.opts, func(Table, []any) error { return nil }),
				"GenerateProduction": GenerateProduction(tt.opts, func(Table, []any) error { return nil }),
			}
			_, checks["WorkCenters"] = WorkCenters(tt.opts, 300758)
			_, checks["WorkCenterLog"] = WorkCenterLog(tt.opts, 300758)
			_, checks["ExpectedMTTF"] = ExpectedMTTF(tt.opts, []int{300758}, testEnd, testEnd, "")
			_, checks["ExpectedDailyProduction"] = ExpectedDailyProduction(tt.opts, 300758, testEnd)
			_, checks["Load"] = Load(context.Background(), "sqlite:"+t.TempDir()+"/x.db", tt.opts)
			for fn, err := range checks {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.field) {
					t.Errorf("%s: error %v, want ErrInvalid naming %q", fn, err, tt.field)
				}
			}
		})
	}
	if _, err := WorkCenterLog(prodOptions(), 123681); !errors.Is(err, ErrInvalid) {
		t.Errorf("WorkCenterLog of a PCN that is not a plant: %v, want ErrInvalid", err)
	}
	if _, err := ExpectedMTTR(prodOptions(), []int{300758}, testEnd, testEnd.AddDate(0, 0, -1), ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("ExpectedMTTR with start after end: %v, want ErrInvalid", err)
	}
}

// TestStatuses checks Albion's keys against Plex's, that other plants have their own,
// and which statuses are failures.
func TestStatuses(t *testing.T) {
	t.Parallel()
	albion := map[int]string{}
	for _, s := range WorkCenterStatuses(Albion) {
		albion[s.Key] = s.Description
	}
	want := map[int]string{219: "Production", 222: "Unplanned Downtime", 213: "Planned Downtime", 220: "Idle", 221: "Off",
		4790: "Changeover", 5363: "Machine Crash"}
	if fmt.Sprint(albion) != fmt.Sprint(want) {
		t.Errorf("Albion statuses %v, want %v", albion, want)
	}
	failures := map[string]bool{}
	for _, s := range WorkCenterStatuses(295932) {
		if _, clash := want[s.Key]; clash {
			t.Errorf("Fruitport status %d %s uses an Albion key", s.Key, s.Description)
		}
		failures[s.Description] = s.Failure()
	}
	wantFailures := map[string]bool{"Production": false, "Unplanned Downtime": true, "Planned Downtime": false, "Idle": false,
		"Off": false, "Changeover": false, "Machine Crash": true, "Quality Hold": false}
	if fmt.Sprint(failures) != fmt.Sprint(wantFailures) {
		t.Errorf("failure statuses %v, want %v", failures, wantFailures)
	}
}

// TestWorkCenterLogShape checks that every work center's log is contiguous (each
// entry starts where the previous ends, three 8-hour shifts a day from 06:00, no
// overlaps), uses its plant's statuses and parts, and has realistic volumes at the
// default plants: 117 work centers, the busiest about 23,000 entries a year.
func TestWorkCenterLogShape(t *testing.T) {
	t.Parallel()
	opts := Options{Scale: 1, End: testEnd, Seed: 42, LogDays: 28}
	o, err := opts.normalize()
	if err != nil {
		t.Fatal(err)
	}
	total, busiest := 0, 0
	for _, pcn := range DefaultPlants() {
		wcs, err := WorkCenters(opts, pcn)
		if err != nil {
			t.Fatal(err)
		}
		total += len(wcs)
		statuses := map[int]WorkCenterStatus{}
		for _, s := range WorkCenterStatuses(pcn) {
			statuses[s.Key] = s
		}
		parts := map[int]bool{}
		ps, err := Parts(opts, pcn)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			parts[p.Key] = true
		}
		seq, err := WorkCenterLog(opts, pcn)
		if err != nil {
			t.Fatal(err)
		}
		perWC := map[int]int{}
		next := map[int]time.Time{}
		var lastKey int64
		for e := range seq {
			if e.Key != lastKey+1 {
				t.Fatalf("pcn %d: log key %d after %d", pcn, e.Key, lastKey)
			}
			lastKey = e.Key
			perWC[e.WorkcenterKey]++
			want, seen := next[e.WorkcenterKey]
			if !seen {
				want = o.logStart().Add(6 * time.Hour)
			}
			if !e.Start.Equal(want) {
				t.Fatalf("pcn %d wc %d: entry at %s, want %s (gap or overlap)", pcn, e.WorkcenterKey, e.Start, want)
			}
			if e.Hours <= 0 || e.Hours%100 != 0 || e.Hours > 80000 {
				t.Fatalf("pcn %d wc %d at %s: log_hours %s", pcn, e.WorkcenterKey, e.Start, e.Hours)
			}
			next[e.WorkcenterKey] = e.Start.Add(time.Duration(e.Hours) * 360 * time.Millisecond)
			s, ok := statuses[e.StatusKey]
			if !ok {
				t.Fatalf("pcn %d: status key %d is not the plant's", pcn, e.StatusKey)
			}
			if s.Failure() != e.failure || s.Production != e.production {
				t.Fatalf("pcn %d: entry flags differ from status %+v", pcn, s)
			}
			if e.PartKey != 0 && !parts[e.PartKey] {
				t.Fatalf("pcn %d: part key %d is not the plant's", pcn, e.PartKey)
			}
			if s.Production && e.PartKey == 0 {
				t.Fatalf("pcn %d: production without a part at %s", pcn, e.Start)
			}
			if rd := e.Start.Add(-6 * time.Hour).Truncate(24 * time.Hour); !e.ReportDate.Equal(rd) {
				t.Fatalf("pcn %d: entry at %s has report date %s", pcn, e.Start, e.ReportDate)
			}
		}
		for wc, end := range next {
			if want := o.logEnd.Add(6 * time.Hour); !end.Equal(want) {
				t.Errorf("pcn %d wc %d: log ends at %s, want %s", pcn, wc, end, want)
			}
		}
		if len(perWC) != len(wcs) {
			t.Errorf("pcn %d: %d work centers logged, %d exist", pcn, len(perWC), len(wcs))
		}
		for _, n := range perWC {
			busiest = max(busiest, n)
		}
	}
	if total != 117 {
		t.Errorf("%d work centers at the default plants, want 117", total)
	}
	if perYear := busiest * 365 / 28; perYear < 18000 || perYear > 28000 {
		t.Errorf("the busiest work center logs %d entries a year, want about 23,000", perYear)
	}
}

// TestShiftReportsMatchLog checks that a shift report's actual hours are its shift's
// production hours in the log, and that the numbers hang together.
func TestShiftReportsMatchLog(t *testing.T) {
	t.Parallel()
	opts := prodOptions()
	for _, pcn := range opts.Plants {
		type shift struct {
			wc, shiftKey int
			day          string
		}
		production := map[shift]Hours{}
		seq, err := WorkCenterLog(opts, pcn)
		if err != nil {
			t.Fatal(err)
		}
		for e := range seq {
			if e.production {
				production[shift{e.WorkcenterKey, e.ShiftKey, e.ReportDate.Format(dateLayout)}] += e.Hours
			}
		}
		reps, err := ShiftReports(opts, pcn)
		if err != nil {
			t.Fatal(err)
		}
		idle := 0
		for _, r := range reps {
			k := shift{r.WorkcenterKey, r.ShiftKey, r.ReportDate.Format(dateLayout)}
			if r.ActualHours != production[k] {
				t.Fatalf("pcn %d %+v: actual hours %s, log production %s", pcn, k, r.ActualHours, production[k])
			}
			delete(production, k)
			if r.PartsScrapped > r.PartsProduced || r.PartsProduced < 0 || r.EarnedHours < 0 {
				t.Fatalf("pcn %d: implausible shift report %+v", pcn, r)
			}
			if r.ActualHours == 0 {
				idle++
			}
		}
		if len(production) > 0 {
			t.Errorf("pcn %d: %d shifts with production have no shift report", pcn, len(production))
		}
		if idle == 0 {
			t.Errorf("pcn %d: no staffed shift without production (the NULL efficiency case)", pcn)
		}
	}
}

// TestLogIndependentOfWindow: a day's log is the same whatever the number of log days.
func TestLogIndependentOfWindow(t *testing.T) {
	t.Parallel()
	short := prodOptions()
	short.LogDays = 5
	long := prodOptions()
	long.LogDays = 12
	collect := func(opts Options) map[string]LogEntry {
		seq, err := WorkCenterLog(opts, 300758)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]LogEntry{}
		for e := range seq {
			e.Key = 0
			out[fmt.Sprint(e.WorkcenterKey, e.Start)] = e
		}
		return out
	}
	a, b := collect(short), collect(long)
	for k, e := range a {
		if b[k] != e {
			t.Fatalf("%s: %+v with 5 days, %+v with 12 days", k, e, b[k])
		}
	}
	if len(b) <= len(a) || len(a) == 0 {
		t.Errorf("%d entries with 5 days, %d with 12", len(a), len(b))
	}
}

// TestReliabilityWalkers checks the Go definitions of the reliability reports on a
// hand-made log: P production, U unplanned downtime, C machine crash, I idle.
func TestReliabilityWalkers(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 3, 31, 20, 0, 0, 0, time.UTC)
	var entries []LogEntry
	at := base
	for _, s := range []struct {
		code  byte
		hours Hours
	}{
		{'P', 10000}, {'U', 5000}, {'P', 20000}, {'I', 5000}, {'P', 30000}, {'U', 2500}, {'C', 7500},
		{'P', 15000}, {'I', 10000}, {'U', 10000}, {'I', 2000}, {'P', 40000},
	} {
		entries = append(entries, LogEntry{Start: at, Hours: s.hours, failure: s.code == 'U' || s.code == 'C', production: s.code == 'P'})
		at = at.Add(time.Duration(s.hours) * 360 * time.Millisecond)
	}
	all := func(time.Time) bool { return true }
	show := func(spans []span) string {
		var b strings.Builder
		for _, s := range spans {
			fmt.Fprintf(&b, "%s=%s ", s.at.Format("01-02T15:04"), s.h)
		}
		return b.String()
	}
	// The log runs from 20:00 on 31 March: P 20:00, U 21:00, P 21:30, I 23:30, P 00:00,
	// U 03:00, C 03:15, P 04:00, I 05:30, U 06:30, I 07:30, P 07:42.
	// Failure events start at 21:00, 03:00 (U then C: one event) and 06:30: intervals
	// of 2+3 and 1.5 production hours.
	if got, want := show(mttfIntervals(entries, all)), "04-01T03:00=5.0000 04-01T06:30=1.5000 "; got != want {
		t.Errorf("mttf intervals %q, want %q", got, want)
	}
	// Production runs start at 20:00, 21:30, 00:00, 04:00 and 07:42; the gap before
	// 00:00 is idle only (no repair), the one before 07:42 has 1h of repair among idle time.
	if got, want := show(mttrRepairs(entries, all)), "03-31T21:30=0.5000 04-01T04:00=1.0000 04-01T07:42=1.0000 "; got != want {
		t.Errorf("mttr repairs %q, want %q", got, want)
	}
	april := func(at time.Time) bool { return at.Month() == time.April }
	if got, want := show(mttrRepairs(entries, april)), "04-01T04:00=1.0000 04-01T07:42=1.0000 "; got != want {
		t.Errorf("mttr repairs in April %q, want %q", got, want)
	}
	if got := roundDiv(5, 2); got != 3 {
		t.Errorf("roundDiv(5, 2) = %d, want 3 (half up)", got)
	}
	if got := roundDiv(14, 3); got != 5 {
		t.Errorf("roundDiv(14, 3) = %d, want 5", got)
	}
}

// TestExpectedReports checks the expected reports' internal consistency: work center
// filter, months and means.
func TestExpectedReports(t *testing.T) {
	t.Parallel()
	opts := prodOptions()
	start, end := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	mttf, err := ExpectedMTTF(opts, []int{300758, 295932, 123681}, start, end, "")
	if err != nil {
		t.Fatal(err)
	}
	mttr, err := ExpectedMTTR(opts, []int{300758, 295932}, start, end, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(mttf) < 20 || len(mttr) < 20 {
		t.Fatalf("%d mttf rows, %d mttr rows: too few", len(mttf), len(mttr))
	}
	months := map[string]bool{}
	for _, r := range mttf {
		months[r.Month] = true
		if r.Failures <= 0 || r.MTTFHours != Hours(roundDiv(int64(r.ProductionHours), int64(r.Failures))) {
			t.Fatalf("inconsistent row %+v", r)
		}
	}
	if !months["2026-10"] || !months["2026-11"] || len(months) != 2 {
		t.Errorf("months %v, want 2026-10 and 2026-11", months)
	}
	one, err := ExpectedMTTF(opts, []int{300758, 295932}, start, end, mttf[0].WorkcenterCode)
	if err != nil {
		t.Fatal(err)
	}
	var want []MTTFRow
	for _, r := range mttf {
		if r.WorkcenterCode == mttf[0].WorkcenterCode {
			want = append(want, r)
		}
	}
	if !slices.Equal(one, want) || len(one) == 0 {
		t.Errorf("work center %s: %v, want %v", mttf[0].WorkcenterCode, one, want)
	}
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	dp, err := ExpectedDailyProduction(opts, 300758, day)
	if err != nil {
		t.Fatal(err)
	}
	if len(dp) == 0 {
		t.Fatal("no daily production on a Monday")
	}
	for _, r := range dp {
		if r.Efficiency != nil && *r.Efficiency != Ratio(roundDiv(10000*int64(r.EarnedHours), int64(r.ActualHours))) {
			t.Errorf("efficiency of %+v", r)
		}
	}
	none, err := ExpectedDailyProduction(opts, 123681, day)
	if err != nil || len(none) != 0 {
		t.Errorf("daily production of HQ: %v, %v; want no rows", none, err)
	}
}

func TestLoadProductionSQLite(t *testing.T) {
	t.Parallel()
	testLoadProduction(t, sqliteDSN(t))
}

func TestLoadProductionMariaDB(t *testing.T) {
	t.Parallel()
	testLoadProduction(t, testenv.MariaDB(t))
}

// testLoadProduction loads production data, checks row counts and hour sums against
// the generator, and that reloads replace their plants only.
func testLoadProduction(t *testing.T, target string) {
	ctx := context.Background()
	opts := prodOptions()
	st, err := Load(ctx, target, opts)
	if err != nil {
		t.Fatal(err)
	}
	db, driver := openTestDB(t, target)
	check := func(opts Options) {
		t.Helper()
		for _, pcn := range opts.Plants {
			want := map[string]int{}
			var hours Hours
			if err := GenerateProduction(Options{Scale: opts.Scale, Periods: 1, End: opts.End, Seed: opts.Seed, Plants: []int{pcn}, LogDays: opts.LogDays},
				func(tb Table, row []any) error {
					want[tb.Name]++
					if tb.Name == TableWorkcenterLog.Name {
						hours += row[4].(Hours)
					}
					return nil
				}); err != nil {
				t.Fatal(err)
			}
			for _, tb := range ProductionTables() {
				var n int
				if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+tb.Name+" WHERE "+tb.pcnColumn()+" = ?", pcn).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != want[tb.Name] || n == 0 {
					t.Errorf("pcn %d: %s has %d rows, the generator %d", pcn, tb.Name, n, want[tb.Name])
				}
			}
			col, wantSum := "log_hours", hours.String()
			if driver == "sqlite" {
				col, wantSum = "log_hours_x10000", fmt.Sprint(int64(hours))
			}
			var sum string
			if err := db.QueryRowContext(ctx, "SELECT CAST(SUM("+col+") AS CHAR) FROM "+TableWorkcenterLog.Name+" WHERE plexus_customer_no = ?", pcn).Scan(&sum); err != nil {
				// SQLite has no CHAR type name for CAST but accepts it with text affinity.
				t.Fatal(err)
			}
			if sum != wantSum {
				t.Errorf("pcn %d: sum of log hours %s, generator %s", pcn, sum, wantSum)
			}
		}
	}
	check(opts)
	if st.Plants != 2 || st.WorkCenters != 22+18 || st.LogEntries == 0 || st.ShiftReports == 0 {
		t.Errorf("stats %+v", st)
	}
	// Reloading one plant with another seed replaces its rows and keeps the other's;
	// a load without production data keeps both.
	reload := opts
	reload.Plants = []int{295932}
	reload.Seed = 7
	reload.LogDays = 9
	if _, err := Load(ctx, target, reload); err != nil {
		t.Fatal(err)
	}
	check(reload)
	kept := opts
	kept.Plants = []int{300758}
	check(kept)
	none := opts
	none.LogDays = -1
	if st, err := Load(ctx, target, none); err != nil || st.Plants != 0 || st.LogEntries != 0 {
		t.Fatalf("load without production: %+v, %v", st, err)
	}
	check(kept)
	check(reload)
}
