package source

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"rpt/internal/dsn"
	"rpt/internal/testenv"
)

// openMariaDB returns a source on a fresh database holding the fixture, and a
// plain pool on the same database for the test's own checks.
func openMariaDB(t *testing.T, stmts ...string) (Source, *sql.DB) {
	t.Helper()
	d := testenv.MariaDB(t)
	mc, err := dsn.MySQL(d)
	if err != nil {
		t.Fatal(err)
	}
	delete(mc.Params, "charset")
	mc.Params["time_zone"] = "'+00:00'" // as the source's sessions, so TIMESTAMPs read back as written
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { _ = db.Close() })
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	src, err := Open(context.Background(), "warehouse", Config{Driver: "mysql", DSN: d})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src, db
}

var mariaDBFixture = []string{
	`CREATE TABLE bal (
		pcn INT NOT NULL,
		account_no VARCHAR(20) NOT NULL,
		debit DECIMAL(19,2),
		big BIGINT UNSIGNED,
		active TINYINT(1),
		ratio DOUBLE,
		period_begin DATE,
		updated DATETIME(6),
		stamped TIMESTAMP NULL,
		note TEXT,
		raw VARBINARY(8),
		PRIMARY KEY (pcn, account_no)
	)`,
	`INSERT INTO bal VALUES
		(1, '100-00', 12345678901234567.89, 18446744073709551, 1, 0.25, '2024-02-29', '2024-03-01 12:34:56.123456', '2024-03-01 00:00:01', 'first', X'00FF'),
		(1, '200-00', -0.10, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL),
		(2, '300-00', 0.00, 0, 1, 1, '2023-12-31', '2023-12-31 23:59:59.000001', NULL, 'other', X'')`,
}

func TestMariaDBTypedRows(t *testing.T) {
	t.Parallel()
	src, _ := openMariaDB(t, mariaDBFixture...)
	wantCols := []Column{
		{"pcn", TypeInt}, {"account_no", TypeString}, {"debit", TypeDecimal}, {"big", TypeInt},
		{"active", TypeInt}, {"ratio", TypeFloat}, {"period_begin", TypeDate}, {"updated", TypeDateTime},
		{"stamped", TypeDateTime}, {"note", TypeString}, {"raw", TypeBytes}, {"total", TypeDecimal},
	}
	want := [][]any{
		{int64(1), "100-00", "12345678901234567.89", int64(18446744073709551), int64(1), 0.25, "2024-02-29",
			"2024-03-01T12:34:56.123456Z", "2024-03-01T00:00:01Z", "first", []byte{0, 0xFF}, "12345678901234567.79"},
		{int64(1), "200-00", "-0.10", nil, int64(0), nil, nil, nil, nil, nil, nil, "12345678901234567.79"},
	}
	// Both protocols: no arguments runs as text, with arguments as a prepared statement.
	for _, tt := range []struct {
		name   string
		sql    string
		params map[string]any
	}{
		{"binary protocol", "SELECT b.*, (SELECT SUM(debit) FROM bal WHERE pcn = :pcn) AS total FROM bal b WHERE pcn = :pcn ORDER BY account_no", map[string]any{"pcn": int64(1)}},
		{"text protocol", "SELECT b.*, (SELECT SUM(debit) FROM bal WHERE pcn = 1) AS total FROM bal b WHERE pcn = 1 ORDER BY account_no", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := src.Query(context.Background(), tt.sql, tt.params)
			if err != nil {
				t.Fatal(err)
			}
			if got := rows.Columns(); !reflect.DeepEqual(got, wantCols) {
				t.Errorf("columns = %v\nwant %v", got, wantCols)
			}
			if got := collect(t, rows); !reflect.DeepEqual(got, want) {
				t.Errorf("rows =\n%#v\nwant\n%#v", got, want)
			}
		})
	}
}

func TestMariaDBListBinding(t *testing.T) {
	t.Parallel()
	src, _ := openMariaDB(t, mariaDBFixture...)
	rows, err := src.Query(context.Background(),
		"SELECT account_no, debit FROM bal WHERE account_no IN (:accounts) AND pcn IN (:pcns) AND note <> ':x' ORDER BY account_no",
		map[string]any{"accounts": []any{"100-00", "300-00", "999-99"}, "pcns": []any{int64(1), int64(2)}})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]any{{"100-00", "12345678901234567.89"}, {"300-00", "0.00"}}
	if got := collect(t, rows); !reflect.DeepEqual(got, want) {
		t.Errorf("rows = %v, want %v", got, want)
	}
	if _, err := src.Query(context.Background(), "SELECT 1 FROM bal WHERE pcn = :pcn", nil); !errors.Is(err, ErrUnknownParam) {
		t.Errorf("unknown param: error = %v, want ErrUnknownParam", err)
	}
}

// Cancelling ctx returns at once with ctx's error and KILL QUERY stops the
// statement on the server: go-sql-driver alone would only close its socket.
func TestMariaDBCancelKillsQuery(t *testing.T) {
	t.Parallel()
	src, db := openMariaDB(t)
	tests := []struct {
		name string
		sql  string
	}{
		// Cancelled while Query waits for the first result. A cross join of 10^10
		// rows (MariaDB's sequence engine) never looks at the client socket, so
		// only KILL QUERY stops it; SLEEP notices a closed socket by itself after
		// a few seconds.
		{"during cross join", "SELECT /* MARKER */ SUM(a.seq + b.seq) FROM seq_1_to_100000 a, seq_1_to_100000 b"},
		{"during sleep", "SELECT SLEEP(30) AS /* MARKER */ s"},
		// Cancelled while streaming: the second row takes 30 s.
		{"during rows", "SELECT /* MARKER */ n, SLEEP(IF(n = 2, 30, 0)) AS s FROM (SELECT 1 AS n UNION ALL SELECT 2) x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A marker unique to this run, so a statement of another run is never counted.
			marker := fmt.Sprintf("rpt-cancel-%d", time.Now().UnixNano())
			query := strings.Replace(tt.sql, "MARKER", marker, 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			time.AfterFunc(200*time.Millisecond, cancel)
			start := time.Now()
			rows, err := src.Query(ctx, query, nil)
			if err == nil {
				for rows.Next() {
				}
				err = rows.Err()
				_ = rows.Close()
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error = %v, want context.Canceled", err)
			}
			// Not a timing assertion on speed: 30 s would mean the cancel did nothing.
			if d := time.Since(start); d > 20*time.Second {
				t.Fatalf("cancel took %v", d)
			}
			if n := runningQueries(t, db, marker); n != 0 {
				killQueries(t, db, marker) // don't leave 10^10 rows running on a shared server
				t.Fatalf("%d statements with %s still in PROCESSLIST after 5 s", n, marker)
			}
		})
	}
	// The source still works after its connections were killed.
	rows, err := src.Query(context.Background(), "SELECT :x AS x", map[string]any{"x": int64(7)})
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, rows); !reflect.DeepEqual(got, [][]any{{int64(7)}}) {
		t.Errorf("after cancel: %v", got)
	}
}

// Several queries cancelled in the same instant, as an agent's jobs are at the end of
// its shutdown grace period, are all stopped on the server. Each runs on a source of
// its own (an agent opens one per job) with a bound parameter, so the server sees
// prepared statements, as for a definition with params.
func TestMariaDBCancelTogether(t *testing.T) {
	t.Parallel()
	_, db := openMariaDB(t)
	d := testenv.MariaDB(t)
	const n = 4
	marker := fmt.Sprintf("rpt-together-%d", time.Now().UnixNano())
	query := "SELECT /* " + marker + " */ :n AS n, SUM(a.seq + b.seq) AS s FROM seq_1_to_100000 a, seq_1_to_100000 b"
	cancel, errs := startTogether(t, db, d, n, marker, query)
	cancel()
	for range n {
		select {
		case err := <-errs:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error = %v, want context.Canceled", err)
			}
		case <-time.After(20 * time.Second): // 10^10 rows: far longer if a kill is lost
			killQueries(t, db, marker)
			t.Fatal("a cancelled query did not return")
		}
	}
	if left := runningQueries(t, db, marker); left != 0 {
		killQueries(t, db, marker)
		t.Fatalf("%d statements with %s still in PROCESSLIST after 5 s", left, marker)
	}
}

// A cancelled query returns only once its statement has stopped on the server, not
// when KILL QUERY was sent: an agent releases a job as soon as the query returns, and
// the next attempt must not find the last one still running. MariaDB 10.11 can take
// 2 s to stop prepared statements in SLEEP killed together, so this is checked with
// one look at PROCESSLIST right after the queries return, not by polling.
func TestMariaDBCancelReturnsAfterTheServerStopped(t *testing.T) {
	t.Parallel()
	_, db := openMariaDB(t)
	d := testenv.MariaDB(t)
	const n = 3
	for round := range 3 {
		marker := fmt.Sprintf("rpt-stopped-%d-%d", round, time.Now().UnixNano())
		query := "SELECT /* " + marker + " */ :n AS n, SLEEP(30) AS s"
		cancel, errs := startTogether(t, db, d, n, marker, query)
		cancel()
		for range n {
			if err := <-errs; !errors.Is(err, context.Canceled) {
				t.Errorf("error = %v, want context.Canceled", err)
			}
		}
		var left int
		if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.PROCESSLIST
			WHERE INFO LIKE CONCAT('%', ?, '%') AND ID <> CONNECTION_ID()`, marker).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 0 {
			killQueries(t, db, marker)
			t.Fatalf("round %d: %d statements with %s still ran on the server after their queries returned", round, left, marker)
		}
	}
}

// startTogether runs query (with its :n bound, so the server sees prepared statements,
// as for a definition with params) on n sources of its own, as an agent's jobs run,
// and returns once all n run on the server, with the cancel that stops them and the
// channel their errors arrive on.
func startTogether(t *testing.T, db *sql.DB, dsn string, n int, marker, query string) (context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	errs := make(chan error, n)
	for i := range n {
		src, err := Open(context.Background(), "warehouse", Config{Driver: "mysql", DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		go func() {
			rows, err := src.Query(ctx, query, map[string]any{"n": int64(i)})
			if err == nil {
				for rows.Next() {
				}
				err = rows.Err()
				_ = rows.Close()
			}
			errs <- err
		}()
	}
	// Every statement must be running before the cancel, or a kill could miss it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var running int
		if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.PROCESSLIST
			WHERE INFO LIKE CONCAT('%', ?, '%') AND ID <> CONNECTION_ID()`, marker).Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running == n {
			return cancel, errs
		}
		if time.Now().After(deadline) {
			killQueries(t, db, marker)
			t.Fatalf("%d of %d statements started", running, n)
		}
	}
}

// Closing rows before their end stops the statement instead of reading the
// rest of the result (go-sql-driver would drain it).
func TestMariaDBCloseEarly(t *testing.T) {
	t.Parallel()
	src, db := openMariaDB(t)
	marker := fmt.Sprintf("rpt-close-%d", time.Now().UnixNano())
	rows, err := src.Query(context.Background(),
		"SELECT /* "+marker+" */ a.seq + b.seq AS n FROM seq_1_to_100000 a, seq_1_to_100000 b WHERE b.seq > :min",
		map[string]any{"min": int64(0)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3 && rows.Next(); i++ {
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := rows.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if n := runningQueries(t, db, marker); n != 0 {
		killQueries(t, db, marker)
		t.Fatalf("%d statements with %s still in PROCESSLIST after 5 s", n, marker)
	}
	// A finished query's connection goes back to the pool in good order.
	for i := 0; i < 3; i++ {
		rows, err := src.Query(context.Background(), "SELECT 1 AS one", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := collect(t, rows); !reflect.DeepEqual(got, [][]any{{int64(1)}}) {
			t.Errorf("query %d: %v", i, got)
		}
	}
}

// runningQueries polls PROCESSLIST for up to 5 s until no statement containing
// marker runs, and returns how many still do.
func runningQueries(t *testing.T, db *sql.DB, marker string) int {
	t.Helper()
	var n int
	for deadline := time.Now().Add(5 * time.Second); ; {
		err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.PROCESSLIST
			WHERE INFO LIKE CONCAT('%', ?, '%') AND ID <> CONNECTION_ID()`, marker).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killQueries stops the statements a failed cancel test left running.
func killQueries(t *testing.T, db *sql.DB, marker string) {
	rows, err := db.Query(`SELECT ID FROM information_schema.PROCESSLIST
		WHERE INFO LIKE CONCAT('%', ?, '%') AND ID <> CONNECTION_ID()`, marker)
	if err != nil {
		t.Log(err)
		return
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		if _, err := db.Exec(fmt.Sprintf("KILL QUERY %d", id)); err != nil {
			t.Log(err)
		}
	}
}

// An agent keeps one Source (one pool) per source across jobs, so two jobs' queries
// run on connections of the same pool: cancelling one job's query kills that query on
// the server and leaves the other job's running.
func TestMariaDBCancelOneOfSharedPool(t *testing.T) {
	t.Parallel()
	src, db := openMariaDB(t)
	stamp := time.Now().UnixNano()
	markerA, markerB := fmt.Sprintf("rpt-shared-a-%d", stamp), fmt.Sprintf("rpt-shared-b-%d", stamp)
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	run := func(ctx context.Context, marker string, done chan<- error) {
		rows, err := src.Query(ctx, "SELECT /* "+marker+" */ :n AS n, SLEEP(60) AS s", map[string]any{"n": int64(1)})
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			_ = rows.Close()
		}
		done <- err
	}
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go run(ctxA, markerA, doneA)
	go run(ctxB, markerB, doneB)
	count := func(marker string) int {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.PROCESSLIST
			WHERE INFO LIKE CONCAT('%', ?, '%') AND ID <> CONNECTION_ID()`, marker).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for deadline := time.Now().Add(10 * time.Second); count(markerA) != 1 || count(markerB) != 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			killQueries(t, db, markerA)
			killQueries(t, db, markerB)
			t.Fatal("the two statements did not both start")
		}
	}
	cancelA()
	select {
	case err := <-doneA:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled query: %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the cancelled query did not return")
	}
	if n := runningQueries(t, db, markerA); n != 0 {
		t.Errorf("%d statements of the cancelled query still on the server", n)
	}
	if n := count(markerB); n != 1 {
		t.Errorf("the other query of the pool: %d statements running, want 1 (the kill hit the wrong connection)", n)
	}
	select {
	case err := <-doneB:
		t.Errorf("the other query ended: %v", err)
	default:
	}
	cancelB()
	<-doneB
	if n := runningQueries(t, db, markerB); n != 0 {
		t.Errorf("%d statements of the second query left", n)
	}
}
