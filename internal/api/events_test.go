package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"rpt/internal/queue"
)

// sseEvent is one event of a stream, as a client parses it.
type sseEvent struct {
	id   int64
	data queue.Event
}

// stream is an open event stream.
type stream struct {
	t      testing.TB
	res    *http.Response
	lines  *bufio.Scanner
	cancel context.CancelFunc
	beats  int
}

// openStream GETs path as token with a Last-Event-ID (when lastID >= 0) and returns
// the open stream, or the response when it is not one.
func (f *fixture) openStream(base, path, token string, lastID int64) (*stream, response) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if lastID >= 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(lastID, 10))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		f.t.Fatal(err)
	}
	if res.StatusCode != 200 {
		defer cancel()
		defer res.Body.Close()
		var b strings.Builder
		_, _ = bufio.NewReader(res.Body).WriteTo(&b)
		return nil, response{res.StatusCode, res.Header, []byte(b.String())}
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		f.t.Fatalf("%s: Content-Type %q", path, ct)
	}
	s := &stream{t: f.t, res: res, lines: bufio.NewScanner(res.Body), cancel: cancel}
	f.t.Cleanup(s.close)
	return s, response{status: 200, header: res.Header}
}

func (s *stream) close() { s.cancel(); s.res.Body.Close() }

// next reads the next event, counting heartbeats on the way; it fails the test after
// 10 s without one.
func (s *stream) next() sseEvent {
	s.t.Helper()
	type result struct {
		ev  sseEvent
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var ev sseEvent
		for s.lines.Scan() {
			line := s.lines.Text()
			switch {
			case line == ": heartbeat":
				s.beats++
			case strings.HasPrefix(line, "id: "):
				ev.id, _ = strconv.ParseInt(line[4:], 10, 64)
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[6:]), &ev.data); err != nil {
					ch <- result{err: err}
					return
				}
			case line == "" && ev.id != 0:
				ch <- result{ev: ev}
				return
			}
		}
		ch <- result{err: fmt.Errorf("stream ended: %v", s.lines.Err())}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			s.t.Fatal(r.err)
		}
		return r.ev
	case <-time.After(10 * time.Second):
		s.cancel()
		s.t.Fatal("no event within 10s")
	}
	return sseEvent{}
}

// tableAfter is every event of the queue after seq, in seq order.
func (f *fixture) tableAfter(seq int64) []queue.Event {
	f.t.Helper()
	evs, err := f.st.EventList(context.Background(), 0, seq, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return evs
}

// A client that reconnects with Last-Event-ID, to a server started after the one it
// was reading from stopped, gets every event after that id exactly once, in order, and
// then the live ones. Who submitted and cancelled is on the events.
func TestEventStreamResumesAcrossRestart(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		view := f.tokens[queue.RoleViewer]
		first := f.submit(1)
		f.submit(2)
		s, _ := f.openStream(f.srv.URL, "/api/v1/events?after=0", view, -1)
		var got []int64
		for len(got) < 2 {
			e := s.next()
			if e.id != e.data.Seq {
				t.Fatalf("event id %d, seq %d: the id must be the seq", e.id, e.data.Seq)
			}
			got = append(got, e.id)
		}
		// Live: an event after the stream began.
		third := f.submit(3)
		e := s.next()
		if e.data.JobID != third || e.data.Event != queue.EventQueued || e.data.By != "api:submitter-1" {
			t.Fatalf("live event: %+v, want job %d queued by api:submitter-1", e.data, third)
		}
		last := e.id
		// The server stops; meanwhile the queue moves on.
		s.close()
		f.srv.Close()
		f.api.Close()
		if r := f.doOn(f.srv.URL, "GET", "/api/v1/jobs", view); r != nil {
			t.Fatalf("the old server still answers")
		}
		f.submit4Direct()
		if _, err := f.st.JobCancel(context.Background(), first, "cli:offline"); err != nil {
			t.Fatal(err)
		}
		missed := f.tableAfter(last)
		if len(missed) != 2 {
			t.Fatalf("%d events while down, want 2", len(missed))
		}
		// Another server on the same queue: resume.
		f.api = f.newServer()
		srv2 := httptest.NewServer(f.api.Handler())
		t.Cleanup(srv2.Close)
		f.srv = srv2 // f.submit and f.do go to the running server from here on
		s2, _ := f.openStream(srv2.URL, "/api/v1/events", view, last)
		for _, want := range missed {
			e := s2.next()
			if e.id != want.Seq || e.data.JobID != want.JobID || e.data.Event != want.Event {
				t.Fatalf("resumed: got seq %d job %d %s, want seq %d job %d %s", e.id, e.data.JobID, e.data.Event, want.Seq, want.JobID, want.Event)
			}
			if want.Event == queue.EventCancelled && e.data.By != "cli:offline" {
				t.Errorf("cancel event by %q, want cli:offline", e.data.By)
			}
		}
		// Then live again, with no repeat of what came from the table.
		r := f.doOn(srv2.URL, "POST", fmt.Sprintf("/api/v1/jobs/%d/retry", first), f.tokens[queue.RoleSubmitter])
		if r == nil || r.status != 201 {
			t.Fatalf("retry: %+v", r)
		}
		e = s2.next()
		if e.id <= missed[len(missed)-1].Seq || e.data.Event != queue.EventQueued || e.data.By != "api:submitter-1" {
			t.Errorf("after resume: %+v (id %d), want a new queued event by api:submitter-1", e.data, e.id)
		}
		if s2.beats == 0 {
			// Heartbeats come every 100 ms in this fixture; one must have passed by now,
			// or at the latest before the next event.
			time.Sleep(300 * time.Millisecond)
			f.submit(9)
			s2.next()
			if s2.beats == 0 {
				t.Errorf("no heartbeat on an idle stream")
			}
		}
	})
}

// submit4Direct queues a job without the API (as the CLI would while the API is down).
func (f *fixture) submit4Direct() {
	f.t.Helper()
	if _, err := f.st.JobEnqueue(context.Background(), queue.JobEnqueueParams{Kind: queue.KindReport, Report: "numbers",
		Definition: []byte(numbersDef), DefinitionSHA256: strings.Repeat("0", 64), Params: []byte(`{"n":4}`), Source: "demo",
		MaxAttempts: 1, SubmittedBy: "cli:offline", Origin: queue.OriginCLI}); err != nil {
		f.t.Fatal(err)
	}
}

// doOn is do against another server; nil when the server does not answer.
func (f *fixture) doOn(base, method, path, token string) *response {
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	return &response{status: res.StatusCode, header: res.Header}
}

// A stream of one job carries that job's events only, from its first; a report's,
// that report's; bad filters and resume ids are 400 naming the field, an unknown job
// 404, and nothing is streamed to a caller without a token.
func TestEventStreamFilters(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		view := f.tokens[queue.RoleViewer]
		a := f.submit(1)
		b := f.submit(2)
		s, _ := f.openStream(f.srv.URL, fmt.Sprintf("/api/v1/events?job=%d", b), view, -1)
		if e := s.next(); e.data.JobID != b || e.data.Event != queue.EventQueued {
			t.Errorf("job stream starts with %+v, want job %d queued", e.data, b)
		}
		if _, err := f.st.JobCancel(context.Background(), a, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := f.st.JobCancel(context.Background(), b, ""); err != nil {
			t.Fatal(err)
		}
		if e := s.next(); e.data.JobID != b || e.data.Event != queue.EventCancelled {
			t.Errorf("job stream: %+v, want only job %d's cancel", e.data, b)
		}
		rs, _ := f.openStream(f.srv.URL, "/api/v1/events?report=periods&after=0", view, -1)
		r := f.do("POST", "/api/v1/jobs", f.tokens[queue.RoleSubmitter], `{"report":"periods","params":{"start_period":"202401","end_period":"202402"}}`)
		if r.status != 201 {
			t.Fatalf("submit periods: %d %s", r.status, r.body)
		}
		if e := rs.next(); e.data.Report != "periods" {
			t.Errorf("report stream: %+v", e.data)
		}
		for _, c := range []struct {
			path, last string
			status     int
			field      string
		}{
			{"/api/v1/events?job=x", "", 400, "job"},
			{"/api/v1/events?job=99999", "", 404, ""},
			{"/api/v1/events?after=-3", "", 400, "after"},
			{"/api/v1/events", "abc", 400, "Last-Event-ID"},
		} {
			var hdr []string
			if c.last != "" {
				hdr = []string{"Last-Event-ID", c.last}
			}
			r := f.do("GET", c.path, view, "", hdr...)
			if _, _, field := r.errorOf(t); r.status != c.status || field != c.field {
				t.Errorf("%s (Last-Event-ID %q): %d %s", c.path, c.last, r.status, r.body)
			}
		}
		if _, r := f.openStream(f.srv.URL, "/api/v1/events", "", -1); r.status != 401 {
			t.Errorf("events without a token: %d", r.status)
		}
	})
}

// Many clients share one follower: every one gets every event.
func TestEventStreamFanOut(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		view := f.tokens[queue.RoleViewer]
		var streams []*stream
		for range 5 {
			s, _ := f.openStream(f.srv.URL, "/api/v1/events", view, -1)
			streams = append(streams, s)
		}
		var ids []int64
		for n := range 3 {
			ids = append(ids, f.submit(n))
		}
		for i, s := range streams {
			for _, id := range ids {
				if e := s.next(); e.data.JobID != id {
					t.Errorf("client %d: job %d, want %d", i, e.data.JobID, id)
				}
			}
		}
	})
}
