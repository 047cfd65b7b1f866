package dsn

import (
	"errors"
	"strings"
	"testing"
)

func TestODBC(t *testing.T) {
	t.Parallel()
	attrs, err := ODBC("Driver={MariaDB Unicode};Server = db ;Database=plex;UID=rpt;PWD={p;w=}}x};")
	if err != nil {
		t.Fatal(err)
	}
	want := []ODBCAttr{{"Driver", "MariaDB Unicode"}, {"Server", "db"}, {"Database", "plex"}, {"UID", "rpt"}, {"PWD", "p;w=}x"}}
	if len(attrs) != len(want) {
		t.Fatalf("ODBC = %q, want %q", attrs, want)
	}
	for i := range want {
		if attrs[i] != want[i] {
			t.Errorf("attr %d = %q, want %q", i, attrs[i], want[i])
		}
	}
	for _, ok := range []string{"DSN=Plex", "dsn=Plex;", "FILEDSN=/etc/plex.dsn", " DSN = Plex ; UID = me "} {
		if _, err := ODBC(ok); err != nil {
			t.Errorf("ODBC(%q): %v", ok, err)
		}
	}
	for bad, msg := range map[string]string{
		"":                               "names no data source",
		"Server=db;UID=rpt;PWD=s3cret":   "names no data source",
		"DSN=Plex;PWD={s3cret":           "never closes",
		"DSN=Plex;PWD={s3cret}x":         "text after the braced value of PWD",
		"DSN=Plex;PWD=s3c}ret":           "holds a brace",
		"DSN=Plex;s3cret":                "attribute 2 has no '='",
		"DSN=Plex;dsn=Other":             "dsn is given twice",
		"DSN=Plex;{s3cret}=x":            "bad key",
		"mysql://rpt:s3cret@db:3306/rpt": "has no '='",
	} {
		_, err := ODBC(bad)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), msg) {
			t.Errorf("ODBC(%q) = %v, want ErrInvalid with %q", bad, err, msg)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ODBC(%q): the error shows the password: %v", bad, err)
		}
	}
}

// TestRedactODBC: a braced password ends at the brace that is not doubled, so a
// password holding '}' (written }}) is hidden whole.
func TestRedactODBC(t *testing.T) {
	t.Parallel()
	for _, pass := range []string{"s3cret", "a}b", "}}", "x;y=z", "{x}", "a}}b}", "}"} {
		in := "Driver={ODBC Driver 18 for SQL Server};Server=plex;UID=rpt;PWD=" + ODBCValue(pass) + ";Encrypt=yes"
		want := "Driver={ODBC Driver 18 for SQL Server};Server=plex;UID=rpt;PWD={" + Redacted + "};Encrypt=yes"
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
		attrs, err := ODBC(in)
		if err != nil || attrs[3].Value != pass {
			t.Errorf("ODBC(%q) = %q, %v; want PWD %q", in, attrs, err, pass)
		}
	}
	if got := Redact("DSN=Plex;KeyStoreSecret=s3cret"); strings.Contains(got, "s3cret") {
		t.Errorf("a key ending in secret: %q", got)
	}
}

// FuzzODBC: any text is a connection string or an ErrInvalid error; neither the error
// nor Redact of a string with the fuzzed text as its password shows that password, and
// the password reads back exactly.
func FuzzODBC(f *testing.F) {
	for _, s := range []string{
		"DSN=Plex", "Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Database=plex;UID=root",
		"DSN=Plex;UID=rpt;PWD={s3c;r}}et}", "DSN=Plex;PWD={", "Server=x", "a}}b", "}", "{", ";;=;", "DSN=Plex;pwd=a b",
	} {
		f.Add(s)
	}
	for _, s := range dsnSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := ODBC(s); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("ODBC(%q): error not ErrInvalid: %v", s, err)
		}
		if s == "" || strings.ContainsAny(s, "\x00") {
			return
		}
		conn := "DSN=Plex;UID=rpt;PWD=" + ODBCValue(s) + ";APP=rpt"
		attrs, err := ODBC(conn)
		if err != nil {
			t.Fatalf("ODBC(%q): %v", conn, err)
		}
		if len(attrs) != 4 || attrs[2].Value != s {
			t.Fatalf("ODBC(%q) = %q, want PWD %q", conn, attrs, s)
		}
		want := "DSN=Plex;UID=rpt;PWD={" + Redacted + "};APP=rpt"
		if got := Redact(conn); got != want {
			t.Fatalf("Redact(%q) = %q, want %q", conn, got, want)
		}
	})
}
