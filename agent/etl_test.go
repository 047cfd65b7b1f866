package agent

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"rpt/etl"
	"rpt/internal/queue"
	"rpt/internal/queue/sqlite"
	"rpt/internal/source"
	"rpt/internal/testenv"
)

const etlTestDef = `name: orders
source: plex
extract: {table: orders}
mode: full
target:
  table: orders_wh
  create: CREATE TABLE orders_wh (id INT PRIMARY KEY, amount DECIMAL(19,2)) ENGINE=InnoDB
`

// etlEnv is a SQLite queue, a MariaDB database standing in for Plex (table orders, 100
// rows) and a MariaDB warehouse.
type etlEnv struct {
	store    *sqlite.Store
	plexDSN  string
	whDSN    string
	whDB     *sql.DB
	gate     *gate // holds the extract after its first rows while set
	def      *etl.Definition
	openedWH source.Source
}

func newETLEnv(t *testing.T) *etlEnv {
	t.Helper()
	ctx := context.Background()
	e := &etlEnv{plexDSN: testenv.MariaDB(t), whDSN: testenv.MariaDB(t), gate: &gate{}}
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "queue.db"), queue.Options{RetryBase: time.Hour, RetryMax: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e.store = store
	plex, err := source.Open(ctx, "plex", source.Config{Driver: "mysql", DSN: e.plexDSN})
	if err != nil {
		t.Fatal(err)
	}
	defer plex.Close()
	db := plex.(interface{ DB() *sql.DB }).DB()
	for _, q := range []string{"CREATE TABLE orders (id INT PRIMARY KEY, amount DECIMAL(19,2))",
		"INSERT INTO orders WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) SELECT i, i + 0.01 FROM n"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	wh, err := source.Open(ctx, "warehouse", source.Config{Driver: "mysql", DSN: e.whDSN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wh.Close() })
	e.whDB = wh.(interface{ DB() *sql.DB }).DB()
	if e.def, err = etl.Parse("orders.yaml", []byte(etlTestDef)); err != nil {
		t.Fatal(err)
	}
	// Published as an admin would (trust is trust_test.go's subject).
	if _, _, err := store.DefinitionPublish(ctx, queue.DefinitionPublishParams{Report: e.def.Name, Definition: e.def.Raw}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *etlEnv) open(ctx context.Context, name string) (source.Source, error) {
	if name == "plex" {
		s, err := source.Open(ctx, name, source.Config{Driver: "mysql", DSN: e.plexDSN})
		if err != nil {
			return nil, err
		}
		return gatedSource{s, e.gate}, nil
	}
	return source.Open(ctx, name, source.Config{Driver: "mysql", DSN: e.whDSN})
}

func (e *etlEnv) submit(t *testing.T) int64 {
	t.Helper()
	p, err := etl.JobParams(e.def, etl.JobArgs{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.store.JobEnqueue(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return res.Job.ID
}

func (e *etlEnv) job(t *testing.T, id int64) *queue.Job {
	t.Helper()
	j, err := e.store.JobGet(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (e *etlEnv) loaded(t *testing.T) (rows int, runs int, jobID int64) {
	t.Helper()
	if err := e.whDB.QueryRow("SELECT COUNT(*) FROM orders_wh").Scan(&rows); err != nil {
		return -1, 0, 0
	}
	_ = e.whDB.QueryRow("SELECT runs, job_id FROM rpt_etl_state WHERE etl_name = 'orders'").Scan(&runs, &jobID)
	return rows, runs, jobID
}

// gate holds a gated source's rows after the tenth while closed.
type gate struct {
	mu     sync.Mutex
	closed bool
	held   chan struct{} // closed when a reader waits at the gate
	open   chan struct{}
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed, g.held, g.open = true, make(chan struct{}), make(chan struct{})
}

func (g *gate) release() { close(g.open) }

func (g *gate) wait() {
	g.mu.Lock()
	closed, held, open := g.closed, g.held, g.open
	g.closed = false
	g.mu.Unlock()
	if closed {
		close(held)
		<-open
	}
}

type gatedSource struct {
	source.Source
	g *gate
}

func (s gatedSource) DB() *sql.DB { return s.Source.(interface{ DB() *sql.DB }).DB() }

func (s gatedSource) Query(ctx context.Context, q string, params map[string]any) (source.Rows, error) {
	rows, err := s.Source.Query(ctx, q, params)
	if err != nil {
		return nil, err
	}
	return &gatedRows{Rows: rows, g: s.g}, nil
}

type gatedRows struct {
	source.Rows
	g *gate
	n int
}

func (r *gatedRows) Next() bool {
	r.n++
	if r.n == 10 {
		r.g.wait()
	}
	return r.Rows.Next()
}

// TestETLJobLoads: an etl job is claimed by an agent (its runner advertises the kind),
// loads the warehouse, records its job and attempt in the state, and reports the rows
// written as the job's rows.
func TestETLJobLoads(t *testing.T) {
	t.Parallel()
	e := newETLEnv(t)
	id := e.submit(t)
	cfg := testConfig()
	cfg.HistorySource = "warehouse"
	startAgent(t, e.store, e.open, cfg)
	waitFor(t, "etl job to end", func() bool { return e.job(t, id).Status.Terminal() })
	j := e.job(t, id)
	if j.Status != queue.StatusSucceeded || j.Rows != 100 || j.Kind != queue.KindETL {
		t.Fatalf("job %s kind %s rows %d error %q; want a succeeded etl job with 100 rows", j.Status, j.Kind, j.Rows, j.Error)
	}
	if rows, runs, job := e.loaded(t); rows != 100 || runs != 1 || job != id {
		t.Errorf("warehouse %d rows, state runs %d job %d; want 100, 1, %d", rows, runs, job, id)
	}
}

// TestETLZombieWritesNothing: an attempt whose lease expires mid-load (its heartbeats
// lost, as a SIGSTOPped agent's would be) and is rescued, then goes on, reaches its
// fence check with a lease that is no longer its own: the load rolls back, the target
// and the state stay as they were.
func TestETLZombieWritesNothing(t *testing.T) {
	t.Parallel()
	e := newETLEnv(t)
	store := &flakyStore{Store: e.store}
	id := e.submit(t)
	cfg := testConfig()
	cfg.HistorySource = "warehouse"
	cfg.LeaseDuration = 2 * time.Second
	cfg.RescueInterval = 100 * time.Millisecond
	e.gate.close()
	held := e.gate.held
	a, _ := startAgent(t, store, e.open, cfg)
	<-held // the load is open, ten rows in
	// The rescued job must not be claimed again by this agent meanwhile.
	if err := e.store.PauseSet(context.Background(), queue.PauseReport, "orders", true); err != nil {
		t.Fatal(err)
	}
	store.swallow.Store(true)
	waitFor(t, "lease rescued", func() bool { return e.job(t, id).Status == queue.StatusQueued })
	store.swallow.Store(false)
	e.gate.release()
	waitFor(t, "zombie stopped", func() bool { return a.Running() == 0 })
	if rows, runs, _ := e.loaded(t); rows != 0 || runs != 0 {
		t.Errorf("the zombie attempt wrote: %d rows, state runs %d; want 0 and 0", rows, runs)
	}
	if j := e.job(t, id); j.Status != queue.StatusQueued || j.Failures != 1 {
		t.Errorf("job %s failures %d, want queued with 1 failure (the rescue)", j.Status, j.Failures)
	}
}
