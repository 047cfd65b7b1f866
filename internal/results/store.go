package results

import (
	"context"
	"errors"
	"fmt"
	"time"

	"rpt/internal/queue"
)

// Store keeps result sets as chunks keyed by (job, attempt, seq). rpt.yaml's results:
// names the store new results are written to; each job records the store its result
// went to (queue.Job.ResultStore), so a reader opens that one whatever results: says
// now. The queue database is the default store (InQueue); another implementation (a
// document store, say) needs no SQL: it keeps opaque byte chunks under those keys.
//
// Every method is safe for concurrent use.
type Store interface {
	// Name is the name jobs record for this store (queue.Completion.ResultStore).
	Name() string
	// ChunkPut stores chunk seq of the lease's attempt, replacing a chunk of the same
	// key (a retried put). A store that can check the lease returns queue.ErrLeaseLost
	// when the job no longer runs under it; one that cannot relies on the key: a stale
	// attempt's chunks are never its job's result, as JobComplete is fenced. A fault of
	// the store itself (disk full, I/O error) wraps ErrUnavailable. The store must not
	// keep data after it returns: the Writer reuses the buffer.
	ChunkPut(ctx context.Context, l queue.Lease, seq int, data []byte) error
	// ChunkGet returns chunk seq of (job, attempt); an error wrapping queue.ErrNotFound
	// when there is no such chunk.
	ChunkGet(ctx context.Context, jobID int64, attempt int, seq int) ([]byte, error)
	// Discard deletes the chunks of an attempt that did not succeed (a failed, cancelled
	// or released attempt), freeing their space at once; it never deletes the chunks of
	// the attempt its job succeeded with. It returns how many chunks it deleted.
	Discard(ctx context.Context, jobID int64, attempt int) (int, error)
	// Prune deletes the results of jobs that finished before the cut-off and returns
	// how many jobs' results it deleted. It deletes chunk 0 of a result no later than
	// its other chunks, so that a reader meeting a missing chunk can tell a pruned result
	// (chunk 0 gone too) from a damaged one.
	Prune(ctx context.Context, before time.Time) (int, error)
	// Close releases what the store holds open.
	Close() error
}

// QueueStoreName is the name of the default store, the queue database; a job that
// records no store (it finished before stores were recorded) has its result there.
const QueueStoreName = "queue"

// Errors of result stores and readers; test them with errors.Is.
var (
	// ErrUnavailable: the store could not keep or return a chunk (disk full, an I/O
	// error, the database gone). The attempt that met it fails and is retried.
	ErrUnavailable = errors.New("results store unavailable")
	// ErrStoreDown: the results store's server does not answer (a network error, no
	// server within the timeout), as opposed to one that answers with an error. It
	// wraps ErrUnavailable; the agent releases the attempt, as when the queue database
	// does not answer, instead of failing it.
	ErrStoreDown = fmt.Errorf("%w: server does not answer", ErrUnavailable)
	// ErrPruned: the result was deleted (retention) while it was being read. It wraps
	// queue.ErrNotFound: to the reader the result is gone.
	ErrPruned = fmt.Errorf("%w: result pruned", queue.ErrNotFound)
	// ErrIncomplete: a chunk of a result is missing while the rest is there.
	ErrIncomplete = errors.New("result incomplete")
	// ErrNotConfigured: a job's result is in a store this process has no configuration for.
	ErrNotConfigured = errors.New("results store not configured")
)

// StoreOf is the name of the store that holds j's result.
func StoreOf(j *queue.Job) string {
	if j.ResultStore == "" {
		return QueueStoreName
	}
	return j.ResultStore
}

// Ref names one stored result set: the job, the attempt and how many chunks it has (0
// when the count was not recorded: a reader then reads until a chunk is missing).
type Ref struct {
	JobID   int64
	Attempt int
	Chunks  int
}

// RefOf is the result of a succeeded job.
func RefOf(j *queue.Job) Ref {
	return Ref{JobID: j.ID, Attempt: j.ResultAttempt, Chunks: j.ResultChunks}
}

// QueueChunks is the part of the queue database that keeps chunks: queue.Store.
type QueueChunks interface {
	ResultChunkPut(ctx context.Context, l queue.Lease, seq int, data []byte) error
	ResultChunkGet(ctx context.Context, jobID int64, attempt int, seq int) ([]byte, error)
	ResultChunkDelete(ctx context.Context, jobID int64, attempt int) (int, error)
	Prune(ctx context.Context, p queue.PruneParams) (queue.PruneResult, error)
}

// InQueue is the results store in the queue database (rpt_results): the default. Its
// Close leaves the queue open: the queue's owner closes it.
func InQueue(q QueueChunks) Store { return queueStore{q} }

type queueStore struct{ q QueueChunks }

func (s queueStore) Name() string { return QueueStoreName }
func (s queueStore) Close() error { return nil }

func (s queueStore) ChunkPut(ctx context.Context, l queue.Lease, seq int, data []byte) error {
	return storeFault(s.q.ResultChunkPut(ctx, l, seq, data))
}

func (s queueStore) ChunkGet(ctx context.Context, jobID int64, attempt int, seq int) ([]byte, error) {
	data, err := s.q.ResultChunkGet(ctx, jobID, attempt, seq)
	return data, storeFault(err)
}

func (s queueStore) Discard(ctx context.Context, jobID int64, attempt int) (int, error) {
	n, err := s.q.ResultChunkDelete(ctx, jobID, attempt)
	return n, storeFault(err)
}

func (s queueStore) Prune(ctx context.Context, before time.Time) (int, error) {
	if before.IsZero() {
		return 0, nil // a zero cut-off keeps everything, as queue.PruneParams says
	}
	res, err := s.q.Prune(ctx, queue.PruneParams{ResultsBefore: before})
	return res.ResultJobs, storeFault(err)
}

// storeFault classes an error of the queue's chunk calls: a lost lease, a missing
// chunk and a cancelled context keep their meaning; anything else is the store failing
// (SQLite's "database or disk is full", an I/O error, the server gone) and wraps
// ErrUnavailable, keeping the cause in the chain.
func storeFault(err error) error {
	switch {
	case err == nil,
		errors.Is(err, queue.ErrLeaseLost),
		errors.Is(err, queue.ErrNotFound),
		errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, ErrUnavailable):
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
