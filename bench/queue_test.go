package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/queue/sqlite"
	"rpt/internal/testenv"
)

// EnvBig turns on the heavy benchmarks (a million finished jobs, five million rows).
const EnvBig = "RPT_BENCH_BIG"

func big() bool { return os.Getenv(EnvBig) == "1" }

// backend is a queue store under test. setup prepares an empty, migrated queue and
// returns a function that opens another Store on it, the way each agent process
// has its own pool; the Stores are closed when the benchmark ends.
type backend struct {
	name  string
	setup func(b *testing.B) func(ctx context.Context) (queue.Store, error)
}

func backends() []backend {
	return []backend{
		{"mysql", func(b *testing.B) func(ctx context.Context) (queue.Store, error) {
			dsn := testenv.MariaDB(b)
			return opener(b, func(ctx context.Context) (queue.Store, error) {
				s, err := mysql.Open(ctx, dsn, queue.Options{})
				if err != nil {
					return nil, err
				}
				// The agent budget for a concurrency of 8.
				s.SetMaxOpenConns(mysql.ConnBudget(8))
				return s, nil
			})
		}},
		// SQLite is the one-machine queue: every goroutine shares one Store, as the
		// goroutines of one agent process do; all writes queue on its one writer
		// connection, so more agents cannot add throughput here.
		{"sqlite", func(b *testing.B) func(ctx context.Context) (queue.Store, error) {
			path := filepath.Join(b.TempDir(), "queue.db")
			open := opener(b, func(ctx context.Context) (queue.Store, error) {
				return sqlite.Open(ctx, path, queue.Options{})
			})
			var once sync.Once
			var shared queue.Store
			var err error
			return func(ctx context.Context) (queue.Store, error) {
				once.Do(func() { shared, err = open(ctx) })
				return shared, err
			}
		}},
	}
}

// opener migrates the queue once with a first Store and returns open, whose Stores
// are closed at the end of the benchmark.
func opener(b *testing.B, open func(ctx context.Context) (queue.Store, error)) func(ctx context.Context) (queue.Store, error) {
	b.Helper()
	ctx := context.Background()
	first, err := open(ctx)
	if err != nil {
		b.Fatalf("open queue: %v", err)
	}
	b.Cleanup(func() { first.Close() })
	if err := first.Migrate(ctx); err != nil {
		b.Fatalf("migrate queue: %v", err)
	}
	return func(ctx context.Context) (queue.Store, error) {
		s, err := open(ctx)
		if err != nil {
			return nil, err
		}
		b.Cleanup(func() { s.Close() })
		return s, nil
	}
}

// noop is the job the throughput benchmarks push through: no scopes, no route, a
// small definition snapshot, like River's no-op job.
func noop() queue.JobEnqueueParams {
	return queue.JobEnqueueParams{
		Kind: queue.KindReport, Report: "noop", Definition: []byte("name: noop\nsource: none\nsql: SELECT 1\n"),
		Params: []byte(`{}`), Source: "none", Origin: queue.OriginCLI,
	}
}

// firstErr keeps the first error of many goroutines and cancels their context.
type firstErr struct {
	once   sync.Once
	err    error
	cancel context.CancelFunc
}

func (f *firstErr) set(err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	f.once.Do(func() { f.err = err; f.cancel() })
}

// Throughput settings: how many jobs an agent claims at once, how long an agent that
// found nothing waits before asking again, and how many goroutines submit.
const (
	claimBatch  = 16
	idlePause   = time.Millisecond
	submitters  = 2
	leaseLength = time.Minute
)

// BenchmarkNoopJobs pushes b.N no-op jobs through enqueue -> claim -> complete.
// submit=concurrent: submitters enqueue while the agents work (the end-to-end rate);
// submit=before: the jobs are queued first and the agents drain them (the rate of
// claim + complete alone). Each agent is a goroutine with its own Store (pool) that
// claims up to claimBatch jobs and completes them with `conc` goroutines, as an agent
// with that concurrency would. ns/op is per job; jobs/s is the same figure inverted.
func BenchmarkNoopJobs(b *testing.B) {
	type shape struct{ agents, conc int }
	shapes := []shape{{1, 1}, {2, 1}, {4, 1}, {1, 8}, {4, 8}}
	for _, be := range backends() {
		for _, mode := range []string{"concurrent", "before"} {
			for _, sh := range shapes {
				b.Run(fmt.Sprintf("%s/submit=%s/agents=%d/conc=%d", be.name, mode, sh.agents, sh.conc), func(b *testing.B) {
					runNoop(b, be, mode == "concurrent", sh.agents, sh.conc)
				})
			}
		}
	}
}

func runNoop(b *testing.B, be backend, concurrent bool, agents, conc int) {
	open := be.setup(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fe := &firstErr{cancel: cancel}
	n := int64(b.N)

	subs := make([]queue.Store, submitters)
	for i := range subs {
		s, err := open(ctx)
		if err != nil {
			b.Fatalf("open submitter store: %v", err)
		}
		subs[i] = s
	}
	var next atomic.Int64
	submit := func(wg *sync.WaitGroup) {
		for _, s := range subs {
			wg.Go(func() {
				for next.Add(1) <= n {
					if _, err := s.JobEnqueue(ctx, noop()); err != nil {
						fe.set(err)
						return
					}
				}
			})
		}
	}
	if !concurrent {
		var wg sync.WaitGroup
		submit(&wg)
		wg.Wait()
		if fe.err != nil {
			b.Fatal(fe.err)
		}
	}
	stores := make([]queue.Store, agents)
	for i := range stores {
		s, err := open(ctx)
		if err != nil {
			b.Fatalf("open agent store: %v", err)
		}
		stores[i] = s
	}

	b.ResetTimer()
	start := time.Now()
	var submitWG, agentWG sync.WaitGroup
	var submitDone time.Duration
	if concurrent {
		submit(&submitWG)
		go func() { submitWG.Wait(); submitDone = time.Since(start) }()
	}
	var done atomic.Int64
	var claims, empty atomic.Int64
	for i, s := range stores {
		name := fmt.Sprintf("bench-agent-%d", i)
		agentWG.Go(func() {
			for done.Load() < n && ctx.Err() == nil {
				jobs, err := s.JobClaim(ctx, queue.JobClaimParams{Agent: name, Limit: claimBatch, LeaseDuration: leaseLength})
				if err != nil {
					fe.set(err)
					return
				}
				claims.Add(1)
				if len(jobs) == 0 {
					empty.Add(1)
					time.Sleep(idlePause)
					continue
				}
				completeAll(ctx, fe, s, jobs, conc)
				done.Add(int64(len(jobs)))
			}
		})
	}
	agentWG.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	submitWG.Wait()
	if fe.err != nil {
		b.Fatal(fe.err)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "jobs/s")
	if concurrent && submitDone > 0 {
		b.ReportMetric(float64(n)/submitDone.Seconds(), "enqueued/s")
	}
	if c := claims.Load() - empty.Load(); c > 0 {
		b.ReportMetric(float64(n)/float64(c), "jobs/claim")
	}
}

// completeAll completes jobs with up to conc goroutines.
func completeAll(ctx context.Context, fe *firstErr, s queue.Store, jobs []*queue.Job, conc int) {
	if conc <= 1 {
		for _, j := range jobs {
			if err := s.JobComplete(ctx, j.Lease(), queue.Completion{Rows: 0}); err != nil {
				fe.set(err)
				return
			}
		}
		return
	}
	var wg sync.WaitGroup
	work := make(chan *queue.Job)
	for range min(conc, len(jobs)) {
		wg.Go(func() {
			for j := range work {
				if err := s.JobComplete(ctx, j.Lease(), queue.Completion{Rows: 0}); err != nil {
					fe.set(err)
				}
			}
		})
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
}

// BenchmarkPickupLatency measures, in one process with one clock, the time from
// calling JobEnqueue (so the insert's own cost is included) to JobClaim returning it,
// with an agent that claims again at once after finding work and otherwise polls every
// `poll`. Jobs are submitted one at a time at random gaps in [0, poll], so they land
// at every phase of the poll cycle. Reported: p50-ms, p99-ms and max-ms. A poll of
// 0 is a claim loop that never sleeps, the floor of what polling can do.
func BenchmarkPickupLatency(b *testing.B) {
	for _, be := range backends() {
		for _, poll := range []time.Duration{0, 50 * time.Millisecond, 200 * time.Millisecond} {
			b.Run(fmt.Sprintf("%s/poll=%s", be.name, poll), func(b *testing.B) { runPickup(b, be, poll) })
		}
	}
}

func runPickup(b *testing.B, be backend, poll time.Duration) {
	open := be.setup(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fe := &firstErr{cancel: cancel}
	sub, err := open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	agentStore, err := open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	n := b.N
	var mu sync.Mutex
	enqueuedAt := make(map[int64]time.Time, n)
	claimedAt := make(map[int64]time.Time, n)
	var claimedN atomic.Int64

	b.ResetTimer()
	var wg sync.WaitGroup
	wg.Go(func() {
		for claimedN.Load() < int64(n) && ctx.Err() == nil {
			jobs, err := agentStore.JobClaim(ctx, queue.JobClaimParams{Agent: "bench-poller", Limit: claimBatch, LeaseDuration: leaseLength})
			now := time.Now()
			if err != nil {
				fe.set(err)
				return
			}
			if len(jobs) == 0 {
				if poll > 0 {
					time.Sleep(poll)
				}
				continue
			}
			mu.Lock()
			for _, j := range jobs {
				claimedAt[j.ID] = now
			}
			mu.Unlock()
			for _, j := range jobs {
				if err := agentStore.JobComplete(ctx, j.Lease(), queue.Completion{Rows: 0}); err != nil {
					fe.set(err)
					return
				}
			}
			claimedN.Add(int64(len(jobs)))
		}
	})
	gap := max(poll, 10*time.Millisecond)
	for range n {
		time.Sleep(rand.N(gap + 1))
		// The clock starts before the call: the job may be claimed before JobEnqueue
		// has returned (it reads the job back after the commit).
		at := time.Now()
		res, err := sub.JobEnqueue(ctx, noop())
		if err != nil {
			fe.set(err)
			break
		}
		mu.Lock()
		enqueuedAt[res.Job.ID] = at
		mu.Unlock()
	}
	wg.Wait()
	b.StopTimer()
	if fe.err != nil {
		b.Fatal(fe.err)
	}
	lat := make([]float64, 0, n)
	for id, e := range enqueuedAt {
		c, ok := claimedAt[id]
		if !ok {
			b.Fatalf("job %d was never claimed", id)
		}
		lat = append(lat, float64(c.Sub(e))/float64(time.Millisecond))
	}
	slices.Sort(lat)
	b.ReportMetric(percentile(lat, 0.50), "p50-ms")
	b.ReportMetric(percentile(lat, 0.99), "p99-ms")
	b.ReportMetric(lat[len(lat)-1], "max-ms")
}

// percentile of sorted values, nearest rank.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// BenchmarkMariaDBFloor measures what any MariaDB queue pays on this machine, to read
// the store's figures against: a round trip (SELECT 1), an autocommit single-row
// INSERT (one durable commit), and the same in BEGIN/INSERT/COMMIT (three round trips,
// one commit), each from `conc` goroutines on one pool.
func BenchmarkMariaDBFloor(b *testing.B) {
	dsn := testenv.MariaDB(b)
	ctx := context.Background()
	s, err := mysql.Open(ctx, dsn, queue.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	s.SetMaxOpenConns(16)
	db := s.DB()
	if _, err := db.ExecContext(ctx, "CREATE TABLE floor_t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB"); err != nil {
		b.Fatal(err)
	}
	ops := []struct {
		name string
		run  func() error
	}{
		{"select1", func() error {
			var one int
			return db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
		}},
		{"insert-autocommit", func() error {
			_, err := db.ExecContext(ctx, "INSERT INTO floor_t (v) VALUES (1)")
			return err
		}},
		{"insert-tx", func() error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO floor_t (v) VALUES (1)"); err != nil {
				tx.Rollback()
				return err
			}
			return tx.Commit()
		}},
	}
	for _, op := range ops {
		for _, conc := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/conc=%d", op.name, conc), func(b *testing.B) {
				var next atomic.Int64
				fe := &firstErr{cancel: func() {}}
				var wg sync.WaitGroup
				for range conc {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							if err := op.run(); err != nil {
								fe.set(err)
								return
							}
						}
					})
				}
				wg.Wait()
				if fe.err != nil {
					b.Fatal(fe.err)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		}
	}
}
