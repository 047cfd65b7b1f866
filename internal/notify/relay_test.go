package notify

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"rpt/internal/queue"
)

type recordingPublisher struct {
	mu  sync.Mutex
	evs []Event
}

func (r *recordingPublisher) PublishEvent(e Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
}

func (r *recordingPublisher) seqs() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int64, len(r.evs))
	for i, e := range r.evs {
		out[i] = e.Seq
	}
	return out
}

type headSource struct {
	*fakeEvents
	head int64
}

func (h headSource) EventLastSeq(context.Context) (int64, error) { return h.head, nil }

func TestRelayPublishesEachEventOnceIncludingLateCommits(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src := &fakeEvents{}
	pub := &recordingPublisher{}
	r := NewRelay(src, pub, RelayOptions{AfterSeq: 0, PageSize: 2, Logger: quietLogger()})

	src.commit(ev(1, 1, "r", queue.EventQueued), ev(2, 1, "r", queue.EventRunning), ev(4, 2, "r", queue.EventQueued))
	steps := []struct {
		commit []queue.Event
		want   []int64 // all seqs published so far
	}{
		{nil, []int64{1, 2, 4}},
		{nil, []int64{1, 2, 4}}, // a second poll publishes nothing again
		{[]queue.Event{ev(3, 2, "r", queue.EventRunning)}, []int64{1, 2, 4, 3}}, // committed late, below seq 4
		{[]queue.Event{ev(5, 1, "r", queue.EventSucceeded), ev(6, 2, "r", queue.EventFailed)}, []int64{1, 2, 4, 3, 5, 6}},
	}
	for i, s := range steps {
		src.commit(s.commit...)
		if _, err := r.Poll(ctx); err != nil {
			t.Fatalf("step %d: poll: %v", i, err)
		}
		if got := pub.seqs(); !reflect.DeepEqual(got, s.want) {
			t.Fatalf("step %d: published %v, want %v", i, got, s.want)
		}
	}
	pub.mu.Lock()
	last := pub.evs[len(pub.evs)-2]
	pub.mu.Unlock()
	if last.Result == nil || *last.Result != (ResultRef{Job: 1, Attempt: 1}) {
		t.Errorf("succeeded event published without its result: %+v", last)
	}

	src.setFailing(true)
	if _, err := r.Poll(ctx); err == nil {
		t.Error("poll with the database down = nil error")
	}
}

func TestRelayStartsAtTheHead(t *testing.T) {
	t.Parallel()
	old := ev(1, 1, "r", queue.EventQueued)
	old.At = time.Now().Add(-time.Hour)
	tests := []struct {
		name string
		src  EventSource
		o    RelayOptions
		want []int64
	}{
		{"skips old history by age", &fakeEvents{rows: []queue.Event{old, ev(2, 1, "r", queue.EventRunning)}},
			RelayOptions{}, []int64{2}},
		{"skips to the source's head", headSource{&fakeEvents{rows: []queue.Event{old, ev(2, 1, "r", queue.EventRunning),
			ev(3, 1, "r", queue.EventProgress)}}, 2}, RelayOptions{}, []int64{3}},
		{"starts after the given seq", &fakeEvents{rows: []queue.Event{old, ev(2, 1, "r", queue.EventRunning)}},
			RelayOptions{AfterSeq: 0 + 1}, []int64{2}},
		{"filter", &fakeEvents{rows: []queue.Event{ev(2, 1, "r", queue.EventRunning), ev(3, 2, "s", queue.EventRunning)}},
			RelayOptions{Filter: func(e queue.Event) bool { return e.Report == "s" }}, []int64{3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub := &recordingPublisher{}
			tt.o.Logger = quietLogger()
			if _, err := NewRelay(tt.src, pub, tt.o).Poll(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := pub.seqs(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("published %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSeqWindowForgetsOnlySettledReads(t *testing.T) {
	t.Parallel()
	w := newSeqWindow(0, 10*time.Second)
	t0 := time.Now()
	for _, s := range []int64{1, 2, 4} {
		w.noteRead(s)
		w.add(s)
	}
	w.readDone(t0)
	w.advance(t0.Add(5*time.Second), 0)
	if w.low != 0 {
		t.Errorf("low = %d before the read settled, want 0", w.low)
	}
	w.advance(t0.Add(11*time.Second), 0)
	if w.low != 4 || len(w.seen) != 0 {
		t.Errorf("low = %d seen = %v after settling, want 4 and none", w.low, w.seen)
	}
	if !w.has(3) {
		t.Error("seq 3 below low not treated as handled")
	}
	w.noteRead(9)
	w.readDone(t0.Add(12 * time.Second))
	w.advance(t0.Add(30*time.Second), 7) // seq 7 still pending
	if w.low != 6 {
		t.Errorf("low = %d, want 6 (held back by pending seq 7)", w.low)
	}
}

func TestRelayRunsOverMQTT(t *testing.T) {
	t.Parallel()
	for _, bc := range brokers() {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			u := bc.url(t)
			prefix := testPrefix(t)
			src := &fakeEvents{}
			// Two agents each run a relay: every event is published twice.
			a1 := connect(t, Options{URL: u, Prefix: prefix})
			a2 := connect(t, Options{URL: u, Prefix: prefix})
			watcher := connect(t, Options{URL: u, Prefix: prefix})
			waitConnected(t, watcher)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			for _, c := range []*Client{a1, a2} {
				r := NewRelay(src, c, RelayOptions{Interval: 20 * time.Millisecond, Logger: quietLogger()})
				go func() { _ = r.Run(ctx) }()
			}

			want := lifecycle(9, "r")
			src.commit(want[0])
			var got []queue.Event
			err := Follow(ctx, src, watcher, []int64{9}, "", 0, func(e queue.Event) {
				got = append(got, e)
				if len(got) < len(want) {
					src.commit(want[len(got)]) // the next event happens after the watcher saw this one
				}
			})
			if err != nil {
				t.Errorf("follow = %v, want nil at the terminal event", err)
			}
			if !reflect.DeepEqual(seqsOf(got), seqsOf(want)) {
				t.Errorf("followed %v, want %v", seqsOf(got), seqsOf(want))
			}
		})
	}
}
