package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"rpt/internal/notify"
	"rpt/internal/queue"
	"rpt/internal/testenv"
)

// chaosSize is one size of the chaos run: rounds of jobs, each round followed by one
// fault, the faults taken in turn.
type chaosSize struct {
	rounds     int
	shortPer   int // SLEEP(0) jobs per round
	longPer    int // SLEEP(1.5) jobs per round
	agents     int
	concurrent int
}

// The CI size runs about 400 short jobs and 15 long ones through one of each fault;
// RPT_CHAOS=full runs thousands of jobs through every fault twelve times.
var (
	chaosCI   = chaosSize{rounds: 5, shortPer: 75, longPer: 3, agents: 4, concurrent: 3}
	chaosFull = chaosSize{rounds: 60, shortPer: 250, longPer: 4, agents: 4, concurrent: 3}
)

// The faults, in the order the rounds inject them.
const (
	faultKillAgent  = "sigkill-agent"
	faultZombie     = "sigstop-agent"
	faultRestartDB  = "restart-queue-db"
	faultKillAgent2 = "sigkill-agent-2"
	faultBroker     = "restart-mqtt-broker"
)

var chaosFaults = []string{faultKillAgent, faultZombie, faultRestartDB, faultKillAgent2, faultBroker}

// TestChaos runs jobs through agents that are SIGKILLed and replaced, paused past their
// lease (zombies) and resumed, and a queue database that is killed (SIGKILL) and started
// again, and an MQTT broker that is killed (SIGKILL) and started again. The queue is a private MariaDB the test may kill; the source is the shared one,
// which stays up, so that every execution is recorded there independently of rpt: each
// job's query names a marker of its own and counts the other queries with that marker
// running on the source when it starts. It asserts: every job ends succeeded, none is
// lost, exactly one succeeded event per job at its result attempt, no stored result
// comes from a run that overlapped another run of the same job, attempts and failures
// match the events, no agent crashes, and after the broker's restarts the agents'
// relays publish events again. RPT_CHAOS=full is the long run.
func TestChaos(t *testing.T) {
	size := chaosCI
	if os.Getenv("RPT_CHAOS") == "full" {
		size = chaosFull
	}
	srcDSN := testenv.MariaDB(t)
	began := time.Now()
	srv, r, srcDB := privateQueueRig(t, srcDSN)
	// Long jobs sleep less than the lease: the query of a SIGKILLed agent, which the
	// server goes on running, has ended before the lease can expire, so a rescued run
	// that still found it running would be a real overlap.
	checkDetector(t, srcDSN, guardSQL("e2e-chaos-"+srcDB+"-probe-end"))

	// The agents talk to a private broker (wake-ups, cancels, presence, the events
	// relay), which the broker fault kills and starts again.
	broker := startPrivateMosquitto(t)
	r.mqtt, r.mqttPrefix = broker.url(), "chaos-"+srcDB

	var live []*agent
	started := 0
	startOne := func() *agent {
		a := r.startAgent(fmt.Sprintf("chaos-%d", started), size.concurrent)
		started++
		live = append(live, a)
		return a
	}
	for range size.agents {
		startOne()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))

	jobs := 0
	long := map[int64]bool{}
	enqueue := func(sleep string) int64 {
		t.Helper()
		def := r.define(fmt.Sprintf("name: chaos\nsource: db\nparams:\n  - {name: s, type: decimal}\nmax_attempts: 10\nsql: %q\n",
			guardSQL(fmt.Sprintf("e2e-chaos-%s-%d-end", srcDB, jobs))))
		id, err := r.enqueue(ctx, def, map[string]string{"s": sleep})
		if err != nil {
			t.Fatalf("enqueue job %d: %v", jobs, err)
		}
		jobs++
		if sleep != "0" {
			long[id] = true
		}
		return id
	}
	// runningLong waits for a long job to run and returns its owner.
	runningLong := func(what string) (owner string, held []jobRow) {
		t.Helper()
		waitFor(t, 60*time.Second, what, func() (bool, error) {
			js, err := r.jobs(ctx, "status = 'running' AND lease_owner IS NOT NULL")
			if err != nil {
				return false, err
			}
			// A killed agent's job still names it until it is rescued.
			var owners []string
			for _, j := range js {
				if long[j.ID] && slices.ContainsFunc(live, func(a *agent) bool { return a.name == j.Owner && !a.exited() }) {
					owners = append(owners, j.Owner)
				}
			}
			if len(owners) == 0 {
				return false, nil
			}
			owner = owners[rng.IntN(len(owners))]
			held = held[:0]
			for _, j := range js {
				if j.Owner == owner {
					held = append(held, j)
				}
			}
			return true, nil
		})
		return owner, held
	}
	byName := func(name string) *agent {
		for _, a := range live {
			if a.name == name {
				return a
			}
		}
		t.Fatalf("no live agent %s", name)
		return nil
	}

	type kill struct {
		at   time.Time
		held []jobRow // running on the agent just before the kill
	}
	var kills []kill
	injected := map[string]int{}
	zombies := 0
	for round := range size.rounds {
		for i := range size.shortPer + size.longPer {
			// Long jobs spread among the short ones.
			if i%(size.shortPer/size.longPer+1) == 0 {
				enqueue("1.5")
			} else {
				enqueue("0")
			}
		}
		fault := chaosFaults[round%len(chaosFaults)]
		switch fault {
		case faultKillAgent, faultKillAgent2:
			owner, held := runningLong("a long job running before a SIGKILL")
			victim := byName(owner)
			victim.signal(t, syscall.SIGKILL)
			kills = append(kills, kill{at: time.Now(), held: held})
			<-victim.done
			live = removeAgent(live, victim)
			startOne()
		case faultZombie:
			owner, held := runningLong("a long job running before a SIGSTOP")
			z := byName(owner)
			z.signal(t, syscall.SIGSTOP)
			// Paused until another agent has rescued and claimed one of its jobs, so its
			// late writes meet a new lease.
			waitFor(t, 60*time.Second, "a paused agent's job running elsewhere", func() (bool, error) {
				for _, h := range held {
					j, err := r.job(ctx, h.ID)
					if err != nil {
						return false, err
					}
					if j.Attempt > h.Attempt || queue.Status(j.Status).Terminal() {
						return true, nil
					}
				}
				return false, nil
			})
			z.signal(t, syscall.SIGCONT)
			zombies++
		case faultBroker:
			runningLong("a long job running before the broker restart")
			broker.kill()
			time.Sleep(2 * time.Second)
			broker.start(t)
		case faultRestartDB:
			runningLong("a long job running before the queue database restart")
			srv.kill(t)
			time.Sleep(2 * time.Second)
			srv.start(t)
			waitFor(t, 30*time.Second, "the test's queue pool reconnected", func() (bool, error) {
				return r.db.PingContext(ctx) == nil, nil
			})
		}
		injected[fault]++
	}

	// After the last broker restart: a watcher gets the events of new jobs over MQTT,
	// so the agents' relays are publishing again.
	watcher, err := notify.Connect(ctx, notify.Options{URL: broker.url(), Prefix: r.mqttPrefix, ClientID: notify.NewClientID("rpt-e2e")})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	var mu sync.Mutex
	overMQTT := map[int64]bool{}
	watcher.SubscribeJobs(nil, "chaos", func(ev notify.Event) {
		if ev.Event.Event == queue.EventSucceeded {
			mu.Lock()
			overMQTT[ev.JobID] = true
			mu.Unlock()
		}
	})
	waitFor(t, 30*time.Second, "the watcher connected", func() (bool, error) { return watcher.Connected(), nil })
	var late []int64
	for range 20 {
		late = append(late, enqueue("0"))
	}
	watcher.PublishWake()

	r.waitFinished(ctx, 10*time.Minute, "all jobs finished")

	waitFor(t, 30*time.Second, "the succeeded events of the jobs after the last broker restart over MQTT", func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range late {
			if !overMQTT[id] {
				return false, fmt.Errorf("job %d: no succeeded event over MQTT yet", id)
			}
		}
		return true, nil
	})

	all, err := r.jobs(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := r.events(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	byJob := map[int64][]eventRow{}
	counts := map[string]int{}
	for _, e := range evs {
		byJob[e.JobID] = append(byJob[e.JobID], e)
		counts[e.Event]++
	}
	if len(all) != jobs {
		t.Errorf("%d jobs in the queue, %d submitted: jobs lost or made up", len(all), jobs)
	}
	duplicates, retried, attemptsTotal := 0, 0, 0
	for _, j := range all {
		if j.Status != string(queue.StatusSucceeded) {
			t.Errorf("job %d ended %s (attempt %d, failures %d), want succeeded", j.ID, j.Status, j.Attempt, j.Failures)
			continue
		}
		running, succeeded, failures := 0, 0, 0
		for _, e := range byJob[j.ID] {
			switch e.Event {
			case queue.EventRunning:
				running++
			case queue.EventSucceeded:
				succeeded++
				if e.Attempt != j.ResultAttempt {
					t.Errorf("job %d: succeeded event of attempt %d, result attempt %d", j.ID, e.Attempt, j.ResultAttempt)
				}
			case queue.EventRetryScheduled, queue.EventFailed:
				failures++
			}
		}
		if succeeded != 1 {
			t.Errorf("job %d: %d succeeded events, want 1", j.ID, succeeded)
		}
		if running != j.Attempt {
			t.Errorf("job %d: attempt %d but %d running events", j.ID, j.Attempt, running)
		}
		if failures != j.Failures {
			t.Errorf("job %d: %d failures counted but %d retry_scheduled/failed events", j.ID, j.Failures, failures)
		}
		if j.Attempt > 1 {
			retried++
		}
		iv := attempts(byJob[j.ID])
		attemptsTotal += len(iv)
		if n := maxOverlap(iv); n > 1 {
			t.Errorf("job %d: %d attempts overlapped in the events: %+v", j.ID, n, iv)
		}
		others, err := resultOthers(ctx, r, j)
		if err != nil {
			t.Errorf("job %d: read result: %v", j.ID, err)
		} else if others != 0 {
			duplicates++
			t.Errorf("job %d: the stored result (attempt %d) ran while %d other runs of the job ran on the source", j.ID, j.ResultAttempt, others)
		}
	}

	// Rescue delay: from a SIGKILL to the retry_scheduled event of each job the agent
	// was running (a job that finished between the look and the kill has none).
	var worstRescue time.Duration
	rescued := 0
	for _, k := range kills {
		for _, h := range k.held {
			for _, e := range byJob[h.ID] {
				if e.Event == queue.EventRetryScheduled && e.Attempt == h.Attempt {
					rescued++
					worstRescue = max(worstRescue, e.At.Sub(k.at))
				}
			}
		}
	}
	if len(kills) > 0 && rescued == 0 {
		t.Errorf("no job of a SIGKILLed agent was rescued: the kill fault exercised nothing")
	}
	fenced, mqttLost := 0, 0
	for _, a := range live {
		if a.exited() {
			t.Errorf("agent %s exited during the chaos run: %v", a.name, a.err)
		}
		fenced += strings.Count(a.logText(), "lease lost") + strings.Count(a.logText(), "self-fencing")
		mqttLost += strings.Count(a.logText(), "mqtt connection lost")
	}
	if injected[faultBroker] > 0 && mqttLost == 0 {
		t.Errorf("no agent logged a lost broker connection: the broker fault exercised nothing")
	}
	t.Logf("chaos figures: jobs %d (%d long), attempts %d, jobs retried %d, events %v", len(all), len(long), attemptsTotal, retried, counts)
	t.Logf("chaos figures: faults injected %v (agents started %d), zombies %d, jobs rescued after SIGKILL %d, worst rescue delay %.1fs (lease %s), lease-lost/self-fencing log lines %d, lost broker connections logged %d",
		injected, started, zombies, rescued, worstRescue.Seconds(), agentLease, fenced, mqttLost)
	t.Logf("chaos figures: duplicates found %d; took %.1fs", duplicates, time.Since(began).Seconds())
}

func removeAgent(as []*agent, gone *agent) []*agent {
	out := as[:0]
	for _, a := range as {
		if a != gone {
			out = append(out, a)
		}
	}
	return out
}
