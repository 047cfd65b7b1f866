package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"rpt/cli"
	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/testenv"
)

// readmeGrants returns the GRANT statements the README gives role (e.g. 'rpt_submitter'),
// so that the test checks the grants operators are told to use, not a copy of them.
func readmeGrants(t *testing.T, role string) []string {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "GRANT ") && strings.Contains(line, "'"+role+"'@'%'") {
			out = append(out, strings.TrimSuffix(line, ";"))
		}
	}
	if len(out) == 0 {
		t.Fatalf("README.md has no GRANT for %s", role)
	}
	return out
}

// createRoleUser creates a user on the test server with the README's grants of role,
// applied to database db, and returns a queue DSN that logs in as it.
func createRoleUser(t *testing.T, admin *sql.DB, rootDSN, db, role string) string {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	user := role + "_" + hex.EncodeToString(b[:])
	password := hex.EncodeToString(b[:]) + "Pw!"
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE USER '"+user+"'@'%' IDENTIFIED BY '"+password+"'"); err != nil {
		t.Fatalf("create user: %v", err)
	}
	t.Cleanup(func() { admin.Exec("DROP USER '" + user + "'@'%'") })
	for _, g := range readmeGrants(t, role) {
		g = strings.ReplaceAll(g, " rpt.", " `"+db+"`.")
		g = strings.ReplaceAll(g, "'"+role+"'@'%'", "'"+user+"'@'%'")
		if _, err := admin.ExecContext(ctx, g); err != nil {
			t.Fatalf("%s: %v", g, err)
		}
	}
	u, err := url.Parse(rootDSN)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// TestSubmitterGrantsCannotPublish: with exactly the README's submitter grants, an
// account can submit and cancel, but rpt reports publish is refused by the database
// (exit 5 as every missing grant, a message naming the admin role) and rpt_definitions stays empty.
func TestSubmitterGrantsCannotPublish(t *testing.T) {
	rootDSN := testenv.MariaDB(t)
	ctx := context.Background()
	st, err := mysql.Open(ctx, rootDSN, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(rootDSN)
	db := strings.TrimPrefix(u.Path, "/")
	subDSN := createRoleUser(t, st.DB(), rootDSN, db, "rpt_submitter")

	work := t.TempDir()
	t.Setenv("HOME", filepath.Join(work, "home"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(work, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(work, "config"))
	for _, k := range []string{"RPT_QUEUE", "RPT_CONFIG", "RPT_REPORTS", "RPT_MQTT"} {
		t.Setenv(k, "")
	}
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := cli.Main(ctx, append([]string{"rpt", "--queue", subDSN, "--retry-for", "0"}, args...), deps(&stdout, &stderr))
		return code, stdout.String(), stderr.String()
	}

	code, out, errOut := run("submit", "trial-balance")
	if code != 0 || strings.TrimSpace(out) != "1" {
		t.Fatalf("submit as submitter: exit %d, stdout %q, stderr %q; want job 1", code, out, errOut)
	}
	if code, _, errOut := run("jobs", "show", "1"); code != 0 {
		t.Errorf("jobs show as submitter: exit %d: %s", code, errOut)
	}
	if code, _, errOut := run("cancel", "1"); code != 0 {
		t.Errorf("cancel as submitter: exit %d: %s", code, errOut)
	}

	code, out, errOut = run("reports", "publish", "trial-balance")
	want := regexp.MustCompile(`^rpt: shipped:trial-balance.yaml: publish definition of report trial-balance: permission denied: ` +
		`publishing needs the admin role's grants \(INSERT on rpt_definitions\); the server said: Error 1142 \(42000\): INSERT command denied to user 'rpt_submitter_[0-9a-f]+'@'[^']+' for table .*rpt_definitions`)
	if code != cli.ExitUnreachable || !want.MatchString(errOut) || out != "" {
		t.Errorf("publish as submitter: exit %d, stdout %q, stderr %q; want exit %d and %s", code, out, errOut, cli.ExitUnreachable, want)
	}
	var n int
	if err := st.DB().QueryRow("SELECT COUNT(*) FROM rpt_definitions").Scan(&n); err != nil || n != 0 {
		t.Errorf("rpt_definitions has %d rows (%v) after the refused publish, want 0", n, err)
	}

	// The admin (here root) publishes the same report: the grants, not the command, decided.
	var stdout, stderr bytes.Buffer
	if code := cli.Main(ctx, []string{"rpt", "--queue", rootDSN, "reports", "publish", "trial-balance"}, deps(&stdout, &stderr)); code != 0 {
		t.Fatalf("publish as admin: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "trial-balance  ") || !strings.Contains(stdout.String(), "published") {
		t.Errorf("publish as admin printed %q", stdout.String())
	}
}

// TestRoleGrantsRunAJob: with exactly the README's grants, the three roles do their
// work on one MariaDB queue: the admin publishes, the agent (its own account) claims,
// runs and completes the job and stores its result, the submitter submits, waits and
// reads the result.
func TestRoleGrantsRunAJob(t *testing.T) {
	rootDSN := testenv.MariaDB(t)
	ctx := context.Background()
	st, err := mysql.Open(ctx, rootDSN, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(rootDSN)
	db := strings.TrimPrefix(u.Path, "/")
	subDSN := createRoleUser(t, st.DB(), rootDSN, db, "rpt_submitter")
	agentDSN := createRoleUser(t, st.DB(), rootDSN, db, "rpt_agent")

	work := t.TempDir()
	t.Setenv("HOME", filepath.Join(work, "home"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(work, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(work, "config"))
	for _, k := range []string{"RPT_QUEUE", "RPT_CONFIG", "RPT_REPORTS", "RPT_MQTT"} {
		t.Setenv(k, "")
	}
	defs := filepath.Join(work, "defs")
	if err := os.Mkdir(defs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(defs, "one.yaml"), []byte("name: one\nsource: db\nsql: SELECT 41 + 1 AS answer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(work, "rpt.yaml")
	// The source's login is not the queue's: here the test server's.
	if err := os.WriteFile(cfg, []byte("sources:\n  db: {driver: mysql, dsn: \""+rootDSN+"\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	as := func(dsn string, args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := cli.Main(ctx, append([]string{"rpt", "--config", cfg, "--queue", dsn, "--retry-for", "0"}, args...), deps(&stdout, &stderr))
		return code, stdout.String(), stderr.String()
	}
	if code, _, errOut := as(rootDSN, "--reports", defs, "reports", "publish", filepath.Join(defs, "one.yaml")); code != 0 {
		t.Fatalf("publish as admin: exit %d: %s", code, errOut)
	}
	logs, stop := startAgent(t, "--config", cfg, "--queue", agentDSN)
	code, out, errOut := as(subDSN, "--reports", defs, "submit", "one", "--wait", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("submit --wait as submitter: exit %d: %s\nagent log:\n%s", code, errOut, logs.String())
	}
	id := strings.TrimSpace(out)
	code, out, errOut = as(subDSN, "get", id, "--csv")
	if code != 0 || out != "answer\n42\n" {
		t.Errorf("get as submitter: exit %d, stdout %q, stderr %s", code, out, errOut)
	}
	stop()
	if strings.Contains(logs.String(), "denied") {
		t.Errorf("the agent met a refused statement:\n%s", logs.String())
	}
}
