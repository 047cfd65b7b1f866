package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"rpt/internal/dsn"
	"rpt/internal/queue"
	"rpt/internal/queue/queuetest"
	"rpt/internal/testenv"
)

// testOptions make retries quick, as the conformance suite requires.
var testOptions = queue.Options{RetryBase: time.Millisecond, RetryMax: 20 * time.Millisecond}

// newStore opens a migrated store on a fresh database of its own, with a pool of
// maxOpen connections (parallel tests share the server's max_connections).
func newStore(tb testing.TB, maxOpen int) *Store {
	tb.Helper()
	return openStore(tb, testenv.MariaDB(tb), maxOpen)
}

// openStore opens a migrated store on the database dsnText names.
func openStore(tb testing.TB, dsnText string, maxOpen int) *Store {
	tb.Helper()
	u, err := url.Parse(dsnText)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set(paramMaxOpenConns, fmt.Sprint(maxOpen))
	u.RawQuery = q.Encode()
	ctx := context.Background()
	s, err := Open(ctx, u.String(), testOptions)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	return s
}

func enqueue(tb testing.TB, s *Store, p queue.JobEnqueueParams) *queue.Job {
	tb.Helper()
	if p.Report == "" {
		p.Report = "noop"
	}
	r, err := s.JobEnqueue(context.Background(), p)
	if err != nil {
		tb.Fatalf("enqueue: %v", err)
	}
	return r.Job
}

func TestConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Store { return newStore(t, 4) })
}

func TestClaimQueryUsesClaimIndexWithoutFilesort(t *testing.T) {
	t.Parallel()
	s := newStore(t, 2)
	for i := range 200 {
		enqueue(t, s, queue.JobEnqueueParams{Report: fmt.Sprintf("r%d", i%5), Source: fmt.Sprintf("src%d", i%3), Priority: i % 4})
	}
	for _, sh := range []claimShape{
		{},
		{sources: 2},
		{after: true},
		{sources: 2, after: true},
		{pausedReports: 1, pausedSources: 2},
		{sources: 3, pausedReports: 2, pausedSources: 1, after: true},
	} {
		t.Run(fmt.Sprintf("%+v", sh), func(t *testing.T) {
			var args []any
			for i := range sh.sources + sh.pausedReports + sh.pausedSources {
				args = append(args, fmt.Sprintf("src%d", i))
			}
			if sh.after {
				now := time.Now().UTC()
				args = append(args, -2, -2, now, now, 10)
			}
			args = append(args, 16)
			plans := explain(t, s.DB(), claimQuery(sh), args...)
			if len(plans) != 1 {
				t.Fatalf("EXPLAIN: %d rows, want 1 (rpt_jobs only): %v", len(plans), plans)
			}
			p := plans[0]
			if p["table"] != "rpt_jobs" || p["key"] != "rpt_jobs_claim" {
				t.Errorf("claim query reads %s with key %q, want rpt_jobs with rpt_jobs_claim; plan %v", p["table"], p["key"], p)
			}
			if strings.Contains(p["Extra"], "filesort") || strings.Contains(p["Extra"], "temporary") {
				t.Errorf("claim query sorts: %v", p)
			}
		})
	}
}

// Eight claimers on a concurrency 2 report never have more than 2 of its jobs running.
func TestSlotsHoldConcurrencyTwoUnderEightClaimers(t *testing.T) {
	t.Parallel()
	s := newStore(t, 10)
	const jobs, claimers, limit = 60, 8, 2
	for range jobs {
		enqueue(t, s, queue.JobEnqueueParams{Report: "limited", Scopes: []queue.Scope{{Name: "report:limited", Limit: limit}}})
	}
	var (
		running, peak, done atomic.Int64
		wg                  sync.WaitGroup
	)
	ctx := context.Background()
	for c := range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done.Load() < jobs {
				got, err := s.JobClaim(ctx, queue.JobClaimParams{Agent: fmt.Sprintf("c%d", c), Limit: 2, LeaseDuration: time.Minute})
				if err != nil {
					t.Errorf("claim: %v", err)
					return
				}
				for _, j := range got {
					// Counted up after the claim committed and down before the completion
					// starts, so the count never undercounts what the database has running.
					if n := running.Add(1); n > peak.Load() {
						peak.Store(n)
					}
					var inDB int
					if err := s.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM rpt_jobs WHERE status = 'running'").Scan(&inDB); err != nil {
						t.Errorf("count running: %v", err)
					} else if inDB > limit {
						t.Errorf("%d jobs running in the database, limit %d", inDB, limit)
					}
					running.Add(-1)
					if err := s.JobComplete(ctx, j.Lease(), queue.Completion{Rows: 0}); err != nil {
						t.Errorf("complete: %v", err)
					}
					done.Add(1)
				}
				if len(got) == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > limit {
		t.Errorf("peak running = %d, limit %d", p, limit)
	}
	if got := done.Load(); got != jobs {
		t.Errorf("%d jobs done, want %d", got, jobs)
	}
	var held int
	if err := s.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM rpt_slots WHERE job_id IS NOT NULL").Scan(&held); err != nil || held != 0 {
		t.Errorf("slots still held after all jobs finished: %d (%v)", held, err)
	}
}

// After a rescue, the first claim's lease can change nothing about the job.
func TestStaleLeaseAfterRescueIsFencedOut(t *testing.T) {
	t.Parallel()
	s := newStore(t, 2)
	ctx := context.Background()
	j := enqueue(t, s, queue.JobEnqueueParams{Scopes: []queue.Scope{{Name: "report:noop", Limit: 1}}, MaxAttempts: 5})
	got, err := s.JobClaim(ctx, queue.JobClaimParams{Agent: "paused", Limit: 1, LeaseDuration: time.Millisecond})
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}
	stale := got[0].Lease()
	for {
		n, err := s.JobRescue(ctx)
		if err != nil {
			t.Fatalf("rescue: %v", err)
		}
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	var fresh *queue.Job
	for fresh == nil {
		got, err := s.JobClaim(ctx, queue.JobClaimParams{Agent: "live", Limit: 1, LeaseDuration: time.Minute})
		if err != nil {
			t.Fatalf("reclaim: %v", err)
		}
		if len(got) == 1 {
			fresh = got[0]
		}
	}
	before, err := s.JobGet(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		name string
		do   func() error
	}{
		{"heartbeat", func() error { _, err := s.JobHeartbeat(ctx, stale, 99, time.Minute); return err }},
		{"result chunk", func() error { return s.ResultChunkPut(ctx, stale, 0, []byte("stale")) }},
		{"complete", func() error { return s.JobComplete(ctx, stale, queue.Completion{Rows: 99}) }},
		{"fail", func() error {
			_, err := s.JobFail(ctx, stale, queue.JobFailParams{Error: "x", Retryable: true})
			return err
		}},
		{"release", func() error { return s.JobRelease(ctx, stale) }},
		{"cancelled", func() error { return s.JobCancelled(ctx, stale) }},
	}
	for _, w := range writes {
		if err := w.do(); !errors.Is(err, queue.ErrLeaseLost) {
			t.Errorf("%s with the stale lease: %v, want ErrLeaseLost", w.name, err)
		}
	}
	after, err := s.JobGet(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != queue.StatusRunning || after.LeaseToken != fresh.LeaseToken || after.Rows != before.Rows ||
		after.Failures != 1 || after.Attempt != 2 {
		t.Errorf("job after stale writes: status %s rows %d failures %d attempt %d, want running under the new lease, rows %d, 1, 2",
			after.Status, after.Rows, after.Failures, after.Attempt, before.Rows)
	}
	if _, err := s.ResultChunkGet(ctx, j.ID, stale.Attempt, 0); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("stale chunk readable: %v", err)
	}
	var slotOwner string
	if err := s.DB().QueryRowContext(ctx, "SELECT lease_token FROM rpt_slots WHERE scope = 'report:noop' AND n = 1").Scan(&slotOwner); err != nil || slotOwner != fresh.LeaseToken {
		t.Errorf("slot held by %q (%v), want the new lease", slotOwner, err)
	}
	if err := s.JobComplete(ctx, fresh.Lease(), queue.Completion{Rows: 1}); err != nil {
		t.Errorf("complete with the new lease: %v", err)
	}
}

// Submitters racing with the same key get one job; the losers get it with Existing.
func TestEnqueueRaceReturnsOneJob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  func(p *queue.JobEnqueueParams)
	}{
		{"dedupe", func(p *queue.JobEnqueueParams) { p.DedupeKey = "d" }},
		{"once", func(p *queue.JobEnqueueParams) { p.OnceKey = "o" }},
		{"submit token", func(p *queue.JobEnqueueParams) { p.SubmitToken = "t" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t, 8)
			const submitters = 8
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				ids      = map[int64]bool{}
				existing atomic.Int64
			)
			for range submitters {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p := queue.JobEnqueueParams{Report: "race"}
					tc.key(&p)
					r, err := s.JobEnqueue(context.Background(), p)
					if err != nil {
						t.Errorf("enqueue: %v", err)
						return
					}
					if r.Existing {
						existing.Add(1)
					}
					mu.Lock()
					ids[r.Job.ID] = true
					mu.Unlock()
				}()
			}
			wg.Wait()
			if len(ids) != 1 || existing.Load() != submitters-1 {
				t.Errorf("%d distinct jobs, %d Existing; want 1 and %d", len(ids), existing.Load(), submitters-1)
			}
		})
	}
}

func TestPausedJobsAreNotClaimed(t *testing.T) {
	t.Parallel()
	s := newStore(t, 2)
	ctx := context.Background()
	paused := enqueue(t, s, queue.JobEnqueueParams{Report: "paused-report", Source: "a", Priority: 9})
	pausedSrc := enqueue(t, s, queue.JobEnqueueParams{Report: "r", Source: "plex", Priority: 9})
	free := enqueue(t, s, queue.JobEnqueueParams{Report: "r", Source: "a"})
	if _, err := s.DB().ExecContext(ctx, "INSERT INTO rpt_pauses (kind, name, created_at) VALUES "+
		"('report', 'paused-report', UTC_TIMESTAMP(6)), ('source', 'plex', UTC_TIMESTAMP(6))"); err != nil {
		t.Fatal(err)
	}
	got, err := s.JobClaim(ctx, queue.JobClaimParams{Agent: "a", Limit: 5, LeaseDuration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != free.ID {
		t.Errorf("claimed %d jobs (first %v), want only job %d (not %d, %d)", len(got), got, free.ID, paused.ID, pausedSrc.ID)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		dsn  string
		want error
	}{
		{"not mysql", "sqlite:x.db", dsn.ErrInvalid},
		{"no database", "mysql://root@127.0.0.1:3306/", dsn.ErrInvalid},
		{"bad pool size", "mysql://root@127.0.0.1:3306/q?max_open_conns=zero", dsn.ErrInvalid},
		{"bad lifetime", "mysql://root@127.0.0.1:3306/q?conn_max_lifetime=forever", dsn.ErrInvalid},
		{"nothing listening", "mysql://root@127.0.0.1:1/q?timeout=2s", queue.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Open(ctx, tc.dsn, queue.Options{})
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Open(%q) = %v, want %v", tc.dsn, err, tc.want)
			}
		})
	}
}

func TestPoolParams(t *testing.T) {
	t.Parallel()
	maxOpen, life, rest, err := poolParams("mysql://u:p@h:3306/db?max_open_conns=7&conn_max_lifetime=90s&readTimeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	if maxOpen != 7 || life != 90*time.Second || rest != "mysql://u:p@h:3306/db?readTimeout=5s" {
		t.Errorf("poolParams = %d, %s, %q", maxOpen, life, rest)
	}
	if got := ConnBudget(4); got != DefaultMaxOpenConns {
		t.Errorf("ConnBudget(4) = %d, want %d", got, DefaultMaxOpenConns)
	}
}

// BenchmarkSubmitClaimComplete pushes b.N no-op jobs through enqueue -> claim ->
// complete. "serial" does one job at a time (latency: three commits); "agents=N" runs N
// agents, each with its own pool and up to 8 jobs at once, against 4 submitters, the way
// a deployment does (throughput; commits of concurrent transactions share fsyncs).
func BenchmarkSubmitClaimComplete(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		s := newStore(b, ConnBudget(1))
		ctx := context.Background()
		p := noopJob()
		claim := queue.JobClaimParams{Agent: "bench", Limit: 1, LeaseDuration: time.Minute}
		b.ResetTimer()
		for range b.N {
			if _, err := s.JobEnqueue(ctx, p); err != nil {
				b.Fatal(err)
			}
			jobs, err := s.JobClaim(ctx, claim)
			if err != nil || len(jobs) != 1 {
				b.Fatalf("claim: %d jobs, %v", len(jobs), err)
			}
			if err := s.JobComplete(ctx, jobs[0].Lease(), queue.Completion{Rows: 0}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	})
	for _, agents := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("agents=%d", agents), func(b *testing.B) { benchAgents(b, agents) })
	}
}

func noopJob() queue.JobEnqueueParams {
	return queue.JobEnqueueParams{Report: "noop", Source: "warehouse", Params: []byte(`{}`),
		Scopes: []queue.Scope{{Name: "report:noop", Limit: 64}}}
}

func benchAgents(b *testing.B, agents int) {
	const submitters, concurrency = 4, 8
	dsnText := testenv.MariaDB(b)
	submit := openStore(b, dsnText, submitters)
	stores := make([]*Store, agents)
	for i := range stores {
		stores[i] = openStore(b, dsnText, ConnBudget(concurrency))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	total := int64(b.N)
	var submitted, completed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for submitted.Add(1) <= total {
				if _, err := submit.JobEnqueue(ctx, noopJob()); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem := make(chan struct{}, concurrency)
			claim := queue.JobClaimParams{Agent: fmt.Sprintf("agent-%d", i), LeaseDuration: time.Minute}
			for completed.Load() < total && ctx.Err() == nil {
				claim.Limit = concurrency - len(sem)
				if claim.Limit == 0 {
					time.Sleep(100 * time.Microsecond)
					continue
				}
				jobs, err := s.JobClaim(ctx, claim)
				if err != nil {
					b.Error(err)
					cancel()
					return
				}
				if len(jobs) == 0 {
					time.Sleep(time.Millisecond) // polling; real agents also wake on MQTT
					continue
				}
				for _, j := range jobs {
					sem <- struct{}{}
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer func() { <-sem }()
						if err := s.JobComplete(ctx, j.Lease(), queue.Completion{Rows: 0}); err != nil {
							b.Error(err)
							cancel()
							return
						}
						completed.Add(1)
					}()
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if got := completed.Load(); got != total && !b.Failed() {
		b.Fatalf("%d jobs completed, want %d", got, total)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// Migrate holds its lock outside the pool, so even a one-connection pool migrates, and
// the status tells applied from pending.
func TestMigrateWithOneConnectionPool(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u, err := url.Parse(testenv.MariaDB(t))
	if err != nil {
		t.Fatal(err)
	}
	u.RawQuery = paramMaxOpenConns + "=1"
	s, err := Open(ctx, u.String(), testOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before, err := s.MigrationStatus(ctx)
	if err != nil {
		t.Fatalf("status before migrate: %v", err)
	}
	if len(before) == 0 || before[0].AppliedAt != nil {
		t.Errorf("status before migrate = %+v, want pending migrations", before)
	}
	if _, err := s.JobGet(ctx, 1); err == nil || !strings.Contains(err.Error(), "rpt db migrate") {
		t.Errorf("JobGet before migrate: %v, want a hint to run rpt db migrate", err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	after, err := s.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range after {
		if m.AppliedAt == nil {
			t.Errorf("migration %d %s not applied", m.Version, m.Name)
		}
	}
}

func TestInTxRetriesDeadlocksAndLockWaits(t *testing.T) {
	t.Parallel()
	s := newStore(t, 2)
	other := errors.New("syntax")
	tests := []struct {
		name      string
		errs      []error // what fn returns on each call; nil after the list
		wantCalls int
		wantErr   error
	}{
		{"deadlock then success", []error{&gomysql.MySQLError{Number: errDeadlock}, &gomysql.MySQLError{Number: errDeadlock}}, 3, nil},
		{"lock waits give up", []error{
			&gomysql.MySQLError{Number: errLockWaitTimeout}, &gomysql.MySQLError{Number: errLockWaitTimeout},
			&gomysql.MySQLError{Number: errLockWaitTimeout}, &gomysql.MySQLError{Number: errLockWaitTimeout},
		}, maxLockWaitRetries + 1, &gomysql.MySQLError{Number: errLockWaitTimeout}},
		{"other error not retried", []error{other}, 1, other},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := s.inTx(context.Background(), "op", func(tx *sql.Tx) error {
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			})
			if calls != tc.wantCalls {
				t.Errorf("fn ran %d times, want %d", calls, tc.wantCalls)
			}
			switch want := tc.wantErr.(type) {
			case nil:
				if err != nil {
					t.Errorf("err = %v, want nil", err)
				}
			case *gomysql.MySQLError:
				if mysqlErrNo(err) != want.Number {
					t.Errorf("err = %v, want MySQL error %d", err, want.Number)
				}
			default:
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want %v", err, want)
				}
			}
		})
	}
}

// Environment of the claimer child processes TestFourProcessesClaimEachJobOnce starts.
const (
	envClaimerDSN  = "RPT_TEST_CLAIMER_DSN"
	envClaimerName = "RPT_TEST_CLAIMER_NAME"
)

// Four processes, each with its own pool, drain 2,000 jobs: every job is claimed
// exactly once and succeeds at attempt 1.
func TestFourProcessesClaimEachJobOnce(t *testing.T) {
	t.Parallel()
	const jobs, processes = 2000, 4
	dsnText := testenv.MariaDB(t)
	s := openStore(t, dsnText, 8)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 { // parallel submitters share commits
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < jobs; i += 8 {
				if _, err := s.JobEnqueue(ctx, queue.JobEnqueueParams{Report: "bulk", Source: "warehouse"}); err != nil {
					t.Errorf("enqueue: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	outs := make([]bytes.Buffer, processes)
	cmds := make([]*exec.Cmd, processes)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestClaimerProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), envClaimerDSN+"="+dsnText, fmt.Sprintf("%s=proc-%d", envClaimerName, i))
		cmd.Stdout = &outs[i]
		cmd.Stderr = &outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	claimedBy := map[int64]string{}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("claimer %d: %v\n%s", i, err, outs[i].String())
			continue
		}
		for _, line := range strings.Split(outs[i].String(), "\n") {
			idText, ok := strings.CutPrefix(line, "claimed ")
			if !ok {
				continue
			}
			var id int64
			if _, err := fmt.Sscan(idText, &id); err != nil {
				t.Fatalf("claimer %d printed %q", i, line)
			}
			if other, dup := claimedBy[id]; dup {
				t.Errorf("job %d claimed by proc-%d and %s", id, i, other)
			}
			claimedBy[id] = fmt.Sprintf("proc-%d", i)
		}
	}
	if len(claimedBy) != jobs {
		t.Errorf("%d distinct jobs claimed, want %d", len(claimedBy), jobs)
	}
	var succeeded, firstAttempt int
	if err := s.DB().QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(attempt = 1), 0) FROM rpt_jobs WHERE status = 'succeeded'").
		Scan(&succeeded, &firstAttempt); err != nil {
		t.Fatal(err)
	}
	if succeeded != jobs || firstAttempt != jobs {
		t.Errorf("%d jobs succeeded, %d at attempt 1; want %d and %d", succeeded, firstAttempt, jobs, jobs)
	}
}

// TestClaimerProcess is the child of TestFourProcessesClaimEachJobOnce: it claims and
// completes jobs until the queue is empty, printing each id it claimed.
func TestClaimerProcess(t *testing.T) {
	dsnText := os.Getenv(envClaimerDSN)
	if dsnText == "" {
		t.Skip("runs only as a child of TestFourProcessesClaimEachJobOnce")
	}
	ctx := context.Background()
	s, err := Open(ctx, dsnText, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetMaxOpenConns(ConnBudget(1))
	name := os.Getenv(envClaimerName)
	for {
		got, err := s.JobClaim(ctx, queue.JobClaimParams{Agent: name, Limit: 5, LeaseDuration: time.Minute})
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		if len(got) == 0 {
			return
		}
		for _, j := range got {
			fmt.Printf("claimed %d\n", j.ID)
			if err := s.JobComplete(ctx, j.Lease(), queue.Completion{Rows: 0}); err != nil {
				t.Fatalf("complete %d: %v", j.ID, err)
			}
		}
	}
}

// The claim plan: a job skipped for one full scope gives back the slot it took in
// another, and a scope full at a small limit still serves jobs with a larger one.
func TestClaimSlotPlan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	claimAll := func(t *testing.T, s *Store) []int64 {
		t.Helper()
		got, err := s.JobClaim(ctx, queue.JobClaimParams{Agent: "a", Limit: 10, LeaseDuration: time.Minute})
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		var ids []int64
		for _, j := range got {
			ids = append(ids, j.ID)
		}
		return ids
	}
	t.Run("skipped job gives its slot back", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, 2)
		a, b := queue.Scope{Name: "group:a", Limit: 1}, queue.Scope{Name: "group:b", Limit: 1}
		holder := enqueue(t, s, queue.JobEnqueueParams{Scopes: []queue.Scope{b}})
		if got := claimAll(t, s); len(got) != 1 || got[0] != holder.ID {
			t.Fatalf("first claim = %v, want [%d]", got, holder.ID)
		}
		blocked := enqueue(t, s, queue.JobEnqueueParams{Priority: 5, Scopes: []queue.Scope{a, b}})
		other := enqueue(t, s, queue.JobEnqueueParams{Scopes: []queue.Scope{a}})
		if got := claimAll(t, s); len(got) != 1 || got[0] != other.ID {
			t.Errorf("claim = %v, want only job %d (job %d waits for group:b)", got, other.ID, blocked.ID)
		}
	})
	t.Run("larger limit of a saturated scope", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, 2)
		small, large := queue.Scope{Name: "source:plex", Limit: 1}, queue.Scope{Name: "source:plex", Limit: 3}
		p1 := enqueue(t, s, queue.JobEnqueueParams{Scopes: []queue.Scope{small}})
		enqueue(t, s, queue.JobEnqueueParams{Scopes: []queue.Scope{small}})
		q1 := enqueue(t, s, queue.JobEnqueueParams{Scopes: []queue.Scope{large}})
		q2 := enqueue(t, s, queue.JobEnqueueParams{Scopes: []queue.Scope{large}})
		enqueue(t, s, queue.JobEnqueueParams{Scopes: []queue.Scope{large}})
		got := claimAll(t, s)
		if want := []int64{p1.ID, q1.ID, q2.ID}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("claim = %v, want %v", got, want)
		}
	})
}

// tcpProxy forwards a local port to the MariaDB server so a test can cut the queue
// database off and bring it back without touching the server.
type tcpProxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
}

func (p *tcpProxy) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// With the database unreachable, operations fail with queue.ErrUnavailable (exit code
// 5 upstream) and work again once it is back.
func TestUnreachableDatabaseIsErrUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	direct := testenv.MariaDB(t)
	openStore(t, direct, 1) // migrates
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &tcpProxy{addr: "127.0.0.1:0", target: u.Host}
	proxy.start(t)
	t.Cleanup(proxy.stop)
	u.Host = proxy.addr
	u.RawQuery = "timeout=2s&readTimeout=5s&writeTimeout=5s&max_open_conns=2"
	s, err := Open(ctx, u.String(), testOptions)
	if err != nil {
		t.Fatalf("open through proxy: %v", err)
	}
	defer s.Close()
	j := enqueue(t, s, queue.JobEnqueueParams{})

	proxy.stop()
	ops := []struct {
		name string
		do   func() error
	}{
		{"get", func() error { _, err := s.JobGet(ctx, j.ID); return err }},
		{"enqueue", func() error { _, err := s.JobEnqueue(ctx, queue.JobEnqueueParams{Report: "r"}); return err }},
		{"claim", func() error {
			_, err := s.JobClaim(ctx, queue.JobClaimParams{Agent: "a", Limit: 1, LeaseDuration: time.Minute})
			return err
		}},
		{"heartbeat", func() error {
			_, err := s.JobHeartbeat(ctx, queue.Lease{JobID: j.ID, Token: "t"}, 0, time.Minute)
			return err
		}},
	}
	for _, op := range ops {
		if err := op.do(); !errors.Is(err, queue.ErrUnavailable) {
			t.Errorf("%s while the database is unreachable: %v, want ErrUnavailable", op.name, err)
		}
	}

	proxy.start(t)
	if got, err := s.JobGet(ctx, j.ID); err != nil || got.ID != j.ID {
		t.Errorf("get after the database is back: %v, %v", got, err)
	}
}

// The one-call enqueue returns the job it inserted, also once event ids and job ids
// have drifted apart (a claim writes events of its own): the event's insert changes
// LAST_INSERT_ID(), which must not decide which row is read back.
func TestEnqueueReturnsItsOwnJob(t *testing.T) {
	t.Parallel()
	s := newStore(t, 2)
	ctx := context.Background()
	first := enqueue(t, s, queue.JobEnqueueParams{Report: "first"})
	if got, err := s.JobClaim(ctx, queue.JobClaimParams{Agent: "a", Limit: 1, LeaseDuration: time.Minute}); err != nil || len(got) != 1 || got[0].ID != first.ID {
		t.Fatalf("claim = %v, %v; want job %d", got, err, first.ID)
	}
	for _, name := range []string{"second", "third", "fourth"} {
		j := enqueue(t, s, queue.JobEnqueueParams{Report: name})
		if j.Report != name || j.Status != queue.StatusQueued {
			t.Fatalf("enqueue %s returned job %d (%s, %s)", name, j.ID, j.Report, j.Status)
		}
		stored, err := s.JobGet(ctx, j.ID)
		if err != nil || stored.Report != name {
			t.Fatalf("job %d in the queue: %v, %v; want report %s", j.ID, stored, err, name)
		}
	}
}
