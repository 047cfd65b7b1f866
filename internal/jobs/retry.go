package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"rpt/internal/queue"
)

// RetryForever is a RetryPolicy.For that waits until the queue answers (a daemon).
const RetryForever = time.Duration(-1)

// Backoff between attempts: from retryFirst, doubling up to retryMax. One attempt
// lasts at most what is left of For (attemptMin at least) and attemptMax, so a hung
// server is reported and retried like a refused connection.
const (
	retryFirst = 250 * time.Millisecond
	retryMax   = 2 * time.Second
	attemptMin = time.Second
	attemptMax = 10 * time.Second
)

// RetryPolicy retries queue calls while the queue database does not answer
// (queue.ErrUnavailable): a database restart or failover does not fail a submit, and
// the caller still learns within a bound that the queue is gone. Every front door
// uses it as Service.RetryQueue (the CLI with --retry-for); the hooks are how each
// tells its user.
type RetryPolicy struct {
	// For is how long to retry after the first failure: 0 never, RetryForever until
	// the queue answers.
	For time.Duration
	// OnWait, when set, is called once when a call starts waiting, with its error.
	OnWait func(err error)
	// OnBack, when set, is called when the queue answers again after a wait, with how
	// long it took.
	OnBack func(after time.Duration)
}

// Do runs op until it returns anything but queue.ErrUnavailable, or until p.For has
// passed since the first failure; the final error then says for how long it tried.
func (p RetryPolicy) Do(ctx context.Context, op func(ctx context.Context) error) error {
	start := time.Now()
	// Each try ends with the retry period, so a host that accepts connections and then
	// says nothing cannot hold the caller past it.
	try := func() error {
		limit := attemptMax
		if p.For != RetryForever {
			limit = min(max(p.For-time.Since(start), attemptMin), attemptMax)
		}
		actx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		err := op(actx)
		if ctx.Err() == nil && actx.Err() != nil && err != nil && !errors.Is(err, queue.ErrUnavailable) {
			err = fmt.Errorf("%w: no answer within %s: %w", queue.ErrUnavailable, limit, err)
		}
		return err
	}
	err := try()
	if !errors.Is(err, queue.ErrUnavailable) || p.For == 0 {
		return err
	}
	if p.OnWait != nil {
		p.OnWait(err)
	}
	wait := retryFirst
	for {
		left := p.For - time.Since(start)
		if p.For != RetryForever && left <= 0 {
			return fmt.Errorf("%w (retried for %s)", err, RoundDuration(time.Since(start)))
		}
		pause := wait
		if p.For != RetryForever {
			pause = min(pause, left)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, retryMax)
		if err = try(); !errors.Is(err, queue.ErrUnavailable) {
			if err == nil && p.OnBack != nil {
				p.OnBack(RoundDuration(time.Since(start)))
			}
			return err
		}
	}
}

// RoundDuration rounds a duration for people: milliseconds under a second, tenths under
// a minute, else seconds.
func RoundDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond)
	case d < time.Minute:
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}
