package dsn

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestScheme(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"sqlite:/tmp/x.db": "sqlite", "mysql://u@h/db": "mysql", "sqlserver://h": "sqlserver"} {
		if got, err := Scheme(in); err != nil || got != want {
			t.Errorf("Scheme(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "postgres://u:pw@h/db", "/tmp/x.db"} {
		_, err := Scheme(bad)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Scheme(%q) error = %v, want ErrInvalid", bad, err)
		}
		if strings.Contains(err.Error(), "pw") {
			t.Errorf("Scheme(%q) error shows the password: %v", bad, err)
		}
	}
}

func TestSQLitePath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"sqlite:/tmp/x.db": "/tmp/x.db", "sqlite:rel/x.db?mode=ro": "rel/x.db", "sqlite:///abs.db": "/abs.db"} {
		if got, err := SQLitePath(in); err != nil || got != want {
			t.Errorf("SQLitePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"sqlite:", "mysql://h/db"} {
		if _, err := SQLitePath(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("SQLitePath(%q) error = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestMySQL(t *testing.T) {
	t.Parallel()
	cfg, err := MySQL("mysql://rpt:s3cret@reports31:30031/rpt?timeout=2s&tls=false")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User != "rpt" || cfg.Passwd != "s3cret" || cfg.Addr != "reports31:30031" || cfg.DBName != "rpt" {
		t.Errorf("config = %+v", cfg)
	}
	if cfg.Timeout != 2*time.Second || !cfg.ParseTime || cfg.Loc != time.UTC {
		t.Errorf("timeout %v parseTime %v loc %v", cfg.Timeout, cfg.ParseTime, cfg.Loc)
	}
	if _, ok := cfg.Params["charset"]; ok {
		t.Errorf("charset must not be a session variable (MariaDB rejects SET charset): %v", cfg.Params)
	}
	if !strings.Contains(cfg.FormatDSN(), "charset=utf8mb4") {
		t.Errorf("FormatDSN() = %q, want utf8mb4", cfg.FormatDSN())
	}
	cfg, err = MySQL("mysql://root@127.0.0.1/")
	if err != nil || cfg.Addr != "127.0.0.1:3306" {
		t.Errorf("default port: %+v, %v", cfg, err)
	}
	for _, bad := range []string{"mysql://", "mysql://h/db?timeout=soon", "http://h/db"} {
		if _, err := MySQL(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("MySQL(%q) error = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"mysql://rpt:s3cret@h:3306/rpt": "mysql://rpt:xxxxx@h:3306/rpt",
		"mysql://rpt@h/rpt":             "mysql://rpt@h/rpt",
		"sqlite:/x.db":                  "sqlite:/x.db",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzRedact(f *testing.F) {
	f.Add("mysql://u:secretpw@h:1/db")
	f.Fuzz(func(t *testing.T, s string) {
		_ = Redact(s)
		if strings.HasPrefix(s, "mysql://u:secretpw@") && strings.Contains(Redact(s), "secretpw") {
			t.Errorf("Redact(%q) = %q shows the password", s, Redact(s))
		}
	})
}
