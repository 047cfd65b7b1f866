package sqlite

import (
	"context"
	"fmt"
	"time"

	"rpt/internal/queue"
)

var _ queue.Schedules = (*Store)(nil)

// ScheduleCreate stores a new schedule.
func (s *Store) ScheduleCreate(ctx context.Context, sc queue.Schedule) (queue.Schedule, error) {
	var out queue.Schedule
	err := s.write(ctx, "add schedule "+sc.Name, func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO rpt_schedules (name, cron, timezone, report, params, deliver, missed, held, created_by, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, `+nowUS+`, `+nowUS+`) ON CONFLICT DO NOTHING`,
			sc.Name, sc.Cron, sc.Timezone, sc.Report, sc.ParamsJSON(), sc.DeliverJSON(), sc.Missed, sc.Held, sc.CreatedBy)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: a schedule called %q exists (rpt schedules update changes it)", queue.ErrExists, sc.Name)
		}
		out, err = queue.ScheduleByName(ctx, tx, sc.Name)
		return err
	})
	return out, err
}

// ScheduleUpdate replaces a schedule's definition.
func (s *Store) ScheduleUpdate(ctx context.Context, sc queue.Schedule) (queue.Schedule, error) {
	var out queue.Schedule
	err := s.write(ctx, "update schedule "+sc.Name, func(tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE rpt_schedules SET cron = ?, timezone = ?, report = ?, params = ?, deliver = ?, missed = ?,
			updated_at = `+nowUS+` WHERE name = ?`, sc.Cron, sc.Timezone, sc.Report, sc.ParamsJSON(), sc.DeliverJSON(), sc.Missed, sc.Name); err != nil {
			return err
		}
		var err error
		out, err = queue.ScheduleByName(ctx, tx, sc.Name)
		return err
	})
	return out, err
}

// ScheduleGet returns one schedule.
func (s *Store) ScheduleGet(ctx context.Context, name string) (queue.Schedule, error) {
	sc, err := queue.ScheduleByName(ctx, s.r, name)
	if err != nil {
		return sc, fmt.Errorf("get schedule: %w", localFault(err))
	}
	return sc, nil
}

// ScheduleList lists schedules by name.
func (s *Store) ScheduleList(ctx context.Context) ([]queue.Schedule, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+queue.ScheduleColumns+" FROM rpt_schedules ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", localFault(err))
	}
	out, err := queue.CollectRows(rows, queue.ScanSchedule)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", localFault(err))
	}
	return out, nil
}

// ScheduleDelete deletes a schedule.
func (s *Store) ScheduleDelete(ctx context.Context, name string) error {
	return s.write(ctx, "delete schedule", func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM rpt_schedules WHERE name = ?", name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("schedule %q: %w", name, queue.ErrNotFound)
		}
		return nil
	})
}

// ScheduleHold holds or resumes a schedule.
func (s *Store) ScheduleHold(ctx context.Context, name string, held bool) (queue.Schedule, error) {
	op := "hold schedule"
	if !held {
		op = "resume schedule"
	}
	var out queue.Schedule
	err := s.write(ctx, op, func(tx *wtx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE rpt_schedules SET held = ?, updated_at = "+nowUS+" WHERE name = ?", held, name); err != nil {
			return err
		}
		var err error
		out, err = queue.ScheduleByName(ctx, tx, name)
		return err
	})
	return out, err
}

// ScheduleFired records an occurrence and its job, unless a later one is recorded.
func (s *Store) ScheduleFired(ctx context.Context, name string, occurrence time.Time, jobID int64) error {
	us := occurrence.UnixMicro()
	return s.write(ctx, "record schedule run", func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, `UPDATE rpt_schedules SET last_occurrence = ?, last_job_id = ?
			WHERE name = ? AND (last_occurrence IS NULL OR last_occurrence <= ?)`, us, jobID, name, us)
		return err
	})
}
