package source

import (
	"reflect"
	"testing"
)

// BindMarkers reads the text as its dialect does but always binds ODBC's "?": what an
// odbc source sends, whichever server is behind the driver.
func TestBindMarkers(t *testing.T) {
	t.Parallel()
	params := map[string]any{"pcn": int64(123681), "ids": []any{int64(1), int64(2)}, "name": "O'Brien"}
	for _, tc := range []struct {
		dialect, sql, want string
		args               []any
	}{
		{DialectSQLServer, "SELECT [a:b], ':pcn' FROM t WHERE pcn = :pcn AND id IN (:ids) AND n = :name -- :x",
			"SELECT [a:b], ':pcn' FROM t WHERE pcn = ? AND id IN (?,?) AND n = ? -- :x", []any{int64(123681), int64(1), int64(2), "O'Brien"}},
		{DialectMySQL, "SELECT `a:b`, 'x\\':pcn' FROM t WHERE pcn=:pcn # :ids",
			"SELECT `a:b`, 'x\\':pcn' FROM t WHERE pcn=? # :ids", []any{int64(123681)}},
		// A procedure call as Run builds it for an odbc source speaking SQL Server.
		{DialectSQLServer, procedureSQL(DialectSQLServer, &Procedure{Name: "acct.trial_balance", Args: []string{"pcn", "name"}}),
			"EXEC [acct].[trial_balance] ?, ?", []any{int64(123681), "O'Brien"}},
		{DialectMySQL, procedureSQL(DialectMySQL, &Procedure{Name: "tb", Args: []string{"pcn"}}),
			"CALL `tb`(?)", []any{int64(123681)}},
	} {
		got, args, err := BindMarkers(tc.dialect, tc.sql, params)
		if err != nil {
			t.Fatalf("%s %q: %v", tc.dialect, tc.sql, err)
		}
		if got != tc.want || !reflect.DeepEqual(args, tc.args) {
			t.Errorf("%s %q:\n got %q %v\nwant %q %v", tc.dialect, tc.sql, got, args, tc.want, tc.args)
		}
	}
	if _, _, err := BindMarkers(DialectSQLServer, "SELECT @p1", nil); err == nil {
		t.Error("a positional @p1 in the SQL was accepted")
	}
}
