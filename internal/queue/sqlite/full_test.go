package sqlite_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"rpt/internal/errclass"
	"rpt/internal/queue"
	"rpt/internal/queue/sqlite"
	"rpt/internal/results"
)

// fillTo caps the database at its current size plus extra pages (PRAGMA max_page_count,
// on the store's one writer connection): a write that needs more pages than that fails
// with SQLITE_FULL, as on a full disk.
func fillTo(t *testing.T, s *sqlite.Store, extra int) {
	t.Helper()
	var pages int
	if err := s.DB().QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages+extra)); err != nil {
		t.Fatal(err)
	}
}

func runningJob(t *testing.T, s *sqlite.Store, report string) *queue.Job {
	t.Helper()
	ctx := context.Background()
	if _, err := s.JobEnqueue(ctx, queue.JobEnqueueParams{Kind: queue.KindReport, Report: report,
		Definition: []byte("name: " + report + "\n"), Params: json.RawMessage(`{}`), MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	jobs, err := s.JobClaim(ctx, queue.JobClaimParams{Agent: "a", Limit: 1, LeaseDuration: time.Minute})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim %s: %d, %v", report, len(jobs), err)
	}
	return jobs[0]
}

// putUntilFull puts 64 KiB chunks of random (incompressible) bytes until a put fails,
// and returns that error and how many went in.
func putUntilFull(t *testing.T, rs results.Store, j *queue.Job, max int) (int, error) {
	t.Helper()
	data := make([]byte, 64<<10)
	for i := range max {
		rand.Read(data)
		if err := rs.ChunkPut(context.Background(), j.Lease(), i, data); err != nil {
			return i, err
		}
	}
	return max, nil
}

// TestFullDatabase: on a full SQLite file a write fails with queue.ErrFull (class
// unavailable, saying what to do), a result put with results.ErrUnavailable; reads go
// on, and deleting (discarding a partial result, pruning) works and frees the room for
// the next writes.
func TestFullDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, suiteOptions)
	rs := results.InQueue(s)

	old := runningJob(t, s, "old")
	if n, err := putUntilFull(t, rs, old, 40); err != nil || n != 40 {
		t.Fatalf("put %d chunks: %v", n, err)
	}
	if err := s.JobComplete(ctx, old.Lease(), queue.Completion{Rows: 1, ResultStore: rs.Name(), ResultChunks: 40}); err != nil {
		t.Fatal(err)
	}
	fillTo(t, s, 100) // room for about six chunks

	partial := runningJob(t, s, "partial")
	n, err := putUntilFull(t, rs, partial, 1000)
	if n == 0 || n > 10 {
		t.Fatalf("%d chunks went in before the database was full, want a few", n)
	}
	if !errors.Is(err, queue.ErrFull) || !errors.Is(err, results.ErrUnavailable) {
		t.Fatalf("put into a full database: %v, want queue.ErrFull and results.ErrUnavailable", err)
	}
	if c, _ := errclass.Of(err); c != errclass.Unavailable {
		t.Errorf("class %v, want unavailable", c)
	}
	// Reads go on.
	if _, err := s.JobGet(ctx, old.ID); err != nil {
		t.Errorf("JobGet on a full database: %v", err)
	}
	if _, err := rs.ChunkGet(ctx, old.ID, old.Attempt, 39); err != nil {
		t.Errorf("ChunkGet on a full database: %v", err)
	}
	// Discarding the partial result frees its room: the attempt's failure can be
	// written, and the same chunks fit again.
	if d, err := rs.Discard(ctx, partial.ID, partial.Attempt); err != nil || d != n {
		t.Fatalf("Discard on a full database = %d, %v; want %d, nil", d, err, n)
	}
	if _, err := s.JobFail(ctx, partial.Lease(), queue.JobFailParams{Error: "full", Retryable: true}); err != nil {
		t.Fatalf("JobFail after the discard: %v", err)
	}
	next := runningJob(t, s, "next")
	if m, err := putUntilFull(t, rs, next, n); err != nil || m != n {
		t.Fatalf("after the discard %d of %d chunks went in: %v", m, n, err)
	}
	if _, err := putUntilFull(t, rs, next, 1000); !errors.Is(err, queue.ErrFull) {
		t.Fatalf("full again: %v, want queue.ErrFull", err)
	}
	// Pruning old results (what rpt db prune does) works on the full database and
	// makes room for 40 more chunks.
	if p, err := rs.Prune(ctx, time.Now().Add(time.Hour)); err != nil || p != 1 {
		t.Fatalf("Prune on a full database = %d, %v; want 1 job, nil", p, err)
	}
	last := runningJob(t, s, "last")
	if m, err := putUntilFull(t, rs, last, 30); err != nil || m != 30 {
		t.Fatalf("after the prune %d of 30 chunks went in: %v", m, err)
	}
}
