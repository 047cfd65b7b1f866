// Package mysql is the queue Store on MySQL 8 and MariaDB 10.6+: the one many agents on
// many nodes share. Claims take row locks with FOR UPDATE SKIP LOCKED in short READ
// COMMITTED transactions (never held while a job runs), concurrency limits are slot
// rows, and every agent write is fenced by the lease token. The schema is the embedded
// goose migrations under migrations/.
//
// Connection budget: an agent needs about 2 + 2 x concurrency connections (the claim
// loop and the rescuer/presence heartbeat, plus per running job its lease heartbeat and
// its result-chunk writes). The pool defaults to DefaultMaxOpenConns; set it with
// SetMaxOpenConns (ConnBudget computes it) or the DSN parameter max_open_conns=N. Size
// the server's max_connections for the sum over all agents, API servers and CLIs.
package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/pressly/goose/v3"

	"rpt/internal/dsn"
	"rpt/internal/errclass"
	"rpt/internal/queue"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Pool defaults. DefaultMaxOpenConns is ConnBudget(4).
const (
	DefaultMaxOpenConns    = 10
	DefaultConnMaxLifetime = 3 * time.Minute
	// defaultIOTimeout bounds every read and write on a queue connection, so a server
	// that vanished mid-statement surfaces as ErrUnavailable instead of a hang. Queue
	// statements are short; result chunks are read one at a time.
	defaultIOTimeout = time.Minute
	// defaultDialTimeout bounds a connect to a host that does not answer at all (the
	// TCP default is minutes), so callers retry and say so instead of hanging.
	defaultDialTimeout = 5 * time.Second
	// defaultLockWait (seconds) bounds waits for row locks (fenced writes behind a
	// claim); a timeout (1205) is retried.
	defaultLockWait = "10"
)

// MigrationTable is the goose version table of the queue schema (the same name as the
// SQLite store's), kept apart from other tools' in a shared database.
const MigrationTable = "rpt_schema_migrations"

// DSN parameters this package reads (and removes before the driver sees them).
const (
	paramMaxOpenConns    = "max_open_conns"
	paramConnMaxLifetime = "conn_max_lifetime"
)

// ConnBudget is the pool size an agent running `concurrency` jobs at once needs.
func ConnBudget(concurrency int) int {
	if concurrency < 1 {
		concurrency = 1
	}
	return 2 + 2*concurrency
}

// Store is the MySQL/MariaDB queue. It is safe for concurrent use.
type Store struct {
	db *sql.DB
	// multi is a second pool whose connections accept several statements per call
	// (multi.go): only the claim and the batch completion use it, with statements the
	// store writes and every value bound (escaped by the driver), never pasted.
	multi     *sql.DB
	connector driver.Connector
	opts      queue.Options
	name      string // database name, for the migration lock

	autoincMu sync.Mutex
	autoinc   *bool // innodb_autoinc_lock_mode gives a multi-row INSERT consecutive ids; nil: not asked yet
}

var _ queue.Store = (*Store)(nil)

// Open connects to the queue database named by a mysql://user:pass@host:port/db DSN.
// It does not migrate: call Migrate (rpt db migrate) first. Besides the driver's
// parameters the DSN may carry max_open_conns=N and conn_max_lifetime=DUR.
func Open(ctx context.Context, dsnText string, opts queue.Options) (*Store, error) {
	maxOpen, lifetime, rest, err := poolParams(dsnText)
	if err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}
	cfg, err := dsn.MySQL(rest)
	if err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}
	if cfg.DBName == "" {
		return nil, fmt.Errorf("open queue: %w: %q names no database (mysql://user:pass@host:port/DB)", dsn.ErrInvalid, dsn.Redact(dsnText))
	}
	connCollation(cfg)
	// Fenced writes decide "lease lost" on 0 affected rows, which must mean "no row
	// matched", not "matched but unchanged".
	cfg.ClientFoundRows = true
	// One round trip per statement instead of prepare/execute/close.
	cfg.InterpolateParams = true
	// After a failover to a read-only replica, drop the connection and reconnect.
	cfg.RejectReadOnly = true
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultDialTimeout
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = defaultIOTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = defaultIOTimeout
	}
	if _, ok := cfg.Params["innodb_lock_wait_timeout"]; !ok {
		cfg.Params["innodb_lock_wait_timeout"] = defaultLockWait
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}
	mcfg := cfg.Clone()
	mcfg.MultiStatements = true
	mconnector, err := mysql.NewConnector(mcfg)
	if err != nil {
		return nil, fmt.Errorf("open queue: %w", err)
	}
	db := sql.OpenDB(readCommittedConnector{connector})
	multi := sql.OpenDB(readCommittedConnector{mconnector})
	db.SetConnMaxLifetime(lifetime)
	multi.SetConnMaxLifetime(lifetime)
	s := &Store{db: db, multi: multi, connector: connector, opts: opts.WithDefaults(), name: cfg.DBName}
	s.SetMaxOpenConns(maxOpen)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		multi.Close()
		if refused := refusedOpen(cfg, err); refused != nil {
			return nil, refused
		}
		return nil, s.wrap("open queue", err)
	}
	return s, nil
}

// refusedOpen turns the server's refusals at connect (an unknown database, a wrong
// password, a user without access to the database) into errors that say what to do,
// of class Unavailable: the server answers, but it will not serve the queue until
// someone changes it, so they are not retried. The driver's text stays in the message
// (it never holds the password); nil for other errors.
func refusedOpen(cfg *mysql.Config, err error) error {
	where := cfg.Addr
	switch mysqlErrNo(err) {
	case errBadDB:
		return errclass.Errorf(errclass.Unavailable,
			"queue database %q does not exist on %s (%w): create it: CREATE DATABASE `%s`; then run `rpt db migrate`",
			cfg.DBName, where, err, cfg.DBName)
	case errAccessDenied:
		return errclass.Errorf(errclass.Unavailable,
			"the queue database server %s refused user %q (%w): check the user and password in --queue (RPT_QUEUE, or queue: in rpt.yaml)",
			where, cfg.User, err)
	case errDBAccessDenied:
		return errclass.Errorf(errclass.Unavailable,
			"user %q may not use queue database %q on %s (%w): grant it access (GRANT ... ON `%s`.* TO ...), or name another database in --queue",
			cfg.User, cfg.DBName, where, err, cfg.DBName)
	}
	return nil
}

// poolParams takes this package's parameters out of the DSN.
func poolParams(s string) (maxOpen int, lifetime time.Duration, rest string, err error) {
	maxOpen, lifetime = DefaultMaxOpenConns, DefaultConnMaxLifetime
	u, perr := url.Parse(s)
	if perr != nil || u.Scheme != "mysql" {
		return 0, 0, "", fmt.Errorf("%w: %q: want mysql://user:pass@host:port/db", dsn.ErrInvalid, dsn.Redact(s))
	}
	q := u.Query()
	if v := q.Get(paramMaxOpenConns); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, "", fmt.Errorf("%w: %s=%q: want a positive integer", dsn.ErrInvalid, paramMaxOpenConns, v)
		}
		maxOpen = n
	}
	if v := q.Get(paramConnMaxLifetime); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, 0, "", fmt.Errorf("%w: %s=%q: want a duration like 3m", dsn.ErrInvalid, paramConnMaxLifetime, v)
		}
		lifetime = d
	}
	q.Del(paramMaxOpenConns)
	q.Del(paramConnMaxLifetime)
	u.RawQuery = q.Encode()
	return maxOpen, lifetime, u.String(), nil
}

// connCollation makes string literals in queue statements compare in the schema's
// collation (utf8mb4_bin). With the driver's default connection collation, MariaDB
// cannot use status = 'queued' to drop status from the claim ORDER BY and sorts every
// claim ("Using filesort"); the EXPLAIN test guards this.
func connCollation(cfg *mysql.Config) {
	delete(cfg.Params, "charset")
	delete(cfg.Params, "collation")
	cfg.Apply(mysql.Charset("utf8mb4", "utf8mb4_bin"))
}

// SetMaxOpenConns resizes the pool, e.g. to ConnBudget(concurrency) in an agent. The
// two pools share n, so n stays the most connections the store opens: the multi pool
// (claims, completions, heartbeats, plain enqueues) gets half, rounded up, the other
// pool the rest (at least one each).
func (s *Store) SetMaxOpenConns(n int) {
	m := max(1, (n+1)/2)
	rest := max(1, n-m)
	s.multi.SetMaxOpenConns(m)
	s.multi.SetMaxIdleConns(m)
	s.db.SetMaxOpenConns(rest)
	s.db.SetMaxIdleConns(rest)
}

// DB is the underlying pool, for tests and diagnostics.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the pool.
func (s *Store) Close() error { return errors.Join(s.db.Close(), s.multi.Close()) }

// readCommittedConnector puts every session in READ COMMITTED once, at connect: claims
// must not take gap locks, and setting it per transaction would cost a round trip each.
// (The variable's name differs between MySQL 8 and MariaDB; this statement works on both.)
type readCommittedConnector struct{ driver.Connector }

func (c readCommittedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, errors.New("mysql driver connection cannot exec")
	}
	if _, err := ex.ExecContext(ctx, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("set isolation level: %w", err)
	}
	return conn, nil
}

// MySQL error numbers the store reacts to.
const (
	errDupEntry        = 1062
	errLockWaitTimeout = 1205
	errDeadlock        = 1213
	errNoSuchTable     = 1146
	errBadDB           = 1049 // unknown database
	errAccessDenied    = 1045 // wrong user or password
	errDBAccessDenied  = 1044 // the user may not use the database
	errTableDenied     = 1142 // the user lacks a grant on a table
	errDiskFull        = 1021
	errRecordFileFull  = 1114 // "The table is full": out of disk or tablespace
	errTooManyConns    = 1040
	errServerShutdown  = 1053
	errConnKilled      = 1927
	errReadOnly        = 1290
	errServerGone      = 2006
	errServerLost      = 2013
	errCantConnect     = 2002
	errCantConnectTCP  = 2003
)

// Transaction retries (see inTx).
const (
	maxDeadlockRetries = 20
	maxLockWaitRetries = 2
	retrySleepMax      = 20 * time.Millisecond
)

func mysqlErrNo(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// unavailable reports whether err means the database could not be reached or the
// connection broke, as opposed to a statement the database refused.
func unavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	switch mysqlErrNo(err) {
	case errTooManyConns, errServerShutdown, errConnKilled, errReadOnly, errServerGone, errServerLost, errCantConnect, errCantConnectTCP:
		return true
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// wrap names the operation and classifies connection errors as queue.ErrUnavailable.
func (s *Store) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, queue.ErrLeaseLost), errors.Is(err, queue.ErrNotFound), errors.Is(err, queue.ErrUnavailable):
		return fmt.Errorf("%s: %w", op, err)
	case unavailable(err):
		return fmt.Errorf("%s: %w: %w", op, queue.ErrUnavailable, err)
	case mysqlErrNo(err) == errNoSuchTable:
		// Not queue.ErrUnavailable: waiting does not help, a migration does.
		return errclass.Errorf(errclass.Unavailable, "%s: queue schema missing or old (run `rpt db migrate`): %w", op, err)
	case mysqlErrNo(err) == errTableDenied || mysqlErrNo(err) == errDBAccessDenied:
		return errclass.Errorf(errclass.Unavailable, "%s: the queue database refused the statement: the queue user lacks a grant this command needs: %w", op, err)
	case mysqlErrNo(err) == errDiskFull || mysqlErrNo(err) == errRecordFileFull:
		// queue.ErrFull in the chain, not in the text: the agent fails such an attempt
		// and discards its partial result.
		return &errclass.Error{Class: errclass.Unavailable, Err: fmt.Errorf("%w: %w", queue.ErrFull, err),
			Msg: fmt.Sprintf("%s: the queue database server is out of space (free disk space; `rpt db prune` deletes old results): %v", op, err)}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// inTx runs fn in a transaction, again from the start on deadlock or lock-wait timeout.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	return s.retried(ctx, op, func() error { return s.tryTx(ctx, fn) })
}

// retried runs try until it succeeds, fails with something other than a deadlock or a
// lock wait timeout, or has been retried too often.
func (s *Store) retried(ctx context.Context, op string, try func() error) error {
	deadlocks, lockWaits := 0, 0
	for {
		err := try()
		if err == nil {
			return nil
		}
		// Deadlocks are resolved at once and cheap to retry; a lock wait has already
		// waited innodb_lock_wait_timeout, so it gets fewer tries.
		switch mysqlErrNo(err) {
		case errDeadlock:
			deadlocks++
		case errLockWaitTimeout:
			lockWaits++
		default:
			return s.wrap(op, err)
		}
		if deadlocks > maxDeadlockRetries || lockWaits > maxLockWaitRetries {
			return s.wrap(op, err)
		}
		t := time.NewTimer(time.Duration(rand.Int64N(int64(retrySleepMax))))
		select {
		case <-ctx.Done():
			t.Stop()
			return s.wrap(op, ctx.Err())
		case <-t.C:
		}
	}
}

func (s *Store) tryTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Migrate applies the embedded migrations that are not applied yet. A named lock makes
// agents that start at once migrate one after the other.
func (s *Store) Migrate(ctx context.Context) error {
	// The lock lives on a connection of its own, outside the pool, so that goose still
	// gets a connection when the pool has only one.
	lockDB := sql.OpenDB(s.connector)
	defer lockDB.Close()
	conn, err := lockDB.Conn(ctx)
	if err != nil {
		return s.wrap("migrate queue", err)
	}
	defer conn.Close()
	lock := "rpt_migrate:" + s.name
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 45)", lock).Scan(&got); err != nil {
		return s.wrap("migrate queue: lock", err)
	}
	if got.Int64 != 1 {
		return fmt.Errorf("migrate queue: another process holds lock %q", lock)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK(?)", lock)

	p, err := s.provider()
	if err != nil {
		return fmt.Errorf("migrate queue: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return s.wrap("migrate queue", err)
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
		return nil, s.wrap("migration status", err)
	}
	return queue.MigrationsFromGoose(st), nil
}

func (s *Store) provider() (*goose.Provider, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectMySQL, s.db, sub,
		goose.WithTableName(MigrationTable), goose.WithDisableGlobalRegistry(true),
		// Features add migrations side by side (ARCHITECTURE.md, "Migrations"): a version
		// merged after a higher one still applies.
		goose.WithAllowOutofOrder(true))
}
