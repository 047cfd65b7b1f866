package source

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Dialects Bind understands; they are also the driver names of Config.Driver.
const (
	DialectSQLite    = "sqlite"
	DialectMySQL     = "mysql"
	DialectSQLServer = "sqlserver"
)

// ErrBind marks SQL or parameters that cannot be bound (empty list, positional
// placeholder in the SQL, unknown dialect). ErrUnknownParam is reported on its own.
var ErrBind = errors.New("bind parameters")

// Bind rewrites ":name" parameters in query into the dialect's placeholders and
// returns the SQL with its positional arguments. sqlite and mysql use "?",
// sqlserver uses "@p1".."@pN" (go-mssqldb binds positional arguments to those
// names). A list value ([]any or any slice but []byte) becomes one placeholder
// per element, so "x IN (:ids)" works; an empty list is an error because
// "IN ()" is invalid SQL. String literals, quoted identifiers, comments and
// "::" are left alone. A name used in the SQL but missing from params is
// ErrUnknownParam; params the SQL does not use are ignored, because one
// definition's params serve several dialects' SQL.
func Bind(dialect, query string, params map[string]any) (string, []any, error) {
	return bind(dialect, query, params, dialect == DialectSQLServer)
}

// BindMarkers is Bind with ODBC's parameter marker "?" in every dialect: the text is
// read as dialect reads it (SQL Server's [brackets], MySQL's backslash escapes), but the
// placeholders are ODBC's, whatever the server behind the driver.
func BindMarkers(dialect, query string, params map[string]any) (string, []any, error) {
	return bind(dialect, query, params, false)
}

func bind(dialect, query string, params map[string]any, atNames bool) (string, []any, error) {
	switch dialect {
	case DialectSQLite, DialectMySQL, DialectSQLServer:
	default:
		return "", nil, fmt.Errorf("%w: unknown dialect %q (want sqlite, mysql or sqlserver)", ErrBind, dialect)
	}
	var (
		out  strings.Builder
		args []any
	)
	out.Grow(len(query) + 16)
	placeholder := func() {
		if atNames {
			// "x:a" must not become "x@p1" nor "@:a" "@@p1" (a system variable).
			if o := out.String(); o != "" && (isIdentChar(o[len(o)-1]) || strings.ContainsRune("@$#", rune(o[len(o)-1]))) {
				out.WriteByte(' ')
			}
			out.WriteString("@p")
			out.WriteString(strconv.Itoa(len(args)))
			return
		}
		out.WriteByte('?')
	}
	err := scanSQL(dialect, query, func(t token) error {
		switch t.kind {
		case tokenParam:
			name := t.text[1:]
			v, ok := params[name]
			if !ok {
				return fmt.Errorf("%w :%s (line %d)", ErrUnknownParam, name, t.line)
			}
			list, isList := listValues(v)
			if !isList {
				args = append(args, v)
				placeholder()
				return nil
			}
			if len(list) == 0 {
				return fmt.Errorf("%w: parameter :%s (line %d) is an empty list; IN () is not valid SQL", ErrBind, name, t.line)
			}
			for i, e := range list {
				if _, nested := listValues(e); nested {
					return fmt.Errorf("%w: parameter :%s (line %d) element %d is itself a list", ErrBind, name, t.line, i)
				}
				if i > 0 {
					out.WriteByte(',')
				}
				args = append(args, e)
				placeholder()
			}
			return nil
		case tokenPositional:
			return fmt.Errorf("%w: positional placeholder %q at line %d; write :name instead", ErrBind, t.text, t.line)
		}
		out.WriteString(t.text)
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	return out.String(), args, nil
}

// listValues reports whether v is a list parameter and returns its elements.
// []byte is a single bytes value, not a list.
func listValues(v any) ([]any, bool) {
	switch l := v.(type) {
	case nil, []byte, string:
		return nil, false
	case []any:
		return l, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

type tokenKind int

const (
	tokenCode       tokenKind = iota // SQL outside literals and comments
	tokenQuoted                      // a string literal or quoted identifier, quotes included
	tokenComment                     // a comment, its markers included (a line comment without its newline)
	tokenParam                       // ":name"
	tokenPositional                  // "?" or "@pN" already in the SQL: mixing them with :name would misnumber arguments
)

// token is a piece of SQL text; the pieces of a scan put together are the text.
type token struct {
	kind  tokenKind
	text  string
	line  int // 1-based line of the text where the token starts
	start int // byte offset of the token in the text
}

func isIdentStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || ('0' <= c && c <= '9')
}

// scanSQL splits query into tokens for emit, reading it as dialect does. It is the one
// reader of SQL text in rpt: Bind, the parameter check of report definitions
// (ParamRefs) and the statement checks (CheckStatement, CheckCondition) all use it, so
// what validation sees is what runs. It knows only where literals, quoted identifiers
// and comments begin and end (a ":x" or ";" inside them is text), and where parameters
// are. Unterminated literals and comments run to the end of the input; the database
// reports them.
func scanSQL(dialect, q string, emit func(token) error) error {
	return scanSQLWith(dialect, q, dialect == DialectMySQL, emit)
}

// scanSQLWith is scanSQL with MySQL's backslash escapes inside '...' and "..." on or
// off: a server running with sql_mode NO_BACKSLASH_ESCAPES reads them as plain
// backslashes, and the statement checks look at both readings.
func scanSQLWith(dialect, q string, backslash bool, emit func(token) error) error {
	mysql := dialect == DialectMySQL
	line := 1
	start, startLine := 0, 1 // the pending run of code
	flush := func(end int) error {
		if end > start {
			if err := emit(token{kind: tokenCode, text: q[start:end], line: startLine, start: start}); err != nil {
				return err
			}
		}
		start, startLine = end, line
		return nil
	}
	// piece emits q[i:j] as one token of kind after the pending code.
	piece := func(kind tokenKind, i, j int) error {
		if err := flush(i); err != nil {
			return err
		}
		if err := emit(token{kind: kind, text: q[i:j], line: line, start: i}); err != nil {
			return err
		}
		line += strings.Count(q[i:j], "\n")
		start, startLine = j, line
		return nil
	}
	// skipQuoted returns the index after the literal that opens at i with quote byte
	// closing; a doubled closing byte is an escaped one, and with esc so is a
	// backslash-escaped byte.
	skipQuoted := func(i int, closing byte, esc bool) int {
		for j := i + 1; j < len(q); j++ {
			switch q[j] {
			case '\\':
				if esc {
					j++
				}
			case closing:
				if j+1 < len(q) && q[j+1] == closing {
					j++
					continue
				}
				return j + 1
			}
		}
		return len(q)
	}
	for i := 0; i < len(q); {
		c := q[i]
		var next byte
		if i+1 < len(q) {
			next = q[i+1]
		}
		var err error
		switch {
		case c == '\'':
			j := skipQuoted(i, '\'', backslash)
			err, i = piece(tokenQuoted, i, j), j
		case c == '"':
			j := skipQuoted(i, '"', backslash)
			err, i = piece(tokenQuoted, i, j), j
		case c == '`':
			j := skipQuoted(i, '`', false)
			err, i = piece(tokenQuoted, i, j), j
		case c == '[' && !mysql:
			j := skipQuoted(i, ']', false)
			err, i = piece(tokenQuoted, i, j), j
		case c == '-' && next == '-' && (!mysql || i+2 >= len(q) || q[i+2] <= ' '),
			c == '#' && mysql:
			// MySQL starts a -- comment only before a space or control character:
			// "1--1" is one minus minus one there.
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q)
			} else {
				j += i // the newline is code, counted below
			}
			err, i = piece(tokenComment, i, j), j
		case c == '/' && next == '*' && mysql && (strings.HasPrefix(q[i:], "/*!") || strings.HasPrefix(q[i:], "/*M!")):
			// An executable comment: MySQL (MariaDB for /*M!) runs what is inside, so
			// it is read as code; its closing */ is then plain text.
			i += 3
			if q[i-1] == 'M' {
				i++
			}
			for i < len(q) && '0' <= q[i] && q[i] <= '9' {
				i++
			}
		case c == '/' && next == '*':
			j := strings.Index(q[i+2:], "*/")
			end := len(q)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			err, i = piece(tokenComment, i, end), end
		case c == '\n':
			line++
			i++
		case c == ':' && next == ':':
			i += 2
		case c == ':' && isIdentStart(next):
			j := i + 1
			for j < len(q) && isIdentChar(q[j]) {
				j++
			}
			err, i = piece(tokenParam, i, j), j
		case c == '?' && dialect != DialectSQLServer:
			err, i = piece(tokenPositional, i, i+1), i+1
		case c == '@' && dialect == DialectSQLServer && (i == 0 || !isIdentChar(q[i-1]) && q[i-1] != '@') &&
			(next == 'p' || next == 'P') && i+2 < len(q) && '0' <= q[i+2] && q[i+2] <= '9':
			j := i + 2
			for j < len(q) && isIdentChar(q[j]) {
				j++
			}
			if !allDigits(q[i+2 : j]) {
				i = j // a variable like @p1x is the user's own
				continue
			}
			err, i = piece(tokenPositional, i, j), j
		default:
			i++
		}
		if err != nil {
			return err
		}
	}
	return flush(len(q))
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
