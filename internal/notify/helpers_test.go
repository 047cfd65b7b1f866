package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"rpt/internal/queue"
)

// EnvMQTT names a real broker (tcp://127.0.0.1:1883) the tests also run against; unset,
// those cases are skipped. The embedded broker is always tested.
const EnvMQTT = "RPT_TEST_MQTT"

// waitLimit bounds every wait for a message: a failure, not a timing assertion.
const waitLimit = 15 * time.Second

type brokerCase struct {
	name string
	url  func(t *testing.T) string
}

// brokers is the table every broker test runs over.
func brokers() []brokerCase {
	return []brokerCase{
		{"embedded", func(t *testing.T) string { return agentURL(startBroker(t, "127.0.0.1:0")) }},
		{"mosquitto", func(t *testing.T) string {
			u := os.Getenv(EnvMQTT)
			if u == "" {
				t.Skip(EnvMQTT + " not set")
			}
			return u
		}},
	}
}

// The embedded broker's passwords in tests (a restart on the same port keeps them).
const (
	testAgentPassword  = "agent-secret-for-tests"
	testClientPassword = "client-secret-for-tests"
)

func testBrokerOptions() BrokerOptions {
	return BrokerOptions{AgentPassword: testAgentPassword, ClientPassword: testClientPassword, Logger: quietLogger()}
}

// agentURL and clientURL are b's URL with a role's credentials.
func agentURL(b *Broker) string {
	return "tcp://" + AgentUser + ":" + testAgentPassword + "@" + b.Addr()
}
func clientURL(b *Broker) string {
	return "tcp://" + ClientUser + ":" + testClientPassword + "@" + b.Addr()
}

func startBroker(t *testing.T, addr string) *Broker {
	t.Helper()
	return startBrokerWith(t, addr, testBrokerOptions())
}

func startBrokerWith(t *testing.T, addr string, o BrokerOptions) *Broker {
	t.Helper()
	b, err := StartBroker(context.Background(), addr, o)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// testPrefix isolates a test's topics on a shared broker.
func testPrefix(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "rpt-test-" + hex.EncodeToString(b[:])
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func connect(t *testing.T, o Options) *Client {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	if o.RetryInterval == 0 {
		o.RetryInterval = 200 * time.Millisecond
	}
	c, err := Connect(context.Background(), o)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// waitConnected waits until c is connected with its subscriptions in place.
func waitConnected(t *testing.T, c *Client) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		ch := c.stateChanged()
		if c.Connected() {
			return
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("client %s never connected", c.opts.ClientID)
		}
	}
}

// recv waits for the next value on ch.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("no %s within %s", what, waitLimit)
		var zero T
		return zero
	}
}

// fakeEvents is an in-memory events table whose rows become visible when committed, in
// any order, as with concurrent MySQL transactions.
type fakeEvents struct {
	mu     sync.Mutex
	rows   []queue.Event
	reads  int
	failOn bool
}

func (f *fakeEvents) commit(evs ...queue.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows = append(f.rows, evs...)
	sort.Slice(f.rows, func(i, j int) bool { return f.rows[i].Seq < f.rows[j].Seq })
}

func (f *fakeEvents) setFailing(v bool) {
	f.mu.Lock()
	f.failOn = v
	f.mu.Unlock()
}

func (f *fakeEvents) EventList(_ context.Context, jobID int64, afterSeq int64, limit int) ([]queue.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.failOn {
		return nil, queue.ErrUnavailable
	}
	var out []queue.Event
	for _, e := range f.rows {
		if e.Seq <= afterSeq || (jobID != 0 && e.JobID != jobID) {
			continue
		}
		out = append(out, e)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out, nil
}

// waitReads waits until src was read n times.
func waitReads(t *testing.T, src *fakeEvents, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		src.mu.Lock()
		reads := src.reads
		src.mu.Unlock()
		if reads >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("source read %d times, want %d", reads, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ev makes an event of job id; status follows from the event name.
func ev(seq, id int64, report, name string) queue.Event {
	status := map[string]queue.Status{
		queue.EventQueued: queue.StatusQueued, queue.EventRunning: queue.StatusRunning,
		queue.EventProgress: queue.StatusRunning, queue.EventRetryScheduled: queue.StatusQueued,
		queue.EventReleased: queue.StatusQueued, queue.EventSucceeded: queue.StatusSucceeded,
		queue.EventFailed: queue.StatusFailed, queue.EventCancelled: queue.StatusCancelled,
		queue.EventCancelRequested: queue.StatusRunning,
	}[name]
	return queue.Event{Seq: seq, JobID: id, Report: report, Event: name, Status: status,
		Attempt: 1, Agent: "agent-1", Rows: seq * 10, At: time.Now().UTC().Truncate(time.Microsecond)}
}

func seqsOf(evs []queue.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Seq
	}
	return out
}
