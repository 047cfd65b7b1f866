package e2e

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/testenv"
)

// A rolling update under load: each of three agents in turn gets SIGTERM while a
// replacement starts. Each stopped agent exits 0 soon after its grace period; the
// 3-second job it was running when the grace period ran out is released (a released
// event, no failure counted) and finishes on another agent; no job fails and every job
// succeeds exactly once. The long job is a SLEEP(3), so the kills at the end of the
// grace period meet MariaDB's slow wake-up of SLEEP() (up to 2s when two kills come
// together); the agent's release phase (at least 5s) covers it even with the 2s test
// lease.
func TestRollingUpdateLosesNothing(t *testing.T) {
	t.Parallel()
	db := testenv.MariaDB(t)
	r := newRig(t, db, db)
	short := r.define(`name: short
source: db
params:
  - {name: n, type: int}
max_attempts: 3
sql: SELECT :n AS n
`)
	long := r.define(`name: long
source: db
params:
  - {name: n, type: int}
max_attempts: 3
sql: SELECT :n AS n, SLEEP(3) AS slept
`)
	const agents, concurrency, shortJobs, longPerRound = 3, 2, 200, 8
	live := make([]*agent, 0, agents)
	for i := range agents {
		live = append(live, r.startAgent(fmt.Sprintf("roll-%d", i), concurrency))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	n, longJobs := 0, 0
	enqueue := func(def string, count int) {
		t.Helper()
		d := short
		if def == "long" {
			d = long
			longJobs += count
		}
		for range count {
			n++
			if _, err := r.enqueue(ctx, d, map[string]string{"n": strconv.Itoa(n)}); err != nil {
				t.Fatalf("enqueue %s %d: %v", def, n, err)
			}
		}
	}

	type rotation struct {
		victim   *agent
		held     []int64 // long jobs the victim ran when it got SIGTERM
		stopped  time.Duration
		replaced string
	}
	var rounds []rotation
	for round := range agents {
		victim := live[round]
		// More long jobs than the agents have slots: soon every slot, the victim's
		// among them, runs one.
		enqueue("long", longPerRound)
		enqueue("short", shortJobs/agents)
		// A long job the victim claimed less than 0.8s ago still has over 2s to run
		// when SIGTERM comes: more than the 1s grace, so it must be released.
		var held []int64
		waitFor(t, 60*time.Second, "agent "+victim.name+" starting a long job", func() (bool, error) {
			js, err := r.jobs(ctx, "status = 'running' AND report = 'long' AND lease_owner = ? "+
				"AND started_at > UTC_TIMESTAMP(6) - INTERVAL 800000 MICROSECOND", victim.name)
			if err != nil {
				return false, err
			}
			held = held[:0]
			for _, j := range js {
				held = append(held, j.ID)
			}
			if len(held) > 0 {
				return true, nil
			}
			var queued int
			if err := r.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM rpt_jobs WHERE status = 'queued' AND report = 'long'").Scan(&queued); err != nil {
				return false, err
			}
			if queued == 0 {
				enqueue("long", 2)
			}
			return false, nil
		})
		victim.signal(t, syscall.SIGTERM)
		termAt := time.Now()
		repl := r.startAgent(fmt.Sprintf("roll-%d", agents+round), concurrency)
		live = append(live, repl)
		// The agent's own bound is grace + its release phase (5s with this lease) +
		// 5s; a margin on top for a loaded machine. A deadline, not a measurement.
		select {
		case <-victim.done:
		case <-time.After(agentGrace + 25*time.Second):
			t.Fatalf("agent %s still running %s after SIGTERM", victim.name, time.Since(termAt))
		}
		stopped := time.Since(termAt)
		if victim.err != nil {
			t.Errorf("agent %s exited with %v after SIGTERM, want exit 0", victim.name, victim.err)
		}
		rounds = append(rounds, rotation{victim: victim, held: append([]int64(nil), held...), stopped: stopped, replaced: repl.name})
	}
	enqueue("short", shortJobs-agents*(shortJobs/agents))

	all := r.waitFinished(ctx, 90*time.Second, "all jobs finished")
	if want := shortJobs + longJobs; len(all) != want {
		t.Errorf("%d jobs, want %d", len(all), want)
	}
	for _, j := range all {
		if j.Status != string(queue.StatusSucceeded) || j.Failures != 0 || j.ResultAttempt != j.Attempt {
			t.Errorf("job %d: %s, attempt %d, failures %d, result attempt %d; want succeeded with 0 failures, result of the last attempt",
				j.ID, j.Status, j.Attempt, j.Failures, j.ResultAttempt)
		}
	}
	evs, err := r.events(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	succeeded := map[int64][]eventRow{}
	released := map[int64][]eventRow{}
	counts := map[string]int{}
	for _, e := range evs {
		counts[e.Event]++
		switch e.Event {
		case queue.EventSucceeded:
			succeeded[e.JobID] = append(succeeded[e.JobID], e)
		case queue.EventReleased:
			released[e.JobID] = append(released[e.JobID], e)
		case queue.EventFailed, queue.EventRetryScheduled, queue.EventCancelled:
			t.Errorf("job %d: unexpected %s event (attempt %d, agent %s)", e.JobID, e.Event, e.Attempt, e.Agent)
		}
	}
	for _, j := range all {
		if len(succeeded[j.ID]) != 1 {
			t.Errorf("job %d: %d succeeded events, want exactly 1", j.ID, len(succeeded[j.ID]))
		}
	}
	byID := map[int64]jobRow{}
	for _, j := range all {
		byID[j.ID] = j
	}
	for _, rot := range rounds {
		for _, id := range rot.held {
			var byVictim bool
			for _, e := range released[id] {
				byVictim = byVictim || e.Agent == rot.victim.name
			}
			if !byVictim {
				t.Errorf("job %d: running on %s at SIGTERM (3s query, 1s grace) but no released event by it (released: %+v)",
					id, rot.victim.name, released[id])
				continue
			}
			if s := succeeded[id]; len(s) == 1 && s[0].Agent == rot.victim.name {
				t.Errorf("job %d: released by %s but its success is recorded by %s too", id, rot.victim.name, s[0].Agent)
			}
			if j := byID[id]; j.Failures != 0 {
				t.Errorf("job %d: released on shutdown counted %d failures, want 0", id, j.Failures)
			}
		}
		t.Logf("%s: SIGTERM with %d long jobs running (%v), exited 0 after %.1fs (grace %s); replacement %s",
			rot.victim.name, len(rot.held), rot.held, rot.stopped.Seconds(), agentGrace, rot.replaced)
	}
	t.Logf("%d jobs, all succeeded once; events: %v", len(all), counts)
}
