package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/queue/queuetest"
	"rpt/internal/queue/sqlite"
)

// suiteOptions make retries quick enough for the suite (it waits for them).
var suiteOptions = queue.Options{RetryBase: time.Millisecond, RetryMax: 20 * time.Millisecond}

func newStore(t testing.TB, opts queue.Options) *sqlite.Store {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "queue.db"), opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Store { return newStore(t, suiteOptions) })
}

func TestOpenUnavailable(t *testing.T) {
	t.Parallel()
	// A directory where the file should be: SQLite can't open it.
	dir := t.TempDir()
	_, err := sqlite.Open(context.Background(), dir, queue.Options{})
	if !errors.Is(err, queue.ErrUnavailable) {
		t.Fatalf("open of a directory: %v, want ErrUnavailable", err)
	}
	// A parent path that is a file: the directory can't be created.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = sqlite.Open(context.Background(), filepath.Join(file, "queue.db"), queue.Options{})
	if !errors.Is(err, queue.ErrUnavailable) {
		t.Fatalf("open under a file: %v, want ErrUnavailable", err)
	}
}

func TestOpenCreatesDirectory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a", "b", "queue.db")
	s, err := sqlite.Open(context.Background(), path, queue.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}
}

// Two Stores on one file stand for two processes (an agent and the CLI): both must
// see each other's writes and never claim a job twice.
func TestTwoStoresShareFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	open := func() *sqlite.Store {
		s, err := sqlite.Open(ctx, path, suiteOptions)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		return s
	}
	a, b := open(), open()
	res, err := a.JobEnqueue(ctx, queue.JobEnqueueParams{Report: "r", Source: "warehouse"})
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	got, err := b.JobClaim(ctx, queue.JobClaimParams{Agent: "b", Limit: 5, LeaseDuration: time.Minute})
	if err != nil || len(got) != 1 || got[0].ID != res.Job.ID {
		t.Fatalf("claim through the second store: %v, %v", got, err)
	}
	if more, err := a.JobClaim(ctx, queue.JobClaimParams{Agent: "a", Limit: 5, LeaseDuration: time.Minute}); err != nil || len(more) != 0 {
		t.Fatalf("claim through the first store: %v, %v: want none", more, err)
	}
}

// Claimers in two Stores on one file contend for SQLite's write lock (busy_timeout and
// the busy retry) and still claim every job exactly once.
func TestTwoStoresConcurrentClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "queue.db")
	var stores []*sqlite.Store
	for range 2 {
		s, err := sqlite.Open(ctx, path, suiteOptions)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		stores = append(stores, s)
	}
	const jobs = 200
	for range jobs {
		if _, err := stores[0].JobEnqueue(ctx, queue.JobEnqueueParams{Report: "r"}); err != nil {
			t.Fatalf("enqueue: %v", err)
		}
	}
	var (
		mu   sync.Mutex
		seen = map[int64]int{}
		wg   sync.WaitGroup
	)
	for i := range 4 {
		s := stores[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := s.JobClaim(ctx, queue.JobClaimParams{Agent: "a", Limit: 2, LeaseDuration: time.Minute})
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				for _, j := range got {
					mu.Lock()
					seen[j.ID]++
					mu.Unlock()
					if err := s.JobComplete(ctx, j.Lease(), queue.Completion{Rows: 0}); err != nil {
						t.Errorf("complete: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != jobs {
		t.Errorf("%d jobs claimed, want %d", len(seen), jobs)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("job %d claimed %d times", id, n)
		}
	}
}

func TestClaimUsesIndex(t *testing.T) {
	t.Parallel()
	s := newStore(t, suiteOptions)
	rows, err := s.DB().Query(`EXPLAIN QUERY PLAN SELECT id FROM rpt_jobs
		WHERE status = 'queued' AND run_after <= 0 ORDER BY neg_priority, run_after, id LIMIT 64`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	joined := strings.Join(plan, "; ")
	if !strings.Contains(joined, "rpt_jobs_claim") || strings.Contains(joined, "TEMP B-TREE") {
		t.Errorf("claim plan = %q, want the rpt_jobs_claim index and no sort", joined)
	}
}

func TestEnqueueInvalid(t *testing.T) {
	t.Parallel()
	s := newStore(t, suiteOptions)
	tests := []struct {
		name  string
		p     queue.JobEnqueueParams
		field string
	}{
		{"no report", queue.JobEnqueueParams{}, "report"},
		{"bad kind", queue.JobEnqueueParams{Report: "r", Kind: "cron"}, "kind"},
		{"bad params", queue.JobEnqueueParams{Report: "r", Params: []byte("{")}, "params"},
		{"unnamed scope", queue.JobEnqueueParams{Report: "r", Scopes: []queue.Scope{{Limit: 1}}}, "scopes[0]"},
		{"huge scope", queue.JobEnqueueParams{Report: "r", Scopes: []queue.Scope{{Name: "x", Limit: 1 << 30}}}, "scopes[0]"},
		{"negative timeout", queue.JobEnqueueParams{Report: "r", Timeout: -time.Second}, "timeout"},
	}
	for _, tc := range tests {
		_, err := s.JobEnqueue(context.Background(), tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.field)
		}
	}
	if _, err := s.JobClaim(context.Background(), queue.JobClaimParams{Agent: "a", Limit: 1}); err == nil {
		t.Errorf("claim with no lease duration: want an error")
	}
}

func BenchmarkSubmitClaimComplete(b *testing.B) {
	s := newStore(b, queue.Options{})
	ctx := context.Background()
	p := queue.JobEnqueueParams{
		Report: "trial-balance", Source: "warehouse", Params: []byte(`{"pcn":123681}`),
		Scopes: []queue.Scope{{Name: "report:trial-balance", Limit: 4}},
	}
	claim := queue.JobClaimParams{Agent: "bench", Limit: 1, LeaseDuration: time.Minute}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.JobEnqueue(ctx, p); err != nil {
			b.Fatal(err)
		}
		jobs, err := s.JobClaim(ctx, claim)
		if err != nil || len(jobs) != 1 {
			b.Fatalf("claim: %v, %v", jobs, err)
		}
		if err := s.JobComplete(ctx, jobs[0].Lease(), queue.Completion{Rows: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// Processes started together on a fresh queue (an agent and a submit) all migrate it:
// they must not race on the same version.
func TestConcurrentMigrateOnFreshFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "q.db")
	const n = 4
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			s, err := sqlite.Open(context.Background(), path, queue.Options{})
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			errs <- s.Migrate(context.Background())
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Errorf("migrate: %v", err)
		}
	}
}
