package etl_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"rpt/etl"
	"rpt/internal/queue"
)

func mustParse(t *testing.T, y string) *etl.Definition {
	t.Helper()
	d, err := etl.Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (e *env) plexExec(t testing.TB, q string, args ...any) {
	t.Helper()
	db := e.plex.(interface{ DB() *sql.DB }).DB()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (e *env) whRows(t *testing.T, q string) []string {
	t.Helper()
	rows, err := e.whDB.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				parts[i] = string(b)
			} else if tm, ok := v.(time.Time); ok {
				parts[i] = tm.UTC().Format("2006-01-02 15:04:05.000000")
			} else {
				parts[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out
}

const ordersDDL = `CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, note TEXT NULL, amount DECIMAL(19,2) NULL, updated DATETIME(6) NULL)
	ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`

const incrementalYAML = `name: orders
source: plex
extract: {table: orders}
mode: incremental
incremental: {column: updated, lookback: %s, nulls: %s}
target:
  table: orders_wh
  key: [id]
  create: |
    CREATE TABLE orders_wh (id INT NOT NULL PRIMARY KEY, note TEXT NULL, amount DECIMAL(19,2) NULL, updated DATETIME(6) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
`

// TestIncremental: inserts, updates, equal timestamps, NULL update values and a late
// commit (a row committed after a run with an update time before its watermark) are
// loaded exactly, with both loaders; values with tabs, newlines, backslashes, \N text,
// utf8mb4 and money survive exactly.
func TestIncremental(t *testing.T) {
	t.Parallel()
	for _, loader := range []string{etl.LoaderInfile, etl.LoaderInsert} {
		t.Run(loader, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.plexExec(t, ordersDDL)
			def := mustParse(t, fmt.Sprintf(incrementalYAML, "1h", "reload"))
			opts := etl.Options{Loader: loader, BatchRows: 2}
			e.plexExec(t, `INSERT INTO orders VALUES
				(1, 'tab\there', 10.01, '2026-01-01 10:00:00'),
				(2, 'line\nbreak \\ back \\N', -0.01, '2026-01-01 10:00:00'),
				(3, 'Grüße 🚀', 99999999999999999.99, '2026-01-01 11:00:00.5'),
				(4, NULL, NULL, NULL)`)
			st := e.run(t, def, opts)
			if st.Read != 4 || st.Written != 4 || st.Watermark != "2026-01-01 11:00:00.5" {
				t.Fatalf("first run: %+v", st)
			}
			want := []string{
				"1|tab\there|10.01|2026-01-01 10:00:00.000000",
				"2|line\nbreak \\ back \\N|-0.01|2026-01-01 10:00:00.000000",
				"3|Grüße 🚀|99999999999999999.99|2026-01-01 11:00:00.500000",
				"4|<nil>|<nil>|<nil>",
			}
			check := func(want []string) {
				t.Helper()
				got := e.whRows(t, "SELECT id, note, amount, updated FROM orders_wh ORDER BY id")
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("target:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			}
			check(want)

			// An update, a new row with the watermark's exact time (equal timestamp), a
			// late commit 30 minutes before the watermark, and the NULL row updated.
			e.plexExec(t, `UPDATE orders SET amount = 10.02, updated = '2026-01-01 12:00:00' WHERE id = 1`)
			e.plexExec(t, `INSERT INTO orders VALUES (5, 'same time', 5.00, '2026-01-01 11:00:00.5'), (6, 'late', 6.00, '2026-01-01 10:30:00')`)
			e.plexExec(t, `UPDATE orders SET note = 'null row changed' WHERE id = 4`)
			st = e.run(t, def, opts)
			if st.Watermark != "2026-01-01 12:00:00" {
				t.Errorf("watermark %q", st.Watermark)
			}
			// Read: rows at or after 10:00:00.5 (11:00:00.5 less 1h: 1, 3, 5, 6) and the
			// NULL row (4); not 2, at 10:00:00.
			if st.Read != 5 {
				t.Errorf("second run read %d rows, want 5 (the lookback window and the NULL row)", st.Read)
			}
			want[0] = "1|tab\there|10.02|2026-01-01 12:00:00.000000"
			want[3] = "4|null row changed|<nil>|<nil>"
			want = append(want, "5|same time|5.00|2026-01-01 11:00:00.500000", "6|late|6.00|2026-01-01 10:30:00.000000")
			check(want)

			// No change: the target stays, the watermark stays.
			st = e.run(t, def, opts)
			if st.Watermark != "2026-01-01 12:00:00" {
				t.Errorf("no-change watermark %q", st.Watermark)
			}
			check(want)
			var runs int
			if err := e.whDB.QueryRow("SELECT runs FROM rpt_etl_state WHERE etl_name = 'orders'").Scan(&runs); err != nil || runs != 3 {
				t.Errorf("runs = %d, %v; want 3", runs, err)
			}
		})
	}
}

// TestNullsSkip: with nulls: skip, a NULL-update row is loaded by the first run only.
func TestNullsSkip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.plexExec(t, ordersDDL)
	def := mustParse(t, fmt.Sprintf(incrementalYAML, "0s", "skip"))
	e.plexExec(t, `INSERT INTO orders VALUES (1, 'a', 1, '2026-01-01 10:00:00'), (2, 'n', 2, NULL)`)
	e.run(t, def, etl.Options{})
	e.plexExec(t, `UPDATE orders SET note = 'changed' WHERE id = 2`)
	st := e.run(t, def, etl.Options{})
	if st.Read != 1 {
		t.Errorf("read %d rows, want 1 (the watermark's row, not the NULL one)", st.Read)
	}
	if got := e.whRows(t, "SELECT note FROM orders_wh WHERE id = 2"); got[0] != "n" {
		t.Errorf("NULL-update row = %v, want unchanged", got)
	}
}

const fullYAML = `name: orders-full
source: plex
extract: {table: orders}
mode: full
target:
  table: orders_full
  key: [id]
  max_shrink: 0.5
  create: |
    CREATE TABLE orders_full (id INT NOT NULL PRIMARY KEY, note TEXT NULL, amount DECIMAL(19,2) NULL, updated DATETIME(6) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
`

func seedOrders(t *testing.T, e *env, n int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("INSERT INTO orders VALUES ")
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%d, 'n%d', %d.%02d, '2026-01-01 00:00:00')", i, i, i, i%100)
	}
	e.plexExec(t, b.String())
}

func countOf(t *testing.T, e *env, table string) int {
	t.Helper()
	var n int
	if err := e.whDB.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestShrinkGuard: a full load that returns no rows, or loses more than max_shrink of
// them, is refused and leaves the target and the state as they were; --force loads.
func TestShrinkGuard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.plexExec(t, ordersDDL)
	seedOrders(t, e, 10)
	def := mustParse(t, fullYAML)
	e.run(t, def, etl.Options{})
	e.plexExec(t, "DELETE FROM orders WHERE id > 4")
	_, err := etl.Run(context.Background(), def, e.plex, e.whDB, etl.Options{})
	if !errors.Is(err, etl.ErrGuard) {
		t.Fatalf("shrink to 4 of 10: %v, want ErrGuard", err)
	}
	if n := countOf(t, e, "orders_full"); n != 10 {
		t.Errorf("after a refused load the target has %d rows, want 10", n)
	}
	e.plexExec(t, "DELETE FROM orders")
	if _, err := etl.Run(context.Background(), def, e.plex, e.whDB, etl.Options{}); !errors.Is(err, etl.ErrGuard) {
		t.Fatalf("empty: %v, want ErrGuard", err)
	}
	var runs int
	if err := e.whDB.QueryRow("SELECT runs FROM rpt_etl_state WHERE etl_name = 'orders-full'").Scan(&runs); err != nil || runs != 1 {
		t.Errorf("runs = %d, %v; want 1 (refused loads write no state)", runs, err)
	}
	e.run(t, def, etl.Options{Force: true})
	if n := countOf(t, e, "orders_full"); n != 0 {
		t.Errorf("forced empty load left %d rows", n)
	}
}

// TestFencedOutAttemptWritesNothing: a load whose lease check fails before commit
// (a zombie attempt) changes neither the target nor the state; an older attempt of a
// job another attempt has loaded is refused before it loads.
func TestFencedOutAttemptWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.plexExec(t, ordersDDL)
	seedOrders(t, e, 5)
	def := mustParse(t, fullYAML)
	e.run(t, def, etl.Options{Fence: etl.Fence{JobID: 7, Attempt: 2}})
	e.plexExec(t, "UPDATE orders SET note = 'new'")
	lost := func(context.Context) error { return queue.ErrLeaseLost }
	_, err := etl.Run(context.Background(), def, e.plex, e.whDB, etl.Options{Fence: etl.Fence{JobID: 8, Attempt: 1, Check: lost}})
	if !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("fenced out: %v, want queue.ErrLeaseLost", err)
	}
	if got := e.whRows(t, "SELECT DISTINCT note FROM orders_full WHERE id = 1"); got[0] != "n1" {
		t.Errorf("a fenced-out attempt changed the target: %v", got)
	}
	_, err = etl.Run(context.Background(), def, e.plex, e.whDB, etl.Options{Fence: etl.Fence{JobID: 7, Attempt: 1}})
	if !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("stale attempt: %v, want queue.ErrLeaseLost", err)
	}
	var job, attempt int
	if err := e.whDB.QueryRow("SELECT job_id, attempt FROM rpt_etl_state WHERE etl_name = 'orders-full'").Scan(&job, &attempt); err != nil || job != 7 || attempt != 2 {
		t.Errorf("state job %d attempt %d (%v), want 7/2", job, attempt, err)
	}
}

// TestFullSwapIsAtomicForReaders reads the target from another connection while a full
// load is between its delete and its commit: the reader sees the whole old set.
func TestFullSwapIsAtomicForReaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.plexExec(t, ordersDDL)
	seedOrders(t, e, 20)
	def := mustParse(t, fullYAML)
	e.run(t, def, etl.Options{})
	e.plexExec(t, "UPDATE orders SET note = 'v2'")
	seen := make(chan string, 1)
	check := func(ctx context.Context) error {
		// The load has deleted and re-loaded, not yet committed.
		var n int
		var notes string
		err := e.whDB.QueryRowContext(ctx, "SELECT COUNT(*), GROUP_CONCAT(DISTINCT note ORDER BY note) FROM orders_full WHERE note IN ('v2', 'n1')").Scan(&n, &notes)
		seen <- fmt.Sprint(n, " ", notes, " ", err)
		return nil
	}
	e.run(t, def, etl.Options{Fence: etl.Fence{JobID: 1, Attempt: 1, Check: check}})
	if got := <-seen; got != "1 n1 <nil>" {
		t.Errorf("a reader during the load saw %q, want the old set (1 n1)", got)
	}
	if got := e.whRows(t, "SELECT COUNT(*), MIN(note), MAX(note) FROM orders_full"); got[0] != "20|v2|v2" {
		t.Errorf("after commit: %v, want 20 rows of v2", got)
	}
}

// TestPeriodRange: the first run loads every period; a window re-loads only its
// periods (a deleted source row in the window goes, rows outside stay).
func TestPeriodRange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.plexExec(t, `CREATE TABLE bal (pcn INT, acct VARCHAR(10), period INT, amount DECIMAL(19,2), PRIMARY KEY (pcn, acct, period))`)
	e.plexExec(t, `INSERT INTO bal VALUES (1,'a',202601,1.00),(1,'a',202602,2.00),(1,'a',202603,3.00),(1,'b',202603,4.00)`)
	def := mustParse(t, `name: bal
source: plex
extract:
  sql: SELECT pcn, acct, period, amount FROM bal WHERE period BETWEEN :from_period AND :to_period
mode: period-range
period_range: {column: period}
target:
  table: bal_wh
  max_shrink: 1
  create: CREATE TABLE bal_wh (pcn INT, acct VARCHAR(10), period INT, amount DECIMAL(19,2), PRIMARY KEY (pcn, acct, period))
`)
	st := e.run(t, def, etl.Options{})
	if st.Written != 4 {
		t.Fatalf("first run %+v", st)
	}
	e.plexExec(t, `UPDATE bal SET amount = 9.99 WHERE period = 202601`)
	e.plexExec(t, `UPDATE bal SET amount = 3.33 WHERE period = 202603 AND acct = 'a'`)
	e.plexExec(t, `DELETE FROM bal WHERE acct = 'b'`)
	st = e.run(t, def, etl.Options{From: 202602, To: 202603})
	if st.Deleted != 3 || st.Written != 2 {
		t.Errorf("window run: %+v", st)
	}
	got := e.whRows(t, "SELECT acct, period, amount FROM bal_wh ORDER BY acct, period")
	want := "a|202601|1.00 a|202602|2.00 a|202603|3.33"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
	if _, err := etl.Run(context.Background(), def, e.plex, e.whDB, etl.Options{}); !errors.Is(err, etl.ErrInvalid) {
		t.Errorf("no window_sql and no --from/--to after the first run: %v, want ErrInvalid", err)
	}
}

// TestValueThatDoesNotFitFails: a value the target column cannot hold exactly (more
// decimals than its scale) fails the load instead of being rounded, with both loaders.
func TestValueThatDoesNotFitFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.plexExec(t, `CREATE TABLE m (id INT PRIMARY KEY, amount DECIMAL(19,3))`)
	e.plexExec(t, `INSERT INTO m VALUES (1, 1.005)`)
	for _, loader := range []string{etl.LoaderInfile, etl.LoaderInsert} {
		def := mustParse(t, `name: m-`+loader+`
source: plex
extract: {table: m}
mode: full
target: {table: m_`+loader+`, create: "CREATE TABLE m_`+loader+` (id INT PRIMARY KEY, amount DECIMAL(19,2))"}
`)
		_, err := etl.Run(context.Background(), def, e.plex, e.whDB, etl.Options{Loader: loader})
		if err == nil {
			t.Errorf("%s: 1.005 into DECIMAL(19,2) loaded", loader)
		}
		if n := countOf(t, e, "m_"+loader); n != 0 {
			t.Errorf("%s: %d rows loaded", loader, n)
		}
	}
}

// TestSnapshotAppendsOncePerJob: snapshot mode stamps each run's rows; a retried
// attempt of a job whose snapshot committed does not append it again.
func TestSnapshotAppendsOncePerJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.plexExec(t, ordersDDL)
	seedOrders(t, e, 3)
	def := mustParse(t, `name: snap
source: plex
extract: {sql: "SELECT id, amount FROM orders"}
mode: snapshot
target:
  table: orders_snap
  create: CREATE TABLE orders_snap (id INT, amount DECIMAL(19,2), snapshot_at DATETIME(6), PRIMARY KEY (snapshot_at, id))
`)
	t1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e.run(t, def, etl.Options{Fence: etl.Fence{JobID: 1, Attempt: 1}, Now: func() time.Time { return t1 }})
	st := e.run(t, def, etl.Options{Fence: etl.Fence{JobID: 1, Attempt: 2}, Now: func() time.Time { return t1.Add(time.Hour) }})
	if st.Skipped == "" {
		t.Errorf("a second attempt of the same job appended again: %+v", st)
	}
	e.run(t, def, etl.Options{Fence: etl.Fence{JobID: 2, Attempt: 1}, Now: func() time.Time { return t1.Add(2 * time.Hour) }})
	got := e.whRows(t, "SELECT snapshot_at, COUNT(*) FROM orders_snap GROUP BY snapshot_at ORDER BY 1")
	if strings.Join(got, " ") != "2026-01-01 00:00:00.000000|3 2026-01-01 02:00:00.000000|3" {
		t.Errorf("snapshots %v", got)
	}
}

// TestVerify: verify finds a target equal to its source equal, and names the rows and
// columns of a group that differ.
func TestVerify(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.plexExec(t, `CREATE TABLE bal (pcn INT, acct VARCHAR(10), amount DECIMAL(19,2), n INT, PRIMARY KEY (pcn, acct))`)
	e.plexExec(t, `INSERT INTO bal VALUES (1,'a',0.10,1),(1,'b',0.20,2),(2,'a',-0.30,3),(2,'b',NULL,4)`)
	def := mustParse(t, `name: bal
source: plex
extract: {table: bal}
mode: full
target:
  table: bal_wh
  key: [pcn, acct]
  create: CREATE TABLE bal_wh (pcn INT, acct VARCHAR(10), amount DECIMAL(19,2), n INT, PRIMARY KEY (pcn, acct))
`)
	e.run(t, def, etl.Options{})
	verify := func() string {
		t.Helper()
		groups, err := etl.Verify(context.Background(), def, e.plex, e.whDB)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, g := range groups {
			out = append(out, fmt.Sprintf("%s:%d/%d:%s=%s/%s:%s", g.Group, g.SourceRows, g.TargetRows, "amount", g.SourceSums["amount"], g.TargetSums["amount"], strings.Join(g.Differs, ",")))
		}
		return strings.Join(out, " ")
	}
	if got := verify(); got != "1:2/2:amount=0.3/0.3: 2:2/2:amount=-0.3/-0.3:" {
		t.Fatalf("equal: %s", got)
	}
	if _, err := e.whDB.Exec("UPDATE bal_wh SET amount = 0.11 WHERE pcn = 1 AND acct = 'a'"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.whDB.Exec("DELETE FROM bal_wh WHERE pcn = 2 AND acct = 'b'"); err != nil {
		t.Fatal(err)
	}
	if got := verify(); got != "1:2/2:amount=0.3/0.31:amount 2:2/1:amount=-0.3/-0.3:rows,n" {
		t.Fatalf("after tampering: %s", got)
	}
}
