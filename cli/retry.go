package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"rpt/internal/queue"
)

// Commands retry a queue database that does not answer for --retry-for (RPT_RETRY_FOR)
// before they give up with exit 5: a database restart or failover does not make a
// crontab submit fail, and a script still learns within a bound that the queue is gone.
// An agent, a daemon, waits for as long as it takes unless --retry-for is given.
const defaultRetryFor = 15 * time.Second

// retryForever is env.retryFor for a daemon that waits until the queue answers.
const retryForever = time.Duration(-1)

// Backoff between attempts: from retryFirst, doubling up to retryMax. One attempt
// lasts at most what is left of --retry-for (attemptMin at least) and attemptMax, so a
// hung server is reported and retried like a refused connection.
const (
	retryFirst = 250 * time.Millisecond
	retryMax   = 2 * time.Second
	attemptMin = time.Second
	attemptMax = 10 * time.Second
)

// retryQueue runs op until it returns anything but queue.ErrUnavailable, or until
// e.retryFor has passed since the first failure. It says once on stderr that it is
// retrying, and the final error says for how long it tried.
func (e *env) retryQueue(ctx context.Context, op func(ctx context.Context) error) error {
	start := time.Now()
	// Each try ends with the retry period, so a host that accepts connections and
	// then says nothing cannot hold the command past it.
	try := func() error {
		limit := attemptMax
		if e.retryFor != retryForever {
			limit = min(max(e.retryFor-time.Since(start), attemptMin), attemptMax)
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
	if !errors.Is(err, queue.ErrUnavailable) || e.retryFor == 0 {
		return err
	}
	e.queueWaited = true
	if e.retryFor == retryForever {
		e.log.Warn("queue database does not answer; retrying until it does", "queue", redactedQueue(e), "error", err.Error())
	} else {
		fmt.Fprintf(e.d.Stderr, "queue database %s does not answer; retrying for up to %s\n", redactedQueue(e), e.retryFor)
	}
	wait := retryFirst
	for {
		left := e.retryFor - time.Since(start)
		if e.retryFor != retryForever && left <= 0 {
			return fmt.Errorf("%w (retried for %s)", err, roundDur(time.Since(start)))
		}
		pause := wait
		if e.retryFor != retryForever {
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
			if err == nil && e.retryFor == retryForever {
				e.log.Info("queue database answers", "queue", redactedQueue(e), "after", roundDur(time.Since(start)).String())
			}
			return err
		}
	}
}
