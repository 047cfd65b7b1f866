package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"rpt/internal/queue"
)

// deps is the job-dependency logic (queue/deps.go) with this store's statements.
var deps = queue.DepsDialect{
	Now:       "UTC_TIMESTAMP(6)",
	ForUpdate: " FOR UPDATE",
	Time:      func(t time.Time) any { return t.UTC() },
	Event: func(ctx context.Context, tx queue.DepsTx, id int64, event, errText string) error {
		return insertEvent(ctx, tx, id, event, "", errText)
	},
}

// settle is deps.SettleDependents in a transaction of this store.
func settle(ctx context.Context, tx *sql.Tx, id int64) error {
	return deps.SettleDependents(ctx, tx, id)
}

// JobPrerequisites lists the jobs job id waits (or waited) for.
func (s *Store) JobPrerequisites(ctx context.Context, id int64) ([]queue.Prerequisite, error) {
	ps, err := queue.ListPrerequisites(ctx, s.db, id)
	if err != nil {
		return nil, s.wrap("list prerequisites", err)
	}
	return ps, nil
}

// JobWaitFor queues a running job again until every one of jobs has succeeded, or
// until after at the latest (queue.DependWaiter). The prerequisites are locked before
// the job's own row, as a completion locks them.
func (s *Store) JobWaitFor(ctx context.Context, l queue.Lease, jobs []int64, until time.Duration, reason string) error {
	if err := queue.CheckWaitFor(l, jobs); err != nil {
		return err
	}
	return s.inTx(ctx, fmt.Sprintf("put job %d to wait", l.JobID), func(tx *sql.Tx) error {
		ps, err := deps.LockPrerequisites(ctx, tx, jobs)
		if err != nil {
			return err
		}
		var cancelRequested bool
		var owner string
		var deadline time.Time
		err = tx.QueryRowContext(ctx, "SELECT cancel_requested_at IS NOT NULL, COALESCE(lease_owner, ''), "+
			"UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND FROM rpt_jobs WHERE "+fence+" FOR UPDATE", micros(until), l.JobID, l.Token).
			Scan(&cancelRequested, &owner, &deadline)
		if errors.Is(err, sql.ErrNoRows) {
			return queue.ErrLeaseLost
		}
		if err != nil {
			return err
		}
		if cancelRequested {
			return release(ctx, tx, l.JobID, true, owner)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE rpt_jobs SET status = 'queued', lease_token = NULL, lease_owner = NULL, lease_expires = NULL, "+
			"error = ? WHERE id = ?", nullString(reason), l.JobID); err != nil {
			return err
		}
		if err := freeSlots(ctx, tx, l.JobID); err != nil {
			return err
		}
		if err := insertEvent(ctx, tx, l.JobID, queue.EventWaiting, owner, reason); err != nil {
			return err
		}
		_, err = deps.Link(ctx, tx, l.JobID, ps, deadline)
		return err
	})
}
