package mysql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"

	"rpt/internal/dsn"
	"rpt/internal/errclass"
	"rpt/internal/queue"
	"rpt/internal/testenv"
)

// The server's refusals at open, against a real MariaDB: an unknown database (1049),
// a wrong password (1045), a user without access to the database (1044), and an
// unmigrated queue (1146). Each is class Unavailable (exit 5) with what to do, not
// queue.ErrUnavailable (waiting would not help, so nothing retries it), keeps the
// driver's text, and never shows the password.
func TestOpenRefusalsSayWhatToDo(t *testing.T) {
	base := testenv.MariaDB(t) // a fresh, unmigrated database of this test's own
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	ctx := context.Background()

	// A user of its own with a password and no grants, dropped at the end.
	cfg, err := dsn.MySQL(base)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var b [4]byte
	rand.Read(b[:])
	user, pw := "rpt_t_"+hex.EncodeToString(b[:]), "Pw-"+hex.EncodeToString(b[:])+"-secret"
	if _, err := admin.Exec("CREATE USER '" + user + "'@'%' IDENTIFIED BY '" + pw + "'"); err != nil {
		t.Fatalf("create user: %v", err)
	}
	t.Cleanup(func() { admin.Exec("DROP USER IF EXISTS '" + user + "'@'%'") })

	withUser := func(name, pass, db string) string {
		v := *u
		v.User = url.UserPassword(name, pass)
		v.Path = "/" + db
		return v.String()
	}
	open := func(dsnText string) error {
		s, err := Open(ctx, dsnText, queue.Options{})
		if err == nil {
			defer s.Close()
			_, err = s.JobList(ctx, queue.JobListParams{Limit: 1})
		}
		return err
	}
	for _, tc := range []struct {
		name, dsn string
		want      []string
	}{
		{"unknown database", withUser("root", "", dbName+"_missing"),
			[]string{"Error 1049", "create it: CREATE DATABASE `" + dbName + "_missing`", "rpt db migrate"}},
		{"wrong password", withUser(user, "not-"+pw, dbName),
			[]string{"Error 1045", `refused user "` + user + `"`, "check the user and password in --queue"}},
		{"no access to the database", withUser(user, pw, dbName),
			[]string{"Error 1044", `user "` + user + `" may not use queue database "` + dbName + `"`, "GRANT"}},
		{"unmigrated queue", base,
			[]string{"Error 1146", "run `rpt db migrate`"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := open(tc.dsn)
			if err == nil {
				t.Fatal("no error")
			}
			if c, ok := errclass.Of(err); !ok || c != errclass.Unavailable || c.Exit() != 5 {
				t.Errorf("class %v (classified %v), want unavailable (exit 5)", c, ok)
			}
			if errors.Is(err, queue.ErrUnavailable) {
				t.Error("wraps queue.ErrUnavailable: commands would retry what waiting cannot fix")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q\n does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("the password shows: %q", err)
			}
		})
	}
}
