package mongo_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"rpt/agent"
	"rpt/cli"
	"rpt/internal/dsn"
	"rpt/internal/notify"
	"rpt/internal/queue"
	"rpt/internal/queue/sqlite"
	"rpt/internal/results"
	"rpt/internal/results/mongo"
	"rpt/internal/results/mongo/mongotest"
	"rpt/internal/source"
	"rpt/reportdefs"
)

// countDef makes N rows without a table: 25,000 are three chunks.
const countDef = `name: count
source: demo
params:
  - {name: n, type: int, default: 25000}
sql: |
  WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n)
  SELECT x FROM c
`

type world struct {
	dir   string
	queue *sqlite.Store
	demo  string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	dir := t.TempDir()
	q, err := sqlite.Open(context.Background(), filepath.Join(dir, "queue.db"), queue.Options{RetryBase: time.Hour, RetryMax: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	if err := q.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	demo := filepath.Join(dir, "demo.db")
	if err := os.WriteFile(demo, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return &world{dir: dir, queue: q, demo: demo}
}

func (w *world) submit(t *testing.T, n int) int64 {
	t.Helper()
	d, err := reportdefs.Parse("count.yaml", []byte(countDef))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.queue.DefinitionPublish(t.Context(), queue.DefinitionPublishParams{Report: d.Name, Definition: d.Raw}); err != nil {
		t.Fatal(err)
	}
	resolved, err := d.Resolve(map[string]string{"n": strconv.Itoa(n)}, time.Now(), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.queue.JobEnqueue(t.Context(), d.JobParams(resolved, nil))
	if err != nil {
		t.Fatal(err)
	}
	return res.Job.ID
}

// runAgent runs an agent writing results to rs until the test ends.
func (w *world) runAgent(t *testing.T, rs results.Store) {
	t.Helper()
	a := agent.New(w.queue, rs, func(ctx context.Context, name string) (source.Source, error) {
		return source.Open(ctx, name, source.Config{Driver: "sqlite", DSN: "sqlite:" + w.demo})
	}, agent.Config{Name: "mongo-test", LeaseDuration: 4 * time.Second, HeartbeatInterval: 500 * time.Millisecond,
		PollInterval: 100 * time.Millisecond, Grace: time.Second}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
}

func (w *world) job(t *testing.T, id int64) *queue.Job {
	t.Helper()
	j, err := w.queue.JobGet(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rpt runs the command line in-process with the drivers cmd/rpt picks.
func (w *world) rpt(t *testing.T, config string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return w.rptCtx(t, t.Context(), config, args...)
}

func (w *world) rptCtx(t *testing.T, ctx context.Context, config string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "rpt.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code = cli.Main(ctx, append([]string{"rpt", "--config", cfg}, args...), cli.Deps{
		OpenQueue: func(ctx context.Context, s string, opts queue.Options) (queue.Store, error) {
			path, err := dsn.SQLitePath(s)
			if err != nil {
				return nil, err
			}
			return sqlite.Open(ctx, path, opts)
		},
		OpenSource: source.Open,
		OpenResults: func(ctx context.Context, uri string, q queue.Store) (results.Store, error) {
			return mongo.Open(ctx, uri, q)
		},
		Stdout: &out, Stderr: &errb,
	})
	return out.String(), errb.String(), code
}

type capture struct{ events []notify.Event }

func (c *capture) PublishEvent(e notify.Event) { c.events = append(c.events, e) }

func csvRows(t *testing.T, s string) [][]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v\n%s", err, s)
	}
	return recs
}

// TestAgentWritesToMongoDB runs an agent whose results: is MongoDB: the job's result
// goes there (the job records the store's name, no credentials), rpt get reads it back
// in full; after a switch of results: back to the queue database the older result
// stays readable through results_read:, and without it the error says what to add;
// rpt db prune prunes it there.
func TestAgentWritesToMongoDB(t *testing.T) {
	srv := mongotest.Start(t)
	w := newWorld(t)
	uri := srv.URI("agent")
	ms := open(t, uri, w.queue)
	w.runAgent(t, ms)

	id := w.submit(t, 25000)
	waitFor(t, "the job to end", func() bool { return w.job(t, id).Status.Terminal() })
	j := w.job(t, id)
	if j.Status != queue.StatusSucceeded || j.ResultStore != ms.Name() || j.ResultChunks != 3 || j.Rows != 25000 {
		t.Fatalf("job %s in %q with %d chunks, %d rows, error %q; want succeeded in %q with 3 chunks, 25000 rows",
			j.Status, j.ResultStore, j.ResultChunks, j.Rows, j.Error, ms.Name())
	}
	if _, err := ms.ChunkGet(t.Context(), id, j.ResultAttempt, 2); err != nil {
		t.Errorf("chunk 2 is not in MongoDB: %v", err)
	}

	// The completion event keeps {job, attempt} and names the store and the result's id.
	pub := &capture{}
	if _, err := notify.NewRelay(w.queue, pub, notify.RelayOptions{AfterSeq: 1}).Poll(t.Context()); err != nil {
		t.Fatal(err)
	}
	var done *notify.Event
	for i, ev := range pub.events {
		if ev.Event.Event == queue.EventSucceeded {
			done = &pub.events[i]
		}
	}
	want := notify.ResultRef{Job: id, Attempt: j.ResultAttempt, Store: ms.Name(), ID: mongo.ResultID(id, j.ResultAttempt)}
	if done == nil || done.Result == nil || *done.Result != want {
		t.Errorf("succeeded event %+v, want result %+v", done, want)
	} else if b, _ := json.Marshal(done); !strings.Contains(string(b), `"result":{"job":`+strconv.FormatInt(id, 10)+`,"attempt":1,"store":"mongodb://`) {
		t.Errorf("event JSON %s", b)
	}

	queueDB := "sqlite:" + filepath.Join(w.dir, "queue.db")
	sources := "sources:\n  demo: {driver: sqlite, dsn: \"sqlite:" + w.demo + "\"}\n"
	check := func(name, config string) {
		t.Helper()
		out, errOut, code := w.rpt(t, config, "get", strconv.FormatInt(id, 10), "--csv")
		if code != 0 {
			t.Fatalf("%s: rpt get exit %d: %s", name, code, errOut)
		}
		recs := csvRows(t, out)
		if len(recs) != 25001 || recs[0][0] != "x" || recs[1][0] != "1" || recs[25000][0] != "25000" {
			t.Errorf("%s: rpt get --csv gave %d records (first %v, last %v), want a header and 1..25000", name, len(recs), recs[0], recs[len(recs)-1])
		}
	}
	check("results: mongodb", "queue: "+queueDB+"\nresults: "+uri+"\n"+sources)
	switched := "queue: " + queueDB + "\nresults: queue\nresults_read: [\"" + uri + "\"]\n" + sources
	check("results: queue, results_read: mongodb", switched)

	_, errOut, code := w.rpt(t, "queue: "+queueDB+"\nresults: queue\n", "get", strconv.FormatInt(id, 10), "--csv")
	if code == 0 || !strings.Contains(errOut, ms.Name()) || !strings.Contains(errOut, "results_read") {
		t.Errorf("rpt get without the store configured: exit %d, %q; want a failure naming %s and results_read", code, errOut, ms.Name())
	}

	// rpt db prune covers the stores of results_read: as well.
	time.Sleep(1100 * time.Millisecond)
	_, errOut, code = w.rpt(t, switched, "db", "prune", "--results", "1s")
	if code != 0 || !strings.Contains(errOut, "pruned the results of 1 jobs") {
		t.Errorf("rpt db prune: exit %d, %q; want the MongoDB result pruned", code, errOut)
	}
	if _, err := ms.ChunkGet(t.Context(), id, j.ResultAttempt, 0); err == nil {
		t.Error("chunk 0 still in MongoDB after rpt db prune")
	}
	_, errOut, code = w.rpt(t, switched, "get", strconv.FormatInt(id, 10), "--csv")
	if code == 0 || !strings.Contains(errOut, "result is gone") {
		t.Errorf("rpt get of a pruned result: exit %d, %q; want it gone", code, errOut)
	}
}

// TestMongoDBOutageReleases: with MongoDB down, an attempt that cannot store its
// result is released, as in a queue outage: the job runs again without a failure
// counted, and completes once MongoDB is back (here: never, so it stays queued or
// running, never failed).
func TestMongoDBOutageReleases(t *testing.T) {
	srv := mongotest.Start(t)
	w := newWorld(t)
	ms := open(t, srv.URI("outage")+"?serverSelectionTimeoutMS=300", w.queue)
	w.runAgent(t, ms)
	srv.Stop()

	id := w.submit(t, 100)
	waitFor(t, "the job to be claimed again", func() bool {
		j := w.job(t, id)
		return j.Attempt >= 3 || j.Failures > 0
	})
	j := w.job(t, id)
	if j.Failures != 0 || j.Status == queue.StatusFailed {
		t.Errorf("job %s after %d attempts with %d failures, error %q: want released each time, no failure counted",
			j.Status, j.Attempt, j.Failures, j.Error)
	}
	evs, err := w.queue.EventList(t.Context(), id, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range evs {
		names = append(names, e.Event)
	}
	if !strings.Contains(strings.Join(names, " "), "released") {
		t.Errorf("events %v: want a released event", names)
	}
}

// TestAgentPrunesEveryStore: an agent whose results: was switched to the queue database
// prunes the MongoDB store of results_read: too, so older results age out without
// rpt db prune.
func TestAgentPrunesEveryStore(t *testing.T) {
	srv := mongotest.Start(t)
	w := newWorld(t)
	uri := srv.URI("switched")
	ms := open(t, uri, w.queue)
	w.runAgent(t, ms) // stops at the end of the test; results: MongoDB
	id := w.submit(t, 100)
	waitFor(t, "the job to end", func() bool { return w.job(t, id).Status.Terminal() })
	j := w.job(t, id)
	if j.ResultStore != ms.Name() {
		t.Fatalf("job %s in %q, want its result in %s", j.Status, j.ResultStore, ms.Name())
	}
	time.Sleep(1100 * time.Millisecond)
	conf := "queue: sqlite:" + filepath.Join(w.dir, "queue.db") + "\nresults: queue\nresults_read: [\"" + uri + "\"]\n" +
		"retention: {results: 1s}\nsources:\n  demo: {driver: sqlite, dsn: \"sqlite:" + w.demo + "\"}\n"
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan string, 1)
	go func() {
		_, errOut, code := w.rptCtx(t, ctx, conf, "agent", "--name", "pruner", "--prune-interval", "200ms")
		done <- fmt.Sprintf("exit %d: %s", code, errOut)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := ms.ChunkGet(t.Context(), id, j.ResultAttempt, 0)
		if errors.Is(err, queue.ErrNotFound) {
			break
		}
		select {
		case out := <-done:
			t.Fatalf("rpt agent ended: %s", out)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the agent did not prune the MongoDB result in 30s (chunk 0: %v); its log:\n%s", err, <-done)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if out := <-done; !strings.HasPrefix(out, "exit 0") {
		t.Errorf("rpt agent: %s", out)
	}
}
