package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"rpt/internal/queue"
)

// ResultChunkPut stores chunk seq of the lease's attempt. The insert selects from the
// fenced job row, so a stale lease writes nothing (ErrLeaseLost); REPLACE makes a
// retried put of the same chunk idempotent.
func (s *Store) ResultChunkPut(ctx context.Context, l queue.Lease, seq int, data []byte) error {
	op := fmt.Sprintf("put result chunk %d of job %d", seq, l.JobID)
	if seq < 0 {
		return fmt.Errorf("%s: seq is negative", op)
	}
	if data == nil {
		data = []byte{}
	}
	var lost bool
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "REPLACE INTO rpt_results (job_id, attempt, seq, data) "+
			"SELECT id, attempt, ?, ? FROM rpt_jobs WHERE "+fence+" AND attempt = ?", seq, data, l.JobID, l.Token, l.Attempt)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		lost = n == 0
		return err
	})
	if err != nil {
		return err
	}
	if lost {
		return s.wrap(op, queue.ErrLeaseLost)
	}
	return nil
}

// ResultChunkGet returns chunk seq of (job, attempt); ErrNotFound past the last one.
func (s *Store) ResultChunkGet(ctx context.Context, jobID int64, attempt int, seq int) ([]byte, error) {
	var data []byte
	err := s.db.QueryRowContext(ctx, "SELECT data FROM rpt_results WHERE job_id = ? AND attempt = ? AND seq = ?",
		jobID, attempt, seq).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		err = queue.ErrNotFound
	}
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("get result chunk %d of job %d attempt %d", seq, jobID, attempt), err)
	}
	return data, nil
}
