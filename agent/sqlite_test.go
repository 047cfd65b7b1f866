package agent

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/queue/sqlite"
	"rpt/internal/source"
	"rpt/reportdefs"
)

// sqliteEnv is a real SQLite queue and a SQLite source with a tiny demo-like table.
type sqliteEnv struct {
	store *sqlite.Store
	open  SourceOpener
}

func newSQLiteEnv(t *testing.T) *sqliteEnv {
	t.Helper()
	// Retries far in the future: a failed attempt must stay visible as queued.
	return newSQLiteEnvWith(t, queue.Options{RetryBase: time.Hour, RetryMax: time.Hour})
}

// newSQLiteEnvWith is newSQLiteEnv with the queue's options given.
func newSQLiteEnvWith(t *testing.T, opts queue.Options) *sqliteEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "queue.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	demo := filepath.Join(dir, "demo.db")
	db, err := sql.Open("sqlite", "file:"+demo)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		`CREATE TABLE accounting_v_balance_e (pcn INTEGER, account_no TEXT, period INTEGER, debit_cents INTEGER,
			credit_cents INTEGER, PRIMARY KEY (pcn, account_no, period))`,
		`INSERT INTO accounting_v_balance_e VALUES
			(123681, '10000-000', 202401, 150000, 0),
			(123681, '10000-000', 202402, 0, 2550),
			(123681, '40000-000', 202401, 0, 99999),
			(123681, '40000-000', 202402, 1, 0),
			(300758, '10000-000', 202401, 7, 0)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	return &sqliteEnv{
		store: store,
		open: func(ctx context.Context, name string) (source.Source, error) {
			return source.Open(ctx, name, source.Config{Driver: "sqlite", DSN: "sqlite:" + demo})
		},
	}
}

// submit enqueues def with params as rpt submit does, after publishing it as an admin
// would (these tests are not about trust; trust_test.go is).
func (e *sqliteEnv) submit(t *testing.T, def string, params map[string]string) int64 {
	t.Helper()
	d, err := reportdefs.Parse("test.yaml", []byte(def))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.DefinitionPublish(context.Background(), queue.DefinitionPublishParams{Report: d.Name, Definition: d.Raw}); err != nil {
		t.Fatal(err)
	}
	resolved, err := d.Resolve(params, time.Now(), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.store.JobEnqueue(context.Background(), d.JobParams(resolved, nil))
	if err != nil {
		t.Fatal(err)
	}
	return res.Job.ID
}

func (e *sqliteEnv) job(t *testing.T, id int64) *queue.Job {
	t.Helper()
	j, err := e.store.JobGet(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

const balancesDef = `name: balances
source: demo
params:
  - {name: pcn, type: int, default: 123681}
columns:
  balance: decimal
sql: |
  SELECT account_no, period, printf('%d.%02d', (debit_cents - credit_cents) / 100,
         abs(debit_cents - credit_cents) % 100) AS balance
  FROM accounting_v_balance_e WHERE pcn = :pcn ORDER BY period, account_no
`

// longDef runs for minutes unless its query is killed: a recursive CTE that returns
// nothing until it is done.
const longDef = `name: long
source: demo
params:
  - {name: n, type: int, default: 5000000000}
sql: |
  WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n)
  SELECT max(x) AS m FROM c
`

func TestSQLiteJobCompletes(t *testing.T) {
	t.Parallel()
	env := newSQLiteEnv(t)
	id := env.submit(t, balancesDef, nil)
	before := time.Now().UTC()
	startAgent(t, env.store, env.open, testConfig())

	waitFor(t, "job to end", func() bool { return env.job(t, id).Status.Terminal() })
	job := env.job(t, id)
	if job.Status != queue.StatusSucceeded || job.Rows != 4 || job.ResultAttempt != 1 {
		t.Fatalf("job status %s rows %d result attempt %d error %q; want succeeded, 4 rows, attempt 1",
			job.Status, job.Rows, job.ResultAttempt, job.Error)
	}
	// The completion says where and when the data was read: the job's source, its
	// driver, and a query start between the submit and the finish.
	if r := job.Read; r == nil || r.Source != "demo" || r.Kind != "sqlite" || r.At.Before(before.Truncate(time.Microsecond)) ||
		job.FinishedAt == nil || r.At.After(*job.FinishedAt) {
		t.Errorf("job read %+v (finished %v, agent started %v); want source demo, kind sqlite, read in between", r, job.FinishedAt, before)
	}
	got := readResult(t, env.store, id, job.ResultAttempt)
	want := [][]any{
		{"10000-000", int64(202401), "1500.00"},
		{"40000-000", int64(202401), "-999.99"},
		{"10000-000", int64(202402), "-25.50"},
		{"40000-000", int64(202402), "0.01"},
	}
	if len(got) != len(want) {
		t.Fatalf("result %v, want %v", got, want)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("row %d = %#v, want %#v", i+1, got[i], want[i])
		}
	}
}

func TestSQLiteCancelKillsLongQuery(t *testing.T) {
	t.Parallel()
	env := newSQLiteEnv(t)
	id := env.submit(t, longDef, nil)
	a, _ := startAgent(t, env.store, env.open, testConfig())

	waitFor(t, "job running", func() bool { return env.job(t, id).Status == queue.StatusRunning && a.Running() == 1 })
	if _, err := env.store.JobCancel(context.Background(), id, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "job to end", func() bool { return env.job(t, id).Status.Terminal() })
	if job := env.job(t, id); job.Status != queue.StatusCancelled {
		t.Fatalf("status %s error %q, want cancelled", job.Status, job.Error)
	}
	waitFor(t, "agent idle", func() bool { return a.Running() == 0 })
}

func TestSQLiteShutdownAfterGraceReleases(t *testing.T) {
	t.Parallel()
	env := newSQLiteEnv(t)
	id := env.submit(t, longDef, nil)
	cfg := testConfig()
	cfg.Grace = 200 * time.Millisecond
	a, stop := startAgent(t, env.store, env.open, cfg)

	waitFor(t, "job running", func() bool { return env.job(t, id).Status == queue.StatusRunning && a.Running() == 1 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	job := env.job(t, id)
	if job.Status != queue.StatusQueued || job.Failures != 0 || job.Attempt != 1 {
		t.Errorf("job status %s failures %d attempt %d, want queued, 0 failures, attempt 1", job.Status, job.Failures, job.Attempt)
	}
}

func TestSQLiteShutdownWithinGraceCompletes(t *testing.T) {
	t.Parallel()
	env := newSQLiteEnv(t)
	// A moment of work (about half a second), long enough to be seen running however fast
	// the machine: shutdown starts while it runs, and Grace lets it finish.
	id := env.submit(t, longDef, map[string]string{"n": "2000000"})
	cfg := testConfig()
	cfg.Grace = 5 * time.Minute
	a, stop := startAgent(t, env.store, env.open, cfg)

	waitFor(t, "job running", func() bool { return a.Running() == 1 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	job := env.job(t, id)
	if job.Status != queue.StatusSucceeded || job.Rows != 1 {
		t.Fatalf("job status %s rows %d error %q, want succeeded with 1 row", job.Status, job.Rows, job.Error)
	}
	if got := readResult(t, env.store, id, job.ResultAttempt); len(got) != 1 || got[0][0] != int64(2000000) {
		t.Errorf("result %v, want [[2000000]]", got)
	}
}

func TestSQLiteTimeoutFails(t *testing.T) {
	t.Parallel()
	env := newSQLiteEnv(t)
	id := env.submit(t, longDef+"timeout: 300ms\n", nil)
	startAgent(t, env.store, env.open, testConfig())

	waitFor(t, "job to end", func() bool { return env.job(t, id).Status.Terminal() })
	job := env.job(t, id)
	if job.Status != queue.StatusFailed || job.Error != "timeout after 300ms" || job.Failures != 1 {
		t.Errorf("job status %s error %q failures %d, want failed, \"timeout after 300ms\", 1 failure",
			job.Status, job.Error, job.Failures)
	}
}

func TestSQLiteConcurrencyLimit(t *testing.T) {
	t.Parallel()
	env := newSQLiteEnv(t)
	var ids []int64
	for range 6 {
		ids = append(ids, env.submit(t, longDef, map[string]string{"n": "1000"}))
	}
	cfg := testConfig()
	cfg.Concurrency = 3
	a, _ := startAgent(t, env.store, env.open, cfg)

	maxRunning := 0
	waitFor(t, "all jobs to end", func() bool {
		maxRunning = max(maxRunning, a.Running())
		jobs, err := env.store.JobList(context.Background(), queue.JobListParams{Status: queue.StatusRunning, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		maxRunning = max(maxRunning, len(jobs))
		for _, id := range ids {
			if !env.job(t, id).Status.Terminal() {
				return false
			}
		}
		return true
	})
	if maxRunning > 3 {
		t.Errorf("%d jobs ran at once, want at most 3", maxRunning)
	}
	for _, id := range ids {
		if st := env.job(t, id).Status; st != queue.StatusSucceeded {
			t.Errorf("job %d %s, want succeeded", id, st)
		}
	}
}

// flakyStore is a real store whose connection can be cut (down: every call fails with
// queue.ErrUnavailable) or whose heartbeats can be lost on the way (swallow: they
// report success without reaching the database, so the lease quietly expires).
type flakyStore struct {
	*sqlite.Store
	down    atomic.Bool
	swallow atomic.Bool
}

func (f *flakyStore) check() error {
	if f.down.Load() {
		return fmt.Errorf("connect to queue: %w", queue.ErrUnavailable)
	}
	return nil
}

func (f *flakyStore) JobClaim(ctx context.Context, p queue.JobClaimParams) ([]*queue.Job, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return f.Store.JobClaim(ctx, p)
}

func (f *flakyStore) JobHeartbeat(ctx context.Context, l queue.Lease, rows int64, d time.Duration) (queue.Heartbeat, error) {
	if err := f.check(); err != nil {
		return queue.Heartbeat{}, err
	}
	if f.swallow.Load() {
		return queue.Heartbeat{}, nil
	}
	return f.Store.JobHeartbeat(ctx, l, rows, d)
}

func (f *flakyStore) JobComplete(ctx context.Context, l queue.Lease, c queue.Completion) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.Store.JobComplete(ctx, l, c)
}

func (f *flakyStore) JobCompleteBatch(ctx context.Context, items []queue.CompleteItem, claim *queue.JobClaimParams) ([]error, []*queue.Job, error) {
	if err := f.check(); err != nil {
		return nil, nil, err
	}
	return f.Store.JobCompleteBatch(ctx, items, claim)
}

func (f *flakyStore) JobFail(ctx context.Context, l queue.Lease, p queue.JobFailParams) (queue.Status, error) {
	if err := f.check(); err != nil {
		return "", err
	}
	return f.Store.JobFail(ctx, l, p)
}

func (f *flakyStore) JobCancelled(ctx context.Context, l queue.Lease) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.Store.JobCancelled(ctx, l)
}

func (f *flakyStore) JobRelease(ctx context.Context, l queue.Lease) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.Store.JobRelease(ctx, l)
}

func (f *flakyStore) JobRescue(ctx context.Context) (int, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	return f.Store.JobRescue(ctx)
}

func (f *flakyStore) AgentHeartbeat(ctx context.Context, a queue.Agent) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.Store.AgentHeartbeat(ctx, a)
}

func (f *flakyStore) AgentGet(ctx context.Context, name string) (queue.Agent, error) {
	if err := f.check(); err != nil {
		return queue.Agent{}, err
	}
	return f.Store.AgentGet(ctx, name)
}

func (f *flakyStore) QueueStats(ctx context.Context) (queue.QueueStats, error) {
	if err := f.check(); err != nil {
		return queue.QueueStats{}, err
	}
	return f.Store.QueueStats(ctx)
}

func (f *flakyStore) Prune(ctx context.Context, p queue.PruneParams) (queue.PruneResult, error) {
	if err := f.check(); err != nil {
		return queue.PruneResult{}, err
	}
	return f.Store.Prune(ctx, p)
}

func (f *flakyStore) ResultChunkPut(ctx context.Context, l queue.Lease, seq int, data []byte) error {
	if err := f.check(); err != nil {
		return err
	}
	return f.Store.ResultChunkPut(ctx, l, seq, data)
}

func TestSQLiteSelfFenceReleasesAfterOutage(t *testing.T) {
	t.Parallel()
	env := newSQLiteEnv(t)
	store := &flakyStore{Store: env.store}
	id := env.submit(t, longDef, nil)
	cfg := testConfig()
	cfg.LeaseDuration = 2 * time.Second
	a, _ := startAgent(t, store, env.open, cfg)

	waitFor(t, "job running", func() bool { return env.job(t, id).Status == queue.StatusRunning && a.Running() == 1 })
	store.down.Store(true)
	waitFor(t, "self-fence", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		for l, r := range a.jobs {
			if l.JobID == id && r.fenced.Load() && r.ctx.Err() != nil {
				return true
			}
		}
		return false
	})
	if a.Ready() {
		t.Errorf("Ready() = true while the queue is down")
	}
	// Still down: the job is fenced and its query killed, but it can't be released yet.
	if job := env.job(t, id); job.Status != queue.StatusRunning {
		t.Fatalf("status %s while the queue was down, want running", job.Status)
	}
	store.down.Store(false)
	// The agent may claim the released job again at once: look for the event.
	waitFor(t, "job released", func() bool {
		events, err := env.store.EventList(context.Background(), id, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			if e.Event == queue.EventReleased && e.Attempt == 1 {
				return true
			}
		}
		return false
	})
	job := env.job(t, id)
	if job.Failures != 0 || job.ResultAttempt != 0 || job.Status.Terminal() {
		t.Errorf("job status %s failures %d result attempt %d, want not finished, 0 failures, no result",
			job.Status, job.Failures, job.ResultAttempt)
	}
}

func TestSQLiteLeaseLostStopsJob(t *testing.T) {
	t.Parallel()
	env := newSQLiteEnv(t)
	store := &flakyStore{Store: env.store}
	id := env.submit(t, longDef, nil)
	cfg := testConfig()
	// Long enough that a loaded machine's slow heartbeats do not self-fence the job
	// (which would release it instead of letting the lease expire).
	cfg.LeaseDuration = 3 * time.Second
	cfg.RescueInterval = 100 * time.Millisecond
	a, _ := startAgent(t, store, env.open, cfg)

	waitFor(t, "job running", func() bool { return env.job(t, id).Status == queue.StatusRunning && a.Running() == 1 })
	// A rescued job is due at once; the pause keeps this agent from claiming it again.
	if err := env.store.PauseSet(context.Background(), queue.PauseReport, "long", true); err != nil {
		t.Fatal(err)
	}
	store.swallow.Store(true)
	// The agent's own rescue loop returns the expired lease to the queue.
	waitFor(t, "lease rescued", func() bool { return env.job(t, id).Status == queue.StatusQueued })
	store.swallow.Store(false)
	waitFor(t, "job stopped", func() bool { return a.Running() == 0 })
	job := env.job(t, id)
	if job.Status != queue.StatusQueued || job.Failures != 1 || job.ResultAttempt != 0 {
		t.Errorf("job status %s failures %d result attempt %d, want queued, 1 failure (the rescue), no result",
			job.Status, job.Failures, job.ResultAttempt)
	}
}
