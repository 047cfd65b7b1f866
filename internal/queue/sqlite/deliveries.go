package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"rpt/internal/queue"
)

var _ queue.Deliveries = (*Store)(nil)

// DeliveryAdd records the targets of a report job; targets it has already are kept.
func (s *Store) DeliveryAdd(ctx context.Context, jobID int64, targets []string) error {
	if len(targets) == 0 {
		return nil
	}
	return s.write(ctx, fmt.Sprintf("add deliveries of job %d", jobID), func(tx *wtx) error {
		for _, t := range targets {
			if _, err := tx.ExecContext(ctx, `INSERT INTO rpt_deliveries (job_id, target, target_sha256, state, created_at)
				VALUES (?, ?, ?, ?, `+nowUS+`) ON CONFLICT DO NOTHING`, jobID, t, queue.DeliveryTargetSHA256(t), queue.DeliveryPending); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeliveryList lists a report job's deliveries.
func (s *Store) DeliveryList(ctx context.Context, jobID int64) ([]queue.Delivery, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+queue.DeliveryColumns+" FROM rpt_deliveries WHERE job_id = ? ORDER BY id", jobID)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", localFault(err))
	}
	out, err := queue.CollectRows(rows, queue.ScanDelivery)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", localFault(err))
	}
	return out, nil
}

// DeliveryGet returns one delivery.
func (s *Store) DeliveryGet(ctx context.Context, id int64) (queue.Delivery, error) {
	d, err := queue.ScanDelivery(s.r.QueryRowContext(ctx, "SELECT "+queue.DeliveryColumns+" FROM rpt_deliveries WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return queue.Delivery{}, fmt.Errorf("get delivery %d: %w", id, queue.ErrNotFound)
	}
	if err != nil {
		return queue.Delivery{}, fmt.Errorf("get delivery %d: %w", id, localFault(err))
	}
	return d, nil
}

// DeliveryDueList lists pending deliveries whose report job is terminal.
func (s *Store) DeliveryDueList(ctx context.Context, limit int) ([]queue.DeliveryDue, error) {
	rows, err := s.r.QueryContext(ctx, queue.DeliveryDueQuery, queue.DeliveryDueArgs(limit)...)
	if err != nil {
		return nil, fmt.Errorf("list due deliveries: %w", localFault(err))
	}
	out, err := queue.CollectRows(rows, queue.ScanDeliveryDue)
	if err != nil {
		return nil, fmt.Errorf("list due deliveries: %w", localFault(err))
	}
	return out, nil
}

// DeliveryQueued records the deliver job of a pending delivery, or that it is skipped.
func (s *Store) DeliveryQueued(ctx context.Context, id, deliverJobID int64) error {
	state, job := queue.DeliveryQueuedState(deliverJobID)
	return s.write(ctx, "record deliver job", func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, "UPDATE rpt_deliveries SET state = ?, deliver_job_id = ? WHERE id = ? AND state = ?",
			state, job, id, queue.DeliveryPending)
		return err
	})
}

// DeliverySending records, under the deliver job's lease, that a hand-over begins.
func (s *Store) DeliverySending(ctx context.Context, l queue.Lease, id int64, messageID string) (queue.Delivery, error) {
	var before queue.Delivery
	err := s.write(ctx, fmt.Sprintf("record delivery %d sending", id), func(tx *wtx) error {
		var err error
		before, err = queue.DeliveryBeginSending(ctx, tx, "", l, id, messageID)
		return err
	})
	if err != nil {
		return queue.Delivery{}, err
	}
	return before, nil
}

// DeliverySent records that the receiver accepted the message.
func (s *Store) DeliverySent(ctx context.Context, id int64) error {
	return s.write(ctx, fmt.Sprintf("record delivery %d sent", id), func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, "UPDATE rpt_deliveries SET state = ?, sent_at = "+nowUS+" WHERE id = ?", queue.DeliverySent, id)
		return err
	})
}
