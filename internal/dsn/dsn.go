// Package dsn parses the data source names rpt accepts in flags, the environment and
// rpt.yaml: "sqlite:PATH" and "mysql://user:pass@host:port/db?param=value", and turns
// them into what the database drivers take. Redact hides passwords for messages.
package dsn

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

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
	return "", fmt.Errorf("%w: %q: want sqlite:PATH or mysql://user:pass@host:port/db", ErrInvalid, Redact(s))
}

// SQLitePath returns the file path of a "sqlite:PATH" DSN (query parameters dropped).
func SQLitePath(s string) (string, error) {
	p, ok := strings.CutPrefix(s, "sqlite:")
	if !ok {
		return "", fmt.Errorf("%w: %q is not sqlite:PATH", ErrInvalid, Redact(s))
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
		return nil, fmt.Errorf("%w: %q: want mysql://user:pass@host:port/db", ErrInvalid, Redact(s))
	}
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" && u.Host != "" {
		cfg.Addr = u.Host + ":3306"
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: %q has no host", ErrInvalid, Redact(s))
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

// Redact replaces the password of a URL-shaped DSN with "xxxxx" so it can be shown.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i := strings.LastIndex(s, "@"); i >= 0 && strings.Contains(s[:i], ":") {
			if j := strings.Index(s, "://"); j >= 0 && j < i {
				return s[:j+3] + "xxxxx" + s[i:]
			}
		}
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
