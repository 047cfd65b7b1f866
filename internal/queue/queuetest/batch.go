package queuetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"rpt/internal/queue"
)

// batchTests check queue.BatchCompleter, which every store implements.
var batchTests = []struct {
	name string
	run  func(t *testing.T, s queue.Store)
}{
	{"CompleteBatchFencesEachLease", testCompleteBatchFences},
	{"CompleteBatchClaimsInSameTransaction", testCompleteBatchClaims},
	{"CompleteBatchFreesSlots", testCompleteBatchFreesSlots},
	{"CompletionCarriesChunk", testCompletionChunk},
	{"EnqueueBatch", testEnqueueBatch},
	{"EnqueueBatchKeysExact", testEnqueueBatchKeys},
	{"EnqueueBatchAllOrNothing", testEnqueueBatchAllOrNothing},
}

func batcher(t *testing.T, s queue.Store) queue.BatchCompleter {
	t.Helper()
	bc, ok := s.(queue.BatchCompleter)
	if !ok {
		t.Fatalf("%T does not implement queue.BatchCompleter", s)
	}
	return bc
}

// testCompleteBatchFences: one batch with live leases, a stale token, a lease of a job
// that finished already and the same lease twice. The live ones complete (with their
// own rows, store and chunk count, one succeeded event each); every other item is
// refused with ErrLeaseLost on its own, without stopping the rest.
func testCompleteBatchFences(t *testing.T, s queue.Store) {
	bc := batcher(t, s)
	for range 4 {
		enqueue(t, s, job("b"))
	}
	got := claim(t, s, claimParams(4))
	if len(got) != 4 {
		t.Fatalf("claimed %d, want 4", len(got))
	}
	a, b, c, d := got[0], got[1], got[2], got[3]
	complete(t, s, d) // finished before the batch: its lease no longer holds
	stale := queue.Lease{JobID: b.ID, Token: queue.NewLeaseToken(), Attempt: b.Attempt}
	items := []queue.CompleteItem{
		{Lease: a.Lease(), Completion: queue.Completion{Rows: 3, ResultStore: "queue", ResultChunks: 2}},
		{Lease: stale, Completion: queue.Completion{Rows: 99}},
		{Lease: c.Lease(), Completion: queue.Completion{Rows: 5}},
		{Lease: d.Lease(), Completion: queue.Completion{Rows: 7}},
		{Lease: a.Lease(), Completion: queue.Completion{Rows: 11}},
	}
	errs, claimed, err := bc.JobCompleteBatch(t.Context(), items, nil)
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	if len(claimed) != 0 {
		t.Errorf("batch without claim claimed %v", ids(claimed))
	}
	if len(errs) != len(items) {
		t.Fatalf("%d errors for %d items", len(errs), len(items))
	}
	for i, want := range []bool{false, true, false, true, true} {
		if lost := errors.Is(errs[i], queue.ErrLeaseLost); lost != want {
			t.Errorf("item %d (job %d): err %v, want lease lost %v", i, items[i].Lease.JobID, errs[i], want)
		}
	}
	ja := wantStatus(t, s, a.ID, queue.StatusSucceeded)
	if ja.Rows != 3 || ja.ResultStore != "queue" || ja.ResultChunks != 2 || ja.ResultAttempt != a.Attempt {
		t.Errorf("job a after batch: rows %d store %q chunks %d result attempt %d", ja.Rows, ja.ResultStore, ja.ResultChunks, ja.ResultAttempt)
	}
	if jc := wantStatus(t, s, c.ID, queue.StatusSucceeded); jc.Rows != 5 || jc.ResultStore != "" || jc.ResultChunks != 0 {
		t.Errorf("job c after batch: rows %d store %q chunks %d", jc.Rows, jc.ResultStore, jc.ResultChunks)
	}
	if jb := wantStatus(t, s, b.ID, queue.StatusRunning); jb.Rows != 0 {
		t.Errorf("stale item changed job b: rows %d", jb.Rows)
	}
	if jd := wantStatus(t, s, d.ID, queue.StatusSucceeded); jd.Rows != 0 {
		t.Errorf("the finished job's row count changed to %d", jd.Rows)
	}
	for _, j := range []*queue.Job{a, c, d} {
		n := 0
		for _, e := range events(t, s, j.ID) {
			if e.Event == queue.EventSucceeded {
				n++
			}
		}
		if n != 1 {
			t.Errorf("job %d has %d succeeded events, want 1", j.ID, n)
		}
	}
	// An empty batch is no error.
	if errs, _, err := bc.JobCompleteBatch(t.Context(), nil, nil); err != nil || len(errs) != 0 {
		t.Errorf("empty batch: %v, %v", errs, err)
	}
}

// testCompleteBatchClaims: the claim given with a batch takes jobs in claim order, under
// the tokens given, in the same call; the completed job is not claimed again.
func testCompleteBatchClaims(t *testing.T, s queue.Store) {
	bc := batcher(t, s)
	first := enqueue(t, s, job("c"))
	c := claimOne(t, s)
	if c.ID != first.ID {
		t.Fatalf("claimed %d, want %d", c.ID, first.ID)
	}
	low := job("c")
	low.Priority = -5
	j3 := enqueue(t, s, low)
	j2 := enqueue(t, s, job("c"))
	p := claimParams(5)
	p.Tokens = []string{queue.NewLeaseToken(), queue.NewLeaseToken()}
	errs, claimed, err := bc.JobCompleteBatch(t.Context(), []queue.CompleteItem{{Lease: c.Lease(), Completion: queue.Completion{Rows: 1}}}, &p)
	if err != nil || errs[0] != nil {
		t.Fatalf("batch: %v %v", err, errs)
	}
	if !slices.Equal(ids(claimed), []int64{j2.ID, j3.ID}) {
		t.Fatalf("claimed %v, want %v (priority order)", ids(claimed), []int64{j2.ID, j3.ID})
	}
	for i, j := range claimed {
		if j.Status != queue.StatusRunning || j.LeaseToken != p.Tokens[i] || j.LeaseOwner != agentName {
			t.Errorf("claimed job %d: status %s token %q owner %q", j.ID, j.Status, j.LeaseToken, j.LeaseOwner)
		}
	}
	wantStatus(t, s, c.ID, queue.StatusSucceeded)
	// The claim's parameters are checked like JobClaim's, before anything is written.
	bad := claimParams(1)
	bad.Agent = ""
	if _, _, err := bc.JobCompleteBatch(t.Context(), []queue.CompleteItem{{Lease: claimed[0].Lease()}}, &bad); err == nil {
		t.Error("batch with a claim without an agent name: no error")
	}
	wantStatus(t, s, claimed[0].ID, queue.StatusRunning)
}

// testCompleteBatchFreesSlots: slots of completed jobs are free for the claim in the
// same transaction.
func testCompleteBatchFreesSlots(t *testing.T, s queue.Store) {
	bc := batcher(t, s)
	limited := func() queue.JobEnqueueParams {
		p := job("tb")
		p.Scopes = []queue.Scope{{Name: "report:tb", Limit: 1}}
		return p
	}
	enqueue(t, s, limited())
	next := enqueue(t, s, limited())
	c := claimOne(t, s)
	if more := claim(t, s, claimParams(1)); len(more) != 0 {
		t.Fatalf("claimed %v while the scope is full", ids(more))
	}
	p := claimParams(1)
	_, claimed, err := bc.JobCompleteBatch(t.Context(), []queue.CompleteItem{{Lease: c.Lease()}}, &p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(claimed), []int64{next.ID}) {
		t.Fatalf("claimed %v with the completion, want %d", ids(claimed), next.ID)
	}
	if u := slotUsage(t, s); u["report:tb"] != 1 {
		t.Errorf("slots in use %v, want report:tb 1", u)
	}
}

// testCompletionChunk: a completion carrying chunk 0 stores it with the result, for the
// batch and the single completion alike; a fenced-out one stores nothing.
func testCompletionChunk(t *testing.T, s queue.Store) {
	bc := batcher(t, s)
	enqueue(t, s, job("k"))
	enqueue(t, s, job("k"))
	got := claim(t, s, claimParams(2))
	if len(got) != 2 {
		t.Fatalf("claimed %d, want 2", len(got))
	}
	one := queue.Completion{Rows: 1, ResultStore: "queue", ResultChunks: 1, Chunk: []byte("chunk-a")}
	if err := s.JobComplete(t.Context(), got[0].Lease(), one); err != nil {
		t.Fatal(err)
	}
	stale := queue.Lease{JobID: got[1].ID, Token: queue.NewLeaseToken(), Attempt: got[1].Attempt}
	two := queue.Completion{Rows: 1, ResultStore: "queue", ResultChunks: 1, Chunk: []byte("chunk-b")}
	errs, _, err := bc.JobCompleteBatch(t.Context(), []queue.CompleteItem{{Lease: stale, Completion: two}}, nil)
	if err != nil || !errors.Is(errs[0], queue.ErrLeaseLost) {
		t.Fatalf("stale batch item: %v %v", err, errs)
	}
	if _, err := s.ResultChunkGet(t.Context(), got[1].ID, got[1].Attempt, 0); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("a fenced-out completion stored its chunk: %v", err)
	}
	errs, _, err = bc.JobCompleteBatch(t.Context(), []queue.CompleteItem{{Lease: got[1].Lease(), Completion: two}}, nil)
	if err != nil || errs[0] != nil {
		t.Fatalf("batch: %v %v", err, errs)
	}
	for i, want := range []string{"chunk-a", "chunk-b"} {
		data, err := s.ResultChunkGet(t.Context(), got[i].ID, got[i].Attempt, 0)
		if err != nil || string(data) != want {
			t.Errorf("chunk 0 of job %d: %q, %v; want %q", got[i].ID, data, err, want)
		}
		if _, err := s.ResultChunkGet(t.Context(), got[i].ID, got[i].Attempt, 1); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("chunk 1 of job %d: %v, want ErrNotFound", got[i].ID, err)
		}
		if j := wantStatus(t, s, got[i].ID, queue.StatusSucceeded); j.ResultChunks != 1 {
			t.Errorf("job %d result chunks %d", j.ID, j.ResultChunks)
		}
	}
}

func enqueuer(t *testing.T, s queue.Store) queue.BatchEnqueuer {
	t.Helper()
	be, ok := s.(queue.BatchEnqueuer)
	if !ok {
		t.Fatalf("%T does not implement queue.BatchEnqueuer", s)
	}
	return be
}

// testEnqueueBatch: the jobs of a batch are returned as JobGet reads them (no field
// differs, though the store does not read them back), each with one queued event, in
// claim order when priorities are equal.
func testEnqueueBatch(t *testing.T, s queue.Store) {
	be := enqueuer(t, s)
	at := time.Now().Add(-time.Minute).Truncate(time.Second).Add(123456789 * time.Nanosecond)
	var ps []queue.JobEnqueueParams
	for i := range 5 {
		p := job("batch")
		p.Params = json.RawMessage(fmt.Sprintf(`{"pcn": %d}`, 100+i))
		ps = append(ps, p)
	}
	ps[1].Route = map[string]string{"plant": "albion"}
	ps[2].Scopes = []queue.Scope{{Name: "report:batch", Limit: 2}}
	ps[3].RunAfter = &at
	ps[3].Timeout = 1500*time.Millisecond + 7*time.Microsecond
	ps[4].Priority = 7
	ps[4].RetryOf = 42
	ps[4].SubmittedBy = "api:robot"
	res, err := be.JobEnqueueBatch(t.Context(), ps)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(ps) {
		t.Fatalf("%d results for %d jobs", len(res), len(ps))
	}
	seen := map[int64]bool{}
	for i, r := range res {
		if r.Existing || r.Job == nil || r.Job.ID == 0 || seen[r.Job.ID] {
			t.Fatalf("job %d: %+v", i, r)
		}
		seen[r.Job.ID] = true
		got := get(t, s, r.Job.ID)
		if !reflect.DeepEqual(r.Job, got) {
			t.Errorf("job %d as returned:\n%+v\nas read back:\n%+v", i, *r.Job, *got)
		}
		if ev := eventNames(events(t, s, r.Job.ID)); !slices.Equal(ev, []string{queue.EventQueued}) {
			t.Errorf("job %d events %v", i, ev)
		}
	}
	if u := slotUsage(t, s); u["report:batch"] != 0 {
		t.Errorf("slot usage %v before any claim", u)
	}
	// Claim order: priority 7 first, then the due ones by id (ps[3] runs after a time
	// in the past, so it is due and first of the rest by run_after).
	p := claimParams(10)
	p.Labels = map[string]string{"plant": "albion"}
	got := ids(claim(t, s, p))
	want := []int64{res[4].Job.ID, res[3].Job.ID, res[0].Job.ID, res[1].Job.ID, res[2].Job.ID}
	if !slices.Equal(got, want) {
		t.Errorf("claimed %v, want %v", got, want)
	}
}

// testEnqueueBatchKeys: dedupe, once and submit keys are exact inside a batch and
// across batches: a key an earlier job of the same batch took returns that job, a
// key a job of an earlier batch (or a single enqueue) holds returns that one, and an
// inactive dedupe key is free again.
func testEnqueueBatchKeys(t *testing.T, s queue.Store) {
	be := enqueuer(t, s)
	with := func(dedupe, once, token string) queue.JobEnqueueParams {
		p := job("keys")
		p.DedupeKey, p.OnceKey, p.SubmitToken = dedupe, once, token
		return p
	}
	old := enqueue(t, s, with("", "once-old", ""))
	done := enqueue(t, s, with("d-done", "", ""))
	c := claimOne(t, s)
	if c.ID != old.ID {
		t.Fatalf("claimed %d, want %d", c.ID, old.ID)
	}
	complete(t, s, c) // once keys hold whatever became of the job
	c = claimOne(t, s)
	complete(t, s, c) // done's dedupe key is inactive now
	first := []queue.JobEnqueueParams{
		with("d1", "", ""),       // 0 new
		with("d1", "", ""),       // 1 = 0 (dedupe, same batch)
		with("", "o1", ""),       // 2 new
		with("", "o1", ""),       // 3 = 2 (once, same batch)
		with("", "", "t1"),       // 4 new
		with("", "", "t1"),       // 5 = 4 (token, same batch)
		with("", "once-old", ""), // 6 = old (once, earlier single enqueue, finished)
		with("d-done", "", ""),   // 7 new (its dedupe key is no longer active)
		with("d2", "o1", ""),     // 8 = 2 (the once key wins over a new dedupe key)
		with("", "", ""),         // 9 new
	}
	r1, err := be.JobEnqueueBatch(t.Context(), first)
	if err != nil {
		t.Fatal(err)
	}
	same := map[int]int{1: 0, 3: 2, 5: 4, 8: 2}
	for i, r := range r1 {
		switch {
		case i == 6:
			if !r.Existing || r.Job.ID != old.ID {
				t.Errorf("job 6: existing %v id %d, want the earlier job %d", r.Existing, r.Job.ID, old.ID)
			}
		case same[i] != 0 || i == 1:
			if !r.Existing || r.Job.ID != r1[same[i]].Job.ID {
				t.Errorf("job %d: existing %v id %d, want job %d of the batch (%d)", i, r.Existing, r.Job.ID, same[i], r1[same[i]].Job.ID)
			}
		default:
			if r.Existing {
				t.Errorf("job %d: existing job %d, want a new one", i, r.Job.ID)
			}
		}
	}
	if r1[7].Job.ID == done.ID {
		t.Errorf("an inactive dedupe key returned the finished job")
	}
	// Across batches: every key of the first batch holds.
	second := []queue.JobEnqueueParams{with("d1", "", ""), with("", "o1", ""), with("", "", "t1"), with("d3", "", ""), with("d3", "", "")}
	r2, err := be.JobEnqueueBatch(t.Context(), second)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{r1[0].Job.ID, r1[2].Job.ID, r1[4].Job.ID} {
		if !r2[i].Existing || r2[i].Job.ID != want {
			t.Errorf("second batch job %d: existing %v id %d, want %d", i, r2[i].Existing, r2[i].Job.ID, want)
		}
	}
	if r2[3].Existing || !r2[4].Existing || r2[4].Job.ID != r2[3].Job.ID {
		t.Errorf("second batch d3: %+v %+v", r2[3], r2[4])
	}
	// The queue holds exactly the new jobs: 6 + 1 queued.
	queued, err := s.JobList(t.Context(), queue.JobListParams{Status: queue.StatusQueued})
	if err != nil {
		t.Fatal(err)
	}
	if len(queued) != 6 {
		t.Errorf("%d queued jobs, want 6: %v", len(queued), ids(queued))
	}
}

// testEnqueueBatchAllOrNothing: one invalid job refuses the batch, naming it, and
// nothing of the batch is enqueued.
func testEnqueueBatchAllOrNothing(t *testing.T, s queue.Store) {
	be := enqueuer(t, s)
	bad := job("bad")
	bad.Priority = queue.MaxPriority + 1
	_, err := be.JobEnqueueBatch(t.Context(), []queue.JobEnqueueParams{job("ok"), job("ok"), bad})
	if !errors.Is(err, queue.ErrInvalid) || !strings.Contains(err.Error(), "job 2") || !strings.Contains(err.Error(), "priority") {
		t.Errorf("error %v, want ErrInvalid naming job 2 and its priority", err)
	}
	all, err := s.JobList(t.Context(), queue.JobListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 0 {
		t.Errorf("a refused batch enqueued %d jobs", len(all))
	}
	if last, err := s.EventLastSeq(t.Context()); err != nil || last != 0 {
		t.Errorf("a refused batch wrote events (last seq %d, %v)", last, err)
	}
}
