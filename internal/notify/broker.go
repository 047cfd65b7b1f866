package notify

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Broker is the embedded MQTT broker of one-machine mode (rpt server, rpt quickstart):
// plain TCP, every client allowed, retained messages and wills kept in memory.
type Broker struct {
	srv       *mochi.Server
	addr      string
	closeOnce sync.Once
	stopCtx   context.CancelFunc
}

// StartBroker listens on addr ("127.0.0.1:1883"; port 0 picks a free one, see Addr) and
// serves until Close or until ctx ends.
func StartBroker(ctx context.Context, addr string) (*Broker, error) {
	srv := mochi.New(&mochi.Options{
		InlineClient: false,
		// The broker warns of every client that goes away: routine here, so debug.
		Logger: slog.New(demoteHandler{h: slog.Default().Handler()}).With("component", "mqtt-broker"),
	})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
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
	b := &Broker{srv: srv, addr: tcp.Address()}
	ctx, b.stopCtx = context.WithCancel(ctx)
	go func() {
		<-ctx.Done()
		b.shutdown()
	}()
	return b, nil
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

func (b *Broker) shutdown() {
	b.closeOnce.Do(func() { _ = b.srv.Close() })
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
