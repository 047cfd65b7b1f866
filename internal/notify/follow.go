package notify

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"rpt/internal/queue"
)

// Follow calls fn with the events of the jobs ids and of every job of report (with
// neither: of all jobs) that have seq > afterSeq, once each, gap-free and in order. It
// is `rpt watch` and `rpt submit --wait`: see Follower for how. With ids and no report it
// returns nil once every one of those jobs has delivered an event of a terminal status
// that the database confirms (a broker's word alone never ends it);
// otherwise it runs until ctx ends and returns ctx.Err(). sub may be nil (poll only).
// afterSeq 0 replays the jobs' whole history (what submit --wait wants); a watcher of a
// report that wants only news passes the current head seq.
func Follow(ctx context.Context, src EventSource, sub *Client, ids []int64, report string, afterSeq int64, fn func(queue.Event)) error {
	f := &Follower{Source: src, Client: sub, IDs: ids, Report: report, AfterSeq: afterSeq}
	return f.Run(ctx, fn)
}

// Follower merges live MQTT events with the events table, which stays the source of
// truth:
//
//   - It subscribes first, then reads the table after AfterSeq, so nothing falls between.
//   - Every live event triggers a read of the table; what the read returns is delivered
//     in seq order, so an event MQTT lost (reconnect, broker restart, no relay running)
//     is delivered before the later one that revealed the gap.
//   - A live event is a hint, never the truth: it is delivered only once a read of the
//     table returns it (the table's copy, not the broker's). While it waits, later events
//     of its job wait with it, so a job's events are never out of order. One the table
//     still does not show after Hold, while the table answers, is dropped and logged:
//     the relays publish only rows they read, so it is forged (or its job was pruned).
//     A forged "succeeded" can therefore never end a wait, and a watcher never shows a
//     job that does not exist.
//   - While the table is unreachable, live events go to Unconfirmed (when set) as they
//     come, marked so by the caller, and are delivered to fn once the table has them;
//     they never end the follow.
//   - Without a broker it polls the table every PollDown (500 ms); with one, every PollUp
//     as a safety net.
//   - Reads re-read a recent window (Settle) and dedupe by seq: an event whose
//     transaction commits after a higher seq was read is still delivered, once.
//
// Order: each job's events come in seq order (both stores write a job's events under the
// job's row lock, so they commit in seq order). Events of different jobs come in seq
// order within what is known at the time; a late commit of one job can follow a higher
// seq of another, rather than be lost.
type Follower struct {
	Source   EventSource
	Client   *Client // nil: poll only
	IDs      []int64
	Report   string
	AfterSeq int64

	PollDown time.Duration // default 500ms
	PollUp   time.Duration // default 2s
	Hold     time.Duration // default 1s
	Settle   time.Duration // default 10s
	PageSize int           // default 500
	Logger   *slog.Logger

	// Unconfirmed, when set, is called with a live event the table cannot confirm
	// because it does not answer, once per seq; the same event reaches fn later if the
	// table turns out to have it. Nil: such events are not shown.
	Unconfirmed func(queue.Event)

	ignored atomic.Int64 // live events dropped: the table answered without them
}

// maxPending bounds the live events held for confirmation (a broker flooding a
// follower whose table is down); past it, live events are left to the table reads.
const maxPending = 10000

// holdRetry is how soon the table is read again while a live event waits for it.
const holdRetry = 50 * time.Millisecond

type pendingEvent struct {
	ev        queue.Event
	received  time.Time
	confirmed bool // the table returned it
	shown     bool // passed to Unconfirmed
}

// inbox collects live events from the MQTT delivery goroutine, which must not block.
type inbox struct {
	mu     sync.Mutex
	evs    []queue.Event
	signal chan struct{}
}

func (b *inbox) push(e queue.Event) {
	b.mu.Lock()
	b.evs = append(b.evs, e)
	b.mu.Unlock()
	select {
	case b.signal <- struct{}{}:
	default:
	}
}

func (b *inbox) drain() []queue.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	evs := b.evs
	b.evs = nil
	return evs
}

// Run delivers events to fn (on the calling goroutine) until the followed jobs end or
// ctx ends; see Follow.
func (f *Follower) Run(ctx context.Context, fn func(queue.Event)) error {
	if f.Source == nil {
		return fmt.Errorf("follow events: no event source")
	}
	pollDown, pollUp, hold, settle, page := f.PollDown, f.PollUp, f.Hold, f.Settle, f.PageSize
	if pollDown <= 0 {
		pollDown = 500 * time.Millisecond
	}
	if pollUp <= 0 {
		pollUp = 2 * time.Second
	}
	if hold <= 0 {
		hold = time.Second
	}
	if settle <= 0 {
		settle = 10 * time.Second
	}
	if settle <= hold {
		settle = 2 * hold // a held event must be handled before low can pass it
	}
	if page <= 0 {
		page = 500
	}
	log := f.Logger
	if log == nil {
		log = slog.Default()
	}

	idSet := make(map[int64]bool, len(f.IDs))
	for _, id := range f.IDs {
		idSet[id] = true
	}
	all := len(f.IDs) == 0 && f.Report == ""
	match := func(e queue.Event) bool {
		return all || idSet[e.JobID] || (f.Report != "" && e.Report == f.Report)
	}
	untilTerminal := len(f.IDs) > 0 && f.Report == ""
	terminal := map[int64]bool{}

	live := &inbox{signal: make(chan struct{}, 1)}
	if f.Client != nil {
		unsubscribe := f.Client.SubscribeJobs(f.IDs, f.Report, func(e Event) {
			if match(e.Event) {
				live.push(e.Event)
			}
		})
		defer unsubscribe()
	}

	win := newSeqWindow(f.AfterSeq, settle)
	pending := map[int64]*pendingEvent{}
	lastOfJob := map[int64]int64{}
	dbOK := false
	failing := false

	read := func() error {
		start := time.Now()
		take := func(evs []queue.Event) {
			for _, e := range evs {
				win.noteRead(e.Seq)
				if !match(e) || win.has(e.Seq) {
					continue
				}
				if p := pending[e.Seq]; p != nil {
					p.ev, p.confirmed = e, true
				} else {
					pending[e.Seq] = &pendingEvent{ev: e, received: start, confirmed: true}
				}
			}
		}
		readAll := func(jobID int64) error {
			after := win.low
			for {
				evs, err := f.Source.EventList(ctx, jobID, after, page)
				if err != nil {
					return fmt.Errorf("follow events after seq %d: %w", after, err)
				}
				take(evs)
				if len(evs) < page {
					return nil
				}
				after = evs[len(evs)-1].Seq
			}
		}
		if untilTerminal {
			for _, id := range f.IDs {
				if terminal[id] {
					continue
				}
				if err := readAll(id); err != nil {
					return err
				}
			}
		} else if err := readAll(0); err != nil {
			return err
		}
		win.readDone(start)
		return nil
	}

	deliver := func() {
		seqs := make([]int64, 0, len(pending))
		for s := range pending {
			seqs = append(seqs, s)
		}
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		now := time.Now()
		blocked := map[int64]bool{}
		var lowestLeft int64
		for _, s := range seqs {
			p := pending[s]
			job := p.ev.JobID
			if !p.confirmed {
				switch {
				case dbOK && now.Sub(p.received) >= hold:
					// The table answers and does not have it: not an event of rpt's.
					delete(pending, s)
					ignored := f.ignored.Add(1)
					if ignored == 1 || ignored%1000 == 0 {
						log.Warn("follow events: ignored a live event the queue database does not have (forged, or its job was pruned)",
							"job", job, "seq", s, "event", p.ev.Event, "ignored", ignored)
					}
					continue
				case !dbOK && !p.shown:
					p.shown = true
					if f.Unconfirmed != nil {
						f.Unconfirmed(p.ev)
					}
				}
			}
			if blocked[job] || !p.confirmed {
				blocked[job] = true
				if lowestLeft == 0 {
					lowestLeft = s
				}
				continue
			}
			delete(pending, s)
			win.add(s)
			if s < lastOfJob[job] {
				log.Warn("job event out of order: delivered late rather than lost", "job", job, "seq", s, "after", lastOfJob[job])
			} else {
				lastOfJob[job] = s
				if p.ev.Status.Terminal() {
					terminal[job] = true
				}
			}
			fn(p.ev)
		}
		win.advance(now, lowestLeft)
	}

	done := func() bool {
		if !untilTerminal {
			return false
		}
		for _, id := range f.IDs {
			if !terminal[id] {
				return false
			}
		}
		return true
	}

	timer := time.NewTimer(0)
	defer timer.Stop()
	readNow := true
	for {
		var changed <-chan struct{}
		connected := false
		if f.Client != nil {
			changed = f.Client.stateChanged()
			connected = f.Client.Connected()
		}
		if readNow {
			readNow = false
			if err := read(); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				dbOK = false
				if !failing {
					log.Warn("follow events: reading the queue database; using live events only until it is back", "error", err)
				}
				failing = true
			} else {
				dbOK, failing = true, false
			}
		}
		deliver()
		if done() {
			return nil
		}
		wait := pollUp
		if !connected {
			wait = pollDown
		}
		if len(pending) > 0 && dbOK && wait > holdRetry {
			wait = holdRetry
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-live.signal:
			for _, e := range live.drain() {
				if win.has(e.Seq) || pending[e.Seq] != nil || len(pending) >= maxPending {
					continue
				}
				pending[e.Seq] = &pendingEvent{ev: e, received: time.Now()}
			}
			readNow = true
		case <-timer.C:
			readNow = true
		case <-changed:
			readNow = true
		}
	}
}
