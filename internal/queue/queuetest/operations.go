package queuetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"rpt/internal/queue"
)

// operationsTests are the subtests of queue.Operations; Run runs them with the rest.
var operationsTests = []struct {
	name string
	run  func(t *testing.T, s queue.Store)
}{
	{"PauseStopsClaims", testPauseStopsClaims},
	{"PauseInvalid", testPauseInvalid},
	{"AgentDrain", testAgentDrain},
	{"SlotUsageAndQueueStats", testSlotUsageAndStats},
	{"EventLastSeq", testEventLastSeq},
	{"Prune", testPrune},
	{"PruneManyJobs", testPruneManyJobs},
}

func pauses(t *testing.T, s queue.Store) []string {
	t.Helper()
	ps, err := s.PauseList(t.Context())
	if err != nil {
		t.Fatalf("list pauses: %v", err)
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		if p.CreatedAt.IsZero() {
			t.Errorf("pause %s %s: no created_at", p.Kind, p.Name)
		}
		out[i] = p.Kind + ":" + p.Name
	}
	return out
}

func pauseSet(t *testing.T, s queue.Store, kind, name string, paused bool) {
	t.Helper()
	if err := s.PauseSet(t.Context(), kind, name, paused); err != nil {
		t.Fatalf("pause set %s %s %v: %v", kind, name, paused, err)
	}
}

func testPauseStopsClaims(t *testing.T, s queue.Store) {
	tests := []struct {
		kind, name string
	}{
		{queue.PauseReport, "trial-balance"},
		{queue.PauseSource, "plex"},
	}
	for _, tc := range tests {
		// The paused job has the higher priority: a claim that ignored the pause would
		// take it first.
		p := job("trial-balance")
		p.Source = "plex"
		p.Priority = 9
		paused := enqueue(t, s, p)
		other := job("gl-detail")
		other.Source = "warehouse"
		free := enqueue(t, s, other)

		pauseSet(t, s, tc.kind, tc.name, true)
		pauseSet(t, s, tc.kind, tc.name, true) // idempotent
		if got, want := pauses(t, s), []string{tc.kind + ":" + tc.name}; !slices.Equal(got, want) {
			t.Fatalf("%s: pauses = %v, want %v", tc.kind, got, want)
		}
		if got := claim(t, s, claimParams(10)); !slices.Equal(ids(got), []int64{free.ID}) {
			t.Fatalf("%s paused: claimed %v, want only %d", tc.kind, ids(got), free.ID)
		}
		if got := claim(t, s, claimParams(10)); len(got) != 0 {
			t.Fatalf("%s paused: claimed %v, want none", tc.kind, ids(got))
		}
		wantStatus(t, s, paused.ID, queue.StatusQueued)

		pauseSet(t, s, tc.kind, tc.name, false)
		pauseSet(t, s, tc.kind, tc.name, false) // idempotent
		if got := pauses(t, s); len(got) != 0 {
			t.Fatalf("%s resumed: pauses = %v, want none", tc.kind, got)
		}
		if got := claim(t, s, claimParams(10)); !slices.Equal(ids(got), []int64{paused.ID}) {
			t.Fatalf("%s resumed: claimed %v, want %d", tc.kind, ids(got), paused.ID)
		}
	}
	// A pause of one kind does not pause the same name of the other kind.
	pauseSet(t, s, queue.PauseSource, "same", true)
	p := job("same")
	p.Source = "warehouse"
	j := enqueue(t, s, p)
	if got := claim(t, s, claimParams(10)); !slices.Equal(ids(got), []int64{j.ID}) {
		t.Fatalf("source pause of a report's name: claimed %v, want %d", ids(got), j.ID)
	}
	pauseSet(t, s, queue.PauseReport, "a-report", true)
	if got, want := pauses(t, s), []string{"report:a-report", "source:same"}; !slices.Equal(got, want) {
		t.Errorf("pauses = %v, want %v (by kind, name)", got, want)
	}
}

func testPauseInvalid(t *testing.T, s queue.Store) {
	tests := []struct {
		name, kind, pname, field string
	}{
		{"empty kind", "", "tb", "kind"},
		{"unknown kind", "job", "tb", "kind"},
		{"empty name", queue.PauseReport, "", "name"},
		{"blank name", queue.PauseSource, "  ", "name"},
	}
	for _, tc := range tests {
		for _, paused := range []bool{true, false} {
			err := s.PauseSet(t.Context(), tc.kind, tc.pname, paused)
			if !errors.Is(err, queue.ErrInvalid) {
				t.Errorf("%s (paused %v): %v, want ErrInvalid", tc.name, paused, err)
				continue
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("%s: error %q does not name %s", tc.name, err, tc.field)
			}
		}
	}
	if got := pauses(t, s); len(got) != 0 {
		t.Errorf("pauses after invalid calls = %v, want none", got)
	}
}

func agentGet(t *testing.T, s queue.Store, name string) queue.Agent {
	t.Helper()
	a, err := s.AgentGet(t.Context(), name)
	if err != nil {
		t.Fatalf("get agent %s: %v", name, err)
	}
	return a
}

func testAgentDrain(t *testing.T, s queue.Store) {
	a := queue.Agent{Name: "node-a", Host: "reports31", Labels: map[string]string{"plant": "albion"},
		Sources: []string{"plex"}, Version: "v1", Running: 1}
	b := queue.Agent{Name: "node-b", Host: "reports32", Version: "v1"}
	for _, ag := range []queue.Agent{a, b} {
		if err := s.AgentHeartbeat(t.Context(), ag); err != nil {
			t.Fatalf("heartbeat %s: %v", ag.Name, err)
		}
	}
	got := agentGet(t, s, a.Name)
	if got.LastSeen.IsZero() {
		t.Errorf("get: no last_seen")
	}
	got.LastSeen = time.Time{}
	if fmt.Sprint(got) != fmt.Sprint(a) {
		t.Errorf("get = %+v, want %+v", got, a)
	}

	for range 2 { // a second request is no error
		if err := s.AgentDrain(t.Context(), a.Name); err != nil {
			t.Fatalf("drain: %v", err)
		}
	}
	if !agentGet(t, s, a.Name).DrainRequested {
		t.Fatalf("drain requested not visible to AgentGet")
	}
	// The agent's heartbeats, draining or not, leave the request set.
	for _, draining := range []bool{false, true} {
		hb := a
		hb.Draining = draining
		if err := s.AgentHeartbeat(t.Context(), hb); err != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		got := agentGet(t, s, a.Name)
		if !got.DrainRequested || got.Draining != draining {
			t.Errorf("after heartbeat (draining %v): drain_requested %v draining %v, want true %v",
				draining, got.DrainRequested, got.Draining, draining)
		}
	}
	list, err := s.AgentList(t.Context())
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	requested := map[string]bool{}
	for _, ag := range list {
		requested[ag.Name] = ag.DrainRequested
	}
	if want := map[string]bool{a.Name: true, b.Name: false}; fmt.Sprint(requested) != fmt.Sprint(want) {
		t.Errorf("AgentList drain requests = %v, want %v", requested, want)
	}
	if agentGet(t, s, b.Name).DrainRequested {
		t.Errorf("drain of %s marked %s", a.Name, b.Name)
	}

	// Undrain withdraws the request (twice is no error) and touches no other agent.
	if err := s.AgentDrain(t.Context(), b.Name); err != nil {
		t.Fatalf("drain %s: %v", b.Name, err)
	}
	for range 2 {
		if err := s.AgentUndrain(t.Context(), a.Name); err != nil {
			t.Fatalf("undrain: %v", err)
		}
	}
	if agentGet(t, s, a.Name).DrainRequested {
		t.Errorf("undrain left %s's drain request set", a.Name)
	}
	if !agentGet(t, s, b.Name).DrainRequested {
		t.Errorf("undrain of %s cleared %s's request", a.Name, b.Name)
	}

	if err := s.AgentDrain(t.Context(), "nope"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("drain of an unknown agent: %v, want ErrNotFound", err)
	}
	if err := s.AgentUndrain(t.Context(), "nope"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("undrain of an unknown agent: %v, want ErrNotFound", err)
	}
	if _, err := s.AgentGet(t.Context(), "nope"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("get of an unknown agent: %v, want ErrNotFound", err)
	}
}

func slotUsage(t *testing.T, s queue.Store) map[string]int {
	t.Helper()
	u, err := s.SlotUsage(t.Context())
	if err != nil {
		t.Fatalf("slot usage: %v", err)
	}
	return u
}

func stats(t *testing.T, s queue.Store) queue.QueueStats {
	t.Helper()
	st, err := s.QueueStats(t.Context())
	if err != nil {
		t.Fatalf("queue stats: %v", err)
	}
	return st
}

func testSlotUsageAndStats(t *testing.T, s queue.Store) {
	if st := stats(t, s); st.Queued != 0 || st.Scheduled != 0 || st.Running != 0 || st.OldestQueuedAge != 0 || len(st.SlotsInUse) != 0 {
		t.Fatalf("stats of an empty queue = %+v, want zeros", st)
	}
	limited := func(report string, scopes ...queue.Scope) queue.JobEnqueueParams {
		p := job(report)
		p.Scopes = scopes
		return p
	}
	var tb []*queue.Job
	for range 3 {
		tb = append(tb, enqueue(t, s, limited("tb", queue.Scope{Name: "report:tb", Limit: 2})))
	}
	gl := enqueue(t, s, limited("gl", queue.Scope{Name: "group:accounting", Limit: 1}, queue.Scope{Name: "source:warehouse", Limit: 5}))
	// Due an hour ago: its age counts from its creation, not from run_after.
	pastP := job("past")
	past := time.Now().Add(-time.Hour)
	pastP.RunAfter = &past
	pastP.Priority = -1
	pastP.Scopes = []queue.Scope{{Name: "report:tb", Limit: 2}} // full: stays queued
	enqueue(t, s, pastP)
	laterP := job("later")
	later := time.Now().Add(time.Hour)
	laterP.RunAfter = &later
	scheduled := enqueue(t, s, laterP)

	got := claim(t, s, claimParams(10))
	if !slices.Equal(ids(got), []int64{tb[0].ID, tb[1].ID, gl.ID}) {
		t.Fatalf("claimed %v, want %v", ids(got), []int64{tb[0].ID, tb[1].ID, gl.ID})
	}
	wantUsage := map[string]int{"report:tb": 2, "group:accounting": 1, "source:warehouse": 1}
	if u := slotUsage(t, s); fmt.Sprint(u) != fmt.Sprint(wantUsage) {
		t.Errorf("slot usage = %v, want %v", u, wantUsage)
	}
	st := stats(t, s)
	if st.Queued != 2 || st.Scheduled != 1 || st.Running != 3 {
		t.Errorf("stats queued %d scheduled %d running %d, want 2 1 3", st.Queued, st.Scheduled, st.Running)
	}
	if fmt.Sprint(st.SlotsInUse) != fmt.Sprint(wantUsage) {
		t.Errorf("stats slots in use = %v, want %v", st.SlotsInUse, wantUsage)
	}
	// The due jobs were created moments ago: an age near an hour would mean run_after
	// was taken instead of the later created_at, one near 0 that none was counted.
	if st.OldestQueuedAge <= 0 || st.OldestQueuedAge >= 30*time.Minute {
		t.Errorf("oldest queued age = %s, want in (0, 30m)", st.OldestQueuedAge)
	}
	// By report and source: the due queued jobs only (not the scheduled one), their age
	// from creation like the total's.
	var waiting []string
	for _, w := range st.Waiting {
		waiting = append(waiting, fmt.Sprintf("%s/%s:%d", w.Report, w.Source, w.Queued))
		if w.OldestQueuedAge <= 0 || w.OldestQueuedAge >= 30*time.Minute {
			t.Errorf("%s/%s waits %s, want in (0, 30m)", w.Report, w.Source, w.OldestQueuedAge)
		}
	}
	if want := []string{"past/warehouse:1", "tb/warehouse:1"}; !slices.Equal(waiting, want) {
		t.Errorf("waiting by report and source = %v, want %v", waiting, want)
	}

	complete(t, s, got[0])
	if u := slotUsage(t, s); u["report:tb"] != 1 || u["group:accounting"] != 1 {
		t.Errorf("slot usage after one tb completed = %v", u)
	}
	// Run everything due to completion; the scheduled job stays.
	for _, j := range got[1:] {
		complete(t, s, j)
	}
	for {
		more := claim(t, s, claimParams(10))
		if len(more) == 0 {
			break
		}
		for _, j := range more {
			complete(t, s, j)
		}
	}
	if u := slotUsage(t, s); len(u) != 0 {
		t.Errorf("slot usage with nothing running = %v, want empty", u)
	}
	st = stats(t, s)
	if st.Queued != 0 || st.Scheduled != 1 || st.Running != 0 || st.OldestQueuedAge != 0 || len(st.SlotsInUse) != 0 {
		t.Errorf("stats with only a scheduled job = %+v, want scheduled 1, rest zero", st)
	}
	wantStatus(t, s, scheduled.ID, queue.StatusQueued)
}

// putChunks stores n small chunks of a running job.
func putChunks(t *testing.T, s queue.Store, j *queue.Job, n int) {
	t.Helper()
	for i := range n {
		if err := s.ResultChunkPut(t.Context(), j.Lease(), i, []byte(fmt.Sprintf("chunk %d", i))); err != nil {
			t.Fatalf("put chunk %d of job %d: %v", i, j.ID, err)
		}
	}
}

// chunkCount counts the chunks of a job's attempt that ResultChunkGet still returns.
func chunkCount(t *testing.T, s queue.Store, j *queue.Job) int {
	t.Helper()
	for n := 0; ; n++ {
		data, err := s.ResultChunkGet(t.Context(), j.ID, j.Attempt, n)
		if errors.Is(err, queue.ErrNotFound) {
			return n
		}
		if err != nil {
			t.Fatalf("get chunk %d of job %d: %v", n, j.ID, err)
		}
		if !bytes.Equal(data, []byte(fmt.Sprintf("chunk %d", n))) {
			t.Fatalf("chunk %d of job %d = %q", n, j.ID, data)
		}
	}
}

func prune(t *testing.T, s queue.Store, p queue.PruneParams) queue.PruneResult {
	t.Helper()
	res, err := s.Prune(t.Context(), p)
	if err != nil {
		t.Fatalf("prune %+v: %v", p, err)
	}
	return res
}

func testPrune(t *testing.T, s queue.Store) {
	// succeeded: more chunks than one delete statement removes.
	enqueue(t, s, job("succeeded"))
	succeeded := claimOne(t, s)
	putChunks(t, s, succeeded, 70)
	complete(t, s, succeeded)
	// failed, with a partial result.
	enqueue(t, s, job("failed"))
	failed := claimOne(t, s)
	putChunks(t, s, failed, 2)
	if st, err := s.JobFail(t.Context(), failed.Lease(), queue.JobFailParams{Error: "boom"}); err != nil || st != queue.StatusFailed {
		t.Fatalf("fail: %s, %v", st, err)
	}
	// cancelled while queued: no chunks.
	cancelled := enqueue(t, s, job("cancelled"))
	if _, err := s.JobCancel(t.Context(), cancelled.ID, ""); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	// running, with chunks; queued; scheduled.
	enqueue(t, s, job("running"))
	running := claimOne(t, s)
	putChunks(t, s, running, 3)
	queued := enqueue(t, s, job("queued"))
	later := time.Now().Add(time.Hour)
	scheduledP := job("scheduled")
	scheduledP.RunAfter = &later
	scheduled := enqueue(t, s, scheduledP)
	finished := []*queue.Job{succeeded, failed, cancelled}
	active := []*queue.Job{running, queued, scheduled}

	past := time.Now().Add(-time.Hour)
	future := time.Now().Add(time.Hour)
	if res := prune(t, s, queue.PruneParams{ResultsBefore: past, JobsBefore: past}); res != (queue.PruneResult{}) {
		t.Errorf("prune with past cut-offs = %+v, want nothing", res)
	}
	if res := prune(t, s, queue.PruneParams{}); res != (queue.PruneResult{}) {
		t.Errorf("prune with zero cut-offs = %+v, want nothing", res)
	}
	for _, tc := range []struct {
		j    *queue.Job
		want int
	}{{succeeded, 70}, {failed, 2}, {running, 3}} {
		if n := chunkCount(t, s, tc.j); n != tc.want {
			t.Errorf("job %s: %d chunks after a prune of nothing, want %d", tc.j.Report, n, tc.want)
		}
	}

	// Results only: chunks of finished jobs go, the jobs and their events stay.
	if res := prune(t, s, queue.PruneParams{ResultsBefore: future, JobsBefore: past}); res != (queue.PruneResult{ResultJobs: 2}) {
		t.Errorf("prune of results = %+v, want ResultJobs 2 (succeeded, failed)", res)
	}
	for _, j := range []*queue.Job{succeeded, failed} {
		if n := chunkCount(t, s, j); n != 0 {
			t.Errorf("job %s: %d chunks left after pruning results", j.Report, n)
		}
	}
	if n := chunkCount(t, s, running); n != 3 {
		t.Errorf("running job: %d chunks after pruning results, want 3", n)
	}
	for _, j := range append(finished, active...) {
		get(t, s, j.ID)
		if len(events(t, s, j.ID)) == 0 {
			t.Errorf("job %s: events gone after pruning results", j.Report)
		}
	}
	if res := prune(t, s, queue.PruneParams{ResultsBefore: future}); res != (queue.PruneResult{}) {
		t.Errorf("second prune of results = %+v, want nothing", res)
	}

	// Jobs: finished ones go with their events; active ones stay whole.
	if res := prune(t, s, queue.PruneParams{ResultsBefore: future, JobsBefore: future}); res != (queue.PruneResult{Jobs: 3}) {
		t.Errorf("prune of jobs = %+v, want Jobs 3", res)
	}
	for _, j := range finished {
		if _, err := s.JobGet(t.Context(), j.ID); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("job %s after prune: %v, want ErrNotFound", j.Report, err)
		}
		if ev := events(t, s, j.ID); len(ev) != 0 {
			t.Errorf("job %s: %d events left after prune", j.Report, len(ev))
		}
	}
	wantStatus(t, s, running.ID, queue.StatusRunning)
	wantStatus(t, s, queued.ID, queue.StatusQueued)
	wantStatus(t, s, scheduled.ID, queue.StatusQueued)
	for _, j := range active {
		if len(events(t, s, j.ID)) == 0 {
			t.Errorf("job %s: events gone", j.Report)
		}
	}
	if n := chunkCount(t, s, running); n != 3 {
		t.Errorf("running job: %d chunks after pruning jobs, want 3", n)
	}
	// The running job still completes, and its result can then be pruned.
	complete(t, s, running)
	if res := prune(t, s, queue.PruneParams{ResultsBefore: future}); res != (queue.PruneResult{ResultJobs: 1}) {
		t.Errorf("prune after completion = %+v, want ResultJobs 1", res)
	}
}

// testPruneManyJobs prunes more jobs than one batch of either store holds.
func testPruneManyJobs(t *testing.T, s queue.Store) {
	const n = 250
	for i := range n {
		j := enqueue(t, s, job(fmt.Sprintf("r%d", i%7)))
		if _, err := s.JobCancel(t.Context(), j.ID, ""); err != nil {
			t.Fatalf("cancel: %v", err)
		}
	}
	keep := enqueue(t, s, job("keep"))
	future := time.Now().Add(time.Hour)
	if res := prune(t, s, queue.PruneParams{ResultsBefore: future, JobsBefore: future}); res.Jobs != n {
		t.Errorf("pruned %d jobs, want %d", res.Jobs, n)
	}
	left, err := s.JobList(t.Context(), queue.JobListParams{})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if !slices.Equal(ids(left), []int64{keep.ID}) {
		t.Errorf("jobs left = %v, want %v", ids(left), []int64{keep.ID})
	}
	ev, err := s.EventList(t.Context(), 0, 0, 0)
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	for _, e := range ev {
		if e.JobID != keep.ID {
			t.Fatalf("event %+v of a pruned job left", e)
		}
	}
}

func testEventLastSeq(t *testing.T, s queue.Store) {
	head, err := s.EventLastSeq(t.Context())
	if err != nil || head != 0 {
		t.Fatalf("EventLastSeq on an empty queue = %d, %v; want 0", head, err)
	}
	j := enqueue(t, s, job("last-seq"))
	if _, err := s.JobCancel(t.Context(), j.ID, ""); err != nil {
		t.Fatal(err)
	}
	events, err := s.EventList(t.Context(), 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) < 2 {
		t.Fatalf("%d events, want queued and cancelled", len(events))
	}
	head, err = s.EventLastSeq(t.Context())
	if err != nil || head != events[len(events)-1].Seq {
		t.Fatalf("EventLastSeq = %d, %v; want %d", head, err, events[len(events)-1].Seq)
	}
}
