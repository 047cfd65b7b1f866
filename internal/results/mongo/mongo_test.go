package mongo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	drv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"rpt/internal/queue"
	"rpt/internal/queue/sqlite"
	"rpt/internal/results"
	"rpt/internal/results/mongo"
	"rpt/internal/results/mongo/mongotest"
	"rpt/internal/results/resultstest"
	"rpt/internal/source"
)

var dbSeq atomic.Int64

func newQueue(t *testing.T) *sqlite.Store {
	t.Helper()
	q, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "queue.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	if err := q.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return q
}

func open(t *testing.T, uri string, q mongo.Jobs) *mongo.Store {
	t.Helper()
	s, err := mongo.Open(context.Background(), uri, q)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestResultsConformance holds the MongoDB store (on an embedded FerretDB) to the
// result-store suite. One server serves every subtest, each in a database of its own.
func TestResultsConformance(t *testing.T) {
	srv := mongotest.Start(t)
	resultstest.Run(t, func(t *testing.T) resultstest.Env {
		q := newQueue(t)
		return resultstest.Env{Queue: q, Results: open(t, srv.URI(fmt.Sprintf("rpt%d", dbSeq.Add(1))), q)}
	})
}

// TestResultsConformanceWithDeadlines runs the suite with every store call under a
// context deadline, as the agent's calls are: the driver then sends maxTimeMS, which
// FerretDB's distinct could not answer (Prune used to fail in every agent).
func TestResultsConformanceWithDeadlines(t *testing.T) {
	srv := mongotest.Start(t)
	resultstest.Run(t, func(t *testing.T) resultstest.Env {
		q := newQueue(t)
		return resultstest.Env{Queue: q, Results: deadlined{open(t, srv.URI(fmt.Sprintf("dl%d", dbSeq.Add(1))), q)}}
	})
}

// deadlined gives every call a deadline.
type deadlined struct{ *mongo.Store }

func (d deadlined) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, time.Minute)
}

func (d deadlined) ChunkPut(ctx context.Context, l queue.Lease, seq int, data []byte) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	return d.Store.ChunkPut(ctx, l, seq, data)
}

func (d deadlined) ChunkGet(ctx context.Context, jobID int64, attempt int, seq int) ([]byte, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	return d.Store.ChunkGet(ctx, jobID, attempt, seq)
}

func (d deadlined) Discard(ctx context.Context, jobID int64, attempt int) (int, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	return d.Store.Discard(ctx, jobID, attempt)
}

func (d deadlined) Prune(ctx context.Context, before time.Time) (int, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	return d.Store.Prune(ctx, before)
}

func claim(t *testing.T, q queue.Store) *queue.Job {
	t.Helper()
	jobs, err := q.JobClaim(t.Context(), queue.JobClaimParams{Agent: "t", Limit: 1, LeaseDuration: time.Minute})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %d jobs, %v", len(jobs), err)
	}
	return jobs[0]
}

func write(t *testing.T, s results.Store, l queue.Lease, from, rows int) int {
	t.Helper()
	w := results.NewWriter(s, l, []source.Column{{Name: "n", Type: source.TypeInt}})
	for i := range rows {
		if err := w.Write(t.Context(), []any{int64(from + i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	return w.Chunks()
}

// TestStaleAttemptNeverRead: an attempt that lost its lease goes on writing (its agent
// has not noticed yet), even after the new attempt completed; the result read through
// the job is the completed attempt's rows only, and the stale chunks are in the
// collection under their own attempt, never mixed in.
func TestStaleAttemptNeverRead(t *testing.T) {
	srv := mongotest.Start(t)
	q := newQueue(t)
	s := open(t, srv.URI("stale"), q)
	if _, err := q.JobEnqueue(t.Context(), queue.JobEnqueueParams{Kind: queue.KindReport, Report: "r",
		Definition: []byte("name: r\n"), DefinitionSHA256: "x", Params: json.RawMessage(`{}`), Source: "w", MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	stale := claim(t, q)
	write(t, s, stale.Lease(), 1000, 5)
	if err := q.JobRelease(t.Context(), stale.Lease()); err != nil {
		t.Fatal(err)
	}
	fresh := claim(t, q)
	chunks := write(t, s, fresh.Lease(), 0, 3)
	if err := q.JobComplete(t.Context(), fresh.Lease(), queue.Completion{Rows: 3, ResultStore: s.Name(), ResultChunks: chunks}); err != nil {
		t.Fatal(err)
	}
	// The stale attempt writes on after the completion, more chunks than the result has.
	write(t, s, stale.Lease(), 2000, 25000)

	j, err := q.JobGet(t.Context(), fresh.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.ResultAttempt != fresh.Attempt || results.StoreOf(j) != s.Name() {
		t.Fatalf("job records attempt %d in %q, want %d in %q", j.ResultAttempt, results.StoreOf(j), fresh.Attempt, s.Name())
	}
	rows, err := results.Open(t.Context(), s, results.RefOf(j))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int64
	for rows.Next() {
		got = append(got, rows.Values()[0].(int64))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[0 1 2]" {
		t.Errorf("result rows = %v, want [0 1 2] (the completed attempt's only)", got)
	}
	// The stale chunks exist (so the test above could have read them) under their attempt.
	if _, err := s.ChunkGet(t.Context(), j.ID, stale.Attempt, 2); err != nil {
		t.Errorf("the stale attempt's chunk 2 is not there to be ignored: %v", err)
	}
	// Prune, with the job finished after the cut-off, deletes the stale attempt's
	// chunks and keeps the result.
	if _, err := s.Prune(t.Context(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChunkGet(t.Context(), j.ID, stale.Attempt, 0); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("stale chunk 0 after prune: %v, want ErrNotFound", err)
	}
}

// TestChunkKeyIsUnique: the collection has the unique index on (job, attempt, seq), so
// two documents can never claim to be the same chunk.
func TestChunkKeyIsUnique(t *testing.T) {
	srv := mongotest.Start(t)
	q := newQueue(t)
	uri := srv.URI("uniq")
	s := open(t, uri, q)
	if err := s.ChunkPut(t.Context(), queue.Lease{JobID: 7, Attempt: 1, Token: "x"}, 0, []byte("a")); err != nil {
		t.Fatal(err)
	}
	c, err := drv.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(context.Background())
	coll := c.Database("uniq").Collection(mongo.Collection)
	_, err = coll.InsertOne(t.Context(), bson.D{{Key: "_id", Value: "other"}, {Key: "job", Value: int64(7)}, {Key: "attempt", Value: 1}, {Key: "seq", Value: 0}})
	if !drv.IsDuplicateKeyError(err) {
		t.Errorf("a second document for job 7 attempt 1 seq 0: %v, want a duplicate key error", err)
	}
	var doc bson.M
	if err := coll.FindOne(t.Context(), bson.D{{Key: "job", Value: int64(7)}, {Key: "attempt", Value: 1}, {Key: "seq", Value: 0}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc["_id"] != "7.1.0" || mongo.ResultID(7, 1) != "7.1" {
		t.Errorf("chunk _id = %v, result id %q; want 7.1.0 and 7.1", doc["_id"], mongo.ResultID(7, 1))
	}
}

// TestOutageIsStoreDown: a server that does not answer is ErrStoreDown (the agent
// releases the job), for writes and reads alike, and no error shows the password.
func TestOutageIsStoreDown(t *testing.T) {
	srv := mongotest.Start(t)
	q := newQueue(t)
	uri := "mongodb://rpt:s3cret-pw@" + srv.Host() + "/down?serverSelectionTimeoutMS=500&authSource=admin"
	s := open(t, srv.URI("down")+"?serverSelectionTimeoutMS=500", q)
	if err := s.ChunkPut(t.Context(), queue.Lease{JobID: 1, Attempt: 1}, 0, []byte("a")); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	fast := open(t, srv.URI("down")+"?serverSelectionTimeoutMS=500", q)
	withPw := open(t, uri, q)
	for _, tc := range []struct {
		name string
		s    *mongo.Store
	}{{"connected before", s}, {"new client", fast}, {"with a password", withPw}} {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		err := tc.s.ChunkPut(ctx, queue.Lease{JobID: 1, Attempt: 1}, 1, []byte("b"))
		if !errors.Is(err, results.ErrStoreDown) || !errors.Is(err, results.ErrUnavailable) {
			t.Errorf("%s: put: %v, want ErrStoreDown", tc.name, err)
		}
		_, gerr := tc.s.ChunkGet(ctx, 1, 1, 0)
		if !errors.Is(gerr, results.ErrStoreDown) {
			t.Errorf("%s: get: %v, want ErrStoreDown", tc.name, gerr)
		}
		cancel()
		for _, e := range []error{err, gerr} {
			if e != nil && strings.Contains(e.Error(), "s3cret-pw") {
				t.Errorf("%s: error shows the password: %v", tc.name, e)
			}
		}
	}
	// A cancelled call is the caller's doing, not an outage.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := fast.ChunkPut(ctx, queue.Lease{JobID: 1, Attempt: 1}, 1, []byte("b")); errors.Is(err, results.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled put: %v, want context.Canceled only", err)
	}
}

// TestBinaryDoesNotLinkFerretDB: the embedded FerretDB is for tests; rpt itself links
// only the MongoDB driver.
func TestBinaryDoesNotLinkFerretDB(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "rpt/cmd/rpt").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := string(out)
	if strings.Contains(deps, "FerretDB") || strings.Contains(deps, "mongotest") {
		t.Error("rpt links FerretDB or mongotest")
	}
	if !strings.Contains(deps, "go.mongodb.org/mongo-driver/v2/mongo\n") || !strings.Contains(deps, "rpt/internal/results/mongo\n") {
		t.Error("rpt does not link the MongoDB store: the test would pass for the wrong reason")
	}
}
