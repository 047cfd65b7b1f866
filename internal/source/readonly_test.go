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
