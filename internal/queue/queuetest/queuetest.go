// Package queuetest is the conformance suite of queue.Store: the rules of ARCHITECTURE.md's
// "Queue semantics" written against the interface alone, so the SQLite and the
// MySQL/MariaDB stores are held to the same behaviour. A store's test calls Run.
package queuetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"rpt/internal/queue"
)

// Run runs the suite. newStore must return an empty, migrated store on a database of
// its own (subtests run in parallel), closed by the caller's t.Cleanup. Its Options
// must make retries quick: RetryBase <= 10ms and RetryMax <= 100ms (e.g. RetryBase 1ms,
// RetryMax 20ms), since the suite waits for retried jobs to become claimable.
func Run(t *testing.T, newStore func(t *testing.T) queue.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s queue.Store)
	}{
		{"EnqueueGetRoundTrip", testEnqueueGetRoundTrip},
		{"EnqueueDefaults", testEnqueueDefaults},
		{"EnqueueInvalidWritesNothing", testEnqueueInvalid},
		{"EnqueuePriorityBounds", testEnqueuePriorityBounds},
		{"ClaimOrder", testClaimOrder},
		{"ClaimLimit", testClaimLimit},
		{"ConcurrentClaimersClaimEachJobOnce", testConcurrentClaimers},
		{"ExpiredLeaseRescued", testExpiredLeaseRescued},
		{"RescueLeavesLiveLeases", testRescueLeavesLiveLeases},
		{"StaleTokenFencedOut", testStaleToken},
		{"HeartbeatProgress", testHeartbeatProgress},
		{"ConcurrencyOneNeverTwoRunning", testConcurrencyOne},
		{"SaturatedScopeDoesNotBlockOthers", testSaturatedScopeSkipped},
		{"GroupScopeShared", testGroupScope},
		{"ReleaseFreesSlot", testReleaseFreesSlot},
		{"DedupeKey", testDedupeKey},
		{"OnceKey", testOnceKey},
		{"SubmitToken", testSubmitToken},
		{"RetriesThenFailed", testRetriesThenFailed},
		{"NonRetryableFailsAtOnce", testNonRetryable},
		{"ReleaseCountsNoFailure", testRelease},
		{"WaitDelaysAndCountsNoFailure", testWait},
		{"ReleaseClaimByTokens", testReleaseTokens},
		{"CancelQueued", testCancelQueued},
		{"CancelRunning", testCancelRunning},
		{"CancelFinishedUnchanged", testCancelFinished},
		{"RescueCancelRequestedEndsCancelled", testRescueCancelRequested},
		{"Events", testEvents},
		{"RouteAndSources", testRouteAndSources},
		{"ResultChunks", testResultChunks},
		{"CompletionRecordsResult", testCompletionRecordsResult},
		{"CompletionRecordsRead", testCompletionRecordsRead},
		{"Agents", testAgents},
		{"JobList", testJobList},
		{"MigrateTwice", testMigrateTwice},
	}
	for _, tc := range append(append(append(append(append(append(tests, operationsTests...), settingsTests...), definitionsTests...), tokensTests...), batchTests...), depsTests...) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

const (
	agentName = "agent-1"
	longLease = time.Minute
)

// job returns enqueue params for a plain report job.
func job(report string) queue.JobEnqueueParams {
	def := []byte("name: " + report + "\nsql: SELECT 1\n")
	return queue.JobEnqueueParams{
		Kind:             queue.KindReport,
		Report:           report,
		Definition:       def,
		DefinitionSHA256: fmt.Sprintf("sha-%s", report),
		Params:           json.RawMessage(`{"pcn":123681}`),
		Source:           "warehouse",
		MaxAttempts:      3,
		Origin:           queue.OriginCLI,
	}
}

func enqueue(t *testing.T, s queue.Store, p queue.JobEnqueueParams) *queue.Job {
	t.Helper()
	res, err := s.JobEnqueue(t.Context(), p)
	if err != nil {
		t.Fatalf("enqueue %s: %v", p.Report, err)
	}
	if res.Existing {
		t.Fatalf("enqueue %s: Existing = true for a new job", p.Report)
	}
	return res.Job
}

func claimParams(limit int) queue.JobClaimParams {
	return queue.JobClaimParams{Agent: agentName, Limit: limit, LeaseDuration: longLease}
}

func claim(t *testing.T, s queue.Store, p queue.JobClaimParams) []*queue.Job {
	t.Helper()
	jobs, err := s.JobClaim(t.Context(), p)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return jobs
}

func claimOne(t *testing.T, s queue.Store) *queue.Job {
	t.Helper()
	jobs := claim(t, s, claimParams(1))
	if len(jobs) != 1 {
		t.Fatalf("claim: got %d jobs, want 1", len(jobs))
	}
	return jobs[0]
}

// claimEventually claims one job, waiting out a retry backoff (RetryMax is small).
func claimEventually(t *testing.T, s queue.Store, p queue.JobClaimParams) *queue.Job {
	t.Helper()
	p.Limit = 1
	deadline := time.Now().Add(10 * time.Second)
	for {
		if jobs := claim(t, s, p); len(jobs) == 1 {
			return jobs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no job became claimable within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func get(t *testing.T, s queue.Store, id int64) *queue.Job {
	t.Helper()
	j, err := s.JobGet(t.Context(), id)
	if err != nil {
		t.Fatalf("get job %d: %v", id, err)
	}
	return j
}

func ids(jobs []*queue.Job) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func complete(t *testing.T, s queue.Store, j *queue.Job) {
	t.Helper()
	if err := s.JobComplete(t.Context(), j.Lease(), queue.Completion{Rows: 0}); err != nil {
		t.Fatalf("complete job %d: %v", j.ID, err)
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func events(t *testing.T, s queue.Store, jobID int64) []queue.Event {
	t.Helper()
	ev, err := s.EventList(t.Context(), jobID, 0, 10000)
	if err != nil {
		t.Fatalf("events of job %d: %v", jobID, err)
	}
	return ev
}

func eventNames(ev []queue.Event) []string {
	out := make([]string, len(ev))
	for i, e := range ev {
		out[i] = e.Event
	}
	return out
}

func wantStatus(t *testing.T, s queue.Store, id int64, want queue.Status) *queue.Job {
	t.Helper()
	j := get(t, s, id)
	if j.Status != want {
		t.Fatalf("job %d status = %s, want %s", id, j.Status, want)
	}
	return j
}

func testEnqueueGetRoundTrip(t *testing.T, s queue.Store) {
	runAfter := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	p := queue.JobEnqueueParams{
		Kind:             queue.KindETL,
		Report:           "trial-balance",
		Definition:       []byte("name: trial-balance\nsql: SELECT 1\n"),
		DefinitionSHA256: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
		Params:           json.RawMessage(`{"end_period":202604,"pcn":123681,"tags":["a","b"],"x":null}`),
		Source:           "plex",
		Route:            map[string]string{"plant": "albion", "zone": "b"},
		Scopes:           []queue.Scope{{Name: "report:trial-balance", Limit: 1}, {Name: "source:plex", Limit: 2}},
		Priority:         7,
		MaxAttempts:      5,
		RunAfter:         &runAfter,
		Timeout:          90 * time.Minute,
		DedupeKey:        "dedupe-1",
		OnceKey:          "once-1",
		SubmitToken:      "token-1",
		RetryOf:          0,
		SubmittedBy:      "alice@host",
		Origin:           queue.OriginAPI,
	}
	before := time.Now().Add(-10 * time.Minute)
	res, err := s.JobEnqueue(t.Context(), p)
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	if res.Existing || res.Job == nil || res.Job.ID == 0 {
		t.Fatalf("enqueue: got %+v, want a new job with an id", res)
	}
	// A second job retrying the first, to round-trip retry_of.
	p2 := job("other")
	p2.RetryOf = res.Job.ID
	j2 := enqueue(t, s, p2)
	if got := get(t, s, j2.ID).RetryOf; got != res.Job.ID {
		t.Errorf("RetryOf = %d, want %d", got, res.Job.ID)
	}

	for _, src := range []struct {
		name string
		j    *queue.Job
	}{{"enqueue result", res.Job}, {"JobGet", get(t, s, res.Job.ID)}} {
		j := src.j
		check := func(field string, got, want any) {
			t.Helper()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s = %#v, want %#v", src.name, field, got, want)
			}
		}
		check("ID", j.ID, res.Job.ID)
		check("Kind", j.Kind, p.Kind)
		check("Report", j.Report, p.Report)
		check("Definition", string(j.Definition), string(p.Definition))
		check("DefinitionSHA256", j.DefinitionSHA256, p.DefinitionSHA256)
		if !jsonEqual(j.Params, p.Params) {
			t.Errorf("%s: Params = %s, want %s", src.name, j.Params, p.Params)
		}
		check("Source", j.Source, p.Source)
		check("Route", j.Route, p.Route)
		got := slices.Clone(j.Scopes)
		sort.Slice(got, func(a, b int) bool { return got[a].Name < got[b].Name })
		check("Scopes", got, p.Scopes)
		check("Priority", j.Priority, p.Priority)
		check("Status", j.Status, queue.StatusQueued)
		check("Attempt", j.Attempt, 0)
		check("Failures", j.Failures, 0)
		check("MaxAttempts", j.MaxAttempts, p.MaxAttempts)
		if !j.RunAfter.Equal(runAfter) {
			t.Errorf("%s: RunAfter = %s, want %s", src.name, j.RunAfter, runAfter)
		}
		check("RunAfter location", j.RunAfter.Location(), time.UTC)
		check("LeaseToken", j.LeaseToken, "")
		check("LeaseOwner", j.LeaseOwner, "")
		check("LeaseExpires", j.LeaseExpires, (*time.Time)(nil))
		check("CancelRequestedAt", j.CancelRequestedAt, (*time.Time)(nil))
		check("DedupeKey", j.DedupeKey, p.DedupeKey)
		check("OnceKey", j.OnceKey, p.OnceKey)
		check("SubmitToken", j.SubmitToken, p.SubmitToken)
		check("ResultAttempt", j.ResultAttempt, 0)
		check("Rows", j.Rows, int64(0))
		check("Error", j.Error, "")
		check("RetryOf", j.RetryOf, int64(0))
		check("SubmittedBy", j.SubmittedBy, p.SubmittedBy)
		check("Origin", j.Origin, p.Origin)
		check("Timeout", j.Timeout, p.Timeout)
		if j.CreatedAt.Before(before) || j.CreatedAt.After(time.Now().Add(10*time.Minute)) {
			t.Errorf("%s: CreatedAt = %s, want about now", src.name, j.CreatedAt)
		}
		check("CreatedAt location", j.CreatedAt.Location(), time.UTC)
		check("StartedAt", j.StartedAt, (*time.Time)(nil))
		check("FinishedAt", j.FinishedAt, (*time.Time)(nil))
	}

	// After a run: attempt, lease, times, result attempt and rows.
	cp := claimParams(1)
	cp.Labels = p.Route
	claimed := claim(t, s, cp)
	if len(claimed) != 1 || claimed[0].ID != res.Job.ID {
		t.Fatalf("claimed %v, want job %d", ids(claimed), res.Job.ID)
	}
	c := claimed[0]
	if c.Status != queue.StatusRunning || c.Attempt != 1 || c.LeaseOwner != agentName || len(c.LeaseToken) < 16 ||
		c.LeaseExpires == nil || c.StartedAt == nil || !bytes.Equal(c.Definition, p.Definition) {
		t.Fatalf("claimed job = %+v, want running attempt 1 with a lease of %s and the definition", c, agentName)
	}
	if err := s.JobComplete(t.Context(), c.Lease(), queue.Completion{Rows: 42}); err != nil {
		t.Fatalf("complete: %v", err)
	}
	j := wantStatus(t, s, c.ID, queue.StatusSucceeded)
	if j.Rows != 42 || j.ResultAttempt != 1 || j.Attempt != 1 || j.FinishedAt == nil || j.StartedAt == nil ||
		j.LeaseOwner != agentName || j.FinishedAt.Before(*j.StartedAt) || j.StartedAt.Before(j.CreatedAt) {
		t.Errorf("finished job = %+v, want rows 42, result attempt 1, started <= finished, agent %s", j, agentName)
	}
}

func testEnqueueDefaults(t *testing.T, s queue.Store) {
	p := job("r")
	p.MaxAttempts = 0
	p.RunAfter = nil
	j := enqueue(t, s, p)
	if j.MaxAttempts != queue.DefaultMaxAttempts {
		t.Errorf("MaxAttempts = %d, want the default %d", j.MaxAttempts, queue.DefaultMaxAttempts)
	}
	if j.RunAfter.IsZero() || j.RunAfter.After(time.Now().Add(10*time.Minute)) {
		t.Errorf("RunAfter = %s, want about now", j.RunAfter)
	}
	if j.Route != nil && len(j.Route) != 0 || len(j.Scopes) != 0 {
		t.Errorf("Route, Scopes = %v, %v, want empty", j.Route, j.Scopes)
	}
	if got := claimOne(t, s); got.ID != j.ID {
		t.Errorf("a job with no run_after is claimable at once: claimed %d, want %d", got.ID, j.ID)
	}
}

// testEnqueueInvalid: a malformed enqueue is refused with ErrInvalid naming the field,
// and nothing is queued.
func testEnqueueInvalid(t *testing.T, s queue.Store) {
	ctx := context.Background()
	for _, tc := range []struct {
		field string
		edit  func(p *queue.JobEnqueueParams)
	}{
		{"kind", func(p *queue.JobEnqueueParams) { p.Kind = "bogus" }},
		{"report", func(p *queue.JobEnqueueParams) { p.Report = "" }},
		{"params", func(p *queue.JobEnqueueParams) { p.Params = json.RawMessage("{not json") }},
		{"priority", func(p *queue.JobEnqueueParams) { p.Priority = queue.MaxPriority + 1 }},
		{"priority", func(p *queue.JobEnqueueParams) { p.Priority = -queue.MaxPriority - 1 }},
		{"timeout", func(p *queue.JobEnqueueParams) { p.Timeout = -time.Second }},
		{"scopes[0]", func(p *queue.JobEnqueueParams) { p.Scopes = []queue.Scope{{Name: "", Limit: 1}} }},
		{"scopes[0]", func(p *queue.JobEnqueueParams) { p.Scopes = []queue.Scope{{Name: "x", Limit: queue.MaxScopeLimit + 1}} }},
	} {
		p := job("invalid")
		tc.edit(&p)
		_, err := s.JobEnqueue(ctx, p)
		if !errors.Is(err, queue.ErrInvalid) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("enqueue with a bad %s: err = %v, want ErrInvalid naming %q", tc.field, err, tc.field)
		}
	}
	jobs, err := s.JobList(ctx, queue.JobListParams{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 0 {
		t.Errorf("%d jobs queued by refused enqueues, want 0", len(jobs))
	}
}

// testEnqueuePriorityBounds: the extreme priorities fit the stored (negated) column and
// keep their claim order.
func testEnqueuePriorityBounds(t *testing.T, s queue.Store) {
	lo := job("low")
	lo.Priority = -queue.MaxPriority
	hi := job("high")
	hi.Priority = queue.MaxPriority
	jl, jh := enqueue(t, s, lo), enqueue(t, s, hi)
	if jl.Priority != -queue.MaxPriority || jh.Priority != queue.MaxPriority {
		t.Fatalf("priorities read back %d, %d, want %d, %d", jl.Priority, jh.Priority, -queue.MaxPriority, queue.MaxPriority)
	}
	if got := claimOne(t, s); got.ID != jh.ID {
		t.Errorf("claimed job %d first, want the highest priority %d", got.ID, jh.ID)
	}
}

func testClaimOrder(t *testing.T, s queue.Store) {
	now := time.Now().UTC()
	at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
	type spec struct {
		name     string
		priority int
		runAfter *time.Time
	}
	specs := []spec{
		{"a", 0, at(-2 * time.Hour)},
		{"b", 5, at(-1 * time.Hour)},
		{"c", 5, at(-2 * time.Hour)},
		{"d", 0, at(-2 * time.Hour)}, // same as a: id decides
		{"future", 10, at(time.Hour)},
		{"f", -1, nil},
		{"g", 5, at(-1 * time.Hour)}, // same as b: id decides
	}
	byName := map[int64]string{}
	for _, sp := range specs {
		p := job(sp.name)
		p.Priority = sp.priority
		p.RunAfter = sp.runAfter
		byName[enqueue(t, s, p).ID] = sp.name
	}
	var got []string
	for {
		jobs := claim(t, s, claimParams(1))
		if len(jobs) == 0 {
			break
		}
		got = append(got, byName[jobs[0].ID])
	}
	want := []string{"c", "b", "g", "a", "d", "f"}
	if !slices.Equal(got, want) {
		t.Errorf("claim order = %v, want %v (future run_after never claimed)", got, want)
	}
}

func testClaimLimit(t *testing.T, s queue.Store) {
	var want []int64
	for i := range 5 {
		p := job("r")
		p.Priority = i
		want = append([]int64{enqueue(t, s, p).ID}, want...)
	}
	got := claim(t, s, claimParams(3))
	if !slices.Equal(ids(got), want[:3]) {
		t.Errorf("claim limit 3 = %v, want %v in claim order", ids(got), want[:3])
	}
	tokens := map[string]bool{}
	for _, j := range got {
		if j.Status != queue.StatusRunning || tokens[j.LeaseToken] {
			t.Errorf("job %d: status %s, token %q: want running with its own token", j.ID, j.Status, j.LeaseToken)
		}
		tokens[j.LeaseToken] = true
	}
	if rest := claim(t, s, claimParams(10)); !slices.Equal(ids(rest), want[3:]) {
		t.Errorf("second claim = %v, want %v", ids(rest), want[3:])
	}
	if none := claim(t, s, claimParams(10)); len(none) != 0 {
		t.Errorf("claim of an empty queue = %v, want none", ids(none))
	}
}

func testConcurrentClaimers(t *testing.T, s queue.Store) {
	const jobs, claimers = 2000, 4
	for range jobs {
		enqueue(t, s, job("bulk"))
	}
	var (
		mu      sync.Mutex
		claimed = map[int64]string{}
		wg      sync.WaitGroup
	)
	for c := range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("claimer-%d", c)
			for {
				got, err := s.JobClaim(context.Background(), queue.JobClaimParams{
					Agent: name, Limit: 1 + c%3, LeaseDuration: longLease,
				})
				if err != nil {
					t.Errorf("%s: claim: %v", name, err)
					return
				}
				if len(got) == 0 {
					return
				}
				for _, j := range got {
					mu.Lock()
					if other, dup := claimed[j.ID]; dup {
						t.Errorf("job %d claimed by %s and %s", j.ID, other, name)
					}
					claimed[j.ID] = name
					mu.Unlock()
					if err := s.JobComplete(context.Background(), j.Lease(), queue.Completion{Rows: 1}); err != nil {
						t.Errorf("%s: complete job %d: %v", name, j.ID, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(claimed) != jobs {
		t.Errorf("%d distinct jobs claimed, want %d", len(claimed), jobs)
	}
	done, err := s.JobList(t.Context(), queue.JobListParams{Status: queue.StatusSucceeded, Limit: 2 * jobs})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(done) != jobs {
		t.Errorf("%d jobs succeeded, want %d", len(done), jobs)
	}
	for _, j := range done {
		if j.Attempt != 1 {
			t.Errorf("job %d attempt = %d, want 1", j.ID, j.Attempt)
		}
	}
}

func testExpiredLeaseRescued(t *testing.T, s queue.Store) {
	j := enqueue(t, s, job("r"))
	p := claimParams(1)
	p.LeaseDuration = 50 * time.Millisecond
	first := claim(t, s, p)
	if len(first) != 1 {
		t.Fatalf("claim: got %d jobs", len(first))
	}
	stale := first[0].Lease()
	time.Sleep(300 * time.Millisecond)
	n, err := s.JobRescue(t.Context())
	if err != nil {
		t.Fatalf("rescue: %v", err)
	}
	if n != 1 {
		t.Errorf("rescue returned %d, want 1", n)
	}
	r := wantStatus(t, s, j.ID, queue.StatusQueued)
	if r.Failures != 1 || r.Attempt != 1 || r.Error == "" {
		t.Errorf("rescued job: failures %d attempt %d error %q, want 1, 1 and a message", r.Failures, r.Attempt, r.Error)
	}
	second := claimEventually(t, s, claimParams(1))
	if second.ID != j.ID || second.Attempt != 2 || second.Failures != 1 || second.LeaseToken == stale.Token {
		t.Fatalf("reclaimed job %d attempt %d failures %d, want job %d attempt 2 failures 1 with a new token",
			second.ID, second.Attempt, second.Failures, j.ID)
	}
	// The first agent's lease is gone whatever it tries.
	if err := s.JobComplete(t.Context(), stale, queue.Completion{Rows: 1}); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("complete with the stale lease: %v, want ErrLeaseLost", err)
	}
	if _, err := s.JobHeartbeat(t.Context(), stale, 1, longLease); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("heartbeat with the stale lease: %v, want ErrLeaseLost", err)
	}
	if err := s.ResultChunkPut(t.Context(), stale, 0, []byte("x")); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("chunk put with the stale lease: %v, want ErrLeaseLost", err)
	}
	if err := s.JobComplete(t.Context(), second.Lease(), queue.Completion{Rows: 3}); err != nil {
		t.Fatalf("complete with the new lease: %v", err)
	}
	if got := wantStatus(t, s, j.ID, queue.StatusSucceeded); got.ResultAttempt != 2 {
		t.Errorf("ResultAttempt = %d, want 2", got.ResultAttempt)
	}
	names := eventNames(events(t, s, j.ID))
	want := []string{queue.EventQueued, queue.EventRunning, queue.EventRetryScheduled, queue.EventRunning, queue.EventSucceeded}
	if !slices.Equal(names, want) {
		t.Errorf("events = %v, want %v", names, want)
	}
}

func testRescueLeavesLiveLeases(t *testing.T, s queue.Store) {
	j := enqueue(t, s, job("r"))
	c := claimOne(t, s)
	n, err := s.JobRescue(t.Context())
	if err != nil {
		t.Fatalf("rescue: %v", err)
	}
	if n != 0 {
		t.Errorf("rescue returned %d with no expired lease, want 0", n)
	}
	if got := wantStatus(t, s, j.ID, queue.StatusRunning); got.LeaseToken != c.LeaseToken {
		t.Errorf("lease token changed by rescue")
	}
}

func testStaleToken(t *testing.T, s queue.Store) {
	enqueue(t, s, job("r"))
	c := claimOne(t, s)
	bad := queue.Lease{JobID: c.ID, Token: queue.NewLeaseToken(), Attempt: c.Attempt}
	missing := queue.Lease{JobID: c.ID + 1000, Token: c.LeaseToken, Attempt: c.Attempt}
	for _, l := range []queue.Lease{bad, missing} {
		checks := map[string]error{}
		checks["complete"] = s.JobComplete(t.Context(), l, queue.Completion{Rows: 1})
		_, checks["heartbeat"] = s.JobHeartbeat(t.Context(), l, 1, longLease)
		checks["chunk put"] = s.ResultChunkPut(t.Context(), l, 0, []byte("x"))
		_, checks["fail"] = s.JobFail(t.Context(), l, queue.JobFailParams{Error: "x", Retryable: true})
		checks["release"] = s.JobRelease(t.Context(), l)
		checks["cancelled"] = s.JobCancelled(t.Context(), l)
		for op, err := range checks {
			if !errors.Is(err, queue.ErrLeaseLost) {
				t.Errorf("%s with lease %+v: %v, want ErrLeaseLost", op, l, err)
			}
		}
	}
	if got := wantStatus(t, s, c.ID, queue.StatusRunning); got.Rows != 0 || got.Failures != 0 {
		t.Errorf("fenced-out writes changed the job: rows %d failures %d", got.Rows, got.Failures)
	}
	complete(t, s, c)
	if err := s.JobComplete(t.Context(), c.Lease(), queue.Completion{Rows: 1}); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("second completion: %v, want ErrLeaseLost", err)
	}
	if _, err := s.JobHeartbeat(t.Context(), c.Lease(), 1, longLease); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("heartbeat after completion: %v, want ErrLeaseLost", err)
	}
}

func testHeartbeatProgress(t *testing.T, s queue.Store) {
	enqueue(t, s, job("r"))
	c := claimOne(t, s)
	hb, err := s.JobHeartbeat(t.Context(), c.Lease(), 10, time.Hour)
	if err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	if hb.CancelRequested {
		t.Errorf("CancelRequested without a cancel")
	}
	j := get(t, s, c.ID)
	if j.Rows != 10 || j.LeaseExpires == nil || !j.LeaseExpires.After(*c.LeaseExpires) {
		t.Errorf("after heartbeat: rows %d, lease expires %v (was %v): want 10 and a later expiry", j.Rows, j.LeaseExpires, c.LeaseExpires)
	}
	if _, err := s.JobHeartbeat(t.Context(), c.Lease(), 10, time.Hour); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	ev := events(t, s, c.ID)
	want := []string{queue.EventQueued, queue.EventRunning, queue.EventProgress}
	if !slices.Equal(eventNames(ev), want) {
		t.Fatalf("events = %v, want %v (progress only when rows change)", eventNames(ev), want)
	}
	if p := ev[2]; p.Rows != 10 || p.Status != queue.StatusRunning || p.Attempt != 1 {
		t.Errorf("progress event = %+v, want rows 10, running, attempt 1", p)
	}
}

// runLimited runs total jobs through claimers concurrent claimers and fails when
// more than limit of them are running at once.
func runLimited(t *testing.T, s queue.Store, total, limit int) {
	t.Helper()
	var (
		mu              sync.Mutex
		running, maxRun int
		done            int
		wg              sync.WaitGroup
	)
	deadline := time.Now().Add(60 * time.Second)
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("claimer-%d", c)
			for {
				mu.Lock()
				finished := done == total
				mu.Unlock()
				if finished {
					return
				}
				if time.Now().After(deadline) {
					t.Errorf("%s: jobs not all done after 60s", name)
					return
				}
				got, err := s.JobClaim(context.Background(), queue.JobClaimParams{Agent: name, Limit: 2, LeaseDuration: longLease})
				if err != nil {
					t.Errorf("%s: claim: %v", name, err)
					return
				}
				if len(got) == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				mu.Lock()
				running += len(got)
				maxRun = max(maxRun, running)
				mu.Unlock()
				time.Sleep(time.Millisecond) // let the others try to claim meanwhile
				for _, j := range got {
					// Leave the running count before completing: once the slot is free
					// another claimer may start the next job.
					mu.Lock()
					running--
					mu.Unlock()
					if err := s.JobComplete(context.Background(), j.Lease(), queue.Completion{Rows: 0}); err != nil {
						t.Errorf("%s: complete %d: %v", name, j.ID, err)
					}
					mu.Lock()
					done++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if maxRun > limit {
		t.Errorf("%d jobs ran at once, limit %d", maxRun, limit)
	}
	if maxRun < 1 {
		t.Errorf("no job ran")
	}
}

func testConcurrencyOne(t *testing.T, s queue.Store) {
	const total = 40
	for range total {
		p := job("tb")
		p.Scopes = []queue.Scope{{Name: "report:tb", Limit: 1}}
		enqueue(t, s, p)
	}
	runLimited(t, s, total, 1)
}

func testSaturatedScopeSkipped(t *testing.T, s queue.Store) {
	limited := func() queue.JobEnqueueParams {
		p := job("tb")
		p.Priority = 10
		p.Scopes = []queue.Scope{{Name: "report:tb", Limit: 1}}
		return p
	}
	x1 := enqueue(t, s, limited())
	x2 := enqueue(t, s, limited())
	y := enqueue(t, s, job("other"))
	got := claim(t, s, claimParams(10))
	if !slices.Equal(ids(got), []int64{x1.ID, y.ID}) {
		t.Fatalf("claim = %v, want %v (the second tb waits, other runs)", ids(got), []int64{x1.ID, y.ID})
	}
	if more := claim(t, s, claimParams(10)); len(more) != 0 {
		t.Fatalf("claim while report:tb is full = %v, want none", ids(more))
	}
	complete(t, s, got[0])
	if next := claimOne(t, s); next.ID != x2.ID {
		t.Errorf("after the slot is freed claimed %d, want %d", next.ID, x2.ID)
	}
}

func testGroupScope(t *testing.T, s queue.Store) {
	for _, tc := range []struct {
		limit int
	}{{1}, {2}} {
		group := fmt.Sprintf("group:accounting-%d", tc.limit)
		var all []int64
		for _, report := range []string{"trial-balance", "gl-detail", "trial-balance"} {
			p := job(report)
			p.Scopes = []queue.Scope{{Name: group, Limit: tc.limit}, {Name: "source:warehouse", Limit: 100}}
			all = append(all, enqueue(t, s, p).ID)
		}
		got := claim(t, s, claimParams(10))
		if !slices.Equal(ids(got), all[:tc.limit]) {
			t.Fatalf("%s: claim = %v, want %v", group, ids(got), all[:tc.limit])
		}
		for _, j := range got {
			complete(t, s, j)
		}
		rest := claim(t, s, claimParams(10))
		if want := all[tc.limit:min(len(all), 2*tc.limit)]; !slices.Equal(ids(rest), want) {
			t.Fatalf("%s: claim after completion = %v, want %v", group, ids(rest), want)
		}
		for _, j := range rest {
			complete(t, s, j)
		}
		for _, j := range claim(t, s, claimParams(10)) {
			complete(t, s, j)
		}
	}
}

func testReleaseFreesSlot(t *testing.T, s queue.Store) {
	scoped := func() queue.JobEnqueueParams {
		p := job("tb")
		p.Scopes = []queue.Scope{{Name: "report:tb", Limit: 1}}
		return p
	}
	a := enqueue(t, s, scoped())
	enqueue(t, s, scoped())
	c := claimOne(t, s)
	if err := s.JobRelease(t.Context(), c.Lease()); err != nil {
		t.Fatalf("release: %v", err)
	}
	again := claimOne(t, s)
	if again.ID != a.ID {
		t.Errorf("after release claimed %d, want %d again (it keeps its place)", again.ID, a.ID)
	}
	if _, err := s.JobFail(t.Context(), again.Lease(), queue.JobFailParams{Error: "boom"}); err != nil {
		t.Fatalf("fail: %v", err)
	}
	if next := claim(t, s, claimParams(10)); len(next) != 1 {
		t.Errorf("after a failure freed the slot claimed %d jobs, want 1", len(next))
	}
}

func testDedupeKey(t *testing.T, s queue.Store) {
	p := job("r")
	p.DedupeKey = "r|pcn=1"
	first := enqueue(t, s, p)
	for _, stage := range []string{"queued", "running"} {
		res, err := s.JobEnqueue(t.Context(), p)
		if err != nil {
			t.Fatalf("%s: enqueue: %v", stage, err)
		}
		if !res.Existing || res.Job.ID != first.ID {
			t.Fatalf("%s: second submit = job %d existing %v, want job %d existing", stage, res.Job.ID, res.Existing, first.ID)
		}
		if stage == "queued" {
			claimOne(t, s)
		}
	}
	other := p
	other.DedupeKey = "r|pcn=2"
	if res, err := s.JobEnqueue(t.Context(), other); err != nil || res.Existing {
		t.Fatalf("another key: %+v, %v: want a new job", res, err)
	}
	c := get(t, s, first.ID)
	complete(t, s, c)
	res, err := s.JobEnqueue(t.Context(), p)
	if err != nil {
		t.Fatalf("enqueue after finish: %v", err)
	}
	if res.Existing || res.Job.ID == first.ID {
		t.Fatalf("after the first finished: job %d existing %v, want a new job", res.Job.ID, res.Existing)
	}
	if res.Job.DedupeKey != p.DedupeKey {
		t.Errorf("DedupeKey = %q, want %q", res.Job.DedupeKey, p.DedupeKey)
	}
	// A cancelled job frees its key too.
	if _, err := s.JobCancel(t.Context(), res.Job.ID, ""); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if again, err := s.JobEnqueue(t.Context(), p); err != nil || again.Existing {
		t.Fatalf("after cancel: %+v, %v: want a new job", again, err)
	}
}

func testOnceKey(t *testing.T, s queue.Store) {
	p := job("r")
	p.OnceKey = "r|{}|2026-11-29T08:00Z"
	first := enqueue(t, s, p)
	res, err := s.JobEnqueue(t.Context(), p)
	if err != nil || !res.Existing || res.Job.ID != first.ID {
		t.Fatalf("second submit: %+v, %v: want job %d existing", res, err, first.ID)
	}
	complete(t, s, claimOne(t, s))
	res, err = s.JobEnqueue(t.Context(), p)
	if err != nil || !res.Existing || res.Job.ID != first.ID || res.Job.Status != queue.StatusSucceeded {
		t.Fatalf("submit after finish: %+v, %v: want job %d, succeeded, existing", res, err, first.ID)
	}
	other := p
	other.OnceKey = "r|{}|2026-11-29T09:00Z"
	if res, err := s.JobEnqueue(t.Context(), other); err != nil || res.Existing {
		t.Fatalf("next occurrence: %+v, %v: want a new job", res, err)
	}
}

func testSubmitToken(t *testing.T, s queue.Store) {
	p := job("r")
	p.SubmitToken = "0b6c1e1e-retry"
	first := enqueue(t, s, p)
	complete(t, s, claimOne(t, s))
	res, err := s.JobEnqueue(t.Context(), p)
	if err != nil || !res.Existing || res.Job.ID != first.ID {
		t.Fatalf("retried submit: %+v, %v: want job %d existing", res, err, first.ID)
	}
	p.SubmitToken = "another"
	if res, err := s.JobEnqueue(t.Context(), p); err != nil || res.Existing {
		t.Fatalf("new token: %+v, %v: want a new job", res, err)
	}
	evs := events(t, s, first.ID)
	if n := len(slices.DeleteFunc(eventNames(evs), func(e string) bool { return e != queue.EventQueued })); n != 1 {
		t.Errorf("%d queued events for the deduplicated job, want 1", n)
	}
}

func testRetriesThenFailed(t *testing.T, s queue.Store) {
	p := job("r")
	p.MaxAttempts = 3
	j := enqueue(t, s, p)
	for attempt := 1; attempt <= 3; attempt++ {
		c := claimEventually(t, s, claimParams(1))
		if c.ID != j.ID || c.Attempt != attempt || c.Failures != attempt-1 {
			t.Fatalf("claim %d: job %d attempt %d failures %d", attempt, c.ID, c.Attempt, c.Failures)
		}
		msg := fmt.Sprintf("deadlock %d", attempt)
		st, err := s.JobFail(t.Context(), c.Lease(), queue.JobFailParams{Error: msg, Retryable: true})
		if err != nil {
			t.Fatalf("fail %d: %v", attempt, err)
		}
		want := queue.StatusQueued
		if attempt == 3 {
			want = queue.StatusFailed
		}
		if st != want {
			t.Fatalf("fail %d returned %s, want %s", attempt, st, want)
		}
		got := wantStatus(t, s, j.ID, want)
		if got.Failures != attempt || got.Error != msg {
			t.Errorf("after fail %d: failures %d error %q", attempt, got.Failures, got.Error)
		}
		if want == queue.StatusQueued && !got.RunAfter.After(j.RunAfter) {
			t.Errorf("retry %d: run_after %s not after the first %s (backoff)", attempt, got.RunAfter, j.RunAfter)
		}
		if want == queue.StatusFailed && got.FinishedAt == nil {
			t.Errorf("failed job has no finished_at")
		}
	}
	ev := events(t, s, j.ID)
	want := []string{queue.EventQueued,
		queue.EventRunning, queue.EventRetryScheduled,
		queue.EventRunning, queue.EventRetryScheduled,
		queue.EventRunning, queue.EventFailed}
	if !slices.Equal(eventNames(ev), want) {
		t.Fatalf("events = %v, want %v", eventNames(ev), want)
	}
	if last := ev[len(ev)-1]; last.Status != queue.StatusFailed || last.Error != "deadlock 3" || last.Attempt != 3 {
		t.Errorf("failed event = %+v, want status failed, the error, attempt 3", last)
	}
	if r := ev[2]; r.Status != queue.StatusQueued || r.Error != "deadlock 1" {
		t.Errorf("retry_scheduled event = %+v, want status queued and the error", r)
	}
}

func testNonRetryable(t *testing.T, s queue.Store) {
	j := enqueue(t, s, job("r"))
	c := claimOne(t, s)
	st, err := s.JobFail(t.Context(), c.Lease(), queue.JobFailParams{Error: "syntax error"})
	if err != nil || st != queue.StatusFailed {
		t.Fatalf("fail: %s, %v: want failed", st, err)
	}
	if got := wantStatus(t, s, j.ID, queue.StatusFailed); got.Failures != 1 || got.Error != "syntax error" {
		t.Errorf("failures %d error %q", got.Failures, got.Error)
	}
	if more := claim(t, s, claimParams(1)); len(more) != 0 {
		t.Errorf("a failed job was claimed")
	}
}

func testRelease(t *testing.T, s queue.Store) {
	p := job("r")
	p.MaxAttempts = 1
	j := enqueue(t, s, p)
	for i := 1; i <= 3; i++ {
		c := claimOne(t, s)
		if c.Attempt != i {
			t.Fatalf("claim %d: attempt %d", i, c.Attempt)
		}
		if err := s.JobRelease(t.Context(), c.Lease()); err != nil {
			t.Fatalf("release: %v", err)
		}
		got := wantStatus(t, s, j.ID, queue.StatusQueued)
		if got.Failures != 0 || got.LeaseToken != "" {
			t.Fatalf("after release %d: failures %d, lease token %q: want 0 and none", i, got.Failures, got.LeaseToken)
		}
		if err := s.JobComplete(t.Context(), c.Lease(), queue.Completion{Rows: 0}); !errors.Is(err, queue.ErrLeaseLost) {
			t.Errorf("complete after release: %v, want ErrLeaseLost", err)
		}
	}
	ev := events(t, s, j.ID)
	if last := ev[len(ev)-1]; last.Event != queue.EventReleased || last.Status != queue.StatusQueued {
		t.Errorf("last event = %+v, want released / queued", last)
	}
}

// A job put back to wait (a report whose data is being reloaded) is queued with no
// failure counted, says why as its error and its waiting event's, is not claimable
// before its delay, runs again after it, and a success clears the reason. A stale lease
// cannot put a job to wait.
func testWait(t *testing.T, s queue.Store) {
	w, ok := s.(queue.Waiter)
	if !ok {
		t.Fatalf("%T does not implement queue.Waiter", s)
	}
	p := job("r")
	p.MaxAttempts = 1
	j := enqueue(t, s, p)
	c := claimOne(t, s)
	const reason = "waiting for etl e: never loaded, needs 4h"
	if err := w.JobWait(t.Context(), c.Lease(), time.Hour, reason); err != nil {
		t.Fatalf("wait: %v", err)
	}
	got := wantStatus(t, s, j.ID, queue.StatusQueued)
	if got.Failures != 0 || got.LeaseToken != "" || got.Error != reason {
		t.Fatalf("after wait: failures %d, lease token %q, error %q; want 0, none, %q", got.Failures, got.LeaseToken, got.Error, reason)
	}
	if ev := events(t, s, j.ID); ev[len(ev)-1].Event != queue.EventWaiting || ev[len(ev)-1].Error != reason {
		t.Errorf("last event = %+v, want waiting with the reason", ev[len(ev)-1])
	}
	if early := claim(t, s, claimParams(10)); len(early) != 0 {
		t.Fatalf("claimed %d jobs within the wait, want none", len(early))
	}
	if err := w.JobWait(t.Context(), c.Lease(), 0, reason); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("wait with a stale lease: %v, want ErrLeaseLost", err)
	}

	k := enqueue(t, s, p)
	c = claimOne(t, s)
	if c.ID != k.ID {
		t.Fatalf("claimed %d, want %d", c.ID, k.ID)
	}
	if err := w.JobWait(t.Context(), c.Lease(), 0, reason); err != nil {
		t.Fatalf("wait: %v", err)
	}
	again := claimOne(t, s)
	if again.ID != k.ID || again.Attempt != 2 {
		t.Fatalf("after a wait of 0 claimed job %d attempt %d, want %d attempt 2", again.ID, again.Attempt, k.ID)
	}
	if err := s.JobComplete(t.Context(), again.Lease(), queue.Completion{Rows: 0}); err != nil {
		t.Fatalf("complete: %v", err)
	}
	if done := wantStatus(t, s, k.ID, queue.StatusSucceeded); done.Error != "" || done.Failures != 0 {
		t.Errorf("succeeded after a wait: error %q failures %d; want none and 0", done.Error, done.Failures)
	}
}

// A claim whose answer was lost: the caller gave the lease tokens, so it can give the
// jobs back without a failure counted; other running jobs and unknown tokens are left.
func testReleaseTokens(t *testing.T, s queue.Store) {
	p := job("r")
	p.MaxAttempts = 1
	p.Scopes = []queue.Scope{{Name: "report:r", Limit: 2}}
	a := enqueue(t, s, p)
	b := enqueue(t, s, p)
	other := enqueue(t, s, job("other"))
	cp := claimParams(2)
	cp.Tokens = []string{queue.NewLeaseToken(), queue.NewLeaseToken(), queue.NewLeaseToken()}
	got := claim(t, s, cp)
	if len(got) != 2 || got[0].LeaseToken != cp.Tokens[0] || got[1].LeaseToken != cp.Tokens[1] {
		t.Fatalf("claim with tokens: %d jobs, tokens %v; want 2 holding the given tokens in order", len(got), func() []string {
			var ts []string
			for _, j := range got {
				ts = append(ts, j.LeaseToken)
			}
			return ts
		}())
	}
	kept := claimOne(t, s) // the other job, claimed with a token of the store's
	if kept.ID != other.ID || kept.LeaseToken == "" {
		t.Fatalf("second claim took job %d token %q, want job %d with a token", kept.ID, kept.LeaseToken, other.ID)
	}
	n, err := s.JobReleaseTokens(t.Context(), append([]string{queue.NewLeaseToken()}, cp.Tokens...))
	if err != nil || n != 2 {
		t.Fatalf("release by tokens: %d, %v; want 2 released", n, err)
	}
	for _, id := range []int64{a.ID, b.ID} {
		j := wantStatus(t, s, id, queue.StatusQueued)
		if j.Failures != 0 || j.LeaseToken != "" {
			t.Errorf("job %d after release by token: failures %d, token %q; want 0 and none", id, j.Failures, j.LeaseToken)
		}
		if ev := events(t, s, id); ev[len(ev)-1].Event != queue.EventReleased || ev[len(ev)-1].Agent != agentName {
			t.Errorf("job %d: last event %+v, want released by %s", id, ev[len(ev)-1], agentName)
		}
	}
	wantStatus(t, s, other.ID, queue.StatusRunning)
	if again := claim(t, s, claimParams(2)); len(again) != 2 {
		t.Errorf("after the release claimed %d jobs, want both again (their slots are free)", len(again))
	}
	if n, err := s.JobReleaseTokens(t.Context(), cp.Tokens); err != nil || n != 0 {
		t.Errorf("second release by the same tokens: %d, %v; want 0", n, err)
	}
	if n, err := s.JobReleaseTokens(t.Context(), nil); err != nil || n != 0 {
		t.Errorf("release by no tokens: %d, %v; want 0", n, err)
	}
}

func testCancelQueued(t *testing.T, s queue.Store) {
	p := job("r")
	p.SubmittedBy = "api:alice"
	j := enqueue(t, s, p)
	c, err := s.JobCancel(t.Context(), j.ID, "web:bob")
	if err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if c.Status != queue.StatusCancelled || c.FinishedAt == nil {
		t.Errorf("cancel returned status %s finished %v, want cancelled with finished_at", c.Status, c.FinishedAt)
	}
	wantStatus(t, s, j.ID, queue.StatusCancelled)
	if got := claim(t, s, claimParams(1)); len(got) != 0 {
		t.Errorf("a cancelled job was claimed")
	}
	evs := events(t, s, j.ID)
	if names := eventNames(evs); !slices.Equal(names, []string{queue.EventQueued, queue.EventCancelled}) {
		t.Errorf("events = %v", names)
	} else if evs[0].By != "api:alice" || evs[1].By != "web:bob" {
		t.Errorf("events by %q and %q, want the submitter api:alice and the canceller web:bob", evs[0].By, evs[1].By)
	}
	if _, err := s.JobCancel(t.Context(), j.ID+1000, ""); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("cancel of a missing job: %v, want ErrNotFound", err)
	}
}

func testCancelRunning(t *testing.T, s queue.Store) {
	p := job("tb")
	p.Scopes = []queue.Scope{{Name: "report:tb", Limit: 1}}
	j := enqueue(t, s, p)
	enqueue(t, s, p)
	c := claimOne(t, s)
	got, err := s.JobCancel(t.Context(), j.ID, "cli:carol")
	if err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if got.Status != queue.StatusRunning || got.CancelRequestedAt == nil {
		t.Fatalf("cancel of a running job: status %s cancel_requested_at %v, want running with a request", got.Status, got.CancelRequestedAt)
	}
	if again, err := s.JobCancel(t.Context(), j.ID, ""); err != nil || again.Status != queue.StatusRunning {
		t.Fatalf("second cancel: %v, %v", again, err)
	}
	hb, err := s.JobHeartbeat(t.Context(), c.Lease(), 5, longLease)
	if err != nil || !hb.CancelRequested {
		t.Fatalf("heartbeat: %+v, %v: want CancelRequested", hb, err)
	}
	if err := s.JobCancelled(t.Context(), c.Lease()); err != nil {
		t.Fatalf("cancelled: %v", err)
	}
	if got := wantStatus(t, s, j.ID, queue.StatusCancelled); got.FinishedAt == nil {
		t.Errorf("cancelled job has no finished_at")
	}
	evs := events(t, s, j.ID)
	names := eventNames(evs)
	want := []string{queue.EventQueued, queue.EventRunning, queue.EventCancelRequested, queue.EventProgress, queue.EventCancelled}
	if !slices.Equal(names, want) {
		t.Errorf("events = %v, want %v", names, want)
	} else if evs[2].By != "cli:carol" || evs[1].By != "" {
		t.Errorf("cancel_requested by %q, running by %q: want cli:carol, and nobody for the agent's", evs[2].By, evs[1].By)
	}
	if next := claim(t, s, claimParams(1)); len(next) != 1 {
		t.Errorf("the cancelled job's slot was not freed")
	}
}

func testCancelFinished(t *testing.T, s queue.Store) {
	j := enqueue(t, s, job("r"))
	complete(t, s, claimOne(t, s))
	before := events(t, s, j.ID)
	got, err := s.JobCancel(t.Context(), j.ID, "")
	if err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if got.Status != queue.StatusSucceeded || got.CancelRequestedAt != nil {
		t.Errorf("cancel of a finished job changed it: %s, %v", got.Status, got.CancelRequestedAt)
	}
	if after := events(t, s, j.ID); len(after) != len(before) {
		t.Errorf("cancel of a finished job added events: %v", eventNames(after))
	}
}

func testRescueCancelRequested(t *testing.T, s queue.Store) {
	j := enqueue(t, s, job("r"))
	p := claimParams(1)
	p.LeaseDuration = 50 * time.Millisecond
	if got := claim(t, s, p); len(got) != 1 {
		t.Fatalf("claim: %d jobs", len(got))
	}
	if _, err := s.JobCancel(t.Context(), j.ID, ""); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if n, err := s.JobRescue(t.Context()); err != nil || n != 1 {
		t.Fatalf("rescue: %d, %v: want 1", n, err)
	}
	if got := wantStatus(t, s, j.ID, queue.StatusCancelled); got.FinishedAt == nil {
		t.Errorf("rescued cancelled job has no finished_at")
	}
	if again := claim(t, s, claimParams(1)); len(again) != 0 {
		t.Errorf("a cancelled job was claimed again")
	}
}

func testEvents(t *testing.T, s queue.Store) {
	a := enqueue(t, s, job("a"))
	b := enqueue(t, s, job("b"))
	ca := claimOne(t, s)
	complete(t, s, ca)
	if _, err := s.JobCancel(t.Context(), b.ID, ""); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	all := events(t, s, 0)
	want := []struct {
		id     int64
		event  string
		status queue.Status
	}{
		{a.ID, queue.EventQueued, queue.StatusQueued},
		{b.ID, queue.EventQueued, queue.StatusQueued},
		{a.ID, queue.EventRunning, queue.StatusRunning},
		{a.ID, queue.EventSucceeded, queue.StatusSucceeded},
		{b.ID, queue.EventCancelled, queue.StatusCancelled},
	}
	if len(all) != len(want) {
		t.Fatalf("events = %+v, want %d", all, len(want))
	}
	for i, w := range want {
		e := all[i]
		if e.JobID != w.id || e.Event != w.event || e.Status != w.status {
			t.Errorf("event %d = %+v, want job %d %s/%s", i, e, w.id, w.event, w.status)
		}
		if i > 0 && e.Seq <= all[i-1].Seq {
			t.Errorf("seq not increasing: %d after %d", e.Seq, all[i-1].Seq)
		}
		if e.At.IsZero() {
			t.Errorf("event %d has no time", i)
		}
	}
	if r := all[2]; r.Agent != agentName || r.Attempt != 1 || r.Report != "a" {
		t.Errorf("running event = %+v, want agent %s, attempt 1, report a", r, agentName)
	}
	resumed, err := s.EventList(t.Context(), 0, all[2].Seq, 100)
	if err != nil {
		t.Fatalf("events after seq: %v", err)
	}
	if len(resumed) != 2 || resumed[0].Seq != all[3].Seq || resumed[1].Seq != all[4].Seq {
		t.Errorf("events after seq %d = %+v, want the last two", all[2].Seq, resumed)
	}
	limited, err := s.EventList(t.Context(), 0, 0, 2)
	if err != nil || len(limited) != 2 || limited[1].Seq != all[1].Seq {
		t.Errorf("events with limit 2 = %+v, %v", limited, err)
	}
	onlyB := events(t, s, b.ID)
	if len(onlyB) != 2 || onlyB[0].JobID != b.ID || onlyB[1].JobID != b.ID {
		t.Errorf("events of job %d = %+v", b.ID, onlyB)
	}
	none, err := s.EventList(t.Context(), 0, all[4].Seq, 100)
	if err != nil || len(none) != 0 {
		t.Errorf("events after the last = %+v, %v: want none", none, err)
	}
}

func testRouteAndSources(t *testing.T, s queue.Store) {
	albion := job("plant-report")
	albion.Source = "plex-albion"
	albion.Route = map[string]string{"plant": "albion"}
	a := enqueue(t, s, albion)
	b := enqueue(t, s, job("wh")) // source warehouse, no route

	tests := []struct {
		name    string
		sources []string
		labels  map[string]string
		want    []int64
	}{
		{"wrong source, no labels", []string{"azure-dw"}, nil, nil},
		{"warehouse only", []string{"warehouse"}, map[string]string{"plant": "edon"}, []int64{b.ID}},
		{"other plant", nil, map[string]string{"plant": "edon"}, []int64{b.ID}},
		{"albion but not its source", []string{"warehouse"}, map[string]string{"plant": "albion"}, []int64{b.ID}},
		{"albion agent", []string{"plex-albion"}, map[string]string{"plant": "albion", "zone": "x"}, []int64{a.ID}},
		{"any source, albion", nil, map[string]string{"plant": "albion"}, []int64{a.ID, b.ID}},
	}
	for _, tc := range tests {
		got, err := s.JobClaim(t.Context(), queue.JobClaimParams{
			Agent: "a", Sources: tc.sources, Labels: tc.labels, Limit: 10, LeaseDuration: longLease,
		})
		if err != nil {
			t.Fatalf("%s: claim: %v", tc.name, err)
		}
		gotIDs := ids(got)
		slices.Sort(gotIDs)
		if !slices.Equal(gotIDs, tc.want) {
			t.Errorf("%s: claimed %v, want %v", tc.name, gotIDs, tc.want)
		}
		for _, j := range got {
			if err := s.JobRelease(t.Context(), j.Lease()); err != nil {
				t.Fatalf("release: %v", err)
			}
		}
	}
}

func testResultChunks(t *testing.T, s queue.Store) {
	enqueue(t, s, job("r"))
	c := claimOne(t, s)
	chunks := [][]byte{[]byte("header"), bytes.Repeat([]byte{0, 1, 2, 255}, 10000), []byte("last")}
	for i, ch := range chunks {
		if err := s.ResultChunkPut(t.Context(), c.Lease(), i, ch); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	// A retried put of the same chunk is harmless.
	if err := s.ResultChunkPut(t.Context(), c.Lease(), 2, chunks[2]); err != nil {
		t.Fatalf("put again: %v", err)
	}
	complete(t, s, c)
	for i, ch := range chunks {
		got, err := s.ResultChunkGet(t.Context(), c.ID, c.Attempt, i)
		if err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		if !bytes.Equal(got, ch) {
			t.Errorf("chunk %d: got %d bytes, want %d", i, len(got), len(ch))
		}
	}
	for _, tc := range []struct {
		name         string
		id           int64
		attempt, seq int
	}{
		{"past the end", c.ID, c.Attempt, len(chunks)},
		{"other attempt", c.ID, c.Attempt + 1, 0},
		{"other job", c.ID + 1000, c.Attempt, 0},
	} {
		if _, err := s.ResultChunkGet(t.Context(), tc.id, tc.attempt, tc.seq); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", tc.name, err)
		}
	}
	if err := s.ResultChunkPut(t.Context(), c.Lease(), 3, []byte("late")); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("put after completion: %v, want ErrLeaseLost", err)
	}
}

// testCompletionRecordsResult: the fenced completion records where the result lives
// and its chunk count (migration 00003); a completion that names none leaves both
// unset, as for jobs finished before they were recorded.
func testCompletionRecordsResult(t *testing.T, s queue.Store) {
	enqueue(t, s, job("recorded"))
	c := claimOne(t, s)
	if err := s.JobComplete(t.Context(), c.Lease(), queue.Completion{Rows: 7, ResultStore: "archive", ResultChunks: 3}); err != nil {
		t.Fatal(err)
	}
	got := wantStatus(t, s, c.ID, queue.StatusSucceeded)
	if got.Rows != 7 || got.ResultStore != "archive" || got.ResultChunks != 3 || got.ResultAttempt != c.Attempt {
		t.Errorf("completed job: rows %d, store %q, chunks %d, result attempt %d; want 7, archive, 3, %d",
			got.Rows, got.ResultStore, got.ResultChunks, got.ResultAttempt, c.Attempt)
	}
	enqueue(t, s, job("unrecorded"))
	u := claimOne(t, s)
	if err := s.JobComplete(t.Context(), u.Lease(), queue.Completion{Rows: 1}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, u.ID); got.ResultStore != "" || got.ResultChunks != 0 {
		t.Errorf("completion without a result: store %q, chunks %d; want none", got.ResultStore, got.ResultChunks)
	}
	// A stale completion records nothing.
	if err := s.JobComplete(t.Context(), c.Lease(), queue.Completion{Rows: 9, ResultStore: "other", ResultChunks: 9}); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("second completion: %v, want ErrLeaseLost", err)
	}
	if got := get(t, s, c.ID); got.ResultStore != "archive" || got.ResultChunks != 3 {
		t.Errorf("after a stale completion: store %q, chunks %d; want archive, 3", got.ResultStore, got.ResultChunks)
	}
}

func testAgents(t *testing.T, s queue.Store) {
	agents := []queue.Agent{
		{Name: "node-b", Host: "reports31", Labels: map[string]string{"plant": "albion"}, Sources: []string{"plex", "warehouse"}, Version: "v1", Running: 2},
		{Name: "node-a", Host: "reports32", Version: "v1", Draining: true},
	}
	for _, a := range agents {
		if err := s.AgentHeartbeat(t.Context(), a); err != nil {
			t.Fatalf("heartbeat %s: %v", a.Name, err)
		}
	}
	agents[0].Running = 5
	agents[0].Version = "v2"
	if err := s.AgentHeartbeat(t.Context(), agents[0]); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	got, err := s.AgentList(t.Context())
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Name < got[j].Name })
	want := []queue.Agent{agents[1], agents[0]}
	if len(got) != len(want) {
		t.Fatalf("agents = %+v, want %d", got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.LastSeen.IsZero() {
			t.Errorf("%s: no last_seen", g.Name)
		}
		g.LastSeen = time.Time{}
		if len(g.Labels) == 0 {
			g.Labels = nil
		}
		if len(g.Sources) == 0 {
			g.Sources = nil
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("agent = %+v, want %+v", g, w)
		}
	}
}

func testJobList(t *testing.T, s queue.Store) {
	mk := func(report, params string) *queue.Job {
		p := job(report)
		p.Params = json.RawMessage(params)
		return enqueue(t, s, p)
	}
	tb1 := mk("tb", `{"pcn":1,"period":202601}`)
	tb2 := mk("tb", `{"pcn":2,"period":202601}`)
	gl := mk("gl", `{"pcn":1}`)
	tb3 := mk("tb", `{"pcn":1,"period":202602}`)
	complete(t, s, claimOne(t, s)) // tb1
	tests := []struct {
		name string
		p    queue.JobListParams
		want []int64
	}{
		{"all newest first", queue.JobListParams{}, []int64{tb3.ID, gl.ID, tb2.ID, tb1.ID}},
		{"report", queue.JobListParams{Report: "tb"}, []int64{tb3.ID, tb2.ID, tb1.ID}},
		{"status", queue.JobListParams{Status: queue.StatusSucceeded}, []int64{tb1.ID}},
		{"status and report", queue.JobListParams{Status: queue.StatusQueued, Report: "tb"}, []int64{tb3.ID, tb2.ID}},
		{"limit", queue.JobListParams{Limit: 2}, []int64{tb3.ID, gl.ID}},
		{"params", queue.JobListParams{Report: "tb", Params: map[string]any{"pcn": 1}}, []int64{tb3.ID, tb1.ID}},
		{"params two values", queue.JobListParams{Params: map[string]any{"pcn": 1, "period": 202601}}, []int64{tb1.ID}},
		{"params and limit", queue.JobListParams{Params: map[string]any{"pcn": 1}, Limit: 2}, []int64{tb3.ID, gl.ID}},
		{"params no match", queue.JobListParams{Params: map[string]any{"pcn": 9}}, nil},
		{"unknown report", queue.JobListParams{Report: "nope"}, nil},
		{"before", queue.JobListParams{Before: gl.ID}, []int64{tb2.ID, tb1.ID}},
		{"before and limit", queue.JobListParams{Before: tb3.ID, Limit: 1}, []int64{gl.ID}},
		{"before and report", queue.JobListParams{Before: tb3.ID, Report: "tb"}, []int64{tb2.ID, tb1.ID}},
		{"before and params", queue.JobListParams{Before: tb3.ID, Params: map[string]any{"pcn": 1}}, []int64{gl.ID, tb1.ID}},
		{"before the first", queue.JobListParams{Before: tb1.ID}, nil},
	}
	for _, tc := range tests {
		got, err := s.JobList(t.Context(), tc.p)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.Equal(ids(got), tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, ids(got), tc.want)
		}
	}
	if _, err := s.JobGet(t.Context(), tb3.ID+1000); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("get of a missing job: %v, want ErrNotFound", err)
	}
}

func testMigrateTwice(t *testing.T, s queue.Store) {
	before, err := s.MigrationStatus(t.Context())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if len(before) == 0 {
		t.Fatalf("no migrations listed")
	}
	for i, m := range before {
		if m.AppliedAt == nil || m.Name == "" {
			t.Errorf("migration %+v: want applied, with a name", m)
		}
		if i > 0 && m.Version <= before[i-1].Version {
			t.Errorf("versions not increasing: %d after %d", m.Version, before[i-1].Version)
		}
	}
	for range 2 {
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("migrate again: %v", err)
		}
	}
	after, err := s.MigrationStatus(t.Context())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if len(after) != len(before) {
		t.Fatalf("status after migrate: %d versions, want %d", len(after), len(before))
	}
	for i := range after {
		if after[i].Version != before[i].Version || after[i].AppliedAt == nil || !after[i].AppliedAt.Equal(*before[i].AppliedAt) {
			t.Errorf("migration %d changed: %+v -> %+v", i, before[i], after[i])
		}
	}
	// The store still works after.
	enqueue(t, s, job("r"))
}

// sameRead reports whether two recorded reads say the same: source, kind, time and
// each ETL load, times compared as instants.
func sameRead(a, b *queue.ReadInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Source != b.Source || a.Kind != b.Kind || !a.At.Equal(b.At) || len(a.Loads) != len(b.Loads) {
		return false
	}
	for i := range a.Loads {
		x, y := a.Loads[i], b.Loads[i]
		if x.ETL != y.ETL || (x.At == nil) != (y.At == nil) || (x.At != nil && !x.At.Equal(*y.At)) {
			return false
		}
	}
	return true
}

// testCompletionRecordsRead: the completion records where and when the attempt read
// its data (migration 00011), to the microsecond, on JobComplete and JobCompleteBatch,
// seen by JobGet and JobList alike; a completion without one (an older agent) leaves
// Read nil, and a stale completion changes nothing.
func testCompletionRecordsRead(t *testing.T, s queue.Store) {
	at := time.Date(2026, 12, 7, 19, 5, 3, 123456000, time.UTC)
	loaded := at.Add(-3 * time.Hour).Truncate(time.Microsecond)
	read := &queue.ReadInfo{Source: "plex", Kind: "plexws", At: at,
		Loads: []queue.ETLLoad{{ETL: "plex-accounts", At: &loaded}, {ETL: "plex-periods"}}} // the second never loaded (migration 00014)
	enqueue(t, s, job("read-live"))
	c := claimOne(t, s)
	if err := s.JobComplete(t.Context(), c.Lease(), queue.Completion{Rows: 2, Read: read}); err != nil {
		t.Fatal(err)
	}
	got := wantStatus(t, s, c.ID, queue.StatusSucceeded)
	if got.Read == nil || !sameRead(got.Read, read) {
		t.Fatalf("completed job read %+v, want %+v", got.Read, read)
	}
	enqueue(t, s, job("read-none"))
	u := claimOne(t, s)
	if err := s.JobComplete(t.Context(), u.Lease(), queue.Completion{Rows: 1}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, u.ID); got.Read != nil {
		t.Errorf("completion without a read recorded %+v", got.Read)
	}
	other := &queue.ReadInfo{Source: "warehouse", Kind: "mysql", At: at.Add(time.Hour)}
	if err := s.JobComplete(t.Context(), c.Lease(), queue.Completion{Rows: 9, Read: other}); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("second completion: %v, want ErrLeaseLost", err)
	}
	if got := get(t, s, c.ID); got.Read == nil || !sameRead(got.Read, read) {
		t.Errorf("after a stale completion read %+v, want %+v", got.Read, read)
	}
	list, err := s.JobList(t.Context(), queue.JobListParams{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, j := range list {
		switch j.ID {
		case c.ID:
			seen++
			if j.Read == nil || !sameRead(j.Read, read) {
				t.Errorf("listed job %d read %+v, want %+v", j.ID, j.Read, read)
			}
		case u.ID:
			seen++
			if j.Read != nil {
				t.Errorf("listed job %d read %+v, want none", j.ID, j.Read)
			}
		}
	}
	if seen != 2 {
		t.Errorf("list showed %d of the 2 jobs", seen)
	}

	// In a batch each item records its own read (or none).
	bc, ok := s.(queue.BatchCompleter)
	if !ok {
		return
	}
	enqueue(t, s, job("read-b1"))
	enqueue(t, s, job("read-b2"))
	enqueue(t, s, job("read-b3"))
	js := claim(t, s, claimParams(3))
	if len(js) != 3 {
		t.Fatalf("claimed %d, want 3", len(js))
	}
	reads := []*queue.ReadInfo{
		{Source: "dw", Kind: "sqlserver", At: at.Add(time.Minute)},
		nil,
		{Source: "demo", Kind: "sqlite", At: at.Add(2 * time.Minute), Loads: []queue.ETLLoad{{ETL: "plex-balances", At: &loaded}}},
	}
	var items []queue.CompleteItem
	for i, j := range js {
		items = append(items, queue.CompleteItem{Lease: j.Lease(), Completion: queue.Completion{Rows: 1, Read: reads[i]}})
	}
	errs, _, err := bc.JobCompleteBatch(t.Context(), items, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := range js {
		if errs[i] != nil {
			t.Fatalf("batch item %d: %v", i, errs[i])
		}
		got := get(t, s, j.ID)
		switch {
		case reads[i] == nil && got.Read != nil:
			t.Errorf("batch job %d read %+v, want none", j.ID, got.Read)
		case reads[i] != nil && !sameRead(got.Read, reads[i]):
			t.Errorf("batch job %d read %+v, want %+v", j.ID, got.Read, reads[i])
		}
	}
}
