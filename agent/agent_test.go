package agent

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/internal/source"
)

const numbersDef = `name: numbers
title: Numbers
source: demo
params:
  - {name: count, type: int, default: 5}
sql: SELECT n, label FROM numbers WHERE n <= :count
`

// testConfig polls and beats fast so tests run quickly; the lease stays long, so a
// loaded test machine does not make the agent self-fence.
func testConfig() Config {
	return Config{
		Name:                   "test-agent",
		Concurrency:            2,
		LeaseDuration:          20 * time.Second,
		HeartbeatInterval:      20 * time.Millisecond,
		PollInterval:           10 * time.Millisecond,
		RescueInterval:         50 * time.Millisecond,
		AgentHeartbeatInterval: 20 * time.Millisecond,
		Grace:                  5 * time.Second,
	}
}

// startAgent runs an agent until the returned stop is called (or the test ends); stop
// returns Run's error.
func startAgent(t *testing.T, store Store, open SourceOpener, cfg Config) (*Agent, func() error) {
	t.Helper()
	return startAgentWith(t, store, results.InQueue(store.(results.QueueChunks)), open, cfg)
}

// startAgentWith is startAgent with the results store given.
func startAgentWith(t *testing.T, store Store, rs results.Store, open SourceOpener, cfg Config) (*Agent, func() error) {
	t.Helper()
	a := New(store, rs, open, cfg, slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var err error
	stopped := false
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-done
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return a, stop
}

// tWriter sends the agent's log to the test's log, shown when a test fails or with -v.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// countRows answers with :count rows, as the numbers report would.
func countRows(ctx context.Context, sql string, params map[string]any) (source.Rows, error) {
	n, ok := params["count"].(int64)
	if !ok {
		return nil, fmt.Errorf("count is %T", params["count"])
	}
	return &genRows{ctx: ctx, n: int(n)}, nil
}

// endlessRows yields a row every 5ms until the query is cancelled.
func endlessRows(ctx context.Context, sql string, params map[string]any) (source.Rows, error) {
	return &genRows{ctx: ctx, n: -1, gate: slowGate(ctx, 5*time.Millisecond)}, nil
}

func readResult(t *testing.T, store results.QueueChunks, id int64, attempt int) [][]any {
	t.Helper()
	rows, err := results.Open(context.Background(), results.InQueue(store), results.Ref{JobID: id, Attempt: attempt})
	if err != nil {
		t.Fatalf("open result: %v", err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		out = append(out, slices.Clone(rows.Values()))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read result: %v", err)
	}
	return out
}

func TestJobCompletes(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	src := &fakeSource{rows: countRows}
	id := store.enqueue("numbers", numbersDef, `{"count": 7}`)
	startAgent(t, store, src.opener(), testConfig())

	waitFor(t, "job to succeed", func() bool { return store.get(id).Status.Terminal() })
	job := store.get(id)
	if job.Status != queue.StatusSucceeded || job.Rows != 7 {
		t.Fatalf("job: status %s rows %d error %q; want succeeded with 7 rows", job.Status, job.Rows, job.Error)
	}
	got := readResult(t, store, id, job.ResultAttempt)
	if len(got) != 7 {
		t.Fatalf("result has %d rows, want 7", len(got))
	}
	if got[6][0] != int64(7) || got[6][1] != "row 7" {
		t.Errorf("last row = %v, want [7 row 7]", got[6])
	}
}

func TestCancelRequestedStopsQuery(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	src := &fakeSource{rows: endlessRows}
	id := store.enqueue("numbers", numbersDef, `{"count": 1}`)
	startAgent(t, store, src.opener(), testConfig())

	waitFor(t, "rows reported by a heartbeat", func() bool { return store.get(id).Rows > 0 })
	store.requestCancel(id)
	waitFor(t, "job to end", func() bool { return store.get(id).Status.Terminal() })
	if st := store.get(id).Status; st != queue.StatusCancelled {
		t.Fatalf("status %s, want cancelled", st)
	}
	waitFor(t, "query closed", func() bool { return src.running.Load() == 0 })
	if got, want := store.callLog(), []string{fmt.Sprintf("cancelled %d", id)}; !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
}

func TestLeaseLostStopsWithoutWriting(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	src := &fakeSource{rows: endlessRows}
	id := store.enqueue("numbers", numbersDef, `{"count": 1}`)
	a, _ := startAgent(t, store, src.opener(), testConfig())

	waitFor(t, "rows reported by a heartbeat", func() bool { return store.get(id).Rows > 0 })
	store.steal(id)
	waitFor(t, "query closed", func() bool { return src.running.Load() == 0 && a.Running() == 0 })
	if calls := store.callLog(); len(calls) != 0 {
		t.Errorf("outcome calls %v after the lease was lost, want none", calls)
	}
	if st := store.get(id).Status; st != queue.StatusRunning {
		t.Errorf("status %s, want running (the new holder's)", st)
	}
}

func TestSelfFenceThenRelease(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	src := &fakeSource{rows: endlessRows}
	id := store.enqueue("numbers", numbersDef, `{"count": 1}`)
	cfg := testConfig()
	cfg.LeaseDuration = time.Second
	a, _ := startAgent(t, store, src.opener(), cfg)

	waitFor(t, "rows reported by a heartbeat", func() bool { return store.get(id).Rows > 0 })
	store.down.Store(true)
	// The job's query must die while the database is still down: that is the fence.
	waitFor(t, "query killed by self-fencing", func() bool { return src.running.Load() == 0 })
	if calls := store.callLog(); len(calls) != 0 {
		t.Fatalf("outcome calls %v while the database was down", calls)
	}
	if a.Ready() {
		t.Errorf("Ready() = true while the queue database is down")
	}
	store.down.Store(false)
	waitFor(t, "release", func() bool { return len(store.callLog()) > 0 })
	if got, want := store.callLog(), []string{fmt.Sprintf("release %d", id)}; !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v (never complete a self-fenced job)", got, want)
	}
	job := store.get(id)
	if job.Status != queue.StatusQueued || job.Failures != 0 {
		t.Errorf("job status %s failures %d, want queued with 0 failures", job.Status, job.Failures)
	}
	waitFor(t, "ready again", a.Ready)
}

// While the queue database does not answer, the claim loop backs off (doubling from the
// poll interval up to half a lease) instead of calling it every poll; when it answers
// again, the agent does not rescue for a lease and a heartbeat, so that agents whose
// jobs' leases ran out in the outage release them without a failure counted.
func TestOutageBacksOffAndHoldsRescue(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	cfg := testConfig()
	cfg.LeaseDuration = time.Second // backoff cap 500ms, rescue hold-off 1.02s
	// Rescue (every 50ms) is the likeliest first call after the outage: it must not
	// be the one that finds out the queue is back.
	cfg.AgentHeartbeatInterval = time.Hour
	a, _ := startAgent(t, store, (&fakeSource{rows: countRows}).opener(), cfg)
	waitFor(t, "a first claim", func() bool { return store.claimCalls.Load() > 0 })

	store.down.Store(true)
	before := store.claimCalls.Load()
	time.Sleep(1500 * time.Millisecond)
	during := store.claimCalls.Load() - before
	// Polling every 10ms would be ~150 calls; backing off 10, 20, 40 ... 500ms is ~9.
	if during > 30 {
		t.Errorf("%d claim calls in 1.5s while the queue was down: no backoff", during)
	}
	if during == 0 {
		t.Errorf("no claim call while the queue was down: the agent stopped trying")
	}

	up := time.Now()
	store.down.Store(false)
	waitFor(t, "ready again", a.Ready)
	waitFor(t, "a rescue after the hold-off", func() bool { return !store.firstRescueAfter(up).IsZero() })
	first := store.firstRescueAfter(up)
	// The agent saw the queue answer after up, so its hold-off cannot end before
	// up + 1.02s; an earlier rescue is the bug, whatever the machine's load.
	if hold := cfg.LeaseDuration + cfg.HeartbeatInterval; first.Sub(up) < hold {
		t.Errorf("rescued %v after the queue answered again, want no rescue for %v", first.Sub(up), hold)
	}
	before = store.claimCalls.Load()
	waitFor(t, "claims at the poll rate again", func() bool { return store.claimCalls.Load()-before > 20 })
}

// An agent that had to wait for its queue at start (QueueJustBack) holds off rescue as
// after an outage: the expired leases it would find are other agents' to release.
func TestQueueJustBackHoldsRescue(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	cfg := testConfig()
	cfg.LeaseDuration = time.Second // hold-off 1.02s
	cfg.QueueJustBack = true
	start := time.Now()
	startAgent(t, store, (&fakeSource{rows: countRows}).opener(), cfg)
	waitFor(t, "a rescue after the hold-off", func() bool { return !store.firstRescueAfter(start).IsZero() })
	if d, hold := store.firstRescueAfter(start).Sub(start), cfg.LeaseDuration+cfg.HeartbeatInterval; d < hold {
		t.Errorf("first rescue %v after start, want none for %v", d, hold)
	}
}

// A claim that committed while its answer was lost leaves a job leased to the agent
// that never started it. The agent gave the lease tokens with the claim, so it gives
// the job back (no failure counted) before it claims again, and then runs it.
func TestLostClaimAnswerReleased(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	id := store.enqueue("numbers", numbersDef, `{"count": 2}`)
	store.loseClaimAnswer.Store(true)
	startAgent(t, store, (&fakeSource{rows: countRows}).opener(), testConfig())
	waitFor(t, "the claim committed without an answer", func() bool { return store.get(id).Status == queue.StatusRunning })
	store.loseClaimAnswer.Store(false)
	waitFor(t, "the job run after all", func() bool { return store.get(id).Status == queue.StatusSucceeded })
	calls := store.callLog()
	if len(calls) < 2 || calls[0] != fmt.Sprintf("release-token %d", id) || calls[len(calls)-1] != fmt.Sprintf("complete %d", id) {
		t.Errorf("calls %v, want the lost claim released by token, then the job completed", calls)
	}
	if j := store.get(id); j.Failures != 0 {
		t.Errorf("failures %d, want 0", j.Failures)
	}
}

func TestShutdownAfterGraceReleases(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	src := &fakeSource{rows: endlessRows}
	id := store.enqueue("numbers", numbersDef, `{"count": 1}`)
	cfg := testConfig()
	cfg.Grace = 100 * time.Millisecond
	_, stop := startAgent(t, store, src.opener(), cfg)

	waitFor(t, "rows reported by a heartbeat", func() bool { return store.get(id).Rows > 0 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	job := store.get(id)
	if job.Status != queue.StatusQueued || job.Failures != 0 {
		t.Errorf("job status %s failures %d, want queued with 0 failures", job.Status, job.Failures)
	}
	if got, want := store.callLog(), []string{fmt.Sprintf("release %d", id)}; !slices.Equal(got, want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	if n := src.running.Load(); n != 0 {
		t.Errorf("%d queries still running after Run returned", n)
	}
}

func TestShutdownWithinGraceCompletes(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	gate := make(chan struct{})
	src := &fakeSource{rows: func(ctx context.Context, sql string, params map[string]any) (source.Rows, error) {
		return &genRows{ctx: ctx, n: 3, gate: gate}, nil
	}}
	id := store.enqueue("numbers", numbersDef, `{"count": 3}`)
	cfg := testConfig()
	cfg.Grace = time.Minute
	a, stop := startAgent(t, store, src.opener(), cfg)

	waitFor(t, "query running", func() bool { return src.running.Load() == 1 })
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	waitFor(t, "draining", a.Draining)
	later := store.enqueue("numbers", numbersDef, `{"count": 3}`)
	close(gate)
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if job := store.get(id); job.Status != queue.StatusSucceeded || job.Rows != 3 {
		t.Errorf("job status %s rows %d, want succeeded with 3", job.Status, job.Rows)
	}
	if job := store.get(later); job.Status != queue.StatusQueued || job.Attempt != 0 {
		t.Errorf("job enqueued during shutdown: status %s attempt %d, want never claimed", job.Status, job.Attempt)
	}
}

func TestTimeoutFails(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	src := &fakeSource{rows: endlessRows}
	id := store.enqueue("numbers", numbersDef, `{"count": 1}`)
	store.setTimeout(id, 150*time.Millisecond)
	startAgent(t, store, src.opener(), testConfig())

	waitFor(t, "job to end", func() bool { return store.get(id).Status.Terminal() })
	job := store.get(id)
	if job.Status != queue.StatusFailed || job.Error != "timeout after 150ms" {
		t.Errorf("job status %s error %q, want failed with \"timeout after 150ms\"", job.Status, job.Error)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	src := &fakeSource{rows: func(ctx context.Context, sql string, params map[string]any) (source.Rows, error) {
		return &genRows{ctx: ctx, n: 3, gate: slowGate(ctx, 2*time.Millisecond)}, nil
	}}
	var ids []int64
	for range 12 {
		ids = append(ids, store.enqueue("numbers", numbersDef, `{"count": 3}`))
	}
	cfg := testConfig()
	cfg.Concurrency = 3
	startAgent(t, store, src.opener(), cfg)

	waitFor(t, "all jobs to end", func() bool {
		for _, id := range ids {
			if !store.get(id).Status.Terminal() {
				return false
			}
		}
		return true
	})
	for _, id := range ids {
		if st := store.get(id).Status; st != queue.StatusSucceeded {
			t.Errorf("job %d: %s, want succeeded", id, st)
		}
	}
	if m := src.maxRun.Load(); m > 3 || m < 1 {
		t.Errorf("at most %d queries ran at once, want 1..3", m)
	}
	if q := src.queries.Load(); q != 12 {
		t.Errorf("%d queries, want 12", q)
	}
}

func TestJobFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		def       string
		params    string
		err       error
		panicWith string
		status    queue.Status // queued: a retry was scheduled
		errHas    string
	}{
		{name: "source unavailable", def: numbersDef, params: `{"count": 1}`,
			err: fmt.Errorf("dial tcp: %w", source.ErrUnavailable), status: queue.StatusQueued, errHas: "source unavailable"},
		{name: "query error", def: numbersDef, params: `{"count": 1}`,
			err: errBoom, status: queue.StatusQueued, errHas: "boom"},
		{name: "bad param", def: numbersDef, params: `{"count": "many"}`,
			status: queue.StatusFailed, errHas: "count"},
		{name: "bad definition", def: "name: numbers\nsource: demo\nsql: SELECT :nope\n", params: `{}`,
			status: queue.StatusFailed, errHas: "nope"},
		{name: "panic", def: numbersDef, params: `{"count": 1}`, panicWith: "kaboom",
			status: queue.StatusFailed, errHas: "panic: kaboom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := newMemStore()
			var fixed atomic.Bool
			src := &fakeSource{rows: func(ctx context.Context, sql string, params map[string]any) (source.Rows, error) {
				if fixed.Load() {
					return countRows(ctx, sql, params)
				}
				if tt.panicWith != "" {
					panic(tt.panicWith)
				}
				if tt.err != nil {
					return nil, tt.err
				}
				return countRows(ctx, sql, params)
			}}
			id := store.enqueue("numbers", tt.def, tt.params)
			startAgent(t, store, src.opener(), testConfig())
			waitFor(t, "the attempt to end", func() bool { return len(store.callLog()) > 0 })
			job := store.get(id)
			if job.Status != tt.status || job.Failures != 1 || !strings.Contains(job.Error, tt.errHas) {
				t.Errorf("job status %s failures %d error %q; want %s, 1 failure, error containing %q",
					job.Status, job.Failures, job.Error, tt.status, tt.errHas)
			}
			// The agent lives on and runs the next job.
			fixed.Store(true)
			next := store.enqueue("numbers", numbersDef, `{"count": 2}`)
			waitFor(t, "next job", func() bool { return store.get(next).Status.Terminal() })
			if st := store.get(next).Status; st != queue.StatusSucceeded {
				t.Errorf("next job %s, want succeeded", st)
			}
		})
	}
}

func TestDrain(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	gate := make(chan struct{})
	src := &fakeSource{rows: func(ctx context.Context, sql string, params map[string]any) (source.Rows, error) {
		return &genRows{ctx: ctx, n: 1, gate: gate}, nil
	}}
	first := store.enqueue("numbers", numbersDef, `{"count": 1}`)
	a, _ := startAgent(t, store, src.opener(), testConfig())
	waitFor(t, "query running", func() bool { return src.running.Load() == 1 })
	if !a.Ready() || a.Draining() || a.Running() != 1 {
		t.Fatalf("before drain: ready %v draining %v running %d", a.Ready(), a.Draining(), a.Running())
	}
	a.Drain()
	second := store.enqueue("numbers", numbersDef, `{"count": 1}`)
	close(gate)
	waitFor(t, "first job to end", func() bool { return store.get(first).Status.Terminal() })
	if st := store.get(first).Status; st != queue.StatusSucceeded {
		t.Errorf("first job %s, want succeeded", st)
	}
	// Let several polls and presence beats go by, then check nothing was claimed.
	store.mu.Lock()
	beats := len(store.agents)
	store.mu.Unlock()
	waitFor(t, "presence beats", func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		return len(store.agents) >= beats+3 && store.agents[len(store.agents)-1].Draining
	})
	if job := store.get(second); job.Attempt != 0 {
		t.Errorf("job enqueued after Drain was claimed (attempt %d)", job.Attempt)
	}
	if a.Ready() || !a.Draining() {
		t.Errorf("after drain: ready %v draining %v", a.Ready(), a.Draining())
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		2 * time.Hour:                    "2h",
		90 * time.Minute:                 "1h30m",
		90 * time.Second:                 "1m30s",
		time.Hour + 30*time.Second:       "1h0m30s",
		150 * time.Millisecond:           "150ms",
		10 * time.Second:                 "10s",
		3*time.Hour + 20*time.Minute + 0: "3h20m",
	} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
