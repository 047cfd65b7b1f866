package agent

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/queue/sqlite"
)

// countingStore counts how the agent writes completions and results.
type countingStore struct {
	*sqlite.Store
	single, batches, batched, chunkPuts, claimsWithBatch atomic.Int64
	mu                                                   sync.Mutex
	largest                                              int
}

func (c *countingStore) JobComplete(ctx context.Context, l queue.Lease, comp queue.Completion) error {
	c.single.Add(1)
	return c.Store.JobComplete(ctx, l, comp)
}

func (c *countingStore) JobCompleteBatch(ctx context.Context, items []queue.CompleteItem, claim *queue.JobClaimParams) ([]error, []*queue.Job, error) {
	c.batches.Add(1)
	c.batched.Add(int64(len(items)))
	if claim != nil {
		c.claimsWithBatch.Add(1)
	}
	c.mu.Lock()
	c.largest = max(c.largest, len(items))
	c.mu.Unlock()
	return c.Store.JobCompleteBatch(ctx, items, claim)
}

func (c *countingStore) ResultChunkPut(ctx context.Context, l queue.Lease, seq int, data []byte) error {
	c.chunkPuts.Add(1)
	return c.Store.ResultChunkPut(ctx, l, seq, data)
}

// Jobs with small results: every completion goes through the batch completer with its
// result in the completion (no chunk written on its own), the claims ride along with
// completions, every result reads back whole, and the agent never runs more jobs than
// its concurrency.
func TestBatchedCompletionCarriesResults(t *testing.T) {
	t.Parallel()
	env := newSQLiteEnv(t)
	const n = 30
	var ids []int64
	for i := range n {
		pcn := "123681"
		if i%2 == 1 {
			pcn = "300758"
		}
		ids = append(ids, env.submit(t, balancesDef, map[string]string{"pcn": pcn}))
	}
	cs := &countingStore{Store: env.store}
	cfg := testConfig()
	cfg.Concurrency = 4
	a, _ := startAgent(t, cs, env.open, cfg)
	maxRunning := 0
	waitFor(t, "all jobs to end", func() bool {
		maxRunning = max(maxRunning, a.Running())
		for _, id := range ids {
			if !env.job(t, id).Status.Terminal() {
				return false
			}
		}
		return true
	})
	for i, id := range ids {
		j := env.job(t, id)
		if j.Status != queue.StatusSucceeded || j.ResultChunks != 1 || j.ResultStore != "queue" {
			t.Fatalf("job %d: %s, %d chunks in %q (%s)", id, j.Status, j.ResultChunks, j.ResultStore, j.Error)
		}
		got := readResult(t, env.store, id, j.ResultAttempt)
		want := 4
		if i%2 == 1 {
			want = 1
		}
		if len(got) != want || int64(len(got)) != j.Rows {
			t.Errorf("job %d: %d result rows, job says %d, want %d", id, len(got), j.Rows, want)
		}
		if i%2 == 1 && fmt.Sprint(got[0]) != "[10000-000 202401 0.07]" {
			t.Errorf("job %d: result %v", id, got)
		}
	}
	if s, b, items := cs.single.Load(), cs.batches.Load(), cs.batched.Load(); s != 0 || items != n || b == 0 {
		t.Errorf("completions: %d single, %d batches of %d items in all; want every one of %d batched", s, b, items, n)
	}
	if p := cs.chunkPuts.Load(); p != 0 {
		t.Errorf("%d chunks were put on their own; small results go with the completion", p)
	}
	if cs.claimsWithBatch.Load() == 0 {
		t.Error("no completion carried a claim, though jobs were waiting")
	}
	if maxRunning > cfg.Concurrency {
		t.Errorf("%d jobs ran at once, concurrency %d", maxRunning, cfg.Concurrency)
	}
	t.Logf("%d completions in %d transactions (largest %d)", n, cs.batches.Load(), cs.largest)
}

// slowBatchStore takes most of a call's time limit for every batch completion, as a
// loaded queue database does: each batch ends in time, but a job whose completion waits
// behind another batch waits longer than one call's limit.
type slowBatchStore struct {
	*countingStore
	delay time.Duration
}

func (s *slowBatchStore) JobCompleteBatch(ctx context.Context, items []queue.CompleteItem, claim *queue.JobClaimParams) ([]error, []*queue.Job, error) {
	time.Sleep(s.delay)
	return s.countingStore.JobCompleteBatch(ctx, items, claim)
}

// A job whose wait for the completer outlasts one call's limit must not stall the
// agent. Once the completer has taken a job's completion it answers it, and then
// waits for the job to end before it starts the jobs it claimed with the batch: a job
// that stopped listening and sent its completion again (to a completer now waiting
// for it) deadlocked both, and the agent retried "complete job N" for ever (seen in
// the rolling-update test at load 20).
func TestSlowBatchCompletionsDoNotStallTheAgent(t *testing.T) {
	t.Parallel()
	env := newSQLiteEnv(t)
	const n = 12
	var ids []int64
	for range n {
		ids = append(ids, env.submit(t, balancesDef, map[string]string{"pcn": "300758"}))
	}
	cfg := testConfig()
	cfg.Concurrency = 4
	cfg.LeaseDuration = 2 * time.Second // a call's limit is a quarter of it: 500ms
	store := &slowBatchStore{countingStore: &countingStore{Store: env.store}, delay: 350 * time.Millisecond}
	startAgent(t, store, env.open, cfg)
	waitFor(t, "all jobs to end", func() bool {
		for _, id := range ids {
			if !env.job(t, id).Status.Terminal() {
				return false
			}
		}
		return true
	})
	for _, id := range ids {
		if j := env.job(t, id); j.Status != queue.StatusSucceeded {
			t.Errorf("job %d: %s (%s)", id, j.Status, j.Error)
		}
	}
}
