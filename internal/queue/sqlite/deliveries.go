package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"rpt/internal/queue"
)

var _ queue.Deliveries = (*Store)(nil)

const deliveryColumns = "id, job_id, target, state, deliver_job_id, message_id, attempts, sent_at, created_at"

func scanDelivery(row interface{ Scan(...any) error }, extra ...any) (queue.Delivery, error) {
	var d queue.Delivery
	var job, sent sql.NullInt64
	var msg sql.NullString
	var created int64
	err := row.Scan(append([]any{&d.ID, &d.JobID, &d.Target, &d.State, &job, &msg, &d.Attempts, &sent, &created}, extra...)...)
	d.DeliverJobID, d.MessageID, d.SentAt, d.CreatedAt = job.Int64, msg.String, fromNullMicros(sent), fromMicros(created)
	return d, err
}

func targetSHA256(target string) string {
	sum := sha256.Sum256([]byte(target))
	return hex.EncodeToString(sum[:])
}

// DeliveryAdd records the targets of a report job; targets it has already are kept.
func (s *Store) DeliveryAdd(ctx context.Context, jobID int64, targets []string) error {
	if len(targets) == 0 {
		return nil
	}
	return s.write(ctx, fmt.Sprintf("add deliveries of job %d", jobID), func(tx *wtx) error {
		for _, t := range targets {
			if _, err := tx.ExecContext(ctx, `INSERT INTO rpt_deliveries (job_id, target, target_sha256, state, created_at)
				VALUES (?, ?, ?, ?, `+nowUS+`) ON CONFLICT DO NOTHING`, jobID, t, targetSHA256(t), queue.DeliveryPending); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeliveryList lists a report job's deliveries.
func (s *Store) DeliveryList(ctx context.Context, jobID int64) ([]queue.Delivery, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+deliveryColumns+" FROM rpt_deliveries WHERE job_id = ? ORDER BY id", jobID)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", localFault(err))
	}
	defer rows.Close()
	var out []queue.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list deliveries: %w", localFault(err))
	}
	return out, nil
}

// DeliveryGet returns one delivery.
func (s *Store) DeliveryGet(ctx context.Context, id int64) (queue.Delivery, error) {
	d, err := scanDelivery(s.r.QueryRowContext(ctx, "SELECT "+deliveryColumns+" FROM rpt_deliveries WHERE id = ?", id))
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
	rows, err := s.r.QueryContext(ctx, `SELECT d.id, d.job_id, d.target, d.state, d.deliver_job_id, d.message_id, d.attempts,
			d.sent_at, d.created_at, j.status
		FROM rpt_deliveries d JOIN rpt_jobs j ON j.id = d.job_id
		WHERE d.state = ? AND j.status IN (?, ?, ?) ORDER BY d.id LIMIT ?`,
		queue.DeliveryPending, queue.StatusSucceeded, queue.StatusFailed, queue.StatusCancelled, limit)
	if err != nil {
		return nil, fmt.Errorf("list due deliveries: %w", localFault(err))
	}
	defer rows.Close()
	var out []queue.DeliveryDue
	for rows.Next() {
		var d queue.DeliveryDue
		var st string
		d.Delivery, err = scanDelivery(rows, &st)
		if err != nil {
			return nil, fmt.Errorf("list due deliveries: %w", err)
		}
		d.JobStatus = queue.Status(st)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list due deliveries: %w", localFault(err))
	}
	return out, nil
}

// DeliveryQueued records the deliver job of a pending delivery, or that it is skipped.
func (s *Store) DeliveryQueued(ctx context.Context, id, deliverJobID int64) error {
	state, job := queue.DeliveryQueued, sql.NullInt64{Int64: deliverJobID, Valid: deliverJobID != 0}
	if deliverJobID == 0 {
		state = queue.DeliverySkipped
	}
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
		var one int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM rpt_jobs WHERE id = ? AND lease_token = ? AND status = ?",
			l.JobID, l.Token, queue.StatusRunning).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return queue.ErrLeaseLost
		}
		if err != nil {
			return err
		}
		before, err = scanDelivery(tx.QueryRowContext(ctx, "SELECT "+deliveryColumns+" FROM rpt_deliveries WHERE id = ?", id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("delivery %d: %w", id, queue.ErrNotFound)
		}
		if err != nil || before.State == queue.DeliverySent {
			return err
		}
		_, err = tx.ExecContext(ctx, "UPDATE rpt_deliveries SET state = ?, message_id = ?, attempts = attempts + 1 WHERE id = ?",
			queue.DeliverySending, messageID, id)
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
