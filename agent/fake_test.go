package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/source"
)

// memStore is an in-memory Store with the fencing rules of the real ones, plus switches
// that make it fail the way a database does.
type memStore struct {
	down atomic.Bool // every call returns queue.ErrUnavailable
	// loseClaimAnswer makes JobClaim commit its claim and then fail as if the answer
	// was lost on the way.
	loseClaimAnswer atomic.Bool
	// rescues is what the next JobRescue reports (expired leases another agent left).
	rescues atomic.Int64
	// claimCalls and rescueCalls count every call, answered or not.
	claimCalls, rescueCalls atomic.Int64

	mu     sync.Mutex
	nextID int64
	jobs   map[int64]*memJob
	order  []int64
	calls  []string // outcome calls that succeeded: "complete 1", "release 1", ...
	agents []queue.Agent
	// drainRequested is the DrainRequested of every agent row (rpt agents drain).
	drainRequested map[string]bool
	prunes         []queue.PruneParams
	// published holds the definitions published to this queue, by sha256.
	published   map[string][]byte
	rescueTimes []time.Time // when JobRescue was called
}

// firstRescueAfter is the time of the first JobRescue call after t, or zero.
func (s *memStore) firstRescueAfter(t time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.rescueTimes {
		if c.After(t) {
			return c
		}
	}
	return time.Time{}
}

type memJob struct {
	job    queue.Job
	cancel bool
	chunks map[[2]int][]byte // (attempt, seq)
}

func newMemStore() *memStore {
	return &memStore{jobs: map[int64]*memJob{}, drainRequested: map[string]bool{}, published: map[string][]byte{}}
}

func (s *memStore) check() error {
	if s.down.Load() {
		return fmt.Errorf("dial queue: connection refused: %w", queue.ErrUnavailable)
	}
	return nil
}

// enqueue adds a queued job running the definition yaml with params, published as an
// admin would (the lifecycle tests are not about trust; trust_test.go is).
func (s *memStore) enqueue(report string, def string, params string) int64 {
	s.publish(def)
	return s.enqueueUnpublished(report, def, params)
}

// publish records def as published (rpt reports publish).
func (s *memStore) publish(def string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published[queue.DefinitionSHA256([]byte(def))] = []byte(def)
}

// enqueueUnpublished adds a queued job whose definition nobody published: what anyone
// who reaches the queue can do.
func (s *memStore) enqueueUnpublished(report string, def string, params string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := s.nextID
	s.jobs[id] = &memJob{
		job: queue.Job{
			ID: id, Kind: queue.KindReport, Report: report, Definition: []byte(def),
			Params: json.RawMessage(params), Source: "demo", Status: queue.StatusQueued,
			MaxAttempts: 3,
		},
		chunks: map[[2]int][]byte{},
	}
	s.order = append(s.order, id)
	return id
}

func (s *memStore) setTimeout(id int64, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[id].job.Timeout = d
}

func (s *memStore) get(id int64) queue.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs[id].job
}

func (s *memStore) requestCancel(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[id].cancel = true
}

// steal takes the job away as a rescue by another agent would: a new token.
func (s *memStore) steal(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[id]
	j.job.LeaseToken = queue.NewLeaseToken()
	j.job.Attempt++
}

func (s *memStore) callLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// fenced returns the job if l still holds it.
func (s *memStore) fenced(l queue.Lease) (*memJob, error) {
	j := s.jobs[l.JobID]
	if j == nil || j.job.Status != queue.StatusRunning || j.job.LeaseToken != l.Token {
		return nil, queue.ErrLeaseLost
	}
	return j, nil
}

func (s *memStore) JobClaim(ctx context.Context, p queue.JobClaimParams) ([]*queue.Job, error) {
	s.claimCalls.Add(1)
	if err := s.check(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*queue.Job
	for _, id := range s.order {
		if len(out) >= p.Limit {
			break
		}
		j := s.jobs[id]
		if j.job.Status != queue.StatusQueued || j.job.RunAfter.After(time.Now()) {
			continue
		}
		if len(p.Sources) > 0 && !slices.Contains(p.Sources, j.job.Source) {
			continue
		}
		j.job.Status = queue.StatusRunning
		j.job.Attempt++
		j.job.LeaseToken = p.Token(len(out))
		j.job.LeaseOwner = p.Agent
		c := j.job
		out = append(out, &c)
	}
	if s.loseClaimAnswer.Load() {
		return nil, fmt.Errorf("claim: connection reset after commit: %w", queue.ErrUnavailable)
	}
	return out, nil
}

func (s *memStore) JobHeartbeat(ctx context.Context, l queue.Lease, rows int64, _ time.Duration) (queue.Heartbeat, error) {
	if err := s.check(); err != nil {
		return queue.Heartbeat{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, err := s.fenced(l)
	if err != nil {
		return queue.Heartbeat{}, err
	}
	j.job.Rows = rows
	return queue.Heartbeat{CancelRequested: j.cancel}, nil
}

func (s *memStore) end(l queue.Lease, call string, f func(j *memJob)) error {
	if err := s.check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, err := s.fenced(l)
	if err != nil {
		return err
	}
	f(j)
	j.job.LeaseToken = ""
	s.calls = append(s.calls, fmt.Sprintf("%s %d", call, l.JobID))
	return nil
}

func (s *memStore) JobComplete(ctx context.Context, l queue.Lease, c queue.Completion) error {
	return s.end(l, "complete", func(j *memJob) {
		j.job.Status = queue.StatusSucceeded
		j.job.Rows = c.Rows
		j.job.ResultAttempt = l.Attempt
		j.job.ResultStore = c.ResultStore
		j.job.ResultChunks = c.ResultChunks
	})
}

func (s *memStore) JobFail(ctx context.Context, l queue.Lease, p queue.JobFailParams) (queue.Status, error) {
	var st queue.Status
	err := s.end(l, "fail", func(j *memJob) {
		j.job.Failures++
		j.job.Error = p.Error
		if p.Retryable && j.job.Failures < j.job.MaxAttempts {
			j.job.Status = queue.StatusQueued
			// Not claimable again in these tests: a retry would need backoff.
			j.job.RunAfter = time.Now().Add(time.Hour)
		} else {
			j.job.Status = queue.StatusFailed
		}
		st = j.job.Status
	})
	return st, err
}

func (s *memStore) JobCancelled(ctx context.Context, l queue.Lease) error {
	return s.end(l, "cancelled", func(j *memJob) { j.job.Status = queue.StatusCancelled })
}

func (s *memStore) JobRelease(ctx context.Context, l queue.Lease) error {
	return s.end(l, "release", func(j *memJob) {
		j.job.Status = queue.StatusQueued
		// Keep released jobs out of the agent's way: tests check them after shutdown.
		j.job.RunAfter = time.Now().Add(time.Hour)
	})
}

func (s *memStore) JobReleaseTokens(ctx context.Context, tokens []string) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, j := range s.jobs {
		if j.job.Status == queue.StatusRunning && slices.Contains(tokens, j.job.LeaseToken) {
			j.job.Status, j.job.LeaseToken = queue.StatusQueued, ""
			s.calls = append(s.calls, fmt.Sprintf("release-token %d", j.job.ID))
			n++
		}
	}
	return n, nil
}

func (s *memStore) JobRescue(ctx context.Context) (int, error) {
	s.rescueCalls.Add(1)
	s.mu.Lock()
	s.rescueTimes = append(s.rescueTimes, time.Now())
	s.mu.Unlock()
	if err := s.check(); err != nil {
		return 0, err
	}
	return int(s.rescues.Swap(0)), nil
}

func (s *memStore) AgentHeartbeat(ctx context.Context, a queue.Agent) error {
	if err := s.check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agents = append(s.agents, a)
	return nil
}

func (s *memStore) AgentUndrain(ctx context.Context, name string) error {
	if err := s.check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.drainRequested, name)
	return nil
}

// requestDrain is rpt agents drain.
func (s *memStore) requestDrain(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drainRequested[name] = true
}

func (s *memStore) pruneLog() []queue.PruneParams {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.prunes)
}

// lastBeat is the agent's latest presence row.
func (s *memStore) lastBeat() (queue.Agent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.agents) == 0 {
		return queue.Agent{}, false
	}
	return s.agents[len(s.agents)-1], true
}

func (s *memStore) DefinitionGet(ctx context.Context, sum string) (queue.PublishedDefinition, error) {
	if err := s.check(); err != nil {
		return queue.PublishedDefinition{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	def, ok := s.published[sum]
	if !ok {
		return queue.PublishedDefinition{}, fmt.Errorf("get published definition %s: %w", sum, queue.ErrNotFound)
	}
	return queue.PublishedDefinition{SHA256: sum, Definition: def}, nil
}

func (s *memStore) AgentGet(ctx context.Context, name string) (queue.Agent, error) {
	if err := s.check(); err != nil {
		return queue.Agent{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.agents) - 1; i >= 0; i-- {
		if s.agents[i].Name == name {
			a := s.agents[i]
			a.DrainRequested = s.drainRequested[name]
			return a, nil
		}
	}
	return queue.Agent{}, fmt.Errorf("get agent %s: %w", name, queue.ErrNotFound)
}

func (s *memStore) QueueStats(ctx context.Context) (queue.QueueStats, error) {
	if err := s.check(); err != nil {
		return queue.QueueStats{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := queue.QueueStats{SlotsInUse: map[string]int{}}
	now := time.Now()
	for _, j := range s.jobs {
		switch {
		case j.job.Status == queue.StatusRunning:
			st.Running++
			st.SlotsInUse["report:"+j.job.Report]++
		case j.job.Status == queue.StatusQueued && j.job.RunAfter.After(now):
			st.Scheduled++
		case j.job.Status == queue.StatusQueued:
			st.Queued++
			st.Waiting = addWaiting(st.Waiting, j.job, now)
		}
	}
	return st, nil
}

// addWaiting counts a due queued job into its report and source's entry, kept in order.
func addWaiting(ws []queue.QueueWaiting, j queue.Job, now time.Time) []queue.QueueWaiting {
	var age time.Duration
	if !j.CreatedAt.IsZero() {
		age = now.Sub(j.CreatedAt)
	}
	for i := range ws {
		if ws[i].Report == j.Report && ws[i].Source == j.Source {
			ws[i].Queued++
			ws[i].OldestQueuedAge = max(ws[i].OldestQueuedAge, age)
			return ws
		}
	}
	ws = append(ws, queue.QueueWaiting{Report: j.Report, Source: j.Source, Queued: 1, OldestQueuedAge: age})
	slices.SortFunc(ws, func(a, b queue.QueueWaiting) int {
		return cmp.Or(cmp.Compare(a.Report, b.Report), cmp.Compare(a.Source, b.Source))
	})
	return ws
}

func (s *memStore) Prune(ctx context.Context, p queue.PruneParams) (queue.PruneResult, error) {
	if err := s.check(); err != nil {
		return queue.PruneResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prunes = append(s.prunes, p)
	return queue.PruneResult{}, nil
}

func (s *memStore) ResultChunkPut(ctx context.Context, l queue.Lease, seq int, data []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, err := s.fenced(l)
	if err != nil {
		return err
	}
	j.chunks[[2]int{l.Attempt, seq}] = slices.Clone(data)
	return nil
}

func (s *memStore) ResultChunkGet(ctx context.Context, jobID int64, attempt int, seq int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[jobID]
	if j == nil {
		return nil, queue.ErrNotFound
	}
	b, ok := j.chunks[[2]int{attempt, seq}]
	if !ok {
		return nil, queue.ErrNotFound
	}
	return b, nil
}

func (s *memStore) ResultChunkDelete(ctx context.Context, jobID int64, attempt int) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[jobID]
	if j == nil || (j.job.Status == queue.StatusSucceeded && j.job.ResultAttempt == attempt) {
		return 0, nil
	}
	n := 0
	for k := range j.chunks {
		if k[0] == attempt {
			delete(j.chunks, k)
			n++
		}
	}
	return n, nil
}

// fakeSource answers every query with rows from its rows func. It counts queries
// running at once.
type fakeSource struct {
	rows func(ctx context.Context, sql string, params map[string]any) (source.Rows, error)

	running atomic.Int64
	maxRun  atomic.Int64
	queries atomic.Int64
}

func (f *fakeSource) opener() SourceOpener {
	return func(ctx context.Context, name string) (source.Source, error) {
		return &fakeConn{f: f, name: name}, nil
	}
}

type fakeConn struct {
	f    *fakeSource
	name string
}

func (c *fakeConn) Name() string   { return c.name }
func (c *fakeConn) Driver() string { return "sqlite" }
func (c *fakeConn) Close() error   { return nil }
func (c *fakeConn) Query(ctx context.Context, sql string, params map[string]any) (source.Rows, error) {
	c.f.queries.Add(1)
	n := c.f.running.Add(1)
	for {
		m := c.f.maxRun.Load()
		if n <= m || c.f.maxRun.CompareAndSwap(m, n) {
			break
		}
	}
	rows, err := c.f.rows(ctx, sql, params)
	if err != nil {
		c.f.running.Add(-1)
		return nil, err
	}
	return &countedRows{Rows: rows, done: func() { c.f.running.Add(-1) }}, nil
}

type countedRows struct {
	source.Rows
	once sync.Once
	done func()
}

func (r *countedRows) Close() error {
	r.once.Do(r.done)
	return r.Rows.Close()
}

// genRows yields n rows (n < 0: endless) of (n int, label string); each Next first
// waits for gate (when not nil) or ctx, so a test decides when rows flow.
type genRows struct {
	ctx  context.Context
	n    int
	i    int
	gate <-chan struct{}
	vals []any
	err  error
}

func (g *genRows) Columns() []source.Column {
	return []source.Column{{Name: "n", Type: source.TypeInt}, {Name: "label", Type: source.TypeString}}
}

func (g *genRows) Next() bool {
	if g.err != nil || (g.n >= 0 && g.i >= g.n) {
		return false
	}
	if g.gate != nil {
		select {
		case <-g.gate:
		case <-g.ctx.Done():
		}
	}
	if err := g.ctx.Err(); err != nil {
		g.err = fmt.Errorf("query interrupted: %w", err)
		return false
	}
	g.i++
	g.vals = []any{int64(g.i), fmt.Sprintf("row %d", g.i)}
	return true
}

func (g *genRows) Values() []any { return g.vals }
func (g *genRows) Err() error    { return g.err }
func (g *genRows) Close() error  { return nil }

// slowGate lets one row through every d until ctx ends.
func slowGate(ctx context.Context, d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				select {
				case ch <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch
}

// waitFor polls cond until it holds; the bound only keeps a broken test from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var errBoom = errors.New("boom")
