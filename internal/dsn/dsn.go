// Package dsn parses the data source names rpt accepts in flags, the environment and
// rpt.yaml: "sqlite:PATH" and "mysql://user:pass@host:port/db?param=value", and turns
// them into what the database drivers take. Redact hides passwords for messages.
package dsn

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-sql-driver/mysql"
)

// ErrInvalid marks a malformed DSN.
var ErrInvalid = errors.New("invalid dsn")

// Scheme returns "sqlite", "mysql" or "sqlserver" for a DSN, or an error naming what is wrong.
func Scheme(s string) (string, error) {
	switch {
	case strings.HasPrefix(s, "sqlite:"):
		return "sqlite", nil
	case strings.HasPrefix(s, "mysql://"):
		return "mysql", nil
	case strings.HasPrefix(s, "sqlserver://"):
		return "sqlserver", nil
	case s == "":
		return "", fmt.Errorf("%w: empty", ErrInvalid)
	}
	return "", fmt.Errorf("%w: %s: want sqlite:PATH or mysql://user:pass@host:port/db", ErrInvalid, quoted(s))
}

// SQLitePath returns the file path of a "sqlite:PATH" DSN (query parameters dropped).
func SQLitePath(s string) (string, error) {
	p, ok := strings.CutPrefix(s, "sqlite:")
	if !ok {
		return "", fmt.Errorf("%w: %s is not sqlite:PATH", ErrInvalid, quoted(s))
	}
	p = strings.TrimPrefix(p, "//")
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if p == "" {
		return "", fmt.Errorf("%w: sqlite DSN has no path", ErrInvalid)
	}
	return p, nil
}

// MySQL converts "mysql://user:pass@host:port/db?k=v" into a go-sql-driver config with
// parseTime, UTC and utf8mb4 set. Query parameters are passed to the driver.
func MySQL(s string) (*mysql.Config, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "mysql" {
		return nil, fmt.Errorf("%w: %s: want mysql://user:pass@host:port/db", ErrInvalid, quoted(s))
	}
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" && u.Host != "" {
		cfg.Addr = u.Host + ":3306"
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: %s has no host", ErrInvalid, quoted(s))
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if err := cfg.Apply(mysql.Charset("utf8mb4", "")); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	cfg.Params = map[string]string{}
	for k, vs := range u.Query() {
		if len(vs) == 0 {
			continue
		}
		switch k {
		case "timeout", "readTimeout", "writeTimeout":
			d, err := time.ParseDuration(vs[0])
			if err != nil {
				return nil, fmt.Errorf("%w: %s=%q: %v", ErrInvalid, k, vs[0], err)
			}
			switch k {
			case "timeout":
				cfg.Timeout = d
			case "readTimeout":
				cfg.ReadTimeout = d
			default:
				cfg.WriteTimeout = d
			}
		case "charset":
			if err := cfg.Apply(mysql.Charset(vs[0], "")); err != nil {
				return nil, fmt.Errorf("%w: charset=%q: %v", ErrInvalid, vs[0], err)
			}
		default:
			cfg.Params[k] = vs[0]
		}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	return cfg, nil
}

// quoted is s for an error message: redacted and quoted, or not shown at all when a
// word of a password it held also stands elsewhere in it (a host named like the
// password), where the redacted text would still show it.
func quoted(s string) string {
	r := Redact(s)
	if r != s {
		pre, suf := 0, 0
		for pre < len(s) && pre < len(r) && s[pre] == r[pre] {
			pre++
		}
		for suf < len(s)-pre && suf < len(r)-pre && s[len(s)-1-suf] == r[len(r)-1-suf] {
			suf++
		}
		hidden := s[pre : len(s)-suf]
		for _, w := range strings.FieldsFunc(hidden, func(c rune) bool { return !unicode.IsLetter(c) && !unicode.IsDigit(c) }) {
			if len(w) >= 4 && strings.Contains(r, w) {
				return "(not shown: it holds a password that also appears elsewhere in it)"
			}
		}
	}
	return strconv.Quote(r)
}

// Redacted is what Redact puts where a password was.
const Redacted = "xxxxx"

// Redact hides every password in s, which may be a DSN or broker URL of any form the
// drivers accept, or a message quoting one:
//
//   - URL user info, well-formed or not: mysql://u:PASS@h/db, tcp://u:PASS@broker:1883,
//     the one-slash typo mysql:/u:PASS@h/db, a password holding @, : or / (from the
//     first ':' before the user's '@' up to the last '@' of the word);
//   - the MySQL driver's own form u:PASS@tcp(h:3306)/db, u:PASS@/db;
//   - key=value settings: ADO/SQL Server "Password=PASS;" and "pwd=PASS", ODBC
//     "PWD={PASS}" (with "}}" for a '}' inside the braces), sqlserver://h?password=PASS,
//     any key ending in password, passwd, pwd or secret, quoted values included.
//
// It errs on the side of hiding too much: what is shown of a DSN is for a person
// to recognise it, and a cut host name costs less than a printed password.
func Redact(s string) string {
	if s == "" {
		return s
	}
	return redactKeyValues(redactUserInfo(s))
}

// wordBreak ends the word that holds user info: white space and the quotes a message
// puts around a DSN. Nothing else: a password may hold any other character, and the
// last '@' of a word, not the first, ends the user info.
func wordBreak(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '"', '\'', '`':
		return true
	}
	return false
}

// redactUserInfo hides the PASS of USER:PASS@ in every word of s (the text between
// white space and quotes).
func redactUserInfo(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	var b strings.Builder
	start := 0 // of the current word
	for start < len(s) {
		end := start
		for end < len(s) && !wordBreak(s[end]) {
			end++
		}
		b.WriteString(redactWord(s[start:end]))
		if end < len(s) {
			b.WriteByte(s[end])
		}
		start = end + 1
	}
	return b.String()
}

func redactWord(w string) string {
	at := strings.LastIndexByte(w, '@')
	if at < 0 {
		return w
	}
	info := 0 // where the user info starts: after SCHEME:// or a known SCHEME:/ (a typo)
	if c := strings.IndexByte(w, ':'); c > 0 && isScheme(w[:c]) {
		switch rest := w[c+1:]; {
		case strings.HasPrefix(rest, "//"):
			info = c + 3
		case strings.HasPrefix(rest, "/") && slices.Contains(knownSchemes, strings.ToLower(w[:c])):
			info = c + 2
		}
	}
	// A user name holds no '@', so the ':' that starts the password comes before the
	// first '@'; the password runs to the last one (it may hold '@' itself).
	first := info + strings.IndexByte(w[info:], '@')
	colon := strings.IndexByte(w[info:first], ':')
	if colon < 0 {
		return w // a user without a password, or an address
	}
	pass := info + colon + 1
	if w[pass:at] == Redacted {
		return w
	}
	return w[:pass] + Redacted + w[at:]
}

// knownSchemes are those whose one-slash typo (mysql:/u:p@h) is read as the scheme: for
// another word, "x:/..." is more likely a user x whose password starts with "/".
var knownSchemes = []string{"mysql", "sqlserver", "sqlite", "odbc", "postgres", "tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss", "http", "https"}

func isScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// redactKeyValues hides the value of every KEY=VALUE whose key ends in password, passwd
// or pwd (any case): up to the next ; & or space, or the closing quote or brace.
func redactKeyValues(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			continue
		}
		// Compared in place (strings.ToLower may change the length of the text).
		key := strings.TrimRight(s[last:i], " ")
		if !hasSuffixFold(key, "password") && !hasSuffixFold(key, "passwd") && !hasSuffixFold(key, "pwd") && !hasSuffixFold(key, "secret") {
			continue
		}
		v := i + 1
		for v < len(s) && s[v] == ' ' {
			v++
		}
		end := v
		switch {
		case end < len(s) && (s[end] == '"' || s[end] == '\'' || s[end] == '{'):
			// A quoted or braced value: hide what is inside, keep the quotes.
			closer := s[end]
			if closer == '{' {
				closer = '}'
			}
			if q := closingQuote(s[v+1:], closer); q >= 0 {
				v++
				end = v + q
				break
			}
			end++ // unclosed: a plain value that starts with the quote
			fallthrough
		default:
			for end < len(s) && !strings.ContainsRune(";& \t\n\r\"'", rune(s[end])) {
				end++
			}
		}
		if s[v:end] == Redacted || v == end {
			continue
		}
		b.WriteString(s[last:v])
		b.WriteString(Redacted)
		last = end
		i = end - 1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// closingQuote is the index in s of the quote that closes a value: the first closer,
// except that in an ODBC braced value "}}" is an escaped '}' inside it.
func closingQuote(s string, closer byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] != closer {
			continue
		}
		if closer == '}' && i+1 < len(s) && s[i+1] == '}' {
			i++
			continue
		}
		return i
	}
	return -1
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}
