package mysql

import (
	"context"
	"fmt"
	"time"

	"rpt/internal/queue"
)

var _ queue.Schedules = (*Store)(nil)

// ScheduleCreate stores a new schedule.
func (s *Store) ScheduleCreate(ctx context.Context, sc queue.Schedule) (queue.Schedule, error) {
	op := "add schedule " + sc.Name
	_, err := s.db.ExecContext(ctx, `INSERT INTO rpt_schedules (name, cron, timezone, report, params, deliver, missed, held, created_by, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))`,
		sc.Name, sc.Cron, sc.Timezone, sc.Report, sc.ParamsJSON(), sc.DeliverJSON(), sc.Missed, sc.Held, sc.CreatedBy)
	if mysqlErrNo(err) == errDupEntry {
		return queue.Schedule{}, fmt.Errorf("%s: %w: a schedule called %q exists (rpt schedules update changes it)", op, queue.ErrExists, sc.Name)
	}
	if err != nil {
		return queue.Schedule{}, s.wrap(op, err)
	}
	out, err := queue.ScheduleByName(ctx, s.db, sc.Name)
	return out, s.wrap(op, err)
}

// ScheduleUpdate replaces a schedule's definition.
func (s *Store) ScheduleUpdate(ctx context.Context, sc queue.Schedule) (queue.Schedule, error) {
	op := "update schedule " + sc.Name
	_, err := s.db.ExecContext(ctx, `UPDATE rpt_schedules SET cron = ?, timezone = ?, report = ?, params = ?, deliver = ?, missed = ?,
		updated_at = UTC_TIMESTAMP(6) WHERE name = ?`, sc.Cron, sc.Timezone, sc.Report, sc.ParamsJSON(), sc.DeliverJSON(), sc.Missed, sc.Name)
	if err != nil {
		return queue.Schedule{}, s.wrap(op, err)
	}
	out, err := queue.ScheduleByName(ctx, s.db, sc.Name)
	return out, s.wrap(op, err)
}

// ScheduleGet returns one schedule.
func (s *Store) ScheduleGet(ctx context.Context, name string) (queue.Schedule, error) {
	sc, err := queue.ScheduleByName(ctx, s.db, name)
	return sc, s.wrap("get schedule", err)
}

// ScheduleList lists schedules by name.
func (s *Store) ScheduleList(ctx context.Context) ([]queue.Schedule, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+queue.ScheduleColumns+" FROM rpt_schedules ORDER BY name")
	if err != nil {
		return nil, s.wrap("list schedules", err)
	}
	out, err := queue.CollectRows(rows, queue.ScanSchedule)
	return out, s.wrap("list schedules", err)
}

// ScheduleDelete deletes a schedule.
func (s *Store) ScheduleDelete(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM rpt_schedules WHERE name = ?", name)
	if err != nil {
		return s.wrap("delete schedule", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete schedule: schedule %q: %w", name, queue.ErrNotFound)
	}
	return nil
}

// ScheduleHold holds or resumes a schedule.
func (s *Store) ScheduleHold(ctx context.Context, name string, held bool) (queue.Schedule, error) {
	op := "hold schedule"
	if !held {
		op = "resume schedule"
	}
	if _, err := s.db.ExecContext(ctx, "UPDATE rpt_schedules SET held = ?, updated_at = UTC_TIMESTAMP(6) WHERE name = ?", held, name); err != nil {
		return queue.Schedule{}, s.wrap(op, err)
	}
	sc, err := queue.ScheduleByName(ctx, s.db, name)
	return sc, s.wrap(op, err)
}

// ScheduleFired records an occurrence and its job, unless a later one is recorded.
func (s *Store) ScheduleFired(ctx context.Context, name string, occurrence time.Time, jobID int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE rpt_schedules SET last_occurrence = ?, last_job_id = ?
		WHERE name = ? AND (last_occurrence IS NULL OR last_occurrence <= ?)`, occurrence.UTC(), jobID, name, occurrence.UTC())
	return s.wrap("record schedule run", err)
}
