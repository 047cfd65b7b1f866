// Package sqlite is the one-machine queue.Store: rpt's job queue in a SQLite file
// (modernc.org/sqlite, pure Go). It follows ARCHITECTURE.md's "Queue semantics": every write
// runs in BEGIN IMMEDIATE on one writer connection, so a claim sees and changes the
// queue as one step; times are integer microseconds computed by SQLite's clock; agent
// writes are fenced by the lease token. Readers use a separate pool and, with WAL, never
// wait for the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"modernc.org/sqlite"

	"rpt/internal/errclass"
	"rpt/internal/queue"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// MigrationTable is the goose version table of the queue schema.
const MigrationTable = "rpt_schema_migrations"

// nowUS is the database clock in integer microseconds since the epoch, UTC. 'now' is
// fixed within one statement, so every use in a statement sees the same instant.
const nowUS = `CAST(ROUND(unixepoch('subsec') * 1000000) AS INTEGER)`

// busyRetries bounds the retry of a transaction that met SQLITE_BUSY after
// busy_timeout already waited: another process held the write lock a long time.
const busyRetries = 10

// Store is a queue.Store on one SQLite file. Safe for concurrent use; several
// processes may share the file.
type Store struct {
	w    *sql.DB // one connection, BEGIN IMMEDIATE: all writes
	r    *sql.DB // readers
	opts queue.Options
	path string

	mu    sync.Mutex
	stmts map[string]*sql.Stmt // prepared on w, by query text
}

var _ queue.Store = (*Store)(nil)

// Open opens (creating when absent, with its directory) the queue database at path.
// It does not migrate: call Migrate. Errors reaching the file wrap queue.ErrUnavailable.
func Open(ctx context.Context, path string, opts queue.Options) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("open sqlite queue: %w: empty path", queue.ErrUnavailable)
	}
	if dir := filepath.Dir(path); dir != "." && dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open sqlite queue %s: %w: %w", path, queue.ErrUnavailable, err)
		}
	}
	base := "file:" + uriPathEscaper.Replace(path) +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	w, err := sql.Open("sqlite", base+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite queue %s: %w: %w", path, queue.ErrUnavailable, err)
	}
	// One writer connection: SQLite admits one writer anyway, and queueing in Go
	// avoids busy-waiting between this process's own transactions.
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", base)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite queue %s: %w: %w", path, queue.ErrUnavailable, err)
	}
	r.SetMaxOpenConns(8)
	s := &Store{w: w, r: r, opts: opts.WithDefaults(), path: path, stmts: map[string]*sql.Stmt{}}
	// The writer first: it switches the file to WAL before readers open.
	for _, db := range []*sql.DB{w, r} {
		if err := db.PingContext(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("open sqlite queue %s: %w: %w", path, queue.ErrUnavailable, err)
		}
	}
	return s, nil
}

// uriPathEscaper escapes what a file: URI would take as syntax.
var uriPathEscaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// Close closes both pools.
func (s *Store) Close() error {
	s.mu.Lock()
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	s.stmts = nil
	s.mu.Unlock()
	return errors.Join(append(errs, s.r.Close(), s.w.Close())...)
}

// maxStmts bounds the prepared statements kept (queries built from a claim's
// sources vary a little).
const maxStmts = 256

// cachedStmt returns the prepared statement for query, or nil when it is not prepared yet.
func (s *Store) cachedStmt(query string) *sql.Stmt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stmts[query]
}

// prepare prepares queries the last transaction ran unprepared. It runs between
// transactions: preparing on the writer pool inside one would wait for the pool's
// only connection, held by that transaction.
func (s *Store) prepare(ctx context.Context, queries []string) {
	for _, q := range queries {
		if s.cachedStmt(q) != nil {
			continue
		}
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			continue // run unprepared; the error shows where the query runs
		}
		s.mu.Lock()
		if _, ok := s.stmts[q]; ok || len(s.stmts) >= maxStmts || s.stmts == nil {
			st.Close()
		} else {
			s.stmts[q] = st
		}
		s.mu.Unlock()
	}
}

// wtx is a write transaction that runs its statements prepared once they are: parsing
// SQL is most of the CPU a small SQLite transaction costs.
type wtx struct {
	*sql.Tx
	s         *Store
	unprepped []string
}

func (t *wtx) stmt(ctx context.Context, query string) *sql.Stmt {
	if st := t.s.cachedStmt(query); st != nil {
		return t.StmtContext(ctx, st)
	}
	t.unprepped = append(t.unprepped, query)
	return nil
}

func (t *wtx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

func (t *wtx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

func (t *wtx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// DB is the writer pool, for tests and tools that inspect the schema; do not write
// through it while the Store is in use.
func (s *Store) DB() *sql.DB { return s.w }

func (s *Store) provider() (*goose.Provider, error) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(database.DialectSQLite3, s.w, sub,
		goose.WithTableName(MigrationTable), goose.WithDisableGlobalRegistry(true),
		// Features add migrations side by side (ARCHITECTURE.md, "Migrations"): a version
		// merged after a higher one still applies.
		goose.WithAllowOutofOrder(true))
}

// Migrate applies every pending embedded migration; with none pending it does nothing.
//
// Every command on the embedded queue migrates on open, so an agent and a submit
// started together on a fresh file would both apply version N; an exclusive lock on a
// file beside the database lets one process migrate while the other waits, then finds
// nothing to do.
func (s *Store) Migrate(ctx context.Context) error {
	p, err := s.provider()
	if err != nil {
		return fmt.Errorf("migrate queue: %w", err)
	}
	lock, err := os.OpenFile(s.Path()+".migrate-lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("migrate queue: %w: %v", queue.ErrUnavailable, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("migrate queue: lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate queue: %w", err)
	}
	return nil
}

// MigrationStatus lists the embedded migrations and when each was applied.
func (s *Store) MigrationStatus(ctx context.Context) ([]queue.Migration, error) {
	p, err := s.provider()
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	return queue.MigrationsFromGoose(st), nil
}

// write runs fn in one BEGIN IMMEDIATE transaction, again from the start when SQLite
// reports the database busy (another process kept the lock past busy_timeout). fn must
// set its results afresh on each run.
func (s *Store) write(ctx context.Context, op string, fn func(tx *wtx) error) error {
	delay := 5 * time.Millisecond
	for try := 0; ; try++ {
		err := s.writeOnce(ctx, fn)
		if err == nil {
			return nil
		}
		if !isBusy(err) || try >= busyRetries {
			return localFault(fmt.Errorf("%s: %w", op, err))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", op, errors.Join(ctx.Err(), err))
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}

func (s *Store) writeOnce(ctx context.Context, fn func(tx *wtx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	t := &wtx{Tx: tx, s: s}
	if err := fn(t); err != nil {
		_ = tx.Rollback()
		s.prepare(ctx, t.unprepped)
		return err
	}
	err = tx.Commit()
	s.prepare(ctx, t.unprepped)
	return err
}

// localFault gives the file's own faults (disk full, I/O error, read-only or
// unopenable file) the class Unavailable with what to do: they are the machine's
// trouble, neither the input's nor a job's. Other errors are returned as they are.
func localFault(err error) error {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code() & 0xff {
	case 13: // SQLITE_FULL: the disk, or the max_page_count limit, has no room
		// queue.ErrFull in the chain, not in the text: the agent fails such an attempt
		// and discards its partial result (reads and deletes still work).
		return &errclass.Error{Class: errclass.Unavailable, Err: fmt.Errorf("%w: %w", queue.ErrFull, err),
			Msg: err.Error() + ": the disk of the queue database is full (free space; `rpt db prune` deletes old results)"}
	case 10, 8, 14, 3: // SQLITE_IOERR, SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM
		return errclass.Errorf(errclass.Unavailable, "%w (check the queue database file, its folder and permissions)", err)
	}
	return err
}

// isBusy reports SQLITE_BUSY or SQLITE_LOCKED, with any extended code.
func isBusy(err error) bool {
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	return false
}
