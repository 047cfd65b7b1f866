package notify

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// The broker's users, one per role. Each has its own password (generated and kept with
// the queue by rpt server; see Credentials).
const (
	// AgentUser is the role of agents: they publish job events, presence (retained, with
	// a last will), cancels and the legacy completion topic, and read everything.
	AgentUser = "rpt-agent"
	// ClientUser is the role of the CLI and other rpt clients: they read everything and
	// publish only queue wake-ups and cancel requests.
	ClientUser = "rpt-client"
)

// Defaults of BrokerOptions.
const (
	// DefaultMaxPacketSize bounds one MQTT packet: an event is a few hundred bytes (an
	// error text a few KB); a larger packet closes the connection.
	DefaultMaxPacketSize = 256 << 10
	// DefaultMaxRetained bounds how many retained messages the broker keeps (agents'
	// presence is the only retained traffic: one per agent).
	DefaultMaxRetained = 1000
	// DefaultMaxRetainedSize bounds one retained message (a presence is ~100 bytes).
	DefaultMaxRetainedSize = 4 << 10
)

// BrokerOptions configure the embedded broker. Passwords are required: the broker
// accepts no anonymous client.
type BrokerOptions struct {
	AgentPassword  string // password of AgentUser
	ClientPassword string // password of ClientUser
	// MaxPacketSize bounds every packet a client sends (bytes); default 256 KiB.
	MaxPacketSize int
	// MaxRetained bounds the retained messages kept; past it a retained publish on a
	// new topic is delivered but not kept. Default 1000.
	MaxRetained int
	// MaxRetainedSize bounds one retained message (bytes); a larger one is delivered
	// but not kept. Default 4 KiB.
	MaxRetainedSize int
	// Logger receives refused connections and retained messages not kept; default
	// slog.Default(). Passwords are never logged.
	Logger *slog.Logger
}

// ErrBroker is the embedded broker failing to start (its address taken, a listener
// refused): infrastructure, not the queue's nor the input's.
var ErrBroker = errors.New("embedded mqtt broker")

// Broker is the embedded MQTT broker of one-machine mode (rpt server, rpt quickstart):
// plain TCP, two users with passwords and an ACL (see AgentUser, ClientUser), bounded
// packets and retained messages, kept in memory.
type Broker struct {
	srv       *mochi.Server
	hook      *aclHook
	addr      string
	closeOnce sync.Once
	stopCtx   context.CancelFunc
}

// StartBroker listens on addr ("127.0.0.1:1883"; port 0 picks a free one, see Addr) and
// serves until Close or until ctx ends.
func StartBroker(ctx context.Context, addr string, o BrokerOptions) (*Broker, error) {
	if o.AgentPassword == "" || o.ClientPassword == "" {
		return nil, errors.New("start mqtt broker: the agent and the client password are both required")
	}
	if o.AgentPassword == o.ClientPassword {
		return nil, errors.New("start mqtt broker: the agent and the client password must differ (a client could speak as an agent)")
	}
	if o.MaxPacketSize <= 0 {
		o.MaxPacketSize = DefaultMaxPacketSize
	}
	if o.MaxRetained <= 0 {
		o.MaxRetained = DefaultMaxRetained
	}
	if o.MaxRetainedSize <= 0 {
		o.MaxRetainedSize = DefaultMaxRetainedSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(o.MaxPacketSize)
	srv := mochi.New(&mochi.Options{
		InlineClient: false,
		Capabilities: caps,
		// The broker warns of every client that goes away: routine here, so debug.
		Logger: slog.New(demoteHandler{h: o.Logger.Handler()}).With("component", "mqtt-broker"),
	})
	h := &aclHook{opts: o, log: o.Logger.With("component", "mqtt-broker"), retained: map[string]bool{}}
	if err := srv.AddHook(h, nil); err != nil {
		return nil, fmt.Errorf("start mqtt broker: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("start mqtt broker on %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("start mqtt broker on %s: %w", addr, err)
	}
	b := &Broker{srv: srv, hook: h, addr: tcp.Address()}
	ctx, b.stopCtx = context.WithCancel(ctx)
	go func() {
		<-ctx.Done()
		b.shutdown()
	}()
	return b, nil
}

// aclHook is the embedded broker's authentication and ACL: who may connect, publish
// where, and what is kept retained.
type aclHook struct {
	mochi.HookBase
	closing atomic.Bool // the broker is shutting down: no new client
	opts    BrokerOptions
	log     *slog.Logger

	mu       sync.Mutex
	retained map[string]bool // topics holding a retained message from a client ($SYS aside)

	warnMu     sync.Mutex
	warnedAt   map[string]time.Time // per message: when it was last logged
	suppressed map[string]int       // per message: how many were not logged since
}

// warnEvery is how often one kind of broker warning is logged: a client that retries a
// wrong password or a too large retained message must not flood the log.
const warnEvery = 10 * time.Second

func (h *aclHook) warn(msg string, args ...any) {
	h.warnMu.Lock()
	if h.warnedAt == nil {
		h.warnedAt, h.suppressed = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if now.Sub(h.warnedAt[msg]) < warnEvery {
		h.suppressed[msg]++
		h.warnMu.Unlock()
		return
	}
	if n := h.suppressed[msg]; n > 0 {
		args = append(args, "more_not_logged", n)
	}
	h.warnedAt[msg], h.suppressed[msg] = now, 0
	h.warnMu.Unlock()
	h.log.Warn(msg, args...)
}

func (h *aclHook) ID() string { return "rpt-acl" }

func (h *aclHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnPublish, mochi.OnRetainMessage}, []byte{b})
}

// role returns the user a connection authenticated as ("" for none).
func (h *aclHook) role(cl *mochi.Client) string {
	switch u := string(cl.Properties.Username); u {
	case AgentUser, ClientUser:
		return u
	}
	return ""
}

// OnConnectAuthenticate admits the two users with their passwords, nobody else; a last
// will must be one the user may publish (a will is a publish made by the broker).
func (h *aclHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	if h.closing.Load() {
		return false
	}
	var want string
	switch string(pk.Connect.Username) {
	case AgentUser:
		want = h.opts.AgentPassword
	case ClientUser:
		want = h.opts.ClientPassword
	default:
		h.log.Debug("mqtt connection refused: unknown user", "remote", cl.Net.Remote)
		return false
	}
	if subtle.ConstantTimeCompare(pk.Connect.Password, []byte(want)) != 1 {
		h.warn("mqtt connection refused: wrong password", "user", string(pk.Connect.Username), "remote", cl.Net.Remote)
		return false
	}
	if pk.Connect.WillFlag {
		if !mayPublish(string(pk.Connect.Username), pk.Connect.WillTopic) {
			h.warn("mqtt connection refused: last will on a topic the user may not publish",
				"user", string(pk.Connect.Username), "topic", pk.Connect.WillTopic)
			return false
		}
		if pk.Connect.WillRetain && !h.mayRetain(pk.Connect.WillTopic, pk.Connect.WillPayload) {
			return false
		}
	}
	return true
}

// OnACLCheck: both users read everything rpt publishes; see mayPublish for writes.
func (h *aclHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	role := h.role(cl)
	if role == "" {
		return false
	}
	if !write {
		return true
	}
	return mayPublish(role, topic)
}

// OnPublish keeps retained messages bounded: only agents retain (presence), and one
// too large, or one on a new topic when the broker holds its maximum, is delivered but
// not kept.
func (h *aclHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Retain && len(pk.Payload) > 0 && (h.role(cl) != AgentUser || !h.mayRetain(pk.TopicName, pk.Payload)) {
		pk.FixedHeader.Retain = false
	}
	return pk, nil
}

func (h *aclHook) mayRetain(topic string, payload []byte) bool {
	if len(payload) > h.opts.MaxRetainedSize {
		h.warn("mqtt retained message too large: not kept", "topic", topic, "bytes", len(payload), "max", h.opts.MaxRetainedSize)
		return false
	}
	h.mu.Lock()
	full := !h.retained[topic] && len(h.retained) >= h.opts.MaxRetained
	h.mu.Unlock()
	if full {
		h.warn("mqtt retained messages at their maximum: not kept", "topic", topic, "max", h.opts.MaxRetained)
		return false
	}
	return true
}

// OnRetainMessage counts the retained messages clients (and their wills) left; the
// broker's own $SYS topics are not theirs to bound. Between the check in mayRetain and
// this count, publishes racing on new topics can pass the maximum by their number.
func (h *aclHook) OnRetainMessage(cl *mochi.Client, pk packets.Packet, r int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(pk.Payload) > 0 {
		h.retained[pk.TopicName] = true
	} else {
		delete(h.retained, pk.TopicName) // an empty retained publish clears the topic
	}
}

// cancelTopic matches <prefix>/jobs/<id>/cancel whatever the prefix.
var cancelTopic = regexp.MustCompile(`(^|/)jobs/[0-9]+/cancel$`)

// mayPublish is the ACL of writes. Agents publish anything (they are trusted with the
// queue and the sources already). Clients publish only wake-ups and cancel requests:
// the two things a submitter or an operator asks of agents, and both are checked
// against the queue by the agent (a wake-up only makes it claim; a cancel is acted on
// when the job's row says cancel requested). The prefix is any, as rpt's is configurable.
func mayPublish(role, topic string) bool {
	switch role {
	case AgentUser:
		return true
	case ClientUser:
		return strings.HasSuffix("/"+topic, "/queue/wake") || cancelTopic.MatchString(topic)
	}
	return false
}

// Addr is the address the broker listens on (host:port).
func (b *Broker) Addr() string { return b.addr }

// URL is the address as a client URL (tcp://host:port).
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Close stops listening and drops every client connection.
func (b *Broker) Close() error {
	b.stopCtx()
	b.shutdown()
	return nil
}

// errBrokerClosing is why the broker drops its clients when it shuts down.
var errBrokerClosing = errors.New("broker shutting down")

// shutdown closes the broker once. mochi-mqtt v2.7.9's Close can deadlock: closing a
// listener's clients takes the client map's read lock twice (GetByListener calls Len),
// and a client that goes away in that instant asks for the write lock in between (seen
// once in CI, in the notify tests under -race). So new clients are refused, the
// connected ones stopped and waited for first, leaving no writer to come between; and
// Close is not waited for past a bound, whatever happens inside it.
func (b *Broker) shutdown() {
	b.closeOnce.Do(func() {
		b.hook.closing.Store(true)
		for _, cl := range b.srv.Clients.GetAll() {
			cl.Stop(errBrokerClosing)
		}
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if b.srv.Clients.Len() == 0 {
				break
			}
			open := false
			for _, cl := range b.srv.Clients.GetAll() {
				open = open || !cl.Closed()
			}
			if !open {
				// Stopped: give the connection goroutines a moment to finish detaching.
				time.Sleep(50 * time.Millisecond)
				break
			}
		}
		done := make(chan struct{})
		go func() {
			_ = b.srv.Close()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			b.hook.log.Warn("mqtt broker did not finish closing within 5s; going on without it")
		}
	})
}

// demoteHandler logs records below error at debug level.
type demoteHandler struct{ h slog.Handler }

func (d demoteHandler) level(l slog.Level) slog.Level {
	if l < slog.LevelError {
		return slog.LevelDebug
	}
	return l
}

func (d demoteHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return d.h.Enabled(ctx, d.level(l))
}

func (d demoteHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Level = d.level(r.Level)
	return d.h.Handle(ctx, r)
}

func (d demoteHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return demoteHandler{h: d.h.WithAttrs(as)}
}

func (d demoteHandler) WithGroup(name string) slog.Handler {
	return demoteHandler{h: d.h.WithGroup(name)}
}
