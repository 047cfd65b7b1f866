package source

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	mssql "github.com/microsoft/go-mssqldb"
	_ "modernc.org/sqlite" // registers driver "sqlite"

	"rpt/internal/dsn"
)

// ErrUnknownDriver is returned by Open for a driver it does not know.
var ErrUnknownDriver = errors.New("unknown source driver")

// sqliteBusyTimeout is how long a report query waits for a writer (the demo
// loader, an ETL) before giving up; reports read, so waiting is cheap.
const sqliteBusyTimeout = "10000"

// killTimeout bounds the KILL QUERY sent when a MySQL query's ctx ends.
const killTimeout = 5 * time.Second

// Open opens the source called name (the key in rpt.yaml's sources:) and checks
// that it answers. cfg.Driver picks the driver (sqlite, mysql, sqlserver); when
// empty it is taken from the DSN's scheme. A source that cannot be reached is
// ErrUnavailable.
func Open(ctx context.Context, name string, cfg Config) (Source, error) {
	driver := cfg.DriverName()
	if open := registered(driver); open != nil {
		return open(ctx, name, cfg)
	}
	var (
		s   Source
		err error
	)
	switch driver {
	case DialectSQLite:
		s, err = openSQLite(ctx, name, cfg)
	case DialectMySQL:
		s, err = openMySQL(ctx, name, cfg)
	case DialectSQLServer:
		s, err = openSQLServer(ctx, name, cfg)
	default:
		if driver == DriverPlexWS || driver == DriverODBC {
			return nil, fmt.Errorf("open source %q: %s: %w", name, NotBuilt(driver), ErrNotBuilt)
		}
		return nil, fmt.Errorf("open source %q: %w %q (want sqlite, mysql or sqlserver)", name, ErrUnknownDriver, cfg.Driver)
	}
	if err != nil {
		return nil, fmt.Errorf("open source %q (%s): %w", name, driver, err)
	}
	return s, nil
}

// Built reports whether this binary can open sources of the driver: sqlite, mysql,
// sqlserver, and a driver registered by its package (odbc, in a build with -tags odbc).
func Built(driver string) bool {
	if registered(driver) != nil {
		return true
	}
	switch driver {
	case DialectSQLite, DialectMySQL, DialectSQLServer:
		return true
	}
	return false
}

// sqlSource is a database/sql source. For MySQL it also keeps a second pool
// used only to send KILL QUERY, so a cancel is never stuck behind a full pool.
type sqlSource struct {
	name   string
	driver string
	db     *sql.DB
	killDB *sql.DB
	readDB *sql.DB // SQLite: the read-only pool queries run on (readonly.go)
}

func (s *sqlSource) Name() string { return s.name }

// DB is the source's pool, for writing history tables into a warehouse source.
func (s *sqlSource) DB() *sql.DB    { return s.db }
func (s *sqlSource) Driver() string { return s.driver }

func (s *sqlSource) Close() error {
	err := s.db.Close()
	for _, db := range []*sql.DB{s.killDB, s.readDB} {
		if db == nil {
			continue
		}
		if kerr := db.Close(); err == nil {
			err = kerr
		}
	}
	return err
}

// Query binds params and runs sql. SQLite and SQL Server cancel through their
// drivers: modernc.org/sqlite calls sqlite3_interrupt when ctx ends, and
// go-mssqldb sends a TDS attention packet, after which the server stops the
// batch. MySQL needs queryMySQL. Queries are read-only where the database can
// enforce it (readonly.go).
func (s *sqlSource) Query(ctx context.Context, query string, params map[string]any) (Rows, error) {
	// One statement, whatever path the SQL came by (validation checked it already; a
	// snapshot or caller that skipped it does not get a second statement to the server).
	// Also ErrRequest: an agent does not retry it. readonly.go is the next line of defence.
	if err := CheckStatement(s.driver, query); err != nil {
		return nil, fmt.Errorf("query source %q: %w: %w", s.name, ErrRequest, err)
	}
	q, args, err := Bind(s.driver, query, params)
	if err != nil {
		return nil, fmt.Errorf("query source %q: %w", s.name, err)
	}
	if s.driver == DialectMySQL {
		return s.queryMySQL(ctx, q, args)
	}
	var (
		rows    *sql.Rows
		release func() error
	)
	if s.readDB != nil {
		rows, release, err = s.querySQLite(ctx, q, args)
	} else {
		rows, err = s.db.QueryContext(ctx, q, args...)
	}
	if err != nil {
		if ro := readOnlyRefusal(s.name, err); ro != err {
			return nil, ro
		}
		return nil, fmt.Errorf("query source %q: %w", s.name, ctxError(ctx, err))
	}
	r, err := newRows(ctx, s.driver, rows, release)
	if err != nil {
		return nil, fmt.Errorf("query source %q: %w", s.name, ctxError(ctx, err))
	}
	return r, nil
}

// queryMySQL runs the query on a pinned connection whose server thread id it
// reads first, and when ctx ends before the result is read it sends
// KILL QUERY for that id from another connection: go-sql-driver/mysql only
// closes its socket on cancel, and the server would run the query to the end.
func (s *sqlSource) queryMySQL(ctx context.Context, q string, args []any) (Rows, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("query source %q: connect: %w", s.name, ctxError(ctx, unavailable(err)))
	}
	var id int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("query source %q: connection id: %w", s.name, ctxError(ctx, err))
	}
	if err := mysqlBeginReadOnly(ctx, conn); err != nil {
		_ = conn.Raw(func(any) error { return errBadConn }) // its session state is unknown
		return nil, fmt.Errorf("query source %q: start a read-only transaction: %w", s.name, ctxError(ctx, connLost(err)))
	}
	run := &mysqlRun{src: s, conn: conn, id: id, done: make(chan struct{}), watched: make(chan struct{})}
	go run.watch(ctx)
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		if ctx.Err() != nil {
			run.kill()
			_ = run.stop()
			return nil, fmt.Errorf("query source %q: %w", s.name, ctxError(ctx, err))
		}
		_ = run.stop()
		if ro := readOnlyRefusal(s.name, err); ro != err {
			return nil, ro
		}
		return nil, fmt.Errorf("query source %q: %w", s.name, connLost(err))
	}
	r, err := newRows(ctx, s.driver, rows, run.stop)
	if err != nil {
		return nil, fmt.Errorf("query source %q: %w", s.name, ctxError(ctx, err))
	}
	// Closing rows before their end would make go-sql-driver read and discard
	// the rest of the result, however long; stop the statement instead.
	r.abort = run.kill
	r.onEOF = run.endReadOnly
	return r, nil
}

// mysqlRun is one MySQL statement on its pinned connection, with the
// goroutine that kills it when ctx ends.
type mysqlRun struct {
	src     *sqlSource
	conn    *sql.Conn
	id      int64 // CONNECTION_ID() of conn
	done    chan struct{}
	watched chan struct{}
	killed  atomic.Bool
	ended   int // 0: read-only transaction open; 1: ended, connection reusable; -1: ended badly
}

func (m *mysqlRun) watch(ctx context.Context) {
	defer close(m.watched)
	select {
	case <-ctx.Done():
		m.kill()
	case <-m.done:
	}
}

// kill sends KILL QUERY once.
func (m *mysqlRun) kill() {
	if m.killed.CompareAndSwap(false, true) {
		m.src.killQuery(m.id)
	}
}

// stop ends the watcher (a KILL it started has been sent when it returns) and
// gives the connection back; a connection that saw a KILL is discarded rather
// than pooled, so no later statement can meet a stray interrupt.
func (m *mysqlRun) stop() error {
	close(m.done)
	<-m.watched
	if m.ended == 0 {
		m.endReadOnly()
	}
	if m.killed.Load() || m.ended < 0 {
		// Raw returning ErrBadConn closes the *sql.Conn and drops its driver connection.
		_ = m.conn.Raw(func(any) error { return errBadConn })
		return nil
	}
	return m.conn.Close()
}

// killQuery stops thread id's current statement and returns once the server has
// stopped it, or after killTimeout. KILL QUERY only sets a flag the statement looks
// at: MariaDB 10.11 can take 2 s to stop a prepared statement in SLEEP after it, and a
// caller that released its job at once would let the next attempt start while the
// last one still ran on the server. A failure is only logged: the query's caller
// already has ctx's error, but an operator should know a statement may still be
// running on the server.
func (s *sqlSource) killQuery(id int64) {
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	// KILL takes no placeholders; id is an integer the server gave us.
	if _, err := s.killDB.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", id)); err != nil {
		slog.Warn("kill query after cancel", "source", s.name, "connection_id", id, "error", err)
		return
	}
	// Any user sees its own threads in PROCESSLIST; the pinned connection runs nothing
	// else until this returns, so a statement there is the killed one.
	for {
		var running int
		err := s.killDB.QueryRowContext(ctx,
			"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND INFO IS NOT NULL", id).Scan(&running)
		if err != nil || running == 0 {
			if err != nil {
				slog.Warn("kill query after cancel: cannot see whether it stopped", "source", s.name, "connection_id", id, "error", err)
			}
			return
		}
		select {
		case <-ctx.Done():
			slog.Warn("kill query after cancel: still running on the server", "source", s.name, "connection_id", id, "waited", killTimeout.String())
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func openSQLite(ctx context.Context, name string, cfg Config) (Source, error) {
	path, err := dsn.SQLitePath(cfg.DSN)
	if err != nil {
		return nil, err
	}
	// Opening a missing file would create an empty database and every report
	// would fail later with "no such table"; say what is wrong now.
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout("+sqliteBusyTimeout+")")
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	readDB, err := openSQLiteReader(path)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &sqlSource{name: name, driver: DialectSQLite, db: db, readDB: readDB}, nil
}

func openMySQL(ctx context.Context, name string, cfg Config) (Source, error) {
	mc, err := dsn.MySQL(cfg.DSN)
	if err != nil {
		return nil, err
	}
	if mc.User == "" && cfg.User != "" {
		mc.User, mc.Passwd = cfg.User, cfg.Password
	}
	// TIMESTAMP values are converted to the session zone; the seed's servers
	// run in local time, and datetimes are reported in UTC.
	if _, ok := mc.Params["time_zone"]; !ok {
		mc.Params["time_zone"] = "'+00:00'"
	}
	// A host that does not answer at all fails the connect in seconds, not the
	// minutes of the TCP default (a DSN's timeout= wins).
	if mc.Timeout == 0 {
		mc.Timeout = 10 * time.Second
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetConnMaxIdleTime(5 * time.Minute)
	killDB := sql.OpenDB(conn)
	killDB.SetMaxIdleConns(1)
	killDB.SetConnMaxIdleTime(time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		_ = killDB.Close()
		return nil, unavailable(err)
	}
	return &sqlSource{name: name, driver: DialectMySQL, db: db, killDB: killDB}, nil
}

func openSQLServer(ctx context.Context, name string, cfg Config) (Source, error) {
	d := cfg.DSN
	if u, err := url.Parse(d); err == nil && u.Scheme == "sqlserver" && u.User == nil && cfg.User != "" {
		u.User = url.UserPassword(cfg.User, cfg.Password)
		d = u.String()
	}
	conn, err := mssql.NewConnector(d)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", dsn.ErrInvalid, errors.New(dsn.Redact(err.Error())))
	}
	db := sql.OpenDB(conn)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, unavailable(err)
	}
	return &sqlSource{name: name, driver: DialectSQLServer, db: db}, nil
}

// unavailable marks err as ErrUnavailable unless the server answered with an
// error of its own (bad password, unknown database): that is configuration,
// and retrying will not help.
func unavailable(err error) error {
	var me *mysql.MySQLError
	var se mssql.Error
	if errors.As(err, &me) || errors.As(err, &se) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// connLost marks the errors of a server that went away in the middle of a statement
// (the connection dropped, refused or timed out) as ErrUnavailable, in words a user
// understands; a job fails or retries on it per its max_attempts.
func connLost(err error) error {
	var ne net.Error
	if errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &ne) {
		return fmt.Errorf("%w: lost the connection to the server (%w)", ErrUnavailable, err)
	}
	return err
}

// errBadConn makes database/sql discard a connection instead of pooling it.
var errBadConn = driver.ErrBadConn
