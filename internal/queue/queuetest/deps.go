package queuetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"rpt/internal/queue"
)

// The job dependencies (queue/deps.go): a job enqueued after other jobs is not
// claimable until they have all succeeded, is due in the transaction of the last
// completion, and ends failed or cancelled, naming the prerequisite, when one does.
var depsTests = []struct {
	name string
	run  func(t *testing.T, s queue.Store)
}{
	{"AfterRunsInOrder", testAfterRunsInOrder},
	{"AfterFailurePropagates", testAfterFailurePropagates},
	{"AfterCancelPropagates", testAfterCancelPropagates},
	{"AfterZombieCompletionReleasesNothing", testAfterZombie},
	{"AfterEnqueueChecks", testAfterEnqueueChecks},
	{"WaitForJobs", testWaitFor},
}

func after(report string, ids ...int64) queue.JobEnqueueParams {
	p := job(report)
	p.After = ids
	return p
}

// claimedIDs claims everything claimable and returns the ids, in claim order.
func claimedIDs(t *testing.T, s queue.Store) []int64 {
	t.Helper()
	var ids []int64
	for _, j := range claim(t, s, claimParams(100)) {
		ids = append(ids, j.ID)
	}
	return ids
}

func prerequisites(t *testing.T, s queue.Store, id int64) []queue.Prerequisite {
	t.Helper()
	pl, ok := s.(queue.PrerequisiteLister)
	if !ok {
		t.Fatalf("%T does not implement queue.PrerequisiteLister", s)
	}
	ps, err := pl.JobPrerequisites(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// a <- b, a <- c, (b, c) <- d: only a runs first; b and c are due in a's completion
// (a "ready" event each) and d only once both have succeeded; a batch completion
// releases like a single one; a prerequisite that had already succeeded does not hold
// a new job back.
func testAfterRunsInOrder(t *testing.T, s queue.Store) {
	a := enqueue(t, s, job("a"))
	b := enqueue(t, s, after("b", a.ID))
	c := enqueue(t, s, after("c", a.ID))
	d := enqueue(t, s, after("d", b.ID, c.ID))
	if b.Status != queue.StatusQueued || !b.RunAfter.Equal(queue.NotDue) {
		t.Fatalf("dependent b: %s run_after %s; want queued, not due (%s)", b.Status, b.RunAfter, queue.NotDue)
	}
	if got := prerequisites(t, s, d.ID); len(got) != 2 || got[0].ID != b.ID || got[1].ID != c.ID || got[0].Report != "b" ||
		got[0].Status != queue.StatusQueued || got[0].Kind != queue.KindReport {
		t.Fatalf("prerequisites of d: %+v; want b and c, queued", got)
	}
	if got := claimedIDs(t, s); !slices.Equal(got, []int64{a.ID}) {
		t.Fatalf("first claim %v, want only a (%d)", got, a.ID)
	}
	if got := claimedIDs(t, s); len(got) != 0 {
		t.Fatalf("claimed %v while a runs, want nothing", got)
	}
	complete(t, s, get(t, s, a.ID))
	for _, id := range []int64{b.ID, c.ID} {
		ev := events(t, s, id)
		if last := ev[len(ev)-1]; last.Event != queue.EventReady || last.Status != queue.StatusQueued {
			t.Errorf("job %d last event %+v, want ready, queued", id, last)
		}
	}
	got := claimedIDs(t, s)
	if slices.Sort(got); !slices.Equal(got, []int64{b.ID, c.ID}) {
		t.Fatalf("claim after a succeeded: %v, want b and c (%d, %d)", got, b.ID, c.ID)
	}
	bc, ok := s.(queue.BatchCompleter)
	if !ok {
		t.Fatalf("%T is not a BatchCompleter", s)
	}
	errs, _, err := bc.JobCompleteBatch(t.Context(), []queue.CompleteItem{{Lease: get(t, s, b.ID).Lease()}}, nil)
	if err != nil || errs[0] != nil {
		t.Fatalf("batch completion of b: %v %v", err, errs)
	}
	if got := claimedIDs(t, s); len(got) != 0 {
		t.Fatalf("claimed %v with c still running, want nothing (d waits for c too)", got)
	}
	complete(t, s, get(t, s, c.ID))
	if got := claimedIDs(t, s); !slices.Equal(got, []int64{d.ID}) {
		t.Fatalf("claim after b and c: %v, want d (%d)", got, d.ID)
	}
	// a has succeeded: a new job after it is due at once.
	e := enqueue(t, s, after("e", a.ID))
	if e.RunAfter.Equal(queue.NotDue) {
		t.Errorf("job after a succeeded job is not due")
	}
	if got := claimedIDs(t, s); !slices.Equal(got, []int64{e.ID}) {
		t.Fatalf("claim: %v, want e (%d)", got, e.ID)
	}
}

// A prerequisite that fails for good ends its dependents failed, each naming the job it
// waited for, down the chain; nothing of theirs runs. A retryable failure with
// attempts left ends nothing.
func testAfterFailurePropagates(t *testing.T, s queue.Store) {
	p := job("a")
	p.MaxAttempts = 2
	a := enqueue(t, s, p)
	b := enqueue(t, s, after("b", a.ID))
	c := enqueue(t, s, after("c", b.ID))
	other := enqueue(t, s, job("other"))
	if got := claimedIDs(t, s); !slices.Equal(got, []int64{a.ID, other.ID}) {
		t.Fatalf("claim %v, want a and other", got)
	}
	if st, err := s.JobFail(t.Context(), get(t, s, a.ID).Lease(), queue.JobFailParams{Error: "source down", Retryable: true}); err != nil || st != queue.StatusQueued {
		t.Fatalf("retryable failure: %s %v, want queued", st, err)
	}
	wantStatus(t, s, b.ID, queue.StatusQueued)
	retried := claimEventually(t, s, claimParams(1))
	if retried.ID != a.ID {
		t.Fatalf("claimed %d, want a (%d) again", retried.ID, a.ID)
	}
	if st, err := s.JobFail(t.Context(), retried.Lease(), queue.JobFailParams{Error: "bad sql", Retryable: false}); err != nil || st != queue.StatusFailed {
		t.Fatalf("fail: %s %v, want failed", st, err)
	}
	wantB := fmt.Sprintf("report a (job %d) failed: bad sql", a.ID)
	gb := wantStatus(t, s, b.ID, queue.StatusFailed)
	if gb.Error != wantB || gb.Attempt != 0 || gb.FinishedAt == nil {
		t.Errorf("b: error %q attempt %d finished %v; want %q, never run, finished", gb.Error, gb.Attempt, gb.FinishedAt, wantB)
	}
	gc := wantStatus(t, s, c.ID, queue.StatusFailed)
	if want := fmt.Sprintf("report b (job %d) failed: %s", b.ID, wantB); gc.Error != want {
		t.Errorf("c: error %q, want %q", gc.Error, want)
	}
	if ev := events(t, s, c.ID); ev[len(ev)-1].Event != queue.EventFailed || ev[len(ev)-1].Error != gc.Error {
		t.Errorf("c's last event %+v, want failed with its error", ev[len(ev)-1])
	}
	if got := claimedIDs(t, s); len(got) != 0 {
		t.Errorf("claimed %v after the failure, want nothing", got)
	}
	// A job queued after a job that failed ends at once.
	late := enqueue(t, s, after("late", a.ID))
	if late.Status != queue.StatusFailed || late.Error != fmt.Sprintf("report a (job %d) failed: bad sql", a.ID) {
		t.Errorf("job after a failed job: %s %q, want failed naming it", late.Status, late.Error)
	}
}

// Cancelling a queued prerequisite cancels its dependents; a running one whose cancel
// ends it (the agent's JobCancelled, or a rescue) does too.
func testAfterCancelPropagates(t *testing.T, s queue.Store) {
	a := enqueue(t, s, job("a"))
	b := enqueue(t, s, after("b", a.ID))
	c := enqueue(t, s, after("c", b.ID))
	if _, err := s.JobCancel(t.Context(), a.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	gb := wantStatus(t, s, b.ID, queue.StatusCancelled)
	if want := fmt.Sprintf("report a (job %d) cancelled", a.ID); gb.Error != want {
		t.Errorf("b: error %q, want %q", gb.Error, want)
	}
	if gc := wantStatus(t, s, c.ID, queue.StatusCancelled); !strings.HasPrefix(gc.Error, fmt.Sprintf("report b (job %d) cancelled", b.ID)) {
		t.Errorf("c: error %q, want it to name b", gc.Error)
	}

	x := enqueue(t, s, job("x"))
	y := enqueue(t, s, after("y", x.ID))
	cx := claimOne(t, s)
	if _, err := s.JobCancel(t.Context(), x.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, s, y.ID, queue.StatusQueued) // x still runs until its agent stops it
	if err := s.JobCancelled(t.Context(), cx.Lease()); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, s, y.ID, queue.StatusCancelled)
	// Cancelling a dependent leaves its prerequisite alone.
	m := enqueue(t, s, job("m"))
	n := enqueue(t, s, after("n", m.ID))
	if _, err := s.JobCancel(t.Context(), n.ID, ""); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, s, m.ID, queue.StatusQueued)
}

// A completion fenced out (its lease expired and the job was claimed again) releases
// no dependent; the live attempt's completion does.
func testAfterZombie(t *testing.T, s queue.Store) {
	a := enqueue(t, s, job("a"))
	b := enqueue(t, s, after("b", a.ID))
	short := claimParams(1)
	short.LeaseDuration = time.Millisecond
	zombie := claim(t, s, short)
	if len(zombie) != 1 || zombie[0].ID != a.ID {
		t.Fatalf("claim: %v, want a", zombie)
	}
	for {
		n, err := s.JobRescue(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	live := claimEventually(t, s, claimParams(1))
	if live.ID != a.ID {
		t.Fatalf("claimed %d, want a again", live.ID)
	}
	if err := s.JobComplete(t.Context(), zombie[0].Lease(), queue.Completion{}); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("zombie completion: %v, want ErrLeaseLost", err)
	}
	if bc, ok := s.(queue.BatchCompleter); ok {
		errs, _, err := bc.JobCompleteBatch(t.Context(), []queue.CompleteItem{{Lease: zombie[0].Lease()}}, nil)
		if err != nil || !errors.Is(errs[0], queue.ErrLeaseLost) {
			t.Fatalf("zombie batch completion: %v %v, want ErrLeaseLost", err, errs)
		}
	}
	if gb := wantStatus(t, s, b.ID, queue.StatusQueued); !gb.RunAfter.Equal(queue.NotDue) {
		t.Fatalf("b after a zombie completion: run_after %s, want not due", gb.RunAfter)
	}
	if got := claimedIDs(t, s); len(got) != 0 {
		t.Fatalf("claimed %v after a zombie completion, want nothing", got)
	}
	complete(t, s, live)
	if got := claimedIDs(t, s); !slices.Equal(got, []int64{b.ID}) {
		t.Fatalf("claim after the live completion: %v, want b", got)
	}
}

// An unknown prerequisite, a non-positive id, after with run_after, and after in a
// batch are refused, and nothing is written.
func testAfterEnqueueChecks(t *testing.T, s queue.Store) {
	a := enqueue(t, s, job("a"))
	at := time.Now().Add(time.Hour)
	bad := map[string]queue.JobEnqueueParams{}
	bad["unknown"] = after("b", a.ID+1000)
	bad["zero"] = after("b", 0)
	withAt := after("b", a.ID)
	withAt.RunAfter = &at
	bad["run_after"] = withAt
	for name, p := range bad {
		if _, err := s.JobEnqueue(t.Context(), p); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("%s: enqueue: %v, want ErrInvalid", name, err)
		}
	}
	if be, ok := s.(queue.BatchEnqueuer); ok {
		if _, err := be.JobEnqueueBatch(t.Context(), []queue.JobEnqueueParams{job("c"), after("b", a.ID)}); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("batch with after: %v, want ErrInvalid", err)
		}
	}
	if js, err := s.JobList(t.Context(), queue.JobListParams{}); err != nil || len(js) != 1 {
		t.Errorf("jobs after refused enqueues: %d (%v), want only a", len(js), err)
	}
}

// A running job put back to wait for other jobs is due when they have succeeded, not
// before, with no failure counted; one waiting for a job that failed ends failed; one
// waiting for a job already succeeded is due at once; a stale lease cannot wait.
func testWaitFor(t *testing.T, s queue.Store) {
	w, ok := s.(queue.DependWaiter)
	if !ok {
		t.Fatalf("%T does not implement queue.DependWaiter", s)
	}
	p := job("r")
	p.MaxAttempts = 1
	r := enqueue(t, s, p)
	cr := claimOne(t, s)
	e := enqueue(t, s, job("e"))
	const reason = "waiting for etl e: never loaded"
	if err := w.JobWaitFor(t.Context(), cr.Lease(), []int64{cr.ID}, time.Hour, reason); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("wait for itself: %v, want ErrInvalid", err)
	}
	if err := w.JobWaitFor(t.Context(), cr.Lease(), []int64{e.ID}, time.Hour, reason); err != nil {
		t.Fatal(err)
	}
	gr := wantStatus(t, s, r.ID, queue.StatusQueued)
	if gr.Failures != 0 || gr.Error != reason || !gr.RunAfter.After(time.Now().Add(30*time.Minute)) {
		t.Errorf("waiting job: failures %d error %q run_after %s; want 0, the reason, about an hour on", gr.Failures, gr.Error, gr.RunAfter)
	}
	if err := w.JobWaitFor(t.Context(), cr.Lease(), []int64{e.ID}, time.Hour, reason); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("wait with a stale lease: %v, want ErrLeaseLost", err)
	}
	ce := claimOne(t, s)
	if ce.ID != e.ID {
		t.Fatalf("claimed %d, want e (%d): the waiting job is not due", ce.ID, e.ID)
	}
	complete(t, s, ce)
	again := claimOne(t, s)
	if again.ID != r.ID || again.Failures != 0 {
		t.Fatalf("claimed %d (failures %d) after e succeeded, want r (%d) with no failure", again.ID, again.Failures, r.ID)
	}
	// e has succeeded: waiting for it again is due at once.
	if err := w.JobWaitFor(t.Context(), again.Lease(), []int64{e.ID}, time.Hour, reason); err != nil {
		t.Fatal(err)
	}
	third := claimOne(t, s)
	if third.ID != r.ID {
		t.Fatalf("claimed %d, want r at once", third.ID)
	}
	// Waiting for a job that then fails ends failed, naming it.
	f := enqueue(t, s, job("f"))
	if err := w.JobWaitFor(t.Context(), third.Lease(), []int64{f.ID}, time.Hour, reason); err != nil {
		t.Fatal(err)
	}
	cf := claimOne(t, s)
	if _, err := s.JobFail(t.Context(), cf.Lease(), queue.JobFailParams{Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	if got := wantStatus(t, s, r.ID, queue.StatusFailed); got.Error != fmt.Sprintf("report f (job %d) failed: boom", f.ID) {
		t.Errorf("r after f failed: error %q", got.Error)
	}
}
