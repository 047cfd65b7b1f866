// Package resultstest is the conformance suite of results.Store, written against the
// interface alone so that every store (the queue database on SQLite and MariaDB now,
// others later) keeps result sets the same way. A store's test calls Run.
package resultstest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/internal/source"
)

// Env is what one subtest runs on: a migrated, empty queue (for jobs and leases) and
// the results store under test, which may live in that queue's database or elsewhere.
// Both are closed by the caller's t.Cleanup.
type Env struct {
	Queue   queue.Store
	Results results.Store
}

// Run runs the suite; newEnv must return a fresh Env per call (subtests run in parallel).
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	tests := []struct {
		name string
		run  func(t *testing.T, e Env)
	}{
		{"ChunkRoundTrip", testChunkRoundTrip},
		{"ResultRoundTrip", testResultRoundTrip},
		{"StaleLeaseNeverReplacesTheResult", testStaleLease},
		{"DiscardFreesAFailedAttempt", testDiscard},
		{"PruneByAge", testPrune},
		{"PrunedWhileRead", testPrunedWhileRead},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newEnv(t))
		})
	}
}

func claimed(t *testing.T, q queue.Store, report string) *queue.Job {
	t.Helper()
	_, err := q.JobEnqueue(t.Context(), queue.JobEnqueueParams{
		Kind: queue.KindReport, Report: report, Definition: []byte("name: " + report + "\n"),
		DefinitionSHA256: "sha-" + report, Params: json.RawMessage(`{}`), Source: "warehouse", MaxAttempts: 3,
	})
	if err != nil {
		t.Fatalf("enqueue %s: %v", report, err)
	}
	jobs, err := q.JobClaim(t.Context(), queue.JobClaimParams{Agent: "resultstest", Limit: 1, LeaseDuration: time.Minute})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim %s: %d jobs, %v", report, len(jobs), err)
	}
	return jobs[0]
}

func complete(t *testing.T, e Env, j *queue.Job, chunks int) *queue.Job {
	t.Helper()
	c := queue.Completion{ResultStore: e.Results.Name(), ResultChunks: chunks}
	if err := e.Queue.JobComplete(t.Context(), j.Lease(), c); err != nil {
		t.Fatalf("complete job %d: %v", j.ID, err)
	}
	got, err := e.Queue.JobGet(t.Context(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func put(t *testing.T, s results.Store, l queue.Lease, n int) {
	t.Helper()
	for i := range n {
		if err := s.ChunkPut(t.Context(), l, i, chunk(l, i)); err != nil {
			t.Fatalf("put chunk %d of job %d: %v", i, l.JobID, err)
		}
	}
}

func chunk(l queue.Lease, seq int) []byte {
	return []byte(fmt.Sprintf("job %d attempt %d chunk %d", l.JobID, l.Attempt, seq))
}

// count is how many chunks of (job, attempt) the store still returns, from 0 up.
func count(t *testing.T, s results.Store, jobID int64, attempt int) int {
	t.Helper()
	for n := 0; ; n++ {
		_, err := s.ChunkGet(t.Context(), jobID, attempt, n)
		if errors.Is(err, queue.ErrNotFound) {
			return n
		}
		if err != nil {
			t.Fatalf("get chunk %d of job %d: %v", n, jobID, err)
		}
	}
}

func testChunkRoundTrip(t *testing.T, e Env) {
	s := e.Results
	if s.Name() == "" {
		t.Error("Name() is empty: jobs could not record where their result lives")
	}
	j := claimed(t, e.Queue, "r")
	data := [][]byte{[]byte("header"), bytes.Repeat([]byte{0, 1, 2, 255}, 100000), {}}
	for i, d := range data {
		if err := s.ChunkPut(t.Context(), j.Lease(), i, d); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	// A retried put replaces the chunk.
	data[2] = []byte("last")
	if err := s.ChunkPut(t.Context(), j.Lease(), 2, data[2]); err != nil {
		t.Fatalf("put again: %v", err)
	}
	for i, d := range data {
		got, err := s.ChunkGet(t.Context(), j.ID, j.Attempt, i)
		if err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		if !bytes.Equal(got, d) {
			t.Errorf("chunk %d: got %d bytes, want %d", i, len(got), len(d))
		}
	}
	for _, tc := range []struct {
		name         string
		id           int64
		attempt, seq int
	}{
		{"past the end", j.ID, j.Attempt, len(data)},
		{"other attempt", j.ID, j.Attempt + 1, 0},
		{"other job", j.ID + 1000, j.Attempt, 0},
	} {
		if _, err := s.ChunkGet(t.Context(), tc.id, tc.attempt, tc.seq); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", tc.name, err)
		}
	}
}

// bigResult writes rows through a results.Writer, enough for several chunks.
func bigResult(t *testing.T, s results.Store, l queue.Lease, rows int) *results.Writer {
	t.Helper()
	w := results.NewWriter(s, l, []source.Column{{Name: "n", Type: source.TypeInt}, {Name: "s", Type: source.TypeString}})
	for i := range rows {
		if err := w.Write(t.Context(), []any{int64(i), "row"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	return w
}

const bigRows = 25000 // three chunks of at most 10,000 rows

func testResultRoundTrip(t *testing.T, e Env) {
	j := claimed(t, e.Queue, "r")
	w := bigResult(t, e.Results, j.Lease(), bigRows)
	if w.Chunks() < 3 {
		t.Fatalf("%d rows made %d chunks, want at least 3", bigRows, w.Chunks())
	}
	done := complete(t, e, j, w.Chunks())
	if results.StoreOf(done) != e.Results.Name() || done.ResultChunks != w.Chunks() {
		t.Errorf("job records store %q with %d chunks, want %q with %d", results.StoreOf(done), done.ResultChunks, e.Results.Name(), w.Chunks())
	}
	rows, err := results.Open(t.Context(), e.Results, results.RefOf(done))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := int64(0)
	for rows.Next() {
		if v := rows.Values()[0]; v != n {
			t.Fatalf("row %d: n = %v", n, v)
		}
		n++
	}
	if err := rows.Err(); err != nil || n != bigRows {
		t.Errorf("read %d rows, err %v; want %d, nil", n, err, bigRows)
	}
}

// testStaleLease: an attempt that lost its lease can never change the result of the
// attempt that succeeded. A store that checks leases refuses the put (ErrLeaseLost);
// one that cannot keeps the stale chunk under the stale attempt's key.
func testStaleLease(t *testing.T, e Env) {
	j := claimed(t, e.Queue, "r")
	stale := j.Lease()
	put(t, e.Results, stale, 1)
	if err := e.Queue.JobRelease(t.Context(), stale); err != nil {
		t.Fatal(err)
	}
	jobs, err := e.Queue.JobClaim(t.Context(), queue.JobClaimParams{Agent: "resultstest", Limit: 1, LeaseDuration: time.Minute})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim again: %d, %v", len(jobs), err)
	}
	fresh := jobs[0].Lease()
	put(t, e.Results, fresh, 2)
	if err := e.Results.ChunkPut(t.Context(), stale, 1, []byte("stale")); err != nil && !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("stale put: %v, want nil or ErrLeaseLost", err)
	}
	done := complete(t, e, jobs[0], 2)
	for i := range 2 {
		got, err := e.Results.ChunkGet(t.Context(), j.ID, done.ResultAttempt, i)
		if err != nil || !bytes.Equal(got, chunk(fresh, i)) {
			t.Errorf("result chunk %d = %q, %v; want %q", i, got, err, chunk(fresh, i))
		}
	}
}

func testDiscard(t *testing.T, e Env) {
	failed := claimed(t, e.Queue, "failed")
	put(t, e.Results, failed.Lease(), 5)
	if _, err := e.Queue.JobFail(t.Context(), failed.Lease(), queue.JobFailParams{Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	ok := claimed(t, e.Queue, "ok")
	put(t, e.Results, ok.Lease(), 2)
	complete(t, e, ok, 2)

	n, err := e.Results.Discard(t.Context(), failed.ID, failed.Attempt)
	if err != nil || n != 5 {
		t.Errorf("Discard of the failed attempt = %d, %v; want 5, nil", n, err)
	}
	if c := count(t, e.Results, failed.ID, failed.Attempt); c != 0 {
		t.Errorf("%d chunks left after Discard", c)
	}
	// The succeeded attempt's result is never discarded.
	if n, err := e.Results.Discard(t.Context(), ok.ID, ok.Attempt); err != nil || n != 0 {
		t.Errorf("Discard of a succeeded result = %d, %v; want 0, nil", n, err)
	}
	if c := count(t, e.Results, ok.ID, ok.Attempt); c != 2 {
		t.Errorf("succeeded result has %d chunks after Discard, want 2", c)
	}
	// Nothing to discard is no error.
	if n, err := e.Results.Discard(t.Context(), failed.ID, failed.Attempt); err != nil || n != 0 {
		t.Errorf("second Discard = %d, %v; want 0, nil", n, err)
	}
}

func testPrune(t *testing.T, e Env) {
	done := claimed(t, e.Queue, "done")
	put(t, e.Results, done.Lease(), 3)
	complete(t, e, done, 3)
	running := claimed(t, e.Queue, "running")
	put(t, e.Results, running.Lease(), 2)

	// A cut-off before the job finished keeps everything; a zero one prunes nothing.
	for _, before := range []time.Time{time.Now().Add(-time.Hour), {}} {
		if n, err := e.Results.Prune(t.Context(), before); err != nil || n != 0 {
			t.Errorf("Prune(%v) = %d, %v; want 0, nil", before, n, err)
		}
	}
	if c := count(t, e.Results, done.ID, done.Attempt); c != 3 {
		t.Fatalf("a recent result has %d chunks after Prune, want 3", c)
	}
	n, err := e.Results.Prune(t.Context(), time.Now().Add(time.Hour))
	if err != nil || n != 1 {
		t.Errorf("Prune(now+1h) = %d, %v; want 1 job, nil", n, err)
	}
	if c := count(t, e.Results, done.ID, done.Attempt); c != 0 {
		t.Errorf("pruned result still has %d chunks", c)
	}
	if c := count(t, e.Results, running.ID, running.Attempt); c != 2 {
		t.Errorf("running job has %d chunks after Prune, want 2 (never pruned)", c)
	}
}

// testPrunedWhileRead: a result pruned while a reader is half-way through ends the
// rows with ErrPruned, never with a short, clean end.
func testPrunedWhileRead(t *testing.T, e Env) {
	for _, tc := range []struct {
		name   string
		counts bool // the job records its chunk count
	}{{"chunk count recorded", true}, {"chunk count not recorded", false}} {
		t.Run(tc.name, func(t *testing.T) {
			j := claimed(t, e.Queue, "r")
			w := bigResult(t, e.Results, j.Lease(), bigRows)
			chunks := w.Chunks()
			if !tc.counts {
				chunks = 0
			}
			done := complete(t, e, j, chunks)
			rows, err := results.Open(t.Context(), e.Results, results.RefOf(done))
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			n := 0
			for n < 12000 && rows.Next() { // into the second chunk
				n++
			}
			if _, err := e.Results.Prune(context.Background(), time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				n++
			}
			err = rows.Err()
			if !errors.Is(err, results.ErrPruned) || !errors.Is(err, queue.ErrNotFound) {
				t.Fatalf("after %d of %d rows: err = %v, want ErrPruned", n, bigRows, err)
			}
			if n >= bigRows {
				t.Errorf("read all %d rows of a pruned result", n)
			}
		})
	}
}
