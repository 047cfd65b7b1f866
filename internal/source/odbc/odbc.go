//go:build odbc && cgo

package odbc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"rpt/internal/dsn"
	"rpt/internal/source"
)

func init() {
	source.RegisterDriver(source.DriverODBC, Open)
}

// loginTimeout bounds a connect to a server that does not answer (seconds).
const loginTimeout = 10

// maxIdle is how many connections a source keeps open between queries.
const maxIdle = 4

// Source is an opened odbc source: a connection string and a few idle connections.
type Source struct {
	name    string
	dialect string
	connStr string // holds the password: never printed
	idle    chan *conn
	closed  chan struct{}
	once    sync.Once
}

// Open opens the odbc source called name and checks that it answers. cfg.DSN is an ODBC
// connection string (DSN=... from odbc.ini, or Driver={...};Server=...); cfg.User and
// cfg.Password, when set and the string has no UID/PWD of its own, are added to it.
func Open(ctx context.Context, name string, cfg source.Config) (source.Source, error) {
	s, err := open(ctx, name, cfg)
	if err != nil {
		return nil, fmt.Errorf("open source %q (odbc): %w", name, err)
	}
	return s, nil
}

func open(ctx context.Context, name string, cfg source.Config) (*Source, error) {
	attrs, err := dsn.ODBC(cfg.DSN)
	if err != nil {
		return nil, err
	}
	dialect := cfg.SQLDialect()
	if !slices.Contains(source.ODBCDialects, dialect) {
		return nil, fmt.Errorf("%w: dialect %q (want %s)", dsn.ErrInvalid, dialect, strings.Join(source.ODBCDialects, " or "))
	}
	connStr := strings.TrimRight(strings.TrimSpace(cfg.DSN), ";")
	has := func(keys ...string) bool {
		for _, a := range attrs {
			for _, k := range keys {
				if strings.EqualFold(a.Key, k) {
					return true
				}
			}
		}
		return false
	}
	if cfg.User != "" && !has("UID", "User", "User ID") {
		connStr += ";UID=" + dsn.ODBCValue(cfg.User)
	}
	if cfg.Password != "" && !has("PWD", "Password") {
		connStr += ";PWD=" + dsn.ODBCValue(cfg.Password)
	}
	s := &Source{name: name, dialect: dialect, connStr: connStr, idle: make(chan *conn, maxIdle), closed: make(chan struct{})}
	c, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	s.put(c)
	return s, nil
}

// Name is the source's name in the configuration.
func (s *Source) Name() string { return s.name }

// Driver is the SQL dialect the server speaks (sqlserver or mysql): it picks a
// definition's dialects: entry and how a procedure is called (source.Run).
func (s *Source) Driver() string { return s.dialect }

// NeedsColumnTypes: a report on an odbc source types every column (source.ColumnTyped).
func (s *Source) NeedsColumnTypes() bool { return true }

// Close closes the idle connections; connections in use close when their rows do.
func (s *Source) Close() error {
	s.once.Do(func() { close(s.closed) })
	for {
		select {
		case c := <-s.idle:
			c.close()
		default:
			return nil
		}
	}
}

// connect opens a connection, giving up when ctx ends (the connect itself then finishes
// in the background, bounded by the login timeout, and is closed).
func (s *Source) connect(ctx context.Context) (*conn, error) {
	type result struct {
		c   *conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := connect(s.connStr, loginTimeout)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, connectError(r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.close()
			}
		}()
		return nil, fmt.Errorf("connect: %w", ctx.Err())
	}
}

// connectError classes a failed connect: a server that cannot be reached is
// source.ErrUnavailable (a job may retry); a refused login or a driver that is not
// installed is configuration, said so.
func connectError(err error) error {
	var oe *Error
	if !errors.As(err, &oe) {
		return err
	}
	switch {
	case strings.HasPrefix(oe.State, "08"), oe.State == "HYT00", oe.State == "HYT01",
		// MariaDB's driver says HY000 with the client library's error numbers: cannot
		// connect (2002 socket, 2003 TCP), unknown host (2005), server gone (2006, 2013).
		oe.State == "HY000" && (oe.Native == 2002 || oe.Native == 2003 || oe.Native == 2005 || oe.Native == 2006 || oe.Native == 2013):
		return fmt.Errorf("%w: %w", source.ErrUnavailable, err)
	case oe.State == "IM002" || oe.State == "IM003" || oe.State == "01000" && strings.Contains(oe.Msg, "Can't open lib"):
		return fmt.Errorf("%w (is the vendor ODBC driver installed and registered in odbcinst.ini, or the DSN in odbc.ini? odbcinst -q -d lists the drivers)", err)
	case oe.State == "28000", oe.State == "HY000" && oe.Native == 1045:
		return fmt.Errorf("%w (the login was refused: check the source's user and password)", err)
	}
	return err
}

func (s *Source) get(ctx context.Context) (*conn, error) {
	select {
	case c := <-s.idle:
		return c, nil
	default:
	}
	return s.connect(ctx)
}

// put keeps a healthy connection for the next query, or closes it.
func (s *Source) put(c *conn) {
	select {
	case <-s.closed:
		c.close()
		return
	default:
	}
	select {
	case s.idle <- c:
	default:
		c.close()
	}
}

// Query binds params (":name", read as the source's dialect reads SQL, bound as ODBC's
// "?" markers) and runs query. Cancelling ctx cancels the statement on the server
// (SQLCancel) and the result reports ctx's error.
func (s *Source) Query(ctx context.Context, query string, params map[string]any) (source.Rows, error) {
	if err := source.CheckStatement(s.dialect, query); err != nil {
		return nil, fmt.Errorf("query source %q: %w: %w", s.name, source.ErrRequest, err)
	}
	q, args, err := source.BindMarkers(s.dialect, query, params)
	if err != nil {
		return nil, fmt.Errorf("query source %q: %w", s.name, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("query source %q: %w", s.name, err)
	}
	c, err := s.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("query source %q: %w", s.name, err)
	}
	st, err := c.newStmt()
	if err != nil {
		s.discardOrPut(c, err)
		return nil, fmt.Errorf("query source %q: %w", s.name, err)
	}
	r := &rows{src: s, conn: c, st: st, ctx: ctx}
	st.watch(ctx)
	if err := st.bindParams(args); err != nil {
		r.finish(err)
		return nil, fmt.Errorf("query source %q: %w", s.name, err)
	}
	if err := st.execute(q); err != nil {
		r.finish(err)
		return nil, fmt.Errorf("query source %q: %w", s.name, r.ctxErr(err))
	}
	cols, err := st.firstResult()
	if err != nil {
		r.finish(err)
		return nil, fmt.Errorf("query source %q: %w", s.name, r.ctxErr(err))
	}
	r.cols = make([]source.Column, len(cols))
	r.kinds = make([]fetchKind, len(cols))
	for i, col := range cols {
		r.cols[i] = source.Column{Name: col.name, Type: columnType(col.sqlType)}
		switch r.cols[i].Type {
		case source.TypeBytes:
			r.kinds[i] = fetchBinary
		case source.TypeBool:
			r.kinds[i] = fetchBit
		}
	}
	r.raw = make([]any, len(cols))
	r.vals = make([]any, len(cols))
	return r, nil
}

// discardOrPut returns c to the pool unless err says the connection is gone.
func (s *Source) discardOrPut(c *conn, err error) {
	var oe *Error
	if err != nil && (!errors.As(err, &oe) || strings.HasPrefix(oe.State, "08")) {
		c.close()
		return
	}
	s.put(c)
}

// rows is a result being read: each value is fetched as text (bytes for binary columns)
// and converted by source.Convert to its column's type.
type rows struct {
	src   *Source
	conn  *conn
	st    *stmt
	ctx   context.Context
	cols  []source.Column
	kinds []fetchKind
	raw   []any
	vals  []any
	row   int64
	err   error
	eof   bool
	done  bool
}

func (r *rows) Columns() []source.Column { return r.cols }
func (r *rows) Values() []any            { return r.vals }

func (r *rows) Next() bool {
	if r.done || r.eof || r.err != nil {
		return false
	}
	more, err := r.st.fetch(r.raw, r.kinds)
	if err != nil {
		r.err = r.ctxErr(err)
		return false
	}
	if !more {
		r.eof = true
		return false
	}
	r.row++
	for i, v := range r.raw {
		c, err := source.Convert(r.cols[i].Type, v)
		if err != nil {
			r.err = fmt.Errorf("row %d column %q: %w", r.row, r.cols[i].Name, err)
			return false
		}
		r.vals[i] = c
	}
	return true
}

func (r *rows) Err() error {
	if r.err == nil && !r.eof && r.ctx.Err() != nil {
		return r.ctx.Err()
	}
	if r.err != nil {
		return fmt.Errorf("query source %q: %w", r.src.name, r.err)
	}
	return nil
}

// Close stops the statement if it has rows left (on the server too) and gives the
// connection back, or closes it after a cancel or a lost connection.
func (r *rows) Close() error {
	if r.done {
		return nil
	}
	var err error
	if !r.eof || r.err != nil {
		err = errors.New("closed before the end")
	}
	r.finish(err)
	return nil
}

// finish frees the statement; err non-nil (a failure, a cancel, rows left unread) means
// the connection's state is unknown, so it is closed rather than pooled unless the error
// is the server's answer to a statement.
func (r *rows) finish(err error) {
	if r.done {
		return
	}
	r.done = true
	cancelled := r.st.free(err != nil)
	if cancelled || r.ctx.Err() != nil {
		r.conn.close()
		return
	}
	if err != nil {
		var oe *Error
		if errors.As(err, &oe) && !strings.HasPrefix(oe.State, "08") && oe.State != "HY008" {
			r.src.put(r.conn)
			return
		}
		r.conn.close()
		return
	}
	r.src.put(r.conn)
}

// ctxErr is ctx's error when the statement failed because ctx ended (the driver says
// "Operation canceled" or "Query execution was interrupted"), keeping the driver's text;
// a connection lost mid-statement is source.ErrUnavailable.
func (r *rows) ctxErr(err error) error {
	if cerr := r.ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	var oe *Error
	if errors.As(err, &oe) && strings.HasPrefix(oe.State, "08") {
		return fmt.Errorf("%w: lost the connection to the server (%w)", source.ErrUnavailable, err)
	}
	return err
}

// columnType maps an ODBC SQL type (SQLDescribeCol) to the portable type. The
// definition's columns: has the last word (every column of an odbc report is typed);
// this is what a value is read as before that.
func columnType(t int) source.Type {
	switch t {
	case sqlTinyInt, sqlSmallInt, sqlInteger, sqlBigInt:
		return source.TypeInt
	case sqlNumeric, sqlDecimal:
		return source.TypeDecimal
	case sqlReal, sqlFloat, sqlDouble:
		return source.TypeFloat
	case sqlBit:
		return source.TypeBool
	case sqlTypeDate:
		return source.TypeDate
	case sqlTypeTimestamp, sqlDateTime:
		return source.TypeDateTime
	case sqlBinary, sqlVarBinary, sqlLongVarBinary:
		return source.TypeBytes
	}
	return source.TypeString
}

// Error is an ODBC diagnostic: SQLSTATE, the server's native error number and the
// message, passwords redacted.
type Error struct {
	Func   string // the ODBC function that failed
	State  string // SQLSTATE, e.g. 08001
	Native int
	Msg    string
}

func (e *Error) Error() string {
	return dsn.Redact(fmt.Sprintf("%s: [%s] %s", e.Func, e.State, e.Msg))
}
