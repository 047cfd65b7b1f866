package reportdefs_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rpt/internal/demo"
	"rpt/internal/source"
	"rpt/internal/testenv"
	"rpt/reportdefs"
)

// productionOpts is a small production data set: two plants (Albion with Plex's status
// keys, Avilla with its own and a Quality Hold status) over 45 days, 2026-02-24 to
// 2026-04-09, which crosses two month ends; accounting is one period of HQ.
var productionOpts = demo.Options{
	Scale:   1,
	Periods: 1,
	End:     time.Date(2026, 4, 10, 9, 0, 0, 0, time.UTC),
	Seed:    7,
	Plants:  []int{300758, 310507},
	LogDays: 45,
}

// productionStores loads productionOpts into a new SQLite file and a new MariaDB
// database (skipped without RPT_TEST_MYSQL_DSN) and opens each as a source.
func productionStores(t *testing.T) map[string]func(t *testing.T) source.Source {
	open := func(t *testing.T, dsnStr string, cfg source.Config) source.Source {
		t.Helper()
		ctx := context.Background()
		st, err := demo.Load(ctx, dsnStr, productionOpts)
		if err != nil {
			t.Fatal(err)
		}
		if st.Plants != 2 || st.LogEntries == 0 || st.ShiftReports == 0 {
			t.Fatalf("load stats %+v: no production data", st)
		}
		src, err := source.Open(ctx, "warehouse", cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		return src
	}
	return map[string]func(t *testing.T) source.Source{
		"sqlite": func(t *testing.T) source.Source {
			d := "sqlite:" + filepath.Join(t.TempDir(), "demo.db")
			return open(t, d, source.Config{Driver: "sqlite", DSN: d})
		},
		"mariadb": func(t *testing.T) source.Source {
			d := testenv.MariaDB(t)
			return open(t, d, source.Config{Driver: "mysql", DSN: d})
		},
	}
}

// runShipped runs a shipped report with given parameters on src and returns its
// columns (with the definition's type overrides) and rows as text (nil as "NULL").
func runShipped(t *testing.T, src source.Source, def *reportdefs.Definition, params map[string]string) ([]source.Column, [][]string) {
	t.Helper()
	ctx := context.Background()
	resolved, err := def.Resolve(params, time.Now(), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	values, err := def.BindValues(resolved)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := source.Run(ctx, src, def.Request(src.Driver(), values), def.Columns)
	if err != nil {
		t.Fatalf("%s %v: %v", def.Name, params, err)
	}
	defer rows.Close()
	cols := rows.Columns()
	var out [][]string
	for rows.Next() {
		v := rows.Values()
		r := make([]string, len(v))
		for i, x := range v {
			if x == nil {
				r[i] = "NULL"
			} else {
				r[i] = fmt.Sprint(x)
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s %v: %v", def.Name, params, err)
	}
	return cols, out
}

// checkColumns compares names and types of the result columns.
func checkColumns(t *testing.T, cols []source.Column, want []source.Column) {
	t.Helper()
	if len(cols) != len(want) {
		t.Fatalf("columns %v, want %v", cols, want)
	}
	for i, c := range cols {
		if c.Name != want[i].Name || c.Type != want[i].Type {
			t.Errorf("column %d = %s %s, want %s %s", i, c.Name, c.Type, want[i].Name, want[i].Type)
		}
	}
}

// compareRows fails at the first row that differs, and on a different row count.
func compareRows(t *testing.T, what string, got, want [][]string) {
	t.Helper()
	for i := range min(len(got), len(want)) {
		if strings.Join(got[i], "|") != strings.Join(want[i], "|") {
			t.Fatalf("%s: row %d = %v, want %v", what, i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
}

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

// reliabilityCase is one request of the mean-time reports.
type reliabilityCase struct {
	pcn        string
	start, end string
	workcenter string
}

func (c reliabilityCase) params() map[string]string {
	p := map[string]string{"pcn": c.pcn, "start_date": c.start, "end_date": c.end}
	if c.workcenter != "" {
		p["workcenter"] = c.workcenter
	}
	return p
}

func (c reliabilityCase) pcns() []int {
	var out []int
	for _, f := range strings.Split(c.pcn, ",") {
		var n int
		fmt.Sscan(f, &n)
		out = append(out, n)
	}
	return out
}

// reliabilityCases: both plants over the whole log; a window starting mid-log (the
// interval that ends first in it starts before it); one work center; a window with no
// data.
func reliabilityCases(t *testing.T) []reliabilityCase {
	wcs, err := demo.WorkCenters(productionOpts, 310507)
	if err != nil {
		t.Fatal(err)
	}
	return []reliabilityCase{
		{pcn: "300758,310507", start: "2026-01-01", end: "2026-04-30"},
		{pcn: "300758", start: "2026-03-10", end: "2026-03-31"},
		{pcn: "310507", start: "2026-02-01", end: "2026-04-09", workcenter: wcs[3].Code},
		{pcn: "300758", start: "2025-01-01", end: "2025-12-31"},
	}
}

// TestShippedMeanTimeToFailureMatchesDemo runs the shipped mean-time-to-failure
// definition on SQLite and MariaDB and compares every row with demo.ExpectedMTTF.
func TestShippedMeanTimeToFailureMatchesDemo(t *testing.T) {
	t.Parallel()
	def := shippedDef(t, "mean-time-to-failure")
	cases := reliabilityCases(t)
	for name, open := range productionStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := open(t)
			total := 0
			for _, tc := range cases {
				want, err := demo.ExpectedMTTF(productionOpts, tc.pcns(), day(tc.start), day(tc.end), tc.workcenter)
				if err != nil {
					t.Fatal(err)
				}
				var wantRows [][]string
				for _, w := range want {
					wantRows = append(wantRows, []string{fmt.Sprint(w.PCN), w.WorkcenterCode, w.Month, fmt.Sprint(w.Failures),
						w.ProductionHours.String(), w.MTTFHours.String()})
				}
				cols, got := runShipped(t, src, def, tc.params())
				checkColumns(t, cols, []source.Column{{Name: "pcn", Type: source.TypeInt}, {Name: "workcenter_code", Type: source.TypeString},
					{Name: "month", Type: source.TypeString}, {Name: "failures", Type: source.TypeInt},
					{Name: "production_hours", Type: source.TypeDecimal}, {Name: "mttf_hours", Type: source.TypeDecimal}})
				compareRows(t, fmt.Sprintf("mttf %+v", tc), got, wantRows)
				total += len(want)
			}
			if total < 50 {
				t.Errorf("only %d rows in all cases: the test data exercises too little", total)
			}
		})
	}
}

// TestShippedMeanTimeToRepairMatchesDemo runs the shipped mean-time-to-repair
// definition on SQLite and MariaDB and compares every row with demo.ExpectedMTTR.
func TestShippedMeanTimeToRepairMatchesDemo(t *testing.T) {
	t.Parallel()
	def := shippedDef(t, "mean-time-to-repair")
	cases := reliabilityCases(t)
	for name, open := range productionStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := open(t)
			total := 0
			for _, tc := range cases {
				want, err := demo.ExpectedMTTR(productionOpts, tc.pcns(), day(tc.start), day(tc.end), tc.workcenter)
				if err != nil {
					t.Fatal(err)
				}
				var wantRows [][]string
				for _, w := range want {
					wantRows = append(wantRows, []string{fmt.Sprint(w.PCN), w.WorkcenterCode, w.Month, fmt.Sprint(w.Repairs),
						w.DowntimeHours.String(), w.MTTRHours.String()})
				}
				cols, got := runShipped(t, src, def, tc.params())
				checkColumns(t, cols, []source.Column{{Name: "pcn", Type: source.TypeInt}, {Name: "workcenter_code", Type: source.TypeString},
					{Name: "month", Type: source.TypeString}, {Name: "repairs", Type: source.TypeInt},
					{Name: "downtime_hours", Type: source.TypeDecimal}, {Name: "mttr_hours", Type: source.TypeDecimal}})
				compareRows(t, fmt.Sprintf("mttr %+v", tc), got, wantRows)
				total += len(want)
			}
			if total < 50 {
				t.Errorf("only %d rows in all cases: the test data exercises too little", total)
			}
		})
	}
}

// TestShippedDailyProductionMatchesDemo runs the shipped daily-production definition on
// SQLite and MariaDB for several plant-days (a weekday, a Sunday, the last day of the
// log, a day with a staffed shift that produced nothing, a day without data) and
// compares every row with demo.ExpectedDailyProduction.
func TestShippedDailyProductionMatchesDemo(t *testing.T) {
	t.Parallel()
	def := shippedDef(t, "daily-production")
	type dayCase struct {
		pcn  int
		date string
	}
	cases := []dayCase{{300758, "2026-03-04"}, {310507, "2026-03-08"}, {310507, "2026-04-09"}, {300758, "2026-04-10"}}
	// Find a day whose report has a NULL efficiency, so the zero-divisor case is tested.
	nullDay := ""
	for d := day("2026-02-24"); d.Before(day("2026-04-10")) && nullDay == ""; d = d.AddDate(0, 0, 1) {
		rows, err := demo.ExpectedDailyProduction(productionOpts, 300758, d)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.Efficiency == nil {
				nullDay = d.Format(time.DateOnly)
				break
			}
		}
	}
	if nullDay == "" {
		t.Fatal("no day of the test data has a shift report with no actual hours")
	}
	cases = append(cases, dayCase{300758, nullDay})
	ratio := func(r *demo.Ratio) string {
		if r == nil {
			return "NULL"
		}
		return r.String()
	}
	for name, open := range productionStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := open(t)
			for _, tc := range cases {
				want, err := demo.ExpectedDailyProduction(productionOpts, tc.pcn, day(tc.date))
				if err != nil {
					t.Fatal(err)
				}
				var wantRows [][]string
				for _, w := range want {
					wantRows = append(wantRows, []string{w.ReportDate, w.WorkcenterCode, w.PartNo, w.PartRevision, w.PartName,
						fmt.Sprint(w.PartsProduced), fmt.Sprint(w.PartsScrapped), w.EarnedHours.String(), w.ActualHours.String(),
						ratio(w.Efficiency), ratio(w.ScrapRate)})
				}
				cols, got := runShipped(t, src, def, map[string]string{"pcn": fmt.Sprint(tc.pcn), "report_date": tc.date})
				checkColumns(t, cols, []source.Column{{Name: "report_date", Type: source.TypeDate}, {Name: "workcenter_code", Type: source.TypeString},
					{Name: "part_no", Type: source.TypeString}, {Name: "part_revision", Type: source.TypeString},
					{Name: "part_name", Type: source.TypeString}, {Name: "parts_produced", Type: source.TypeInt},
					{Name: "parts_scrapped", Type: source.TypeInt}, {Name: "earned_hours", Type: source.TypeDecimal},
					{Name: "actual_hours", Type: source.TypeDecimal}, {Name: "efficiency", Type: source.TypeDecimal},
					{Name: "scrap_rate", Type: source.TypeDecimal}})
				compareRows(t, fmt.Sprintf("daily-production %d %s", tc.pcn, tc.date), got, wantRows)
				if tc.date != "2026-04-10" && len(want) == 0 {
					t.Errorf("daily-production %d %s: no rows expected; the case tests nothing", tc.pcn, tc.date)
				}
			}
		})
	}
}

// TestProductionReportDefaults resolves the shipped production reports without
// parameters: relative dates and the Albion default.
func TestProductionReportDefaults(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		report string
		want   string
	}{
		{"mean-time-to-failure", `{"end_date":"2026-11-28","pcn":[300758],"start_date":"2025-11-29","workcenter":null}`},
		{"mean-time-to-repair", `{"end_date":"2026-11-28","pcn":[300758],"start_date":"2025-11-29","workcenter":null}`},
		{"daily-production", `{"pcn":300758,"report_date":"2026-11-28"}`},
	}
	for _, tt := range tests {
		def := shippedDef(t, tt.report)
		got, err := def.Resolve(nil, now, time.UTC)
		if err != nil {
			t.Fatalf("%s: %v", tt.report, err)
		}
		if string(got) != tt.want {
			t.Errorf("%s defaults = %s, want %s", tt.report, got, tt.want)
		}
	}
}

func shippedDef(t testing.TB, name string) *reportdefs.Definition {
	t.Helper()
	cat, err := reportdefs.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	def, err := cat.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return def
}
