package sqlite

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
	a, err := queue.ScanAgent(s.r.QueryRowContext(ctx, `SELECT `+queue.AgentColumns+` FROM rpt_agents WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return queue.Agent{}, fmt.Errorf("get agent %s: %w", name, queue.ErrNotFound)
	}
	if err != nil {
		return queue.Agent{}, fmt.Errorf("get agent %s: %w", name, err)
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
	return s.write(ctx, op, func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE rpt_agents SET drain_requested = ? WHERE name = ?`, drain, name)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return queue.ErrNotFound
		}
		return nil
	})
}

// PauseSet pauses or resumes claims of a report's or source's jobs; setting the state
// it already has changes nothing (a pause keeps its first created_at).
func (s *Store) PauseSet(ctx context.Context, kind, name string, paused bool) error {
	verb := "resume"
	if paused {
		verb = "pause"
	}
	op := fmt.Sprintf("%s %s %s", verb, kind, name)
	if err := queue.CheckPause(kind, name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.write(ctx, op, func(tx *wtx) error {
		var err error
		if paused {
			_, err = tx.ExecContext(ctx, `INSERT INTO rpt_pauses (kind, name, created_at) VALUES (?, ?, `+nowUS+`)
				ON CONFLICT (kind, name) DO NOTHING`, kind, name)
		} else {
			_, err = tx.ExecContext(ctx, `DELETE FROM rpt_pauses WHERE kind = ? AND name = ?`, kind, name)
		}
		return err
	})
}

// PauseList lists the pauses by kind and name.
func (s *Store) PauseList(ctx context.Context) ([]queue.Pause, error) {
	rows, err := s.r.QueryContext(ctx, queue.PauseQuery)
	if err != nil {
		return nil, fmt.Errorf("list pauses: %w", err)
	}
	out, err := queue.CollectRows(rows, queue.ScanPause)
	if err != nil {
		return nil, fmt.Errorf("list pauses: %w", err)
	}
	return out, nil
}

// SlotUsage counts taken slots by scope; scopes with none taken are absent.
func (s *Store) SlotUsage(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, queue.SlotUsageQuery)
	if err != nil {
		return nil, fmt.Errorf("slot usage: %w", err)
	}
	out, err := queue.CollectSlotUsage(rows)
	if err != nil {
		return nil, fmt.Errorf("slot usage: %w", err)
	}
	return out, nil
}

// QueueStats counts queued (due and scheduled) and running jobs and the age of the
// oldest due job, all by the database clock, and the slots in use.
func (s *Store) QueueStats(ctx context.Context) (queue.QueueStats, error) {
	var st queue.QueueStats
	var oldestUS sql.NullInt64
	// A job is due from the later of its creation and its run_after.
	err := s.r.QueryRowContext(ctx, `WITH c(now) AS (SELECT `+nowUS+`)
		SELECT COALESCE(SUM(status = 'queued' AND run_after <= c.now), 0),
			COALESCE(SUM(status = 'queued' AND run_after > c.now), 0),
			COALESCE(SUM(status = 'running'), 0),
			c.now - MIN(CASE WHEN status = 'queued' AND run_after <= c.now THEN MAX(created_at, run_after) END)
		FROM rpt_jobs, c WHERE status IN ('queued', 'running')`).Scan(&st.Queued, &st.Scheduled, &st.Running, &oldestUS)
	if err != nil {
		return queue.QueueStats{}, fmt.Errorf("queue stats: %w", err)
	}
	if oldestUS.Valid && oldestUS.Int64 > 0 {
		st.OldestQueuedAge = time.Duration(oldestUS.Int64) * time.Microsecond
	}
	if st.SlotsInUse, err = s.SlotUsage(ctx); err != nil {
		return queue.QueueStats{}, fmt.Errorf("queue stats: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `WITH c(now) AS (SELECT `+nowUS+`)
		SELECT report, source, COUNT(*), c.now - MIN(MAX(created_at, run_after))
		FROM rpt_jobs, c WHERE status = 'queued' AND run_after <= c.now
		GROUP BY report, source ORDER BY report, source`)
	if err != nil {
		return queue.QueueStats{}, fmt.Errorf("queue stats by report: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var w queue.QueueWaiting
		var us int64
		if err := rows.Scan(&w.Report, &w.Source, &w.Queued, &us); err != nil {
			return queue.QueueStats{}, fmt.Errorf("queue stats by report: %w", err)
		}
		w.OldestQueuedAge = time.Duration(max(us, 0)) * time.Microsecond
		st.Waiting = append(st.Waiting, w)
	}
	if err := rows.Err(); err != nil {
		return queue.QueueStats{}, fmt.Errorf("queue stats by report: %w", err)
	}
	return st, nil
}

// pruneBatch is how many jobs one Prune transaction handles: each holds the writer
// lock, and claims wait for it.
const pruneBatch = 200

// finishedIn is the SQL list of terminal statuses, the only ones Prune touches.
const finishedIn = `('succeeded', 'failed', 'cancelled')`

// Prune deletes the result chunks of jobs that finished before p.ResultsBefore, then
// the jobs (with events and chunks) that finished before p.JobsBefore, a batch per
// transaction. Queued and running jobs are never touched. A zero cut-off prunes nothing
// of its kind.
func (s *Store) Prune(ctx context.Context, p queue.PruneParams) (queue.PruneResult, error) {
	var res queue.PruneResult
	if !p.ResultsBefore.IsZero() {
		n, err := s.pruneResults(ctx, p.ResultsBefore.UTC().UnixMicro())
		res.ResultJobs = n
		if err != nil {
			return res, err
		}
	}
	if !p.JobsBefore.IsZero() {
		n, err := s.pruneJobs(ctx, p.JobsBefore.UTC().UnixMicro())
		res.Jobs = n
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// pruneResults walks the jobs that have chunks (few: older ones were pruned before) in
// id order and deletes the chunks of those finished before the cut-off.
func (s *Store) pruneResults(ctx context.Context, before int64) (int, error) {
	total := 0
	var after int64
	for {
		var n, scanned int
		var last int64
		err := s.write(ctx, "prune results", func(tx *wtx) error {
			n, scanned, last = 0, 0, after
			ids, err := int64s(ctx, tx, `SELECT DISTINCT job_id FROM rpt_results WHERE job_id > ? ORDER BY job_id LIMIT ?`,
				after, pruneBatch)
			if err != nil {
				return err
			}
			scanned = len(ids)
			if scanned == 0 {
				return nil
			}
			last = ids[len(ids)-1]
			in, args := queue.InList(ids)
			old, err := int64s(ctx, tx.Tx, `SELECT id FROM rpt_jobs WHERE id IN `+in+` AND status IN `+finishedIn+
				` AND finished_at < ?`, append(args, before)...)
			if err != nil {
				return err
			}
			if len(old) == 0 {
				return nil
			}
			in, args = queue.InList(old)
			if _, err := tx.Tx.ExecContext(ctx, `DELETE FROM rpt_results WHERE job_id IN `+in, args...); err != nil {
				return err
			}
			n = len(old)
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if scanned < pruneBatch {
			return total, nil
		}
		after = last
	}
}

// pruneJobs deletes finished jobs older than the cut-off, oldest first, with their
// events and chunks (explicitly: the foreign keys cascade only when the connection
// enforces them).
func (s *Store) pruneJobs(ctx context.Context, before int64) (int, error) {
	total := 0
	for _, status := range []queue.Status{queue.StatusSucceeded, queue.StatusFailed, queue.StatusCancelled} {
		for {
			var n int
			err := s.write(ctx, "prune jobs", func(tx *wtx) error {
				n = 0
				ids, err := int64s(ctx, tx, `SELECT id FROM rpt_jobs WHERE status = ? AND finished_at < ?
					ORDER BY finished_at LIMIT ?`, string(status), before, pruneBatch)
				if err != nil || len(ids) == 0 {
					return err
				}
				in, args := queue.InList(ids)
				for _, table := range []string{"rpt_results", "rpt_job_events"} {
					if _, err := tx.Tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE job_id IN `+in, args...); err != nil {
						return fmt.Errorf("%s: %w", table, err)
					}
				}
				r, err := tx.Tx.ExecContext(ctx, `DELETE FROM rpt_jobs WHERE id IN `+in, args...)
				if err != nil {
					return err
				}
				affected, err := r.RowsAffected()
				n = int(affected)
				return err
			})
			if err != nil {
				return total, err
			}
			total += n
			if n < pruneBatch {
				break
			}
		}
	}
	return total, nil
}

// int64s runs a query of one integer column. Queries with IN lists run on the bare
// *sql.Tx: their lengths vary, and each would take a place in the statement cache.
func int64s(ctx context.Context, tx querier, query string, args ...any) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
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
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM rpt_job_events`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("last event seq: %w", err)
	}
	return seq, nil
}
