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
		if dialect == DialectSQLServer {
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
	tokenText       tokenKind = iota // SQL passed through verbatim, including literals and comments
	tokenParam                       // ":name"
	tokenPositional                  // "?" or "@pN" already in the SQL: mixing them with :name would misnumber arguments
)

type token struct {
	kind tokenKind
	text string
	line int
}

func isIdentStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || ('0' <= c && c <= '9')
}

// scanSQL splits query into tokens for emit. It knows only what Bind needs:
// where literals, quoted identifiers and comments begin and end (so a ":x"
// inside them is not a parameter), and where parameters are. Unterminated
// literals run to the end of the input; the database reports them.
func scanSQL(dialect, q string, emit func(token) error) error {
	line := 1
	start := 0 // start of the pending text run
	flush := func(end int) error {
		if end > start {
			if err := emit(token{kind: tokenText, text: q[start:end], line: line}); err != nil {
				return err
			}
		}
		start = end
		return nil
	}
	// skipQuoted returns the index after the literal that opens at i with quote
	// byte close; a doubled close byte is an escaped one, and in MySQL so is
	// a backslash-escaped byte inside '...' and "...".
	skipQuoted := func(i int, closing byte, backslash bool) int {
		for j := i + 1; j < len(q); j++ {
			switch q[j] {
			case '\\':
				if backslash {
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
	countLines := func(from, to int) {
		line += strings.Count(q[from:to], "\n")
	}
	mysql := dialect == DialectMySQL
	for i := 0; i < len(q); {
		c := q[i]
		var next byte
		if i+1 < len(q) {
			next = q[i+1]
		}
		switch {
		case c == '\'':
			j := skipQuoted(i, '\'', mysql)
			countLines(i, j)
			i = j
		case c == '"':
			j := skipQuoted(i, '"', mysql)
			countLines(i, j)
			i = j
		case c == '`':
			j := skipQuoted(i, '`', false)
			countLines(i, j)
			i = j
		case c == '[' && !mysql:
			j := skipQuoted(i, ']', false)
			countLines(i, j)
			i = j
		case c == '-' && next == '-', c == '#' && mysql:
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				i = len(q)
			} else {
				i += j // the newline itself is counted below
			}
		case c == '/' && next == '*':
			j := strings.Index(q[i+2:], "*/")
			end := len(q)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			countLines(i, end)
			i = end
		case c == '\n':
			line++
			i++
		case c == ':' && next == ':':
			i += 2
		case c == ':' && isIdentStart(next):
			if err := flush(i); err != nil {
				return err
			}
			j := i + 1
			for j < len(q) && isIdentChar(q[j]) {
				j++
			}
			if err := emit(token{kind: tokenParam, text: q[i:j], line: line}); err != nil {
				return err
			}
			i, start = j, j
		case c == '?' && dialect != DialectSQLServer:
			if err := flush(i); err != nil {
				return err
			}
			if err := emit(token{kind: tokenPositional, text: "?", line: line}); err != nil {
				return err
			}
			i, start = i+1, i+1
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
			if err := flush(i); err != nil {
				return err
			}
			if err := emit(token{kind: tokenPositional, text: q[i:j], line: line}); err != nil {
				return err
			}
			i, start = j, j
		default:
			i++
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
