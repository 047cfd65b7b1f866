package cli_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"rpt/cli"
	"rpt/internal/dsn"
	"rpt/internal/source"
	"rpt/internal/testenv"
)

// leakPW is the password every form below carries; it must never be printed or logged.
const leakPW = "S3cr3t-Pw-451"

// Source DSNs in every form a driver accepts (and the mistakes people make), each
// aimed at a port where nothing listens. valid: rpt.yaml loads and the job fails at run.
var leakSources = []struct {
	name, driver, dsn string
	valid             bool
}{
	{"mysql-url", "mysql", "mysql://rpt:" + leakPW + "@127.0.0.1:1/rpt?timeout=1s", true},
	{"mysql-url-at-in-password", "mysql", "mysql://rpt:" + url.QueryEscape(leakPW+"@x") + "@127.0.0.1:1/rpt?timeout=1s", true},
	{"mysql-driver-form", "mysql", "rpt:" + leakPW + "@tcp(127.0.0.1:1)/rpt", false},
	{"mysql-one-slash", "mysql", "mysql:/rpt:" + leakPW + "@127.0.0.1:1/rpt", false},
	{"mysql-given-ado", "mysql", "Server=127.0.0.1;Port=1;User ID=rpt;Password=" + leakPW + ";Database=rpt", false},
	{"sqlserver-url", "sqlserver", "sqlserver://sa:" + leakPW + "@127.0.0.1:1?database=dw&dial+timeout=1", true},
	{"sqlserver-query-password", "sqlserver", "sqlserver://sa@127.0.0.1:1?database=dw&password=" + leakPW + "&dial+timeout=1", true},
	{"sqlserver-ado", "sqlserver", "server=127.0.0.1;port=1;user id=sa;Password=" + leakPW + ";database=dw;dial timeout=1", true},
	{"sqlserver-ado-pwd", "sqlserver", "server=127.0.0.1;port=1;uid=sa;pwd=" + leakPW + ";database=dw;dial timeout=1", true},
	{"sqlserver-odbc-braces", "sqlserver", "odbc:server=127.0.0.1;port=1;uid=sa;pwd={" + leakPW + "};database=dw;dial timeout=1", true},
	// ODBC connection strings: this (pure-Go) build says it has no ODBC; its agents do not
	// serve the source, so these are run directly only.
	{"odbc-dsn", "odbc", "DSN=Plex;UID=rpt;PWD=" + leakPW, true},
	{"odbc-driver-braces", "odbc", "Driver={MariaDB Unicode};Server=127.0.0.1;Port=1;UID=rpt;PWD={" + leakPW + ";}}x}", true},
}

// Broker URLs with a password, well-formed and mistyped.
var leakBrokers = []string{
	"tcp://rpt:" + leakPW + "@127.0.0.1:1",
	"mqtt://rpt:" + leakPW + "@127.0.0.1:1",
	"tcp:/rpt:" + leakPW + "@127.0.0.1:1",
	"tcp://rpt@127.0.0.1:1?password=" + leakPW,
	"ftp://rpt:" + leakPW + "@127.0.0.1:1",
	"tcp://rpt:" + leakPW + "%zz@127.0.0.1:1", // a bad escape: the parse error quotes it
}

// Queue DSNs with a password, in the forms people write.
var leakQueues = []string{
	"mysql://rpt:" + leakPW + "@127.0.0.1:1/rpt?timeout=1s",
	"rpt:" + leakPW + "@tcp(127.0.0.1:1)/rpt",
	"mysql:/rpt:" + leakPW + "@127.0.0.1:1/rpt",
	"Server=127.0.0.1;User ID=rpt;Password=" + leakPW + ";Database=rpt",
	"mysql://rpt:" + leakPW + "@/rpt",
}

// TestLeakEveryForm runs each DSN and broker URL form through the paths a user sees:
// config loading, `reports run`, a queued job run by an in-process agent (its log, the
// job's error in `jobs show`, the events), commands with --queue and --mqtt, an agent on
// an unreachable broker, and the `rpt server` banner; the password is never in any of it.
func TestLeakEveryForm(t *testing.T) {
	work := t.TempDir()
	isolateEnv(t, work)
	var all strings.Builder
	var checked int
	check := func(what, text string) {
		t.Helper()
		checked++
		all.WriteString(text)
		for _, leak := range []string{leakPW, url.QueryEscape(leakPW), "Pw-451", "%zz"} {
			if i := strings.Index(text, leak); i >= 0 {
				t.Errorf("%s shows the password: ...%s...", what, text[max(0, i-200):min(len(text), i+60)])
			}
		}
	}
	run := func(args ...string) (int, string) {
		t.Helper()
		code, stdout, stderr := runCLI(t, context.Background(), args)
		check(strings.Join(args, " "), stdout+stderr)
		return code, stdout + stderr
	}

	writeFile(t, filepath.Join(work, "good.db"), nil)
	var valid strings.Builder
	valid.WriteString("timezone: UTC\nreports: [defs]\nsources:\n  good: {driver: sqlite, dsn: \"sqlite:" + filepath.Join(work, "good.db") + "\"}\n")
	writeFile(t, filepath.Join(work, "defs", "ok.yaml"), []byte("name: ok\nsource: good\nsql: SELECT 1 AS one\n"))
	for i, s := range leakSources {
		def := fmt.Sprintf("name: r%d\nsource: s%d\nmax_attempts: 1\nsql: SELECT 1 AS one\n", i, i)
		writeFile(t, filepath.Join(work, "defs", fmt.Sprintf("r%d.yaml", i)), []byte(def))
		if s.valid {
			fmt.Fprintf(&valid, "  s%d: {driver: %s, dsn: %q}\n", i, s.driver, s.dsn)
			continue
		}
		// A form rpt.yaml refuses: the config error, in every command.
		cfg := filepath.Join(work, fmt.Sprintf("bad%d.yaml", i))
		writeFile(t, cfg, fmt.Appendf(nil, "reports: [defs]\nsources:\n  s%d: {driver: %s, dsn: %q}\n", i, s.driver, s.dsn))
		if code, out := run("--config", cfg, "reports", "run", fmt.Sprintf("r%d", i)); code != cli.ExitUsage || !strings.Contains(out, "xxxxx") {
			t.Errorf("%s: exit %d, want 2 with the DSN shown redacted:\n%s", s.name, code, out)
		}
	}
	cfgPath := filepath.Join(work, "rpt.yaml")
	writeFile(t, cfgPath, []byte(valid.String()))
	migrate(t, cfgPath)

	// Each valid form: run directly, then queued through an agent.
	for i, s := range leakSources {
		if !s.valid {
			continue
		}
		if code, out := run("--config", cfgPath, "reports", "run", fmt.Sprintf("r%d", i)); code == cli.ExitOK {
			t.Errorf("%s: reports run succeeded against nothing:\n%s", s.name, out)
		}
	}
	logs, stop := startAgent(t, "--config", cfgPath)
	var ids []string
	for i, s := range leakSources {
		if !s.valid || s.driver == source.DriverODBC {
			continue
		}
		code, out := run("--config", cfgPath, "submit", fmt.Sprintf("r%d", i), "--wait", "--timeout", "2m")
		if code != cli.ExitJobFailed {
			t.Errorf("%s: submit --wait exit %d, want 1 (the source is unreachable):\n%s", s.name, code, out)
		}
		ids = append(ids, strings.Fields(out)[0])
	}
	for _, id := range ids {
		run("--config", cfgPath, "jobs", "show", id)
		run("--config", cfgPath, "jobs", "show", id, "-o", "json")
		run("--config", cfgPath, "watch", id, "--history")
	}
	run("--config", cfgPath, "jobs", "list", "-o", "json")
	stop()
	check("agent log", logs.String())

	// Queue DSNs as --queue and RPT_QUEUE.
	for _, q := range leakQueues {
		if code, out := run("--retry-for", "0", "--queue", q, "jobs", "list"); code == cli.ExitOK {
			t.Errorf("--queue %s: exit 0:\n%s", q, out)
		}
	}
	// Broker URLs: as --mqtt to a command that publishes, to an agent, and in the banner.
	for _, b := range leakBrokers {
		run("--config", cfgPath, "--mqtt", b, "submit", "ok")
		run("--config", cfgPath, "--mqtt", b, "jobs", "list")
		cfg := filepath.Join(work, "mqtt.yaml")
		writeFile(t, cfg, []byte("mqtt: "+fmt.Sprintf("%q", b)+"\n"))
		run("--config", cfg, "jobs", "list")
		check("server "+b, runUntil(t, "rpt server:", "--config", cfgPath, "--mqtt", b, "server", "--broker", ""))
		check("agent "+b, runUntil(t, `"agent started"`, "--config", cfgPath, "--mqtt", b, "agent", "--name", "leak"))
	}
	if !strings.Contains(all.String(), "rpt server: queue ") {
		t.Errorf("the server banner was never printed: the test did not check it")
	}
	if n := strings.Count(all.String(), "xxxxx"); n < len(leakQueues)+len(leakBrokers) {
		t.Errorf("only %d redacted values in the output: the test did not print what it means to check", n)
	}
	t.Logf("%d outputs, %d bytes checked", checked, all.Len())
}

// runUntil runs a long-running rpt command in-process until its output holds want (or
// five seconds pass), then stops it and returns everything it printed.
func runUntil(t *testing.T, want string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("rpt %v panicked: %v\n%s", args, r, debug.Stack())
			}
		}()
		d := cli.Deps{OpenQueue: openQueue, OpenSource: source.Open, Version: "test", Stdout: out, Stderr: out}
		cli.Main(ctx, append([]string{"rpt"}, args...), d)
	}()
	deadline := time.After(5 * time.Second)
wait:
	for !strings.Contains(out.String(), want) {
		select {
		case <-done:
			break wait
		case <-deadline:
			t.Errorf("rpt %v: no %q within 5s: %s", args, want, out.String())
			break wait
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Let a broker connect attempt fail and be logged before stopping.
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	return out.String()
}

// TestLeakMariaDBQueue: a MariaDB queue reached with a password (a user made for the
// test) through the commands, an agent and `rpt server` with its embedded broker; the
// banner names the queue, and no output holds the password.
func TestLeakMariaDBQueue(t *testing.T) {
	root := testenv.MariaDB(t)
	cfg, err := dsn.MySQL(root)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(must(mysql.NewConnector(cfg)))
	defer db.Close()
	var b [4]byte
	_, _ = rand.Read(b[:])
	user := "rpt_leak_" + hex.EncodeToString(b[:])
	for _, stmt := range []string{
		"CREATE USER '" + user + "'@'%' IDENTIFIED BY '" + leakPW + "'",
		"GRANT ALL ON `" + cfg.DBName + "`.* TO '" + user + "'@'%'",
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Skipf("cannot make a user with a password: %v", err)
		}
	}
	t.Cleanup(func() { _, _ = db.Exec("DROP USER '" + user + "'@'%'") })
	u, _ := url.Parse(root)
	u.User = url.UserPassword(user, leakPW)
	queue := u.String()

	work := t.TempDir()
	isolateEnv(t, work)
	var all strings.Builder
	for _, args := range [][]string{
		{"--queue", queue, "db", "migrate"},
		{"--queue", queue, "jobs", "list"},
		{"--queue", queue, "--mqtt", "tcp://rpt:" + leakPW + "@127.0.0.1:1", "submit", "trial-balance"},
	} {
		code, stdout, stderr := runCLI(t, context.Background(), args)
		if code != 0 {
			t.Fatalf("rpt %v: exit %d: %s", args, code, stderr)
		}
		all.WriteString(stdout + stderr)
	}
	banner := runUntil(t, "rpt server:", "--queue", queue, "server", "--broker", "127.0.0.1:0")
	all.WriteString(banner)
	all.WriteString(runUntil(t, `"agent started"`, "--queue", queue, "--mqtt", "tcp://rpt:"+leakPW+"@127.0.0.1:1", "agent", "--name", "leak"))
	if !strings.Contains(banner, "rpt server: queue mysql://"+user+":xxxxx@") {
		t.Errorf("the banner does not name the queue redacted:\n%s", banner)
	}
	if i := strings.Index(all.String(), leakPW); i >= 0 {
		t.Errorf("password shown: ...%s...", all.String()[max(0, i-200):min(all.Len(), i+60)])
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
