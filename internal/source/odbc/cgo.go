//go:build odbc && cgo

package odbc

/*
#cgo LDFLAGS: -lodbc
#include <stdlib.h>
#include <string.h>
#include <sql.h>
#include <sqlext.h>

static SQLRETURN setODBC3(SQLHENV env) {
	return SQLSetEnvAttr(env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0);
}
static SQLRETURN setConnUint(SQLHDBC dbc, SQLINTEGER attr, SQLULEN v) {
	return SQLSetConnectAttr(dbc, attr, (SQLPOINTER)v, 0);
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode/utf16"
	"unsafe"
)

// ODBC SQL types (sql.h, sqlext.h) as Go ints.
const (
	sqlChar          = int(C.SQL_CHAR)
	sqlNumeric       = int(C.SQL_NUMERIC)
	sqlDecimal       = int(C.SQL_DECIMAL)
	sqlInteger       = int(C.SQL_INTEGER)
	sqlSmallInt      = int(C.SQL_SMALLINT)
	sqlFloat         = int(C.SQL_FLOAT)
	sqlReal          = int(C.SQL_REAL)
	sqlDouble        = int(C.SQL_DOUBLE)
	sqlDateTime      = int(C.SQL_DATETIME)
	sqlTypeDate      = int(C.SQL_TYPE_DATE)
	sqlTypeTimestamp = int(C.SQL_TYPE_TIMESTAMP)
	sqlBinary        = int(C.SQL_BINARY)
	sqlVarBinary     = int(C.SQL_VARBINARY)
	sqlLongVarBinary = int(C.SQL_LONGVARBINARY)
	sqlBigInt        = int(C.SQL_BIGINT)
	sqlTinyInt       = int(C.SQL_TINYINT)
	sqlBit           = int(C.SQL_BIT)
)

var (
	envOnce sync.Once
	env     C.SQLHENV
	envErr  error
)

// environment is the process's one ODBC environment, ODBC 3 behaviour.
func environment() (C.SQLHENV, error) {
	envOnce.Do(func() {
		var h C.SQLHANDLE
		if rc := C.SQLAllocHandle(C.SQL_HANDLE_ENV, C.SQLHANDLE(nil), &h); !ok(rc) {
			envErr = errors.New("odbc: cannot allocate an environment (is unixODBC installed?)")
			return
		}
		env = C.SQLHENV(h)
		if rc := C.setODBC3(env); !ok(rc) {
			envErr = diag("SQLSetEnvAttr", C.SQL_HANDLE_ENV, C.SQLHANDLE(env))
		}
	})
	return env, envErr
}

func ok(rc C.SQLRETURN) bool { return rc == C.SQL_SUCCESS || rc == C.SQL_SUCCESS_WITH_INFO }

// diag reads the first diagnostic record of handle h.
func diag(fn string, ht C.SQLSMALLINT, h C.SQLHANDLE) *Error {
	var (
		state  [6]C.SQLWCHAR
		native C.SQLINTEGER
		msg    [1024]C.SQLWCHAR
		n      C.SQLSMALLINT
	)
	e := &Error{Func: fn}
	rc := C.SQLGetDiagRecW(ht, h, 1, &state[0], &native, &msg[0], C.SQLSMALLINT(len(msg)), &n)
	if !ok(rc) {
		e.State, e.Msg = "HY000", "no diagnostic from the driver"
		return e
	}
	e.State = fromWide(state[:5])
	e.Native = int(native)
	if int(n) > len(msg)-1 {
		n = C.SQLSMALLINT(len(msg) - 1)
	}
	e.Msg = strings.TrimSpace(fromWide(msg[:n]))
	return e
}

func fromWide(w []C.SQLWCHAR) string {
	u := make([]uint16, 0, len(w))
	for _, c := range w {
		if c == 0 {
			break
		}
		u = append(u, uint16(c))
	}
	return string(utf16.Decode(u))
}

// toWide is s in UTF-16, without a terminator.
func toWide(s string) []C.SQLWCHAR {
	u := utf16.Encode([]rune(s))
	w := make([]C.SQLWCHAR, len(u)+1) // +1: never an empty slice to take the address of
	for i, c := range u {
		w[i] = C.SQLWCHAR(c)
	}
	return w[:len(u)]
}

// conn is one ODBC connection.
type conn struct {
	h C.SQLHDBC
}

func connect(connStr string, timeout int) (*conn, error) {
	e, err := environment()
	if err != nil {
		return nil, err
	}
	var h C.SQLHANDLE
	if rc := C.SQLAllocHandle(C.SQL_HANDLE_DBC, C.SQLHANDLE(e), &h); !ok(rc) {
		return nil, diag("SQLAllocHandle", C.SQL_HANDLE_ENV, C.SQLHANDLE(e))
	}
	dbc := C.SQLHDBC(h)
	C.setConnUint(dbc, C.SQL_ATTR_LOGIN_TIMEOUT, C.SQLULEN(timeout))
	w := toWide(connStr)
	w = append(w, 0)
	rc := C.SQLDriverConnectW(dbc, nil, &w[0], C.SQLSMALLINT(len(w)-1), nil, 0, nil, C.SQL_DRIVER_NOPROMPT)
	for i := range w {
		w[i] = 0 // it held the password
	}
	if !ok(rc) {
		err := diag("SQLDriverConnect", C.SQL_HANDLE_DBC, h)
		C.SQLFreeHandle(C.SQL_HANDLE_DBC, h)
		return nil, err
	}
	// A hint: a driver may ignore it. The source's account is what keeps a report from
	// writing (README: a read-only data source account).
	C.setConnUint(dbc, C.SQL_ATTR_ACCESS_MODE, C.SQL_MODE_READ_ONLY)
	return &conn{h: dbc}, nil
}

func (c *conn) close() {
	C.SQLDisconnect(c.h)
	C.SQLFreeHandle(C.SQL_HANDLE_DBC, C.SQLHANDLE(c.h))
}

// stmt is one statement. Every ODBC call on it runs in the goroutine reading it, except
// SQLCancel, which the watcher calls when ctx ends. mu makes the two agree: the watcher
// cancels only while a call is in progress (busy) and nothing is started after a
// cancel, so a driver that treats SQLCancel on an idle statement as closing its cursor
// never does so under a running call.
type stmt struct {
	h       C.SQLHSTMT
	params  []unsafe.Pointer // C memory bound to the statement's parameters (and buf)
	buf     unsafe.Pointer   // SQLGetData's buffer
	mu      sync.Mutex
	busy    bool
	cancel  bool // ctx ended: SQLCancel was called or nothing more is started
	stop    chan struct{}
	watched chan struct{}
}

func (c *conn) newStmt() (*stmt, error) {
	var h C.SQLHANDLE
	if rc := C.SQLAllocHandle(C.SQL_HANDLE_STMT, C.SQLHANDLE(c.h), &h); !ok(rc) {
		return nil, diag("SQLAllocHandle", C.SQL_HANDLE_DBC, C.SQLHANDLE(c.h))
	}
	return &stmt{h: C.SQLHSTMT(h)}, nil
}

// watch cancels the statement on the server when ctx ends.
func (s *stmt) watch(ctx context.Context) {
	s.stop, s.watched = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.watched)
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.cancel = true
			if s.busy {
				C.SQLCancel(s.h)
			}
			s.mu.Unlock()
		case <-s.stop:
		}
	}()
}

var errCancelled = &Error{Func: "SQLCancel", State: "HY008", Msg: "operation cancelled"}

// call runs f as a cancellable ODBC call.
func (s *stmt) call(f func() error) error {
	s.mu.Lock()
	if s.cancel {
		s.mu.Unlock()
		return errCancelled
	}
	s.busy = true
	s.mu.Unlock()
	err := f()
	s.mu.Lock()
	s.busy = false
	cancelled := s.cancel
	s.mu.Unlock()
	if cancelled && err == nil {
		// MariaDB ends a killed SLEEP() with a result, not an error; the caller asked to stop.
		return errCancelled
	}
	return err
}

func (s *stmt) diag(fn string) *Error { return diag(fn, C.SQL_HANDLE_STMT, C.SQLHANDLE(s.h)) }

// cmem copies b into C memory kept until the statement is freed.
func (s *stmt) cmem(n int) unsafe.Pointer {
	if n < 1 {
		n = 1
	}
	p := C.calloc(C.size_t(n), 1)
	s.params = append(s.params, p)
	return p
}

// bindParams binds args to the "?" markers in order: int64, float64, bool, string,
// []byte or nil (what reportdefs binds).
func (s *stmt) bindParams(args []any) error {
	for i, a := range args {
		ind := (*C.SQLLEN)(s.cmem(int(unsafe.Sizeof(C.SQLLEN(0)))))
		var (
			ctype, sqltype C.SQLSMALLINT
			size           C.SQLULEN
			buf            unsafe.Pointer
			buflen         C.SQLLEN
		)
		switch v := a.(type) {
		case nil:
			ctype, sqltype, size = C.SQL_C_WCHAR, C.SQL_WVARCHAR, 1
			*ind = C.SQL_NULL_DATA
		case int64:
			ctype, sqltype, size = C.SQL_C_SBIGINT, C.SQL_BIGINT, 19
			buf = s.cmem(8)
			*(*int64)(buf) = v
		case int:
			ctype, sqltype, size = C.SQL_C_SBIGINT, C.SQL_BIGINT, 19
			buf = s.cmem(8)
			*(*int64)(buf) = int64(v)
		case float64:
			ctype, sqltype, size = C.SQL_C_DOUBLE, C.SQL_DOUBLE, 15
			buf = s.cmem(8)
			*(*float64)(buf) = v
		case bool:
			ctype, sqltype, size = C.SQL_C_BIT, C.SQL_BIT, 1
			buf = s.cmem(1)
			if v {
				*(*byte)(buf) = 1
			}
		case string:
			w := toWide(v)
			ctype, sqltype = C.SQL_C_WCHAR, C.SQL_WVARCHAR
			size = C.SQLULEN(max(len(w), 1))
			buflen = C.SQLLEN(len(w) * 2)
			buf = s.cmem(len(w)*2 + 2)
			if len(w) > 0 {
				C.memcpy(buf, unsafe.Pointer(&w[0]), C.size_t(len(w)*2))
			}
			*ind = buflen
		case []byte:
			ctype, sqltype = C.SQL_C_BINARY, C.SQL_VARBINARY
			size = C.SQLULEN(max(len(v), 1))
			buflen = C.SQLLEN(len(v))
			buf = s.cmem(len(v))
			if len(v) > 0 {
				C.memcpy(buf, unsafe.Pointer(&v[0]), C.size_t(len(v)))
			}
			*ind = buflen
		default:
			return fmt.Errorf("parameter %d: cannot bind a %T", i+1, a)
		}
		if i+1 > math.MaxUint16 {
			return fmt.Errorf("too many parameters (%d)", len(args))
		}
		rc := C.SQLBindParameter(s.h, C.SQLUSMALLINT(i+1), C.SQL_PARAM_INPUT, ctype, sqltype, size, 0,
			C.SQLPOINTER(buf), buflen, ind)
		if !ok(rc) {
			return s.diag("SQLBindParameter")
		}
	}
	return nil
}

// execute runs q (its markers bound) directly.
func (s *stmt) execute(q string) error {
	w := toWide(q)
	w = append(w, 0)
	return s.call(func() error {
		rc := C.SQLExecDirectW(s.h, &w[0], C.SQLINTEGER(len(w)-1))
		if !ok(rc) && rc != C.SQL_NO_DATA {
			return s.diag("SQLExecDirect")
		}
		return nil
	})
}

type column struct {
	name    string
	sqlType int
}

// firstResult describes the first result set with columns, skipping the row counts a
// procedure call may send first; none: no columns.
func (s *stmt) firstResult() ([]column, error) {
	for {
		var n C.SQLSMALLINT
		if rc := C.SQLNumResultCols(s.h, &n); !ok(rc) {
			return nil, s.diag("SQLNumResultCols")
		}
		if n > 0 {
			cols := make([]column, n)
			for i := range cols {
				var (
					name     [256]C.SQLWCHAR
					nameLen  C.SQLSMALLINT
					dataType C.SQLSMALLINT
					size     C.SQLULEN
					digits   C.SQLSMALLINT
					nullable C.SQLSMALLINT
				)
				rc := C.SQLDescribeColW(s.h, C.SQLUSMALLINT(i+1), &name[0], C.SQLSMALLINT(len(name)), &nameLen,
					&dataType, &size, &digits, &nullable)
				if !ok(rc) {
					return nil, s.diag("SQLDescribeCol")
				}
				cols[i] = column{name: fromWide(name[:min(int(nameLen), len(name)-1)]), sqlType: int(dataType)}
			}
			return cols, nil
		}
		var rc C.SQLRETURN
		err := s.call(func() error {
			rc = C.SQLMoreResults(s.h)
			if !ok(rc) && rc != C.SQL_NO_DATA {
				return s.diag("SQLMoreResults")
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if rc == C.SQL_NO_DATA {
			return nil, nil
		}
	}
}

// chunk is the buffer SQLGetData fills; longer values are read in pieces.
const chunk = 8192

// fetchKind is how a column's values are fetched.
type fetchKind int

const (
	fetchText   fetchKind = iota // as UTF-16 text (SQL_C_WCHAR), whatever the column: exact decimals
	fetchBinary                  // as bytes
	fetchBit                     // as SQL_C_BIT, 0 or 1 (BIT(1) as text is a control character)
)

// fetch reads the next row into raw: text as string (fetched as UTF-16, so any
// character set reads right), binary columns as []byte, bits as bool, NULL as nil.
// false at the end.
func (s *stmt) fetch(raw []any, kinds []fetchKind) (bool, error) {
	more := true
	err := s.call(func() error {
		rc := C.SQLFetch(s.h)
		if rc == C.SQL_NO_DATA {
			more = false
			return nil
		}
		if !ok(rc) {
			return s.diag("SQLFetch")
		}
		if s.buf == nil {
			s.buf = s.cmem(chunk) // one buffer for the statement's life, freed with it
		}
		for i := range raw {
			v, err := s.getData(i, kinds[i], s.buf)
			if err != nil {
				return err
			}
			raw[i] = v
		}
		return nil
	})
	return more, err
}

func (s *stmt) getData(i int, kind fetchKind, buf unsafe.Pointer) (any, error) {
	if kind == fetchBit {
		var ind C.SQLLEN
		if rc := C.SQLGetData(s.h, C.SQLUSMALLINT(i+1), C.SQL_C_BIT, C.SQLPOINTER(buf), 1, &ind); !ok(rc) {
			return nil, s.diag("SQLGetData")
		}
		if ind == C.SQL_NULL_DATA {
			return nil, nil
		}
		return *(*byte)(buf) != 0, nil
	}
	binary := kind == fetchBinary
	ctype := C.SQLSMALLINT(C.SQL_C_WCHAR)
	if binary {
		ctype = C.SQL_C_BINARY
	}
	var out []byte
	for {
		var ind C.SQLLEN
		rc := C.SQLGetData(s.h, C.SQLUSMALLINT(i+1), ctype, C.SQLPOINTER(buf), chunk, &ind)
		if rc == C.SQL_NO_DATA {
			break
		}
		if !ok(rc) {
			return nil, s.diag("SQLGetData")
		}
		if ind == C.SQL_NULL_DATA {
			return nil, nil
		}
		n := int(ind)
		truncated := rc == C.SQL_SUCCESS_WITH_INFO && (ind == C.SQL_NO_TOTAL || n >= chunk || (!binary && n > chunk-2))
		if truncated {
			n = chunk
			if !binary {
				n = chunk - 2 // the terminator
			}
		}
		out = append(out, C.GoBytes(buf, C.int(n))...)
		if !truncated {
			break
		}
	}
	if binary {
		if out == nil {
			out = []byte{}
		}
		return out, nil
	}
	u := make([]uint16, len(out)/2)
	for j := range u {
		u[j] = uint16(out[2*j]) | uint16(out[2*j+1])<<8
	}
	return string(utf16.Decode(u)), nil
}

// free stops the watcher and frees the statement and its parameter memory. When rows
// are left (early is true) the statement is cancelled first, so the server stops it;
// it reports whether ctx had ended (the connection is then not reused).
func (s *stmt) free(early bool) (cancelled bool) {
	if s.stop != nil {
		close(s.stop)
		<-s.watched
	}
	cancelled = s.cancel
	if early {
		C.SQLCancel(s.h)
	}
	C.SQLFreeStmt(s.h, C.SQL_CLOSE)
	C.SQLFreeHandle(C.SQL_HANDLE_STMT, C.SQLHANDLE(s.h))
	for _, p := range s.params {
		C.free(p)
	}
	s.params, s.buf = nil, nil
	return cancelled
}
