package results

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"rpt/internal/dsn"
	"rpt/internal/queue"
	"rpt/internal/source"
	"rpt/internal/testenv"
)

// warehouse is one database history tables are written to in a test.
type warehouse struct {
	driver string
	db     *sql.DB
	dsn    string // for source.Open
}

// warehouses returns a fresh SQLite warehouse and, when RPT_TEST_MYSQL_DSN is set, a
// fresh MariaDB database; each test runs its checks on every one.
func warehouses(t *testing.T) []warehouse {
	t.Helper()
	out := []warehouse{sqliteWarehouse(t, true)}
	if w, ok := mariaDBWarehouse(t); ok {
		out = append(out, w)
	}
	return out
}

// sqliteWarehouse opens a new SQLite warehouse; immediate says whether its
// transactions begin with BEGIN IMMEDIATE (the loads must serialize either way).
func sqliteWarehouse(t testing.TB, immediate bool) warehouse {
	t.Helper()
	path := filepath.Join(t.TempDir(), "warehouse.db")
	opts := "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	if immediate {
		opts += "&_txlock=immediate"
	}
	db, err := sql.Open("sqlite", "file:"+path+opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	return warehouse{driver: source.DialectSQLite, db: db, dsn: "sqlite:" + path}
}

func mariaDBWarehouse(t *testing.T) (warehouse, bool) {
	t.Helper()
	// testenv.MariaDB would skip the whole test; only the MariaDB half is skipped here
	// (testenv still fails it when RPT_TEST_REQUIRE_MYSQL=1).
	if os.Getenv(testenv.EnvMySQLDSN) == "" && os.Getenv(testenv.EnvRequireMySQL) != "1" {
		t.Logf("%s is not set; MariaDB half skipped", testenv.EnvMySQLDSN)
		return warehouse{}, false
	}
	d := testenv.MariaDB(t)
	mc, err := dsn.MySQL(d)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { _ = db.Close() })
	return warehouse{driver: source.DialectMySQL, db: db, dsn: d}, true
}

// histRows is a source.Rows over fixed values.
type histRows struct {
	cols []source.Column
	data [][]any
	i    int
	err  error // returned by Err after the last row
}

func (r *histRows) Columns() []source.Column { return r.cols }
func (r *histRows) Next() bool {
	if r.i >= len(r.data) {
		return false
	}
	r.i++
	return true
}
func (r *histRows) Values() []any { return r.data[r.i-1] }
func (r *histRows) Err() error {
	if r.i >= len(r.data) {
		return r.err
	}
	return nil
}
func (r *histRows) Close() error { return nil }

func okFence(job int64, attempt int) HistoryFence {
	return HistoryFence{JobID: job, Attempt: attempt, Check: func(context.Context) error { return nil }}
}

func load(t *testing.T, w warehouse, spec HistorySpec, fence HistoryFence, cols []source.Column, data [][]any) {
	t.Helper()
	n, err := WriteHistory(context.Background(), w.db, w.driver, spec, fence, &histRows{cols: cols, data: data})
	if err != nil {
		t.Fatalf("WriteHistory job %d attempt %d: %v", fence.JobID, fence.Attempt, err)
	}
	if n != int64(len(data)) {
		t.Fatalf("WriteHistory loaded %d rows, want %d", n, len(data))
	}
}

// dump returns q's rows as "a|b|c" strings, NULL as "NULL".
func dump(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
				parts[i] = "NULL"
			case []byte:
				parts[i] = string(v)
			case time.Time:
				parts[i] = v.UTC().Format("2006-01-02")
			default:
				parts[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

var balanceCols = []source.Column{
	{Name: "pcn", Type: source.TypeInt},
	{Name: "period", Type: source.TypeInt},
	{Name: "account_no", Type: source.TypeString},
	{Name: "balance", Type: source.TypeDecimal},
}

func TestHistoryAppend(t *testing.T) {
	t.Parallel()
	for _, w := range warehouses(t) {
		t.Run(w.driver, func(t *testing.T) {
			spec := HistorySpec{Table: "tb_history", Mode: HistoryAppend}
			load(t, w, spec, okFence(1, 1), balanceCols, [][]any{{int64(1), int64(202603), "100", "10.00"}, {int64(1), int64(202603), "200", "-5.50"}})
			load(t, w, spec, okFence(2, 1), balanceCols, [][]any{{int64(1), int64(202603), "100", "11.00"}, {int64(1), int64(202603), "200", "-6.00"}})
			q := "SELECT rpt_job_id, rpt_attempt, pcn, period, account_no, balance FROM tb_history ORDER BY rpt_job_id, account_no"
			sameStrings(t, "after two runs", dump(t, w.db, q), []string{
				"1|1|1|202603|100|10.00", "1|1|1|202603|200|-5.50",
				"2|1|1|202603|100|11.00", "2|1|1|202603|200|-6.00",
			})
			// A retry of job 2 replaces what its first attempt loaded instead of doubling it.
			load(t, w, spec, okFence(2, 2), balanceCols, [][]any{{int64(1), int64(202603), "100", "12.00"}})
			sameStrings(t, "after job 2's retry", dump(t, w.db, q), []string{
				"1|1|1|202603|100|10.00", "1|1|1|202603|200|-5.50",
				"2|2|1|202603|100|12.00",
			})
			sameStrings(t, "fence row", dump(t, w.db, "SELECT table_name, job_id, attempt FROM rpt_history_fence"), []string{"tb_history|2|2"})
			if got := dump(t, w.db, "SELECT COUNT(*) FROM tb_history WHERE rpt_loaded_at IS NULL"); got[0] != "0" {
				t.Fatalf("rows without rpt_loaded_at: %s", got[0])
			}
		})
	}
}

func TestHistoryUpsert(t *testing.T) {
	t.Parallel()
	for _, w := range warehouses(t) {
		t.Run(w.driver, func(t *testing.T) {
			spec := HistorySpec{Table: "balances", Mode: HistoryUpsert, Key: []string{"pcn", "account_no"}}
			load(t, w, spec, okFence(1, 1), balanceCols, [][]any{{int64(1), int64(202602), "100", "10.00"}, {int64(1), int64(202602), "200", "5.00"}})
			load(t, w, spec, okFence(2, 1), balanceCols, [][]any{{int64(1), int64(202603), "100", "12.50"}, {int64(1), int64(202603), "300", "1.00"}})
			sameStrings(t, "after upsert", dump(t, w.db, "SELECT pcn, account_no, period, balance, rpt_job_id FROM balances ORDER BY account_no"), []string{
				"1|100|202603|12.50|2", "1|200|202602|5.00|1", "1|300|202603|1.00|2",
			})

			// A NULL key cannot be upserted (a UNIQUE index lets NULLs repeat): refused, nothing written.
			_, err := WriteHistory(context.Background(), w.db, w.driver, spec, okFence(3, 1),
				&histRows{cols: balanceCols, data: [][]any{{int64(1), int64(202604), "400", "1.00"}, {int64(1), int64(202604), nil, "2.00"}}})
			if !errors.Is(err, ErrHistorySpec) || !strings.Contains(err.Error(), `key column "account_no" is NULL`) {
				t.Fatalf("NULL key: err = %v, want ErrHistorySpec naming account_no", err)
			}
			if got := dump(t, w.db, "SELECT COUNT(*) FROM balances"); got[0] != "3" {
				t.Fatalf("rows after refused load = %s, want 3", got[0])
			}
		})
	}
}

func TestHistoryUpsertAddsKeyToExistingTable(t *testing.T) {
	t.Parallel()
	for _, w := range warehouses(t) {
		t.Run(w.driver, func(t *testing.T) {
			// The table was first loaded in append mode, then the definition switched to upsert.
			load(t, w, HistorySpec{Table: "accounts"}, okFence(1, 1), balanceCols, [][]any{{int64(1), int64(202603), "100", "1.00"}})
			spec := HistorySpec{Table: "accounts", Mode: HistoryUpsert, Key: []string{"account_no"}}
			load(t, w, spec, okFence(2, 1), balanceCols, [][]any{{int64(1), int64(202604), "100", "2.00"}})
			load(t, w, spec, okFence(3, 1), balanceCols, [][]any{{int64(1), int64(202605), "100", "3.00"}})
			sameStrings(t, "rows", dump(t, w.db, "SELECT account_no, period, balance FROM accounts"), []string{"100|202605|3.00"})
		})
	}
}

func TestHistoryReplace(t *testing.T) {
	t.Parallel()
	for _, w := range warehouses(t) {
		t.Run(w.driver, func(t *testing.T) {
			spec := func(pcn, start, end int64) HistorySpec {
				return HistorySpec{
					Table:        "tb_monthly",
					Mode:         HistoryReplace,
					ReplaceWhere: "pcn = :pcn AND period BETWEEN :start_period AND :end_period",
					Params:       map[string]any{"pcn": pcn, "start_period": start, "end_period": end, "unused": "x"},
				}
			}
			q := "SELECT pcn, period, account_no, balance, rpt_job_id FROM tb_monthly ORDER BY pcn, period, account_no"
			load(t, w, spec(1, 202602, 202603), okFence(1, 1), balanceCols, [][]any{
				{int64(1), int64(202602), "100", "1.00"}, {int64(1), int64(202603), "100", "2.00"}, {int64(1), int64(202603), "200", "3.00"},
			})
			load(t, w, spec(2, 202603, 202603), okFence(2, 1), balanceCols, [][]any{{int64(2), int64(202603), "100", "9.00"}})

			// Re-running March of pcn 1 replaces March of pcn 1 and nothing else.
			load(t, w, spec(1, 202603, 202603), okFence(3, 1), balanceCols, [][]any{{int64(1), int64(202603), "100", "2.50"}})
			sameStrings(t, "after March re-run", dump(t, w.db, q), []string{
				"1|202602|100|1.00|1", "1|202603|100|2.50|3", "2|202603|100|9.00|2",
			})

			// March of pcn 1 is now empty: its stale rows go, February and pcn 2 stay.
			load(t, w, spec(1, 202603, 202603), okFence(4, 1), balanceCols, nil)
			sameStrings(t, "after empty March", dump(t, w.db, q), []string{
				"1|202602|100|1.00|1", "2|202603|100|9.00|2",
			})
		})
	}
}

func TestHistoryAddsColumns(t *testing.T) {
	t.Parallel()
	for _, w := range warehouses(t) {
		t.Run(w.driver, func(t *testing.T) {
			spec := HistorySpec{Table: "grows"}
			load(t, w, spec, okFence(1, 1), []source.Column{{Name: "a", Type: source.TypeInt}}, [][]any{{int64(1)}})
			load(t, w, spec, okFence(2, 1), []source.Column{{Name: "a", Type: source.TypeInt}, {Name: "b", Type: source.TypeString}}, [][]any{{int64(2), "two"}})
			// A column the result no longer has stays, NULL in the new rows.
			load(t, w, spec, okFence(3, 1), []source.Column{{Name: "b", Type: source.TypeString}}, [][]any{{"three"}})
			sameStrings(t, "rows", dump(t, w.db, "SELECT rpt_job_id, a, b FROM grows ORDER BY rpt_job_id"), []string{
				"1|1|NULL", "2|2|two", "3|NULL|three",
			})
		})
	}
}

// TestHistoryTypes loads every type and reads the table back through internal/source,
// which must see the same types and values.
func TestHistoryTypes(t *testing.T) {
	t.Parallel()
	cols := []source.Column{
		{Name: "i", Type: source.TypeInt},
		{Name: "amount", Type: source.TypeDecimal},
		{Name: "f", Type: source.TypeFloat},
		{Name: "s", Type: source.TypeString},
		{Name: "b", Type: source.TypeBool},
		{Name: "d", Type: source.TypeDate},
		{Name: "dt", Type: source.TypeDateTime},
		{Name: "raw", Type: source.TypeBytes},
	}
	data := [][]any{
		{int64(-7), "-1234567890123.45", 1.5, "naïve ☃", true, "2026-03-31", "2026-03-31T23:59:58.5Z", []byte{0, 1, 2}},
		{nil, nil, nil, nil, nil, nil, nil, nil},
		{int64(9), "0.10", -0.25, "", false, "2026-01-01", "2026-01-01T00:00:00Z", []byte{}},
	}
	for _, w := range warehouses(t) {
		t.Run(w.driver, func(t *testing.T) {
			ctx := context.Background()
			load(t, w, HistorySpec{Table: "typed"}, okFence(1, 1), cols, data)

			src, err := source.Open(ctx, "warehouse", source.Config{Driver: w.driver, DSN: w.dsn})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			rows, err := src.Query(ctx, "SELECT i, amount, f, s, b, d, dt, raw FROM typed ORDER BY rpt_id", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			gotCols := rows.Columns()
			for i, c := range gotCols {
				want := cols[i].Type
				// MySQL's TINYINT(1) is an integer to the driver.
				if w.driver == source.DialectMySQL && want == source.TypeBool {
					want = source.TypeInt
				}
				if c.Type != want {
					t.Errorf("column %s reads back as %s, want %s", c.Name, c.Type, want)
				}
			}
			var got [][]any
			for rows.Next() {
				got = append(got, append([]any(nil), rows.Values()...))
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			want := [][]any{
				{int64(-7), "-1234567890123.45", 1.5, "naïve ☃", true, "2026-03-31", "2026-03-31T23:59:58.5Z", []byte{0, 1, 2}},
				{nil, nil, nil, nil, nil, nil, nil, nil},
				{int64(9), "0.10", -0.25, "", false, "2026-01-01", "2026-01-01T00:00:00Z", []byte{}},
			}
			if w.driver == source.DialectMySQL {
				want[0][4], want[2][4] = int64(1), int64(0)
			}
			if len(got) != len(want) {
				t.Fatalf("read %d rows, want %d", len(got), len(want))
			}
			for r := range want {
				for c := range want[r] {
					g, wv := got[r][c], want[r][c]
					if gb, ok := g.([]byte); ok {
						if wb, ok := wv.([]byte); ok && string(gb) == string(wb) {
							continue
						}
					}
					if !reflect.DeepEqual(g, wv) {
						t.Errorf("row %d column %s = %#v, want %#v", r, cols[c].Name, g, wv)
					}
				}
			}
		})
	}
}

func TestHistoryDecimalScale(t *testing.T) {
	t.Parallel()
	w, ok := mariaDBWarehouse(t)
	if !ok {
		return
	}
	cols := []source.Column{{Name: "amount", Type: source.TypeDecimal}, {Name: "rate", Type: source.TypeDecimal}}
	load(t, w, HistorySpec{Table: "money"}, okFence(1, 1), cols, [][]any{{"0.00", nil}, {"-12.30", nil}})
	sameStrings(t, "column types", dump(t, w.db, `SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'money' AND COLUMN_NAME IN ('amount', 'rate') ORDER BY COLUMN_NAME`),
		[]string{"amount|decimal(30,2)", "rate|decimal(38,10)"})
	// Trailing zeros beyond the scale are exact; a third real decimal would be rounded: refused.
	load(t, w, HistorySpec{Table: "money"}, okFence(2, 1), cols, [][]any{{"1.500", "0.1234567891"}})
	_, err := WriteHistory(context.Background(), w.db, w.driver, HistorySpec{Table: "money"}, okFence(3, 1),
		&histRows{cols: cols, data: [][]any{{"1.125", nil}}})
	if !errors.Is(err, ErrHistorySpec) || !strings.Contains(err.Error(), `"amount"`) {
		t.Fatalf("too many decimals: err = %v, want ErrHistorySpec naming amount", err)
	}
	sameStrings(t, "rows", dump(t, w.db, "SELECT amount, rate FROM money ORDER BY rpt_id"), []string{"0.00|NULL", "-12.30|NULL", "1.50|0.1234567891"})
}

// TestHistoryNormalizesValues: a live source's driver values are loaded as the
// carriers they stand for, and a value that is not of its column's type is refused.
func TestHistoryNormalizesValues(t *testing.T) {
	t.Parallel()
	cols := []source.Column{{Name: "n", Type: source.TypeInt}, {Name: "amount", Type: source.TypeDecimal}}
	for _, w := range warehouses(t) {
		t.Run(w.driver, func(t *testing.T) {
			load(t, w, HistorySpec{Table: "driver_values"}, okFence(1, 1), cols, [][]any{{int32(5), []byte("1.25")}, {[]byte("6"), int64(7)}})
			want := []string{"5|1.25", "6|7"} // SQLite keeps the decimal's text
			if w.driver == source.DialectMySQL {
				want[1] = "6|7.00" // DECIMAL(30,2), the scale of "1.25"
			}
			sameStrings(t, "rows", dump(t, w.db, "SELECT n, amount FROM driver_values ORDER BY rpt_id"), want)
			_, err := WriteHistory(context.Background(), w.db, w.driver, HistorySpec{Table: "driver_values"}, okFence(2, 1),
				&histRows{cols: cols, data: [][]any{{int64(8), "twelve"}}})
			if !errors.Is(err, ErrHistorySpec) || !strings.Contains(err.Error(), `row 1: column "amount"`) {
				t.Fatalf("err = %v, want ErrHistorySpec naming row 1 column amount", err)
			}
		})
	}
}

func TestHistoryRefusesBadSpecs(t *testing.T) {
	t.Parallel()
	good := []source.Column{{Name: "pcn", Type: source.TypeInt}, {Name: "period", Type: source.TypeInt}}
	tests := []struct {
		name   string
		driver string
		spec   HistorySpec
		fence  HistoryFence
		cols   []source.Column
		want   string
	}{
		{"table with a dash", "sqlite", HistorySpec{Table: "tb-history"}, okFence(1, 1), good, "bad table name"},
		{"table injection", "sqlite", HistorySpec{Table: "t; DROP TABLE x"}, okFence(1, 1), good, "bad table name"},
		{"table upper case", "sqlite", HistorySpec{Table: "TB"}, okFence(1, 1), good, "bad table name"},
		{"table too long", "sqlite", HistorySpec{Table: strings.Repeat("a", 65)}, okFence(1, 1), good, "bad table name"},
		{"own fence table", "sqlite", HistorySpec{Table: "rpt_history_fence"}, okFence(1, 1), good, "bad table name"},
		{"empty table", "sqlite", HistorySpec{}, okFence(1, 1), good, "bad table name"},
		{"column with space", "sqlite", HistorySpec{Table: "t"}, okFence(1, 1), []source.Column{{Name: "Account No", Type: source.TypeString}}, `bad column name "Account No"`},
		{"column with quote", "mysql", HistorySpec{Table: "t"}, okFence(1, 1), []source.Column{{Name: "a`b", Type: source.TypeString}}, "bad column name"},
		{"reserved column", "sqlite", HistorySpec{Table: "t"}, okFence(1, 1), []source.Column{{Name: "rpt_job_id", Type: source.TypeInt}}, "reserved"},
		{"duplicate column", "sqlite", HistorySpec{Table: "t"}, okFence(1, 1), []source.Column{{Name: "a", Type: source.TypeInt}, {Name: "a", Type: source.TypeInt}}, "appears twice"},
		{"unknown type", "sqlite", HistorySpec{Table: "t"}, okFence(1, 1), []source.Column{{Name: "a", Type: "money"}}, "unknown type"},
		{"no columns", "sqlite", HistorySpec{Table: "t"}, okFence(1, 1), nil, "no columns"},
		{"unknown mode", "sqlite", HistorySpec{Table: "t", Mode: "merge"}, okFence(1, 1), good, `unknown mode "merge"`},
		{"upsert without key", "sqlite", HistorySpec{Table: "t", Mode: HistoryUpsert}, okFence(1, 1), good, "needs key columns"},
		{"upsert key not in result", "sqlite", HistorySpec{Table: "t", Mode: HistoryUpsert, Key: []string{"account_no"}}, okFence(1, 1), good, `"account_no" is not a column`},
		{"replace without where", "sqlite", HistorySpec{Table: "t", Mode: HistoryReplace}, okFence(1, 1), good, "needs a condition"},
		{"replace missing param", "sqlite", HistorySpec{Table: "t", Mode: HistoryReplace, ReplaceWhere: "pcn = :pcn", Params: map[string]any{}}, okFence(1, 1), good, ":pcn"},
		{"no lease check", "sqlite", HistorySpec{Table: "t"}, HistoryFence{JobID: 1, Attempt: 1}, good, "lease check"},
		{"no job", "sqlite", HistorySpec{Table: "t"}, HistoryFence{Attempt: 1, Check: okFence(1, 1).Check}, good, "job id"},
		{"sql server warehouse", "sqlserver", HistorySpec{Table: "t"}, okFence(1, 1), good, "cannot hold history tables"},
	}
	w := sqliteWarehouse(t, true)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := WriteHistory(context.Background(), w.db, tt.driver, tt.spec, tt.fence, &histRows{cols: tt.cols, data: [][]any{{int64(1), int64(2)}}})
			if !errors.Is(err, ErrHistorySpec) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrHistorySpec containing %q", err, tt.want)
			}
		})
	}
	// Nothing was created: refusals come before any statement.
	sameStrings(t, "tables", dump(t, w.db, "SELECT name FROM sqlite_master WHERE type = 'table'"), nil)
}

func TestHistoryLeaseLostRollsBack(t *testing.T) {
	t.Parallel()
	for _, w := range warehouses(t) {
		t.Run(w.driver, func(t *testing.T) {
			params := map[string]any{"pcn": int64(1), "start_period": int64(202603), "end_period": int64(202603)}
			base := HistorySpec{Table: "fenced", ReplaceWhere: "pcn = :pcn AND period BETWEEN :start_period AND :end_period", Params: params}
			load(t, w, base, okFence(1, 1), balanceCols, [][]any{{int64(1), int64(202603), "100", "1.00"}})
			q := "SELECT pcn, period, account_no, balance, rpt_job_id FROM fenced ORDER BY rpt_id"
			before := dump(t, w.db, q)

			lost := HistoryFence{JobID: 2, Attempt: 1, Check: func(context.Context) error { return queue.ErrLeaseLost }}
			many := make([][]any, 1234) // several batches, all rolled back
			for i := range many {
				many[i] = []any{int64(1), int64(202603), fmt.Sprint("x", i), "2.00"}
			}
			for _, mode := range []string{HistoryAppend, HistoryReplace, HistoryUpsert} {
				spec := base
				spec.Mode = mode
				if mode == HistoryUpsert {
					spec.Key = []string{"account_no"}
				}
				_, err := WriteHistory(context.Background(), w.db, w.driver, spec, lost, &histRows{cols: balanceCols, data: many})
				if !errors.Is(err, queue.ErrLeaseLost) {
					t.Fatalf("%s: err = %v, want queue.ErrLeaseLost", mode, err)
				}
				sameStrings(t, mode+": rows after a fenced-out load", dump(t, w.db, q), before)
				sameStrings(t, mode+": fence row", dump(t, w.db, "SELECT job_id, attempt FROM rpt_history_fence"), []string{"1|1"})
			}

			// A read error of the rows rolls back too.
			_, err := WriteHistory(context.Background(), w.db, w.driver, base, okFence(3, 1),
				&histRows{cols: balanceCols, data: many, err: errors.New("chunk 3 missing")})
			if err == nil || !strings.Contains(err.Error(), "chunk 3 missing") {
				t.Fatalf("read error: err = %v", err)
			}
			sameStrings(t, "rows after a failed read", dump(t, w.db, q), before)
		})
	}
}

func TestHistoryRefusesStaleAttempt(t *testing.T) {
	t.Parallel()
	for _, w := range warehouses(t) {
		t.Run(w.driver, func(t *testing.T) {
			spec := HistorySpec{Table: "stale"}
			load(t, w, spec, okFence(7, 2), balanceCols, [][]any{{int64(1), int64(202603), "100", "2.00"}})
			var checked bool
			zombie := HistoryFence{JobID: 7, Attempt: 1, Check: func(context.Context) error { checked = true; return nil }}
			_, err := WriteHistory(context.Background(), w.db, w.driver, spec, zombie, &histRows{cols: balanceCols, data: [][]any{{int64(1), int64(202603), "100", "1.00"}}})
			if !errors.Is(err, queue.ErrLeaseLost) || !strings.Contains(err.Error(), "attempt 2 of job 7") {
				t.Fatalf("err = %v, want queue.ErrLeaseLost naming attempt 2", err)
			}
			if checked {
				t.Error("the lease was checked although the fence row had already refused the attempt")
			}
			sameStrings(t, "rows", dump(t, w.db, "SELECT account_no, balance, rpt_attempt FROM stale"), []string{"100|2.00|2"})
			// Another job may load after it.
			load(t, w, spec, okFence(8, 1), balanceCols, [][]any{{int64(1), int64(202604), "100", "3.00"}})
		})
	}
}

// TestHistoryConcurrentLoadsSerialize runs loads of one table at once. Replace mode
// over one range shows interleaving at once: two loads that both deleted before
// either inserted would leave both runs' rows.
func TestHistoryConcurrentLoadsSerialize(t *testing.T) {
	t.Parallel()
	const (
		loaders = 4
		rowsPer = 1100 // more than two batches each
	)
	ws := map[string]warehouse{"sqlite-deferred": sqliteWarehouse(t, false)}
	for _, w := range warehouses(t) {
		ws[w.driver] = w
	}
	for name, w := range ws {
		t.Run(name, func(t *testing.T) {
			spec := HistorySpec{
				Table: "contended", Mode: HistoryReplace,
				ReplaceWhere: "pcn = :pcn", Params: map[string]any{"pcn": int64(1)},
			}
			var (
				wg      sync.WaitGroup
				inside  atomic.Int32 // loads between their fence lock and their commit
				overlap atomic.Bool
				errs    = make(chan error, loaders)
			)
			for g := range loaders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					job := int64(100 + g)
					data := make([][]any, rowsPer)
					for i := range data {
						data[i] = []any{int64(1), int64(202603), fmt.Sprintf("%d-%d", job, i), "1.00"}
					}
					fence := HistoryFence{JobID: job, Attempt: 1, Check: func(context.Context) error {
						if inside.Add(1) > 1 {
							overlap.Store(true)
						}
						// Give another load the chance to be inside too, were it not locked out.
						for range 3 {
							time.Sleep(time.Millisecond)
						}
						inside.Add(-1)
						return nil
					}}
					if _, err := WriteHistory(context.Background(), w.db, w.driver, spec, fence, &histRows{cols: balanceCols, data: data}); err != nil {
						errs <- fmt.Errorf("job %d: %w", job, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if overlap.Load() {
				t.Error("two loads were in their lease check at the same time")
			}
			jobs := dump(t, w.db, "SELECT rpt_job_id, COUNT(*) FROM contended GROUP BY rpt_job_id")
			if len(jobs) != 1 || !strings.HasSuffix(jobs[0], fmt.Sprintf("|%d", rowsPer)) {
				t.Fatalf("rows per job = %q, want one job's %d rows", jobs, rowsPer)
			}
			fence := dump(t, w.db, "SELECT job_id FROM rpt_history_fence WHERE table_name = 'contended'")
			if len(fence) != 1 || !strings.HasPrefix(jobs[0], fence[0]+"|") {
				t.Fatalf("fence row %q does not name the job whose rows are kept (%q)", fence, jobs)
			}
		})
	}
}

// BenchmarkWriteHistory loads 10,000 trial-balance-like rows per iteration (replace
// mode, so the table stays the same size) into SQLite and, when configured, MariaDB.
func BenchmarkWriteHistory(b *testing.B) {
	cols := []source.Column{
		{Name: "period_display", Type: source.TypeString},
		{Name: "category_type", Type: source.TypeString},
		{Name: "account_no", Type: source.TypeString},
		{Name: "account_name", Type: source.TypeString},
		{Name: "pcn", Type: source.TypeInt},
		{Name: "period", Type: source.TypeInt},
		{Name: "current_debit_credit", Type: source.TypeDecimal},
		{Name: "ytd_debit_credit", Type: source.TypeDecimal},
	}
	data := make([][]any, 10000)
	for i := range data {
		data[i] = []any{"2026-03", "Expense", fmt.Sprintf("%05d", i), "Account name", int64(1), int64(202603), fmt.Sprintf("%d.%02d", i, i%100), "-123456.78"}
	}
	ws := map[string]func(testing.TB) warehouse{"sqlite": func(tb testing.TB) warehouse { return sqliteWarehouse(tb, true) }}
	if os.Getenv(testenv.EnvMySQLDSN) != "" {
		ws["mysql"] = func(tb testing.TB) warehouse {
			mc, err := dsn.MySQL(testenv.MariaDB(tb))
			if err != nil {
				tb.Fatal(err)
			}
			conn, err := mysql.NewConnector(mc)
			if err != nil {
				tb.Fatal(err)
			}
			db := sql.OpenDB(conn)
			tb.Cleanup(func() { _ = db.Close() })
			return warehouse{driver: source.DialectMySQL, db: db}
		}
	}
	for name, open := range ws {
		b.Run(name, func(b *testing.B) {
			w := open(b)
			spec := HistorySpec{Table: "tb_bench", Mode: HistoryReplace, ReplaceWhere: "pcn = :pcn", Params: map[string]any{"pcn": int64(1)}}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				n, err := WriteHistory(context.Background(), w.db, w.driver, spec, okFence(int64(i+1), 1), &histRows{cols: cols, data: data})
				if err != nil || n != int64(len(data)) {
					b.Fatalf("loaded %d rows: %v", n, err)
				}
			}
			b.ReportMetric(float64(len(data)*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
