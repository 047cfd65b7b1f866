package reportdefs

import (
	"errors"
	"strings"
	"testing"

	"rpt/internal/source"
)

// TestValidationMatchesBinding: what `rpt reports validate` demands of a definition's
// parameters is what binding needs at run time. For SQL that the dialects read
// differently (MySQL's backslash escapes and # comments, SQL Server's [brackets], a
// name glued to the colon), a definition that declares no parameters is refused by
// validation exactly when Bind on its dialect finds a parameter to bind.
func TestValidationMatchesBinding(t *testing.T) {
	t.Parallel()
	cases := []struct{ dialect, sql string }{
		{"mysql", `SELECT '\'', :p`},                 // MySQL: ' \' ' is one literal, then :p
		{"mysql", `SELECT 'a\\', :p`},                // an escaped backslash ends the literal
		{"mysql", `SELECT "x\"y", :p`},               // the same in double quotes
		{"mysql", "SELECT 1 # :p\n"},                 // a MySQL comment
		{"mysql", "SELECT 1 -- :p\n"},                // a comment
		{"mysql", "SELECT 1--:p\n"},                  // MySQL: 1 - -:p, no comment
		{"mysql", "SELECT /*! :p */ 1"},              // an executable comment: MySQL runs it
		{"sqlite", `SELECT '\'', :p`},                // SQLite: '\' then ', :p' unterminated
		{"sqlite", "SELECT 1 # :p\n"},                // # is no comment in SQLite
		{"sqlite", "SELECT [a:p] FROM t"},            // SQLite takes [brackets] as identifiers too
		{"sqlserver", "SELECT [a:p] FROM t"},         // a bracketed identifier
		{"sqlserver", "SELECT x:p"},                  // a name glued to the colon
		{"sqlite", "SELECT a:p, 10:30"},              // likewise
		{"sqlite", "SELECT x::int, ':p', \":p\", 1"}, // a cast and quotes: nothing to bind
	}
	for _, c := range cases {
		def := "name: x\nsource: w\nsql: SELECT 1\ndialects:\n  " + c.dialect + ": " + quoteYAML(c.sql) + "\n"
		_, perr := Parse("x.yaml", []byte(def))
		validationSees := perr != nil && strings.Contains(perr.Error(), ":p is not a declared parameter")
		if perr != nil && !validationSees {
			t.Errorf("%s %q: unexpected validation error: %v", c.dialect, c.sql, perr)
			continue
		}
		_, _, berr := source.Bind(c.dialect, c.sql, map[string]any{})
		bindSees := errors.Is(berr, source.ErrUnknownParam)
		if validationSees != bindSees {
			t.Errorf("%s %q: validation sees :p %v, binding needs :p %v (%v)", c.dialect, c.sql, validationSees, bindSees, berr)
		}
	}
}

// quoteYAML writes s as a double-quoted YAML scalar.
func quoteYAML(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// TestPositions: each error points at the line and column where the problem is
// written, inside SQL text too (a literal block, a plain one-line scalar, a flow
// mapping).
func TestPositions(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, yaml, want string }{
		{"param in a literal block", "name: x\nsource: w\nsql: |\n  SELECT 1\n    FROM t WHERE a = :nope\n",
			"x.yaml:5:22: sql: :nope is not a declared parameter"},
		{"param in a plain scalar", "name: x\nsource: w\nsql: SELECT :nope\n", "x.yaml:3:13: sql: :nope"},
		{"param in a dialect", "name: x\nsource: w\nsql: SELECT 1\ndialects:\n  mysql: \"SELECT 1, :nope\"\n",
			"x.yaml:5:21: dialects.mysql: :nope"},
		{"second statement", "name: x\nsource: w\nsql: |\n  SELECT 1;\n  DROP TABLE t\n",
			"x.yaml:5:3: sql: a second statement after a ;"},
		{"key in a flow mapping", "name: x\nsource: w\nsql: SELECT 1\nstore: {table: t, mdoe: append}\n", "x.yaml:4:19: store.mdoe: unknown key"},
		{"value in a list", "name: x\nsource: w\nsql: SELECT 1\nparams:\n  - name: a\n    type: int\n    default: zz\n",
			"x.yaml:7:14: params[0].default: bad int default"},
		{"procedure key", "name: x\nsource: w\nsql: SELECT 1\nprocedure: {name: p}\n", "x.yaml:4:1: procedure: cannot be combined"},
	}
	for _, tt := range tests {
		_, err := Parse("x.yaml", []byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v\nwant %q", tt.name, err, tt.want)
		}
	}
}
