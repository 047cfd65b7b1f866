package reportdefs_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"rpt/internal/demo"
	"rpt/internal/source"
	"rpt/internal/source/plexws/plexwstest"
	"rpt/internal/testenv"
	"rpt/reportdefs"

	_ "rpt/internal/source/plexws" // the plexws driver
)

// activitySummary answers Account_Activity_Summary_xPCN_Get (4814) from the demo
// ledger, as Plex does for one PCN and one period: every account, its beginning
// balance (all earlier activity for balance-sheet accounts, the year's earlier activity
// for revenue and expense accounts), the period's debit and credit, and the ending
// balance, money with five decimals as Plex's DECIMAL(19,5) columns have it.
func activitySummary(t testing.TB, opts demo.Options) plexwstest.Handler {
	t.Helper()
	type key struct {
		pcn    int
		period int
	}
	type acct struct {
		demo.Account
		debit, credit map[int]demo.Cents
	}
	ledgers := map[int][]acct{}
	for _, pcn := range opts.PCNs {
		accts, err := demo.Accounts(opts, pcn)
		if err != nil {
			t.Fatal(err)
		}
		byNo := map[string]int{}
		list := make([]acct, len(accts))
		for i, a := range accts {
			list[i] = acct{Account: a, debit: map[int]demo.Cents{}, credit: map[int]demo.Cents{}}
			byNo[a.No] = i
		}
		bals, err := demo.Balances(opts, pcn)
		if err != nil {
			t.Fatal(err)
		}
		for b := range bals {
			a := &list[byNo[b.AccountNo]]
			a.debit[b.Period] += b.Debit
			a.credit[b.Period] += b.Credit
		}
		slices.SortFunc(list, func(x, y acct) int {
			if x.No < y.No {
				return -1
			}
			if x.No > y.No {
				return 1
			}
			return 0
		})
		ledgers[pcn] = list
	}
	periods, err := demo.Periods(opts)
	if err != nil {
		t.Fatal(err)
	}
	cols := []string{"Base_No", "Account_No", "Abbreviated_Name", "Account_Name", "Beginning_Balance", "Debit", "Credit",
		"Ending_Balance", "PCN_Name", "Report_Currency", "Cost_Center_No", "Location_No"}
	money := func(c demo.Cents) string { return c.String() + "000" }
	return func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		if c.Key != 4814 || c.Name != "Account_Activity_Summary_xPCN_Get" {
			plexwstest.WriteFault(w, "soap:Server", fmt.Sprintf("unknown data source %d", c.Key))
			return
		}
		// The account only sees its own PCN's books.
		if c.Inputs["@PCNs"] != strconv.Itoa(c.PCN) {
			plexwstest.WriteError(w, c, 5001, "PCN "+c.Inputs["@PCNs"]+" is not accessible to this account")
			return
		}
		start, err1 := strconv.Atoi(c.Inputs["@Period_Start"])
		end, err2 := strconv.Atoi(c.Inputs["@Period_End"])
		if err1 != nil || err2 != nil || start != end {
			plexwstest.WriteError(w, c, 1001, "want one period per call")
			return
		}
		a := plexwstest.Begin(w, c, plexwstest.Status{})
		defer a.End()
		known := slices.ContainsFunc(periods, func(p demo.Period) bool { return p.Period == start })
		if !known {
			return
		}
		for _, ac := range ledgers[c.PCN] {
			var begin demo.Cents
			for _, p := range periods {
				if p.Period >= start {
					break
				}
				if ac.RevenueOrExpense && p.Period/100 != start/100 {
					continue
				}
				begin += ac.debit[p.Period] - ac.credit[p.Period]
			}
			d, cr := ac.debit[start], ac.credit[start]
			_ = a.Strings(cols, ac.No[:5], ac.No, "", ac.Name, money(begin), money(d), money(cr), money(begin+d-cr),
				"PCN "+strconv.Itoa(c.PCN), "USD", "", "")
		}
	}
}

// TestTrialBalanceWSMatchesWarehouse serves the demo ledger through the stand-in Plex
// web service and runs the shipped trial-balance-ws against it (the plexws driver,
// one call per period, the rows shaped in SQLite with the categories looked up in the
// warehouse the demo is loaded into, SQLite and MariaDB): every row equals, in every
// column and cents-exact, both the warehouse trial balance run on that warehouse and
// demo.ExpectedTrialBalance, and every PCN and period sums to zero.
func TestTrialBalanceWSMatchesWarehouse(t *testing.T) {
	t.Parallel()
	opts := demo.Options{Scale: 1, Periods: 15, End: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), PCNs: []int{123681, 300758}, Seed: 7, LogDays: -1}
	stores := map[string]func(t *testing.T) (string, source.Config){
		"sqlite": func(t *testing.T) (string, source.Config) {
			d := "sqlite:" + filepath.Join(t.TempDir(), "demo.db")
			return d, source.Config{Driver: "sqlite", DSN: d}
		},
		"mariadb": func(t *testing.T) (string, source.Config) {
			d := testenv.MariaDB(t)
			return d, source.Config{Driver: "mysql", DSN: d}
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dsnStr, whCfg := open(t)
			if _, err := demo.Load(context.Background(), dsnStr, opts); err != nil {
				t.Fatal(err)
			}
			checkTrialBalanceWS(t, opts, whCfg)
		})
	}
}

func checkTrialBalanceWS(t *testing.T, opts demo.Options, whCfg source.Config) {
	srv := plexwstest.New(t, activitySummary(t, opts),
		plexwstest.Account{User: "SouthfieldWs@plex.com", Password: "pw-123681", PCN: 123681},
		plexwstest.Account{User: "AlbionWs@plex.com", Password: "pw-300758", PCN: 300758})
	cfg := source.Config{Driver: source.DriverPlexWS, URL: srv.URL, CAFile: srv.CAFile, Timeout: time.Minute,
		Accounts: map[int]source.Account{
			123681: {User: "SouthfieldWs@plex.com", Password: "pw-123681"},
			300758: {User: "AlbionWs@plex.com", Password: "pw-300758"},
		}}
	def := shippedDef(t, "trial-balance-ws")
	twin := shippedDef(t, "trial-balance")
	ctx := context.Background()
	src, err := source.Open(ctx, def.Source, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	wh, err := source.Open(ctx, "warehouse", whCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	if err := def.CheckSource(map[string]source.Config{"plex": cfg, "warehouse": whCfg}, "the test's sources"); err != nil {
		t.Fatal(err)
	}
	var opened []string
	lookups := func(_ context.Context, name string) (source.Source, error) {
		opened = append(opened, name)
		if name != "warehouse" {
			return nil, fmt.Errorf("source %q is not configured", name)
		}
		return wh, nil
	}
	wantCols := []source.Column{{Name: "period_display", Type: source.TypeString}, {Name: "category_type", Type: source.TypeString},
		{Name: "category_name", Type: source.TypeString}, {Name: "sub_category_name", Type: source.TypeString},
		{Name: "account_no", Type: source.TypeString}, {Name: "account_name", Type: source.TypeString},
		{Name: "current_debit_credit", Type: source.TypeDecimal}, {Name: "ytd_debit_credit", Type: source.TypeDecimal},
		{Name: "pcn", Type: source.TypeInt}, {Name: "period", Type: source.TypeInt}}
	calls := 0
	for _, tc := range []struct{ pcn, start, end int }{{300758, 202502, 202603}, {123681, 202601, 202601}, {123681, 202501, 202501}} {
		what := fmt.Sprintf("pcn %d %d..%d", tc.pcn, tc.start, tc.end)
		params := map[string]string{"pcn": fmt.Sprint(tc.pcn), "start_period": fmt.Sprint(tc.start), "end_period": fmt.Sprint(tc.end)}
		resolved, err := def.Resolve(params, time.Now(), time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		values, err := def.BindValues(resolved)
		if err != nil {
			t.Fatal(err)
		}
		expected, err := demo.ExpectedTrialBalance(opts, tc.pcn, tc.start, tc.end)
		if err != nil {
			t.Fatal(err)
		}
		var want [][]string
		for _, w := range expected {
			want = append(want, []string{w.PeriodDisplay, w.CategoryType, w.CategoryName, w.SubCategoryName, w.AccountNo, w.AccountName,
				demo.Cents(w.CurrentCents).String(), demo.Cents(w.YTDCents).String(), fmt.Sprint(tc.pcn), fmt.Sprint(w.Period)})
		}
		req := def.Request(src.Driver(), values)
		req.Sources = lookups
		rows, err := source.Run(ctx, src, req, def.Columns)
		if err != nil {
			t.Fatal(err)
		}
		checkColumns(t, rows.Columns(), wantCols)
		var got [][]string
		current, ytd := map[string]int64{}, map[string]int64{}
		for rows.Next() {
			v := rows.Values()
			r := make([]string, len(v))
			for i, x := range v {
				if x == nil {
					r[i] = "NULL" // a category the lookup did not find: never expected here
				} else {
					r[i] = fmt.Sprint(x)
				}
			}
			got = append(got, r)
			key := r[8] + " " + r[9]
			current[key] += cents(t, v[6])
			ytd[key] += cents(t, v[7])
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if len(want) == 0 {
			t.Fatalf("%s: no rows expected; the case tests nothing", what)
		}
		compareRows(t, "trial-balance-ws "+what+" vs the demo ledger", got, want)
		// The warehouse twin, run on the same warehouse: the same rows, column for column.
		_, twinRows := runShipped(t, wh, twin, params)
		compareRows(t, "trial-balance-ws "+what+" vs trial-balance", got, twinRows)
		// Debits equal credits in every PCN and period, for the period and year to date.
		for k, sum := range current {
			if sum != 0 || ytd[k] != 0 {
				t.Errorf("%s: pcn and period %s: current sums to %s, ytd to %s; want 0.00 and 0.00", what, k, demo.Cents(sum), demo.Cents(ytd[k]))
			}
		}
		calls += (tc.end/100-tc.start/100)*12 + tc.end%100 - tc.start%100 + 1
	}
	if got := len(srv.Calls()); got != calls {
		t.Errorf("%d calls to Plex, want one per period: %d", got, calls)
	}
	// The one lookup the definition declares, once per run: the warehouse.
	if len(opened) != 3 || opened[0] != "warehouse" || opened[1] != "warehouse" || opened[2] != "warehouse" {
		t.Errorf("lookups opened %v, want the warehouse once per run", opened)
	}
}

// dailyShiftReport answers Daily_Shift_Report_Get (9726) from the demo's shift
// reports: the rows of the calling account's PCN between @Start_Date and @End_Date
// (MM/DD/YYYY), hours with four decimals.
func dailyShiftReport(t *testing.T, opts demo.Options) plexwstest.Handler {
	t.Helper()
	byPCN := map[int][]demo.ShiftReport{}
	for _, pcn := range opts.Plants {
		reps, err := demo.ShiftReports(opts, pcn)
		if err != nil {
			t.Fatal(err)
		}
		byPCN[pcn] = reps
	}
	cols := []string{"PCN", "Report_Date", "Workcenter_Key", "Workcenter_Code", "Part_Key", "Part_No", "Part_Revision", "Part_Name",
		"Operation_No", "Operation_Code", "Parts_Produced", "Parts_Scrapped", "Earned_Hours", "Actual_Hours", "Quantity_Produced", "Labor_Rate"}
	return func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		start, err1 := time.Parse("01/02/2006", c.Inputs["@Start_Date"])
		end, err2 := time.Parse("01/02/2006", c.Inputs["@End_Date"])
		if err1 != nil || err2 != nil || c.Inputs["@PCNs"] != strconv.Itoa(c.PCN) {
			plexwstest.WriteError(w, c, 1001, fmt.Sprintf("bad inputs %v", c.Inputs))
			return
		}
		a := plexwstest.Begin(w, c, plexwstest.Status{})
		defer a.End()
		for _, s := range byPCN[c.PCN] {
			if s.ReportDate.Before(start) || s.ReportDate.After(end) {
				continue
			}
			// Plex's US-culture date, as the service writes it.
			_ = a.Strings(cols, strconv.Itoa(s.PCN), s.ReportDate.Format("1/2/2006 3:04:05 PM"), strconv.Itoa(s.WorkcenterKey), s.WorkcenterCode,
				strconv.Itoa(s.PartKey), s.PartNo, s.PartRevision, s.PartName, strconv.Itoa(s.OperationNo), s.OperationCode,
				strconv.FormatInt(s.PartsProduced, 10), strconv.FormatInt(s.PartsScrapped, 10), s.EarnedHours.String(), s.ActualHours.String(),
				strconv.FormatInt(s.QuantityProduced, 10), s.LaborRate.String())
		}
	}
}

// TestDailyProductionWSMatchesWarehouse serves the demo's shift reports through the
// stand-in Plex web service and runs the shipped daily-production-ws: every row equals,
// in every column, demo.ExpectedDailyProduction and daily-production run on the same
// demo data in a SQLite warehouse, a zero-divisor day included.
func TestDailyProductionWSMatchesWarehouse(t *testing.T) {
	t.Parallel()
	srv := plexwstest.New(t, dailyShiftReport(t, productionOpts),
		plexwstest.Account{User: "AlbionWs@plex.com", Password: "pw-300758", PCN: 300758},
		plexwstest.Account{User: "AvillaWs@plex.com", Password: "pw-310507", PCN: 310507})
	cfg := source.Config{Driver: source.DriverPlexWS, URL: srv.URL, CAFile: srv.CAFile, Timeout: time.Minute,
		Accounts: map[int]source.Account{300758: {User: "AlbionWs@plex.com", Password: "pw-300758"}, 310507: {User: "AvillaWs@plex.com", Password: "pw-310507"}}}
	src, err := source.Open(context.Background(), "plex", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	def := shippedDef(t, "daily-production-ws")
	twin := shippedDef(t, "daily-production")
	wh := productionStores(t)["sqlite"](t)
	cases := []struct {
		pcn  int
		date string
	}{{300758, "2026-03-04"}, {310507, "2026-03-08"}, {310507, "2026-04-09"}, {300758, "2026-04-10"}}
	var nullDay string
	for d := day("2026-02-24"); d.Before(day("2026-04-10")) && nullDay == ""; d = d.AddDate(0, 0, 1) {
		rows, err := demo.ExpectedDailyProduction(productionOpts, 300758, d)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.Efficiency == nil {
				nullDay = d.Format(time.DateOnly)
			}
		}
	}
	if nullDay == "" {
		t.Fatal("no day with a NULL efficiency in the test data")
	}
	cases = append(cases, struct {
		pcn  int
		date string
	}{300758, nullDay})
	ratio := func(r *demo.Ratio) string {
		if r == nil {
			return "NULL"
		}
		return r.String()
	}
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
		compareRows(t, fmt.Sprintf("daily-production-ws %d %s", tc.pcn, tc.date), got, wantRows)
		// The warehouse twin on the same demo data: the same rows, column for column.
		_, twinRows := runShipped(t, wh, twin, map[string]string{"pcn": fmt.Sprint(tc.pcn), "report_date": tc.date})
		compareRows(t, fmt.Sprintf("daily-production-ws %d %s vs daily-production", tc.pcn, tc.date), got, twinRows)
		if tc.date != "2026-04-10" && len(want) == 0 {
			t.Errorf("%d %s: no rows expected; the case tests nothing", tc.pcn, tc.date)
		}
	}
	for _, c := range srv.Calls() {
		if c.Key != 9726 || c.Inputs["@Start_Date"] != c.Inputs["@End_Date"] || !strings.Contains(c.Inputs["@Start_Date"], "/") {
			t.Errorf("call %+v", c)
		}
	}
}

// BenchmarkTrialBalanceWS runs trial-balance-ws for a PCN's last 12 periods against
// the stand-in Plex on the demo ledger, with its categories looked up in the SQLite
// demo warehouse (lookup) and, for comparison, the same definition with the lookup
// replaced by NULLs (no-lookup): what reading the dimension table adds to a run.
//
//	go test -run '^$' -bench BenchmarkTrialBalanceWS -benchtime 5x ./reportdefs/
func BenchmarkTrialBalanceWS(b *testing.B) {
	opts := demo.Options{Scale: 1, Periods: 15, End: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), PCNs: []int{123681}, Seed: 7, LogDays: -1}
	ctx := context.Background()
	d := "sqlite:" + filepath.Join(b.TempDir(), "demo.db")
	if _, err := demo.Load(ctx, d, opts); err != nil {
		b.Fatal(err)
	}
	wh, err := source.Open(ctx, "warehouse", source.Config{Driver: "sqlite", DSN: d})
	if err != nil {
		b.Fatal(err)
	}
	defer wh.Close()
	srv := plexwstest.New(b, activitySummary(b, opts), plexwstest.Account{User: "SouthfieldWs@plex.com", Password: "pw", PCN: 123681})
	src, err := source.Open(ctx, "plex", source.Config{Driver: source.DriverPlexWS, URL: srv.URL, CAFile: srv.CAFile, Timeout: time.Minute,
		Accounts: map[int]source.Account{123681: {User: "SouthfieldWs@plex.com", Password: "pw"}}})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	shipped := shippedDef(b, "trial-balance-ws")
	raw := string(shipped.Raw)
	i, j := strings.Index(raw, "  lookups:\n"), strings.Index(raw, "  # Over the table datasource")
	if i < 0 || j < i {
		b.Fatal("the shipped definition's lookups: block moved")
	}
	raw = raw[:i] + raw[j:]
	raw = strings.Replace(raw, "LEFT JOIN accounts a ON a.account_no = d.Account_No",
		"LEFT JOIN (SELECT NULL AS account_no, NULL AS category_type, NULL AS category_name, NULL AS sub_category_name) a ON 0", 1)
	bare, err := reportdefs.Parse("trial-balance-ws.yaml", []byte(raw))
	if err != nil {
		b.Fatal(err)
	}
	open := func(context.Context, string) (source.Source, error) { return wh, nil }
	for _, c := range []struct {
		name string
		def  *reportdefs.Definition
	}{{"lookup", shipped}, {"no-lookup", bare}} {
		b.Run(c.name, func(b *testing.B) {
			resolved, err := c.def.Resolve(map[string]string{"pcn": "123681", "start_period": "202504", "end_period": "202603"}, time.Now(), time.UTC)
			if err != nil {
				b.Fatal(err)
			}
			values, err := c.def.BindValues(resolved)
			if err != nil {
				b.Fatal(err)
			}
			var n int
			for b.Loop() {
				req := c.def.Request(src.Driver(), values)
				req.Sources = open
				rows, err := source.Run(ctx, src, req, c.def.Columns)
				if err != nil {
					b.Fatal(err)
				}
				n = 0
				for rows.Next() {
					n++
				}
				if err := rows.Err(); err != nil {
					b.Fatal(err)
				}
				rows.Close()
			}
			b.ReportMetric(float64(n), "rows")
		})
	}
}
