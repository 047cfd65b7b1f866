package notify

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"rpt/internal/queue"
)

// EventSource reads the job events table; queue.Store satisfies it. EventList returns
// events with seq > afterSeq in seq order, of one job when jobID != 0, at most limit
// (limit <= 0: all).
type EventSource interface {
	EventList(ctx context.Context, jobID int64, afterSeq int64, limit int) ([]queue.Event, error)
}

// EventHead is optionally implemented by an EventSource: the highest seq in the table,
// so a starting relay skips history in one query instead of paging through it.
type EventHead interface {
	EventLastSeq(ctx context.Context) (int64, error)
}

// JobSource is optionally implemented by an EventSource (queue.Store does): a relay
// that can read jobs says, in a succeeded event, which store outside the queue database
// holds the result and its id there.
type JobSource interface {
	JobGet(ctx context.Context, id int64) (*queue.Job, error)
}

// EventPublisher is where a Relay publishes; *Client is one.
type EventPublisher interface {
	PublishEvent(Event)
}

// RelayOptions tune a Relay; zero values take the defaults.
type RelayOptions struct {
	// Interval between polls of the events table. Default 1s. Kick polls at once.
	Interval time.Duration
	// Settle is how long a read stays in the re-read window (see seqWindow). Default 10s.
	Settle time.Duration
	// AfterSeq, when > 0, is where to start. Otherwise the relay starts at the head of the
	// table (EventHead when the source has it, else it pages through and skips events
	// older than MaxAge by this host's clock).
	AfterSeq int64
	// MaxAge: events older than this at the start are history, not news. Default 1m.
	MaxAge time.Duration
	// PageSize of one EventList call. Default 500.
	PageSize int
	// Filter, when set, publishes only the events it accepts.
	Filter func(queue.Event) bool
	Logger *slog.Logger
}

// Relay copies the events table to MQTT: every event once (per relay), in seq order,
// including events whose transaction committed after a higher seq was already read.
//
// Who runs it: every agent runs one over all jobs (RelayOptions zero), and kicks it
// after each queue write of its own. With several agents each event is published once
// per agent; that is harmless by design, since delivery is at least once anyway and
// subscribers dedupe by seq (Follow does). Publishing from every agent needs no leader
// election and keeps events flowing while any agent is alive; the cost is a few small
// messages per event and one indexed query per agent per Interval. A CLI that writes an
// event (submit, cancel) need not run a relay: Follow reads the database too, and the
// wake-up and cancel topics are published directly.
type Relay struct {
	src  EventSource
	pub  EventPublisher
	o    RelayOptions
	log  *slog.Logger
	kick chan struct{}

	mu      sync.Mutex // one Poll at a time
	win     *seqWindow
	started bool
	failing bool
}

// NewRelay returns a relay from src to pub; Run it, or call Poll yourself.
func NewRelay(src EventSource, pub EventPublisher, o RelayOptions) *Relay {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Settle <= 0 {
		o.Settle = 10 * time.Second
	}
	if o.MaxAge <= 0 {
		o.MaxAge = time.Minute
	}
	if o.PageSize <= 0 {
		o.PageSize = 500
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Relay{src: src, pub: pub, o: o, log: o.Logger, kick: make(chan struct{}, 1),
		win: newSeqWindow(o.AfterSeq, o.Settle)}
}

// Kick makes Run poll now (after this process wrote an event). It never blocks.
func (r *Relay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run polls until ctx ends, then returns nil. Database errors are logged and retried
// at the next poll.
func (r *Relay) Run(ctx context.Context) error {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		if _, err := r.Poll(ctx); err != nil && ctx.Err() == nil {
			if !r.failing {
				r.log.Warn("event relay", "error", err)
			}
			r.failing = true
		} else {
			r.failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.kick:
		}
	}
}

// Poll publishes the events not yet published and returns how many it published.
func (r *Relay) Poll(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started && r.o.AfterSeq <= 0 {
		if h, ok := r.src.(EventHead); ok {
			head, err := h.EventLastSeq(ctx)
			if err != nil {
				return 0, fmt.Errorf("relay events: last seq: %w", err)
			}
			r.win.skipTo(head)
			r.started = true
		}
	}
	start := time.Now()
	n := 0
	after := r.win.low
	for {
		evs, err := r.src.EventList(ctx, 0, after, r.o.PageSize)
		if err != nil {
			return n, fmt.Errorf("relay events after seq %d: %w", after, err)
		}
		for _, e := range evs {
			after = e.Seq
			r.win.noteRead(e.Seq)
			if r.win.has(e.Seq) {
				continue
			}
			if !r.started && r.o.AfterSeq <= 0 && time.Since(e.At) > r.o.MaxAge {
				r.win.skipTo(e.Seq)
				continue
			}
			r.win.add(e.Seq)
			if r.o.Filter == nil || r.o.Filter(e) {
				ev := EventFrom(e)
				r.locateResult(ctx, &ev)
				r.pub.PublishEvent(ev)
				n++
			}
		}
		if len(evs) < r.o.PageSize {
			break
		}
	}
	r.started = true
	r.win.readDone(start)
	r.win.advance(time.Now(), 0)
	return n, nil
}

// locateResult adds to a succeeded event's result reference the store that holds it
// and its id there, when that store is not the queue database. A job that cannot be
// read leaves the reference as it is (job and attempt): the event goes out regardless.
func (r *Relay) locateResult(ctx context.Context, ev *Event) {
	js, ok := r.src.(JobSource)
	if !ok || ev.Result == nil {
		return
	}
	j, err := js.JobGet(ctx, ev.Result.Job)
	if err != nil {
		r.log.Debug("event relay: read the job of a succeeded event", "job", ev.Result.Job, "error", err)
		return
	}
	if j.ResultStore == "" || j.ResultStore == "queue" || j.ResultAttempt != ev.Result.Attempt {
		return
	}
	ev.Result.Store = j.ResultStore
	ev.Result.ID = ResultID(ev.Result.Job, ev.Result.Attempt)
}
