package queue

import (
	"errors"
	"testing"
	"time"
)

func TestEndAttempt(t *testing.T) {
	delay := func(failures int) time.Duration { return time.Duration(failures) * time.Second }
	for _, tc := range []struct {
		name      string
		job       LeasedJob
		retryable bool
		want      AttemptEnd
	}{
		{"retry below max", LeasedJob{Failures: 0, Max: 3}, true,
			AttemptEnd{Status: StatusQueued, Event: EventRetryScheduled, Failures: 1, RetryIn: time.Second}},
		{"second retry waits longer", LeasedJob{Failures: 1, Max: 3}, true,
			AttemptEnd{Status: StatusQueued, Event: EventRetryScheduled, Failures: 2, RetryIn: 2 * time.Second}},
		{"last attempt fails", LeasedJob{Failures: 2, Max: 3}, true,
			AttemptEnd{Status: StatusFailed, Event: EventFailed, Failures: 3}},
		{"not retryable fails at once", LeasedJob{Failures: 0, Max: 3}, false,
			AttemptEnd{Status: StatusFailed, Event: EventFailed, Failures: 1}},
		{"cancel requested wins, no failure counted", LeasedJob{Failures: 1, Max: 3, CancelRequested: true}, true,
			AttemptEnd{Status: StatusCancelled, Event: EventCancelled, Failures: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := EndAttempt(tc.job, tc.retryable, delay); got != tc.want {
				t.Errorf("EndAttempt = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRelease(t *testing.T) {
	if st, ev := Release(false); st != StatusQueued || ev != EventReleased {
		t.Errorf("Release(false) = %s, %s", st, ev)
	}
	if st, ev := Release(true); st != StatusCancelled || ev != EventCancelled {
		t.Errorf("Release(true) = %s, %s", st, ev)
	}
}

func TestExistingKeysOrder(t *testing.T) {
	p := JobEnqueueParams{DedupeKey: "d", OnceKey: "o", SubmitToken: "s"}
	got := p.ExistingKeys()
	want := []ExistingKey{{"submit_token", "s"}, {"once_key", "o"}, {"dedupe_active", "d"}}
	if len(got) != len(want) {
		t.Fatalf("ExistingKeys = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ExistingKeys[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if keys := (&JobEnqueueParams{OnceKey: "o"}).ExistingKeys(); len(keys) != 1 || keys[0].Column != "once_key" {
		t.Errorf("only the once key set: ExistingKeys = %v", keys)
	}
}

func TestNormalizeDefaultsAndErrors(t *testing.T) {
	p := JobEnqueueParams{Report: "r"}
	if err := p.Normalize(); err != nil {
		t.Fatal(err)
	}
	if p.Kind != KindReport || string(p.Params) != "{}" || p.MaxAttempts != DefaultMaxAttempts || p.Definition == nil {
		t.Errorf("defaults not filled: %+v", p)
	}
	if p.RouteJSON() != "{}" || p.ScopesJSON() != "[]" {
		t.Errorf("RouteJSON, ScopesJSON = %s, %s, want {} and []", p.RouteJSON(), p.ScopesJSON())
	}
	bad := JobEnqueueParams{Report: "r", Priority: MaxPriority + 1}
	if err := bad.Normalize(); !errors.Is(err, ErrInvalid) {
		t.Errorf("priority above the bound: err = %v, want ErrInvalid", err)
	}
}
