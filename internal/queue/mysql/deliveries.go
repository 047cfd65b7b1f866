package mysql

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
	return s.inTx(ctx, fmt.Sprintf("add deliveries of job %d", jobID), func(tx *sql.Tx) error {
		for _, t := range targets {
			if _, err := tx.ExecContext(ctx, `INSERT IGNORE INTO rpt_deliveries (job_id, target, target_sha256, state, created_at)
				VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6))`, jobID, t, queue.DeliveryTargetSHA256(t), queue.DeliveryPending); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeliveryList lists a report job's deliveries.
func (s *Store) DeliveryList(ctx context.Context, jobID int64) ([]queue.Delivery, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+queue.DeliveryColumns+" FROM rpt_deliveries WHERE job_id = ? ORDER BY id", jobID)
	if err != nil {
		return nil, s.wrap("list deliveries", err)
	}
	out, err := queue.CollectRows(rows, queue.ScanDelivery)
	return out, s.wrap("list deliveries", err)
}

// DeliveryGet returns one delivery.
func (s *Store) DeliveryGet(ctx context.Context, id int64) (queue.Delivery, error) {
	d, err := queue.ScanDelivery(s.db.QueryRowContext(ctx, "SELECT "+queue.DeliveryColumns+" FROM rpt_deliveries WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("delivery %d: %w", id, queue.ErrNotFound)
	}
	if err != nil {
		return queue.Delivery{}, s.wrap("get delivery", err)
	}
	return d, nil
}

// DeliveryDueList lists pending deliveries whose report job is terminal.
func (s *Store) DeliveryDueList(ctx context.Context, limit int) ([]queue.DeliveryDue, error) {
	rows, err := s.db.QueryContext(ctx, queue.DeliveryDueQuery, queue.DeliveryDueArgs(limit)...)
	if err != nil {
		return nil, s.wrap("list due deliveries", err)
	}
	out, err := queue.CollectRows(rows, queue.ScanDeliveryDue)
	return out, s.wrap("list due deliveries", err)
}

// DeliveryQueued records the deliver job of a pending delivery, or that it is skipped.
func (s *Store) DeliveryQueued(ctx context.Context, id, deliverJobID int64) error {
	state, job := queue.DeliveryQueuedState(deliverJobID)
	_, err := s.db.ExecContext(ctx, "UPDATE rpt_deliveries SET state = ?, deliver_job_id = ? WHERE id = ? AND state = ?",
		state, job, id, queue.DeliveryPending)
	return s.wrap("record deliver job", err)
}

// DeliverySending records, under the deliver job's lease, that a hand-over begins.
func (s *Store) DeliverySending(ctx context.Context, l queue.Lease, id int64, messageID string) (queue.Delivery, error) {
	op := fmt.Sprintf("record delivery %d sending", id)
	var before queue.Delivery
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		var err error
		before, err = queue.DeliveryBeginSending(ctx, tx, " FOR UPDATE", l, id, messageID)
		return err
	})
	if err != nil {
		return queue.Delivery{}, err // inTx names op
	}
	return before, nil
}

// DeliverySent records that the receiver accepted the message.
func (s *Store) DeliverySent(ctx context.Context, id int64) error {
	_, err := s.db.ExecContext(ctx, "UPDATE rpt_deliveries SET state = ?, sent_at = UTC_TIMESTAMP(6) WHERE id = ?", queue.DeliverySent, id)
	return s.wrap(fmt.Sprintf("record delivery %d sent", id), err)
}
