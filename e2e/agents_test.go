package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/testenv"
)

// Four agent processes drain 2,000 short jobs: every job is claimed exactly once (one
// running event, at attempt 1), succeeds, and every agent takes part. Not parallel: it
// is the heaviest test. Its lease is 10s rather than 2s: on a loaded machine a job can
// legitimately self-fence and run again after a 1.5s stall, which is not what this test
// is about (claim exclusivity).
func TestManyAgentsClaimEachJobOnce(t *testing.T) {
	db := testenv.MariaDB(t)
	r := newRig(t, db, db)
	def := r.define(`name: tiny
source: db
params:
  - {name: n, type: int}
max_attempts: 3
sql: SELECT :n AS n
`)
	const jobs, agents = 2000, 4
	var names []string
	for i := range agents {
		name := fmt.Sprintf("many-%d", i)
		names = append(names, name)
		r.startAgentLease(name, 4, 10*time.Second)
	}
	began := time.Now()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Submit while the agents already claim, from 8 goroutines.
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > jobs {
					return
				}
				if _, err := r.enqueue(ctx, def, map[string]string{"n": strconv.FormatInt(n, 10)}); err != nil {
					errs <- fmt.Errorf("enqueue job %d: %w", n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	submitted := time.Since(began)
	r.waitFinished(ctx, 90*time.Second, "all jobs finished")
	drained := time.Since(began)

	all, err := r.jobs(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != jobs {
		t.Fatalf("%d jobs in the queue, want %d", len(all), jobs)
	}
	for _, j := range all {
		if j.Status != string(queue.StatusSucceeded) || j.Attempt != 1 || j.Failures != 0 || j.ResultAttempt != 1 || j.Rows != 1 {
			t.Errorf("job %d: status %s attempt %d failures %d result_attempt %d rows %d; want succeeded, 1, 0, 1, 1 row",
				j.ID, j.Status, j.Attempt, j.Failures, j.ResultAttempt, j.Rows)
		}
	}

	evs, err := r.events(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	running := map[int64]int{}
	succeeded := map[int64]int{}
	byAgent := map[string]int{}
	for _, e := range evs {
		switch e.Event {
		case queue.EventRunning:
			running[e.JobID]++
			byAgent[e.Agent]++
			if e.Attempt != 1 {
				t.Errorf("job %d: running event at attempt %d by %s, want attempt 1", e.JobID, e.Attempt, e.Agent)
			}
		case queue.EventSucceeded:
			succeeded[e.JobID]++
		case queue.EventReleased, queue.EventRetryScheduled, queue.EventFailed:
			t.Errorf("job %d: unexpected %s event (attempt %d, agent %s)", e.JobID, e.Event, e.Attempt, e.Agent)
		}
	}
	for _, j := range all {
		if running[j.ID] != 1 || succeeded[j.ID] != 1 {
			t.Errorf("job %d: %d running and %d succeeded events, want 1 and 1", j.ID, running[j.ID], succeeded[j.ID])
		}
	}
	for _, name := range names {
		if byAgent[name] == 0 {
			t.Errorf("agent %s claimed no job (claims by agent: %v)", name, byAgent)
		}
	}
	if len(byAgent) != agents {
		t.Errorf("claims by %d agents (%v), want %d", len(byAgent), byAgent, agents)
	}
	t.Logf("%d jobs submitted in %.1fs, all finished after %.1fs; claims by agent: %v",
		jobs, submitted.Seconds(), drained.Seconds(), byAgent)

	// A sample result read back through the CLI is the job's own.
	id := all[len(all)/2].ID
	out, err := r.rpt("get", strconv.FormatInt(id, 10), "--csv")
	if err != nil {
		t.Fatal(err)
	}
	var params struct{ N int64 }
	got, err := r.store.JobGet(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got.Params, &params); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("n\n%d\n", params.N); out != want {
		t.Errorf("rpt get %d --csv = %q, want %q", id, out, want)
	}
}

// A report with concurrency: 2 never runs more than 2 at once across 8 agents, and
// reaches 2.
func TestSlotsHoldReportConcurrency(t *testing.T) {
	t.Parallel()
	db := testenv.MariaDB(t)
	r := newRig(t, db, db)
	def := r.define(`name: pair
source: db
params:
  - {name: s, type: decimal}
concurrency: 2
sql: SELECT SLEEP(:s) AS slept
`)
	const agents, jobs = 8, 10
	for i := range agents {
		r.startAgent(fmt.Sprintf("slots-%d", i), 2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// All 8 claim loops run before the jobs arrive, so they compete for the slots.
	waitFor(t, 30*time.Second, "8 agents registered", func() (bool, error) {
		as, err := r.store.AgentList(ctx)
		return len(as) == agents, err
	})
	for i := range jobs {
		if _, err := r.enqueue(ctx, def, map[string]string{"s": "0.6"}); err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
	}

	// Sample the jobs and slots tables while they run.
	maxRunning, maxSlots, samples := 0, 0, 0
	waitFor(t, 60*time.Second, "all pair jobs finished", func() (bool, error) {
		var running, open, slots int
		err := r.db.QueryRowContext(ctx, "SELECT COALESCE(SUM(status = 'running'), 0), COALESCE(SUM(status IN ('queued', 'running')), 0), "+
			"(SELECT COUNT(*) FROM rpt_slots WHERE scope = 'report:pair' AND job_id IS NOT NULL) FROM rpt_jobs WHERE report = 'pair'").
			Scan(&running, &open, &slots)
		if err != nil {
			return false, err
		}
		samples++
		maxRunning, maxSlots = max(maxRunning, running), max(maxSlots, slots)
		return open == 0, nil
	})
	all, err := r.jobs(ctx, "report = 'pair'")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range all {
		if j.Status != string(queue.StatusSucceeded) || j.Attempt != 1 {
			t.Errorf("job %d: %s at attempt %d, want succeeded at 1", j.ID, j.Status, j.Attempt)
		}
	}
	evs, err := r.events(ctx, "report = 'pair'")
	if err != nil {
		t.Fatal(err)
	}
	iv := attempts(evs)
	overlap := maxOverlap(iv)
	agentsUsed := map[string]bool{}
	for _, i := range iv {
		agentsUsed[i.Agent] = true
	}
	t.Logf("%d samples: max running %d, max slots taken %d; from events: max overlap %d over %d attempts by %d agents",
		samples, maxRunning, maxSlots, overlap, len(iv), len(agentsUsed))
	if maxRunning > 2 || maxSlots > 2 || overlap > 2 {
		t.Errorf("concurrency 2 exceeded: max running %d, max slots %d, max overlap of attempts %d", maxRunning, maxSlots, overlap)
	}
	if maxRunning < 2 && overlap < 2 {
		t.Errorf("never ran 2 at once (max running sampled %d, overlap from events %d): the limit was not exercised", maxRunning, overlap)
	}
	if len(iv) != jobs {
		t.Errorf("%d attempts, want %d", len(iv), jobs)
	}
}

// A SIGKILLed agent's job is rescued by another agent after its lease expires and run
// again: one failure counted, attempt 2, the result is the second attempt's.
func TestKilledAgentJobRunsAgain(t *testing.T) {
	t.Parallel()
	db := testenv.MariaDB(t)
	r := newRig(t, db, db)
	r.define(`name: slow
source: db
params:
  - {name: s, type: decimal}
max_attempts: 3
sql: SELECT SLEEP(:s) AS slept
`)
	a := r.startAgent("killed-a", 1)
	out, err := r.rpt("submit", "slow", "-p", "s=4")
	if err != nil {
		t.Fatal(err)
	}
	id, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("rpt submit printed %q, want a job id", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitFor(t, 20*time.Second, "job running on agent A", func() (bool, error) {
		j, err := r.job(ctx, id)
		return j.Status == string(queue.StatusRunning) && j.Owner == a.name, err
	})
	a.signal(t, syscall.SIGKILL)
	killed := time.Now()
	<-a.done
	b := r.startAgent("killed-b", 1)

	// The rescue: within the lease (2s) + one heartbeat (1s) + B's rescue interval (1s),
	// about 4s; the deadline is generous for a loaded machine.
	waitFor(t, 15*time.Second, "job rescued by agent B", func() (bool, error) {
		j, err := r.job(ctx, id)
		return j.Failures == 1, err
	})
	rescued := time.Since(killed)
	// A rescued job is due at once (an agent died, not the job: no backoff), and the
	// rescuing agent claims right after its rescue.
	waitFor(t, 15*time.Second, "job running again on agent B", func() (bool, error) {
		j, err := r.job(ctx, id)
		return j.Attempt == 2 && j.Owner == b.name, err
	})
	rerun := time.Since(killed)
	waitFor(t, 30*time.Second, "job succeeded", func() (bool, error) {
		j, err := r.job(ctx, id)
		return queue.Status(j.Status).Terminal(), err
	})
	j, err := r.job(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != string(queue.StatusSucceeded) || j.Attempt != 2 || j.Failures != 1 || j.ResultAttempt != 2 || j.Owner != b.name {
		t.Errorf("job %d: %+v; want succeeded, attempt 2, failures 1, result attempt 2, owner %s", id, j, b.name)
	}
	evs, err := r.events(ctx, "job_id = ?", id)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var rescueAt, rerunAt time.Time
	for _, e := range evs {
		switch {
		case e.Event == queue.EventRetryScheduled:
			rescueAt = e.At
		case e.Event == queue.EventRunning && e.Attempt == 2:
			rerunAt = e.At
		}
		if e.Event != queue.EventProgress {
			got = append(got, fmt.Sprintf("%s/%d/%s", e.Event, e.Attempt, e.Agent))
		}
	}
	if gap := rerunAt.Sub(rescueAt); gap > 3*time.Second {
		t.Errorf("rescue to rerun took %s in the events; a rescued job must be due at once", gap)
	}
	want := []string{"queued/0/", "running/1/killed-a", "retry_scheduled/1/killed-a", "running/2/killed-b", "succeeded/2/killed-b"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events of job %d:\n got %v\nwant %v", id, got, want)
	}
	res, err := r.rpt("get", strconv.FormatInt(id, 10), "--csv")
	if err != nil {
		t.Fatal(err)
	}
	if res != "slept\n0\n" {
		t.Errorf("rpt get %d --csv = %q, want %q", id, res, "slept\n0\n")
	}
	t.Logf("job %d: %s killed; rescued after %.1fs (lease %s + heartbeat 1s + rescue interval 1s), "+
		"running again on %s after %.1fs, %.1fs after the rescue (in the events)",
		id, a.name, rescued.Seconds(), agentLease, b.name, rerun.Seconds(), rerunAt.Sub(rescueAt).Seconds())
}

// An agent paused (SIGSTOP) past its lease, whose job another agent rescued, wakes up
// and cannot complete the job, write result chunks or progress: every write of its
// attempt is fenced out.
func TestPausedAgentIsFencedOut(t *testing.T) {
	t.Parallel()
	db := testenv.MariaDB(t)
	r := newRig(t, db, db)
	// 40 rows over about 4s.
	def := r.define(`name: drip
source: db
params:
  - {name: s, type: decimal}
max_attempts: 3
sql: SELECT seq AS n, SLEEP(:s) AS slept FROM seq_1_to_40
`)
	a := r.startAgent("paused-a", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := r.enqueue(ctx, def, map[string]string{"s": "0.1"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "job running on agent A", func() (bool, error) {
		j, err := r.job(ctx, id)
		return j.Status == string(queue.StatusRunning) && j.Owner == a.name, err
	})
	time.Sleep(500 * time.Millisecond) // mid-query
	a.signal(t, syscall.SIGSTOP)
	b := r.startAgent("paused-b", 1)
	waitFor(t, 45*time.Second, "job rescued and running on agent B", func() (bool, error) {
		j, err := r.job(ctx, id)
		return j.Attempt == 2 && j.Status == string(queue.StatusRunning) && j.Owner == b.name, err
	})
	// A wakes while B still runs the job: A's query has long finished on the server, so
	// A goes straight on to write its result and complete.
	a.signal(t, syscall.SIGCONT)
	waitFor(t, 30*time.Second, "agent A noticing its lost lease", func() (bool, error) {
		return strings.Contains(a.logText(), "lease lost"), nil
	})
	waitFor(t, 30*time.Second, "job finished", func() (bool, error) {
		j, err := r.job(ctx, id)
		return queue.Status(j.Status).Terminal(), err
	})

	j, err := r.job(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != string(queue.StatusSucceeded) || j.Attempt != 2 || j.ResultAttempt != 2 || j.Rows != 40 || j.Owner != b.name {
		t.Errorf("job %d: %+v; want succeeded by %s at attempt 2, result attempt 2, 40 rows", id, j, b.name)
	}
	var chunkAttempts []int
	rows, err := r.db.QueryContext(ctx, "SELECT DISTINCT attempt FROM rpt_results WHERE job_id = ? ORDER BY attempt", id)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		chunkAttempts = append(chunkAttempts, n)
	}
	rows.Close()
	if fmt.Sprint(chunkAttempts) != "[2]" {
		t.Errorf("result chunks of job %d belong to attempts %v, want only [2] (B's)", id, chunkAttempts)
	}
	evs, err := r.events(ctx, "job_id = ?", id)
	if err != nil {
		t.Fatal(err)
	}
	var bRunning int64
	succeeded := 0
	for _, e := range evs {
		if e.Event == queue.EventRunning && e.Attempt == 2 {
			bRunning = e.Seq
		}
		if e.Event == queue.EventSucceeded {
			succeeded++
		}
	}
	if bRunning == 0 || succeeded != 1 {
		t.Errorf("events of job %d: B's running seq %d, %d succeeded events; want B's running and 1 succeeded", id, bRunning, succeeded)
	}
	for _, e := range evs {
		if e.Seq > bRunning && (e.Attempt != 2 || e.Agent != b.name) {
			t.Errorf("event after B's claim not of B's attempt: %+v", e)
		}
	}
	log := a.logText()
	if strings.Contains(log, `"msg":"job succeeded"`) {
		t.Errorf("agent A logged a success for the job it lost")
	}
	if a.exited() {
		t.Errorf("agent A exited after waking (%v)", a.err)
	}
	out, err := r.rpt("get", strconv.FormatInt(id, 10), "--csv")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(out, "\n"); lines != 41 || !strings.HasPrefix(out, "n,slept\n1,0\n") {
		t.Errorf("rpt get %d --csv: %d lines starting %q, want header + 40 rows", id, lines, tail(out, 40))
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "lease lost") || strings.Contains(line, "self-fenc") {
			t.Logf("agent A: %s", line)
		}
	}
}
