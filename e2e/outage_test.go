package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/testenv"
)

// queueOutage is how long TestQueueOutage keeps the queue database down: the minute of
// the issue; RPT_OUTAGE=10s makes a quick local run.
func queueOutage(t *testing.T) time.Duration {
	if s := os.Getenv("RPT_OUTAGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("RPT_OUTAGE=%q: %v", s, err)
		}
		return d
	}
	return time.Minute
}

// The queue database goes away while agents run short and long jobs: killed (SIGKILL)
// for a minute and started again, or frozen (SIGSTOP, as a hung host or a network
// partition: connections hang instead of being refused) and resumed. Every job has
// max_attempts 1, so one failure counted for the outage would fail its job. Asserted:
// no agent exits (an agent started during the outage waits for the queue); every job
// succeeds, none fails or is rescued as a failure; the jobs running when the database
// went away are released by their agents; a CLI that cannot reach the queue exits 5
// after --retry-for with a message naming the database; a submit whose --retry-for
// outlasts the outage queues its job exactly once.
func TestQueueOutage(t *testing.T) {
	t.Parallel()
	// Frozen for longer than one CLI try (10s), so the waiting is reported.
	killed, frozen := queueOutage(t), 20*time.Second
	for _, tt := range []struct {
		name   string
		freeze bool
		outage time.Duration
	}{{"killed", false, killed}, {"frozen", true, frozen}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testQueueOutage(t, tt.freeze, tt.outage)
		})
	}
}

func testQueueOutage(t *testing.T, freeze bool, outage time.Duration) {
	srcDSN := testenv.MariaDB(t)
	srv, r, _ := privateQueueRig(t, srcDSN)
	short := r.define("name: short\nsource: db\nparams:\n  - {name: n, type: int}\nmax_attempts: 1\nsql: SELECT :n AS n\n")
	long := r.define("name: long\nsource: db\nparams:\n  - {name: n, type: int}\nmax_attempts: 1\nsql: SELECT :n AS n, SLEEP(4) AS slept\n")

	var as []*agent
	for i := range 3 {
		as = append(as, r.startAgent(fmt.Sprintf("outage-%d", i), 2))
	}
	ctx, cancel := context.WithTimeout(context.Background(), outage+3*time.Minute)
	defer cancel()
	n := 0
	submitted := 0
	enqueue := func(def string, count int) {
		t.Helper()
		d := short
		if def == "long" {
			d = long
		}
		for range count {
			n++
			if _, err := r.enqueue(ctx, d, map[string]string{"n": strconv.Itoa(n)}); err != nil {
				t.Fatalf("enqueue %d: %v", n, err)
			}
			submitted++
		}
	}
	enqueue("long", 4)
	enqueue("short", 60)
	waitFor(t, 30*time.Second, "long jobs running", func() (bool, error) {
		js, err := r.jobs(ctx, "status = 'running' AND report = 'long'")
		return len(js) >= 3, err
	})
	// Every agent up before the outage: on a loaded machine one can still be opening
	// the queue, and would meet the outage as an agent starting in it (the late one's
	// case) instead of one that loses the queue while it runs.
	waitFor(t, 30*time.Second, "the three agents started", func() (bool, error) {
		for _, a := range as {
			if !strings.Contains(a.logText(), `"msg":"agent started"`) {
				return false, nil
			}
		}
		return true, nil
	})
	runningLong, err := r.jobs(ctx, "status = 'running' AND report = 'long'")
	if err != nil {
		t.Fatal(err)
	}
	enqueue("short", 40) // queued when the database goes away

	if freeze {
		srv.signal(t, syscall.SIGSTOP)
	} else {
		srv.kill(t)
	}
	downAt := time.Now()

	// A CLI that cannot reach the queue: exit 5 after --retry-for, naming the database.
	start := time.Now()
	out, code := r.rptCode(ctx, "--retry-for", "2s", "jobs", "list")
	took := time.Since(start)
	if code != 5 || !strings.Contains(out, "queue database "+r.queue+" does not answer") || !strings.Contains(out, "retried for 2s") {
		t.Errorf("rpt jobs list with the queue down: exit %d, output:\n%s\nwant exit 5 naming the database and the retry", code, out)
	}
	// A submit that retries for longer than the outage, as a crontab line would.
	late := r.rptStart(ctx, "--retry-for", (outage + time.Minute).String(), "submit", "short", "-p", "n=100000")
	// An agent started during the outage waits for the queue.
	as = append(as, r.startAgent("outage-late", 2))

	for time.Since(downAt) < outage {
		for _, a := range as {
			if a.exited() {
				t.Fatalf("agent %s exited during the outage (%s in): %v", a.name, time.Since(downAt).Round(time.Second), a.err)
			}
		}
		time.Sleep(time.Second)
	}
	if freeze {
		srv.signal(t, syscall.SIGCONT)
	} else {
		srv.start(t)
	}
	down := time.Since(downAt)

	lateOut, lateErr := late.wait()
	if lateErr != nil {
		t.Errorf("rpt submit --retry-for across the outage: %v\n%s", lateErr, lateOut)
	} else if !strings.Contains(lateOut, "retrying for up to") {
		t.Errorf("rpt submit during the outage did not say it was retrying:\n%s", lateOut)
	} else {
		submitted++
	}
	enqueue("short", 30) // after the outage

	all := r.waitFinished(ctx, 2*time.Minute, "all jobs finished after the outage")
	if len(all) != submitted {
		t.Errorf("%d jobs in the queue, want %d (the retried submit queued once)", len(all), submitted)
	}
	for _, j := range all {
		if j.Status != string(queue.StatusSucceeded) || j.Failures != 0 {
			t.Errorf("job %d: %s with %d failures, want succeeded with none", j.ID, j.Status, j.Failures)
		}
	}
	evs, err := r.events(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	releasedJobs := map[int64]bool{}
	for _, e := range evs {
		counts[e.Event]++
		switch e.Event {
		case queue.EventFailed, queue.EventRetryScheduled:
			t.Errorf("job %d: %s event (attempt %d, agent %s): the outage counted a failure", e.JobID, e.Event, e.Attempt, e.Agent)
		case queue.EventReleased:
			releasedJobs[e.JobID] = true
		}
	}
	// The long jobs outlived the agents' leases in the outage: each was released.
	for _, j := range runningLong {
		if !releasedJobs[j.ID] {
			t.Errorf("long job %d was running when the database went away but has no released event", j.ID)
		}
	}
	for _, a := range as {
		if a.exited() {
			t.Errorf("agent %s exited: %v", a.name, a.err)
		}
	}
	for _, a := range as[:3] {
		log := a.logText()
		if !strings.Contains(log, "queue database call failed") || !strings.Contains(log, "queue database answers again") {
			t.Errorf("agent %s did not log the outage and the return of the queue", a.name)
		}
	}
	if !strings.Contains(as[3].logText(), "queue database does not answer; retrying until it does") {
		t.Errorf("agent %s, started in the outage, did not say it waits for the queue", as[3].name)
	}
	t.Logf("queue down %.1fs; %d jobs all succeeded, 0 failures; CLI exit %d after %.1fs (--retry-for 2s); events: %v",
		down.Seconds(), len(all), code, took.Seconds(), counts)
}

// The source database goes away (SIGKILL) while jobs run their queries on it: a job with
// max_attempts 1 fails with an error naming the source; a job with retries left is
// scheduled again and succeeds once the source is back. The agent stays up.
func TestSourceOutage(t *testing.T) {
	t.Parallel()
	srv := startPrivateMariaDB(t)
	srv.createDB(t, "src")
	r := newRig(t, testenv.MariaDB(t), srv.dsn("src"))
	once := r.define("name: once\nsource: db\nmax_attempts: 1\nsql: SELECT 1 AS n, SLEEP(5) AS slept\n")
	retried := r.define("name: retried\nsource: db\nmax_attempts: 3\nsql: SELECT 2 AS n, SLEEP(5) AS slept\n")
	a := r.startAgent("src-outage", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	onceID, err := r.enqueue(ctx, once, nil)
	if err != nil {
		t.Fatal(err)
	}
	retriedID, err := r.enqueue(ctx, retried, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "both jobs running", func() (bool, error) {
		js, err := r.jobs(ctx, "status = 'running'")
		return len(js) == 2, err
	})
	time.Sleep(time.Second) // mid-query
	srv.kill(t)
	waitFor(t, 30*time.Second, "the first attempts ended", func() (bool, error) {
		js, err := r.jobs(ctx, "status = 'running'")
		return len(js) == 0, err
	})
	srv.start(t)

	j, err := r.job(ctx, onceID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != string(queue.StatusFailed) || j.Attempt != 1 {
		t.Errorf("job once: %s at attempt %d, want failed at attempt 1", j.Status, j.Attempt)
	}
	show, err := r.rpt("jobs", "show", strconv.FormatInt(onceID, 10))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(show, `query source "db": source unavailable: lost the connection to the server`) {
		t.Errorf("rpt jobs show of the failed job does not say that source db went away:\n%s", show)
	}
	waitFor(t, 60*time.Second, "the retried job finished", func() (bool, error) {
		j, err := r.job(ctx, retriedID)
		return err == nil && queue.Status(j.Status).Terminal(), err
	})
	j, err = r.job(ctx, retriedID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != string(queue.StatusSucceeded) || j.Attempt != 2 || j.Failures != 1 {
		t.Errorf("job retried: %s at attempt %d with %d failures, want succeeded at attempt 2 after 1 failure", j.Status, j.Attempt, j.Failures)
	}
	evs, err := r.events(ctx, "job_id = ?", retriedID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Event)
	}
	if got, want := strings.Join(kinds, " "), "queued running retry_scheduled running succeeded"; got != want {
		t.Errorf("retried job's events: %s, want %s", got, want)
	}
	if a.exited() {
		t.Errorf("agent exited when the source went away: %v", a.err)
	}
	t.Logf("source killed mid-query: job once failed (%s); job retried succeeded at attempt %d", firstLine(show, "error"), j.Attempt)
}

// rptCode runs the CLI and returns its combined output and exit code.
func (r *rig) rptCode(ctx context.Context, args ...string) (string, int) {
	r.t.Helper()
	cmd := exec.CommandContext(ctx, r.bin, append(r.globalArgs(), args...)...)
	cmd.Dir = r.dir
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	r.t.Fatalf("rpt %s: %v", strings.Join(args, " "), err)
	return "", -1
}

// started is a CLI process running in the background.
type started struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

// rptStart starts the CLI without waiting for it.
func (r *rig) rptStart(ctx context.Context, args ...string) *started {
	r.t.Helper()
	s := &started{cmd: exec.CommandContext(ctx, r.bin, append(r.globalArgs(), args...)...), out: &bytes.Buffer{}}
	s.cmd.Dir = r.dir
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.Cancel = func() error { return s.cmd.Process.Signal(syscall.SIGTERM) }
	if err := s.cmd.Start(); err != nil {
		r.t.Fatalf("start rpt %s: %v", strings.Join(args, " "), err)
	}
	return s
}

func (s *started) wait() (string, error) {
	err := s.cmd.Wait()
	return s.out.String(), err
}

// firstLine returns the first line of text that contains word, trimmed.
func firstLine(text, word string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
