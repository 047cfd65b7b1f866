package source

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
)

// Report SQL reads. Whoever wrote a definition, its query runs where the database
// itself refuses writes, so that a slip past the other checks (trust, the
// one-statement rule) still cannot change anything:
//
//   - MySQL/MariaDB: on the query's pinned connection, SET SESSION TRANSACTION READ
//     ONLY and then START TRANSACTION READ ONLY. The session setting is what stops DDL:
//     DROP TABLE commits the open transaction implicitly and would then run in a new,
//     writable one (MariaDB 10.11 drops the table under START TRANSACTION READ ONLY
//     alone). As soon as the result is read to its end (or the rows are closed),
//     ROLLBACK and SET SESSION TRANSACTION READ WRITE give the connection back as it
//     was; if either fails the connection is discarded. Ending at the last row matters:
//     the transaction holds metadata locks on the tables it read, and a history load
//     that adds a column to one of them would wait for them until the rows are closed.
//   - SQLite: queries run on a pool of their own whose connections start with PRAGMA
//     query_only, which is asserted again on every checkout (PRAGMA query_only = 1 runs
//     before each query). A connection goes back to the pool only after a statement
//     that starts with SELECT or WITH (see readsOnly): those cannot change a
//     connection's settings, while any other statement (a PRAGMA, ATTACH) may, so its
//     connection is closed after it and leaves nothing behind for the next query.
//     Opening a connection per query cost about 30% of an agent's CPU on short reports;
//     pooled readers are safe with the queue's and warehouse's WAL mode, where readers
//     never block the writer, and wait busy_timeout for a rollback-journal writer.
//   - SQL Server (and Plex ODBC) have no client-side switch: their sources need a login
//     that can only read (README).
//
// History writes (a definition's store:) do not go through Query: they use the
// source's DB() pool, in results.WriteHistory's own fenced transaction.

// ErrReadOnly is a report query that tried to write and was refused by the database.
// It also matches ErrRequest: retrying the same SQL cannot help.
var ErrReadOnly = errors.New("report SQL must only read")

type readOnlyError struct {
	source string
	err    error
}

func (e *readOnlyError) Error() string {
	return fmt.Sprintf("query source %q: %s: the database refused a write (%v)", e.source, ErrReadOnly, e.err)
}

func (e *readOnlyError) Unwrap() []error { return []error{ErrReadOnly, ErrRequest, e.err} }

// MySQL and SQLite codes of a write refused by a read-only transaction or connection.
const (
	mysqlErrReadOnlyTx = 1792 // Cannot execute statement in a READ ONLY transaction
	sqliteReadOnly     = 8    // SQLITE_READONLY (any extended code)
)

// readOnlyRefusal returns err as an ErrReadOnly error when it is the database refusing
// a write, else err unchanged.
func readOnlyRefusal(source string, err error) error {
	var me *mysql.MySQLError
	var se *sqlite.Error
	switch {
	case errors.As(err, &me) && me.Number == mysqlErrReadOnlyTx,
		errors.As(err, &se) && se.Code()&0xff == sqliteReadOnly:
		return &readOnlyError{source: source, err: err}
	}
	return err
}

// openSQLiteReader opens the pool report queries run on (see above).
func openSQLiteReader(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout("+sqliteBusyTimeout+")&_pragma=query_only(1)")
	if err != nil {
		return nil, err
	}
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// querySQLite runs q on a connection of the read-only pool, asserting query_only on it
// first; the connection goes back to the pool when the rows are closed if q only
// reads, else it is closed (see above).
func (s *sqlSource) querySQLite(ctx context.Context, q string, args []any) (*sql.Rows, func() error, error) {
	conn, err := s.readDB.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	discard := func() error { return conn.Raw(func(any) error { return errBadConn }) }
	if _, err := conn.ExecContext(ctx, "PRAGMA query_only = 1"); err != nil {
		_ = discard()
		return nil, nil, err
	}
	rows, err := conn.QueryContext(ctx, q, args...)
	release := conn.Close
	if !readsOnly(DialectSQLite, q) {
		release = func() error { _ = discard(); return nil }
	}
	if err != nil {
		_ = release()
		return nil, nil, err
	}
	return rows, release, nil
}

// readsOnly reports whether q's first keyword, after blanks and comments, is SELECT or
// WITH: a statement that cannot change its connection's settings (a WITH that goes on
// to write is refused by query_only and changes nothing either).
func readsOnly(dialect, q string) bool {
	first, done := "", false
	_ = scanSQL(dialect, q, func(t token) error {
		if done || t.kind == tokenComment {
			return nil
		}
		text := t.text
		if t.kind == tokenCode {
			text = strings.TrimLeft(text, " \t\r\n\f\v(")
			if text == "" {
				return nil // blanks between comments
			}
		}
		done = true
		end := strings.IndexFunc(text, func(r rune) bool { return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') })
		if end < 0 {
			end = len(text)
		}
		first = text[:end]
		return nil
	})
	return strings.EqualFold(first, "SELECT") || strings.EqualFold(first, "WITH")
}

// mysqlBeginReadOnly makes conn's session and a new transaction on it read-only.
func mysqlBeginReadOnly(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "SET SESSION TRANSACTION READ ONLY"); err != nil {
		return err
	}
	_, err := conn.ExecContext(ctx, "START TRANSACTION READ ONLY")
	return err
}

// mysqlEndReadOnly ends the read-only transaction and gives the session back its
// read-write default; false means conn must be discarded.
func mysqlEndReadOnly(conn *sql.Conn) bool {
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		return false
	}
	_, err := conn.ExecContext(ctx, "SET SESSION TRANSACTION READ WRITE")
	return err == nil
}

// endReadOnly ends the run's read-only transaction once (the result was read to its
// end, or the rows are closed), recording whether the connection can be reused.
func (m *mysqlRun) endReadOnly() {
	if m.ended != 0 {
		return
	}
	m.ended = -1
	if mysqlEndReadOnly(m.conn) {
		m.ended = 1
	}
}
