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
// retried put of the same chunk idempotent. It is one autocommit statement, atomic on
// its own: one round trip a chunk instead of BEGIN, REPLACE and COMMIT.
func (s *Store) ResultChunkPut(ctx context.Context, l queue.Lease, seq int, data []byte) error {
	op := fmt.Sprintf("put result chunk %d of job %d", seq, l.JobID)
	if seq < 0 {
		return fmt.Errorf("%s: seq is negative", op)
	}
	if data == nil {
		data = []byte{}
	}
	var lost bool
	err := s.retried(ctx, op, func() error {
		res, err := s.db.ExecContext(ctx, "REPLACE INTO rpt_results (job_id, attempt, seq, data) "+
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

// ResultChunkDelete deletes the chunks of (job, attempt), lowest seq first and
// pruneChunkRows per statement (a result can be many MB), unless that attempt is the
// job's succeeded result.
func (s *Store) ResultChunkDelete(ctx context.Context, jobID int64, attempt int) (int, error) {
	op := fmt.Sprintf("delete result chunks of job %d attempt %d", jobID, attempt)
	var kept int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM rpt_jobs WHERE id = ? AND status = 'succeeded' AND result_attempt = ?",
		jobID, attempt).Scan(&kept)
	if err != nil {
		return 0, s.wrap(op, err)
	}
	if kept > 0 {
		return 0, nil
	}
	total := 0
	for {
		res, err := s.db.ExecContext(ctx, "DELETE FROM rpt_results WHERE job_id = ? AND attempt = ? ORDER BY seq LIMIT ?",
			jobID, attempt, pruneChunkRows)
		if err != nil {
			return total, s.wrap(op, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, s.wrap(op, err)
		}
		total += int(n)
		if n < pruneChunkRows {
			return total, nil
		}
	}
}
