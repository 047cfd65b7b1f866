package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/txtar"

	"rpt/cli"
	"rpt/internal/dsn"
	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/queue/sqlite"
	"rpt/internal/source"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/bad")

// catalogueDir is the catalogue of bad input: one NAME.txtar per case (its comment holds
// the directives, its files are written to the case's work dir) and NAME.golden with
// what rpt printed.
const catalogueDir = "../testdata/bad"

// fixedNow makes relative dates and messages the same on every run.
var fixedNow = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// badCase is one catalogue entry.
//
// Directives, one per line of the txtar comment after the description:
//
//	args: ARG...           the command line after "rpt" ($WORK is the case's dir)
//	exit: N                the expected exit code
//	env: NAME=VALUE        set for the run (repeatable)
//	setup: ARG...          a command run first that must succeed (repeatable)
//	gen: PATH binary       write a binary file
//	gen: PATH huge BYTES   write a valid-looking YAML file of that size
//	params: N              append N distinct -p flags
//	long: NAME BYTES       append -p NAME=<BYTES bytes>
type badCase struct {
	name    string
	args    []string
	exit    int
	env     [][2]string
	setup   [][]string
	gens    [][]string
	nParams int
	long    []string
	files   []txtar.File
}

func loadCatalogue(t *testing.T) []badCase {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(catalogueDir, "*.txtar"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no catalogue in %s: %v", catalogueDir, err)
	}
	var out []badCase
	for _, p := range paths {
		ar, err := txtar.ParseFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c := badCase{name: strings.TrimSuffix(filepath.Base(p), ".txtar"), exit: -1, files: ar.Files}
		for i, line := range strings.Split(string(ar.Comment), "\n") {
			key, val, ok := strings.Cut(line, ": ")
			if i == 0 || !ok {
				continue // the description
			}
			switch key {
			case "args":
				c.args = strings.Fields(val)
			case "exit":
				c.exit, err = strconv.Atoi(val)
			case "env":
				k, v, _ := strings.Cut(val, "=")
				c.env = append(c.env, [2]string{k, v})
			case "setup":
				c.setup = append(c.setup, strings.Fields(val))
			case "gen":
				c.gens = append(c.gens, strings.Fields(val))
			case "params":
				c.nParams, err = strconv.Atoi(val)
			case "long":
				c.long = strings.Fields(val)
			default:
				t.Fatalf("%s: unknown directive %q", p, key)
			}
			if err != nil {
				t.Fatalf("%s: %s: %v", p, line, err)
			}
		}
		if c.exit < 0 {
			t.Fatalf("%s: no exit: directive", p)
		}
		out = append(out, c)
	}
	return out
}

// TestCatalogue runs every malformed input of testdata/bad through the CLI in-process
// and checks the exit code, the message against its golden file, that no job was
// enqueued, no file was written, and nothing panicked. Cases set process environment
// (HOME, XDG dirs, RPT_*), so they run one after another.
func TestCatalogue(t *testing.T) {
	cases := loadCatalogue(t)
	if len(cases) < 60 {
		t.Errorf("catalogue has %d cases, want at least 60", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			work := t.TempDir()
			isolateEnv(t, work)
			for _, f := range c.files {
				writeFile(t, filepath.Join(work, f.Name), f.Data)
			}
			for _, g := range c.gens {
				generate(t, work, g)
			}
			for _, e := range c.env {
				t.Setenv(e[0], strings.ReplaceAll(e[1], "$WORK", work))
			}
			for _, s := range c.setup {
				if code, _, stderr := runCLI(t, context.Background(), s); code != 0 {
					t.Fatalf("setup %v: exit %d: %s", s, code, stderr)
				}
			}
			jobsBefore := countJobs(t, work)
			filesBefore := snapshot(t, work)

			args := make([]string, len(c.args))
			for i, a := range c.args {
				args[i] = strings.ReplaceAll(a, "$WORK", work)
			}
			for i := range c.nParams {
				args = append(args, "-p", fmt.Sprintf("p%d=%d", i, i))
			}
			if len(c.long) == 2 {
				n, _ := strconv.Atoi(c.long[1])
				args = append(args, "-p", c.long[0]+"="+strings.Repeat("x", n))
			}
			code, stdout, stderr := runCLI(t, context.Background(), args)

			if code != c.exit {
				t.Errorf("exit %d, want %d\nstderr: %s", code, c.exit, stderr)
			}
			got := strings.ReplaceAll(stderr, work, "$WORK")
			if stdout != "" {
				got += "--- stdout\n" + strings.ReplaceAll(stdout, work, "$WORK")
			}
			checkGolden(t, filepath.Join(catalogueDir, c.name+".golden"), got)
			if strings.Contains(got, "S3cr3t") {
				t.Errorf("output shows the password:\n%s", got)
			}
			if n := countJobs(t, work); n != jobsBefore {
				t.Errorf("jobs: %d before, %d after: something was enqueued", jobsBefore, n)
			}
			if after := snapshot(t, work); !slices.Equal(after, filesBefore) {
				t.Errorf("files changed:\nbefore %v\nafter  %v", filesBefore, after)
			}
		})
	}
}

// isolateEnv points every directory rpt looks at into work and clears RPT_*.
func isolateEnv(t *testing.T, work string) {
	t.Helper()
	t.Setenv("HOME", filepath.Join(work, "home"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(work, "data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(work, "config"))
	for _, k := range []string{"RPT_CONFIG", "RPT_QUEUE", "RPT_MQTT", "RPT_REPORTS", "RPT_AGENT_CONCURRENCY", "RPT_AGENT_LABELS", "RPT_AGENT_NAME", "RPT_TEST_UNSET_PASSWORD"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func generate(t *testing.T, work string, g []string) {
	t.Helper()
	path := filepath.Join(work, g[0])
	switch {
	case len(g) == 2 && g[1] == "binary":
		data := make([]byte, 4096)
		for i := range data {
			data[i] = byte(i * 7)
		}
		writeFile(t, path, data)
	case len(g) == 3 && g[1] == "huge":
		n, _ := strconv.Atoi(g[2])
		head := "name: r\nsource: warehouse\nsql: SELECT 1\n"
		line := "# " + strings.Repeat("padding ", 12) + "\n"
		var b bytes.Buffer
		b.Grow(n)
		b.WriteString(head)
		for b.Len()+len(line) <= n {
			b.WriteString(line)
		}
		b.WriteString(strings.Repeat("#", n-b.Len()))
		writeFile(t, path, b.Bytes())
	default:
		t.Fatalf("bad gen: directive %v", g)
	}
}

// deps is what cmd/rpt injects, with the streams captured.
func deps(stdout, stderr *bytes.Buffer) cli.Deps {
	return cli.Deps{
		OpenQueue:  openQueue,
		OpenSource: source.Open,
		Version:    "test",
		Stdout:     stdout,
		Stderr:     stderr,
		Now:        func() time.Time { return fixedNow },
	}
}

func openQueue(ctx context.Context, s string, opts queue.Options) (queue.Store, error) {
	scheme, err := dsn.Scheme(s)
	if err != nil {
		return nil, err
	}
	switch scheme {
	case "sqlite":
		path, err := dsn.SQLitePath(s)
		if err != nil {
			return nil, err
		}
		return sqlite.Open(ctx, path, opts)
	case "mysql":
		return mysql.Open(ctx, s, opts)
	}
	return nil, fmt.Errorf("%w: the queue runs on sqlite: or mysql://, not %s", dsn.ErrInvalid, scheme)
}

// runCLI runs rpt in-process; a panic fails the test with its stack instead of killing
// the whole test binary.
func runCLI(t *testing.T, ctx context.Context, args []string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("rpt %s panicked: %v\n%s", strings.Join(shorten(args), " "), r, debug.Stack())
			}
		}()
		code = cli.Main(ctx, append([]string{"rpt"}, args...), deps(&out, &errb))
	}()
	return code, out.String(), errb.String()
}

func shorten(args []string) []string {
	out := slices.Clone(args)
	if len(out) > 20 {
		out = append(out[:20], "...")
	}
	for i, a := range out {
		if len(a) > 80 {
			out[i] = a[:80] + "..."
		}
	}
	return out
}

// countJobs counts the jobs in the case's default queue (0 when it was never created).
func countJobs(t *testing.T, work string) int {
	t.Helper()
	path := filepath.Join(work, "data", "rpt", "rpt.db")
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	jobs, err := st.JobList(ctx, queue.JobListParams{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	return len(jobs)
}

// snapshot lists the files under work with their sizes, leaving out the default queue
// database (opening it may touch its WAL files).
func snapshot(t *testing.T, work string) []string {
	t.Helper()
	var out []string
	queueDir := filepath.Join(work, "data", "rpt")
	err := filepath.WalkDir(work, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if strings.HasPrefix(p, queueDir+string(filepath.Separator)) && strings.HasPrefix(d.Name(), "rpt.db") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(work, p)
		out = append(out, fmt.Sprintf("%s:%d", rel, info.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var goldenMu sync.Mutex

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		goldenMu.Lock()
		defer goldenMu.Unlock()
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cli -run TestCatalogue -update)", err)
	}
	if string(want) != got {
		t.Errorf("message differs from %s (rerun with -update if intended)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// lockedBuffer is a bytes.Buffer safe for the agent's goroutines to write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAgent runs `rpt agent` in-process until the returned stop is called; its JSON log
// goes to the returned buffer.
func startAgent(t *testing.T, args ...string) (logs *lockedBuffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("agent panicked: %v\n%s", r, debug.Stack())
				done <- -1
			}
		}()
		d := cli.Deps{OpenQueue: openQueue, OpenSource: source.Open, Version: "test", Stdout: logs, Stderr: logs}
		done <- cli.Main(ctx, append([]string{"rpt"}, append(args, "agent", "--poll", "20ms", "--name", "catalogue-agent")...), d)
	}()
	// Wait for the agent to be up: its "agent started" line also orders its flag
	// parsing (urfave/cli writes a package-level help flag) before any other command's.
	for !strings.Contains(logs.String(), `"agent started"`) {
		select {
		case code := <-done:
			cancel()
			t.Fatalf("agent exited %d before starting: %s", code, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if code := <-done; code != 0 && code != cli.ExitInterrupted {
				t.Errorf("agent exited %d: %s", code, logs.String())
			}
		})
	}
	t.Cleanup(stop)
	return logs, stop
}

// migrate creates the default SQLite queue before an agent and commands race to do it.
func migrate(t *testing.T, cfgPath string) {
	t.Helper()
	if code, _, stderr := runCLI(t, context.Background(), []string{"--config", cfgPath, "db", "migrate"}); code != 0 {
		t.Fatalf("create the queue: exit %d: %s", code, stderr)
	}
}

// hostile are parameter values that would break a query if they were pasted into SQL
// instead of bound.
func hostile() []string {
	return []string{
		"O'Brien",
		"' OR '1'='1",
		"'; DROP TABLE rpt_jobs; --",
		`"; DELETE FROM x; /*`,
		"*/ SELECT 1; -- comment",
		"# not a comment",
		`back\slash \' \" \\`,
		"100% _wild_ %%",
		":s ? $1 @p1 {s}",
		"naïve café – 日本語 – emoji 🎉 – RTL \u202eevil",
		"tab\there\nnewline\r\nCRLF",
		"  padded  ",
		"",
		",comma,separated,",
		"x=y=z",
		strings.Repeat(`'";--\%`, 8000), // 56,000 bytes, under the 64 KiB limit
	}
}

// injectionSetup writes a config with a SQLite source and the echo report.
func injectionSetup(t *testing.T) (work, cfgPath string) {
	t.Helper()
	work = t.TempDir()
	isolateEnv(t, work)
	writeFile(t, filepath.Join(work, "src.db"), nil) // an empty file is an empty SQLite database
	cfgPath = filepath.Join(work, "rpt.yaml")
	writeFile(t, cfgPath, []byte("timezone: UTC\nreports: [defs]\nsources:\n  inj: {driver: sqlite, dsn: \"sqlite:"+filepath.Join(work, "src.db")+"\"}\n"))
	writeFile(t, filepath.Join(work, "defs", "echo.yaml"), []byte("name: echo\nsource: inj\nparams:\n  - {name: s, type: string}\nsql: SELECT :s AS s\n"))
	return work, cfgPath
}

func decodeEcho(t *testing.T, out string) string {
	t.Helper()
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("result is not JSON rows: %v\n%.300s", err, out)
	}
	if len(rows) != 1 {
		t.Fatalf("got %d rows, want 1", len(rows))
	}
	s, ok := rows[0]["s"].(string)
	if !ok {
		t.Fatalf("s = %#v, want a string", rows[0]["s"])
	}
	return s
}

// TestInjectionReportsRun: hostile values come back from `rpt reports run` exactly.
func TestInjectionReportsRun(t *testing.T) {
	_, cfgPath := injectionSetup(t)
	for i, v := range hostile() {
		code, stdout, stderr := runCLI(t, context.Background(), []string{"--config", cfgPath, "reports", "run", "echo", "-p", "s=" + v, "-o", "json"})
		if code != 0 {
			t.Errorf("value %d: exit %d: %s", i, code, stderr)
			continue
		}
		if got := decodeEcho(t, stdout); got != v {
			t.Errorf("value %d: got %.80q, want %.80q", i, got, v)
		}
	}
}

// TestInjectionQueued: the same values through submit, an in-process agent and get.
func TestInjectionQueued(t *testing.T) {
	_, cfgPath := injectionSetup(t)
	migrate(t, cfgPath)
	logs, stop := startAgent(t, "--config", cfgPath)
	for i, v := range hostile() {
		code, stdout, stderr := runCLI(t, context.Background(), []string{"--config", cfgPath, "submit", "echo", "-p", "s=" + v, "--wait", "--timeout", "2m"})
		if code != 0 {
			t.Fatalf("value %d: submit exit %d: %s\nagent: %s", i, code, stderr, logs.String())
		}
		id := strings.TrimSpace(stdout)
		code, stdout, stderr = runCLI(t, context.Background(), []string{"--config", cfgPath, "get", id, "-o", "json"})
		if code != 0 {
			t.Fatalf("value %d: get %s exit %d: %s", i, id, code, stderr)
		}
		if got := decodeEcho(t, stdout); got != v {
			t.Errorf("value %d: got %.80q, want %.80q", i, got, v)
		}
	}
	stop()
}

// TestSecretsNeverShown runs a failing job (a MySQL source with a known password that
// is unreachable) and a succeeding one through the CLI and an in-process agent, then
// looks for the password in every byte printed, logged or stored as a job or event.
func TestSecretsNeverShown(t *testing.T) {
	const pw = "S3cr3t-Pw-123"
	work := t.TempDir()
	isolateEnv(t, work)
	writeFile(t, filepath.Join(work, "good.db"), nil)
	cfgPath := filepath.Join(work, "rpt.yaml")
	t.Setenv("RPT_TEST_WS_PASSWORD", pw)
	writeFile(t, cfgPath, []byte(`timezone: UTC
reports: [defs]
sources:
  bad: {driver: mysql, dsn: "mysql://rpt:`+pw+`@127.0.0.1:1/rpt?timeout=1s", max_concurrent: 2}
  good: {driver: sqlite, dsn: "sqlite:`+filepath.Join(work, "good.db")+`"}
  ws: {driver: sqlserver, dsn: "sqlserver://me:${RPT_TEST_WS_PASSWORD}@ws.example.invalid/api"}
`))
	writeFile(t, filepath.Join(work, "defs", "fail.yaml"), []byte("name: fail\nsource: bad\nmax_attempts: 1\nsql: SELECT 1 AS one\n"))
	writeFile(t, filepath.Join(work, "defs", "ok.yaml"), []byte("name: ok\nsource: good\nsql: SELECT 1 AS one\n"))

	var all strings.Builder
	run := func(wantCode int, args ...string) string {
		t.Helper()
		code, stdout, stderr := runCLI(t, context.Background(), append([]string{"--config", cfgPath}, args...))
		all.WriteString(stdout + stderr)
		if code != wantCode {
			t.Errorf("rpt %v: exit %d, want %d\n%s%s", args, code, wantCode, stdout, stderr)
		}
		return strings.TrimSpace(stdout)
	}
	migrate(t, cfgPath)
	logs, stop := startAgent(t, "--config", cfgPath)
	failID := run(cli.ExitJobFailed, "submit", "fail", "--wait", "--timeout", "2m")
	okID := run(cli.ExitOK, "submit", "ok", "--wait", "--timeout", "2m")
	for _, id := range []string{failID, okID} {
		run(cli.ExitOK, "jobs", "show", id, "-o", "json")
		run(cli.ExitOK, "jobs", "show", id)
	}
	run(cli.ExitJobFailed, "get", failID)
	run(cli.ExitOK, "get", okID, "-o", "json")
	run(cli.ExitOK, "jobs", "list", "-o", "json")
	run(cli.ExitOK, "agents", "list", "-o", "json")
	run(cli.ExitOK, "agents", "list")
	run(cli.ExitOK, "reports", "list", "-o", "json")
	run(cli.ExitOK, "reports", "show", "fail")
	run(cli.ExitOK, "retry", failID)
	run(cli.ExitUnreachable, "--queue", "mysql://rpt:"+pw+"@127.0.0.1:1/rpt?timeout=1s", "jobs", "list")
	run(cli.ExitUsage, "--queue", "mysql://rpt:"+pw+"@/rpt", "jobs", "list")
	stop()
	all.WriteString(logs.String())

	// What the queue holds: jobs (with their errors) and every event.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(work, "data", "rpt", "rpt.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	jobs, err := st.JobList(ctx, queue.JobListParams{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	events, err := st.EventList(ctx, 0, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	agents, err := st.AgentList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := json.Marshal(map[string]any{"jobs": jobs, "events": events, "agents": agents})
	all.Write(stored)

	var failed *queue.Job
	for _, j := range jobs {
		if strconv.FormatInt(j.ID, 10) == failID {
			failed = j
		}
	}
	if failed == nil || failed.Status != queue.StatusFailed || failed.Error == "" {
		t.Fatalf("the failing job is not failed with an error: %+v", failed)
	}
	if len(events) == 0 || !strings.Contains(logs.String(), "{") {
		t.Fatalf("nothing to check: %d events, agent log %q", len(events), logs.String())
	}
	text := all.String()
	if !strings.Contains(text, "xxxxx") {
		t.Errorf("no redacted DSN in the output: the test did not print what it means to check")
	}
	for _, leak := range []string{pw, url.QueryEscape(pw), strings.ToLower(pw)} {
		if i := strings.Index(text, leak); i >= 0 {
			t.Errorf("password shown: ...%s...", text[max(0, i-200):min(len(text), i+100)])
		}
	}
	t.Logf("checked %d bytes; failing job's error: %s", len(text), failed.Error)
}
