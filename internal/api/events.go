package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"rpt/internal/errclass"
	"rpt/internal/notify"
	"rpt/internal/queue"
)

// DefaultHeartbeat is how often an idle event stream gets a comment line, so proxies
// and browsers keep it open and a dead client is noticed.
const DefaultHeartbeat = 15 * time.Second

// subBuffer is how many events a slow client may fall behind the live stream before it
// is cut off; it reconnects with Last-Event-ID and catches up from the table.
const subBuffer = 512

// hub fans one notify.Follower out to every event-stream client of the process: the
// queue is read once however many browsers watch. The follower runs while anyone
// listens and stops with the last one.
type hub struct {
	src    notify.EventSource
	client *notify.Client
	log    *slog.Logger

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	stop   context.CancelFunc
	done   chan struct{}
	failed error // why the follower stopped, when it did on its own
}

type subscriber struct {
	ch   chan queue.Event
	gone chan struct{} // closed when the client fell too far behind
}

// subscribe registers a client. The follower is started first if need be, from the
// table's head read before subscribe returns, so a backfill from the table read after
// subscribe overlaps the live stream: nothing falls between (the caller drops seqs it
// has sent).
func (h *hub) subscribe(ctx context.Context) (*subscriber, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stop == nil {
		head, err := h.head(ctx)
		if err != nil {
			return nil, err
		}
		fctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		h.stop, h.done = cancel, done
		f := &notify.Follower{Source: h.src, Client: h.client, AfterSeq: head}
		go func() {
			defer close(done)
			err := f.Run(fctx, h.publish)
			if err != nil && fctx.Err() == nil {
				h.log.Warn("api: event follower stopped", "error", err)
				h.mu.Lock()
				for s := range h.subs { // their streams end; clients reconnect and resume
					close(s.gone)
					delete(h.subs, s)
				}
				h.stop, h.done = nil, nil
				h.mu.Unlock()
			}
		}()
	}
	s := &subscriber{ch: make(chan queue.Event, subBuffer), gone: make(chan struct{})}
	if h.subs == nil {
		h.subs = map[*subscriber]struct{}{}
	}
	h.subs[s] = struct{}{}
	return s, nil
}

func (h *hub) head(ctx context.Context) (int64, error) {
	if eh, ok := h.src.(notify.EventHead); ok {
		return eh.EventLastSeq(ctx)
	}
	return 0, nil
}

// unsubscribe removes a client; the last one stops the follower.
func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	var done chan struct{}
	if len(h.subs) == 0 && h.stop != nil {
		h.stop()
		done = h.done
		h.stop, h.done = nil, nil
	}
	h.mu.Unlock()
	if done != nil {
		<-done
	}
}

// publish hands an event to every client without waiting for any: a client whose
// buffer is full is cut off (it resumes from the table with Last-Event-ID).
func (h *hub) publish(e queue.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.ch <- e:
		default:
			close(s.gone)
			delete(h.subs, s)
		}
	}
}

// close stops the follower (the server is shutting down).
func (h *hub) close() {
	h.mu.Lock()
	var done chan struct{}
	if h.stop != nil {
		h.stop()
		done = h.done
		h.stop, h.done = nil, nil
	}
	for s := range h.subs {
		close(s.gone)
		delete(h.subs, s)
	}
	h.mu.Unlock()
	if done != nil {
		<-done
	}
}

// eventFilter is what a stream carries: one job's events, one report's, or all.
type eventFilter struct {
	job    int64
	report string
}

func (f eventFilter) match(e queue.Event) bool {
	return (f.job == 0 || e.JobID == f.job) && (f.report == "" || e.Report == f.report)
}

// backfillPage is how many events one table read of a catching-up stream returns.
const backfillPage = 500

// events is GET /api/v1/events: Server-Sent Events, one per queue event, with the
// event's seq as its id. A client resumes with Last-Event-ID (browsers send it when
// they reconnect; ?after= does the same for a first connect), and gets every event
// after it from the table, then the live ones: across a restart of this server, or
// another replica, nothing is missed and nothing repeated. Without either, a stream
// of one job starts with the job's whole history; other streams start with news.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f eventFilter
	if v := q.Get("job"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			s.fail(w, r, errclass.Errorf(errclass.Invalid, "job %q: want a job id", v), "job")
			return
		}
		f.job = n
	}
	f.report = q.Get("report")
	after := int64(-1)
	resume, field := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if resume == "" {
		resume, field = q.Get("after"), "after"
	}
	if resume != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(resume), 10, 64)
		if err != nil || n < 0 {
			s.fail(w, r, errclass.Errorf(errclass.Invalid, "%s %q: want an event seq (a whole number)", field, resume), field)
			return
		}
		after = n
	}
	if f.job != 0 {
		if _, err := s.Jobs.Get(r.Context(), f.job); err != nil {
			s.fail(w, r, err, "")
			return
		}
	}
	sub, err := s.hub().subscribe(r.Context())
	if err != nil {
		s.fail(w, r, fmt.Errorf("events: %w", err), "")
		return
	}
	defer s.hub().unsubscribe(sub)
	if after < 0 {
		after = 0
		if f.job == 0 {
			if after, err = s.Jobs.Store.EventLastSeq(r.Context()); err != nil {
				s.fail(w, r, fmt.Errorf("events: %w", err), "")
				return
			}
		}
	}

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream lasts as long as the client wants
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	last := after
	send := func(e queue.Event) error {
		if e.Seq <= last {
			return nil
		}
		last = e.Seq
		if !f.match(e) {
			return nil
		}
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "id: %d\ndata: %s\n\n", e.Seq, b)
		return err
	}
	// Catch up from the table: everything after the client's last event.
	for {
		page, err := s.Jobs.Store.EventList(r.Context(), f.job, last, backfillPage)
		if err != nil {
			// Headers are sent: end the stream; the client reconnects and resumes.
			s.log().Warn("api: events: read the table", "error", err)
			return
		}
		for _, e := range page {
			if err := send(e); err != nil {
				return
			}
		}
		if len(page) < backfillPage {
			break
		}
	}
	if err := rc.Flush(); err != nil {
		return
	}
	beat := s.Heartbeat
	if beat <= 0 {
		beat = DefaultHeartbeat
	}
	tick := time.NewTicker(beat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.gone:
			return
		case e := <-sub.ch:
			if err := send(e); err != nil {
				return
			}
			// Whatever else is waiting goes in the same write.
			for n := len(sub.ch); n > 0; n-- {
				if err := send(<-sub.ch); err != nil {
					return
				}
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
