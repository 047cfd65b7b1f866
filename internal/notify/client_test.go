package notify

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"rpt/internal/queue"
)

func lifecycle(id int64, report string) []queue.Event {
	names := []string{queue.EventQueued, queue.EventRunning, queue.EventProgress, queue.EventProgress,
		queue.EventRetryScheduled, queue.EventRunning, queue.EventProgress, queue.EventSucceeded}
	out := make([]queue.Event, len(names))
	for i, n := range names {
		out[i] = ev(int64(100*id+int64(i)+1), id, report, n)
	}
	return out
}

func TestLifecycleEventsArriveInOrder(t *testing.T) {
	t.Parallel()
	for _, bc := range brokers() {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			u := bc.url(t)
			prefix := testPrefix(t)
			legacy := prefix + "-node1-report-complete"
			sub := connect(t, Options{URL: u, Prefix: prefix})
			pub := connect(t, Options{URL: u, Prefix: prefix, LegacyTopic: legacy, Agent: "agent-1"})
			waitConnected(t, sub)

			byJob := make(chan Event, 100)
			byReport := make(chan Event, 100)
			sub.SubscribeJobs([]int64{7}, "", func(e Event) { byJob <- e })
			sub.SubscribeJobs(nil, "trial-balance", func(e Event) { byReport <- e })
			legacyCh := make(chan LegacyCompletion, 10)
			raw := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(u).SetClientID(NewClientID(prefix)))
			if tok := raw.Connect(); !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
				t.Fatalf("raw connect: %v", tok.Error())
			}
			defer raw.Disconnect(100)
			tok := raw.Subscribe(legacy, 1, func(_ mqtt.Client, m mqtt.Message) {
				var lc LegacyCompletion
				if err := json.Unmarshal(m.Payload(), &lc); err == nil {
					legacyCh <- lc
				}
			})
			if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
				t.Fatalf("legacy subscribe: %v", tok.Error())
			}

			want := lifecycle(7, "trial-balance")
			for _, e := range want {
				pub.PublishEvent(EventFrom(e))
			}
			for name, ch := range map[string]chan Event{"job topic": byJob, "report topic": byReport} {
				var got []queue.Event
				for range want {
					e := recv(t, ch, name+" event")
					got = append(got, e.Event)
					if e.Event.Event == queue.EventSucceeded && (e.Result == nil || *e.Result != (ResultRef{Job: 7, Attempt: 1})) {
						t.Errorf("%s: succeeded result = %+v", name, e.Result)
					}
				}
				if !reflect.DeepEqual(seqsOf(got), seqsOf(want)) {
					t.Errorf("%s: seqs = %v, want %v", name, seqsOf(got), seqsOf(want))
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: events differ:\n got %+v\nwant %+v", name, got, want)
				}
			}
			lc := recv(t, legacyCh, "legacy completion")
			if lc != (LegacyCompletion{ID: 7, Report: "trial-balance", Status: queue.StatusSucceeded}) {
				t.Errorf("legacy = %+v", lc)
			}
			if err := pub.Flush(t.Context()); err != nil {
				t.Errorf("flush: %v", err)
			}
		})
	}
}

func TestWakeAndCancelReachSubscribers(t *testing.T) {
	t.Parallel()
	for _, bc := range brokers() {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			u := bc.url(t)
			prefix := testPrefix(t)
			agent := connect(t, Options{URL: u, Prefix: prefix, Agent: "a1"})
			cli := connect(t, Options{URL: u, Prefix: prefix})
			waitConnected(t, agent)

			wakes := make(chan struct{}, 10)
			cancels := make(chan int64, 10)
			agent.SubscribeWake(func() { wakes <- struct{}{} })
			unsub := agent.SubscribeCancel(func(id int64) { cancels <- id })

			cli.PublishWake()
			recv(t, wakes, "wake")
			cli.PublishCancel(42)
			if got := recv(t, cancels, "cancel"); got != 42 {
				t.Errorf("cancel id = %d, want 42", got)
			}
			// A relayed cancel_requested event is a cancel too.
			cli.PublishEvent(EventFrom(ev(5, 43, "r", queue.EventCancelRequested)))
			if got := recv(t, cancels, "cancel from event"); got != 43 {
				t.Errorf("cancel id = %d, want 43", got)
			}

			unsub()
			cli.PublishCancel(44)
			cli.PublishWake() // ordered after the cancel on one connection
			recv(t, wakes, "wake after unsubscribe")
			select {
			case id := <-cancels:
				t.Errorf("cancel %d delivered after unsubscribe", id)
			default:
			}
		})
	}
}

// killableDial hands paho connections the test can cut without a DISCONNECT, and can
// refuse new ones.
type killableDial struct {
	mu     sync.Mutex
	conns  []net.Conn
	refuse atomic.Bool
}

func (k *killableDial) dial(u *url.URL) (net.Conn, error) {
	if k.refuse.Load() {
		return nil, errors.New("test: dial refused")
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.conns = append(k.conns, c)
	k.mu.Unlock()
	return c, nil
}

func (k *killableDial) kill() {
	k.refuse.Store(true)
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.conns {
		_ = c.Close()
	}
}

func TestPresenceRetainedAndLastWill(t *testing.T) {
	t.Parallel()
	for _, bc := range brokers() {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			u := bc.url(t)
			prefix := testPrefix(t)
			watcher := connect(t, Options{URL: u, Prefix: prefix})
			waitConnected(t, watcher)
			seen := make(chan Presence, 20)
			watcher.SubscribePresence(func(p Presence) { seen <- p })

			k := &killableDial{}
			agent := connect(t, Options{URL: u, Prefix: prefix, Agent: "node-a", dial: k.dial})
			// Presence is a state: the broker may hand the same one twice (live and retained
			// when a subscription races a retained publish), so repeats are skipped.
			prev := ""
			waitState := func(want string) {
				t.Helper()
				for {
					p := recv(t, seen, "presence "+want)
					if p.Agent != "node-a" {
						t.Fatalf("presence of %q, want node-a", p.Agent)
					}
					if p.State == want {
						prev = want
						return
					}
					if p.State != prev {
						t.Fatalf("presence %q while waiting for %q after %q", p.State, want, prev)
					}
				}
			}
			waitState(PresenceUp)
			if err := agent.PublishPresence(PresenceDraining); err != nil {
				t.Fatal(err)
			}
			waitState(PresenceDraining)
			if err := agent.PublishPresence("sleeping"); err == nil {
				t.Error("PublishPresence(sleeping) = nil error")
			}
			if err := agent.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}

			k.kill()                // the agent dies: no DISCONNECT, the broker publishes the will
			waitState(PresenceGone) // the last will

			// Retained: a late subscriber learns the agent is gone.
			late := connect(t, Options{URL: u, Prefix: prefix})
			waitConnected(t, late)
			retained := make(chan Presence, 5)
			late.SubscribePresence(func(p Presence) { retained <- p })
			if p := recv(t, retained, "retained presence"); p.Agent != "node-a" || p.State != PresenceGone {
				t.Errorf("retained = %+v, want node-a gone", p)
			}

			// A clean shutdown says gone itself, retained.
			other := connect(t, Options{URL: u, Prefix: prefix, Agent: "node-b"})
			waitConnected(t, other)
			_ = other.Close()
			for {
				p := recv(t, seen, "node-b presence")
				if p.Agent == "node-b" && p.State == PresenceGone {
					break
				}
			}
		})
	}
}

// gatedDial lets the test keep a client away from the broker for a while.
type gatedDial struct{ closed atomic.Bool }

func (g *gatedDial) dial(u *url.URL) (net.Conn, error) {
	if g.closed.Load() {
		return nil, errors.New("test: gate closed")
	}
	return net.Dial("tcp", u.Host)
}

func TestPublishWhileBrokerDownIsDeliveredLater(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		bufferSize int
		publish    int
		wantFrom   int // the first event index delivered (older ones dropped)
	}{
		{"all kept", 100, 8, 0},
		{"oldest dropped", 3, 8, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := startBroker(t, "127.0.0.1:0")
			addr := b.Addr()
			prefix := testPrefix(t)
			gate := &gatedDial{}
			pub := connect(t, Options{URL: agentURL(b), Prefix: prefix, BufferSize: tt.bufferSize, dial: gate.dial})
			sub := connect(t, Options{URL: agentURL(b), Prefix: prefix})
			waitConnected(t, pub)
			waitConnected(t, sub)
			got := make(chan Event, 100)
			sub.SubscribeJobs([]int64{3}, "", func(e Event) { got <- e })

			for round := 1; round <= 2; round++ { // a second outage after a reconnect
				gate.closed.Store(true)
				_ = b.Close()
				deadline := time.After(waitLimit)
				for pub.Connected() {
					select {
					case <-deadline:
						t.Fatal("publisher still connected after the broker stopped")
					case <-time.After(20 * time.Millisecond):
					}
				}

				var want []queue.Event
				for i := 0; i < tt.publish; i++ {
					e := ev(int64(100*round+i), 3, "", queue.EventProgress)
					want = append(want, e)
					pub.PublishEvent(EventFrom(e)) // returns at once: the broker is down
				}
				if n := pub.Buffered(); n != min(tt.publish, tt.bufferSize) {
					t.Errorf("round %d: buffered = %d, want %d", round, n, min(tt.publish, tt.bufferSize))
				}
				if d := int(pub.Dropped()); d != round*tt.wantFrom {
					t.Errorf("round %d: dropped = %d, want %d", round, d, round*tt.wantFrom)
				}
				if err := pub.Flush(t.Context()); err == nil {
					t.Errorf("round %d: flush with the broker down = nil error", round)
				}

				b = startBroker(t, addr) // same port
				waitConnected(t, sub)    // resubscribed before the publisher may reconnect
				gate.closed.Store(false)
				var gotSeqs []int64
				for range want[tt.wantFrom:] {
					gotSeqs = append(gotSeqs, recv(t, got, "event published while down").Seq)
				}
				if w := seqsOf(want[tt.wantFrom:]); !reflect.DeepEqual(gotSeqs, w) {
					t.Errorf("round %d: delivered seqs = %v, want %v", round, gotSeqs, w)
				}
				// The subscriber can have them before the broker's acknowledgements reach
				// the publisher; the next outage starts from an empty buffer.
				if err := pub.Flush(t.Context()); err != nil {
					t.Fatalf("round %d: flush after the reconnect: %v", round, err)
				}
			}
		})
	}
}

func TestConnectWithoutBrokerDoesNotBlock(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now

	c, err := Connect(context.Background(), Options{URL: "tcp://" + addr, Agent: "x", Logger: quietLogger()})
	if err != nil {
		t.Fatalf("connect with the broker down = %v, want nil (connects in the background)", err)
	}
	if c.Connected() {
		t.Error("connected to nothing")
	}
	c.PublishWake()
	c.PublishEvent(EventFrom(ev(1, 1, "r", queue.EventQueued)))
	c.SubscribeWake(func() {})
	if c.Buffered() == 0 {
		t.Error("nothing buffered")
	}
	if err := c.Flush(t.Context()); err == nil {
		t.Error("flush = nil error with the broker down")
	}
	if err := c.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// lockedBuffer is a bytes.Buffer safe for the client's goroutines and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A broker that does not answer is logged once (not at every retry), and the broker's
// password never reaches the log or an error.
func TestUnreachableBrokerLoggedOnceWithoutPassword(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	c, err := Connect(t.Context(), Options{URL: "tcp://bob:hunter2@127.0.0.1:1", ClientID: "test-down",
		RetryInterval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // several retries
	c.Close()
	out := logs.String()
	if n := strings.Count(out, "mqtt broker does not answer"); n != 1 {
		t.Errorf("%d warnings that the broker does not answer, want 1:\n%s", n, out)
	}
	if strings.Contains(out, "hunter2") || !strings.Contains(out, "bob:xxxxx@127.0.0.1:1") {
		t.Errorf("log shows the password or not the redacted URL:\n%s", out)
	}
	for _, bad := range []string{"ftp://bob:hunter2@host", "tcp://bob:hunter2@", "tcp://bob:hunter2@host:1883/%zz"} {
		if _, err := Connect(t.Context(), Options{URL: bad, ClientID: "test-bad"}); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Connect(%q): error %v, want an error without the password", bad, err)
		}
	}
}
