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

// passwordForms are the DSN and broker URL forms rpt and its drivers accept, with
// PASS where the password goes. Redact(form with a password) must equal the form with
// Redacted in its place: nothing else changes, and nothing of the password is left.
var passwordForms = []string{
	"mysql://rpt:PASS@db:3306/rpt?timeout=5s",
	"mysql://rpt:PASS@db/rpt",
	"mysql:/rpt:PASS@db/rpt",                     // one slash
	"rpt:PASS@tcp(db:3306)/rpt?parseTime=true",   // the go-sql-driver form
	"rpt:PASS@/rpt",                              // its localhost form
	"rpt:PASS@unix(/run/mysqld/mysqld.sock)/rpt", // its socket form
	"sqlserver://sa:PASS@plex.example:1433?database=dw",
	"sqlserver://sa@plex.example:1433?database=dw&password=PASS",
	"sqlserver://plex.example?password=PASS&database=dw",
	"server=plex.example;user id=sa;Password=PASS;database=dw",
	"Server=plex;UID=sa;PWD=PASS",
	"Driver={ODBC Driver 18};Server=plex;Uid=sa;Pwd={PASS};",
	`Server=plex;User ID=sa;Password="PASS";`,
	"Server=plex;User ID=sa;Password = PASS",
	"tcp://rpt:PASS@broker:1883",
	"mqtt://rpt:PASS@broker",
	"ssl://agent-1:PASS@broker.example:8883",
	"wss://rpt:PASS@broker.example/mqtt",
	"tcp:/rpt:PASS@broker:1883",
	"https://rpt:PASS@plex.example/api",
	"odbc://DSN=Plex;UID=rpt;PWD=PASS",
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"mysql://rpt:s3cret@h:3306/rpt":      "mysql://rpt:xxxxx@h:3306/rpt",
		"mysql://rpt@h/rpt":                  "mysql://rpt@h/rpt",
		"mysql://rpt@h:3306/rpt?x=a@b":       "mysql://rpt@h:3306/rpt?x=a@b",
		"sqlite:/x.db":                       "sqlite:/x.db",
		"sqlite:/data/a@b.db":                "sqlite:/data/a@b.db",
		"mysql://rpt:xxxxx@h/rpt":            "mysql://rpt:xxxxx@h/rpt",
		"mysql://rpt:p%zzw@db/rpt":           "mysql://rpt:xxxxx@db/rpt",
		"mysql://rpt:p@ss:w/rd@db/rpt":       "mysql://rpt:xxxxx@db/rpt",
		"DSN=Plex":                           "DSN=Plex",
		"mail ops@example.com at 10:30":      "mail ops@example.com at 10:30",
		"password=":                          "password=",
		"\u212a\u212a\u212a PASSWORD=s3cret": "\u212a\u212a\u212a PASSWORD=xxxxx", // Kelvin signs lower-case to fewer bytes
		"Access denied for user 'rpt'@'h'":   "Access denied for user 'rpt'@'h'",
		// No slash at all: the user goes too (the scheme is not told from a user).
		"mysql:rpt:s3cret@db/rpt": "mysql:xxxxx@db/rpt",
		// In a message: each DSN in it, and the text around it kept.
		`open queue "mysql://rpt:s3cret@db/rpt": refused; also tcp://u:s3cret@b:1883`: `open queue "mysql://rpt:xxxxx@db/rpt": refused; also tcp://u:xxxxx@b:1883`,
		"login failed (server=h;password=s3cret;user=sa)":                             "login failed (server=h;password=xxxxx;user=sa)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	for _, form := range passwordForms {
		for _, pass := range []string{"s3cret", "p@ss:w/rd", "S3cr3t!#%zz", "pa?ss"} {
			if strings.Contains(form, "{PASS}") || strings.Contains(form, `"PASS"`) || strings.Contains(form, "@") {
				// any password fits these
			} else if strings.ContainsAny(pass, "&;") {
				continue
			}
			in := strings.Replace(form, "PASS", pass, 1)
			want := strings.Replace(form, "PASS", Redacted, 1)
			if got := Redact(in); got != want {
				t.Errorf("Redact(%q) = %q, want %q", in, got, want)
			}
			if got := Redact("open source x: " + in + ": connection refused"); strings.Contains(got, pass) {
				t.Errorf("in a message: %q", got)
			}
		}
	}
}

// FuzzRedact: Redact never panics, is idempotent, hides the seeds' password, and for
// every form of passwordForms with the fuzzed text as password gives exactly the form
// with Redacted in its place.
func FuzzRedact(f *testing.F) {
	f.Add("mysql://u:secretpw@h:1/db")
	f.Add("p@ss:w/rd")
	f.Add("a=b;password=c")
	for _, s := range dsnSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := Redact(s)
		if strings.HasPrefix(s, "mysql://u:secretpw@") && strings.Contains(r, "secretpw") {
			t.Errorf("Redact(%q) = %q shows the password", s, r)
		}
		if again := Redact(r); again != r {
			t.Errorf("Redact not idempotent: %q -> %q -> %q", s, r, again)
		}
		// s as a password: it may hold anything a DSN keeps inside a password.
		if s == "" || s == Redacted || strings.ContainsAny(s, " \t\n\r\"'`=") {
			return
		}
		slash := strings.HasPrefix(s, "/") // "rpt:/x:y@h" is also the scheme rpt, user x
		if strings.HasPrefix(s, "{") {
			return // "pwd={...}" is a braced value, so such a password is shown differently
		}
		for _, form := range passwordForms {
			switch {
			case strings.Contains(form, "{PASS}") && strings.Contains(s, "}"),
				!strings.Contains(form, "@") && strings.ContainsAny(s, ";&"),
				strings.Contains(form, "@") && strings.Contains(form, "password") && strings.ContainsAny(s, ";&"),
				slash && strings.HasPrefix(form, "rpt:PASS"):
				continue
			}
			in := strings.Replace(form, "PASS", s, 1)
			want := strings.Replace(form, "PASS", Redacted, 1)
			if got := Redact(in); got != want {
				t.Errorf("Redact(%q) = %q, want %q", in, got, want)
			}
		}
	})
}
