package jobs

import (
	"context"
	"fmt"
	"time"

	"rpt/internal/deliver"
	"rpt/internal/errclass"
	"rpt/internal/queue"
)

// WaitDeliveries waits, after report job id has succeeded, until each of its
// deliveries is sent or skipped, or its deliver job has ended otherwise (then the
// error, class JobFailed, names the target and the deliver job's error). It polls the
// queue every poll (a delivery's state has no event of its own); timeout 0 waits as
// long as ctx. A job without deliveries returns at once.
func (s *Service) WaitDeliveries(ctx context.Context, id int64, timeout, poll time.Duration) ([]queue.Delivery, error) {
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		ds, err := s.Store.DeliveryList(ctx, id)
		if err != nil {
			return nil, err
		}
		done := true
		for _, d := range ds {
			switch d.State {
			case queue.DeliverySent, queue.DeliverySkipped:
				continue
			}
			if d.DeliverJobID != 0 {
				j, err := s.Store.JobGet(ctx, d.DeliverJobID)
				if err != nil {
					return ds, err
				}
				if j.Status == queue.StatusFailed || j.Status == queue.StatusCancelled {
					return ds, errclass.Errorf(errclass.JobFailed, "delivery to %s %s (deliver job %d): %s", deliver.Shown(d.Target), j.Status, j.ID, j.Error)
				}
			}
			done = false
		}
		if done {
			return ds, nil
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return ds, errclass.Errorf(errclass.NotFinished, "job %d succeeded; its deliveries are not done after %s (rpt jobs show %d)", id, timeout, id)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ds, fmt.Errorf("wait for deliveries of job %d: %w", id, ctx.Err())
		case <-t.C:
		}
	}
}
