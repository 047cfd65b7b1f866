package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"rpt/internal/notify"
	"rpt/internal/queue"
	"rpt/internal/testenv"
)

// mosquittoServer is a Mosquitto broker of one test's own, which the test may kill and
// start again on the same port: the shared broker must never be restarted.
type mosquittoServer struct {
	bin  string
	port int
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startPrivateMosquitto starts mosquitto on a free port of 127.0.0.1 (no config file:
// local-only, anonymous). The test skips when mosquitto is not installed.
func startPrivateMosquitto(t *testing.T) *mosquittoServer {
	t.Helper()
	bin, ok := lookTool("mosquitto")
	if !ok {
		t.Skip("mosquitto not installed; skipping the broker-kill test")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	m := &mosquittoServer{bin: bin, port: port, log: filepath.Join(t.TempDir(), "mosquitto.log")}
	m.start(t)
	t.Cleanup(func() {
		m.kill()
		if t.Failed() {
			b, _ := os.ReadFile(m.log)
			t.Logf("mosquitto log (last 4 KiB):\n%s", tail(string(b), 4<<10))
		}
	})
	return m
}

func (m *mosquittoServer) url() string { return "tcp://127.0.0.1:" + strconv.Itoa(m.port) }

// start runs the broker and waits until it accepts connections.
func (m *mosquittoServer) start(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(m.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	m.cmd = exec.Command(m.bin, "-p", strconv.Itoa(m.port), "-v")
	m.cmd.Stdout, m.cmd.Stderr = f, f
	if err := m.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start mosquitto: %v", err)
	}
	m.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		f.Close()
		close(done)
	}(m.cmd, m.done)
	waitFor(t, 15*time.Second, "mosquitto accepting connections", func() (bool, error) {
		select {
		case <-m.done:
			return false, fmt.Errorf("mosquitto exited (port %d taken?)", m.port)
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.port), time.Second)
		if err != nil {
			return false, err
		}
		c.Close()
		return true, nil
	})
}

// kill ends the broker with SIGKILL, as a crash would: no clean goodbye to clients.
func (m *mosquittoServer) kill() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
}

// startMQTTAgent is startAgentLease for an agent that also talks to a broker (wake-ups,
// cancels, presence, the events relay) under the topic prefix.
func (r *rig) startMQTTAgent(name string, concurrency int, poll time.Duration, brokerURL, prefix string) *agent {
	r.t.Helper()
	return r.spawnAgent(name, []string{"--mqtt", brokerURL, "--mqtt-prefix", prefix}, concurrency, 10*time.Second, poll)
}

// The broker is killed (SIGKILL) while two agents work through a batch, more jobs are
// submitted while it is down, and it comes back on the same port a few seconds later.
// No job is lost or run twice: every job succeeds with exactly one running and one
// succeeded event; the agents never exit; after the restart they are present again
// (their retained presence is republished on reconnect) and their relays publish the
// events of new jobs, which a subscriber receives over MQTT.
func TestMqttBrokerKilledMidRunLosesNoJob(t *testing.T) {
	db := testenv.MariaDB(t)
	broker := startPrivateMosquitto(t)
	r := newRig(t, db, db)
	def := r.define(`name: napper
source: db
params:
  - {name: n, type: int}
max_attempts: 3
sql: SELECT SLEEP(0.3) AS s, :n AS n
`)
	var p [4]byte
	rand.Read(p[:])
	prefix := "rpt-e2e-" + hex.EncodeToString(p[:])

	// A long poll: while the broker is up, agents are woken by it; while it is down they
	// still claim, at this slower pace.
	const poll = time.Second
	agents := []*agent{
		r.startMQTTAgent("mq-1", 2, poll, broker.url(), prefix),
		r.startMQTTAgent("mq-2", 2, poll, broker.url(), prefix),
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var ids []int64
	submit := func(n int) {
		t.Helper()
		for range n {
			id, err := r.enqueue(ctx, def, map[string]string{"n": strconv.Itoa(len(ids) + 1)})
			if err != nil {
				t.Fatalf("enqueue: %v", err)
			}
			ids = append(ids, id)
		}
	}
	succeeded := func() (int, error) {
		var n int
		err := r.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM rpt_jobs WHERE status = 'succeeded'").Scan(&n)
		return n, err
	}

	// First batch; kill the broker once some, not all, have finished.
	submit(30)
	waitFor(t, 60*time.Second, "5 jobs succeeded", func() (bool, error) {
		n, err := succeeded()
		return n >= 5, err
	})
	broker.kill()
	if n, err := succeeded(); err != nil || n >= len(ids) {
		t.Fatalf("the broker was to die mid-run, but %d of %d jobs had already succeeded (%v)", n, len(ids), err)
	}

	// More work while the broker is down: nothing may block on it.
	submit(20)
	time.Sleep(3 * time.Second) // an outage of a few seconds, not a timing assertion
	for _, a := range agents {
		if a.exited() {
			t.Fatalf("agent %s exited while the broker was down: %v", a.name, a.err)
		}
	}
	broker.start(t)

	// After the restart: a watcher sees both agents up again and receives the events of
	// new jobs over MQTT.
	client, err := notify.Connect(ctx, notify.Options{URL: broker.url(), Prefix: prefix, ClientID: notify.NewClientID("rpt-e2e")})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var mu sync.Mutex
	up := map[string]bool{}
	mqttDone := map[int64]bool{} // jobs whose succeeded event came over MQTT
	client.SubscribePresence(func(pr notify.Presence) {
		mu.Lock()
		defer mu.Unlock()
		up[pr.Agent] = pr.State == notify.PresenceUp
	})
	client.SubscribeJobs(nil, def.Name, func(ev notify.Event) {
		if ev.Event.Event == queue.EventSucceeded {
			mu.Lock()
			mqttDone[ev.JobID] = true
			mu.Unlock()
		}
	})
	waitFor(t, 30*time.Second, "both agents present again after the broker restart", func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return up["mq-1"] && up["mq-2"], nil
	})
	waitFor(t, 10*time.Second, "the watcher connected", func() (bool, error) { return client.Connected(), nil })
	first := len(ids)
	submit(5)
	client.PublishWake()

	r.waitFinished(ctx, 120*time.Second, "all jobs finished")
	waitFor(t, 30*time.Second, "succeeded events of the jobs submitted after the restart over MQTT", func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids[first:] {
			if !mqttDone[id] {
				return false, fmt.Errorf("job %d: no succeeded event over MQTT yet", id)
			}
		}
		return true, nil
	})

	jobs, err := r.jobs(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != len(ids) {
		t.Fatalf("%d jobs in the queue, want %d", len(jobs), len(ids))
	}
	for _, j := range jobs {
		if j.Status != string(queue.StatusSucceeded) || j.Attempt != 1 {
			t.Errorf("job %d: status %s attempt %d, want succeeded at attempt 1", j.ID, j.Status, j.Attempt)
		}
	}
	events, err := r.events(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	running, done := map[int64]int{}, map[int64]int{}
	for _, e := range events {
		switch e.Event {
		case queue.EventRunning:
			running[e.JobID]++
		case queue.EventSucceeded:
			done[e.JobID]++
		}
	}
	for _, id := range ids {
		if running[id] != 1 || done[id] != 1 {
			t.Errorf("job %d: %d running and %d succeeded events, want 1 and 1", id, running[id], done[id])
		}
	}
	for _, a := range agents {
		if a.exited() {
			t.Errorf("agent %s exited: %v", a.name, a.err)
		}
	}
}
