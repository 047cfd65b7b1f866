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
			// mqttOnly: the event reaches MQTT but the follower's reads never show it.
			mqttOnly := func(e queue.Event) {
				if pub == nil {
					src.commit(e)
					return
				}
				pub.PublishEvent(EventFrom(e))
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

			mqttOnly(ev(3, 1, "r", queue.EventRunning))
			r.expect(t, "event only on MQTT", 3)

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

func TestFollowUsesLiveEventsWhileTheDatabaseIsDown(t *testing.T) {
	t.Parallel()
	b := startBroker(t, "127.0.0.1:0")
	prefix := testPrefix(t)
	pub := connect(t, Options{URL: b.URL(), Prefix: prefix})
	sub := connect(t, Options{URL: b.URL(), Prefix: prefix})
	waitConnected(t, sub)
	src := &fakeEvents{}
	src.setFailing(true)
	r := startFollow(t, t.Context(), &Follower{Source: src, Client: sub, IDs: []int64{4},
		PollDown: 20 * time.Millisecond, PollUp: 20 * time.Millisecond, Hold: time.Hour})
	waitReads(t, src, 1) // Follow subscribes before its first read
	evs := lifecycle(4, "r")
	for _, e := range evs[:3] {
		src.commit(e)
		pub.PublishEvent(EventFrom(e))
	}
	r.expect(t, "live events, database down", seqsOf(evs[:3])...)
	src.commit(evs[3:]...) // only in the database
	src.setFailing(false)
	r.expect(t, "the rest from the database", seqsOf(evs[3:])...)
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
