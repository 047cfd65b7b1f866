package jobs

import (
	"context"
	"fmt"
	"time"

	"rpt/internal/errclass"
	"rpt/internal/notify"
	"rpt/internal/queue"
)

// WaitOptions tune Wait.
type WaitOptions struct {
	// Timeout stops waiting after this long (the job goes on); 0: no limit.
	Timeout time.Duration
	// Client, when set, brings events at once over MQTT; nil: poll the events table.
	Client *notify.Client
	// OnEvent is called with each event of the job (progress display); may be nil.
	OnEvent func(queue.Event)
}

// Wait follows job id's events until it is finished, then reads the job from the
// queue, the source of truth, and returns it. A timeout returns the job as it is with
// a NotFinished error; when ctx ends, Wait returns ctx.Err() (the job goes on). The
// caller turns a finished job into its outcome with Outcome.
func (s *Service) Wait(ctx context.Context, id int64, o WaitOptions) (*queue.Job, error) {
	followCtx := ctx
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		followCtx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	on := o.OnEvent
	if on == nil {
		on = func(queue.Event) {}
	}
	// Follow ends only on a terminal event the events table confirms (a broker message
	// is a hint); the job's row is read again before the wait ends, and if it disagrees
	// the wait goes on: only the queue ends a wait.
	var after int64
	for {
		err := notify.Follow(followCtx, s.Store, o.Client, []int64{id}, "", after, func(ev queue.Event) {
			after = ev.Seq
			on(ev)
		})
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil && followCtx.Err() == nil:
			return nil, fmt.Errorf("wait for job %d: %w", id, err)
		}
		var j *queue.Job
		err = s.retry(ctx, func(ctx context.Context) (err error) {
			j, err = s.Store.JobGet(ctx, id)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("job %d: %w", id, err)
		}
		if j.Status.Terminal() {
			return j, nil
		}
		if followCtx.Err() != nil {
			return j, errclass.Errorf(errclass.NotFinished, "job %d is still %s after %s", id, j.Status, o.Timeout)
		}
		// Both stores write an event and its job's row in one transaction, so this is a
		// queue that disagrees with itself: follow on from that event, after a pause so a
		// persistent disagreement cannot spin.
		select {
		case <-followCtx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Outcome is a job's state as an error: nil when it succeeded, else of class
// JobFailed, Cancelled or NotFinished with a message naming the job.
func Outcome(j *queue.Job) error {
	switch j.Status {
	case queue.StatusSucceeded:
		return nil
	case queue.StatusFailed:
		return errclass.Errorf(errclass.JobFailed, "job %d failed: %s", j.ID, j.Error)
	case queue.StatusCancelled:
		return errclass.Errorf(errclass.Cancelled, "job %d was cancelled", j.ID)
	}
	return errclass.Errorf(errclass.NotFinished, "job %d is %s, not finished yet", j.ID, j.Status)
}
