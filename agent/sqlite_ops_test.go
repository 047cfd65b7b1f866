package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/source"
)

// agentRow reads the agent's presence row from the real store.
func (e *sqliteEnv) agentRow(t *testing.T, name string) queue.Agent {
	t.Helper()
	a, err := e.store.AgentGet(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSQLiteDrainRequested(t *testing.T) {
	t.Parallel()
	env := newSQLiteEnv(t)
	gate := make(chan struct{})
	src := &fakeSource{rows: func(ctx context.Context, sql string, params map[string]any) (source.Rows, error) {
		return &genRows{ctx: ctx, n: 2, gate: gate}, nil
	}}
	first := env.submit(t, numbersDef, nil)
	cfg := testConfig()
	a, _ := startAgent(t, env.store, src.opener(), cfg)
	waitFor(t, "query running", func() bool { return src.running.Load() == 1 })

	if err := env.store.AgentDrain(context.Background(), cfg.Name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "agent row to say draining", func() bool { return env.agentRow(t, cfg.Name).Draining })
	if !a.Draining() {
		t.Fatalf("the row says draining but the agent does not")
	}
	second := env.submit(t, numbersDef, nil)
	close(gate)
	waitFor(t, "running job to end", func() bool { return env.job(t, first).Status.Terminal() })
	if job := env.job(t, first); job.Status != queue.StatusSucceeded || job.Rows != 2 {
		t.Errorf("running job %s rows %d, want succeeded with 2", job.Status, job.Rows)
	}
	// Let a few presence beats (and many polls) go by after the job ended.
	waitFor(t, "presence beat with nothing running", func() bool { return env.agentRow(t, cfg.Name).Running == 0 })
	for range 3 {
		seen := env.agentRow(t, cfg.Name).LastSeen
		waitFor(t, "next presence beat", func() bool { return env.agentRow(t, cfg.Name).LastSeen.After(seen) })
	}
	if job := env.job(t, second); job.Status != queue.StatusQueued || job.Attempt != 0 {
		t.Errorf("job queued after the drain request: status %s attempt %d, want queued, never claimed", job.Status, job.Attempt)
	}
	row := env.agentRow(t, cfg.Name)
	if !row.Draining || !row.DrainRequested {
		t.Errorf("agent row draining %v drain requested %v, want both", row.Draining, row.DrainRequested)
	}
	if code, body := get(t, a.Handler(), "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz: %d %q, want 503", code, body)
	}
}

func TestSQLiteMetricsAfterRescue(t *testing.T) {
	t.Parallel()
	env := newSQLiteEnv(t)
	store := &flakyStore{Store: env.store}
	// concurrency: 2 gives the job a report:long slot.
	id := env.submit(t, longDef+"concurrency: 2\n", nil)
	cfg := testConfig()
	// Long enough that a loaded machine's slow heartbeats do not self-fence the job
	// (which would release it instead); short enough to expire soon when swallowed.
	cfg.LeaseDuration = 3 * time.Second
	cfg.RescueInterval = 100 * time.Millisecond
	a, _ := startAgent(t, store, env.open, cfg)
	a.metrics.queue.maxAge = 0

	waitFor(t, "job running", func() bool { return env.job(t, id).Status == queue.StatusRunning && a.Running() == 1 })
	checkSeries(t, scrape(t, a.Handler()), map[string]float64{
		`rpt_queue_depth{state="running"}`:      1,
		`rpt_slots_in_use{scope="report:long"}`: 1,
		`rpt_agent_running_jobs`:                1,
	})
	// Heartbeats get lost: the lease expires, the agent's own rescue loop takes the
	// job back, and the next heartbeat that arrives is fenced out. A rescued job is due
	// at once; the pause keeps this agent from claiming it again.
	if err := env.store.PauseSet(context.Background(), queue.PauseReport, "long", true); err != nil {
		t.Fatal(err)
	}
	store.swallow.Store(true)
	waitFor(t, "lease rescued", func() bool { return env.job(t, id).Status == queue.StatusQueued })
	store.swallow.Store(false)
	waitFor(t, "job stopped", func() bool { return a.Running() == 0 })
	got := scrape(t, a.Handler())
	checkSeries(t, got, map[string]float64{
		`rpt_lease_rescues_total`:                                     1,
		`rpt_stale_writes_rejected_total`:                             atLeastOne,
		`rpt_jobs_finished_total{outcome="lease_lost",report="long"}`: 1,
		`rpt_job_duration_seconds_count{report="long"}`:               1,
		// Rescued with a failure counted; the pause keeps it queued.
		`rpt_queue_depth{state="queued"}`:  1, // due at once
		`rpt_queue_depth{state="running"}`: 0,
		`rpt_agent_running_jobs`:           0,
	})
	if _, ok := got[`rpt_slots_in_use{scope="report:long"}`]; ok {
		t.Errorf("slot still in use after the rescue")
	}
}

func TestSQLiteConcurrentPruners(t *testing.T) {
	t.Parallel()
	env := newSQLiteEnv(t)
	ctx := context.Background()
	var done []int64
	for range 3 {
		done = append(done, env.submit(t, balancesDef, nil))
	}
	_, stop := startAgent(t, env.store, env.open, testConfig())
	waitFor(t, "jobs to finish", func() bool {
		for _, id := range done {
			if !env.job(t, id).Status.Terminal() {
				return false
			}
		}
		return true
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	waiting := env.submit(t, balancesDef, nil)

	// Three agents prune at once; none can run the waiting job (no such source), so it
	// stays queued and Prune must leave it alone.
	var agents []*Agent
	for i := range 3 {
		cfg := testConfig()
		cfg.Name = fmt.Sprintf("pruner-%d", i)
		cfg.Sources = []string{"elsewhere"}
		cfg.PruneInterval = 5 * time.Millisecond
		cfg.Retention = Retention{Results: time.Nanosecond, Jobs: time.Nanosecond}
		a, _ := startAgent(t, env.store, env.open, cfg)
		agents = append(agents, a)
	}
	pruned := func(kind string) float64 {
		var n float64
		for _, a := range agents {
			n += scrape(t, a.Handler())[fmt.Sprintf(`rpt_pruned_total{kind=%q}`, kind)]
		}
		return n
	}
	waitFor(t, "finished jobs pruned", func() bool {
		for _, id := range done {
			if _, err := env.store.JobGet(ctx, id); !errors.Is(err, queue.ErrNotFound) {
				return false
			}
		}
		return pruned("jobs") >= 3
	})
	if n := pruned("jobs"); n != 3 {
		t.Errorf("agents counted %v jobs pruned, want 3 (each job once)", n)
	}
	if n := pruned("results"); n > 3 {
		t.Errorf("agents counted %v results pruned, want at most 3", n)
	}
	if job := env.job(t, waiting); job.Status != queue.StatusQueued {
		t.Errorf("queued job %s after pruning, want queued", job.Status)
	}
}
