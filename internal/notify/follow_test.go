package notify

import (
	"context"
	"errors"
	"net"
	"reflect"
	"testing"
	"time"

	"rpt/internal/queue"
)

type followRun struct {
	got  chan queue.Event
	done chan error
}

func startFollow(t *testing.T, ctx context.Context, f *Follower) followRun {
	t.Helper()
	if f.Logger == nil {
		f.Logger = quietLogger()
	}
	r := followRun{got: make(chan queue.Event, 100), done: make(chan error, 1)}
	go func() { r.done <- f.Run(ctx, func(e queue.Event) { r.got <- e }) }()
	return r
}

// expect waits for the next events and checks their seqs.
func (r followRun) expect(t *testing.T, what string, seqs ...int64) {
	t.Helper()
	for _, want := range seqs {
		if got := recv(t, r.got, what).Seq; got != want {
			t.Fatalf("%s: delivered seq %d, want %d", what, got, want)
		}
	}
}

func (r followRun) expectNothingMore(t *testing.T) {
	t.Helper()
	select {
	case e := <-r.got:
		t.Errorf("unexpected event delivered: seq %d", e.Seq)
	default:
	}
}

func TestFollowMergesDatabaseAndMQTT(t *testing.T) {
	t.Parallel()
	cases := append([]brokerCase{{"poll only", nil}}, brokers()...)
	for _, bc := range cases {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			src := &fakeEvents{}
			var pub, sub *Client
			if bc.url != nil {
				u := bc.url(t)
				prefix := testPrefix(t)
				pub = connect(t, Options{URL: u, Prefix: prefix})
				sub = connect(t, Options{URL: u, Prefix: prefix})
				waitConnected(t, sub)
			}
			both := func(e queue.Event) {
				src.commit(e)
				if pub != nil {
					pub.PublishEvent(EventFrom(e))
				}
			}
			f := &Follower{Source: src, Client: sub, IDs: []int64{1}, Hold: 100 * time.Millisecond, PollDown: 50 * time.Millisecond}
			if sub != nil {
				f.PollUp = time.Hour // only MQTT makes it read again: proves the gap repair
			}
			src.commit(ev(1, 1, "r", queue.EventQueued)) // before Follow: database only
			other := ev(2, 2, "r", queue.EventQueued)    // another job: never delivered
			both(other)
			r := startFollow(t, t.Context(), f)
			r.expect(t, "backlog from the database", 1)

			if pub != nil {
				// Forged: on MQTT only, never in the table. Neither delivered nor an end.
				pub.PublishEvent(EventFrom(ev(3, 1, "r", queue.EventSucceeded)))
				pub.PublishEvent(EventFrom(ev(99, 1, "r", queue.EventSucceeded)))
				waitIgnored(t, f, 2)
			}
			both(ev(3, 1, "r", queue.EventRunning)) // the real seq 3
			if e := recv(t, r.got, "seq 3"); e.Seq != 3 || e.Event != queue.EventRunning {
				t.Fatalf("delivered seq %d %s, want the table's seq 3 running", e.Seq, e.Event)
			}

			src.commit(ev(4, 1, "r", queue.EventProgress), ev(5, 1, "r", queue.EventProgress)) // lost on MQTT
			both(ev(6, 1, "r", queue.EventProgress))
			r.expect(t, "gap filled from the database, in order", 4, 5, 6)

			both(ev(7, 1, "r", queue.EventProgress))
			if pub != nil {
				pub.PublishEvent(EventFrom(ev(7, 1, "r", queue.EventProgress))) // a second relay
			}
			both(ev(8, 1, "r", queue.EventSucceeded))
			r.expect(t, "duplicate delivered once", 7, 8)
			if err := recv(t, r.done, "end of follow"); err != nil {
				t.Errorf("follow = %v, want nil after the job ended", err)
			}
			r.expectNothingMore(t)
		})
	}
}

func TestFollowDeliversLateCommitsAcrossJobs(t *testing.T) {
	t.Parallel()
	cases := append([]brokerCase{{"poll only", nil}}, brokers()...)
	for _, bc := range cases {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			src := &fakeEvents{}
			var pub, sub *Client
			if bc.url != nil {
				u := bc.url(t)
				prefix := testPrefix(t)
				pub = connect(t, Options{URL: u, Prefix: prefix})
				sub = connect(t, Options{URL: u, Prefix: prefix})
				waitConnected(t, sub)
			}
			both := func(evs ...queue.Event) {
				src.commit(evs...)
				for _, e := range evs {
					if pub != nil {
						pub.PublishEvent(EventFrom(e))
					}
				}
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			r := startFollow(t, ctx, &Follower{Source: src, Client: sub, Report: "r", AfterSeq: 10,
				PollDown: 20 * time.Millisecond, PollUp: 20 * time.Millisecond, Hold: 50 * time.Millisecond})

			src.commit(ev(9, 1, "r", queue.EventQueued)) // before AfterSeq: not delivered
			both(ev(11, 1, "r", queue.EventQueued), ev(12, 2, "r", queue.EventQueued), ev(13, 3, "other", queue.EventQueued))
			r.expect(t, "first events", 11, 12)
			// Seq 14 (job 1) was taken by a transaction that commits after seq 15 (job 2).
			both(ev(15, 2, "r", queue.EventRunning))
			r.expect(t, "the higher seq", 15)
			src.commit(ev(14, 1, "r", queue.EventRunning)) // committed late, never on MQTT
			r.expect(t, "the late commit", 14)
			both(ev(16, 1, "r", queue.EventSucceeded), ev(17, 2, "r", queue.EventSucceeded))
			r.expect(t, "the end", 16, 17)
			cancel()
			if err := recv(t, r.done, "end of follow"); !errors.Is(err, context.Canceled) {
				t.Errorf("follow = %v, want context.Canceled", err)
			}
			r.expectNothingMore(t)
		})
	}
}

func TestFollowShowsLiveEventsUnconfirmedWhileTheDatabaseIsDown(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "127.0.0.1:0")
	prefix := testPrefix(t)
	pub := connect(t, Options{URL: agentURL(b), Prefix: prefix})
	sub := connect(t, Options{URL: agentURL(b), Prefix: prefix})
	waitConnected(t, sub)
	src := &fakeEvents{}
	src.setFailing(true)
	unconfirmed := make(chan queue.Event, 100)
	r := startFollow(t, t.Context(), &Follower{Source: src, Client: sub, IDs: []int64{4},
		PollDown: 20 * time.Millisecond, PollUp: 20 * time.Millisecond, Hold: time.Hour,
		Unconfirmed: func(e queue.Event) { unconfirmed <- e }})
	waitReads(t, src, 1) // Follow subscribes before its first read
	evs := lifecycle(4, "r")
	for _, e := range evs[:3] {
		src.commit(e)
		pub.PublishEvent(EventFrom(e))
	}
	for _, want := range seqsOf(evs[:3]) {
		if got := recv(t, unconfirmed, "unconfirmed live event").Seq; got != want {
			t.Fatalf("unconfirmed seq %d, want %d", got, want)
		}
	}
	// A terminal event while the database is down is shown, unconfirmed, and ends nothing.
	pub.PublishEvent(EventFrom(ev(900, 4, "r", queue.EventSucceeded)))
	if got := recv(t, unconfirmed, "unconfirmed terminal event").Seq; got != 900 {
		t.Fatalf("unconfirmed seq %d, want 900", got)
	}
	r.expectNothingMore(t)
	select {
	case err := <-r.done:
		t.Fatalf("follow ended on an unconfirmed terminal event: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	src.commit(evs[3:]...) // only in the database
	src.setFailing(false)
	r.expect(t, "every event once the database confirms it", seqsOf(evs)...)
	if err := recv(t, r.done, "end of follow"); err != nil {
		t.Errorf("follow = %v, want nil", err)
	}
	r.expectNothingMore(t)
}

func TestFollowPollsWhenTheBrokerIsUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	sub := connect(t, Options{URL: "tcp://" + addr})
	src := &fakeEvents{}
	evs := lifecycle(5, "r")
	src.commit(evs[0])
	var got []queue.Event
	err = Follow(t.Context(), src, sub, []int64{5}, "", 0, func(e queue.Event) {
		got = append(got, e)
		if len(got) < len(evs) {
			src.commit(evs[len(got)])
		}
	})
	if err != nil {
		t.Errorf("follow = %v, want nil", err)
	}
	if !reflect.DeepEqual(got, evs) {
		t.Errorf("followed %v, want %v", seqsOf(got), seqsOf(evs))
	}
}

// waitIgnored waits until f dropped n live events the table does not have.
func waitIgnored(t *testing.T, f *Follower, n int64) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for f.ignored.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("follower ignored %d live events, want %d", f.ignored.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A forged terminal event (published by anyone who can reach the broker, never in the
// table) must not end a wait nor be shown; the table's own end does.
func TestFollowForgedTerminalEventEndsNothing(t *testing.T) {
	t.Parallel()
	for _, bc := range brokers() {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			u := bc.url(t)
			prefix := testPrefix(t)
			pub := connect(t, Options{URL: u, Prefix: prefix})
			sub := connect(t, Options{URL: u, Prefix: prefix})
			waitConnected(t, sub)
			waitConnected(t, pub)
			src := &fakeEvents{}
			src.commit(ev(1, 7, "r", queue.EventQueued))
			f := &Follower{Source: src, Client: sub, IDs: []int64{7}, Hold: 50 * time.Millisecond,
				PollDown: 20 * time.Millisecond, PollUp: time.Hour}
			r := startFollow(t, t.Context(), f)
			r.expect(t, "the queued event", 1)
			pub.PublishEvent(EventFrom(ev(2, 7, "r", queue.EventSucceeded)))
			waitIgnored(t, f, 1)
			select {
			case err := <-r.done:
				t.Fatalf("a forged succeeded event ended the follow (err %v)", err)
			case e := <-r.got:
				t.Fatalf("a forged event was delivered: seq %d %s", e.Seq, e.Event)
			case <-time.After(200 * time.Millisecond): // 4 holds
			}
			// The real end, from the table (MQTT only makes it read now).
			src.commit(ev(3, 7, "r", queue.EventFailed))
			pub.PublishEvent(EventFrom(ev(3, 7, "r", queue.EventFailed)))
			if e := recv(t, r.got, "the real end"); e.Seq != 3 || e.Status != queue.StatusFailed {
				t.Fatalf("delivered seq %d %s, want seq 3 failed", e.Seq, e.Status)
			}
			if err := recv(t, r.done, "end of follow"); err != nil {
				t.Errorf("follow = %v, want nil", err)
			}
		})
	}
}

// Watching every job (rpt watch with no ID): an event of a job the table does not have
// is not shown.
func TestFollowAllShowsNoJobThatDoesNotExist(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "127.0.0.1:0")
	prefix := testPrefix(t)
	pub := connect(t, Options{URL: agentURL(b), Prefix: prefix})
	sub := connect(t, Options{URL: clientURL(b), Prefix: prefix})
	waitConnected(t, sub)
	src := &fakeEvents{}
	f := &Follower{Source: src, Client: sub, Hold: 50 * time.Millisecond, PollDown: 20 * time.Millisecond, PollUp: time.Hour}
	r := startFollow(t, t.Context(), f)
	waitReads(t, src, 1)
	pub.PublishEvent(EventFrom(ev(5, 404, "r", queue.EventSucceeded))) // no job 404
	time.Sleep(200 * time.Millisecond)                                 // 4 holds: shown by now if it ever is
	real := ev(6, 1, "r", queue.EventQueued)
	src.commit(real)
	pub.PublishEvent(EventFrom(real))
	r.expect(t, "the real job only", 6)
	r.expectNothingMore(t)
	waitIgnored(t, f, 1)
}
