package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"rpt/internal/queue"
)

var _ queue.Operations = (*Store)(nil)

// AgentGet returns one agent; ErrNotFound for an unknown name.
func (s *Store) AgentGet(ctx context.Context, name string) (queue.Agent, error) {
	op := "get agent " + name
	a, err := queue.ScanAgent(s.db.QueryRowContext(ctx, "SELECT "+queue.AgentColumns+" FROM rpt_agents WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		err = queue.ErrNotFound
	}
	if err != nil {
		return queue.Agent{}, s.wrap(op, err)
	}
	return a, nil
}

// AgentDrain sets the agent's drain request; its heartbeats leave it set.
func (s *Store) AgentDrain(ctx context.Context, name string) error {
	return s.agentDrainSet(ctx, "drain agent "+name, name, true)
}

// AgentUndrain clears the agent's drain request.
func (s *Store) AgentUndrain(ctx context.Context, name string) error {
	return s.agentDrainSet(ctx, "undrain agent "+name, name, false)
}

func (s *Store) agentDrainSet(ctx context.Context, op, name string, drain bool) error {
	// The connection reports found rows, so an agent already asked still counts as found.
	res, err := s.db.ExecContext(ctx, "UPDATE rpt_agents SET drain_requested = ? WHERE name = ?", drain, name)
	if err != nil {
		return s.wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap(op, err)
	}
	if n == 0 {
		return s.wrap(op, queue.ErrNotFound)
	}
	return nil
}

// PauseSet pauses or resumes claims of a report's or source's jobs; setting the state
// it already has changes nothing (a pause keeps its first created_at). Claims read the
// pauses at the start of their transaction, so a claim already running may still take
// a job of a name paused meanwhile.
func (s *Store) PauseSet(ctx context.Context, kind, name string, paused bool) error {
	verb := "resume"
	if paused {
		verb = "pause"
	}
	op := fmt.Sprintf("%s %s %s", verb, kind, name)
	if err := queue.CheckPause(kind, name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	var err error
	if paused {
		_, err = s.db.ExecContext(ctx, "INSERT INTO rpt_pauses (kind, name, created_at) VALUES (?, ?, UTC_TIMESTAMP(6)) "+
			"ON DUPLICATE KEY UPDATE created_at = created_at", kind, name)
	} else {
		_, err = s.db.ExecContext(ctx, "DELETE FROM rpt_pauses WHERE kind = ? AND name = ?", kind, name)
	}
	return s.wrap(op, err)
}

// PauseList lists the pauses by kind and name.
func (s *Store) PauseList(ctx context.Context) ([]queue.Pause, error) {
	rows, err := s.db.QueryContext(ctx, queue.PauseQuery)
	if err != nil {
		return nil, s.wrap("list pauses", err)
	}
	out, err := queue.CollectRows(rows, queue.ScanPause)
	if err != nil {
		return nil, s.wrap("list pauses", err)
	}
	return out, nil
}

// SlotUsage counts taken slots by scope; scopes with none taken are absent. A plain
// read: it never waits for a claim's slot locks.
func (s *Store) SlotUsage(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, queue.SlotUsageQuery)
	if err != nil {
		return nil, s.wrap("slot usage", err)
	}
	out, err := queue.CollectSlotUsage(rows)
	if err != nil {
		return nil, s.wrap("slot usage", err)
	}
	return out, nil
}

// QueueStats counts queued (due and scheduled) and running jobs and the age of the
// oldest due job, all by the database clock (UTC_TIMESTAMP is fixed within a
// statement), and the slots in use.
func (s *Store) QueueStats(ctx context.Context) (queue.QueueStats, error) {
	var st queue.QueueStats
	var oldestUS sql.NullInt64
	// A job is due from the later of its creation and its run_after.
	err := s.db.QueryRowContext(ctx, "SELECT "+
		"COALESCE(SUM(status = 'queued' AND run_after <= UTC_TIMESTAMP(6)), 0), "+
		"COALESCE(SUM(status = 'queued' AND run_after > UTC_TIMESTAMP(6)), 0), "+
		"COALESCE(SUM(status = 'running'), 0), "+
		"TIMESTAMPDIFF(MICROSECOND, MIN(CASE WHEN status = 'queued' AND run_after <= UTC_TIMESTAMP(6) "+
		"THEN GREATEST(created_at, run_after) END), UTC_TIMESTAMP(6)) "+
		"FROM rpt_jobs WHERE status IN ('queued', 'running')").Scan(&st.Queued, &st.Scheduled, &st.Running, &oldestUS)
	if err != nil {
		return queue.QueueStats{}, s.wrap("queue stats", err)
	}
	if oldestUS.Valid && oldestUS.Int64 > 0 {
		st.OldestQueuedAge = time.Duration(oldestUS.Int64) * time.Microsecond
	}
	if st.SlotsInUse, err = s.SlotUsage(ctx); err != nil {
		return queue.QueueStats{}, fmt.Errorf("queue stats: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT report, source, COUNT(*), "+
		"TIMESTAMPDIFF(MICROSECOND, MIN(GREATEST(created_at, run_after)), UTC_TIMESTAMP(6)) "+
		"FROM rpt_jobs WHERE status = 'queued' AND run_after <= UTC_TIMESTAMP(6) "+
		"GROUP BY report, source ORDER BY report, source")
	if err != nil {
		return queue.QueueStats{}, s.wrap("queue stats by report", err)
	}
	defer rows.Close()
	for rows.Next() {
		var w queue.QueueWaiting
		var us int64
		if err := rows.Scan(&w.Report, &w.Source, &w.Queued, &us); err != nil {
			return queue.QueueStats{}, s.wrap("queue stats by report", err)
		}
		w.OldestQueuedAge = time.Duration(max(us, 0)) * time.Microsecond
		st.Waiting = append(st.Waiting, w)
	}
	if err := rows.Err(); err != nil {
		return queue.QueueStats{}, s.wrap("queue stats by report", err)
	}
	return st, nil
}

// Prune batch sizes: each statement or transaction stays short, so claims and agent
// writes never wait long behind retention.
const (
	// pruneBatch is how many jobs one transaction deletes (with their events).
	pruneBatch = 1000
	// pruneChunkRows is how many result chunks (up to 1 MiB each) one DELETE removes.
	pruneChunkRows = 64
)

// resultJobsQuery lists the next jobs (by id) that have result chunks: a loose index
// scan of rpt_results' primary key, one step per job.
const resultJobsQuery = "SELECT DISTINCT job_id FROM rpt_results WHERE job_id > ? ORDER BY job_id LIMIT ?"

// oldJobsQuery lists the oldest jobs of one finished status that finished before the
// cut-off, from the rpt_jobs_finished index alone.
const oldJobsQuery = "SELECT id FROM rpt_jobs FORCE INDEX (rpt_jobs_finished) " +
	"WHERE status = ? AND finished_at < ? ORDER BY status, finished_at LIMIT ?"

// finishedIn is the SQL list of terminal statuses, the only ones Prune touches.
const finishedIn = "('succeeded', 'failed', 'cancelled')"

// Prune deletes the result chunks of jobs that finished before p.ResultsBefore, then
// the jobs (with events and chunks) that finished before p.JobsBefore, in short
// batches. Queued and running jobs are never touched. A zero cut-off prunes nothing of
// its kind. Finished jobs never change, so a batch needs no lock beyond its deletes.
func (s *Store) Prune(ctx context.Context, p queue.PruneParams) (queue.PruneResult, error) {
	var res queue.PruneResult
	if !p.ResultsBefore.IsZero() {
		n, err := s.pruneResults(ctx, p.ResultsBefore.UTC())
		res.ResultJobs = n
		if err != nil {
			return res, err
		}
	}
	if !p.JobsBefore.IsZero() {
		n, err := s.pruneJobs(ctx, p.JobsBefore.UTC())
		res.Jobs = n
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// pruneResults walks the jobs that have chunks (few: older ones were pruned before) in
// id order and deletes the chunks of those finished before the cut-off.
func (s *Store) pruneResults(ctx context.Context, before time.Time) (int, error) {
	const op = "prune results"
	total := 0
	var after int64
	for {
		ids, err := s.int64s(ctx, resultJobsQuery, after, pruneBatch)
		if err != nil {
			return total, s.wrap(op, err)
		}
		if len(ids) == 0 {
			return total, nil
		}
		after = ids[len(ids)-1]
		in, args := queue.InList(ids)
		old, err := s.int64s(ctx, "SELECT id FROM rpt_jobs WHERE id IN "+in+" AND status IN "+finishedIn+
			" AND finished_at < ?", append(args, before)...)
		if err != nil {
			return total, s.wrap(op, err)
		}
		if len(old) > 0 {
			if err := s.deleteChunks(ctx, old); err != nil {
				return total, s.wrap(op, err)
			}
			total += len(old)
		}
		if len(ids) < pruneBatch {
			return total, nil
		}
	}
}

// deleteChunks deletes every result chunk of the jobs, pruneChunkRows per statement,
// in key order: chunk 0 of a result goes first, so a reader that finds a later chunk
// missing and chunk 0 gone knows the result was pruned under it (results.ErrPruned).
func (s *Store) deleteChunks(ctx context.Context, ids []int64) error {
	in, args := queue.InList(ids)
	for {
		res, err := s.db.ExecContext(ctx, "DELETE FROM rpt_results WHERE job_id IN "+in+" ORDER BY job_id, attempt, seq LIMIT ?",
			append(args, pruneChunkRows)...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n < pruneChunkRows {
			return nil
		}
	}
}

// pruneJobs deletes finished jobs older than the cut-off, oldest first: their chunks
// first (in small statements), then events and job rows in one transaction per batch.
// A crash in between leaves the job for the next prune.
func (s *Store) pruneJobs(ctx context.Context, before time.Time) (int, error) {
	const op = "prune jobs"
	total := 0
	for _, status := range []queue.Status{queue.StatusSucceeded, queue.StatusFailed, queue.StatusCancelled} {
		for {
			ids, err := s.int64s(ctx, oldJobsQuery, string(status), before, pruneBatch)
			if err != nil {
				return total, s.wrap(op, err)
			}
			if len(ids) == 0 {
				break
			}
			if err := s.deleteChunks(ctx, ids); err != nil {
				return total, s.wrap(op, err)
			}
			in, args := queue.InList(ids)
			n := 0
			err = s.inTx(ctx, op, func(tx *sql.Tx) error {
				n = 0
				if _, err := tx.ExecContext(ctx, "DELETE FROM rpt_job_events WHERE job_id IN "+in, args...); err != nil {
					return fmt.Errorf("events: %w", err)
				}
				for _, col := range []string{"job_id", "after_id"} {
					if _, err := tx.ExecContext(ctx, "DELETE FROM rpt_job_after WHERE "+col+" IN "+in, args...); err != nil {
						return fmt.Errorf("prerequisites: %w", err)
					}
				}
				res, err := tx.ExecContext(ctx, "DELETE FROM rpt_jobs WHERE id IN "+in+" AND status IN "+finishedIn, args...)
				if err != nil {
					return err
				}
				affected, err := res.RowsAffected()
				n = int(affected)
				return err
			})
			if err != nil {
				return total, err
			}
			total += n
			if len(ids) < pruneBatch || n == 0 {
				break
			}
		}
	}
	return total, nil
}

// int64s runs a query of one integer column.
func (s *Store) int64s(ctx context.Context, query string, args ...any) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// EventLastSeq returns the highest event seq, 0 when there are none.
func (s *Store) EventLastSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM rpt_job_events").Scan(&seq); err != nil {
		return 0, s.wrap("last event seq", err)
	}
	return seq, nil
}
