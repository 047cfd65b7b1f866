package agent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/internal/source"
)

// get asks h for path and returns the status and body.
func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// scrape reads /metrics into series -> value, a series written as Prometheus's text
// format writes it: name{label="value",...} with labels in name order.
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	code, body := get(t, h, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("/metrics: bad line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics: bad value in %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// checkSeries compares the scraped series named in want; a NaN-free -1 in want means
// "at least 1".
func checkSeries(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for series, w := range want {
		g, ok := got[series]
		switch {
		case !ok:
			t.Errorf("%s missing from /metrics", series)
		case w == atLeastOne && g < 1:
			t.Errorf("%s = %v, want at least 1", series, g)
		case w != atLeastOne && g != w:
			t.Errorf("%s = %v, want %v", series, g, w)
		}
	}
}

const atLeastOne = -1

func TestHealthz(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	a := New(store, results.InQueue(store), (&fakeSource{rows: countRows}).opener(), testConfig(), nil)
	h := a.Handler()
	if code, body := get(t, h, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz before Run: %d %q, want 503", code, body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "first presence beat", func() bool { _, ok := store.lastBeat(); return ok })
	if code, body := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while running: %d %q, want 200", code, body)
	}
	// Healthy is not ready: a queue outage makes the agent unready, not dead.
	store.down.Store(true)
	waitFor(t, "not ready", func() bool { return !a.Ready() })
	if code, body := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with the queue down: %d %q, want 200", code, body)
	}
	store.down.Store(false)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if code, body := get(t, h, "/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz after Run: %d %q, want 503", code, body)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		breakIt  func(a *Agent, s *memStore)
		wantCode int
		wantBody string
	}{
		{name: "ready", breakIt: func(*Agent, *memStore) {}, wantCode: http.StatusOK, wantBody: "ready"},
		{name: "draining", breakIt: func(a *Agent, _ *memStore) { a.Drain() },
			wantCode: http.StatusServiceUnavailable, wantBody: "draining"},
		{name: "queue down", breakIt: func(_ *Agent, s *memStore) { s.down.Store(true) },
			wantCode: http.StatusServiceUnavailable, wantBody: "queue database unavailable: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := newMemStore()
			a, _ := startAgent(t, store, (&fakeSource{rows: countRows}).opener(), testConfig())
			h := a.Handler()
			waitFor(t, "first presence beat", func() bool { _, ok := store.lastBeat(); return ok })
			tt.breakIt(a, store)
			// A failed call is noticed by the next poll; wait for the state, then ask.
			waitFor(t, "readiness to settle", func() bool { return a.Ready() == (tt.wantCode == http.StatusOK) })
			code, body := get(t, h, "/readyz")
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("/readyz: %d %q, want %d with %q", code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestReadyzRecovers(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	a, _ := startAgent(t, store, (&fakeSource{rows: countRows}).opener(), testConfig())
	h := a.Handler()
	waitFor(t, "first presence beat", func() bool { _, ok := store.lastBeat(); return ok })
	store.down.Store(true)
	waitFor(t, "not ready", func() bool { code, _ := get(t, h, "/readyz"); return code == http.StatusServiceUnavailable })
	if _, body := get(t, h, "/readyz"); !strings.Contains(body, "connection refused") {
		t.Errorf("/readyz body %q, want the queue's error", body)
	}
	store.down.Store(false)
	waitFor(t, "ready again", func() bool { code, _ := get(t, h, "/readyz"); return code == http.StatusOK })
}

func TestListen(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	cfg := testConfig()
	cfg.Listen = "127.0.0.1:0"
	a, stop := startAgent(t, store, (&fakeSource{rows: countRows}).opener(), cfg)
	waitFor(t, "listening", func() bool { return a.ListenAddr() != nil })
	base := "http://" + a.ListenAddr().String()
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d %q, want 200", path, resp.StatusCode, body)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Errorf("endpoints still served after Run returned")
	}
}

func TestListenInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig()
	cfg.Listen = ln.Addr().String()
	store := newMemStore()
	a := New(store, results.InQueue(store), (&fakeSource{rows: countRows}).opener(), cfg, nil)
	err = a.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), cfg.Listen) {
		t.Fatalf("Run = %v, want a listen error naming %s", err, cfg.Listen)
	}
	if _, ok := store.lastBeat(); ok {
		t.Errorf("agent announced itself although it could not serve its endpoints")
	}
}

func TestMetricsAfterSuccess(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	gate := make(chan struct{})
	src := &fakeSource{rows: func(ctx context.Context, sql string, params map[string]any) (source.Rows, error) {
		return &genRows{ctx: ctx, n: 7, gate: gate}, nil
	}}
	id := store.enqueue("numbers", numbersDef, `{"count": 7}`)
	a := New(store, results.InQueue(store), src.opener(), testConfig(), slog.New(slog.NewTextHandler(tWriter{t}, nil)))
	a.metrics.queue.maxAge = 0 // every scrape reads the queue
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	h := a.Handler()

	waitFor(t, "query running", func() bool { return src.running.Load() == 1 })
	checkSeries(t, scrape(t, h), map[string]float64{
		`rpt_agent_running_jobs`:                   1,
		`rpt_agent_draining`:                       0,
		`rpt_queue_depth{state="running"}`:         1,
		`rpt_queue_depth{state="queued"}`:          0,
		`rpt_slots_in_use{scope="report:numbers"}`: 1,
		`rpt_queue_stats_up`:                       1,
		`rpt_stale_writes_rejected_total`:          0,
		`rpt_lease_rescues_total`:                  0,
		`rpt_queue_oldest_queued_seconds`:          0,
	})

	close(gate)
	waitFor(t, "job to succeed", func() bool { return store.get(id).Status == queue.StatusSucceeded })
	a.Drain()
	store.enqueue("numbers", numbersDef, `{"count": 1}`)
	store.enqueue("numbers", numbersDef, `{"count": 1}`)
	waitFor(t, "job unregistered", func() bool { return a.Running() == 0 })
	got := scrape(t, h)
	checkSeries(t, got, map[string]float64{
		`rpt_jobs_finished_total{outcome="succeeded",report="numbers"}`: 1,
		`rpt_job_duration_seconds_count{report="numbers"}`:              1,
		`rpt_job_duration_seconds_bucket{report="numbers",le="14400"}`:  1,
		`rpt_job_duration_seconds_bucket{report="numbers",le="+Inf"}`:   1,
		`rpt_agent_running_jobs`:                                        0,
		`rpt_agent_draining`:                                            1,
		`rpt_queue_depth{state="queued"}`:                               2,
		`rpt_queue_depth{state="running"}`:                              0,
		`rpt_stale_writes_rejected_total`:                               0,
	})
	if _, ok := got[`rpt_job_duration_seconds_bucket{report="numbers",le="0.1"}`]; !ok {
		t.Errorf("histogram has no 0.1 s bucket")
	}
	for series := range got {
		if strings.HasPrefix(series, "rpt_jobs_finished_total") && !strings.Contains(series, `outcome="succeeded"`) {
			t.Errorf("unexpected outcome series %s", series)
		}
	}
}

func TestMetricsQueueDown(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	a := New(store, results.InQueue(store), (&fakeSource{rows: countRows}).opener(), testConfig(), nil)
	a.metrics.queue.maxAge = 0
	store.down.Store(true)
	got := scrape(t, a.Handler())
	checkSeries(t, got, map[string]float64{`rpt_queue_stats_up`: 0, `rpt_agent_running_jobs`: 0})
	for series := range got {
		if strings.HasPrefix(series, "rpt_queue_depth") {
			t.Errorf("%s reported while the queue is down; want no figure rather than a made-up one", series)
		}
	}
}

func TestMetricsAfterLeaseLost(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	src := &fakeSource{rows: endlessRows}
	id := store.enqueue("numbers", numbersDef, `{"count": 1}`)
	a, _ := startAgent(t, store, src.opener(), testConfig())

	waitFor(t, "rows reported by a heartbeat", func() bool { return store.get(id).Rows > 0 })
	store.steal(id)
	waitFor(t, "job stopped", func() bool { return a.Running() == 0 })
	got := scrape(t, a.Handler())
	checkSeries(t, got, map[string]float64{
		`rpt_jobs_finished_total{outcome="lease_lost",report="numbers"}`: 1,
		`rpt_job_duration_seconds_count{report="numbers"}`:               1,
		`rpt_stale_writes_rejected_total`:                                atLeastOne,
	})
	if _, ok := got[`rpt_jobs_finished_total{outcome="succeeded",report="numbers"}`]; ok {
		t.Errorf("a job whose lease was lost counted as succeeded")
	}
}

func TestMetricsRescues(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	a, _ := startAgent(t, store, (&fakeSource{rows: countRows}).opener(), testConfig())
	h := a.Handler()
	store.rescues.Store(3)
	waitFor(t, "rescue counted", func() bool { return scrape(t, h)["rpt_lease_rescues_total"] > 0 })
	store.rescues.Store(2)
	waitFor(t, "second rescue counted", func() bool { return store.rescues.Load() == 0 })
	waitFor(t, "another rescue round", func() bool { return scrape(t, h)["rpt_lease_rescues_total"] >= 5 })
	checkSeries(t, scrape(t, h), map[string]float64{`rpt_lease_rescues_total`: 5})
}

func TestMetricOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		out    outcome
		status queue.Status
		want   string
	}{
		{outComplete, "", outcomeSucceeded},
		{outCancelled, "", outcomeCancelled},
		{outRelease, "", outcomeReleased},
		{outDrop, "", outcomeLeaseLost},
		{outFail, queue.StatusQueued, outcomeRetry},
		{outFail, queue.StatusFailed, outcomeFailed},
		{outFail, queue.StatusCancelled, outcomeCancelled},
	}
	for _, tt := range tests {
		if got := metricOutcome(tt.out, tt.status); got != tt.want {
			t.Errorf("metricOutcome(%s, %q) = %s, want %s", tt.out, tt.status, got, tt.want)
		}
	}
}

func TestMetricsFailures(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	src := &fakeSource{rows: func(ctx context.Context, sql string, params map[string]any) (source.Rows, error) {
		return nil, errBoom
	}}
	retried := store.enqueue("numbers", numbersDef, `{"count": 1}`)
	bad := store.enqueue("numbers", numbersDef, `{"count": "many"}`)
	a, _ := startAgent(t, store, src.opener(), testConfig())
	waitFor(t, "both attempts to end", func() bool { return len(store.callLog()) == 2 })
	if st := store.get(retried).Status; st != queue.StatusQueued {
		t.Fatalf("retried job %s, want queued", st)
	}
	if st := store.get(bad).Status; st != queue.StatusFailed {
		t.Fatalf("bad job %s, want failed", st)
	}
	checkSeries(t, scrape(t, a.Handler()), map[string]float64{
		`rpt_jobs_finished_total{outcome="retry",report="numbers"}`:  1,
		`rpt_jobs_finished_total{outcome="failed",report="numbers"}`: 1,
		`rpt_job_duration_seconds_count{report="numbers"}`:           2,
	})
}

func TestDrainRequested(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	gate := make(chan struct{})
	src := &fakeSource{rows: func(ctx context.Context, sql string, params map[string]any) (source.Rows, error) {
		return &genRows{ctx: ctx, n: 1, gate: gate}, nil
	}}
	first := store.enqueue("numbers", numbersDef, `{"count": 1}`)
	cfg := testConfig()
	a, _ := startAgent(t, store, src.opener(), cfg)
	waitFor(t, "query running", func() bool { return src.running.Load() == 1 })

	store.requestDrain(cfg.Name)
	waitFor(t, "agent to drain", a.Draining)
	waitFor(t, "presence row to say draining", func() bool { b, _ := store.lastBeat(); return b.Draining })
	second := store.enqueue("numbers", numbersDef, `{"count": 1}`)
	if code, _ := get(t, a.Handler(), "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: %d, want 503", code)
	}
	close(gate)
	waitFor(t, "running job to end", func() bool { return store.get(first).Status.Terminal() })
	if st := store.get(first).Status; st != queue.StatusSucceeded {
		t.Errorf("running job %s, want succeeded", st)
	}
	// Several polls and presence beats go by without a claim.
	store.mu.Lock()
	beats := len(store.agents)
	store.mu.Unlock()
	waitFor(t, "presence beats", func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		return len(store.agents) >= beats+5
	})
	if job := store.get(second); job.Status != queue.StatusQueued || job.Attempt != 0 {
		t.Errorf("job queued after the drain request: status %s attempt %d, want queued, never claimed", job.Status, job.Attempt)
	}
	if b, _ := store.lastBeat(); !b.Draining || b.Running != 0 {
		t.Errorf("last presence beat draining %v running %d, want draining with 0 running", b.Draining, b.Running)
	}
}

// A drain request an earlier process of the same name left (a DaemonSet pod drained,
// then replaced on its node) does not hold the new process: it clears the request,
// says so, and claims work.
func TestEarlierDrainRequestCleared(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	cfg := testConfig()
	store.AgentHeartbeat(context.Background(), queue.Agent{Name: cfg.Name, Host: "old-pod", Draining: true})
	store.requestDrain(cfg.Name)
	a, _ := startAgent(t, store, (&fakeSource{rows: countRows}).opener(), cfg)
	// Several presence beats (each also reads the drain request) go by first.
	waitFor(t, "presence beats", func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		return len(store.agents) >= 6
	})
	id := store.enqueue("numbers", numbersDef, `{"count": 1}`)
	waitFor(t, "the job to run", func() bool { return store.get(id).Status.Terminal() })
	if st := store.get(id).Status; st != queue.StatusSucceeded {
		t.Errorf("job %s, want succeeded", st)
	}
	if a.Draining() {
		t.Error("the new agent drains because of its predecessor's request")
	}
	if code, _ := get(t, a.Handler(), "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz %d, want 200", code)
	}
}

func TestPruner(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	tests := []struct {
		name        string
		retention   Retention
		wantResults time.Duration // 0: ResultsBefore zero (keep forever)
		wantJobs    time.Duration
	}{
		{name: "defaults", retention: Retention{Results: 7 * day, Jobs: 90 * day}, wantResults: 7 * day, wantJobs: 90 * day},
		{name: "results only", retention: Retention{Results: time.Hour}, wantResults: time.Hour},
		{name: "jobs only", retention: Retention{Jobs: 30 * day}, wantJobs: 30 * day},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := newMemStore()
			cfg := testConfig()
			cfg.PruneInterval = 10 * time.Millisecond
			cfg.Retention = tt.retention
			rs := &pruneRecorder{Store: results.InQueue(store)}
			before := time.Now()
			_, stop := startAgentWith(t, store, rs, (&fakeSource{rows: countRows}).opener(), cfg)
			waitFor(t, "two prunes", func() bool { return len(store.pruneLog()) >= 2 })
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			after := time.Now()
			// Results are pruned through the results store, jobs through the queue.
			cutoffs := rs.log()
			if len(cutoffs) < 2 {
				t.Fatalf("%d results prunes, want at least 2", len(cutoffs))
			}
			for i, c := range cutoffs {
				checkCutoff(t, fmt.Sprintf("results prune %d", i+1), c, before, after, tt.wantResults)
			}
			for i, p := range store.pruneLog() {
				checkCutoff(t, fmt.Sprintf("prune %d ResultsBefore", i+1), p.ResultsBefore, before, after, 0)
				checkCutoff(t, fmt.Sprintf("prune %d JobsBefore", i+1), p.JobsBefore, before, after, tt.wantJobs)
			}
		})
	}
}

// pruneRecorder is a results store that records the cut-offs it is asked to prune at
// and prunes nothing.
type pruneRecorder struct {
	results.Store
	mu      sync.Mutex
	cutoffs []time.Time
}

func (r *pruneRecorder) Prune(_ context.Context, before time.Time) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cutoffs = append(r.cutoffs, before)
	return 0, nil
}

func (r *pruneRecorder) log() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cutoffs)
}

// checkCutoff checks that got is now - retention for a now between before and after,
// or zero when retention is 0.
func checkCutoff(t *testing.T, what string, got, before, after time.Time, retention time.Duration) {
	t.Helper()
	if retention == 0 {
		if !got.IsZero() {
			t.Errorf("%s = %v, want zero (keep forever)", what, got)
		}
		return
	}
	lo, hi := before.Add(-retention), after.Add(-retention)
	if got.Before(lo) || got.After(hi) {
		t.Errorf("%s = %v, want between %v and %v", what, got, lo, hi)
	}
}

func TestPrunerDisabled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		interval  time.Duration
		retention Retention
	}{
		{name: "no interval", interval: 0, retention: Retention{Results: time.Hour, Jobs: time.Hour}},
		{name: "no retention", interval: time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := newMemStore()
			cfg := testConfig()
			cfg.PruneInterval = tt.interval
			cfg.Retention = tt.retention
			_, stop := startAgent(t, store, (&fakeSource{rows: countRows}).opener(), cfg)
			// Many presence beats (20ms) span many would-be prune intervals.
			waitFor(t, "presence beats", func() bool {
				store.mu.Lock()
				defer store.mu.Unlock()
				return len(store.agents) >= 5
			})
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if n := len(store.pruneLog()); n != 0 {
				t.Errorf("%d prunes, want none", n)
			}
		})
	}
}
