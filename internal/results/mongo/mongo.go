// Package mongo is the results store in MongoDB (rpt.yaml results: mongodb://...): a
// result set's chunks are documents of the collection result_chunks, one per (job,
// attempt, seq), under a unique index on those three fields. The store keeps opaque
// chunks and nothing else; which attempt counts, and when a job finished, is the queue's
// word, so the store reads jobs from the queue to discard and prune.
//
// A chunk's _id is "JOB.ATTEMPT.SEQ" and a result's id (ResultID) is "JOB.ATTEMPT": a
// lookup by _id is the cheapest query on every server (FerretDB too), and anyone holding
// a completion event can find the result's chunks with {job: JOB, attempt: ATTEMPT}.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"rpt/internal/config"
	"rpt/internal/dsn"
	"rpt/internal/notify"
	"rpt/internal/queue"
	"rpt/internal/results"
)

// Collection is the collection that holds the chunks.
const Collection = "result_chunks"

// DefaultDatabase is the database used when the URI names none.
const DefaultDatabase = "rpt"

// serverSelectionTimeout bounds how long a call waits for a server that does not answer
// (the driver's default is 30s) unless the URI sets serverSelectionTimeoutMS: an outage
// should release the job well within a lease, not hold it.
const serverSelectionTimeout = 10 * time.Second

// Jobs is what the store reads of the queue: whether an attempt is its job's result,
// and when a job finished.
type Jobs interface {
	JobGet(ctx context.Context, id int64) (*queue.Job, error)
}

// Store is a results.Store in one MongoDB database.
type Store struct {
	name   string
	client *mongo.Client
	chunks *mongo.Collection
	jobs   Jobs

	mu      sync.Mutex
	indexed bool
}

var _ results.Store = (*Store)(nil)

// Open connects to the database uri names (DefaultDatabase when none). It does not wait
// for the server: a server that is down makes the calls fail (ErrStoreDown), not Open.
// jobs is the queue the store's jobs are in.
func Open(ctx context.Context, uri string, jobs Jobs) (*Store, error) {
	name, err := config.ResultStoreName(uri)
	if err != nil {
		return nil, fmt.Errorf("results store: %w", err)
	}
	if name == results.QueueStoreName {
		return nil, fmt.Errorf("results store: %q is not a MongoDB URI", dsn.Redact(uri))
	}
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil { // ResultStoreName parsed it
		return nil, fmt.Errorf("results store: %s", dsn.Redact(err.Error()))
	}
	db := cs.Database
	if db == "" {
		db = DefaultDatabase
	}
	opts := options.Client().SetServerSelectionTimeout(serverSelectionTimeout).ApplyURI(uri).SetAppName("rpt")
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("results store %s: %s", name, dsn.Redact(err.Error()))
	}
	return &Store{
		name:   name,
		client: client,
		chunks: client.Database(db).Collection(Collection),
		jobs:   jobs,
	}, nil
}

// Name is the name jobs record: config.ResultStoreName of the URI (scheme, hosts and
// database; no credentials).
func (s *Store) Name() string { return s.name }

// Close disconnects.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.client.Disconnect(ctx)
}

// ResultID is the id of the result of (job, attempt) in the store: the prefix of its
// chunks' _id.
func ResultID(jobID int64, attempt int) string { return notify.ResultID(jobID, attempt) }

func chunkID(jobID int64, attempt, seq int) string {
	return fmt.Sprintf("%s.%d", ResultID(jobID, attempt), seq)
}

// chunkDoc is one chunk as stored.
type chunkDoc struct {
	ID      string    `bson:"_id"`
	Job     int64     `bson:"job"`
	Attempt int       `bson:"attempt"`
	Seq     int       `bson:"seq"`
	Data    []byte    `bson:"data"`
	Created time.Time `bson:"created"`
}

// ensureIndex creates the unique index on (job, attempt, seq) once per process, on the
// first write (a reader needs none, and a server that is down at start must not stop
// the agent from starting).
func (s *Store) ensureIndex(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.indexed {
		return nil
	}
	_, err := s.chunks.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "job", Value: 1}, {Key: "attempt", Value: 1}, {Key: "seq", Value: 1}},
		Options: options.Index().SetUnique(true).SetName("job_attempt_seq"),
	})
	if err != nil {
		return s.fault(ctx, "create the chunks index", err)
	}
	s.indexed = true
	return nil
}

// ChunkPut stores chunk seq of the lease's attempt, replacing one of the same key. It
// does not check the lease: a stale attempt's chunks stay under its own attempt, which
// the fenced completion never names.
func (s *Store) ChunkPut(ctx context.Context, l queue.Lease, seq int, data []byte) error {
	if err := s.ensureIndex(ctx); err != nil {
		return err
	}
	id := chunkID(l.JobID, l.Attempt, seq)
	doc := chunkDoc{ID: id, Job: l.JobID, Attempt: l.Attempt, Seq: seq, Data: data, Created: time.Now().UTC()}
	if doc.Data == nil {
		doc.Data = []byte{}
	}
	_, err := s.chunks.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, doc, options.Replace().SetUpsert(true))
	if err != nil {
		return s.fault(ctx, "put chunk "+id, err)
	}
	return nil
}

// ChunkGet returns chunk seq of (job, attempt), or an error wrapping queue.ErrNotFound.
func (s *Store) ChunkGet(ctx context.Context, jobID int64, attempt int, seq int) ([]byte, error) {
	id := chunkID(jobID, attempt, seq)
	var doc struct {
		Data []byte `bson:"data"`
	}
	err := s.chunks.FindOne(ctx, bson.D{{Key: "_id", Value: id}}, options.FindOne().SetProjection(bson.D{{Key: "data", Value: 1}})).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, fmt.Errorf("chunk %s: %w", id, queue.ErrNotFound)
	}
	if err != nil {
		return nil, s.fault(ctx, "get chunk "+id, err)
	}
	if doc.Data == nil {
		doc.Data = []byte{}
	}
	return doc.Data, nil
}

// Discard deletes the chunks of (job, attempt) unless that attempt is the result its job
// succeeded with here. It asks the queue first, and deletes nothing when the queue
// cannot say.
func (s *Store) Discard(ctx context.Context, jobID int64, attempt int) (int, error) {
	j, err := s.jobs.JobGet(ctx, jobID)
	switch {
	case errors.Is(err, queue.ErrNotFound):
	case err != nil:
		return 0, fmt.Errorf("discard the chunks of job %d attempt %d: %w", jobID, attempt, err)
	case s.isResult(j, attempt):
		return 0, nil
	}
	n, err := s.chunks.DeleteMany(ctx, bson.D{{Key: "job", Value: jobID}, {Key: "attempt", Value: attempt}})
	if err != nil {
		return 0, s.fault(ctx, fmt.Sprintf("discard the chunks of job %d attempt %d", jobID, attempt), err)
	}
	return int(n.DeletedCount), nil
}

// isResult reports whether attempt of j is the result it succeeded with in this store.
func (s *Store) isResult(j *queue.Job, attempt int) bool {
	return j.Status == queue.StatusSucceeded && j.ResultAttempt == attempt && results.StoreOf(j) == s.name
}

// Prune deletes the results of jobs that finished before the cut-off, and the chunks of
// jobs the queue no longer has; it returns how many jobs' results it deleted. Only jobs
// with a chunk written before the cut-off are looked at (a job that finished before it
// wrote its chunks before it). Of each, chunk 0 goes first, so that a reader meeting a
// missing chunk knows the result was pruned. Along the way it deletes what can never be
// read: chunks of a finished job's other attempts, of a running job's earlier attempts.
// MongoDB's TTL indexes are not used: whether a result may go is the queue's word (when
// its job finished), not the chunk's age.
func (s *Store) Prune(ctx context.Context, before time.Time) (int, error) {
	if before.IsZero() {
		return 0, nil
	}
	ids, err := s.candidates(ctx, before)
	if err != nil {
		return 0, s.fault(ctx, "prune: list jobs", err)
	}
	pruned := 0
	for _, id := range ids {
		j, err := s.jobs.JobGet(ctx, id)
		var filter bson.D
		whole := false
		switch {
		case errors.Is(err, queue.ErrNotFound):
			whole = true // the queue pruned the job: nobody can name this result
		case err != nil:
			return pruned, fmt.Errorf("prune: job %d: %w", id, err)
		case j.Status.Terminal() && j.FinishedAt != nil && j.FinishedAt.Before(before):
			whole = true
		case j.Status.Terminal() && s.isResult(j, j.ResultAttempt) && j.ResultAttempt > 0:
			filter = bson.D{{Key: "job", Value: id}, {Key: "attempt", Value: bson.D{{Key: "$ne", Value: j.ResultAttempt}}}}
		case j.Status.Terminal():
			filter = bson.D{{Key: "job", Value: id}}
		default: // queued or running: only earlier attempts can go
			filter = bson.D{{Key: "job", Value: id}, {Key: "attempt", Value: bson.D{{Key: "$lt", Value: j.Attempt}}}}
		}
		if whole {
			n, err := s.deleteResult(ctx, id)
			if err != nil {
				return pruned, err
			}
			if n > 0 {
				pruned++
			}
			continue
		}
		if _, err := s.chunks.DeleteMany(ctx, filter); err != nil {
			return pruned, s.fault(ctx, fmt.Sprintf("prune: job %d", id), err)
		}
	}
	return pruned, nil
}

// candidates are the jobs with a chunk written before the cut-off, in order. A find of
// the job field, not distinct: FerretDB answers a distinct sent with maxTimeMS (which
// the driver adds when ctx has a deadline, as the agent's calls do) with a reply the
// driver cannot decode.
func (s *Store) candidates(ctx context.Context, before time.Time) ([]int64, error) {
	cur, err := s.chunks.Find(ctx, bson.D{{Key: "created", Value: bson.D{{Key: "$lt", Value: before.UTC()}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 0}, {Key: "job", Value: 1}}))
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	seen := map[int64]bool{}
	var ids []int64
	for cur.Next(ctx) {
		var doc struct {
			Job int64 `bson:"job"`
		}
		if err := cur.Decode(&doc); err != nil {
			return nil, err
		}
		if !seen[doc.Job] {
			seen[doc.Job] = true
			ids = append(ids, doc.Job)
		}
	}
	if err := cur.Err(); err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}

// deleteResult deletes every chunk of a job, chunk 0 of each attempt first.
func (s *Store) deleteResult(ctx context.Context, id int64) (int64, error) {
	first, err := s.chunks.DeleteMany(ctx, bson.D{{Key: "job", Value: id}, {Key: "seq", Value: 0}})
	if err != nil {
		return 0, s.fault(ctx, fmt.Sprintf("prune: job %d", id), err)
	}
	rest, err := s.chunks.DeleteMany(ctx, bson.D{{Key: "job", Value: id}})
	if err != nil {
		return first.DeletedCount, s.fault(ctx, fmt.Sprintf("prune: job %d", id), err)
	}
	return first.DeletedCount + rest.DeletedCount, nil
}

// fault classes a driver error. A cancelled call keeps its context's error; a server
// that does not answer (network error, no server selected in time) is
// results.ErrStoreDown, so the agent releases the job as in a queue outage; anything
// else the server answered with (a full disk, a refused write) is
// results.ErrUnavailable. Messages pass through dsn.Redact: the driver may quote the URI.
func (s *Store) fault(ctx context.Context, op string, err error) error {
	msg := dsn.Redact(err.Error())
	if ctx.Err() != nil {
		return fmt.Errorf("results store %s: %s: %s: %w", s.name, op, msg, context.Cause(ctx))
	}
	if down(err) {
		return fmt.Errorf("%w: %s: %s: %s", results.ErrStoreDown, s.name, op, msg)
	}
	return fmt.Errorf("%w: %s: %s: %s", results.ErrUnavailable, s.name, op, msg)
}

// down reports whether err says the server could not be reached or did not answer.
func down(err error) bool {
	var sse topology.ServerSelectionError
	return mongo.IsNetworkError(err) || mongo.IsTimeout(err) || errors.As(err, &sse) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, mongo.ErrClientDisconnected)
}
