package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"rpt/cli"
	"rpt/internal/notify"
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
	// The embedded broker as rpt server runs it (its passwords kept with the queue): the
	// agent's account reads the agent's password and connects in its role, which the
	// retained presence shows (only rpt-agent may publish it); the submitter connects as
	// rpt-client with the password its grants let it read.
	creds, err := notify.BrokerCredentials(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	creds.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	broker, err := notify.StartBroker(ctx, "127.0.0.1:0", creds)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	subStore, err := mysql.Open(ctx, subDSN, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer subStore.Close()
	clientPw, ok, err := notify.StoredCredentials(ctx, subStore, notify.ClientUser)
	if err != nil || !ok || clientPw != creds.ClientPassword {
		t.Fatalf("the submitter reads the client's broker password: ok %v, err %v, right one %v", ok, err, clientPw == creds.ClientPassword)
	}
	watcher, err := notify.Connect(ctx, notify.Options{URL: broker.URL(), Username: notify.ClientUser, Password: clientPw, Logger: creds.Logger})
	if err != nil {
		t.Fatalf("the submitter connects to the broker: %v", err)
	}
	defer watcher.Close()
	up := make(chan struct{}, 1)
	watcher.SubscribePresence(func(p notify.Presence) {
		if p.Agent == "catalogue-agent" && p.State == "up" {
			select {
			case up <- struct{}{}:
			default:
			}
		}
	})
	logs, stop := startAgent(t, "--config", cfg, "--queue", agentDSN, "--mqtt", broker.URL())
	select {
	case <-up:
	case <-time.After(10 * time.Second):
		t.Fatalf("the agent (README agent grants) did not connect to the embedded broker as %s:\n%s", notify.AgentUser, logs.String())
	}
	code, out, errOut := as(subDSN, "--mqtt", broker.URL(), "--reports", defs, "submit", "one", "--wait", "--timeout", "60s")
	if code != 0 {
		t.Fatalf("submit --wait as submitter: exit %d: %s\nagent log:\n%s", code, errOut, logs.String())
	}
	id := strings.TrimSpace(out)
	code, out, errOut = as(subDSN, "get", id, "--csv")
	if code != 0 || out != "answer\n42\n" {
		t.Errorf("get as submitter: exit %d, stdout %q, stderr %s", code, out, errOut)
	}
	stop()
	if strings.Contains(logs.String(), "denied") || strings.Contains(logs.String(), "broker credentials") {
		t.Errorf("the agent met a refused statement:\n%s", logs.String())
	}
}

// TestSubmitterCannotReadTheAgentsBrokerPassword: with exactly the README's submitter
// grants, an account reads the client's broker password but not the agent's (which would
// let it publish forged agent events); the agent's grants read it.
func TestSubmitterCannotReadTheAgentsBrokerPassword(t *testing.T) {
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
	creds, err := notify.BrokerCredentials(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(rootDSN)
	db := strings.TrimPrefix(u.Path, "/")
	open := func(dsn string) *mysql.Store {
		s, err := mysql.Open(ctx, dsn, queue.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	sub := open(createRoleUser(t, st.DB(), rootDSN, db, "rpt_submitter"))
	agent := open(createRoleUser(t, st.DB(), rootDSN, db, "rpt_agent"))

	pw, ok, err := notify.StoredCredentials(ctx, sub, notify.AgentUser)
	if err == nil || ok || pw != "" {
		t.Errorf("the submitter read the agent's broker password (ok %v, err %v, right one %v)", ok, err, pw == creds.AgentPassword)
	} else if !strings.Contains(err.Error(), "denied") || strings.Contains(err.Error(), creds.AgentPassword) {
		t.Errorf("the submitter's refusal should be the database's denial, without the password: %v", err)
	}
	// Not through any other table either: no table the submitter reads holds it.
	var n int
	if err := sub.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM rpt_settings WHERE value = ?", creds.AgentPassword).Scan(&n); err != nil || n != 0 {
		t.Errorf("rpt_settings holds the agent's password in %d rows (%v)", n, err)
	}
	if err := sub.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM rpt_agent_secrets").Scan(&n); err == nil {
		t.Errorf("the submitter may SELECT from rpt_agent_secrets")
	}
	if pw, ok, err := notify.StoredCredentials(ctx, sub, notify.ClientUser); err != nil || !ok || pw != creds.ClientPassword {
		t.Errorf("the submitter reads the client's broker password: ok %v, err %v, right one %v", ok, err, pw == creds.ClientPassword)
	}
	if pw, ok, err := notify.StoredCredentials(ctx, agent, notify.AgentUser); err != nil || !ok || pw != creds.AgentPassword {
		t.Errorf("the agent reads its broker password: ok %v, err %v, right one %v", ok, err, pw == creds.AgentPassword)
	}
}
