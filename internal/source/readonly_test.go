package source

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// runAll runs q and reads it to the end, returning the first error from the query,
// the rows or their close.
func runAll(src Source, q string) error {
	rows, err := src.Query(context.Background(), q, nil)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	err = rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}

// TestReportSQLCannotWrite: whatever statement a report's SQL is, the source's
// database refuses to change anything, on SQLite and MariaDB; reading still works, and
// the pool's other users (history writes through DB()) can still write afterwards.
func TestReportSQLCannotWrite(t *testing.T) {
	fixture := []string{"CREATE TABLE x (id INTEGER PRIMARY KEY, v INTEGER)", "INSERT INTO x (id, v) VALUES (1, 10), (2, 20), (3, 30)"}
	for _, backend := range []string{"sqlite", "mariadb"} {
		t.Run(backend, func(t *testing.T) {
			var src Source
			var check *sql.DB // a pool of the test's own, to see what changed
			switch backend {
			case "sqlite":
				d := newSQLiteFile(t, fixture...)
				var err error
				src, err = Open(context.Background(), "warehouse", Config{Driver: "sqlite", DSN: d})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { src.Close() })
				check, err = sql.Open("sqlite", "file:"+strings.TrimPrefix(d, "sqlite:"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { check.Close() })
			case "mariadb":
				src, check = openMariaDB(t, fixture...)
			}
			state := func() string {
				t.Helper()
				var n, sum int
				if err := check.QueryRow("SELECT COUNT(*), COALESCE(SUM(v), 0) FROM x").Scan(&n, &sum); err != nil {
					return "x: " + err.Error()
				}
				var y int
				if err := check.QueryRow("SELECT COUNT(*) FROM y").Scan(&y); err == nil {
					return "table y exists"
				}
				return fmt.Sprintf("%d rows, sum %d", n, sum)
			}
			before := state()

			writes := []struct {
				sql      string
				readOnly bool // refused by the database as a write (ErrReadOnly), else as a second statement
			}{
				{"DELETE FROM x", true},
				{"DELETE FROM x WHERE id = 1", true},
				{"UPDATE x SET v = 0", true},
				{"INSERT INTO x (id, v) VALUES (9, 90)", true},
				{"DROP TABLE x", true},
				{"CREATE TABLE y (id INTEGER)", true},
				{"SELECT 1; DROP TABLE x", false},
				{"SELECT 1 AS one; DELETE FROM x", false},
			}
			for _, w := range writes {
				err := runAll(src, w.sql)
				if err == nil {
					t.Errorf("%s: no error", w.sql)
				} else if w.readOnly && (!errors.Is(err, ErrReadOnly) || !errors.Is(err, ErrRequest) || !strings.Contains(err.Error(), "report SQL must only read")) {
					t.Errorf("%s: err = %v, want ErrReadOnly", w.sql, err)
				} else if !w.readOnly && (!errors.Is(err, ErrStatement) || !errors.Is(err, ErrRequest)) {
					// Refused before it reaches the database: one statement only.
					t.Errorf("%s: err = %v, want ErrStatement", w.sql, err)
				}
				if got := state(); got != before {
					t.Fatalf("after %q the table changed: %s, was %s", w.sql, got, before)
				}
			}

			// Reading works, on the connections the refused writes used.
			rows, err := src.Query(context.Background(), "SELECT SUM(v) AS total FROM x", nil)
			if err != nil {
				t.Fatal(err)
			}
			got := collect(t, rows)
			if len(got) != 1 || got[0][0] == nil {
				t.Errorf("SELECT after the refused writes: %v", got)
			}
			// The pool history writes use is not left read-only.
			db := src.(interface{ DB() *sql.DB }).DB()
			db.SetMaxOpenConns(1)
			for i := 0; i < 2; i++ {
				if err := runAll(src, "SELECT id FROM x"); err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec("UPDATE x SET v = v WHERE id = 1"); err != nil {
					t.Fatalf("write through DB() after a read-only query: %v", err)
				}
			}
		})
	}
}

// TestReadOnlyEndsAtLastRow: on MariaDB the read-only transaction ends when the result
// has been read to its end, before the rows are closed: it holds metadata locks on the
// tables it read, and an agent adds history columns while its rows are still open.
func TestReadOnlyEndsAtLastRow(t *testing.T) {
	src, db := openMariaDB(t, "CREATE TABLE x (id INTEGER)", "INSERT INTO x VALUES (1), (2)")
	rows, err := src.Query(context.Background(), "SELECT id FROM x", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION lock_wait_timeout = 5"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "ALTER TABLE x ADD COLUMN note TEXT"); err != nil {
		t.Fatalf("ALTER TABLE while the read rows are open: %v", err)
	}
}

// TestSQLiteReadPool: the SQLite source's read connections are kept across queries
// that start with SELECT or WITH, and closed after any other statement, so a report
// whose SQL changes its connection's settings (turns query_only off, changes LIKE)
// leaves nothing behind for the next one; query_only holds either way.
func TestSQLiteReadPool(t *testing.T) {
	d := newSQLiteFile(t, "CREATE TABLE x (id INTEGER PRIMARY KEY, v INTEGER)", "INSERT INTO x (id, v) VALUES (1, 10)")
	src, err := Open(context.Background(), "warehouse", Config{Driver: "sqlite", DSN: d})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	pool := src.(*sqlSource).readDB
	pool.SetMaxOpenConns(1) // every query on the same connection when it is kept
	idle := func() int { return pool.Stats().Idle }

	for _, q := range []string{"SELECT v FROM x", "  -- a comment\n/* another */ with t AS (SELECT 1 AS one) SELECT one FROM t", "select 2 AS two"} {
		if err := runAll(src, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if idle() != 1 {
			t.Errorf("after %q: %d idle read connections, want the one kept", q, idle())
		}
	}
	for _, q := range []string{"PRAGMA query_only = 0", "PRAGMA case_sensitive_like = 1"} {
		if err := runAll(src, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if idle() != 0 {
			t.Errorf("after %q: %d idle read connections, want it closed", q, idle())
		}
	}
	if err := runAll(src, "DELETE FROM x"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("DELETE after PRAGMA query_only = 0: err = %v, want ErrReadOnly", err)
	}
	rows, err := src.Query(context.Background(), "SELECT 'a' LIKE 'A' AS same", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, rows); len(got) != 1 || fmt.Sprint(got[0][0]) != "1" {
		t.Errorf("LIKE after another query's PRAGMA case_sensitive_like: %v, want 1 (case-insensitive, the default)", got)
	}
}

func TestReadsOnly(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT 1":                true,
		"select * from x":         true,
		"\n  -- note\n  SELECT 1": true,
		"/* c */ WITH a AS (SELECT 1) SELECT * FROM a": true,
		"((SELECT 1))":             true,
		"SELECTED":                 false,
		"PRAGMA query_only = 0":    false,
		"ATTACH 'x.db' AS y":       false,
		"DELETE FROM x":            false,
		"'SELECT'":                 false,
		"":                         false,
		"-- SELECT only a comment": false,
	} {
		if got := readsOnly(DialectSQLite, q); got != want {
			t.Errorf("readsOnly(%q) = %v, want %v", q, got, want)
		}
	}
}
