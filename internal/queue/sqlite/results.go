package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"rpt/internal/queue"
)

// ResultChunkPut stores chunk seq of the lease's attempt, replacing a chunk written
// before (a retried put); fenced.
func (s *Store) ResultChunkPut(ctx context.Context, l queue.Lease, seq int, data []byte) error {
	if seq < 0 {
		return fmt.Errorf("put result chunk of job %d: seq %d is negative", l.JobID, seq)
	}
	if data == nil {
		data = []byte{}
	}
	return s.write(ctx, fmt.Sprintf("put result chunk %d of job %d", seq, l.JobID), func(tx *wtx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM rpt_jobs WHERE `+fenced+` AND attempt = ?`,
			l.JobID, l.Token, l.Attempt).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return queue.ErrLeaseLost
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO rpt_results (job_id, attempt, seq, data) VALUES (?, ?, ?, ?)`,
			l.JobID, l.Attempt, seq, data)
		return err
	})
}

// ResultChunkGet returns chunk seq of (job, attempt); ErrNotFound past the last one.
func (s *Store) ResultChunkGet(ctx context.Context, jobID int64, attempt int, seq int) ([]byte, error) {
	var data []byte
	err := s.r.QueryRowContext(ctx, `SELECT data FROM rpt_results WHERE job_id = ? AND attempt = ? AND seq = ?`,
		jobID, attempt, seq).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("get result chunk %d of job %d attempt %d: %w", seq, jobID, attempt, queue.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get result chunk %d of job %d attempt %d: %w", seq, jobID, attempt, err)
	}
	return data, nil
}

// ResultChunkDelete deletes the chunks of (job, attempt) in one transaction, unless
// that attempt is the job's succeeded result. A delete needs no new pages, so it works
// on a full database and frees the pages for the next write.
func (s *Store) ResultChunkDelete(ctx context.Context, jobID int64, attempt int) (int, error) {
	var n int64
	err := s.write(ctx, fmt.Sprintf("delete result chunks of job %d attempt %d", jobID, attempt), func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM rpt_results WHERE job_id = ? AND attempt = ? AND NOT EXISTS
			(SELECT 1 FROM rpt_jobs WHERE id = ? AND status = 'succeeded' AND result_attempt = ?)`,
			jobID, attempt, jobID, attempt)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
