package reportdefs

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"rpt/internal/source"
)

// tbSchema is the demo's SQLite shape of the Plex accounting views and of the warehouse
// tables (money in cents).
const tbSchema = `
CREATE TABLE accounting_v_category_type (category_type TEXT PRIMARY KEY, revenue_or_expense INTEGER);
CREATE TABLE accounting_v_category_e (pcn INTEGER, category_no INTEGER, category_name TEXT, category_type TEXT, PRIMARY KEY (pcn, category_no));
CREATE TABLE accounting_v_category_account_e (pcn INTEGER, category_no INTEGER, account_no TEXT, PRIMARY KEY (pcn, account_no));
CREATE TABLE accounting_v_sub_category_e (pcn INTEGER, sub_category_no INTEGER, sub_category_name TEXT, PRIMARY KEY (pcn, sub_category_no));
CREATE TABLE accounting_v_sub_category_account_e (pcn INTEGER, sub_category_no INTEGER, account_no TEXT, PRIMARY KEY (pcn, account_no));
CREATE TABLE accounting_v_account_e (pcn INTEGER, account_key INTEGER, account_no TEXT, account_name TEXT, active INTEGER,
  category_type TEXT, revenue_or_expense INTEGER, PRIMARY KEY (pcn, account_key), UNIQUE (pcn, account_no));
CREATE TABLE accounting_v_period_e (pcn INTEGER, period_key INTEGER, period INTEGER, period_display TEXT, fiscal_order INTEGER,
  quarter_group INTEGER, begin_date TEXT, end_date TEXT, period_status TEXT, add_date TEXT, update_date TEXT,
  PRIMARY KEY (pcn, period_key), UNIQUE (pcn, period));
CREATE TABLE accounting_v_balance_e (pcn INTEGER, account_key INTEGER, account_no TEXT, period INTEGER,
  debit_cents INTEGER, credit_cents INTEGER, balance_cents INTEGER, PRIMARY KEY (pcn, account_key, period));
CREATE TABLE accounting_account (pcn INTEGER, account_key INTEGER, account_no TEXT, account_name TEXT, active INTEGER,
  category_type TEXT, category_name TEXT, sub_category_name TEXT, revenue_or_expense INTEGER, PRIMARY KEY (pcn, account_no));
CREATE TABLE accounting_period (pcn INTEGER, period INTEGER, period_key INTEGER, period_display TEXT, fiscal_order INTEGER,
  quarter_group INTEGER, begin_date TEXT, end_date TEXT, period_status TEXT, add_date TEXT, update_date TEXT,
  PRIMARY KEY (pcn, period));
CREATE TABLE accounting_balance (pcn INTEGER, account_key INTEGER, account_no TEXT, period INTEGER,
  debit_cents INTEGER, credit_cents INTEGER, balance_cents INTEGER, PRIMARY KEY (pcn, account_no, period));
`

// trialBalanceReports are the two shipped trial balances: the warehouse shape
// (accounting_account, accounting_period, accounting_balance) and the Plex-side
// views. fillTrialBalance writes the same hand-made data in both shapes, so both
// reports must give the same hand-worked numbers.
var trialBalanceReports = []string{"trial-balance", "trial-balance-live"}

type tbAccount struct {
	key               int
	no, name, catType string
	revExp            int
	catNo             int
	catName           string
	subNo             int // 0: no sub-category
	subName           string
	activity          map[int][2]int64 // period -> debit, credit cents
}

const pcnHQ, pcnOther = 123681, 295932

// tbAccounts is a small double-entry ledger, each period's debits equal to its credits,
// with the year closed into retained earnings in December. The entries (cents):
//
//	202411  cash sale 1000.00           Cash D 100000  Sales C 100000
//	        goods on account 12.30      COGS D   1230  AP    C   1230
//	202412  cash sale 250.00            Cash D  25000  Sales C  25000
//	        goods for cash 300.00       COGS D  30000  Cash  C  30000
//	        close 2024: Sales D 125000 (its year), COGS C 31230 (its year), RE C 93770
//	202501  cash sale 100.00            Cash D  10000  Sales C  10000
//	        goods on account 0.07       COGS D      7  AP    C      7
//	        pay the vendor 12.30        AP   D   1230  Cash  C   1230
//	202502  cash sale 0.01              Cash D      1  Sales C      1
//	        goods for cash 0.99         COGS D     99  Cash  C     99
//	202503  refund a return 0.05        Sales D     5  Cash  C      5
//	        pay the vendor 0.07         AP   D      7  Cash  C      7
//	202512  vendor rebate 1.06          Cash D    106  COGS  C    106
//	        close 2025: Sales D 9996, COGS nothing (its year is 7 + 99 - 106 = 0), RE C 9996
var tbAccounts = []tbAccount{
	{1, "10000-000", "Cash", "Asset", 0, 10, "Current assets", 101, "Cash and equivalents", map[int][2]int64{
		202411: {100000, 0}, 202412: {25000, 30000}, 202501: {10000, 1230}, 202502: {1, 99}, 202503: {0, 12}, 202512: {106, 0}}},
	{2, "20000-000", "Accounts payable", "Liability", 0, 20, "Current liabilities", 201, "Payables", map[int][2]int64{
		202411: {0, 1230}, 202501: {1230, 7}, 202503: {7, 0}}},
	{3, "30000-000", "Retained earnings", "Equity", 0, 30, "Equity", 301, "Retained earnings", map[int][2]int64{
		202412: {0, 93770}, 202512: {0, 9996}}},
	{4, "40000-000", "Sales", "Revenue", 1, 40, "Sales", 401, "Product sales", map[int][2]int64{
		202411: {0, 100000}, 202412: {125000, 25000}, 202501: {0, 10000}, 202502: {0, 1}, 202503: {5, 0}, 202512: {9996, 0}}},
	{5, "50000-000", "Cost of goods sold", "Expense", 1, 50, "Cost of sales", 0, "", map[int][2]int64{
		202411: {1230, 0}, 202412: {30000, 31230}, 202501: {7, 0}, 202502: {99, 0}, 202512: {0, 106}}},
}

// tbPeriods spans a year boundary: 202411 .. 202512 (14 periods).
func tbPeriods() []int {
	var out []int
	for y, m := 2024, 11; y*100+m <= 202512; m++ {
		if m == 13 {
			y, m = y+1, 1
		}
		out = append(out, y*100+m)
	}
	return out
}

func buildTrialBalanceDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "tb.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(tbSchema); err != nil {
		t.Fatal(err)
	}
	fillTrialBalance(t, db, true)
	return db
}

// fillTrialBalance inserts tbAccounts; money goes in as integer cents (SQLite) or as
// exact decimal text (MySQL DECIMAL columns).
func fillTrialBalance(t *testing.T, db *sql.DB, cents bool) {
	t.Helper()
	money := func(c int64) any {
		if cents {
			return c
		}
		return centsText(c)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, ct := range []struct {
		name string
		re   int
	}{{"Asset", 0}, {"Liability", 0}, {"Equity", 0}, {"Revenue", 1}, {"Expense", 1}} {
		exec(`INSERT INTO accounting_v_category_type VALUES (?, ?)`, ct.name, ct.re)
	}
	periods := tbPeriods()
	if len(periods) != 14 {
		t.Fatalf("periods = %v", periods)
	}
	for _, pcn := range []int{pcnHQ, pcnOther} {
		for i, p := range periods {
			y, m := p/100, p%100
			begin, end := fmt.Sprintf("%04d-%02d-01", y, m), time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
			exec(`INSERT INTO accounting_v_period_e VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'closed', '2025-01-01 00:00:00', '2025-01-01 00:00:00')`,
				pcn, i+1, p, fmt.Sprintf("%04d-%02d", y, m), m, (m-1)/3+1, begin, end)
			exec(`INSERT INTO accounting_period VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'closed', '2025-01-01 00:00:00', '2025-01-01 00:00:00')`,
				pcn, p, i+1, fmt.Sprintf("%04d-%02d", y, m), m, (m-1)/3+1, begin, end)
		}
	}
	for _, a := range tbAccounts {
		exec(`INSERT INTO accounting_v_account_e VALUES (?, ?, ?, ?, 1, ?, ?)`, pcnHQ, a.key, a.no, a.name, a.catType, a.revExp)
		exec(`INSERT INTO accounting_v_category_e VALUES (?, ?, ?, ?)`, pcnHQ, a.catNo, a.catName, a.catType)
		exec(`INSERT INTO accounting_v_category_account_e VALUES (?, ?, ?)`, pcnHQ, a.catNo, a.no)
		if a.subNo != 0 {
			exec(`INSERT INTO accounting_v_sub_category_e VALUES (?, ?, ?)`, pcnHQ, a.subNo, a.subName)
			exec(`INSERT INTO accounting_v_sub_category_account_e VALUES (?, ?, ?)`, pcnHQ, a.subNo, a.no)
		}
		// The warehouse row carries the categories, as the ETL flattens them.
		var subName any
		if a.subNo != 0 {
			subName = a.subName
		}
		exec(`INSERT INTO accounting_account VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)`, pcnHQ, a.key, a.no, a.name, a.catType, a.catName, subName, a.revExp)
		for _, p := range periods {
			dc := a.activity[p]
			exec(`INSERT INTO accounting_v_balance_e VALUES (?, ?, ?, ?, ?, ?, ?)`, pcnHQ, a.key, a.no, p, money(dc[0]), money(dc[1]), money(dc[0]-dc[1]))
			exec(`INSERT INTO accounting_balance VALUES (?, ?, ?, ?, ?, ?, ?)`, pcnHQ, a.key, a.no, p, money(dc[0]), money(dc[1]), money(dc[0]-dc[1]))
		}
	}
	// Another plant with the same account key and number, in no category: its activity
	// must never leak into HQ's.
	exec(`INSERT INTO accounting_v_account_e VALUES (?, 1, '10000-000', 'Cash', 1, 'Asset', 0)`, pcnOther)
	exec(`INSERT INTO accounting_account VALUES (?, 1, '10000-000', 'Cash', 1, 'Asset', NULL, NULL, 0)`, pcnOther)
	for _, p := range periods {
		exec(`INSERT INTO accounting_v_balance_e VALUES (?, 1, '10000-000', ?, ?, ?, ?)`, pcnOther, p, money(77777), money(0), money(77777))
		exec(`INSERT INTO accounting_balance VALUES (?, 1, '10000-000', ?, ?, ?, ?)`, pcnOther, p, money(77777), money(0), money(77777))
	}
}

type tbRow struct {
	period, catType, catName, subName, accountNo, accountName, current, ytd string
}

func runTrialBalance(t *testing.T, db *sql.DB, driver string, d *Definition, given map[string]string) []tbRow {
	t.Helper()
	resolved, err := d.Resolve(given, time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	params, err := d.BindValues(resolved)
	if err != nil {
		t.Fatal(err)
	}
	q, args, err := source.Bind(driver, d.SQLFor(driver), params)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	defer rows.Close()
	var out []tbRow
	for rows.Next() {
		var r tbRow
		var cat, catName, sub sql.NullString
		var pcn, period int64
		if err := rows.Scan(&r.period, &cat, &catName, &sub, &r.accountNo, &r.accountName, &r.current, &r.ytd, &pcn, &period); err != nil {
			t.Fatal(err)
		}
		// pcn and period key the history table: they must agree with the row.
		if want := given["pcn"]; want != "" && fmt.Sprint(pcn) != want {
			t.Errorf("row pcn %d, want %s", pcn, want)
		}
		if fmt.Sprintf("%04d-%02d", period/100, period%100) != r.period {
			t.Errorf("row period %d does not match period_display %s", period, r.period)
		}
		r.catType, r.catName, r.subName = cat.String, catName.String, sub.String
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTrialBalanceSQLite checks the shipped SQLite dialects of both trial balances
// against values worked out by hand from tbAccounts.
func TestTrialBalanceSQLite(t *testing.T) {
	t.Parallel()
	db := buildTrialBalanceDB(t)
	for _, name := range trialBalanceReports {
		t.Run(name, func(t *testing.T) { checkTrialBalance(t, db, "sqlite", name) })
	}
}

func checkTrialBalance(t *testing.T, db *sql.DB, driver, report string) {
	cat, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	d, err := cat.Get(report)
	if err != nil {
		t.Fatal(err)
	}

	type want struct{ period, account, current, ytd string }
	tests := []struct {
		name  string
		given map[string]string
		want  []want
	}{
		{
			// YTD of balance-sheet accounts includes 202411, before start_period;
			// revenue/expense YTD resets in 202501, after the December close brought
			// it to zero (Sales 2024: -1000.00 - 250.00 + 1250.00 close).
			name:  "across the year boundary",
			given: map[string]string{"start_period": "202412", "end_period": "202502"},
			want: []want{
				{"2024-12", "10000-000", "-50.00", "950.00"},
				{"2024-12", "20000-000", "0.00", "-12.30"},
				{"2024-12", "30000-000", "-937.70", "-937.70"},
				{"2024-12", "40000-000", "1000.00", "0.00"},
				{"2024-12", "50000-000", "-12.30", "0.00"},
				{"2025-01", "10000-000", "87.70", "1037.70"},
				{"2025-01", "20000-000", "12.23", "-0.07"},
				{"2025-01", "30000-000", "0.00", "-937.70"},
				{"2025-01", "40000-000", "-100.00", "-100.00"},
				{"2025-01", "50000-000", "0.07", "0.07"},
				{"2025-02", "10000-000", "-0.98", "1036.72"},
				{"2025-02", "20000-000", "0.00", "-0.07"},
				{"2025-02", "30000-000", "0.00", "-937.70"},
				{"2025-02", "40000-000", "-0.01", "-100.01"},
				{"2025-02", "50000-000", "0.99", "1.06"},
			},
		},
		{
			name:  "one period, earlier activity only in ytd",
			given: map[string]string{"start_period": "202503", "end_period": "202503"},
			want: []want{
				{"2025-03", "10000-000", "-0.12", "1036.60"},
				{"2025-03", "20000-000", "0.07", "0.00"},
				{"2025-03", "30000-000", "0.00", "-937.70"},
				{"2025-03", "40000-000", "0.05", "-99.96"},
				{"2025-03", "50000-000", "0.00", "1.06"},
			},
		},
		{
			name:  "last period of the data",
			given: map[string]string{"start_period": "2025-12", "end_period": "202512", "pcn": "123681"},
			want: []want{
				{"2025-12", "10000-000", "1.06", "1037.66"},
				{"2025-12", "20000-000", "0.00", "0.00"},
				{"2025-12", "30000-000", "-99.96", "-1037.66"},
				{"2025-12", "40000-000", "99.96", "0.00"},
				{"2025-12", "50000-000", "-1.06", "0.00"},
			},
		},
		{
			name:  "default periods (last-month of 2026-01-10 = 202512)",
			given: map[string]string{},
			want: []want{
				{"2025-12", "10000-000", "1.06", "1037.66"},
				{"2025-12", "20000-000", "0.00", "0.00"},
				{"2025-12", "30000-000", "-99.96", "-1037.66"},
				{"2025-12", "40000-000", "99.96", "0.00"},
				{"2025-12", "50000-000", "-1.06", "0.00"},
			},
		},
		{
			name:  "one period: start equal to end",
			given: map[string]string{"start_period": "202512", "end_period": "202512"},
			want: []want{
				{"2025-12", "10000-000", "1.06", "1037.66"},
				{"2025-12", "20000-000", "0.00", "0.00"},
				{"2025-12", "30000-000", "-99.96", "-1037.66"},
				{"2025-12", "40000-000", "99.96", "0.00"},
				{"2025-12", "50000-000", "-1.06", "0.00"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runTrialBalance(t, db, driver, d, tt.given)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d rows, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.period != w.period || g.accountNo != w.account || g.current != w.current || g.ytd != w.ytd {
					t.Errorf("row %d = {%s %s %s %s}, want %+v", i, g.period, g.accountNo, g.current, g.ytd, w)
				}
			}
		})
	}

	t.Run("all 14 periods and the category columns", func(t *testing.T) {
		got := runTrialBalance(t, db, driver, d, map[string]string{"start_period": "202411", "end_period": "202512"})
		if len(got) != 14*len(tbAccounts) {
			t.Fatalf("got %d rows, want %d", len(got), 14*len(tbAccounts))
		}
		first := got[0]
		if first != (tbRow{"2024-11", "Asset", "Current assets", "Cash and equivalents", "10000-000", "Cash", "1000.00", "1000.00"}) {
			t.Errorf("first row = %+v", first)
		}
		if cogs := got[4]; cogs.catType != "Expense" || cogs.subName != "" || cogs.ytd != "12.30" {
			t.Errorf("COGS row = %+v (want Expense, no sub-category, 12.30)", cogs)
		}
		// An independent running sum in Go over the same activity agrees on every row.
		ytd := map[int]int64{}
		i := 0
		for _, p := range tbPeriods() {
			for _, a := range tbAccounts {
				if a.revExp == 1 && p%100 == 1 {
					ytd[a.key] = 0
				}
				dc := a.activity[p]
				ytd[a.key] += dc[0] - dc[1]
				if g := got[i]; g.current != centsText(dc[0]-dc[1]) || g.ytd != centsText(ytd[a.key]) {
					t.Errorf("%d %s: got %s/%s, want %s/%s", p, a.no, g.current, g.ytd, centsText(dc[0]-dc[1]), centsText(ytd[a.key]))
				}
				i++
			}
		}
		// A ledger: each period's rows sum to zero, current and year-to-date.
		sums := map[string][2]int64{}
		for _, g := range got {
			s := sums[g.period]
			s[0] += textCents(t, g.current)
			s[1] += textCents(t, g.ytd)
			sums[g.period] = s
		}
		for p, s := range sums {
			if s != [2]int64{} {
				t.Errorf("%s: current sums to %s, ytd to %s; want 0.00 and 0.00", p, centsText(s[0]), centsText(s[1]))
			}
		}
		if len(sums) != 14 {
			t.Errorf("%d periods, want 14", len(sums))
		}
	})
}

// textCents reads a decimal with two places as cents.
func textCents(t *testing.T, s string) int64 {
	t.Helper()
	dot := strings.Index(s, ".")
	n, err := strconv.ParseInt(strings.Replace(s, ".", "", 1), 10, 64)
	if dot < 0 || len(s)-dot != 3 || err != nil {
		t.Fatalf("money %q is not a decimal with two places", s)
	}
	return n
}

func centsText(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

// TestTrialBalanceDialects checks the two shipped trial balances' settings, and that
// every dialect of each uses the same parameters and yields the same columns.
func TestTrialBalanceDialects(t *testing.T) {
	t.Parallel()
	cat, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		report      string
		source      string
		concurrency int
		store       bool
		dialects    []string // besides the default (MySQL)
		tables      []string
	}{
		{"trial-balance", "warehouse", 1, true, []string{"sqlite"}, []string{"accounting_balance", "accounting_account", "accounting_period"}},
		{"trial-balance-live", "plex-odbc", 2, false, []string{"sqlite", "sqlserver"}, []string{"accounting_v_balance_e", "accounting_v_account_e", "accounting_v_period_e"}},
	}
	for _, tt := range tests {
		t.Run(tt.report, func(t *testing.T) {
			d, err := cat.Get(tt.report)
			if err != nil {
				t.Fatal(err)
			}
			if d.Source != tt.source || d.Concurrency != tt.concurrency || d.MaxAttempts != 3 || d.Timeout != 0 {
				t.Errorf("definition = source %q concurrency %d max_attempts %d timeout %v", d.Source, d.Concurrency, d.MaxAttempts, d.Timeout)
			}
			if (d.Store != nil) != tt.store {
				t.Errorf("store = %+v, want one: %v", d.Store, tt.store)
			}
			if d.Columns["current_debit_credit"] != "decimal" || d.Columns["ytd_debit_credit"] != "decimal" {
				t.Errorf("columns = %v", d.Columns)
			}
			var dialects []string
			for k := range d.Dialects {
				dialects = append(dialects, k)
			}
			slices.Sort(dialects)
			if !slices.Equal(dialects, tt.dialects) {
				t.Errorf("dialects %v, want %v", dialects, tt.dialects)
			}
			resolved, err := d.Resolve(nil, time.Date(2026, 3, 1, 0, 30, 0, 0, time.UTC), time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(resolved), `{"end_period":202602,"pcn":123681,"start_period":202602}`; got != want {
				t.Errorf("resolved = %s, want %s", got, want)
			}
			for _, drv := range append([]string{"mysql"}, tt.dialects...) {
				q := d.SQLFor(drv)
				names := map[string]bool{}
				for _, ref := range source.ParamRefs(drv, q) {
					names[ref.Name] = true
				}
				if len(names) != 3 || !names["pcn"] || !names["start_period"] || !names["end_period"] {
					t.Errorf("%s: params %v", drv, names)
				}
				for _, want := range append([]string{"period_display", "category_type", "category_name", "sub_category_name",
					"account_no", "account_name", "current_debit_credit", "ytd_debit_credit", "ORDER BY"}, tt.tables...) {
					if !strings.Contains(q, want) {
						t.Errorf("%s: SQL lacks %q", drv, want)
					}
				}
			}
			if !strings.Contains(d.SQLFor("mysql"), "DIV 100") || strings.Contains(d.SQLFor("sqlite"), "DIV") ||
				strings.Contains(d.SQLFor("sqlite"), " debit -") {
				t.Error("dialects are not the expected ones")
			}
		})
	}
}
