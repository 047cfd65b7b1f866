package source

import (
	"errors"
	"fmt"
	"strings"
)

// ErrStatement marks SQL that is not what its place allows: report SQL that holds a
// second statement, a store.replace_where that is not a single condition. Retrying
// does not help; the definition must change. Query refuses such SQL too, so the check
// holds at run time for every caller.
var ErrStatement = errors.New("SQL statement")

// SQLError is a problem at a place in SQL text.
type SQLError struct {
	Offset int // byte offset in the text
	Line   int // 1-based line of the text
	Msg    string
}

func (e *SQLError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Unwrap: ErrStatement, and ErrRequest (a request the source will never run, so a job
// is not retried for it).
func (e *SQLError) Unwrap() []error { return []error{ErrStatement, ErrRequest} }

// ParamRef is a parameter reference in SQL text: ":name", or a positional placeholder
// ("?", SQL Server's "@p1") that Bind refuses.
type ParamRef struct {
	Name       string // without the colon; the placeholder as written when Positional
	Positional bool
	Offset     int // byte offset of the reference in the text
	Line       int // 1-based line of the text
}

// ParamRefs returns the parameter references of query as dialect reads it, in order:
// exactly those Bind will bind (or refuse). dialect is a driver name; one this binary
// does not know is read by the standard rules (no backslash escapes, no # comments).
func ParamRefs(dialect, query string) []ParamRef {
	var out []ParamRef
	_ = scanSQL(dialect, query, func(t token) error {
		switch t.kind {
		case tokenParam:
			out = append(out, ParamRef{Name: t.text[1:], Offset: t.start, Line: t.line})
		case tokenPositional:
			out = append(out, ParamRef{Name: t.text, Positional: true, Offset: t.start, Line: t.line})
		}
		return nil
	})
	return out
}

// readings are the ways a dialect's server may read the text: MySQL's backslash
// escapes depend on the server's sql_mode, so both readings must pass.
func readings(dialect string) []bool {
	if dialect == DialectMySQL {
		return []bool{true, false}
	}
	return []bool{false}
}

// CheckStatement refuses query unless it is one statement as dialect reads it: after a
// ";" outside literals and comments only blanks, comments and more ";" may follow
// (a trailing ";" is fine). A report's SQL is checked at validate and again before it
// runs, so a second statement ("SELECT 1; DROP TABLE x") never reaches the database.
// SQL Server needs no ";" between statements, so there this check is only a first
// line; the read-only login is what holds (README, "Sources"). The error is an
// *SQLError wrapping ErrStatement.
func CheckStatement(dialect, query string) error {
	for _, backslash := range readings(dialect) {
		if err := checkStatement(dialect, query, backslash); err != nil {
			return err
		}
	}
	return nil
}

func checkStatement(dialect, query string, backslash bool) error {
	var semi *token // the first ";" outside literals and comments
	err := scanSQLWith(dialect, query, backslash, func(t token) error {
		if t.kind == tokenComment {
			return nil
		}
		if semi == nil {
			if t.kind == tokenCode {
				if i := strings.IndexByte(t.text, ';'); i >= 0 {
					semi = &token{line: t.line + strings.Count(t.text[:i], "\n"), start: t.start + i}
					t.text, t.start, t.line = t.text[i+1:], t.start+i+1, semi.line
				} else {
					return nil
				}
			} else {
				return nil
			}
		}
		rest := t.text
		if t.kind == tokenCode {
			rest = strings.TrimLeft(rest, " \t\r\n\f\v;")
		}
		if rest == "" {
			return nil
		}
		at := t.start + len(t.text) - len(rest)
		return &SQLError{Offset: at, Line: t.line + strings.Count(t.text[:len(t.text)-len(rest)], "\n"),
			Msg: "a second statement after a ; (a report runs one statement; remove the ; and what follows)"}
	})
	return err
}

// CheckCondition refuses expr unless it can stand as a condition after WHERE: no ";"
// outside literals and comments, parentheses that balance, and no line comment (it
// would hide whatever is written after the condition on the same line). A history
// table's store.replace_where is checked with it, so a definition cannot carry a
// statement of its own into the DELETE of a replace load. The error is an *SQLError
// wrapping ErrStatement.
func CheckCondition(dialect, expr string) error {
	for _, backslash := range readings(dialect) {
		if err := checkCondition(dialect, expr, backslash); err != nil {
			return err
		}
	}
	return nil
}

func checkCondition(dialect, expr string, backslash bool) error {
	depth := 0
	var open []token // where each unclosed "(" is
	err := scanSQLWith(dialect, expr, backslash, func(t token) error {
		switch t.kind {
		case tokenComment:
			if !strings.HasPrefix(t.text, "/*") {
				return &SQLError{Offset: t.start, Line: t.line, Msg: "a line comment in a condition (it would hide what follows; use /* ... */)"}
			}
		case tokenCode:
			line := t.line
			for i := 0; i < len(t.text); i++ {
				switch t.text[i] {
				case '\n':
					line++
				case ';':
					return &SQLError{Offset: t.start + i, Line: line, Msg: "a ; in a condition (it must be one expression such as \"period BETWEEN :from AND :to\", not statements)"}
				case '(':
					depth++
					open = append(open, token{line: line, start: t.start + i})
				case ')':
					if depth == 0 {
						return &SQLError{Offset: t.start + i, Line: line, Msg: "a ) without its ( in a condition"}
					}
					depth--
					open = open[:len(open)-1]
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if depth > 0 {
		o := open[len(open)-1]
		return &SQLError{Offset: o.start, Line: o.line, Msg: "a ( that is never closed in a condition"}
	}
	return nil
}
