//go:build odbc && cgo

package odbc

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"rpt/internal/dsn"
	"rpt/internal/source"
	"rpt/internal/testenv"
)

// The tests run against the local MariaDB through its ODBC driver (odbc-mariadb), the
// stand-in for Plex's ODBC data source. RPT_TEST_ODBC_DRIVER names the driver as
// odbcinst.ini registers it.
func odbcDriver() string {
	if d := os.Getenv("RPT_TEST_ODBC_DRIVER"); d != "" {
		return d
	}
	return "MariaDB Unicode"
}

// openODBC creates a database with the fixture (through go-sql-driver) and opens an odbc
// source on it, speaking MySQL.
func openODBC(t *testing.T, stmts ...string) (source.Source, *sql.DB, string) {
	t.Helper()
	d := testenv.MariaDB(t)
	mc, err := dsn.MySQL(d)
	if err != nil {
		t.Fatal(err)
	}
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	t.Cleanup(func() { _ = db.Close() })
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	host, port, _ := strings.Cut(mc.Addr, ":")
	conn := "Driver=" + dsn.ODBCValue(odbcDriver()) + ";Server=" + host + ";Port=" + port + ";Database=" + mc.DBName
	cfg := source.Config{Driver: source.DriverODBC, Dialect: source.DialectMySQL, DSN: conn, User: mc.User, Password: mc.Passwd}
	src, err := source.Open(context.Background(), "plex-odbc", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src, db, mc.DBName
}

func readAll(t *testing.T, rows source.Rows) [][]any {
	t.Helper()
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		out = append(out, append([]any(nil), rows.Values()...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var fixture = []string{
	`CREATE TABLE bal (
		id INT PRIMARY KEY,
		pcn INT NOT NULL,
		account_no VARCHAR(20) NOT NULL,
		amount DECIMAL(20,2),
		ratio DOUBLE,
		active BIT(1),
		period_begin DATE,
		updated DATETIME(6),
		note TEXT,
		raw VARBINARY(8)
	) CHARACTER SET utf8mb4`,
	`INSERT INTO bal VALUES
		(1, 123681, '100-00', 12345678901234567.89, 0.25, 1, '2024-02-29', '2024-03-01 12:34:56.123456', 'O''Brien ünï 𝄞', X'00FF'),
		(2, 123681, '200-00', -0.01, NULL, 0, NULL, NULL, NULL, NULL),
		(3, 300758, '300-00', 0.00, 1, 1, '2023-12-31', '2023-12-31 23:59:59', 'other', X'')`,
}

var fixtureTypes = map[string]source.Type{
	"id": source.TypeInt, "pcn": source.TypeInt, "account_no": source.TypeString, "amount": source.TypeDecimal,
	"ratio": source.TypeFloat, "active": source.TypeBool, "period_begin": source.TypeDate,
	"updated": source.TypeDateTime, "note": source.TypeString, "raw": source.TypeBytes,
}

// TestDecimalExact: DECIMAL(20,2) 12345678901234567.89 arrives as exactly that text
// (as a float64 it would be 1.2345678901234568e+16), with every other type read right.
func TestDecimalExact(t *testing.T) {
	t.Parallel()
	src, _, _ := openODBC(t, fixture...)
	rows, err := source.Run(context.Background(), src, source.Request{SQL: "SELECT * FROM bal ORDER BY id"}, fixtureTypes)
	if err != nil {
		t.Fatal(err)
	}
	cols := rows.Columns()
	got := readAll(t, rows)
	want := [][]any{
		{int64(1), int64(123681), "100-00", "12345678901234567.89", 0.25, true, "2024-02-29", "2024-03-01T12:34:56.123456Z", "O'Brien ünï 𝄞", []byte{0, 0xFF}},
		{int64(2), int64(123681), "200-00", "-0.01", nil, false, nil, nil, nil, nil},
		{int64(3), int64(300758), "300-00", "0.00", 1.0, true, "2023-12-31", "2023-12-31T23:59:59Z", "other", []byte(nil)}, // an empty value, not NULL (source.Convert)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows:\n got %#v\nwant %#v", got, want)
	}
	for _, c := range cols {
		if c.Type != fixtureTypes[c.Name] {
			t.Errorf("column %s: type %s, want %s", c.Name, c.Type, fixtureTypes[c.Name])
		}
	}
	// What the driver says before the definition's types: the decimal is a decimal, exact.
	raw, err := src.Query(context.Background(), "SELECT amount, SUM(amount) OVER () AS total FROM bal WHERE id = 1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := raw.Columns(); c[0].Type != source.TypeDecimal {
		t.Errorf("amount described as %s, want decimal", c[0].Type)
	}
	if got := readAll(t, raw); got[0][0] != "12345678901234567.89" || got[0][1] != "12345678901234567.89" {
		t.Errorf("amount, total = %v", got[0])
	}
}

// TestBoundParams: parameters are bound, never pasted: a value with quotes and a
// comment marker is data, lists expand, NULL binds.
func TestBoundParams(t *testing.T) {
	t.Parallel()
	src, _, _ := openODBC(t, fixture...)
	ctx := context.Background()
	types := map[string]source.Type{"id": source.TypeInt}
	for _, tc := range []struct {
		sql    string
		params map[string]any
		want   []int64
	}{
		{"SELECT id FROM bal WHERE pcn = :pcn ORDER BY id", map[string]any{"pcn": int64(123681)}, []int64{1, 2}},
		{"SELECT id FROM bal WHERE note = :note", map[string]any{"note": "O'Brien ünï 𝄞"}, []int64{1}},
		{"SELECT id FROM bal WHERE account_no = :acct", map[string]any{"acct": "x' OR '1'='1' -- "}, nil},
		{"SELECT id FROM bal WHERE pcn IN (:pcns) AND id <> :skip ORDER BY id", map[string]any{"pcns": []any{int64(123681), int64(300758)}, "skip": int64(2)}, []int64{1, 3}},
		{"SELECT id FROM bal WHERE (:d IS NULL OR period_begin >= :d) ORDER BY id", map[string]any{"d": nil}, []int64{1, 2, 3}},
		{"SELECT id FROM bal WHERE period_begin >= :d ORDER BY id", map[string]any{"d": "2024-01-01"}, []int64{1}},
		{"SELECT id FROM bal WHERE ratio > :r AND active = :a ORDER BY id", map[string]any{"r": 0.5, "a": true}, []int64{3}},
		{"SELECT id FROM bal WHERE note = ':note' OR raw = :raw", map[string]any{"raw": []byte{0, 0xFF}}, []int64{1}},
	} {
		rows, err := source.Run(ctx, src, source.Request{SQL: tc.sql, Params: tc.params}, types)
		if err != nil {
			t.Fatalf("%s: %v", tc.sql, err)
		}
		var got []int64
		for _, r := range readAll(t, rows) {
			got = append(got, r[0].(int64))
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %v: ids %v, want %v", tc.sql, tc.params, got, tc.want)
		}
	}
	if _, err := src.Query(ctx, "SELECT id FROM bal WHERE pcn = :missing", nil); !errors.Is(err, source.ErrUnknownParam) {
		t.Errorf("missing parameter: %v", err)
	}
	if _, err := src.Query(ctx, "SELECT 1; DROP TABLE bal", nil); !errors.Is(err, source.ErrRequest) {
		t.Errorf("two statements: %v", err)
	}
}

// TestProcedure: a procedure: request is a CALL on a MySQL-speaking ODBC source, its
// arguments bound; its first result set is the rows.
func TestProcedure(t *testing.T) {
	t.Parallel()
	src, _, _ := openODBC(t, append(fixture,
		`CREATE PROCEDURE balances(IN p_pcn INT, IN p_min DECIMAL(20,2))
		 SELECT account_no, amount FROM bal WHERE pcn = p_pcn AND amount >= p_min ORDER BY account_no`)...)
	req := source.Request{
		Procedure: &source.Procedure{Name: "balances", Args: []string{"pcn", "min"}},
		Params:    map[string]any{"pcn": int64(123681), "min": "-1"},
	}
	rows, err := source.Run(context.Background(), src, req, map[string]source.Type{"account_no": source.TypeString, "amount": source.TypeDecimal})
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, rows)
	want := [][]any{{"100-00", "12345678901234567.89"}, {"200-00", "-0.01"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("procedure rows %v, want %v", got, want)
	}
	// The same connection serves the next query: the call's further results were read off.
	rows, err = source.Run(context.Background(), src, source.Request{SQL: "SELECT COUNT(*) AS n FROM bal"}, map[string]source.Type{"n": source.TypeInt})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, rows); got[0][0] != int64(3) {
		t.Errorf("count after the call = %v", got)
	}
}

// TestUntypedColumnRefused: a result column the definition does not type is refused,
// naming it, before any row is read.
func TestUntypedColumnRefused(t *testing.T) {
	t.Parallel()
	src, _, _ := openODBC(t, fixture...)
	_, err := source.Run(context.Background(), src, source.Request{SQL: "SELECT id, amount FROM bal"}, map[string]source.Type{"id": source.TypeInt})
	if !errors.Is(err, source.ErrRequest) || !strings.Contains(err.Error(), `column "amount" has no type`) {
		t.Fatalf("untyped column: %v", err)
	}
	if _, err := source.Run(context.Background(), src, source.Request{SQL: "SELECT id FROM bal"}, nil); !errors.Is(err, source.ErrRequest) {
		t.Fatalf("no types at all: %v", err)
	}
}

// TestCancelStopsServer: a SLEEP(10) whose ctx is cancelled returns at once with
// context.Canceled, and nothing of it is left running in MariaDB's process list.
func TestCancelStopsServer(t *testing.T) {
	t.Parallel()
	src, db, name := openODBC(t)
	ctx, cancel := context.WithCancel(context.Background())
	running := func() int {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ? AND INFO LIKE 'SELECT SLEEP(10)%'`, name).Scan(&n); err != nil {
			t.Error(err)
		}
		return n
	}
	// Cancel once the server shows the statement running, so the check below can fail.
	seen := make(chan bool, 1)
	go func() {
		defer cancel()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if running() > 0 {
				seen <- true
				return
			}
		}
		seen <- false
	}()
	started := time.Now()
	rows, err := src.Query(ctx, "SELECT SLEEP(10) AS slept", nil)
	if err == nil {
		readAllErr := func() error {
			defer rows.Close()
			for rows.Next() {
			}
			return rows.Err()
		}
		err = readAllErr()
	}
	elapsed := time.Since(started)
	if !<-seen {
		t.Fatal("the SLEEP(10) never showed in the process list")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled SLEEP: err %v, want context.Canceled", err)
	}
	if elapsed > 7*time.Second {
		t.Errorf("the SLEEP(10) ran %s despite the cancel", elapsed)
	}
	t.Logf("cancelled after %s", elapsed)
	deadline := time.Now().Add(3 * time.Second)
	n := running()
	for n > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n = running()
	}
	if n != 0 {
		t.Fatalf("%d SLEEP(10) statements still in the process list after the cancel", n)
	}
	// The source still works: the cancelled connection was not pooled.
	rows, err = src.Query(context.Background(), "SELECT 1 AS one", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, rows); got[0][0] != int64(1) {
		t.Errorf("after the cancel: %v", got)
	}
}

// TestConnectErrors: a driver that is not registered, a refused password and a server
// that is not there each say what is wrong, and no error shows the password.
func TestConnectErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const pass = "s3cret-pw;x}"
	for _, tc := range []struct {
		name, dsn, want string
		unavailable     bool
	}{
		{"driver", "Driver={No Such Driver};Server=127.0.0.1", "odbcinst.ini", false},
		{"password", "Driver=" + dsn.ODBCValue(odbcDriver()) + ";Server=127.0.0.1;Port=3306", "login was refused", false},
		{"down", "Driver=" + dsn.ODBCValue(odbcDriver()) + ";Server=127.0.0.1;Port=1", "", true},
	} {
		_, err := source.Open(ctx, "plex-odbc", source.Config{Driver: "odbc", Dialect: "mysql", DSN: tc.dsn, User: "rpt_nobody", Password: pass})
		if err == nil {
			t.Errorf("%s: opened", tc.name)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the password: %v", tc.name, err)
		}
		if tc.want != "" && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q in it", tc.name, err, tc.want)
		}
		if errors.Is(err, source.ErrUnavailable) != tc.unavailable {
			t.Errorf("%s: unavailable %v, want %v: %v", tc.name, errors.Is(err, source.ErrUnavailable), tc.unavailable, err)
		}
	}
	if _, err := source.Open(ctx, "plex-odbc", source.Config{Driver: "odbc", DSN: "Server=x;PWD=" + pass}); !errors.Is(err, dsn.ErrInvalid) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("no DSN or Driver: %v", err)
	}
}
