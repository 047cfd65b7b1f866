package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"rpt/internal/dsn"
	"rpt/internal/queue"
)

// Defaults of Options.
const (
	DefaultBufferSize     = 10000
	DefaultConnectTimeout = 2 * time.Second
	DefaultRetryInterval  = time.Second
	DefaultFlushTimeout   = 2 * time.Second
)

const (
	// publishTimeout bounds the wait for one PUBACK before the batch goes back to the
	// outbox (the broker may have it: a duplicate, which subscribers drop by seq).
	publishTimeout = 5 * time.Second
	// subscribeTimeout bounds how long a Subscribe call waits for the SUBACK.
	subscribeTimeout = 2 * time.Second
	publishBatch     = 64
	idleRecheck      = 250 * time.Millisecond
)

// Options configure a Client.
type Options struct {
	// URL of the broker: tcp://host:1883 (also mqtt://, ssl://, tls://, mqtts://, ws://, wss://).
	URL string
	// ClientID must be unique per connection; empty: <prefix>-<host>-<pid>-<random>.
	ClientID string
	// Prefix is the first topic level; empty: "rpt".
	Prefix string
	// LegacyTopic, when set, receives {"id","report","status"} for every succeeded,
	// failed or cancelled event this client publishes of a job that ran on Agent (of
	// every job when Agent is empty). It is used as given, without Prefix.
	LegacyTopic string
	// Agent, when set, makes this client the agent's presence: it keeps
	// <prefix>/agents/<Agent> retained ("up" from connect, PublishPresence to change),
	// registers a last will ("gone") that the broker publishes when the connection dies
	// without a DISCONNECT, and publishes "gone" itself on Close.
	Agent              string
	Username, Password string
	// BufferSize bounds the publishes held while the broker is unreachable; when full,
	// the oldest are dropped (counted by Dropped). Default 10000.
	BufferSize int
	// ConnectTimeout bounds each connection attempt and how long Connect waits for the
	// first one. Default 2s.
	ConnectTimeout time.Duration
	// RetryInterval is the pause between connection attempts while the broker is
	// unreachable. Default 1s.
	RetryInterval time.Duration
	// FlushTimeout bounds how long Close waits for buffered publishes to reach a
	// connected broker. Default 2s.
	FlushTimeout time.Duration
	Logger       *slog.Logger

	// dial replaces the network dial; tests use it to cut a connection without a
	// DISCONNECT, as a crashed agent would.
	dial func(u *url.URL) (net.Conn, error)
}

// Client is an MQTT connection that never makes its caller wait on the broker:
// publishes go to a bounded outbox drained by one goroutine (in order, QoS 1), the
// connection is made and remade in the background, and subscriptions are restored after
// every reconnect. A Client is safe for concurrent use.
type Client struct {
	opts   Options
	topics Topics
	log    *slog.Logger
	pc     mqtt.Client
	out    *outbox

	kick     chan struct{} // wakes the publisher
	stop     chan struct{} // closed by Close: the publisher ends
	pubDone  chan struct{}
	inflight atomic.Int64 // messages popped but not yet acknowledged

	firstAttempt     chan struct{}
	firstAttemptOnce sync.Once
	warnedDown       atomic.Bool // a failed connect or a loss was logged; the next connect says so
	lastAttemptFail  atomic.Bool // the latest connection attempt failed
	ready            atomic.Bool // connected and subscriptions restored

	connMu  sync.Mutex // orders reconnects against Close
	stopped bool       // under connMu: no more connecting

	mu       sync.Mutex
	subs     map[string]map[uint64]func(topic string, payload []byte) // filter -> handlers
	nextSub  uint64
	presence string        // current presence state when Agent is set
	changed  chan struct{} // closed and replaced on every connect and loss
	closed   bool
}

// Connect starts a client. It returns quickly whether or not the broker is reachable:
// it waits only for the first connection attempt (bounded by ctx and ConnectTimeout)
// and keeps connecting in the background. It fails only on invalid options.
func Connect(ctx context.Context, o Options) (*Client, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		// url.Error repeats the URL, password and all: keep only its reason, and not
		// even that when the URL has a password (`invalid URL escape "%zz"` quotes a
		// piece of it).
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if shown := dsn.Redact(o.URL); shown != o.URL {
			return nil, fmt.Errorf("mqtt url %q: cannot parse it (a %% in the password is written %%25)", shown)
		}
		return nil, fmt.Errorf("mqtt url: cannot parse it: %w", err)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return nil, fmt.Errorf("mqtt url %q: scheme must be tcp, mqtt, ssl, tls, mqtts, ws or wss", dsn.Redact(o.URL))
	}
	if u.Host == "" {
		// Not u.Redacted(): a mistyped URL (tcp:/user:pass@host) has its password in
		// the path, where only dsn.Redact looks.
		return nil, fmt.Errorf("mqtt url %q: no host", dsn.Redact(o.URL))
	}
	if strings.ContainsAny(o.Prefix, "+#") {
		return nil, fmt.Errorf("mqtt prefix %q: must not contain + or #", o.Prefix)
	}
	if strings.ContainsAny(o.LegacyTopic, "+#") {
		return nil, fmt.Errorf("mqtt legacy topic %q: must not contain + or #", o.LegacyTopic)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.ClientID == "" {
		o.ClientID = NewClientID(o.Prefix)
	}
	if o.BufferSize <= 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = DefaultFlushTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Client{
		opts:         o,
		topics:       Topics{Prefix: o.Prefix},
		log:          o.Logger.With("mqtt_client", o.ClientID),
		out:          newOutbox(o.BufferSize),
		kick:         make(chan struct{}, 1),
		stop:         make(chan struct{}),
		pubDone:      make(chan struct{}),
		firstAttempt: make(chan struct{}),
		subs:         map[string]map[uint64]func(string, []byte){},
		changed:      make(chan struct{}),
	}

	po := mqtt.NewClientOptions().
		AddBroker(o.URL).
		SetClientID(o.ClientID).
		SetUsername(o.Username).
		SetPassword(o.Password).
		SetCleanSession(true).
		SetStore(noStore{}).
		SetOrderMatters(true). // handlers run in arrival order: events of a job stay in order
		// Reconnecting is ours (onConnectionLost): paho's own keeps the message ids of
		// publishes in flight at a loss claimed forever when its store is empty, and
		// replays its store concurrently with new publishes when it is not.
		SetAutoReconnect(false).
		SetConnectRetry(true).
		SetConnectRetryInterval(o.RetryInterval).
		SetConnectTimeout(o.ConnectTimeout).
		SetKeepAlive(30 * time.Second).
		SetPingTimeout(10 * time.Second).
		SetWriteTimeout(publishTimeout).
		SetOnConnectHandler(c.onConnect).
		SetConnectionLostHandler(c.onConnectionLost).
		SetConnectionNotificationHandler(c.onNotification)
	if o.Agent != "" {
		c.presence = PresenceUp
		will, _ := json.Marshal(Presence{Agent: o.Agent, State: PresenceGone, At: time.Now().UTC()})
		po.SetBinaryWill(c.topics.Agent(o.Agent), will, 1, true) // onConnect publishes "up"
	}
	if o.dial != nil {
		dial := o.dial
		po.SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) { return dial(u) })
	}
	c.pc = mqtt.NewClient(po)
	go c.publishLoop()
	c.pc.Connect() // with ConnectRetry the token completes only once connected: not waited on

	t := time.NewTimer(o.ConnectTimeout)
	defer t.Stop()
	select {
	case <-c.firstAttempt:
	case <-t.C:
	case <-ctx.Done():
	}
	return c, nil
}

// NewClientID returns <prefix>-<host>-<pid>-<random>: unique per process and per call,
// so two rpt processes on one host never take over each other's session.
func NewClientID(prefix string) string {
	host, _ := os.Hostname()
	if host == "" {
		host = "host"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return segment(prefix) + "-" + segment(host) + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// Topics returns the topic names this client uses.
func (c *Client) Topics() Topics { return c.topics }

// Connected reports whether the connection to the broker is up now, with every
// subscription restored.
func (c *Client) Connected() bool { return c.ready.Load() && c.pc.IsConnectionOpen() }

// Dropped counts publishes dropped because the outbox was full.
func (c *Client) Dropped() uint64 { return c.out.droppedCount() }

// Buffered counts publishes not yet acknowledged by the broker.
func (c *Client) Buffered() int { return c.out.len() + int(c.inflight.Load()) }

// stateChanged returns a channel closed at the next connect or connection loss.
func (c *Client) stateChanged() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (c *Client) signalChanged() {
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *Client) onNotification(_ mqtt.Client, n mqtt.ConnectionNotification) {
	switch n.(type) {
	case mqtt.ConnectionNotificationBrokerFailed, mqtt.ConnectionNotificationFailed:
		c.lastAttemptFail.Store(true)
		c.firstAttemptOnce.Do(func() { close(c.firstAttempt) })
		if !c.warnedDown.Swap(true) {
			c.log.Warn("mqtt broker does not answer; retrying (until then events wait in the outbox and agents poll)",
				"url", c.brokerURL(), "retry", c.opts.RetryInterval.String())
		}
	}
}

// brokerURL is the broker's URL as it may be logged: without a password.
func (c *Client) brokerURL() string {
	return dsn.Redact(c.opts.URL)
}

// onConnect runs (in its own goroutine) after every successful connect: the session is
// clean, so subscriptions are made again before anyone is told, and the presence is
// republished (a last will may have replaced it while we were away).
func (c *Client) onConnect(pc mqtt.Client) {
	c.lastAttemptFail.Store(false)
	c.mu.Lock()
	filters := make(map[string]byte, len(c.subs))
	for f := range c.subs {
		filters[f] = 1
	}
	c.mu.Unlock()
	for f := range filters {
		tok := pc.Subscribe(f, 1, c.route(f))
		if !tok.WaitTimeout(subscribeTimeout) {
			c.log.Warn("mqtt resubscribe timed out", "filter", f)
		} else if err := tok.Error(); err != nil {
			c.log.Warn("mqtt resubscribe", "filter", f, "error", err)
		}
	}
	if c.opts.Agent != "" {
		c.enqueuePresence(true)
	}
	c.ready.Store(true)
	if c.warnedDown.Swap(false) {
		c.log.Info("mqtt broker answers again", "url", c.brokerURL())
	} else {
		c.log.Debug("mqtt connected", "url", c.brokerURL())
	}
	c.firstAttemptOnce.Do(func() { close(c.firstAttempt) })
	c.wake()
	c.signalChanged()
}

// onConnectionLost runs once paho has settled the loss: its tokens in flight have
// failed (their messages are back in the outbox) and it is disconnected, so Connect can
// start over; with ConnectRetry it keeps trying every RetryInterval.
func (c *Client) onConnectionLost(_ mqtt.Client, err error) {
	c.ready.Store(false)
	c.lastAttemptFail.Store(true) // Flush need not wait for the next attempt
	c.warnedDown.Store(true)
	c.log.Warn("mqtt connection lost; reconnecting", "url", c.brokerURL(), "error", err)
	c.signalChanged()
	t := time.NewTimer(c.opts.RetryInterval)
	defer t.Stop()
	select {
	case <-c.stop:
		return
	case <-t.C:
	}
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if !c.stopped {
		c.pc.Connect()
	}
}

func (c *Client) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// publishLoop drains the outbox while connected, in batches whose publishes are
// pipelined and then awaited in order; an unacknowledged tail goes back to the front, so
// order is kept and nothing is lost short of the outbox overflowing.
func (c *Client) publishLoop() {
	defer close(c.pubDone)
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		if !c.pc.IsConnectionOpen() || c.out.len() == 0 {
			c.idle()
			continue
		}
		batch := c.out.pop(publishBatch)
		c.inflight.Store(int64(len(batch)))
		tokens := make([]mqtt.Token, len(batch))
		for i, m := range batch {
			tokens[i] = c.pc.Publish(m.topic, 1, m.retained, m.payload)
		}
		for i, tok := range tokens {
			ok := tok.WaitTimeout(publishTimeout)
			if ok && tok.Error() == nil {
				continue
			}
			err := tok.Error()
			if !ok {
				err = errors.New("no acknowledgement")
			}
			c.out.pushFront(batch[i:])
			c.log.Debug("mqtt publish; will retry", "topic", batch[i].topic, "error", err)
			c.inflight.Store(0)
			c.idle()
			break
		}
		c.inflight.Store(0)
	}
}

func (c *Client) idle() {
	t := time.NewTimer(idleRecheck)
	defer t.Stop()
	select {
	case <-c.stop:
	case <-c.kick:
	case <-t.C:
	}
}

func (c *Client) enqueue(topic string, v any, retained bool) {
	payload, err := json.Marshal(v)
	if err != nil { // only plain structs are published: cannot happen
		c.log.Error("mqtt payload", "topic", topic, "error", err)
		return
	}
	c.out.push(message{topic: topic, payload: payload, retained: retained})
	c.wake()
}

// enqueuePresence queues the current presence; front puts it ahead of older messages
// (after a reconnect, the retained state must be fixed first).
func (c *Client) enqueuePresence(front bool) {
	c.mu.Lock()
	state := c.presence
	c.mu.Unlock()
	payload, _ := json.Marshal(Presence{Agent: c.opts.Agent, State: state, At: time.Now().UTC()})
	m := message{topic: c.topics.Agent(c.opts.Agent), payload: payload, retained: true}
	if front {
		c.out.pushFront([]message{m})
	} else {
		c.out.push(m)
	}
	c.wake()
}

// PublishEvent publishes ev on its job's and its report's topic, a cancel request for
// a cancel_requested event, and the legacy completion when configured. It never blocks.
func (c *Client) PublishEvent(ev Event) {
	c.enqueue(c.topics.Job(ev.JobID), ev, false)
	if ev.Report != "" {
		c.enqueue(c.topics.Report(ev.Report), ev, false)
	}
	if ev.Event.Event == queue.EventCancelRequested {
		c.PublishCancel(ev.JobID)
	}
	if c.opts.LegacyTopic != "" && terminalEvent(ev.Event.Event) &&
		(c.opts.Agent == "" || ev.Agent == c.opts.Agent) {
		c.enqueue(c.opts.LegacyTopic, LegacyCompletion{ID: ev.JobID, Report: ev.Report, Status: ev.Status}, false)
	}
}

// PublishWake tells idle agents that a job is waiting. It never blocks.
func (c *Client) PublishWake() {
	c.enqueue(c.topics.Wake(), Wake{At: time.Now().UTC()}, false)
}

// PublishCancel tells the agent running job id to stop it now. It never blocks.
func (c *Client) PublishCancel(id int64) {
	c.enqueue(c.topics.Cancel(id), Cancel{ID: id, At: time.Now().UTC()}, false)
}

// PublishPresence sets this agent's retained presence (PresenceUp, PresenceDraining,
// PresenceGone). It needs Options.Agent; it never blocks.
func (c *Client) PublishPresence(state string) error {
	if c.opts.Agent == "" {
		return errors.New("publish presence: the client has no agent name (Options.Agent)")
	}
	switch state {
	case PresenceUp, PresenceDraining, PresenceGone:
	default:
		return fmt.Errorf("publish presence: state %q: must be up, draining or gone", state)
	}
	c.mu.Lock()
	c.presence = state
	c.mu.Unlock()
	c.enqueuePresence(false)
	return nil
}

// SubscribeWake calls fn for every wake-up. fn runs on the client's delivery goroutine
// and must return quickly (signal a channel). The returned func unsubscribes.
func (c *Client) SubscribeWake(fn func()) (unsubscribe func()) {
	return c.subscribe([]string{c.topics.Wake()}, func(string, []byte) { fn() })
}

// SubscribeCancel calls fn with the id of every job whose cancel is published. fn must
// return quickly. The returned func unsubscribes.
func (c *Client) SubscribeCancel(fn func(jobID int64)) (unsubscribe func()) {
	return c.subscribe([]string{c.topics.AllCancels()}, func(topic string, payload []byte) {
		var m Cancel
		if err := json.Unmarshal(payload, &m); err == nil && m.ID != 0 {
			fn(m.ID)
			return
		}
		// A foreign publisher's payload: the topic still names the job.
		parts := strings.Split(topic, "/")
		if len(parts) >= 2 {
			if id, err := strconv.ParseInt(parts[len(parts)-2], 10, 64); err == nil {
				fn(id)
			}
		}
	})
}

// SubscribeJobs calls fn for the events of the given jobs and of every job of report;
// with neither, for the events of all jobs. An event can arrive more than once (per job
// and per report, duplicate relays, resends): dedupe by Seq, or use Follow. fn must
// return quickly. The returned func unsubscribes.
func (c *Client) SubscribeJobs(ids []int64, report string, fn func(Event)) (unsubscribe func()) {
	var filters []string
	for _, id := range ids {
		filters = append(filters, c.topics.Job(id))
	}
	if report != "" {
		filters = append(filters, c.topics.Report(report))
	}
	if len(filters) == 0 {
		filters = append(filters, c.topics.AllJobs())
	}
	return c.subscribe(filters, func(topic string, payload []byte) {
		var ev Event
		if err := json.Unmarshal(payload, &ev); err != nil {
			c.log.Debug("mqtt event payload", "topic", topic, "error", err)
			return
		}
		fn(ev)
	})
}

// SubscribePresence calls fn for every agent presence (retained ones first). fn must
// return quickly. The returned func unsubscribes.
func (c *Client) SubscribePresence(fn func(Presence)) (unsubscribe func()) {
	return c.subscribe([]string{c.topics.AllAgents()}, func(topic string, payload []byte) {
		var p Presence
		if err := json.Unmarshal(payload, &p); err != nil {
			c.log.Debug("mqtt presence payload", "topic", topic, "error", err)
			return
		}
		fn(p)
	})
}

// subscribe registers h on each filter. A filter new to this client is subscribed at
// the broker now when connected (waiting at most subscribeTimeout) and after every
// reconnect.
func (c *Client) subscribe(filters []string, h func(topic string, payload []byte)) func() {
	c.mu.Lock()
	c.nextSub++
	id := c.nextSub
	var fresh []string
	for _, f := range filters {
		hs := c.subs[f]
		if hs == nil {
			hs = map[uint64]func(string, []byte){}
			c.subs[f] = hs
			fresh = append(fresh, f)
		}
		hs[id] = h
	}
	c.mu.Unlock()
	if c.pc.IsConnectionOpen() {
		for _, f := range fresh {
			tok := c.pc.Subscribe(f, 1, c.route(f))
			if !tok.WaitTimeout(subscribeTimeout) {
				c.log.Warn("mqtt subscribe timed out; retried on reconnect", "filter", f)
			} else if err := tok.Error(); err != nil {
				c.log.Warn("mqtt subscribe; retried on reconnect", "filter", f, "error", err)
			}
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			var gone []string
			for _, f := range filters {
				if hs := c.subs[f]; hs != nil {
					delete(hs, id)
					if len(hs) == 0 {
						delete(c.subs, f)
						gone = append(gone, f)
					}
				}
			}
			c.mu.Unlock()
			if len(gone) > 0 && c.pc.IsConnectionOpen() {
				c.pc.Unsubscribe(gone...) // not awaited: a late UNSUBACK harms no one
			}
		})
	}
}

// route is the paho handler of one filter: it calls the handlers registered on it now.
func (c *Client) route(filter string) mqtt.MessageHandler {
	return func(_ mqtt.Client, m mqtt.Message) {
		c.mu.Lock()
		hs := make([]func(string, []byte), 0, len(c.subs[filter]))
		for _, h := range c.subs[filter] {
			hs = append(hs, h)
		}
		c.mu.Unlock()
		for _, h := range hs {
			h(m.Topic(), m.Payload())
		}
	}
}

// Flush waits until every buffered publish is acknowledged, or ctx ends. It returns at
// once with an error when the broker is unreachable, so a CLI never waits for it.
func (c *Client) Flush(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if c.Buffered() == 0 {
			return nil
		}
		if !c.pc.IsConnectionOpen() && c.lastAttemptFail.Load() {
			return fmt.Errorf("flush mqtt: broker %s unreachable; %d messages not sent", c.brokerURL(), c.Buffered())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("flush mqtt: %w; %d messages not sent", ctx.Err(), c.Buffered())
		case <-t.C:
		}
	}
}

// Close publishes the agent's "gone" presence, waits up to FlushTimeout for buffered
// publishes to reach a reachable broker, and disconnects. Messages still buffered then
// are lost (the database has every event).
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	if c.opts.Agent != "" {
		c.mu.Lock()
		c.presence = PresenceGone
		c.mu.Unlock()
		c.enqueuePresence(false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.FlushTimeout)
	err := c.Flush(ctx)
	cancel()
	if err != nil {
		c.log.Debug("mqtt close", "error", err)
	}
	close(c.stop)
	c.connMu.Lock()
	c.stopped = true
	c.pc.Disconnect(250)
	c.connMu.Unlock()
	<-c.pubDone
	return nil
}

// noStore is paho's message store, kept empty on purpose: the outbox is the only place
// a publish waits. With paho's memory store, a publish made while paho replays its store
// after a reconnect is sent twice and its token never completes.
type noStore struct{}

func (noStore) Open()                             {}
func (noStore) Put(string, packets.ControlPacket) {}
func (noStore) Get(string) packets.ControlPacket  { return nil }
func (noStore) All() []string                     { return nil }
func (noStore) Del(string)                        {}
func (noStore) Close()                            {}
func (noStore) Reset()                            {}
