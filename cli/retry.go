package cli

import (
	"context"
	"fmt"
	"time"

	"rpt/internal/jobs"
)

// Commands retry a queue database that does not answer for --retry-for (RPT_RETRY_FOR)
// before they give up with exit 5 (jobs.RetryPolicy): a database restart or failover
// does not make a crontab submit fail, and a script still learns within a bound that
// the queue is gone. An agent, a daemon, waits for as long as it takes unless
// --retry-for is given.
const defaultRetryFor = 15 * time.Second

// retryForever is env.retryFor for a daemon that waits until the queue answers.
const retryForever = jobs.RetryForever

// retryQueue runs op under the command's retry policy. It says once that it is
// retrying (on stderr; a daemon logs it), and the final error says for how long it
// tried.
func (e *env) retryQueue(ctx context.Context, op func(ctx context.Context) error) error {
	p := jobs.RetryPolicy{For: e.retryFor, OnWait: func(err error) {
		e.queueWaited = true
		if e.retryFor == retryForever {
			e.log.Warn("queue database does not answer; retrying until it does", "queue", redactedQueue(e), "error", err.Error())
		} else {
			fmt.Fprintf(e.d.Stderr, "queue database %s does not answer; retrying for up to %s\n", redactedQueue(e), e.retryFor)
		}
	}}
	if e.retryFor == retryForever {
		p.OnBack = func(after time.Duration) {
			e.log.Info("queue database answers", "queue", redactedQueue(e), "after", after.String())
		}
	}
	return p.Do(ctx, op)
}
