package source

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParamRefs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dialect, sql, want string
	}{
		{"sqlite", "SELECT :a, :b_2 FROM t WHERE x = :a", "a b_2 a"},
		{"sqlite", "SELECT x::int, ':no', \":no\", `:no` FROM t", ""},
		{"sqlite", "SELECT 1 -- :no\n, :yes /* :no\n:no */ + :z", "yes z"},
		{"sqlite", "SELECT 'it''s :no', :yes", "yes"},
		{"sqlite", "SELECT a:b, 10:30, :1x, :_ok", "b _ok"},
		{"sqlite", "SELECT ':unterminated", ""},
		{"sqlite", "/* unterminated :x", ""},
		{"sqlite", ":start", "start"},
		{"mysql", "SET @v := 1", ""},
		{"mysql", `SELECT 'it\'s :no', :yes`, "yes"},
		{"sqlite", `SELECT 'c:\', :yes`, "yes"},
		{"mysql", "SELECT 1 # :no\n, :yes", "yes"},
		{"sqlite", "SELECT 1 # :yes\n", "yes"},
		{"mysql", "SELECT 1--:yes\n", "yes"},
		{"mysql", "SELECT /*!50001 :yes */ 1, /* :no */ 2", "yes"},
		{"sqlserver", "SELECT [a:no], :yes, ?", "yes"},
		{"sqlite", "SELECT ?, :yes", "? yes"},
		{"sqlserver", "SELECT @p1, :yes", "@p1 yes"},
		{"odbc", `SELECT '\', :yes`, "yes"}, // a driver not built: the standard reading
	}
	for _, tt := range tests {
		var names []string
		for _, r := range ParamRefs(tt.dialect, tt.sql) {
			names = append(names, r.Name)
			text := tt.sql[r.Offset:]
			if !r.Positional && !strings.HasPrefix(text, ":"+r.Name) || r.Positional && !strings.HasPrefix(text, r.Name) {
				t.Errorf("%s %q: ref %+v does not point at its text", tt.dialect, tt.sql, r)
			}
			if want := 1 + strings.Count(tt.sql[:r.Offset], "\n"); r.Line != want {
				t.Errorf("%s %q: ref %+v: line %d, want %d", tt.dialect, tt.sql, r, r.Line, want)
			}
		}
		if got := strings.Join(names, " "); got != tt.want {
			t.Errorf("ParamRefs(%s, %q) = %q, want %q", tt.dialect, tt.sql, got, tt.want)
		}
	}
}

func TestCheckStatement(t *testing.T) {
	t.Parallel()
	good := []struct{ dialect, sql string }{
		{"sqlite", "SELECT 1"},
		{"sqlite", "SELECT 1;"},
		{"sqlite", "SELECT 1 ;\n  ;; -- done\n/* end */\n"},
		{"sqlite", "SELECT ';' AS semi, \";\" AS \"a;b\", [x;y] FROM t -- ; DROP TABLE t"},
		{"mysql", "SELECT `a;b`, 'it''s; fine' FROM t # ; DROP TABLE t"},
		{"mysql", "SELECT 'a\\\\'; -- trailing"},
		{"sqlserver", "SELECT [a;b] FROM t; /* ; DROP */"},
		{"sqlite", "WITH c(n) AS (SELECT 1) SELECT n FROM c"},
	}
	for _, g := range good {
		if err := CheckStatement(g.dialect, g.sql); err != nil {
			t.Errorf("CheckStatement(%s, %q) = %v, want nil", g.dialect, g.sql, err)
		}
	}
	bad := []struct {
		dialect, sql string
		line         int
		at           string // the text the error points at
	}{
		{"sqlite", "SELECT 1; DROP TABLE x", 1, "DROP TABLE x"},
		{"sqlite", "SELECT 1;\n\nDELETE FROM t", 3, "DELETE FROM t"},
		{"sqlite", "SELECT 1; -- c\n 'x'", 2, "'x'"},
		{"sqlite", "SELECT 1 /* ; */; SELECT :p", 1, "SELECT :p"},
		{"sqlite", "; SELECT 1", 1, "SELECT 1"},
		{"sqlserver", "SELECT 1; EXEC xp_cmdshell 'dir'", 1, "EXEC xp_cmdshell 'dir'"},
		// MySQL reads '\'' as one literal unless sql_mode NO_BACKSLASH_ESCAPES: then the
		// ; is outside it. Both readings must pass.
		{"mysql", "SELECT 'a\\'; DROP TABLE x; -- '", 1, "DROP TABLE x; -- '"},
		// MySQL runs what is inside /*! */.
		{"mysql", "SELECT 1 /*! ; DROP TABLE x */", 1, "DROP TABLE x */"},
		// "--" without a space is no comment in MySQL.
		{"mysql", "SELECT 1 --; DROP TABLE x", 1, "DROP TABLE x"},
		// SQLite does not take \ as an escape.
		{"sqlite", "SELECT 'a\\'; DROP TABLE x; -- '", 1, "DROP TABLE x; -- '"},
	}
	for _, b := range bad {
		err := CheckStatement(b.dialect, b.sql)
		var se *SQLError
		if !errors.As(err, &se) || !errors.Is(err, ErrStatement) {
			t.Errorf("CheckStatement(%s, %q) = %v, want an *SQLError", b.dialect, b.sql, err)
			continue
		}
		if se.Line != b.line || b.sql[se.Offset:] != b.at || !strings.Contains(se.Msg, "a second statement") {
			t.Errorf("CheckStatement(%s, %q) = line %d %q at %q, want line %d at %q", b.dialect, b.sql, se.Line, se.Msg, b.sql[se.Offset:], b.line, b.at)
		}
	}
}

func TestCheckCondition(t *testing.T) {
	t.Parallel()
	for _, good := range []string{
		"pcn = :pcn AND period BETWEEN :start_period AND :end_period",
		"pcn IN (:pcn) AND (:workcenter IS NULL OR workcenter_code = :workcenter)",
		"note <> ';' AND x = ')' /* ; */",
	} {
		for _, dialect := range Drivers {
			if err := CheckCondition(dialect, good); err != nil {
				t.Errorf("CheckCondition(%s, %q) = %v", dialect, good, err)
			}
		}
	}
	bad := []struct{ dialect, expr, at, msg string }{
		{"sqlite", "1=1; DROP TABLE rpt_jobs", "; DROP TABLE rpt_jobs", "a ; in a condition"},
		{"sqlite", "1=1;", ";", "a ; in a condition"},
		{"mysql", "x = 1 -- AND y = 2", "-- AND y = 2", "a line comment"},
		{"mysql", "x = 1 # rest", "# rest", "a line comment"},
		{"sqlite", "x = 1) OR (1=1", ") OR (1=1", "a ) without its ("},
		{"sqlite", "(x = 1 OR (y = 2)", "(x = 1 OR (y = 2)", "never closed"},
		{"mysql", "x = 'a\\'; DELETE FROM t; -- '", "; DELETE FROM t; -- '", "a ; in a condition"},
	}
	for _, b := range bad {
		err := CheckCondition(b.dialect, b.expr)
		var se *SQLError
		if !errors.As(err, &se) || !errors.Is(err, ErrStatement) {
			t.Errorf("CheckCondition(%s, %q) = %v, want an *SQLError", b.dialect, b.expr, err)
			continue
		}
		if b.expr[se.Offset:] != b.at || !strings.Contains(se.Msg, b.msg) {
			t.Errorf("CheckCondition(%s, %q) = %q at %q, want %q at %q", b.dialect, b.expr, se.Msg, b.expr[se.Offset:], b.msg, b.at)
		}
	}
}

// FuzzCheckStatement: a text the check accepts has no ; followed by more code as the
// scanner reads it, and the check never panics.
func FuzzCheckStatement(f *testing.F) {
	for _, s := range []string{"SELECT 1; DROP TABLE x", "SELECT ';'", "SELECT 'a\\'; x", "SELECT 1 /*! ; x */", "SELECT 1 --; x"} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(1))
		f.Add(s, uint8(2))
	}
	f.Fuzz(func(t *testing.T, sql string, d uint8) {
		dialect := Drivers[int(d)%len(Drivers)]
		err := CheckStatement(dialect, sql)
		if err != nil {
			var se *SQLError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(sql) {
				t.Fatalf("CheckStatement(%q) = %v", sql, err)
			}
			return
		}
		seenSemi := false
		_ = scanSQL(dialect, sql, func(tk token) error {
			switch tk.kind {
			case tokenComment:
			case tokenCode:
				rest := tk.text
				if !seenSemi {
					i := strings.IndexByte(rest, ';')
					if i < 0 {
						return nil
					}
					seenSemi, rest = true, rest[i+1:]
				}
				if strings.TrimLeft(rest, " \t\r\n\f\v;") != "" {
					t.Fatalf("CheckStatement(%s, %q) accepted code after a ;", dialect, sql)
				}
			default:
				if seenSemi {
					t.Fatalf("CheckStatement(%s, %q) accepted %q after a ;", dialect, sql, tk.text)
				}
			}
			return nil
		})
	})
}

// TestQueryRefusesSecondStatement: the run path refuses a second statement before the
// database sees it (SQLite would run both), as a request error that is not retried.
func TestQueryRefusesSecondStatement(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/q.db"
	if err := os.WriteFile(path, nil, 0o644); err != nil { // an empty file is an empty database
		t.Fatal(err)
	}
	src, err := Open(context.Background(), "s", Config{Driver: DialectSQLite, DSN: "sqlite:" + path})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	db := src.(interface{ DB() *sql.DB }).DB()
	if _, err := db.Exec("CREATE TABLE keep (x INTEGER); INSERT INTO keep VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	_, err = src.Query(context.Background(), "SELECT 1 AS one; DROP TABLE keep", nil)
	if !errors.Is(err, ErrStatement) || !errors.Is(err, ErrRequest) {
		t.Fatalf("Query = %v, want ErrStatement and ErrRequest", err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM keep").Scan(&n); err != nil || n != 1 {
		t.Fatalf("table keep: %d rows, %v (the second statement ran)", n, err)
	}
	rows, err := src.Query(context.Background(), "SELECT 1 AS one;", nil)
	if err != nil {
		t.Fatalf("one statement with a trailing ;: %v", err)
	}
	rows.Close()
}
