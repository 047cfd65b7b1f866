package dsn

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// dsnSeeds are well-formed and malformed DSNs, from the bad-input catalogue
// (testdata/bad/config-*) and the shapes rpt.yaml uses.
var dsnSeeds = []string{
	"", "sqlite:", "sqlite:", "sqlite:rpt.db", "sqlite:///var/lib/rpt/rpt.db?_pragma=busy_timeout(10000)",
	"mysql://", "mysql://rpt:secretpw@/rpt", "mysql://rpt:secretpw@db:3306/rpt?timeout=soon",
	"mysql://rpt@db/rpt?timeout=1s&readTimeout=2m&charset=latin1", "mysql://rpt:secretpw@[::1]:3306/rpt",
	"mysql://rpt:secretpw@db:3306/rpt?charset=nope", "mysql://rpt:p%zzw@db/rpt", "mysql://db:notaport/x",
	"postgres://rpt:secretpw@db/rpt", "sqlserver://sa:secretpw@host?database=dw", "DSN=Plex", "mysql:/x",
	"mysql://u:secretpw@h:1/db?timeout=-5s", "mysql://u:secretpw@h:1/db?%",
}

// hasSeedPassword reports whether s is URL-shaped with the seeds' password in its
// user info: SCHEME://USER:secretpw@... (elsewhere "secretpw" is just text).
func hasSeedPassword(s string) bool {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" || strings.ContainsAny(scheme, "/?#@:") {
		return false
	}
	user, _, ok := strings.Cut(rest, ":secretpw@")
	return ok && !strings.ContainsAny(user, "/?#@:") && strings.Count(rest, "@") == 1
}

// FuzzScheme: any text gives a known scheme or an ErrInvalid error without a password.
func FuzzScheme(f *testing.F) {
	for _, s := range dsnSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scheme, err := Scheme(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Scheme(%q): error not ErrInvalid: %v", s, err)
			}
			if hasSeedPassword(s) && strings.Contains(err.Error(), "secretpw") {
				t.Fatalf("Scheme(%q): error shows the password: %v", s, err)
			}
			return
		}
		if scheme != "sqlite" && scheme != "mysql" && scheme != "sqlserver" {
			t.Fatalf("Scheme(%q) = %q", s, scheme)
		}
		if scheme == "sqlite" {
			if p, err := SQLitePath(s); err == nil && p == "" {
				t.Fatalf("SQLitePath(%q) is empty without an error", s)
			}
		}
	})
}

// FuzzMySQL: any text gives a driver config with the settings rpt relies on, or an
// ErrInvalid error that never shows the password.
func FuzzMySQL(f *testing.F) {
	for _, s := range dsnSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := MySQL(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("MySQL(%q): error not ErrInvalid: %v", s, err)
			}
			if hasSeedPassword(s) && strings.Contains(err.Error(), "secretpw") {
				t.Fatalf("MySQL(%q): error shows the password: %v", s, err)
			}
			return
		}
		if cfg.Addr == "" || !cfg.ParseTime || cfg.Loc != time.UTC || cfg.Timeout == 0 {
			t.Fatalf("MySQL(%q) = addr %q parseTime %v loc %v timeout %v", s, cfg.Addr, cfg.ParseTime, cfg.Loc, cfg.Timeout)
		}
		_ = cfg.FormatDSN()
	})
}
