package etl_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"rpt/etl"
	"rpt/internal/demo"
	"rpt/internal/source"
	_ "rpt/internal/source/plexws" // the plexws driver
	"rpt/internal/source/plexws/plexwstest"
)

func (e *env) plexDB() *sql.DB { return e.plex.(interface{ DB() *sql.DB }).DB() }

// TestPerPCNPartitionsWithOwnAccounts: a per_pcn ETL on a plexws source calls Plex once
// per PCN with that PCN's account (two accounts, two passwords: each call the server
// saw used the account of the PCN it asked for), loads each PCN's rows as a partition
// of its own with its own state row, and a PCN whose call fails leaves the other's
// committed load in place and its own rows as they were.
func TestPerPCNPartitionsWithOwnAccounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const pcnA, pcnB = 123681, 300758
	var mu sync.Mutex
	data := map[int][][]string{
		pcnA: {{"A-1", "5", "1.2500"}, {"A-2", "7", "-0.0001"}},
		pcnB: {{"B-1", "9", "99999999999999.9999"}},
	}
	fail := map[int]bool{}
	cols := []string{"Part_No", "Qty", "Cost"}
	srv := plexwstest.New(t, func(w http.ResponseWriter, r *http.Request, c plexwstest.Call) {
		mu.Lock()
		rows, bad := data[c.PCN], fail[c.PCN]
		mu.Unlock()
		if bad {
			plexwstest.WriteFault(w, "soap:Server", "Plex is down for this plant")
			return
		}
		a := plexwstest.Begin(w, c, plexwstest.Status{})
		for _, row := range rows {
			_ = a.Strings(cols, row...)
		}
		a.End()
	}, plexwstest.Account{User: "ws-a@plant", Password: "pw-of-a", PCN: pcnA}, plexwstest.Account{User: "ws-b@plant", Password: "pw-of-b", PCN: pcnB})
	ws, err := source.Open(context.Background(), "plex-ws", source.Config{Driver: "plexws", URL: srv.URL, CAFile: srv.CAFile,
		Accounts: map[int]source.Account{pcnA: {User: "ws-a@plant", Password: "pw-of-a"}, pcnB: {User: "ws-b@plant", Password: "pw-of-b"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	def := mustParse(t, `name: ws-parts
source: plex-ws
extract:
  datasource:
    key: 4242
    name: Parts_Get
    inputs: {"@PCN": pcn}
    columns: [{Part_No: string}, {Qty: int}, {Cost: decimal}]
mode: full
per_pcn: {}
target:
  table: parts_wh
  key: [pcn, part_no]
  create: CREATE TABLE parts_wh (pcn INT NOT NULL, Part_No VARCHAR(40) NOT NULL, Qty BIGINT, Cost DECIMAL(19,4), PRIMARY KEY (pcn, Part_No)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
`)
	run := func() (etl.Stats, error) { return etl.Run(context.Background(), def, ws, e.whDB, etl.Options{}) }
	st, err := run()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Parts) != 2 || st.Parts[0].PCN != pcnA || st.Parts[1].PCN != pcnB || st.Written != 3 {
		t.Fatalf("stats %+v", st)
	}
	calls := srv.Calls()
	if len(calls) != 2 {
		t.Fatalf("%d calls, want one per PCN", len(calls))
	}
	users := map[int]string{pcnA: "ws-a@plant", pcnB: "ws-b@plant"}
	for _, c := range calls {
		asked, _ := strconv.Atoi(c.Inputs["@PCN"])
		if asked != c.PCN || c.User != users[asked] {
			t.Errorf("call %d asked for PCN %s as %s (the account of PCN %d), want the account %s", c.N, c.Inputs["@PCN"], c.User, c.PCN, users[asked])
		}
	}
	want := []string{"123681|A-1|5|1.2500", "123681|A-2|7|-0.0001", "300758|B-1|9|99999999999999.9999"}
	if got := e.whRows(t, "SELECT pcn, Part_No, Qty, Cost FROM parts_wh ORDER BY pcn, Part_No"); !slices.Equal(got, want) {
		t.Fatalf("target %v, want %v", got, want)
	}
	groups, err := etl.Verify(context.Background(), def, ws, e.whDB)
	if err != nil || len(groups) != 2 {
		t.Fatalf("verify: %v %+v", err, groups)
	}
	for _, g := range groups {
		if len(g.Differs) > 0 {
			t.Errorf("verify: PCN %s differs: %v", g.Group, g.Differs)
		}
	}

	// PCN A changes; PCN B's call fails.
	mu.Lock()
	data[pcnA] = [][]string{{"A-3", "1", "0.0100"}}
	fail[pcnB] = true
	mu.Unlock()
	st, err = run()
	if err == nil || !strings.Contains(err.Error(), "pcn 300758") || strings.Contains(err.Error(), "pcn 123681") {
		t.Fatalf("a failing PCN: %v, want an error naming PCN 300758 only", err)
	}
	if strings.Contains(err.Error(), "pw-of") {
		t.Errorf("the error shows a password: %v", err)
	}
	want = []string{"123681|A-3|1|0.0100", "300758|B-1|9|99999999999999.9999"}
	if got := e.whRows(t, "SELECT pcn, Part_No, Qty, Cost FROM parts_wh ORDER BY pcn, Part_No"); !slices.Equal(got, want) {
		t.Fatalf("after PCN B failed: %v, want A reloaded and B as it was: %v", got, want)
	}
	states, err := etl.States(context.Background(), e.whDB)
	if err != nil {
		t.Fatal(err)
	}
	s := states["ws-parts"]
	if len(s.Partitions) != 2 {
		t.Fatalf("state %+v, want two partitions", s)
	}
	a, b := s.Partitions[0], s.Partitions[1]
	if a.PCN != pcnA || a.Runs != 2 || a.RowsWritten != 1 || a.LastError != "" {
		t.Errorf("partition A %+v, want 2 runs, 1 row, no error", a)
	}
	if b.PCN != pcnB || b.Runs != 1 || b.RowsWritten != 1 || !strings.Contains(b.LastError, "Plex is down") || b.LastErrorAt == nil {
		t.Errorf("partition B %+v, want 1 run and its last error", b)
	}
	if s.LastSuccess == nil || b.LastSuccess == nil || !s.LastSuccess.Equal(*b.LastSuccess) {
		t.Errorf("the ETL's last success %v, want the oldest partition's %v", s.LastSuccess, b.LastSuccess)
	}
}

// TestPerPCNReconcileOnPlexShape: the shipped work-center log ETL made per_pcn with a
// reconcile over its lookback window, on a Plex-shaped database of two plants: rows
// deleted in the source within the window are deleted from the target for that plant
// only, rows deleted outside the window stay until a --reconcile sweep, and the other
// plant's rows are untouched.
func TestPerPCNReconcileOnPlexShape(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	plants := []int{300758, 310507}
	end := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	if _, err := demo.Load(ctx, e.plexDSN, demo.Options{Scale: 1, Periods: 1, End: end, PCNs: []int{123681}, Seed: 3, Plants: plants, LogDays: 4, Shape: demo.ShapePlex}); err != nil {
		t.Fatal(err)
	}
	cat, err := etl.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := cat.Get("plex-workcenter-log")
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(shipped.Raw), "mode: incremental", `mode: incremental
per_pcn: {column: plexus_customer_no, pcns: [300758, 310507]}
reconcile: {within: lookback, max_delete: 0.5}`, 1)
	def := mustParse(t, y)
	count := func(db string, pcn int) int {
		t.Helper()
		q := "SELECT COUNT(*) FROM part_v_workcenter_log_e WHERE plexus_customer_no = ?"
		var n int
		var err error
		if db == "plex" {
			err = e.plexDB().QueryRow(q, pcn).Scan(&n)
		} else {
			err = e.whDB.QueryRow(q, pcn).Scan(&n)
		}
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	st := e.run(t, def, etl.Options{})
	for _, p := range plants {
		if n, m := count("plex", p), count("wh", p); n == 0 || n != m {
			t.Fatalf("plant %d: source %d rows, target %d", p, n, m)
		}
	}
	if len(st.Parts) != 2 {
		t.Fatalf("stats %+v", st)
	}
	// The window of the next run: from the plant's last log_date less 48h.
	var last time.Time
	if err := e.plexDB().QueryRow("SELECT MAX(log_date) FROM part_v_workcenter_log_e WHERE plexus_customer_no = ?", plants[0]).Scan(&last); err != nil {
		t.Fatal(err)
	}
	since := last.Add(-48 * time.Hour)
	keys := func(cond string, args ...any) []string {
		t.Helper()
		rows, err := e.plexDB().Query("SELECT log_key FROM part_v_workcenter_log_e WHERE "+cond, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			out = append(out, k)
		}
		return out
	}
	inside := keys("plexus_customer_no = ? AND log_date >= ? ORDER BY log_key LIMIT 2", plants[0], since.Format(time.DateTime))
	outside := keys("plexus_customer_no = ? AND log_date < ? ORDER BY log_key LIMIT 1", plants[0], since.Format(time.DateTime))
	if len(inside) != 2 || len(outside) != 1 {
		t.Fatalf("want rows inside and outside the window: %v %v", inside, outside)
	}
	gone := append(slices.Clone(inside), outside...)
	e.plexExec(t, "DELETE FROM part_v_workcenter_log_e WHERE plexus_customer_no = ? AND log_key IN ("+strings.Join(gone, ",")+")", plants[0])
	otherBefore := count("wh", plants[1])
	aBefore := count("wh", plants[0])

	st = e.run(t, def, etl.Options{})
	if st.Parts[0].Reconciled != 2 || st.Parts[1].Reconciled != 0 {
		t.Errorf("reconciled %d and %d rows, want 2 (the deletes in the window) and 0", st.Parts[0].Reconciled, st.Parts[1].Reconciled)
	}
	if n := count("wh", plants[0]); n != aBefore-2 {
		t.Errorf("plant %d: %d rows after the reconcile, want %d", plants[0], n, aBefore-2)
	}
	left := e.whRows(t, "SELECT log_key FROM part_v_workcenter_log_e WHERE plexus_customer_no = "+strconv.Itoa(plants[0])+" AND log_key IN ("+strings.Join(gone, ",")+") ORDER BY log_key")
	if !slices.Equal(left, outside) {
		t.Errorf("deleted keys left in the target %v, want only the one outside the window %v", left, outside)
	}
	if n := count("wh", plants[1]); n != otherBefore {
		t.Errorf("plant %d: %d rows, want %d (untouched)", plants[1], n, otherBefore)
	}

	// A sweep over every row removes the one outside the window.
	st = e.run(t, def, etl.Options{Reconcile: true})
	if st.Parts[0].Reconciled != 1 || count("wh", plants[0]) != count("plex", plants[0]) {
		t.Errorf("sweep reconciled %d, target %d rows, source %d", st.Parts[0].Reconciled, count("wh", plants[0]), count("plex", plants[0]))
	}
}

// TestReconcileGuard: a reconcile that would delete more than max_delete of the rows it
// compares is refused (target and state unchanged); --force deletes them.
func TestReconcileGuard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.plexExec(t, ordersDDL)
	seedOrders(t, e, 10)
	// A columns: override of a column the key query does not return is no error.
	y := strings.Replace(fmt.Sprintf(incrementalYAML, "1h", "reload"), "extract: {table: orders}", "extract: {table: orders, columns: {amount: decimal}}", 1)
	def := mustParse(t, y+"reconcile: {within: all, max_delete: 0.3}\n")
	e.run(t, def, etl.Options{})
	e.plexExec(t, "DELETE FROM orders WHERE id <= 2")
	if st := e.run(t, def, etl.Options{}); st.Reconciled != 2 || st.Compared != 10 {
		t.Fatalf("2 of 10 deleted: %+v", st)
	}
	e.plexExec(t, "DELETE FROM orders WHERE id <= 6")
	_, err := etl.Run(context.Background(), def, e.plex, e.whDB, etl.Options{})
	if !errors.Is(err, etl.ErrGuard) || !strings.Contains(err.Error(), "delete 4 of the 8 rows") {
		t.Fatalf("4 of 8: %v, want ErrGuard", err)
	}
	if n := countOf(t, e, "orders_wh"); n != 8 {
		t.Errorf("a refused reconcile left %d rows, want 8", n)
	}
	st := e.run(t, def, etl.Options{Force: true})
	if st.Reconciled != 4 || countOf(t, e, "orders_wh") != 4 {
		t.Errorf("forced: %+v, %d rows", st, countOf(t, e, "orders_wh"))
	}
}

// TestNewSourceColumn: a column added in the source is added to the target with the
// source's exact type (DECIMAL precision and scale, DATETIME fractions, VARCHAR length
// in utf8mb4) and loaded exactly; a column removed from the source, or retyped, is an
// error naming it until the target follows.
func TestNewSourceColumn(t *testing.T) {
	t.Parallel()
	for _, loader := range []string{etl.LoaderInfile, etl.LoaderInsert} {
		t.Run(loader, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.plexExec(t, `CREATE TABLE items (id INT NOT NULL PRIMARY KEY, amount DECIMAL(19,2) NOT NULL) DEFAULT CHARSET=utf8mb4`)
			e.plexExec(t, `INSERT INTO items VALUES (1, 10.01), (2, -0.01)`)
			def := mustParse(t, `name: items
source: plex
extract: {table: items}
mode: full
target:
  table: items_wh
  key: [id]
  create: CREATE TABLE items_wh (id INT NOT NULL PRIMARY KEY, amount DECIMAL(19,2) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
`)
			opts := etl.Options{Loader: loader}
			e.run(t, def, opts)
			e.plexExec(t, `ALTER TABLE items ADD COLUMN rate DECIMAL(12,5) NULL, ADD COLUMN seen DATETIME(3) NULL, ADD COLUMN label VARCHAR(40) CHARACTER SET utf8mb4 NULL, ADD COLUMN qty BIGINT NULL, ADD COLUMN day DATE NULL`)
			e.plexExec(t, `UPDATE items SET rate = 1234567.12345, seen = '2026-03-04 05:06:07.891', label = 'Grüße 🚀', qty = 9007199254740993, day = '2026-02-28' WHERE id = 1`)
			st := e.run(t, def, opts)
			if got := strings.Join(st.AddedColumns, ","); got != "rate,seen,label,qty,day" {
				t.Errorf("added %q", got)
			}
			types := e.whRows(t, `SELECT column_name, column_type, COALESCE(character_set_name, ''), is_nullable FROM information_schema.columns
				WHERE table_schema = DATABASE() AND table_name = 'items_wh' AND column_name IN ('rate', 'seen', 'label', 'qty', 'day') ORDER BY ordinal_position`)
			wantTypes := []string{"rate|decimal(12,5)||YES", "seen|datetime(3)||YES", "label|varchar(40)|utf8mb4|YES", "qty|bigint(20)||YES", "day|date||YES"}
			if !slices.Equal(types, wantTypes) {
				t.Errorf("new columns %v\nwant %v", types, wantTypes)
			}
			rows := e.whRows(t, "SELECT id, amount, rate, seen, label, qty, day FROM items_wh ORDER BY id")
			wantRows := []string{"1|10.01|1234567.12345|2026-03-04 05:06:07.891000|Grüße 🚀|9007199254740993|2026-02-28 00:00:00.000000", "2|-0.01|<nil>|<nil>|<nil>|<nil>|<nil>"}
			if !slices.Equal(rows, wantRows) {
				t.Errorf("rows %v\nwant %v", rows, wantRows)
			}

			// Removed: an error naming the column; the target keeps its rows.
			e.plexExec(t, `ALTER TABLE items DROP COLUMN label`)
			_, err := etl.Run(context.Background(), def, e.plex, e.whDB, opts)
			if !errors.Is(err, etl.ErrInvalid) || !strings.Contains(err.Error(), `source column "label" is gone`) {
				t.Fatalf("removed column: %v", err)
			}
			if n := countOf(t, e, "items_wh"); n != 2 {
				t.Errorf("%d rows after the refused load", n)
			}
			if _, err := e.whDB.Exec("ALTER TABLE items_wh DROP COLUMN label"); err != nil {
				t.Fatal(err)
			}
			e.run(t, def, opts)

			// Retyped: an error naming the column and both types, until the target follows.
			e.plexExec(t, `ALTER TABLE items MODIFY rate DECIMAL(14,6) NULL`)
			_, err = etl.Run(context.Background(), def, e.plex, e.whDB, opts)
			if !errors.Is(err, etl.ErrInvalid) || !strings.Contains(err.Error(), `source column "rate" changed type from DECIMAL(12,5) to DECIMAL(14,6)`) {
				t.Fatalf("retyped column: %v", err)
			}
			if _, err := e.whDB.Exec("ALTER TABLE items_wh MODIFY rate DECIMAL(14,6) NULL"); err != nil {
				t.Fatal(err)
			}
			e.run(t, def, opts)
			if got := e.whRows(t, "SELECT rate FROM items_wh WHERE id = 1"); got[0] != "1234567.123450" {
				t.Errorf("rate after the retype: %v", got)
			}
		})
	}
}

// TestStateTableUpgrade: a state table of an older rpt (one row per ETL, no partition
// column) is upgraded in place and its rows kept: the watermark goes on.
func TestStateTableUpgrade(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.whDB.Exec(`CREATE TABLE rpt_etl_state (
  etl_name VARCHAR(100) NOT NULL PRIMARY KEY, target_table VARCHAR(64) NOT NULL, mode VARCHAR(20) NOT NULL, watermark VARCHAR(64) NULL,
  job_id BIGINT NOT NULL DEFAULT 0, attempt INT NOT NULL DEFAULT 0, runs BIGINT NOT NULL DEFAULT 0, last_success_at DATETIME(6) NULL,
  rows_read BIGINT NOT NULL DEFAULT 0, rows_written BIGINT NOT NULL DEFAULT 0, rows_deleted BIGINT NOT NULL DEFAULT 0,
  period_from INT NULL, period_to INT NULL, loader VARCHAR(10) NULL, duration_ms BIGINT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.whDB.Exec(`INSERT INTO rpt_etl_state (etl_name, target_table, mode, watermark, runs, last_success_at) VALUES ('orders', 'orders_wh', 'incremental', '2026-01-01 11:00:00', 4, UTC_TIMESTAMP(6))`); err != nil {
		t.Fatal(err)
	}
	states, err := etl.States(context.Background(), e.whDB)
	if err != nil || states["orders"].Runs != 4 {
		t.Fatalf("old table: %+v %v", states["orders"], err)
	}
	e.plexExec(t, ordersDDL)
	e.plexExec(t, `INSERT INTO orders VALUES (1, 'old', 1, '2026-01-01 09:00:00'), (2, 'new', 2, '2026-01-01 10:30:00')`)
	def := mustParse(t, fmt.Sprintf(incrementalYAML, "1h", "skip"))
	st := e.run(t, def, etl.Options{})
	if st.Read != 1 {
		t.Errorf("read %d rows, want 1: the old watermark goes on", st.Read)
	}
	if states, err = etl.States(context.Background(), e.whDB); err != nil || states["orders"].Runs != 5 {
		t.Errorf("after the upgrade: %+v %v", states["orders"], err)
	}
}

// TestJobArgsCarryReconcile: a queued ETL's --reconcile travels in the job's params
// (and so in its dedupe key: a sweep does not join a plain run).
func TestJobArgsCarryReconcile(t *testing.T) {
	t.Parallel()
	def := mustParse(t, fmt.Sprintf(incrementalYAML, "1h", "reload"))
	plain, err := etl.JobParams(def, etl.JobArgs{})
	if err != nil {
		t.Fatal(err)
	}
	sweep, err := etl.JobParams(def, etl.JobArgs{Reconcile: true})
	if err != nil {
		t.Fatal(err)
	}
	args, err := etl.ParseJobArgs(sweep.Params)
	if err != nil || !args.Reconcile {
		t.Errorf("params %s: %+v %v, want reconcile", sweep.Params, args, err)
	}
	if plain.DedupeKey == sweep.DedupeKey {
		t.Errorf("a sweep and a plain run share the dedupe key %q", plain.DedupeKey)
	}
}

// TestAddColumnWaitsBoundedForReaders: a new source column's ALTER waits only so long
// for a transaction reading the target (a report), then fails the run as unavailable
// (retried), instead of queueing every later reader of the table behind it; once the
// reader is gone the column is added. Not parallel: it shortens the wait.
func TestAddColumnWaitsBoundedForReaders(t *testing.T) {
	defer etl.SetAlterLockWait(1)()
	ctx := context.Background()
	e := newEnv(t)
	e.plexExec(t, `CREATE TABLE items (id INT NOT NULL PRIMARY KEY, amount DECIMAL(19,2) NOT NULL)`)
	e.plexExec(t, `INSERT INTO items VALUES (1, 10.01)`)
	def := mustParse(t, `name: items
source: plex
extract: {table: items}
mode: full
target:
  table: items_wh
  key: [id]
  create: CREATE TABLE items_wh (id INT NOT NULL PRIMARY KEY, amount DECIMAL(19,2) NOT NULL) ENGINE=InnoDB
`)
	e.run(t, def, etl.Options{})
	e.plexExec(t, `ALTER TABLE items ADD COLUMN extra INT NULL`)
	reader, err := e.whDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if _, err := reader.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.ExecContext(ctx, "SELECT COUNT(*) FROM items_wh"); err != nil {
		t.Fatal(err)
	}
	_, err = etl.Run(ctx, def, e.plex, e.whDB, etl.Options{})
	if !errors.Is(err, source.ErrUnavailable) || !strings.Contains(err.Error(), "add column extra") {
		t.Fatalf("ALTER behind a reader: %v, want unavailable naming the column", err)
	}
	if _, err := reader.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if st := e.run(t, def, etl.Options{}); strings.Join(st.AddedColumns, ",") != "extra" {
		t.Errorf("after the reader: %+v", st)
	}
}
