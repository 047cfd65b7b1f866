package source

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRequestValidate(t *testing.T) {
	t.Parallel()
	proc := &Procedure{Name: "dbo.trial_balance", Args: []string{"pcn", "period"}}
	ds := &DataSource{Key: 4506, Name: "Trial_Balance_Get", Inputs: map[string]string{"Begin_Period": "period"}}
	tests := []struct {
		name   string
		req    Request
		driver string
		err    string // "" when valid
	}{
		{"sql on sqlite", Request{SQL: "SELECT 1"}, DialectSQLite, ""},
		{"procedure on mysql", Request{Procedure: proc}, DialectMySQL, ""},
		{"procedure on sqlserver", Request{Procedure: proc}, DialectSQLServer, ""},
		{"datasource on plexws", Request{DataSource: ds}, DriverPlexWS, ""},
		{"nothing", Request{}, DialectMySQL, "want exactly one of sql, procedure, datasource (got 0)"},
		{"two forms", Request{SQL: "SELECT 1", Procedure: proc}, DialectMySQL, "(got 2)"},
		{"procedure on sqlite", Request{Procedure: proc}, DialectSQLite, "SQLite has no stored procedures"},
		{"procedure on plexws", Request{Procedure: proc}, DriverPlexWS, "runs datasource: calls, not procedures"},
		{"quote in procedure name", Request{Procedure: &Procedure{Name: "x`; DROP TABLE t; --"}}, DialectMySQL, "procedure name"},
		{"three-part name", Request{Procedure: &Procedure{Name: "a.b.c"}}, DialectMySQL, "procedure name"},
		{"arg not a parameter name", Request{Procedure: &Procedure{Name: "p", Args: []string{"1); DROP"}}}, DialectMySQL, "args[0]"},
		{"datasource on mysql", Request{DataSource: ds}, DialectMySQL, "datasource: calls need a plexws source"},
		{"datasource without key", Request{DataSource: &DataSource{Name: "x"}}, DriverPlexWS, "datasource key 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.req.Validate(tt.driver)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("Validate(%s) = %v, want nil", tt.driver, err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrRequest) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Validate(%s) = %v, want ErrRequest containing %q", tt.driver, err, tt.err)
			}
		})
	}
}

func TestProcedureSQL(t *testing.T) {
	t.Parallel()
	p := &Procedure{Name: "dbo.trial_balance", Args: []string{"pcn", "period"}}
	for _, tt := range []struct{ driver, want string }{
		{DialectMySQL, "CALL `dbo`.`trial_balance`(:pcn, :period)"},
		{DialectSQLServer, "EXEC [dbo].[trial_balance] :pcn, :period"},
	} {
		if got := procedureSQL(tt.driver, p); got != tt.want {
			t.Errorf("procedureSQL(%s) = %q, want %q", tt.driver, got, tt.want)
		}
	}
	if got := procedureSQL(DialectMySQL, &Procedure{Name: "refresh"}); got != "CALL `refresh`()" {
		t.Errorf("no args: %q", got)
	}
	if got := procedureSQL(DialectSQLServer, &Procedure{Name: "refresh"}); got != "EXEC [refresh]" {
		t.Errorf("no args: %q", got)
	}
	// The call goes through Bind like any SQL: the arguments become placeholders.
	q, args, err := Bind(DialectSQLServer, procedureSQL(DialectSQLServer, p), map[string]any{"pcn": int64(1), "period": "202401"})
	if err != nil || q != "EXEC [dbo].[trial_balance] @p1, @p2" || !reflect.DeepEqual(args, []any{int64(1), "202401"}) {
		t.Errorf("bound: %q %v %v", q, args, err)
	}
}

// Run is the path of the agent and `rpt reports run`: the SQL runs with its parameters
// bound and the columns: overrides applied, and a request the source cannot run is
// refused before anything is sent to it.
func TestRunSQLite(t *testing.T) {
	t.Parallel()
	src := openSQLiteSource(t, sqliteFixture...)
	ctx := context.Background()
	rows, err := Run(ctx, src, Request{SQL: "SELECT pcn, account_no, debit_cents AS cents FROM bal WHERE pcn = :pcn ORDER BY account_no",
		Params: map[string]any{"pcn": int64(1)}}, map[string]Type{"cents": TypeDecimal})
	if err != nil {
		t.Fatal(err)
	}
	if c := rows.Columns(); c[2].Type != TypeDecimal {
		t.Errorf("columns %v: override not applied", c)
	}
	got := collect(t, rows)
	want := [][]any{{int64(1), "100-00", "1234567"}, {int64(1), "200-00", "-50"}, {int64(1), "400-00", "700"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}

	_, err = Run(ctx, src, Request{Procedure: &Procedure{Name: "trial_balance"}}, nil)
	if !errors.Is(err, ErrRequest) || !strings.Contains(err.Error(), `source "test" (sqlite)`) || !strings.Contains(err.Error(), "no stored procedures") {
		t.Errorf("procedure on sqlite: %v, want ErrRequest naming the source", err)
	}
	_, err = Run(ctx, src, Request{SQL: "SELECT pcn FROM bal"}, map[string]Type{"nope": TypeInt})
	if !errors.Is(err, ErrConvert) {
		t.Errorf("override of a missing column: %v, want ErrConvert", err)
	}
	// A value that does not fit its override ends the rows with ErrConvert.
	rows, err = Run(ctx, src, Request{SQL: "SELECT account_no FROM bal"}, map[string]Type{"account_no": TypeInt})
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	if err := rows.Err(); !errors.Is(err, ErrConvert) || !strings.Contains(err.Error(), `row 1 column "account_no"`) {
		t.Errorf("rows.Err() = %v, want ErrConvert at row 1", err)
	}
	rows.Close()
}

// A stored procedure on MariaDB: CALL with the arguments bound (a quote in a value is
// data, not SQL), its result set typed like any query's, and an unknown procedure the
// server's error.
func TestRunProcedureMariaDB(t *testing.T) {
	t.Parallel()
	src, db := openMariaDB(t, append(mariaDBFixture,
		`CREATE PROCEDURE balances(IN p_pcn INT, IN p_note VARCHAR(50))
		BEGIN
			SELECT account_no, debit, p_note AS note FROM bal WHERE pcn = p_pcn ORDER BY account_no;
		END`)...)
	ctx := context.Background()
	req := Request{Procedure: &Procedure{Name: "balances", Args: []string{"pcn", "note"}},
		Params: map[string]any{"pcn": int64(1), "note": "it's; DROP TABLE bal"}}
	rows, err := Run(ctx, src, req, map[string]Type{"debit": TypeString})
	if err != nil {
		t.Fatal(err)
	}
	cols := rows.Columns()
	if len(cols) != 3 || cols[0] != (Column{"account_no", TypeString}) || cols[1] != (Column{"debit", TypeString}) {
		t.Errorf("columns %v", cols)
	}
	got := collect(t, rows)
	var wantRows int
	if err := db.QueryRow("SELECT COUNT(*) FROM bal WHERE pcn = 1").Scan(&wantRows); err != nil {
		t.Fatal(err)
	}
	if len(got) != wantRows || wantRows == 0 {
		t.Fatalf("%d rows, want %d: %v", len(got), wantRows, got)
	}
	for _, r := range got {
		if r[2] != "it's; DROP TABLE bal" {
			t.Errorf("note %v: the argument was not bound as given", r[2])
		}
	}
	// The connection goes back to the pool in a usable state: the next call works.
	rows, err = Run(ctx, src, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again := collect(t, rows); len(again) != wantRows {
		t.Errorf("second call: %d rows, want %d", len(again), wantRows)
	}

	_, err = Run(ctx, src, Request{Procedure: &Procedure{Name: "no_such_proc"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "no_such_proc") || !strings.Contains(err.Error(), `source "warehouse"`) {
		t.Errorf("unknown procedure: %v, want the server's error naming it and the source", err)
	}
}

// A cancelled procedure call is stopped on the server like any query (KILL QUERY on its
// connection): the statement inside the procedure does not run on.
func TestRunProcedureCancelMariaDB(t *testing.T) {
	t.Parallel()
	marker := fmt.Sprintf("rpt_proc_cancel_%d", time.Now().UnixNano())
	src, db := openMariaDB(t, `CREATE PROCEDURE `+marker+`(IN p_n INT)
		BEGIN
			SELECT /* `+marker+` */ p_n AS n, SUM(a.seq + b.seq) AS s FROM seq_1_to_100000 a, seq_1_to_100000 b;
		END`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	rows, err := Run(ctx, src, Request{Procedure: &Procedure{Name: marker, Args: []string{"n"}}, Params: map[string]any{"n": int64(1)}}, nil)
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		_ = rows.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	if n := runningQueries(t, db, marker); n != 0 {
		killQueries(t, db, marker)
		t.Fatalf("%d statements with %s still in PROCESSLIST after 5 s", n, marker)
	}
}
