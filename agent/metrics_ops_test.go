package agent

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"rpt/internal/queue"
	"rpt/internal/results"
)

// TestMetricsClaimsAndWaiting: claims are counted by report, and the due queued jobs are
// broken down by report and source.
func TestMetricsClaimsAndWaiting(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	id := store.enqueue("numbers", numbersDef, `{"count": 3}`)
	a, _ := startAgent(t, store, (&fakeSource{rows: countRows}).opener(), testConfig())
	a.metrics.queue.maxAge = 0
	waitFor(t, "job to succeed", func() bool { return store.get(id).Status == queue.StatusSucceeded })
	a.Drain()
	waitFor(t, "job unregistered", func() bool { return a.Running() == 0 })
	store.enqueue("numbers", numbersDef, `{"count": 1}`)
	store.enqueue("numbers", numbersDef, `{"count": 2}`)
	store.enqueue("other", numbersDef, `{"count": 1}`)
	got := scrape(t, a.Handler())
	checkSeries(t, got, map[string]float64{
		`rpt_jobs_claimed_total{report="numbers"}`:                       1,
		`rpt_queue_waiting_jobs{report="numbers",source="demo"}`:         2,
		`rpt_queue_waiting_jobs{report="other",source="demo"}`:           1,
		`rpt_queue_waiting_oldest_seconds{report="other",source="demo"}`: 0,
		`rpt_stale_completions_refused_total`:                            0,
	})
	if _, ok := got[`rpt_jobs_claimed_total{report="other"}`]; ok {
		t.Error("a report never claimed has a claim count")
	}
	for series := range got {
		if strings.HasPrefix(series, "rpt_mqtt_") {
			t.Errorf("%s reported by an agent without a broker", series)
		}
	}
}

type fakeBroker struct {
	up      atomic.Bool
	dropped atomic.Uint64
}

func (b *fakeBroker) Connected() bool { return b.up.Load() }
func (b *fakeBroker) Dropped() uint64 { return b.dropped.Load() }

// TestMetricsBroker: with a broker, its connection state and the events dropped while it
// was away are read at each scrape.
func TestMetricsBroker(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	a := New(store, results.InQueue(store), (&fakeSource{rows: countRows}).opener(), testConfig(), nil)
	b := &fakeBroker{}
	b.up.Store(true)
	a.WatchBroker(b)
	checkSeries(t, scrape(t, a.Handler()), map[string]float64{`rpt_mqtt_connected`: 1, `rpt_mqtt_dropped_events_total`: 0})
	b.up.Store(false)
	b.dropped.Store(12)
	checkSeries(t, scrape(t, a.Handler()), map[string]float64{`rpt_mqtt_connected`: 0, `rpt_mqtt_dropped_events_total`: 12})
}

// staleOnComplete refuses every completion as fenced out: the job was rescued while its
// attempt finished.
type staleOnComplete struct{ *memStore }

func (s staleOnComplete) JobComplete(ctx context.Context, l queue.Lease, c queue.Completion) error {
	return fmt.Errorf("complete job %d: %w", l.JobID, queue.ErrLeaseLost)
}

// TestMetricsStaleCompletion: a completion the queue refuses for a lost lease is counted
// as such (not only as a stale write).
func TestMetricsStaleCompletion(t *testing.T) {
	t.Parallel()
	mem := newMemStore()
	mem.enqueue("numbers", numbersDef, `{"count": 3}`)
	store := staleOnComplete{mem}
	a, _ := startAgentWith(t, store, results.InQueue(mem), (&fakeSource{rows: countRows}).opener(), testConfig())
	waitFor(t, "the attempt to end", func() bool {
		return scrape(t, a.Handler())[`rpt_jobs_finished_total{outcome="lease_lost",report="numbers"}`] == 1
	})
	checkSeries(t, scrape(t, a.Handler()), map[string]float64{
		`rpt_stale_completions_refused_total`:      1,
		`rpt_stale_writes_rejected_total`:          atLeastOne,
		`rpt_jobs_claimed_total{report="numbers"}`: 1,
	})
}
