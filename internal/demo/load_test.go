package demo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"rpt/internal/dsn"
	"rpt/internal/testenv"
)

// openTestDB opens what Load wrote, for checks in SQL.
func openTestDB(t *testing.T, dsnStr string) (*sql.DB, string) {
	t.Helper()
	scheme, err := dsn.Scheme(dsnStr)
	if err != nil {
		t.Fatal(err)
	}
	var db *sql.DB
	if scheme == "sqlite" {
		path, err := dsn.SQLitePath(dsnStr)
		if err != nil {
			t.Fatal(err)
		}
		db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
	} else {
		cfg, err := dsn.MySQL(dsnStr)
		if err != nil {
			t.Fatal(err)
		}
		c, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db = sql.OpenDB(c)
	}
	t.Cleanup(func() { db.Close() })
	return db, scheme
}

// expected holds what the generator says a load contains, computed in Go.
type expected struct {
	rows                   map[string]int // per table and PCN: "table/pcn"
	debit, credit, balance map[int]Cents  // per PCN
}

func expect(t *testing.T, opts Options) expected {
	t.Helper()
	e := expected{rows: map[string]int{}, debit: map[int]Cents{}, credit: map[int]Cents{}, balance: map[int]Cents{}}
	o, err := opts.normalize()
	if err != nil {
		t.Fatal(err)
	}
	e.rows[TableCategoryType.Name] = len(CategoryTypes())
	for _, pcn := range o.PCNs {
		accts, err := Accounts(opts, pcn)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := Periods(opts)
		if err != nil {
			t.Fatal(err)
		}
		k := func(tb Table) string { return fmt.Sprint(tb.Name, "/", pcn) }
		e.rows[k(TableCategory)] = len(Categories())
		e.rows[k(TableSubCategory)] = len(SubCategories())
		e.rows[k(TableAccount)] = len(accts)
		e.rows[k(TableCategoryAccount)] = len(accts)
		e.rows[k(TableSubCategoryAccount)] = len(accts)
		e.rows[k(TablePeriod)] = len(ps)
		e.rows[k(TableWarehouseAccount)] = len(accts)
		e.rows[k(TableWarehousePeriod)] = len(ps)
		seq, err := Balances(opts, pcn)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for b := range seq {
			n++
			e.debit[pcn] += b.Debit
			e.credit[pcn] += b.Credit
			e.balance[pcn] += b.Balance
		}
		e.rows[k(TableBalance)] = n
		e.rows[k(TableWarehouseBalance)] = n
	}
	return e
}

// checkLoaded compares row counts and money sums in the database with the generator's.
func checkLoaded(t *testing.T, db *sql.DB, driver string, opts Options) {
	t.Helper()
	ctx := context.Background()
	e := expect(t, opts)
	o, _ := opts.normalize()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+TableCategoryType.Name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != e.rows[TableCategoryType.Name] {
		t.Errorf("%s: %d rows, want %d", TableCategoryType.Name, n, e.rows[TableCategoryType.Name])
	}
	for _, pcn := range o.PCNs {
		for _, tb := range append(Tables()[1:], WarehouseTables()...) {
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+tb.Name+" WHERE pcn = ?", pcn).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if want := e.rows[fmt.Sprint(tb.Name, "/", pcn)]; n != want {
				t.Errorf("pcn %d: %s: %d rows, want %d", pcn, tb.Name, n, want)
			}
		}
		cols := "SUM(debit), SUM(credit), SUM(balance)"
		if driver == "sqlite" {
			// Integer cents; CAST keeps SUM an integer (it is) and formats it as text.
			cols = "CAST(SUM(debit_cents) AS TEXT), CAST(SUM(credit_cents) AS TEXT), CAST(SUM(balance_cents) AS TEXT)"
		}
		want := func(c Cents) string {
			if driver == "sqlite" {
				return fmt.Sprint(int64(c))
			}
			return c.String()
		}
		for _, tb := range []Table{TableBalance, TableWarehouseBalance} {
			var debit, credit, balance string
			if err := db.QueryRowContext(ctx, "SELECT "+cols+" FROM "+tb.Name+" WHERE pcn = ?", pcn).Scan(&debit, &credit, &balance); err != nil {
				t.Fatal(err)
			}
			if debit != want(e.debit[pcn]) || credit != want(e.credit[pcn]) || balance != want(e.balance[pcn]) {
				t.Errorf("pcn %d: %s: SQL sums debit %s credit %s balance %s, generator %s %s %s",
					pcn, tb.Name, debit, credit, balance, want(e.debit[pcn]), want(e.credit[pcn]), want(e.balance[pcn]))
			}
		}
		checkWarehouseAccounts(t, db, opts, pcn)
		if e.debit[pcn] == 0 || e.credit[pcn] == 0 {
			t.Errorf("pcn %d: no activity generated", pcn)
		}
	}
}

// checkWarehouseAccounts compares every accounting_account row of a PCN, categories
// flattened in, with the generator's chart.
func checkWarehouseAccounts(t *testing.T, db *sql.DB, opts Options, pcn int) {
	t.Helper()
	accts, err := Accounts(opts, pcn)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(context.Background(), `SELECT account_key, account_no, account_name, active, category_type,
		category_name, sub_category_name, revenue_or_expense FROM accounting_account WHERE pcn = ? ORDER BY account_no`, pcn)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var a Account
		var active, revExp int
		if err := rows.Scan(&a.Key, &a.No, &a.Name, &active, &a.CategoryType, &a.CategoryName, &a.SubCategoryName, &revExp); err != nil {
			t.Fatal(err)
		}
		if i < len(accts) {
			w := accts[i]
			if a.Key != w.Key || a.No != w.No || a.Name != w.Name || (active == 1) != w.Active || a.CategoryType != w.CategoryType ||
				a.CategoryName != w.CategoryName || a.SubCategoryName != w.SubCategoryName || (revExp == 1) != w.RevenueOrExpense {
				t.Fatalf("pcn %d: accounting_account row %d = %+v active %d revenue_or_expense %d, want %+v", pcn, i, a, active, revExp, w)
			}
		}
		i++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(accts) {
		t.Errorf("pcn %d: accounting_account has %d rows, want %d", pcn, i, len(accts))
	}
}

// trialBalanceWarehouseSQL is an independent trial balance over the warehouse tables.
func trialBalanceWarehouseSQL(driver string) string {
	money, year := "b.balance", "b.period DIV 100"
	if driver == "sqlite" {
		money, year = "b.balance_cents", "b.period / 100"
	}
	return `
SELECT period, period_display, category_type, category_name, sub_category_name, account_no, account_name, cur, ytd
FROM (
  SELECT b.period, p.period_display, a.category_type, a.category_name, a.sub_category_name, a.account_no, a.account_name,
    ` + money + ` AS cur,
    SUM(` + money + `) OVER (PARTITION BY a.account_no, CASE WHEN a.revenue_or_expense = 1 THEN ` + year + ` ELSE 0 END
                          ORDER BY b.period) AS ytd
  FROM accounting_balance b
  JOIN accounting_account a ON a.pcn = b.pcn AND a.account_no = b.account_no
  JOIN accounting_period p ON p.pcn = b.pcn AND p.period = b.period
  WHERE b.pcn = ? AND b.period <= ?
) tb
WHERE period >= ?
ORDER BY period, account_no`
}

// trialBalanceSQL is an independent trial balance in SQL over the loaded tables, to
// check the schema joins up and agrees with ExpectedTrialBalance.
func trialBalanceSQL(driver string) string {
	money, year := "b.balance", "p.period DIV 100"
	if driver == "sqlite" {
		money, year = "b.balance_cents", "p.period / 100"
	}
	return `
SELECT period, period_display, category_type, category_name, sub_category_name, account_no, account_name, cur, ytd
FROM (
  SELECT p.period, p.period_display, a.category_type, c.category_name, s.sub_category_name, a.account_no, a.account_name,
    ` + money + ` AS cur,
    SUM(` + money + `) OVER (PARTITION BY a.account_key, CASE WHEN t.revenue_or_expense = 1 THEN ` + year + ` ELSE 0 END
                          ORDER BY p.period) AS ytd
  FROM accounting_v_account_e a
  JOIN accounting_v_category_type t ON t.category_type = a.category_type
  JOIN accounting_v_balance_e b ON b.pcn = a.pcn AND b.account_key = a.account_key
  JOIN accounting_v_period_e p ON p.pcn = b.pcn AND p.period = b.period
  JOIN accounting_v_category_account_e ca ON ca.pcn = a.pcn AND ca.account_no = a.account_no
  JOIN accounting_v_category_e c ON c.pcn = ca.pcn AND c.category_no = ca.category_no
  JOIN accounting_v_sub_category_account_e sa ON sa.pcn = a.pcn AND sa.account_no = a.account_no
  JOIN accounting_v_sub_category_e s ON s.pcn = sa.pcn AND s.sub_category_no = sa.sub_category_no
  WHERE a.pcn = ? AND p.period <= ?
) tb
WHERE period >= ?
ORDER BY period, account_no`
}

func checkTrialBalance(t *testing.T, db *sql.DB, driver, query string, opts Options, pcn, start, end int) {
	t.Helper()
	want, err := ExpectedTrialBalance(opts, pcn, start, end)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(context.Background(), query, pcn, end, start)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	money := func(c int64) string {
		if driver == "sqlite" {
			return fmt.Sprint(c)
		}
		return Cents(c).String()
	}
	i := 0
	for rows.Next() {
		var r TrialBalanceRow
		var cur, ytd string
		if err := rows.Scan(&r.Period, &r.PeriodDisplay, &r.CategoryType, &r.CategoryName, &r.SubCategoryName,
			&r.AccountNo, &r.AccountName, &cur, &ytd); err != nil {
			t.Fatal(err)
		}
		if i >= len(want) {
			i++
			continue
		}
		w := want[i]
		if r.Period != w.Period || r.PeriodDisplay != w.PeriodDisplay || r.CategoryType != w.CategoryType ||
			r.CategoryName != w.CategoryName || r.SubCategoryName != w.SubCategoryName || r.AccountNo != w.AccountNo ||
			r.AccountName != w.AccountName || cur != money(w.CurrentCents) || ytd != money(w.YTDCents) {
			t.Fatalf("trial balance row %d: SQL %+v cur %s ytd %s, want %+v", i, r, cur, ytd, w)
		}
		i++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(want) || i == 0 {
		t.Errorf("trial balance: SQL gave %d rows, ExpectedTrialBalance %d", i, len(want))
	}
}

func sqliteDSN(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "demo.db")
}

func TestLoadSQLite(t *testing.T) {
	t.Parallel()
	testLoad(t, sqliteDSN(t))
}

func TestLoadMariaDB(t *testing.T) {
	t.Parallel()
	testLoad(t, testenv.MariaDB(t))
}

func testLoad(t *testing.T, target string) {
	ctx := context.Background()
	opts := testOptions()
	opts.Periods = 14 // 202409..202610: the trial balance below starts after the first period
	opts.PCNs = []int{123681, 300758}
	opts.LogDays = -1 // accounting only: production data has tests of its own
	st, err := Load(ctx, target, opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if st.PCNs != 2 || st.Accounts != 2*AccountsPerScale || st.Periods != opts.Periods ||
		st.Balances != 2*AccountsPerScale*opts.Periods || st.Elapsed <= 0 {
		t.Errorf("stats %+v", st)
	}
	t.Logf("loaded %+v", st)
	db, driver := openTestDB(t, target)
	checkLoaded(t, db, driver, opts)
	checkTrialBalance(t, db, driver, trialBalanceSQL(driver), opts, 300758, 202510, 202610)
	checkTrialBalance(t, db, driver, trialBalanceWarehouseSQL(driver), opts, 300758, 202510, 202610)

	// Reloading one PCN with another seed replaces its rows and keeps the other PCN's.
	reload := opts
	reload.PCNs = []int{300758}
	reload.Seed = 7
	if _, err := Load(ctx, target, reload); err != nil {
		t.Fatalf("reload: %v", err)
	}
	checkLoaded(t, db, driver, reload)
	kept := opts
	kept.PCNs = []int{123681}
	checkLoaded(t, db, driver, kept)
}

func TestLoadFailureKeepsPreviousData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	target := sqliteDSN(t)
	opts := testOptions()
	opts.Periods = 6
	if _, err := Load(ctx, target, opts); err != nil {
		t.Fatal(err)
	}
	db, driver := openTestDB(t, target)
	// Fail the next load at its last accounting table, after every delete and most
	// inserts.
	if _, err := db.ExecContext(ctx, `CREATE TRIGGER fail_load BEFORE INSERT ON accounting_balance
		WHEN NEW.period = 202610 BEGIN SELECT RAISE(ABORT, 'injected failure'); END`); err != nil {
		t.Fatal(err)
	}
	other := opts
	other.Seed = 99
	_, err := Load(ctx, target, other)
	if err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("Load with a failing trigger: %v, want the injected failure", err)
	}
	checkLoaded(t, db, driver, opts)

	// A cancelled load changes nothing either.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Load(cctx, target, other); !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a cancelled context: %v, want context.Canceled", err)
	}
	checkLoaded(t, db, driver, opts)
}

func TestLoadInvalid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "never.db")
	tests := []struct {
		name string
		dsn  string
		opts Options
		want string
	}{
		{"zero scale", "sqlite:" + path, Options{}, "scale"},
		{"duplicate pcn", "sqlite:" + path, Options{Scale: 1, PCNs: []int{1, 1}}, "pcns[1]"},
		{"empty dsn", "", testOptions(), "empty"},
		{"unknown scheme", "postgres://localhost/x", testOptions(), "postgres"},
		{"sqlserver", "sqlserver://localhost", testOptions(), "sqlserver"},
		{"sqlite without path", "sqlite:", testOptions(), "no path"},
		{"mysql without database", "mysql://root@127.0.0.1:3306/", testOptions(), "no database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(context.Background(), tt.dsn, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load(%q): error %v, want one naming %q", tt.dsn, err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, dsn.ErrInvalid) {
				t.Errorf("Load(%q): error %v is neither demo.ErrInvalid nor dsn.ErrInvalid", tt.dsn, err)
			}
		})
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected load created %s (stat: %v)", path, err)
	}
}

// BenchmarkLoadSQLite measures the quickstart's first step: the default scale-1 load
// into a new SQLite file, and a reload replacing it.
func BenchmarkLoadSQLite(b *testing.B) {
	opts := Options{Scale: 1, End: testEnd}
	b.Run("new", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			target := "sqlite:" + filepath.Join(b.TempDir(), "demo.db")
			b.StartTimer()
			st, err := Load(context.Background(), target, opts)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(st.Balances), "balances/op")
		}
	})
	b.Run("reload", func(b *testing.B) {
		target := "sqlite:" + filepath.Join(b.TempDir(), "demo.db")
		if _, err := Load(context.Background(), target, opts); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := Load(context.Background(), target, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestLoadedNeedsWarehouse: the quickstart loads again when the warehouse tables are
// missing (a demo database from before they existed), not only when balances are old.
func TestLoadedNeedsWarehouse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	target := sqliteDSN(t)
	opts := testOptions()
	opts.Periods = 2
	opts.LogDays = 1
	if Loaded(ctx, target, testEnd) {
		t.Fatal("Loaded before any load")
	}
	if _, err := Load(ctx, target, opts); err != nil {
		t.Fatal(err)
	}
	if !Loaded(ctx, target, testEnd) {
		t.Fatal("not Loaded after a load")
	}
	if Loaded(ctx, target, testEnd.AddDate(0, 2, 0)) {
		t.Error("Loaded with balances two months old")
	}
	db, _ := openTestDB(t, target)
	if _, err := db.ExecContext(ctx, "DROP TABLE "+TableWarehouseBalance.Name); err != nil {
		t.Fatal(err)
	}
	if Loaded(ctx, target, testEnd) {
		t.Error("Loaded without the warehouse balances")
	}
}

func TestLoadRefusesForeignTablesSQLite(t *testing.T) {
	t.Parallel()
	testLoadRefusesForeignTables(t, sqliteDSN(t))
}

func TestLoadRefusesForeignTablesMariaDB(t *testing.T) {
	t.Parallel()
	testLoadRefusesForeignTables(t, testenv.MariaDB(t))
}

// testLoadRefusesForeignTables makes a database that looks like a real Plex replica:
// the demo's tables holding rows, but no marker (a demo load, its marker dropped, and
// half the balances of the PCN deleted so the data differs from anything a load
// writes). A load is refused and changes nothing; --force loads (and marks it); after
// that a plain load is accepted.
func testLoadRefusesForeignTables(t *testing.T, target string) {
	ctx := context.Background()
	opts := testOptions()
	opts.Periods = 3
	opts.LogDays = -1
	if _, err := Load(ctx, target, opts); err != nil {
		t.Fatal(err)
	}
	db, _ := openTestDB(t, target)
	for _, stmt := range []string{
		"DROP TABLE " + MarkerTable,
		"DELETE FROM " + TableBalance.Name + " WHERE account_key % 2 = 0",
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	count := func() int {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+TableBalance.Name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	real := count()
	if real == 0 || real == AccountsPerScale*opts.Periods {
		t.Fatalf("the real data has %d balances: the delete did not make it differ", real)
	}

	_, err := Load(ctx, target, opts)
	if !errors.Is(err, ErrNotDemo) || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "accounting_account, ") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("load into a database rpt did not make: err = %v, want ErrNotDemo naming the tables and --force", err)
	}
	if n := count(); n != real {
		t.Fatalf("the refused load changed the balances: %d, was %d", n, real)
	}
	var marker int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+MarkerTable).Scan(&marker); err == nil {
		t.Errorf("the refused load created %s", MarkerTable)
	}

	forced := opts
	forced.Force = true
	if _, err := Load(ctx, target, forced); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if n := count(); n != AccountsPerScale*opts.Periods {
		t.Errorf("after --force: %d balances, want %d", n, AccountsPerScale*opts.Periods)
	}
	if _, err := Load(ctx, target, opts); err != nil {
		t.Fatalf("a database --force loaded is a demo database: %v", err)
	}
}

// TestLoadShapes: --shape plex writes the Plex-side views and no warehouse table;
// --shape warehouse writes the warehouse tables and leaves the Plex side without the
// PCNs' rows; both shapes carry the production tables.
func TestLoadShapes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	count := func(t *testing.T, target, table string) int {
		t.Helper()
		db, _ := openTestDB(t, target)
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			return -1 // no such table
		}
		return n
	}
	for _, shape := range []string{ShapePlex, ShapeWarehouse} {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			target := sqliteDSN(t)
			opts := testOptions()
			opts.Periods = 2
			opts.LogDays = 1
			opts.Shape = shape
			st, err := Load(ctx, target, opts)
			if err != nil {
				t.Fatal(err)
			}
			plex, wh, logs := count(t, target, TableBalance.Name), count(t, target, TableWarehouseBalance.Name), count(t, target, TableWorkcenterLog.Name)
			switch shape {
			case ShapePlex:
				if plex != st.Balances || plex == 0 || wh != -1 {
					t.Errorf("plex shape: %d Plex balances (want %d), warehouse table %d (want none: -1)", plex, st.Balances, wh)
				}
			case ShapeWarehouse:
				if wh != st.Balances || wh == 0 || plex != 0 {
					t.Errorf("warehouse shape: %d warehouse balances (want %d), %d Plex balances (want 0)", wh, st.Balances, plex)
				}
			}
			if logs != st.LogEntries || logs == 0 {
				t.Errorf("%d work-center log rows, want %d", logs, st.LogEntries)
			}
		})
	}
	if _, err := Load(ctx, sqliteDSN(t), Options{Scale: 1, Shape: "both-ways"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown shape: %v, want ErrInvalid", err)
	}
}
