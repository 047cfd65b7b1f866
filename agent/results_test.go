package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"rpt/internal/queue"
	"rpt/internal/results"
)

// bigDef returns about 4 MB of hex text that compresses only to half: four chunks.
const bigDef = `name: big
source: demo
sql: |
  WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 4000)
  SELECT x, hex(randomblob(500)) AS pad FROM c
`

// TestSQLiteFullQueue: a SQLite queue that fills up while a result is written (made
// full with PRAGMA max_page_count on the store's writer connection) fails the attempt
// cleanly: retryable, its partial chunks removed, and the queue goes on running jobs.
// It used to keep the chunks, so nothing else fit.
func TestSQLiteFullQueue(t *testing.T) {
	t.Parallel()
	env := newSQLiteEnv(t)
	big := env.submit(t, bigDef, nil)
	var pages int
	if err := env.store.DB().QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	// Room for about one compressed chunk (4 KiB pages) and the queue's own rows.
	if _, err := env.store.DB().Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages+200)); err != nil {
		t.Fatal(err)
	}
	startAgent(t, env.store, env.open, testConfig())

	waitFor(t, "the big job's attempt to fail", func() bool { return env.job(t, big).Failures == 1 })
	job := env.job(t, big)
	if job.Status != queue.StatusQueued || !strings.Contains(job.Error, "results store unavailable") || !strings.Contains(job.Error, "full") {
		t.Errorf("big job %s, error %q; want queued again, the store full", job.Status, job.Error)
	}
	if _, err := env.store.ResultChunkGet(context.Background(), big, 1, 0); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("chunk 0 of the failed attempt: %v, want it discarded", err)
	}
	// The queue stays usable: the next job runs and completes in the freed room.
	small := env.submit(t, balancesDef, nil)
	waitFor(t, "the small job to end", func() bool { return env.job(t, small).Status.Terminal() })
	if j := env.job(t, small); j.Status != queue.StatusSucceeded || j.ResultChunks != 1 {
		t.Errorf("small job after the full one: %s, %d chunks, error %q; want succeeded with 1", j.Status, j.ResultChunks, j.Error)
	}
}

// faultyResults is a results store whose puts fail, after okPuts good ones, with a
// fault of the store itself (what a full disk or an I/O error gives). It records the
// job's status each time Discard is called.
type faultyResults struct {
	results.Store
	mem    *memStore
	okPuts int64
	puts   atomic.Int64

	mu              sync.Mutex
	statusAtDiscard []queue.Status
}

func (f *faultyResults) ChunkPut(ctx context.Context, l queue.Lease, seq int, data []byte) error {
	if f.puts.Add(1) > f.okPuts {
		return fmt.Errorf("put result chunk %d: %w: database or disk is full", seq, results.ErrUnavailable)
	}
	return f.Store.ChunkPut(ctx, l, seq, data)
}

func (f *faultyResults) Discard(ctx context.Context, jobID int64, attempt int) (int, error) {
	f.mu.Lock()
	f.statusAtDiscard = append(f.statusAtDiscard, f.mem.get(jobID).Status)
	f.mu.Unlock()
	return f.Store.Discard(ctx, jobID, attempt)
}

func (s *memStore) chunkCount(id int64, attempt int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.jobs[id].chunks {
		if k[0] == attempt {
			n++
		}
	}
	return n
}

// TestResultsStoreFaultFailsAttempt: a results store that cannot keep a chunk fails the
// attempt, retryable, with its partial result discarded before the failure is written
// (on a full disk the failure needs that room). It used to leave the chunks behind.
func TestResultsStoreFaultFailsAttempt(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	id := store.enqueue("numbers", numbersDef, `{"count": 25000}`) // three chunks
	rs := &faultyResults{Store: results.InQueue(store), mem: store, okPuts: 1}
	startAgentWith(t, store, rs, (&fakeSource{rows: countRows}).opener(), testConfig())

	waitFor(t, "the attempt to fail", func() bool { return store.get(id).Failures == 1 })
	job := store.get(id)
	if job.Status != queue.StatusQueued || !strings.Contains(job.Error, "results store unavailable") {
		t.Errorf("job %s, error %q; want queued again (retryable) with the store's fault", job.Status, job.Error)
	}
	if n := store.chunkCount(id, 1); n != 0 {
		t.Errorf("%d chunks of the failed attempt left, want 0", n)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.statusAtDiscard) != 1 || rs.statusAtDiscard[0] != queue.StatusRunning {
		t.Errorf("discards at job status %v, want one, while the job still ran (before its failure was written)", rs.statusAtDiscard)
	}
}

// fullOnComplete is a queue that refuses a completion for want of space, as a full
// SQLite file does when the completion's event needs a new page.
type fullOnComplete struct {
	*memStore
	refused atomic.Int64
}

func (f *fullOnComplete) JobComplete(ctx context.Context, l queue.Lease, c queue.Completion) error {
	f.refused.Add(1)
	return fmt.Errorf("complete job %d: %w: database or disk is full", l.JobID, queue.ErrFull)
}

// TestFullQueueRefusesCompletion: when the queue cannot take the completion, the agent
// discards the result and fails the attempt, retryable, instead of retrying the
// completion for ever with the job left running.
func TestFullQueueRefusesCompletion(t *testing.T) {
	t.Parallel()
	mem := newMemStore()
	id := mem.enqueue("numbers", numbersDef, `{"count": 25000}`)
	store := &fullOnComplete{memStore: mem}
	startAgentWith(t, store, results.InQueue(mem), (&fakeSource{rows: countRows}).opener(), testConfig())

	waitFor(t, "the attempt to end", func() bool { return mem.get(id).Status != queue.StatusRunning && mem.get(id).Failures == 1 })
	job := mem.get(id)
	if job.Status != queue.StatusQueued || !strings.Contains(job.Error, "results store unavailable: record the result") {
		t.Errorf("job %s, error %q; want queued again with the refused completion's error", job.Status, job.Error)
	}
	if n := mem.chunkCount(id, 1); n != 0 {
		t.Errorf("%d chunks of the attempt left, want 0 (discarded to make room)", n)
	}
	if n := store.refused.Load(); n != 1 {
		t.Errorf("completion tried %d times, want once", n)
	}
}

// TestCompletionRecordsResult: the completion records the store the result went to and
// its chunk count, which readers check the result against.
func TestCompletionRecordsResult(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	id := store.enqueue("numbers", numbersDef, `{"count": 25000}`) // 10,000 rows a chunk
	startAgent(t, store, (&fakeSource{rows: countRows}).opener(), testConfig())
	waitFor(t, "the job to end", func() bool { return store.get(id).Status.Terminal() })
	job := store.get(id)
	if job.Status != queue.StatusSucceeded || job.ResultStore != results.QueueStoreName || job.ResultChunks != 3 {
		t.Fatalf("job %s, store %q, %d chunks, error %q; want succeeded in %q with 3", job.Status, job.ResultStore, job.ResultChunks, job.Error, results.QueueStoreName)
	}
	if got := readResult(t, store, id, job.ResultAttempt); len(got) != 25000 {
		t.Errorf("read %d rows, want 25000", len(got))
	}
}
