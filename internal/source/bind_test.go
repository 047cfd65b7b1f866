package source

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestBind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		dialect  string
		sql      string
		params   map[string]any
		wantSQL  string
		wantArgs []any
	}{
		{"one param sqlite", "sqlite", "SELECT * FROM t WHERE pcn = :pcn", map[string]any{"pcn": int64(1)},
			"SELECT * FROM t WHERE pcn = ?", []any{int64(1)}},
		{"one param mysql", "mysql", "SELECT :a", map[string]any{"a": "x"}, "SELECT ?", []any{"x"}},
		{"sqlserver numbered", "sqlserver", "SELECT :a, :b, :a", map[string]any{"a": int64(1), "b": "two"},
			"SELECT @p1, @p2, @p3", []any{int64(1), "two", int64(1)}},
		{"repeated param", "sqlite", ":x + :x", map[string]any{"x": int64(2)}, "? + ?", []any{int64(2), int64(2)}},
		{"list expands", "mysql", "WHERE x IN (:ids) AND y = :y", map[string]any{"ids": []any{int64(1), int64(2), int64(3)}, "y": "a"},
			"WHERE x IN (?,?,?) AND y = ?", []any{int64(1), int64(2), int64(3), "a"}},
		{"typed slice expands", "sqlite", "IN (:ids)", map[string]any{"ids": []int64{7, 8}},
			"IN (?,?)", []any{int64(7), int64(8)}},
		{"list sqlserver", "sqlserver", "IN (:ids) AND z = :z", map[string]any{"ids": []any{"a", "b"}, "z": true},
			"IN (@p1,@p2) AND z = @p3", []any{"a", "b", true}},
		{"one element list", "sqlite", "IN (:ids)", map[string]any{"ids": []any{int64(5)}}, "IN (?)", []any{int64(5)}},
		{"bytes is not a list", "sqlite", ":b", map[string]any{"b": []byte("ab")}, "?", []any{[]byte("ab")}},
		{"nil binds NULL", "sqlite", ":n IS NULL", map[string]any{"n": nil}, "? IS NULL", []any{nil}},
		{"cast left alone", "sqlite", "SELECT x::int, :a", map[string]any{"a": int64(1)}, "SELECT x::int, ?", []any{int64(1)}},
		{"triple colon", "sqlite", "SELECT x:::a", map[string]any{"a": int64(1)}, "SELECT x::?", []any{int64(1)}},
		{"string literal", "sqlite", "SELECT ':a', :a", map[string]any{"a": int64(1)}, "SELECT ':a', ?", []any{int64(1)}},
		{"doubled quote in string", "sqlite", "SELECT 'it''s :a', :b", map[string]any{"b": int64(1)},
			"SELECT 'it''s :a', ?", []any{int64(1)}},
		{"mysql backslash escape", "mysql", `SELECT 'it\'s :a', :b`, map[string]any{"b": int64(1)},
			`SELECT 'it\'s :a', ?`, []any{int64(1)}},
		{"sqlite backslash is plain", "sqlite", `SELECT 'c:\', :b`, map[string]any{"b": int64(1)},
			`SELECT 'c:\', ?`, []any{int64(1)}},
		{"double-quoted identifier", "sqlite", `SELECT "col:a" FROM t WHERE x = :b`, map[string]any{"b": int64(1)},
			`SELECT "col:a" FROM t WHERE x = ?`, []any{int64(1)}},
		{"backtick identifier", "mysql", "SELECT `col:a`, :b", map[string]any{"b": int64(1)}, "SELECT `col:a`, ?", []any{int64(1)}},
		{"bracket identifier", "sqlserver", "SELECT [col:a], :b", map[string]any{"b": int64(1)}, "SELECT [col:a], @p1", []any{int64(1)}},
		{"line comment", "sqlite", "SELECT 1 -- uses :a\n, :b", map[string]any{"b": int64(1)}, "SELECT 1 -- uses :a\n, ?", []any{int64(1)}},
		{"line comment at end", "sqlite", "SELECT :b -- :a", map[string]any{"b": int64(1)}, "SELECT ? -- :a", []any{int64(1)}},
		{"block comment", "mysql", "SELECT /* :a ? */ :b", map[string]any{"b": int64(1)}, "SELECT /* :a ? */ ?", []any{int64(1)}},
		{"hash comment mysql", "mysql", "SELECT :b # :a ?\n", map[string]any{"b": int64(1)}, "SELECT ? # :a ?\n", []any{int64(1)}},
		{"hash is not comment sqlserver", "sqlserver", "SELECT * FROM #tmp WHERE x = :b", map[string]any{"b": int64(1)},
			"SELECT * FROM #tmp WHERE x = @p1", []any{int64(1)}},
		{"colon without name", "sqlite", "SELECT ': ', 1 :", nil, "SELECT ': ', 1 :", nil},
		{"mysql assignment", "mysql", "SELECT @v := :a", map[string]any{"a": int64(1)}, "SELECT @v := ?", []any{int64(1)}},
		{"unused params ignored", "sqlite", "SELECT 1", map[string]any{"a": int64(1)}, "SELECT 1", nil},
		{"name with digits and underscore", "sqlite", ":start_period2", map[string]any{"start_period2": int64(202401)},
			"?", []any{int64(202401)}},
		{"param glued to identifier sqlserver", "sqlserver", "SELECT x:a", map[string]any{"a": int64(1)}, "SELECT x @p1", []any{int64(1)}},
		{"param after at sqlserver", "sqlserver", "SELECT @:a", map[string]any{"a": int64(1)}, "SELECT @ @p1", []any{int64(1)}},
		{"sqlserver own variable", "sqlserver", "DECLARE @pcn int = :pcn; SELECT @pcn, @p1x", map[string]any{"pcn": int64(1)},
			"DECLARE @pcn int = @p1; SELECT @pcn, @p1x", []any{int64(1)}},
		{"question mark in sqlserver", "sqlserver", "SELECT '?' + ?", nil, "SELECT '?' + ?", nil},
		{"multi-line", "mysql", "SELECT\n  a\nFROM t\nWHERE p BETWEEN :s AND :e", map[string]any{"s": int64(1), "e": int64(2)},
			"SELECT\n  a\nFROM t\nWHERE p BETWEEN ? AND ?", []any{int64(1), int64(2)}},
		{"unterminated string passes through", "sqlite", "SELECT ':a", nil, "SELECT ':a", nil},
		{"empty sql", "sqlite", "", nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gotSQL, gotArgs, err := Bind(tt.dialect, tt.sql, tt.params)
			if err != nil {
				t.Fatalf("Bind(%q): %v", tt.sql, err)
			}
			if gotSQL != tt.wantSQL {
				t.Errorf("sql = %q, want %q", gotSQL, tt.wantSQL)
			}
			if !reflect.DeepEqual(gotArgs, tt.wantArgs) {
				t.Errorf("args = %#v, want %#v", gotArgs, tt.wantArgs)
			}
		})
	}
}

func TestBindErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		dialect string
		sql     string
		params  map[string]any
		wantIs  error
		wantMsg []string
	}{
		{"unknown param", "sqlite", "SELECT :a, :missing", map[string]any{"a": 1}, ErrUnknownParam, []string{":missing", "line 1"}},
		{"unknown param line", "mysql", "SELECT 1\nFROM t\nWHERE x = :nope", nil, ErrUnknownParam, []string{":nope", "line 3"}},
		{"unknown param after multi-line comment", "mysql", "/* a\nb */ SELECT 'x\ny' + :nope", nil, ErrUnknownParam, []string{"line 3"}},
		{"empty list", "sqlite", "WHERE x IN (:ids)", map[string]any{"ids": []any{}}, ErrBind, []string{":ids", "empty list"}},
		{"empty typed list", "mysql", "WHERE x IN (:ids)", map[string]any{"ids": []string{}}, ErrBind, []string{":ids"}},
		{"nested list", "sqlite", ":ids", map[string]any{"ids": []any{[]any{1}}}, ErrBind, []string{":ids", "itself a list"}},
		{"positional sqlite", "sqlite", "SELECT ? , :a", map[string]any{"a": 1}, ErrBind, []string{"positional", `"?"`}},
		{"positional sqlserver", "sqlserver", "SELECT @p1, :a", map[string]any{"a": 1}, ErrBind, []string{"@p1"}},
		{"unknown dialect", "oracle", "SELECT 1", nil, ErrBind, []string{"oracle"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := Bind(tt.dialect, tt.sql, tt.params)
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("Bind(%q) error = %v, want %v", tt.sql, err, tt.wantIs)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

// countPlaceholders counts the dialect's placeholders in bound SQL, outside
// literals and comments, and checks SQL Server's are numbered 1..n in order.
func countPlaceholders(t *testing.T, dialect, sql string) int {
	t.Helper()
	n := 0
	err := scanSQL(dialect, sql, func(tk token) error {
		switch tk.kind {
		case tokenParam:
			t.Fatalf("bound SQL %q still has parameter %s", sql, tk.text)
		case tokenPositional:
			n++
			if dialect == DialectSQLServer && tk.text != "@p"+strconv.Itoa(n) {
				t.Fatalf("bound SQL %q: placeholder %s where @p%d expected", sql, tk.text, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func FuzzBind(f *testing.F) {
	for _, s := range []string{
		"SELECT :a FROM t WHERE x IN (:ids) AND y = :b",
		"SELECT ':a', \"x:a\", `y:b`, [z:c] -- :a\n /* :b */ x::int, :a",
		`SELECT 'it\'s', 'it''s', :a # comment :b`,
		"x:a @:a :::a ?",
		"DECLARE @p1 int; SELECT @p1x, :b",
		"'unterminated :a",
		"/* unterminated :a",
	} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
		f.Add(s, uint8(2))
	}
	dialects := []string{DialectSQLite, DialectMySQL, DialectSQLServer}
	params := map[string]any{
		"a": int64(1), "b": "two", "ids": []any{int64(1), int64(2), int64(3)},
		"one": []any{"x"}, "x": nil, "_": true,
	}
	f.Fuzz(func(t *testing.T, sql string, d uint8) {
		dialect := dialects[int(d)%len(dialects)]
		out, args, err := Bind(dialect, sql, params)
		if err != nil {
			if !errors.Is(err, ErrUnknownParam) && !errors.Is(err, ErrBind) {
				t.Fatalf("Bind(%q) error %v is neither ErrUnknownParam nor ErrBind", sql, err)
			}
			return
		}
		if n := countPlaceholders(t, dialect, out); n != len(args) {
			t.Fatalf("Bind(%s, %q) = %q with %d placeholders and %d args", dialect, sql, out, n, len(args))
		}
	})
}
