package source

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// newSQLiteFile creates a database file with the given statements and returns its DSN.
func newSQLiteFile(t testing.TB, stmts ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "src.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err != nil { // creates the file even with no statements
		t.Fatal(err)
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return "sqlite:" + path
}

func openSQLiteSource(t testing.TB, stmts ...string) Source {
	t.Helper()
	src, err := Open(context.Background(), "test", Config{Driver: "sqlite", DSN: newSQLiteFile(t, stmts...)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}

// collect reads all rows, copying each row's values.
func collect(t *testing.T, rows Rows) [][]any {
	t.Helper()
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		out = append(out, append([]any(nil), rows.Values()...))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("rows: %v", err)
	}
	if err := rows.Close(); err != nil {
		t.Fatalf("close rows: %v", err)
	}
	return out
}

var sqliteFixture = []string{
	`CREATE TABLE bal (
		pcn INTEGER NOT NULL,
		account_no VARCHAR(20) NOT NULL,
		amount DECIMAL(19,2),
		debit_cents INTEGER,
		posted DATE,
		updated DATETIME,
		note TEXT
	)`,
	`INSERT INTO bal VALUES
		(1, '100-00', '12345.67', 1234567, '2024-01-31', '2024-02-01 10:11:12', 'first'),
		(1, '200-00', '-0.5', -50, '2024-02-29', NULL, NULL),
		(2, '300-00', NULL, 0, NULL, NULL, 'other pcn'),
		(1, '400-00', '7', 700, '2024-03-31', NULL, 'x')`,
}

func TestSQLiteTypedRows(t *testing.T) {
	t.Parallel()
	src := openSQLiteSource(t, sqliteFixture...)
	if src.Name() != "test" || src.Driver() != "sqlite" {
		t.Errorf("Name, Driver = %q, %q", src.Name(), src.Driver())
	}
	rows, err := src.Query(context.Background(),
		`SELECT pcn, account_no, amount, debit_cents, posted, updated, note,
			debit_cents * 2 AS doubled, 1.5 AS ratio, 'lit' AS label, NULL AS nada
		 FROM bal WHERE pcn = :pcn ORDER BY account_no`, map[string]any{"pcn": int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	wantCols := []Column{
		{"pcn", TypeInt}, {"account_no", TypeString}, {"amount", TypeDecimal}, {"debit_cents", TypeInt},
		{"posted", TypeDate}, {"updated", TypeDateTime}, {"note", TypeString},
		{"doubled", TypeInt}, {"ratio", TypeFloat}, {"label", TypeString}, {"nada", TypeString},
	}
	if got := rows.Columns(); !reflect.DeepEqual(got, wantCols) {
		t.Errorf("columns = %v, want %v", got, wantCols)
	}
	got := collect(t, rows)
	want := [][]any{
		{int64(1), "100-00", "12345.67", int64(1234567), "2024-01-31", "2024-02-01T10:11:12Z", "first", int64(2469134), 1.5, "lit", nil},
		{int64(1), "200-00", "-0.5", int64(-50), "2024-02-29", nil, nil, int64(-100), 1.5, "lit", nil},
		{int64(1), "400-00", "7", int64(700), "2024-03-31", nil, "x", int64(1400), 1.5, "lit", nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows =\n%#v\nwant\n%#v", got, want)
	}
}

// An expression column whose first rows are NULL takes its type from the first
// non-NULL value, and the rows read ahead to find it are still returned.
func TestSQLiteInferAfterNulls(t *testing.T) {
	t.Parallel()
	src := openSQLiteSource(t)
	rows, err := src.Query(context.Background(),
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5)
		 SELECT i, CASE WHEN i >= 3 THEN i * 10 END AS late FROM n`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := rows.Columns()[1]; got != (Column{"late", TypeInt}) {
		t.Errorf("column = %v, want late int", got)
	}
	got := collect(t, rows)
	want := [][]any{{int64(1), nil}, {int64(2), nil}, {int64(3), int64(30)}, {int64(4), int64(40)}, {int64(5), int64(50)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows = %v, want %v", got, want)
	}
}

func TestSQLiteListBinding(t *testing.T) {
	t.Parallel()
	src := openSQLiteSource(t, sqliteFixture...)
	tests := []struct {
		ids  []any
		want [][]any
	}{
		{[]any{"100-00", "300-00"}, [][]any{{"100-00"}, {"300-00"}}},
		{[]any{"400-00"}, [][]any{{"400-00"}}},
		{[]any{"nope", "200-00", "100-00"}, [][]any{{"100-00"}, {"200-00"}}},
	}
	for _, tt := range tests {
		rows, err := src.Query(context.Background(),
			"SELECT account_no FROM bal WHERE account_no IN (:ids) -- :not_a_param\n ORDER BY account_no",
			map[string]any{"ids": tt.ids})
		if err != nil {
			t.Fatal(err)
		}
		if got := collect(t, rows); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("IN %v = %v, want %v", tt.ids, got, tt.want)
		}
	}
}

func TestSQLiteQueryErrors(t *testing.T) {
	t.Parallel()
	src := openSQLiteSource(t, sqliteFixture...)
	tests := []struct {
		name   string
		sql    string
		params map[string]any
		wantIs error
		want   string
	}{
		{"unknown param", "SELECT * FROM bal WHERE pcn = :pcn", nil, ErrUnknownParam, ":pcn"},
		{"empty list", "SELECT * FROM bal WHERE pcn IN (:pcns)", map[string]any{"pcns": []any{}}, ErrBind, ":pcns"},
		{"bad sql", "SELECT * FROM no_such_table", nil, nil, "no_such_table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := src.Query(context.Background(), tt.sql, tt.params)
			if err == nil {
				rows.Close()
				t.Fatal("Query succeeded, want an error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), `"test"`) {
				t.Errorf("error %q should name %q and the source", err, tt.want)
			}
		})
	}
}

// A query that would count to a billion is interrupted by modernc.org/sqlite
// when ctx is cancelled, and the error is ctx's.
func TestSQLiteCancel(t *testing.T) {
	t.Parallel()
	src := openSQLiteSource(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(200*time.Millisecond, cancel)
	rows, err := src.Query(ctx,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000)
		 SELECT count(*) FROM n`, nil)
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		rows.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	// The source stays usable after a cancel.
	rows, err = src.Query(context.Background(), "SELECT 1 AS one", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := collect(t, rows); !reflect.DeepEqual(got, [][]any{{int64(1)}}) {
		t.Errorf("after cancel: %v", got)
	}
}

// Cancelling while rows are streaming ends Next with ctx's error.
func TestSQLiteCancelWhileStreaming(t *testing.T) {
	t.Parallel()
	src := openSQLiteSource(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rows, err := src.Query(ctx,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) SELECT i FROM n`, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if n++; n == 10 {
			cancel()
		}
	}
	if err := rows.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("after %d rows: error = %v, want context.Canceled", n, err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    Config
		wantIs error
		want   []string
	}{
		{"unknown driver", Config{Driver: "oracle", DSN: "x"}, ErrUnknownDriver, []string{`"src"`, `"oracle"`}},
		{"no driver no dsn", Config{}, ErrUnknownDriver, []string{`"src"`}},
		{"plexws not built", Config{Driver: "plexws", URL: "https://plex.example"}, ErrNotBuilt, []string{`"src"`, "plexws driver is not built in this binary"}},
		{"odbc not built", Config{Driver: "odbc", DSN: "x"}, ErrNotBuilt, []string{`"src"`, "built without ODBC; build with -tags odbc"}},
		{"missing sqlite file", Config{Driver: "sqlite", DSN: "sqlite:" + filepath.Join(t.TempDir(), "none.db")}, ErrUnavailable, []string{"none.db"}},
		{"bad sqlite dsn", Config{Driver: "sqlite", DSN: "mysql://x"}, nil, []string{"sqlite:PATH"}},
		{"mysql unreachable", Config{Driver: "mysql", DSN: "mysql://u@127.0.0.1:1/db?timeout=1s"}, ErrUnavailable, []string{`"src"`}},
		{"bad mysql dsn", Config{Driver: "mysql", DSN: "sqlite:x"}, nil, []string{"mysql://"}},
		{"sqlserver unreachable", Config{Driver: "sqlserver", DSN: "sqlserver://u:secret@127.0.0.1:1?database=x&dial+timeout=1"}, ErrUnavailable, []string{`"src"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			src, err := Open(ctx, "src", tt.cfg)
			if err == nil {
				src.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// Open takes the driver from the DSN when cfg.Driver is empty.
func TestOpenDriverFromDSN(t *testing.T) {
	t.Parallel()
	src, err := Open(context.Background(), "demo", Config{DSN: newSQLiteFile(t, "CREATE TABLE t(x INTEGER)")})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Driver() != "sqlite" {
		t.Errorf("driver = %q, want sqlite", src.Driver())
	}
}

func BenchmarkStreamSQLite(b *testing.B) {
	const n = 100000
	src := openSQLiteSource(b,
		`CREATE TABLE bal (account_key INTEGER, account_no VARCHAR(20), period INTEGER, debit DECIMAL(19,2), posted DATE)`,
		`INSERT INTO bal WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 100000)
		 SELECT i, printf('%05d-000', i % 1000), 202401 + i % 12, (i * 37 % 100000) / 100.0, date('2024-01-01', '+' || (i % 365) || ' days') FROM s`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		rows, err := src.Query(ctx, "SELECT account_key, account_no, period, debit, posted FROM bal WHERE period >= :p", map[string]any{"p": int64(0)})
		if err != nil {
			b.Fatal(err)
		}
		count := 0
		for rows.Next() {
			count++
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		rows.Close()
		if count != n {
			b.Fatalf("streamed %d rows, want %d", count, n)
		}
	}
	b.ReportMetric(float64(n), "rows/op")
}
