package etl_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"rpt/etl"
	"rpt/internal/demo"
	"rpt/internal/source"
	"rpt/internal/testenv"
	"rpt/reportdefs"
)

// env is a Plex-shaped source database and an empty warehouse, each its own database.
type env struct {
	plexDSN, whDSN string
	plex, wh       source.Source
	whDB           *sql.DB
	sources        map[string]source.Source
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{plexDSN: testenv.MariaDB(t), whDSN: testenv.MariaDB(t)}
	var err error
	if e.plex, err = source.Open(ctx, "plex", source.Config{Driver: "mysql", DSN: e.plexDSN}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.plex.Close() })
	if e.wh, err = source.Open(ctx, "warehouse", source.Config{Driver: "mysql", DSN: e.whDSN}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.wh.Close() })
	e.whDB = e.wh.(interface{ DB() *sql.DB }).DB()
	// The shipped ETLs read Plex's SQL source, plex-odbc; a MariaDB database stands in.
	e.sources = map[string]source.Source{"plex": e.plex, "plex-odbc": e.plex, "warehouse": e.wh}
	return e
}

func (e *env) run(t testing.TB, def *etl.Definition, opts etl.Options) etl.Stats {
	t.Helper()
	st, err := etl.Run(context.Background(), def, e.sources[def.Source], e.whDB, opts)
	if err != nil {
		t.Fatalf("run %s: %v", def.Name, err)
	}
	return st
}

// TestShippedPipelineFromEmptyWarehouse loads a Plex-shaped database (demo load
// --shape plex), runs every shipped ETL in dependency order into an empty warehouse,
// and checks the shipped trial-balance report on the warehouse cents-exact against the
// Go computation over the demo data, the year-to-date recompute table against the
// same, each copied table against its source (counts and sums per PCN, and an ordered
// checksum), and the domain invariant: every PCN and period sums to zero.
func TestShippedPipelineFromEmptyWarehouse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	opts := demo.Options{Scale: 1, Periods: 15, End: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), PCNs: []int{123681, 300758},
		Seed: 7, Plants: []int{300758}, LogDays: 5, Shape: demo.ShapePlex}
	if _, err := demo.Load(ctx, e.plexDSN, opts); err != nil {
		t.Fatal(err)
	}
	cat, err := etl.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range cat.List() {
		names = append(names, d.Name)
	}
	order, err := cat.Order(names)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, d := range order {
		pos[d.Name] = i
	}
	for _, d := range order {
		for _, a := range d.After {
			if pos[a] > pos[d.Name] {
				t.Fatalf("order %v runs %s before its dependency %s", names, d.Name, a)
			}
		}
		st := e.run(t, d, etl.Options{})
		if st.Written == 0 {
			t.Errorf("%s wrote no rows", d.Name)
		}
		if st.Loader != etl.LoaderInfile {
			t.Errorf("%s used loader %q, want infile (MariaDB takes local infile)", d.Name, st.Loader)
		}
	}

	// Copied tables equal their sources.
	for _, pair := range [][2]string{
		{"accounting_v_period_e", "accounting_period"},
		{"accounting_v_balance_e", "accounting_balance"},
		{"part_v_workcenter_e", "part_v_workcenter_e"},
		{"part_v_workcenter_status_e", "part_v_workcenter_status_e"},
		{"part_v_workcenter_log_e", "part_v_workcenter_log_e"},
		{"daily_shift_report", "daily_shift_report"},
	} {
		if a, b := tableDigest(t, e.plex, pair[0]), tableDigest(t, e.wh, pair[1]); a != b {
			t.Errorf("%s in the warehouse differs from %s in Plex:\n warehouse %s\n plex      %s", pair[1], pair[0], b, a)
		}
	}

	// rpt etl verify agrees: rows and exact sums per first key column.
	for _, d := range order {
		groups, err := etl.Verify(ctx, d, e.sources[d.Source], e.whDB)
		if err != nil {
			t.Fatalf("verify %s: %v", d.Name, err)
		}
		for _, g := range groups {
			if len(g.Differs) > 0 || g.SourceRows == 0 {
				t.Errorf("verify %s group %s: %d/%d rows, differs %v", d.Name, g.Group, g.SourceRows, g.TargetRows, g.Differs)
			}
		}
	}

	// The shipped trial balance over the ETL-filled warehouse, cents exact.
	rcat, err := reportdefs.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	tb, err := rcat.Get("trial-balance")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ pcn, start, end int }{{300758, 202502, 202603}, {123681, 202501, 202603}} {
		resolved, err := tb.Resolve(map[string]string{"pcn": fmt.Sprint(tc.pcn), "start_period": fmt.Sprint(tc.start), "end_period": fmt.Sprint(tc.end)}, time.Now(), time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		values, err := tb.BindValues(resolved)
		if err != nil {
			t.Fatal(err)
		}
		want, err := demo.ExpectedTrialBalance(opts, tc.pcn, tc.start, tc.end)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := source.Run(ctx, e.wh, tb.Request(e.wh.Driver(), values), tb.Columns)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		sums := map[string][2]int64{}
		for rows.Next() {
			v := rows.Values()
			if n < len(want) {
				w := want[n]
				got := fmt.Sprint(v[0], "|", v[4], "|", v[6], "|", v[7], "|", v[2], "|", v[3])
				exp := fmt.Sprint(w.PeriodDisplay, "|", w.AccountNo, "|", demo.Cents(w.CurrentCents), "|", demo.Cents(w.YTDCents), "|", w.CategoryName, "|", w.SubCategoryName)
				if got != exp {
					t.Fatalf("pcn %d row %d = %s, want %s", tc.pcn, n, got, exp)
				}
			}
			s := sums[v[0].(string)]
			s[0] += cents(t, v[6].(string))
			s[1] += cents(t, v[7].(string))
			sums[v[0].(string)] = s
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if n != len(want) || n == 0 {
			t.Fatalf("pcn %d: %d rows, want %d", tc.pcn, n, len(want))
		}
		for p, s := range sums {
			if s[0] != 0 || s[1] != 0 {
				t.Errorf("pcn %d period %s: current sums to %d cents, ytd to %d; want 0 and 0 (double entry)", tc.pcn, p, s[0], s[1])
			}
		}
	}

	// The year-to-date recompute table: every row against the Go computation, and the
	// invariant per PCN and period.
	for _, pcn := range opts.PCNs {
		want, err := demo.ExpectedTrialBalance(opts, pcn, 202501, 202603)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := e.wh.Query(ctx, "SELECT period, account_no, current_debit_credit, ytd_debit_credit FROM accounting_balance_ytd WHERE pcn = :pcn ORDER BY period, account_no", map[string]any{"pcn": int64(pcn)})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			v := rows.Values()
			if n < len(want) {
				w := want[n]
				got := fmt.Sprint(v[0], "|", v[1], "|", v[2], "|", v[3])
				exp := fmt.Sprint(w.Period, "|", w.AccountNo, "|", demo.Cents(w.CurrentCents), "|", demo.Cents(w.YTDCents))
				if got != exp {
					t.Fatalf("accounting_balance_ytd pcn %d row %d = %s, want %s", pcn, n, got, exp)
				}
			}
			n++
		}
		rows.Close()
		if n != len(want) {
			t.Fatalf("accounting_balance_ytd pcn %d: %d rows, want %d", pcn, n, len(want))
		}
		var bad int
		if err := e.whDB.QueryRow(`SELECT COUNT(*) FROM (SELECT period FROM accounting_balance_ytd WHERE pcn = ? GROUP BY period
			HAVING SUM(current_debit_credit) <> 0 OR SUM(ytd_debit_credit) <> 0) x`, pcn).Scan(&bad); err != nil {
			t.Fatal(err)
		}
		if bad != 0 {
			t.Errorf("pcn %d: %d periods of accounting_balance_ytd do not sum to zero", pcn, bad)
		}
	}

	// State: one row per ETL, each with one run.
	var states, runs int
	if err := e.whDB.QueryRow("SELECT COUNT(*), SUM(runs) FROM rpt_etl_state").Scan(&states, &runs); err != nil {
		t.Fatal(err)
	}
	if states != len(order) || runs != len(order) {
		t.Errorf("rpt_etl_state has %d rows and %d runs, want %d and %d", states, runs, len(order), len(order))
	}
}

// tableDigest is a table's count, sums of its numeric columns per PCN and an ordered
// checksum of every row (MD5 over the rows in primary-key order, via GROUP_CONCAT of
// per-row hashes ordered by the key columns).
func tableDigest(t *testing.T, src source.Source, table string) string {
	t.Helper()
	db := src.(interface{ DB() *sql.DB }).DB()
	cols := tableColumns(t, db, table)
	var key string
	for i, c := range cols {
		if i > 0 {
			key += ", "
		}
		key += "`" + c.name + "`"
	}
	pcn := "pcn"
	if table == "part_v_workcenter_log_e" {
		pcn = "plexus_customer_no"
	}
	var sumExpr string
	for _, c := range cols {
		if c.numeric {
			sumExpr += ", SUM(`" + c.name + "`)"
		}
	}
	rowHash := "MD5(CONCAT_WS('|'"
	for _, c := range cols {
		rowHash += ", COALESCE(CAST(`" + c.name + "` AS CHAR), '\\\\N')"
	}
	rowHash += "))"
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION group_concat_max_len = 1073741824"); err != nil {
		t.Fatal(err)
	}
	q := "SELECT CONCAT_WS(' ', `" + pcn + "`, COUNT(*)" + sumExpr + ", MD5(GROUP_CONCAT(" + rowHash + " ORDER BY " + key + "))) FROM `" + table + "` GROUP BY `" + pcn + "` ORDER BY `" + pcn + "`"
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out += s + "; "
	}
	if out == "" {
		t.Fatalf("%s is empty", table)
	}
	return out
}

type col struct {
	name    string
	numeric bool
}

// tableColumns lists a table's columns in name order, so two tables with the same
// columns in another order (and other keys) hash alike: rows are ordered by every
// column in that order.
func tableColumns(t *testing.T, db *sql.DB, table string) []col {
	t.Helper()
	rows, err := db.Query(`SELECT column_name, data_type IN ('int','bigint','tinyint','decimal')
		FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? ORDER BY column_name`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []col
	for rows.Next() {
		var c col
		if err := rows.Scan(&c.name, &c.numeric); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	return cols
}

func cents(t *testing.T, s string) int64 {
	t.Helper()
	var neg bool
	if s != "" && s[0] == '-' {
		neg, s = true, s[1:]
	}
	var whole, frac int64
	if _, err := fmt.Sscanf(s, "%d.%02d", &whole, &frac); err != nil {
		t.Fatalf("money %q: %v", s, err)
	}
	c := whole*100 + frac
	if neg {
		c = -c
	}
	return c
}
