package notify

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"

	"rpt/internal/queue"
)

func TestEventJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		in         queue.Event
		wantResult *ResultRef
	}{
		{"succeeded carries the result", queue.Event{Seq: 9, JobID: 4, Report: "trial-balance", Event: queue.EventSucceeded,
			Status: queue.StatusSucceeded, Attempt: 2, Agent: "a1", Rows: 120}, &ResultRef{Job: 4, Attempt: 2}},
		{"failed has none", queue.Event{Seq: 10, JobID: 5, Report: "r", Event: queue.EventFailed,
			Status: queue.StatusFailed, Attempt: 3, Agent: "a1", Error: "boom"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(EventFrom(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var keys map[string]json.RawMessage
			if err := json.Unmarshal(b, &keys); err != nil {
				t.Fatal(err)
			}
			var got []string
			for k := range keys {
				got = append(got, k)
			}
			sort.Strings(got)
			want := []string{"agent", "at", "attempt", "event", "id", "report", "rows", "seq", "status"}
			if tt.in.Error != "" {
				want = append(want, "error")
			}
			if tt.wantResult != nil {
				want = append(want, "result")
			}
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("keys = %v, want %v (payload %s)", got, want, b)
			}
			var back Event
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back.Event != tt.in || !reflect.DeepEqual(back.Result, tt.wantResult) {
				t.Errorf("round trip = %+v %+v, want %+v %+v", back.Event, back.Result, tt.in, tt.wantResult)
			}
		})
	}
}

func TestTopics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		got, want string
	}{
		{Topics{}.Job(42), "rpt/jobs/42"},
		{Topics{Prefix: "x/"}.Job(42), "x/jobs/42"},
		{Topics{}.Report("trial-balance"), "rpt/reports/trial-balance"},
		{Topics{}.Report("a/b+c#"), "rpt/reports/a_b_c_"},
		{Topics{}.Cancel(7), "rpt/jobs/7/cancel"},
		{Topics{}.AllCancels(), "rpt/jobs/+/cancel"},
		{Topics{}.AllJobs(), "rpt/jobs/+"},
		{Topics{}.Wake(), "rpt/queue/wake"},
		{Topics{Prefix: "t1"}.Agent("alb-ubu"), "t1/agents/alb-ubu"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("topic = %q, want %q", tt.got, tt.want)
		}
	}
}

func TestOutbox(t *testing.T) {
	t.Parallel()
	m := func(s string) message { return message{topic: s} }
	topics := func(ms []message) []string {
		var out []string
		for _, x := range ms {
			out = append(out, x.topic)
		}
		return out
	}
	o := newOutbox(3)
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		o.push(m(s))
	}
	if got := o.droppedCount(); got != 2 {
		t.Errorf("dropped = %d, want 2", got)
	}
	got := o.pop(2)
	if !reflect.DeepEqual(topics(got), []string{"c", "d"}) {
		t.Errorf("pop = %v, want [c d] (oldest dropped)", topics(got))
	}
	o.pushFront(got) // unacknowledged: back in front, in order
	if all := o.pop(10); !reflect.DeepEqual(topics(all), []string{"c", "d", "e"}) {
		t.Errorf("after pushFront = %v, want [c d e]", topics(all))
	}
	o.push(m("x"))
	o.push(m("y"))
	o.pushFront([]message{m("p"), m("q"), m("r")}) // room for one: the newest requeued one stays
	if all := o.pop(10); !reflect.DeepEqual(topics(all), []string{"r", "x", "y"}) {
		t.Errorf("overflowing pushFront = %v, want [r x y]", topics(all))
	}
	if got := o.droppedCount(); got != 4 {
		t.Errorf("dropped = %d, want 4", got)
	}
}

func TestConnectRejectsBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    Options
	}{
		{"no scheme", Options{URL: "127.0.0.1:1883"}},
		{"bad scheme", Options{URL: "http://127.0.0.1:1883"}},
		{"no host", Options{URL: "tcp://"}},
		{"wildcard prefix", Options{URL: "tcp://127.0.0.1:1", Prefix: "a/#"}},
		{"wildcard legacy", Options{URL: "tcp://127.0.0.1:1", LegacyTopic: "+-report-complete"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Connect(t.Context(), tt.o)
			if err == nil {
				_ = c.Close()
				t.Fatalf("Connect(%+v) = nil error", tt.o)
			}
		})
	}
}
