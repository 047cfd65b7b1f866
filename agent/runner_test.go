package agent

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"

	"rpt/internal/queue"
	"rpt/internal/source"
)

// The agent advertises what it runs as capability labels next to the operator's, in
// its presence row and its claims; an operator's rpt/ label cannot claim more.
func TestCapabilityLabels(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	cfg := testConfig()
	cfg.Labels = map[string]string{"plant": "albion", "rpt/kind.archive": "yes"}
	claimed := make(chan map[string]string, 1)
	spy := &claimSpy{memStore: store, labels: claimed}
	startAgent(t, spy, (&fakeSource{rows: countRows}).opener(), cfg)

	want := map[string]string{"plant": "albion", "rpt/kind.report": "yes", "rpt/kind.etl": "yes", "rpt/feature.procedure": "yes",
		"rpt/feature.datasource": "yes", "rpt/feature.lookups": "yes", "rpt/feature.loaded-by": "yes"}
	waitFor(t, "a presence beat", func() bool { _, ok := store.lastBeat(); return ok })
	beat, _ := store.lastBeat()
	if !maps.Equal(beat.Labels, want) {
		t.Errorf("presence labels %v, want %v", beat.Labels, want)
	}
	if got := <-claimed; !maps.Equal(got, want) {
		t.Errorf("claim labels %v, want %v", got, want)
	}
	if cfg.Labels["rpt/kind.archive"] != "yes" || len(cfg.Labels) != 2 {
		t.Errorf("the caller's labels were modified: %v", cfg.Labels)
	}
}

type claimSpy struct {
	*memStore
	labels chan map[string]string
}

func (s *claimSpy) JobClaim(ctx context.Context, p queue.JobClaimParams) ([]*queue.Job, error) {
	select {
	case s.labels <- maps.Clone(p.Labels):
	default:
	}
	return s.memStore.JobClaim(ctx, p)
}

// A job of a kind the agent has no runner for (queued without its route label) fails
// at once, saying so, instead of being run as a report.
func TestUnknownKindFails(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	src := &fakeSource{rows: countRows}
	id := store.enqueue("numbers", numbersDef, `{"count": 3}`)
	store.mu.Lock()
	store.jobs[id].job.Kind = "archive"
	store.mu.Unlock()
	startAgent(t, store, src.opener(), testConfig())

	waitFor(t, "job to end", func() bool { return store.get(id).Status.Terminal() })
	j := store.get(id)
	if j.Status != queue.StatusFailed || j.Failures != 1 || !strings.Contains(j.Error, `cannot run jobs of kind "archive" (it runs etl, report)`) ||
		!strings.Contains(j.Error, "rpt/kind.archive") {
		t.Errorf("job: %s after %d failures, error %q; want failed at once naming the kind and its label", j.Status, j.Failures, j.Error)
	}
	if n := src.queries.Load(); n != 0 {
		t.Errorf("%d queries ran for a job of an unknown kind", n)
	}
}

const procDef = `name: balances
source: demo
params:
  - {name: pcn, type: int}
procedure: {name: acct.trial_balance, args: [pcn]}
`

// A procedure report runs through the same path as SQL: the call in the source's
// dialect with its arguments bound; on a source without procedures it fails at once.
func TestProcedureJob(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	calls := &driverSource{driver: "mysql"}
	id := store.enqueue("balances", procDef, `{"pcn": 42}`)
	startAgent(t, store, calls.opener(), testConfig())
	waitFor(t, "job to end", func() bool { return store.get(id).Status.Terminal() })
	if j := store.get(id); j.Status != queue.StatusSucceeded || j.Rows != 42 {
		t.Fatalf("job: %s rows %d error %q; want succeeded with 42 rows", j.Status, j.Rows, j.Error)
	}
	if got := calls.queries(); len(got) != 1 || got[0] != "CALL `acct`.`trial_balance`(:pcn)" {
		t.Errorf("queries %q, want the CALL", got)
	}

	store2 := newMemStore()
	lite := &driverSource{driver: "sqlite"}
	id = store2.enqueue("balances", procDef, `{"pcn": 42}`)
	startAgent(t, store2, lite.opener(), testConfig())
	waitFor(t, "job to end", func() bool { return store2.get(id).Status.Terminal() })
	if j := store2.get(id); j.Status != queue.StatusFailed || j.Failures != 1 || !strings.Contains(j.Error, "no stored procedures") {
		t.Errorf("procedure on sqlite: %s after %d failures, error %q; want failed at once", j.Status, j.Failures, j.Error)
	}
	if got := lite.queries(); len(got) != 0 {
		t.Errorf("queries %q sent to a sqlite source", got)
	}
}

// driverSource is a source of a given driver that records the statements it is sent
// and answers each with :pcn rows.
type driverSource struct {
	driver string
	mu     sync.Mutex
	sent   []string
}

func (d *driverSource) opener() SourceOpener {
	return func(ctx context.Context, name string) (source.Source, error) {
		return &driverConn{d: d, name: name}, nil
	}
}

func (d *driverSource) queries() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.sent...)
}

type driverConn struct {
	d    *driverSource
	name string
}

func (c *driverConn) Name() string   { return c.name }
func (c *driverConn) Driver() string { return c.d.driver }
func (c *driverConn) Close() error   { return nil }
func (c *driverConn) Query(ctx context.Context, sql string, params map[string]any) (source.Rows, error) {
	c.d.mu.Lock()
	c.d.sent = append(c.d.sent, sql)
	c.d.mu.Unlock()
	n, _ := params["pcn"].(int64)
	return &genRows{ctx: ctx, n: int(n)}, nil
}
