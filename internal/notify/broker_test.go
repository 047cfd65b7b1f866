package notify

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"rpt/internal/queue"
)

// rawClient is a bare paho connection, as a foreign or hostile client would make one
// (no outbox, no retries): what the broker allows is what it gets.
func rawClient(t *testing.T, addr, user, pass string, will func(*mqtt.ClientOptions)) (mqtt.Client, error) {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(NewClientID("raw")).
		SetUsername(user).SetPassword(pass).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	if will != nil {
		will(o)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(waitLimit) {
		t.Fatalf("connect as %q: no answer", user)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

// collector subscribes to filter and records what arrives.
type collector struct {
	mu  sync.Mutex
	got map[string][][]byte
	sig chan string
}

func collect(t *testing.T, c mqtt.Client, filter string) *collector {
	t.Helper()
	col := &collector{got: map[string][][]byte{}, sig: make(chan string, 1000)}
	tok := c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		col.mu.Lock()
		col.got[m.Topic()] = append(col.got[m.Topic()], m.Payload())
		col.mu.Unlock()
		col.sig <- m.Topic()
	})
	if !tok.WaitTimeout(waitLimit) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return col
}

func (c *collector) count(topic string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got[topic])
}

// waitFor waits until topic arrived; the broker forwards one publisher's messages in
// order, so whatever that publisher sent before it has arrived too, or never will.
func (c *collector) waitFor(t *testing.T, topic string) {
	t.Helper()
	deadline := time.After(waitLimit)
	for c.count(topic) == 0 {
		select {
		case <-c.sig:
		case <-deadline:
			t.Fatalf("nothing on %s within %s", topic, waitLimit)
		}
	}
}

func publish(c mqtt.Client, topic string, retained bool, payload []byte) {
	tok := c.Publish(topic, 1, retained, payload)
	tok.WaitTimeout(2 * time.Second) // a refused publish may never be acknowledged
}

func forgedSucceeded(id int64) []byte {
	b, _ := json.Marshal(EventFrom(queue.Event{Seq: 1 << 40, JobID: id, Report: "trial-balance",
		Event: queue.EventSucceeded, Status: queue.StatusSucceeded, Attempt: 1, At: time.Now().UTC()}))
	return b
}

func TestEmbeddedBrokerRefusesStrangers(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "127.0.0.1:0")
	for _, tc := range []struct{ name, user, pass string }{
		{"anonymous", "", ""},
		{"unknown user", "admin", testAgentPassword},
		{"agent with the client password", AgentUser, testClientPassword},
		{"agent with no password", AgentUser, ""},
		{"client with a wrong password", ClientUser, testClientPassword + "x"},
	} {
		if _, err := rawClient(t, b.Addr(), tc.user, tc.pass, nil); err == nil {
			t.Errorf("%s: connected, want refused", tc.name)
		}
	}
	if _, err := rawClient(t, b.Addr(), ClientUser, testClientPassword, nil); err != nil {
		t.Errorf("client with its password: %v", err)
	}
	if _, err := StartBroker(t.Context(), "127.0.0.1:0", BrokerOptions{AgentPassword: "x"}); err == nil {
		t.Error("StartBroker without a client password: want an error")
	}
	if _, err := StartBroker(t.Context(), "127.0.0.1:0", BrokerOptions{AgentPassword: "x", ClientPassword: "x"}); err == nil {
		t.Error("StartBroker with one password for both roles: want an error")
	}
}

// forgeryCase runs the ACL checks against a broker at addr whose users are AgentUser and
// ClientUser with the given passwords, topics under prefix "rpt" or testPrefix.
func forgeryCase(t *testing.T, addr, prefix, agentPass, clientPass string) {
	topics := Topics{Prefix: prefix}
	watcher, err := rawClient(t, addr, ClientUser, clientPass, nil)
	if err != nil {
		t.Fatalf("watcher: %v", err)
	}
	col := collect(t, watcher, topics.prefix()+"/#")

	// A client may wake agents and announce a cancel (agents check both against the queue)...
	cl, err := rawClient(t, addr, ClientUser, clientPass, nil)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	publish(cl, topics.Cancel(5), false, []byte(`{"id":5}`))
	publish(cl, topics.Wake(), false, []byte(`{}`))
	col.waitFor(t, topics.Wake())
	if col.count(topics.Cancel(5)) != 1 {
		t.Errorf("a client's cancel did not arrive")
	}
	// ...but not speak for agents: job events, report events, presence.
	cl2, err := rawClient(t, addr, ClientUser, clientPass, nil)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	publish(cl2, topics.Job(5), false, forgedSucceeded(5))
	publish(cl2, topics.Report("trial-balance"), false, forgedSucceeded(5))
	publish(cl2, topics.Agent("server"), true, []byte(`{"agent":"server","state":"gone"}`))
	// The marker comes from the agent, after the forgeries were refused or delivered.
	ag, err := rawClient(t, addr, AgentUser, agentPass, nil)
	if err != nil {
		t.Fatalf("agent: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // the forgeries are processed before the marker
	publish(ag, topics.Job(6), false, forgedSucceeded(6))
	col.waitFor(t, topics.Job(6))
	for _, topic := range []string{topics.Job(5), topics.Report("trial-balance"), topics.Agent("server")} {
		if n := col.count(topic); n != 0 {
			t.Errorf("a client published on %s (%d messages reached a subscriber)", topic, n)
		}
	}
}

func TestEmbeddedBrokerACL(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "127.0.0.1:0")
	forgeryCase(t, b.Addr(), testPrefix(t), testAgentPassword, testClientPassword)

	// A last will is a publish by the broker: a client cannot leave one on an agent topic.
	_, err := rawClient(t, b.Addr(), ClientUser, testClientPassword, func(o *mqtt.ClientOptions) {
		o.SetBinaryWill("rpt/jobs/5", forgedSucceeded(5), 1, false)
	})
	if err == nil {
		t.Error("a client connected with a last will on a job topic; want refused")
	}
	if _, err := rawClient(t, b.Addr(), AgentUser, testAgentPassword, func(o *mqtt.ClientOptions) {
		o.SetBinaryWill("rpt/agents/a1", []byte(`{"state":"gone"}`), 1, true)
	}); err != nil {
		t.Errorf("an agent with its presence will: %v", err)
	}
}

func TestEmbeddedBrokerBoundsPacketsAndRetained(t *testing.T) {
	t.Parallel()
	o := testBrokerOptions()
	o.MaxPacketSize = 64 << 10
	o.MaxRetained = 3
	o.MaxRetainedSize = 1 << 10
	b := startBrokerWith(t, "127.0.0.1:0", o)
	watcher, err := rawClient(t, b.Addr(), ClientUser, testClientPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	col := collect(t, watcher, "rpt/#")

	// An oversized packet closes its sender's connection and reaches no one.
	big, err := rawClient(t, b.Addr(), AgentUser, testAgentPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	publish(big, "rpt/agents/big", true, bytes.Repeat([]byte("x"), 100<<10))
	deadline := time.Now().Add(waitLimit)
	for big.IsConnectionOpen() {
		if time.Now().After(deadline) {
			t.Fatal("the sender of a 100 KiB packet is still connected; max is 64 KiB")
		}
		time.Sleep(10 * time.Millisecond)
	}

	ag, err := rawClient(t, b.Addr(), AgentUser, testAgentPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A client's retained message is delivered but never kept (only agents retain).
	cl, err := rawClient(t, b.Addr(), ClientUser, testClientPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	publish(cl, "rpt/queue/wake", true, []byte(`{}`))
	col.waitFor(t, "rpt/queue/wake")
	// Retained: past the size, delivered but not kept; past the count, the same.
	publish(ag, "rpt/agents/large", true, bytes.Repeat([]byte("y"), 2<<10))
	for i := range 10 {
		publish(ag, "rpt/agents/a"+string(rune('0'+i)), true, []byte(`{"state":"up"}`))
	}
	publish(ag, "rpt/agents/a0", true, []byte(`{"state":"draining"}`)) // a kept topic may change
	col.waitFor(t, "rpt/agents/a9")
	if col.count("rpt/agents/big") != 0 {
		t.Error("the oversized packet was delivered")
	}
	if col.count("rpt/agents/large") != 1 {
		t.Error("a retained message over the retained size was not delivered live")
	}

	late, err := rawClient(t, b.Addr(), ClientUser, testClientPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	lateCol := collect(t, late, "rpt/#")
	time.Sleep(300 * time.Millisecond) // retained messages come with the SUBACK
	lateCol.mu.Lock()
	var kept []string
	for topic, msgs := range lateCol.got {
		kept = append(kept, topic+"="+string(msgs[len(msgs)-1]))
	}
	lateCol.mu.Unlock()
	if len(kept) != 3 {
		t.Errorf("%d retained messages kept (%s), want the maximum 3", len(kept), strings.Join(kept, " "))
	}
	if lateCol.count("rpt/queue/wake") != 0 {
		t.Error("a client's retained wake-up was kept")
	}
	if lateCol.count("rpt/agents/large") != 0 || lateCol.count("rpt/agents/big") != 0 {
		t.Error("an oversized message was kept retained")
	}
	if !strings.Contains(strings.Join(kept, " "), `rpt/agents/a0={"state":"draining"}`) {
		t.Errorf("retained a0 was not updated: %s", strings.Join(kept, " "))
	}
}

// A client retrying a wrong password (or a too large retained message) is logged once
// per warnEvery, with the count of what was not logged.
func TestBrokerWarningsAreRateLimited(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	h := &aclHook{log: slog.New(slog.NewTextHandler(&buf, nil))}
	for range 5 {
		h.warn("mqtt connection refused: wrong password", "user", "rpt-agent")
	}
	if n := strings.Count(buf.String(), "wrong password"); n != 1 {
		t.Fatalf("%d lines logged for 5 refusals in a row, want 1:\n%s", n, buf.String())
	}
	h.warnMu.Lock()
	h.warnedAt["mqtt connection refused: wrong password"] = time.Now().Add(-warnEvery)
	h.warnMu.Unlock()
	h.warn("mqtt connection refused: wrong password", "user", "rpt-agent")
	if !strings.Contains(buf.String(), "more_not_logged=4") {
		t.Errorf("the next line does not count the 4 not logged:\n%s", buf.String())
	}
}
