package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"rpt/internal/dsn"
	"rpt/internal/queue"
	queuemysql "rpt/internal/queue/mysql"
	"rpt/internal/source"
	"rpt/reportdefs"
)

// Agent timings every test uses: short, so that a lost agent's jobs come back within
// seconds. The agent's rescue interval (5s) and heartbeat interval (1s) are its defaults;
// the CLI has no flags for them.
const (
	agentLease = 2 * time.Second
	agentPoll  = 100 * time.Millisecond
	agentGrace = time.Second
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// rptBinary builds cmd/rpt once per test binary, on first use, so a run where every test
// skips builds nothing.
func rptBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "rpt-e2e-bin")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "rpt")
		goTool := "go"
		if _, err := exec.LookPath(goTool); err != nil {
			if root := os.Getenv("GOROOT"); root != "" {
				goTool = filepath.Join(root, "bin", "go")
			}
		}
		args := []string{"build", "-o", binPath}
		if raceBuild {
			args = append(args, "-race")
		}
		cmd := exec.Command(goTool, append(args, "./cmd/rpt")...)
		cmd.Dir = ".." // the module root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/rpt: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// rig is one queue database with its rpt.yaml, report folder and agents.
type rig struct {
	t      *testing.T
	bin    string
	dir    string
	queue  string // mysql://... of the queue database
	config string
	store  *queuemysql.Store
	db     *sql.DB // the queue database, for evidence the Store API does not give
	srcCfg map[string]source.Config
	// mqtt and mqttPrefix, when set, connect the agents startAgent starts to a broker.
	mqtt, mqttPrefix string
}

// newRig writes an rpt.yaml whose source "db" is sourceDSN, migrates the queue with
// `rpt db migrate` and opens the queue with the Go store for fast submits and evidence.
func newRig(t *testing.T, queueDSN, sourceDSN string) *rig {
	t.Helper()
	r := &rig{t: t, bin: rptBinary(t), dir: t.TempDir(), queue: queueDSN,
		srcCfg: map[string]source.Config{"db": {Driver: "mysql", DSN: sourceDSN}}}
	if err := os.Mkdir(filepath.Join(r.dir, "reports"), 0o755); err != nil {
		t.Fatal(err)
	}
	r.config = filepath.Join(r.dir, "rpt.yaml")
	cfg := fmt.Sprintf("timezone: UTC\nreports: [reports]\nsources:\n  db: {driver: mysql, dsn: %q}\n", sourceDSN)
	if err := os.WriteFile(r.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := r.rpt("db", "migrate"); err != nil {
		t.Fatalf("rpt db migrate: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := queuemysql.Open(ctx, queueDSN, queue.Options{})
	if err != nil {
		t.Fatalf("open queue: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	r.store = st
	mc, err := dsn.MySQL(queueDSN)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	r.db = sql.OpenDB(conn)
	r.db.SetMaxOpenConns(4)
	t.Cleanup(func() { r.db.Close() })
	return r
}

// define parses a definition and also writes it to the report folder, so that the CLI
// (rpt submit) knows it too.
func (r *rig) define(yamlText string) *reportdefs.Definition {
	r.t.Helper()
	def, err := reportdefs.Parse("e2e.yaml", []byte(yamlText))
	if err != nil {
		r.t.Fatalf("definition: %v", err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "reports", def.Name+".yaml"), []byte(yamlText), 0o644); err != nil {
		r.t.Fatal(err)
	}
	return def
}

// rpt runs the CLI against the rig's queue and config and returns its stdout.
func (r *rig) rpt(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bin, append(r.globalArgs(), args...)...)
	cmd.Dir = r.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("rpt %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// enqueue queues a run of def with the Go store (as rpt submit would, without a process
// per job). It publishes the definition first, as an admin would (rpt reports publish):
// tests rewrite a report's file between jobs, so the agents' catalogue alone would not
// hold the snapshot of every queued job, and agents run only trusted definitions.
func (r *rig) enqueue(ctx context.Context, def *reportdefs.Definition, params map[string]string) (int64, error) {
	resolved, err := def.Resolve(params, time.Now(), time.UTC)
	if err != nil {
		return 0, err
	}
	if _, _, err := r.store.DefinitionPublish(ctx, queue.DefinitionPublishParams{
		Report: def.Name, Definition: def.Raw, PublishedBy: "e2e",
	}); err != nil {
		return 0, fmt.Errorf("publish %s: %w", def.Name, err)
	}
	p := def.JobParams(resolved, r.srcCfg)
	p.Origin = queue.OriginCLI
	res, err := r.store.JobEnqueue(ctx, p)
	if err != nil {
		return 0, err
	}
	return res.Job.ID, nil
}

// agent is one `rpt agent` process.
type agent struct {
	name string
	cmd  *exec.Cmd
	log  string // path of its combined stdout and stderr
	done chan struct{}
	err  error // set when done is closed
}

// startAgent starts an agent process; it is stopped (SIGTERM, then SIGKILL) when the
// test ends, and its log is printed when the test failed.
func (r *rig) startAgent(name string, concurrency int) *agent {
	r.t.Helper()
	return r.startAgentLease(name, concurrency, agentLease)
}

// startAgentLease is startAgent with another lease duration.
func (r *rig) startAgentLease(name string, concurrency int, lease time.Duration) *agent {
	r.t.Helper()
	return r.spawnAgent(name, nil, concurrency, lease, agentPoll)
}

// globalArgs are the flags every rpt command of the rig gets: its queue, its config,
// and its broker when it has one.
func (r *rig) globalArgs() []string {
	args := []string{"--queue", r.queue, "--config", r.config}
	if r.mqtt != "" {
		args = append(args, "--mqtt", r.mqtt, "--mqtt-prefix", r.mqttPrefix)
	}
	return args
}

// spawnAgent starts `rpt [global flags] agent` with the rig's global flags and more.
func (r *rig) spawnAgent(name string, global []string, concurrency int, lease, poll time.Duration) *agent {
	r.t.Helper()
	a := &agent{name: name, log: filepath.Join(r.dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(a.log)
	if err != nil {
		r.t.Fatal(err)
	}
	args := append(r.globalArgs(), global...)
	a.cmd = exec.Command(r.bin, append(args, "agent",
		"--name", name, "--concurrency", strconv.Itoa(concurrency),
		"--lease", lease.String(), "--poll", poll.String(), "--grace", agentGrace.String())...)
	a.cmd.Dir = r.dir
	a.cmd.Stdout, a.cmd.Stderr = f, f
	if err := a.cmd.Start(); err != nil {
		f.Close()
		r.t.Fatalf("start agent %s: %v", name, err)
	}
	go func() {
		a.err = a.cmd.Wait()
		f.Close()
		close(a.done)
	}()
	r.t.Cleanup(func() {
		a.stop(r.t)
		if strings.Contains(a.logText(), "WARNING: DATA RACE") {
			r.t.Errorf("agent %s: the race detector found a data race", name)
		}
		if dump := os.Getenv("RPT_E2E_DUMP"); dump != "" {
			_ = os.WriteFile(filepath.Join(dump, strings.ReplaceAll(r.t.Name(), "/", "_")+"-"+name+".log"), []byte(a.logText()), 0o644)
		}
		if r.t.Failed() {
			r.t.Logf("log of agent %s (last 6 KiB):\n%s", name, tail(a.logText(), 6<<10))
		}
	})
	return a
}

func (a *agent) pid() int { return a.cmd.Process.Pid }

func (a *agent) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := a.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to agent %s: %v", sig, a.name, err)
	}
}

func (a *agent) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// stop ends the agent as a rolling update would (SIGTERM), or kills it when it does not
// stop in time. A stopped (SIGSTOP) agent is continued first.
func (a *agent) stop(t *testing.T) {
	if a.exited() {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGCONT)
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(15 * time.Second):
		t.Errorf("agent %s did not stop within 15s of SIGTERM; killing it", a.name)
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

func (a *agent) logText() string {
	b, _ := os.ReadFile(a.log)
	return string(b)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// waitFor polls cond until it holds or timeout passes (a generous deadline, not a
// timing assertion). Errors from cond are retried and reported if time runs out.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFinished waits until no job is queued or running and returns every job.
func (r *rig) waitFinished(ctx context.Context, timeout time.Duration, what string) []jobRow {
	r.t.Helper()
	waitFor(r.t, timeout, what, func() (bool, error) {
		open, err := r.jobs(ctx, "status IN ('queued', 'running')")
		if err != nil || len(open) == 0 {
			return err == nil, err
		}
		// Not an error while there is time; the last one says, on a time-out, which
		// jobs never finished and who held them.
		return false, fmt.Errorf("%d jobs open, first %+v", len(open), open[:min(len(open), 5)])
	})
	all, err := r.jobs(ctx, "")
	if err != nil {
		r.t.Fatal(err)
	}
	return all
}

// jobRow is the part of rpt_jobs the checks look at.
type jobRow struct {
	ID            int64
	Status        string
	Attempt       int
	Failures      int
	ResultAttempt int
	Rows          int64
	Owner         string
}

func (r *rig) jobs(ctx context.Context, where string, args ...any) ([]jobRow, error) {
	q := "SELECT id, status, attempt, failures, result_attempt, `rows`, COALESCE(lease_owner, '') FROM rpt_jobs"
	if where != "" {
		q += " WHERE " + where
	}
	rows, err := r.db.QueryContext(ctx, q+" ORDER BY id", args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []jobRow
	for rows.Next() {
		var j jobRow
		if err := rows.Scan(&j.ID, &j.Status, &j.Attempt, &j.Failures, &j.ResultAttempt, &j.Rows, &j.Owner); err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

func (r *rig) job(ctx context.Context, id int64) (jobRow, error) {
	js, err := r.jobs(ctx, "id = ?", id)
	if err != nil {
		return jobRow{}, err
	}
	if len(js) != 1 {
		return jobRow{}, fmt.Errorf("job %d: %w", id, queue.ErrNotFound)
	}
	return js[0], nil
}

// eventRow is one rpt_job_events row.
type eventRow struct {
	Seq     int64
	JobID   int64
	Event   string
	Status  string
	Attempt int
	Agent   string
	Rows    int64
	At      time.Time
}

func (r *rig) events(ctx context.Context, where string, args ...any) ([]eventRow, error) {
	q := "SELECT seq, job_id, event, status, attempt, agent, `rows`, at FROM rpt_job_events"
	if where != "" {
		q += " WHERE " + where
	}
	rows, err := r.db.QueryContext(ctx, q+" ORDER BY seq", args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []eventRow
	for rows.Next() {
		var e eventRow
		if err := rows.Scan(&e.Seq, &e.JobID, &e.Event, &e.Status, &e.Attempt, &e.Agent, &e.Rows, &e.At); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// interval is one attempt of a job as the events record it: from its running event to
// the event that ended it (succeeded, failed, cancelled, released, retry_scheduled).
type interval struct {
	Job        int64
	Attempt    int
	Agent      string
	Start, End time.Time
	Ended      string // the ending event; "" while the attempt is open
}

// attempts turns events into per-attempt intervals, in event order.
func attempts(events []eventRow) []interval {
	var out []interval
	open := map[int64]int{} // job -> index in out of its open attempt
	for _, e := range events {
		switch e.Event {
		case queue.EventRunning:
			open[e.JobID] = len(out)
			out = append(out, interval{Job: e.JobID, Attempt: e.Attempt, Agent: e.Agent, Start: e.At})
		case queue.EventSucceeded, queue.EventFailed, queue.EventCancelled, queue.EventReleased, queue.EventRetryScheduled:
			if i, ok := open[e.JobID]; ok {
				out[i].End, out[i].Ended = e.At, e.Event
				delete(open, e.JobID)
			}
		}
	}
	return out
}

// maxOverlap is the most intervals open at one instant; an interval ending at the
// instant another starts does not overlap it. Open intervals count as never ending.
func maxOverlap(iv []interval) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, i := range iv {
		edges = append(edges, edge{i.Start, +1})
		if i.Ended != "" {
			edges = append(edges, edge{i.End, -1})
		}
	}
	// Ends before starts at the same instant.
	sortEdges := func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	}
	slices.SortFunc(edges, sortEdges)
	n, best := 0, 0
	for _, e := range edges {
		n += e.delta
		best = max(best, n)
	}
	return best
}
