package jobs_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"rpt/internal/jobs"
	"rpt/internal/queue"
)

func TestRetryPolicy(t *testing.T) {
	ctx := context.Background()
	down := func(n *int) func(context.Context) error {
		return func(context.Context) error { *n++; return queue.ErrUnavailable }
	}

	t.Run("0 never retries", func(t *testing.T) {
		n := 0
		if err := (jobs.RetryPolicy{}).Do(ctx, down(&n)); !errors.Is(err, queue.ErrUnavailable) || n != 1 {
			t.Errorf("err %v after %d tries, want unavailable after 1", err, n)
		}
	})
	t.Run("gives up after For, saying how long", func(t *testing.T) {
		n, waits := 0, 0
		start := time.Now()
		err := jobs.RetryPolicy{For: time.Second, OnWait: func(error) { waits++ }}.Do(ctx, down(&n))
		took := time.Since(start)
		if !errors.Is(err, queue.ErrUnavailable) || !strings.Contains(err.Error(), "(retried for 1") {
			t.Errorf("err %v, want unavailable retried for about 1s", err)
		}
		if waits != 1 || n < 3 || took < time.Second || took > 5*time.Second {
			t.Errorf("%d waits, %d tries, took %v; want 1 wait, several tries, about 1s", waits, n, took)
		}
	})
	t.Run("back after a wait", func(t *testing.T) {
		n := 0
		var back time.Duration
		err := jobs.RetryPolicy{For: jobs.RetryForever, OnBack: func(d time.Duration) { back = d }}.Do(ctx, func(context.Context) error {
			if n++; n < 3 {
				return queue.ErrUnavailable
			}
			return nil
		})
		if err != nil || n != 3 || back <= 0 {
			t.Errorf("err %v after %d tries, back after %v; want nil after 3, OnBack called", err, n, back)
		}
	})
	t.Run("other errors at once", func(t *testing.T) {
		n := 0
		boom := errors.New("boom")
		err := jobs.RetryPolicy{For: time.Minute}.Do(ctx, func(context.Context) error { n++; return boom })
		if err != boom || n != 1 {
			t.Errorf("err %v after %d tries, want boom after 1", err, n)
		}
	})
	t.Run("a try that hangs is cut and counts as unavailable", func(t *testing.T) {
		start := time.Now()
		err := jobs.RetryPolicy{For: time.Second}.Do(ctx, func(c context.Context) error {
			<-c.Done()
			return c.Err()
		})
		if !errors.Is(err, queue.ErrUnavailable) || !strings.Contains(err.Error(), "no answer within") || time.Since(start) > 5*time.Second {
			t.Errorf("err %v after %v", err, time.Since(start))
		}
	})
	t.Run("interrupted while waiting", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		n := 0
		if err := (jobs.RetryPolicy{For: jobs.RetryForever}).Do(cctx, down(&n)); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err %v, want the caller's context error", err)
		}
	})
}
