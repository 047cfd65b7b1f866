package queue

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Job dependencies: a job may wait for other jobs (its prerequisites; rpt_job_after,
// one row per pair). It is queued not due (run_after NotDue, or the deadline its
// waiter gave) while any prerequisite has not succeeded, so the claim query needs
// nothing new: it never sees the job until it is due. The transaction that ends a
// prerequisite settles its queued dependents (SettleDependents): when the last of a
// dependent's prerequisites succeeds, the dependent is due at once (a "ready" event);
// when one fails for good or is cancelled, the dependent ends the same way, its error
// naming the prerequisite, and its own dependents after it. A completion fenced out by
// a lost lease writes nothing, so it settles nothing either.
//
// Both stores run this file's logic with their own statements (DepsDialect), so
// SQLite and MySQL/MariaDB order, release and propagate the same way.

// NotDue is the run_after of a job that waits for its prerequisites without a
// deadline: later than any claim, and a valid DATETIME on MySQL/MariaDB.
var NotDue = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// EventReady: a job that waited for other jobs is due, its last prerequisite having
// succeeded.
const EventReady = "ready"

// ErrAfterInBatch: a batch enqueue does not take prerequisites (enqueue such jobs one
// by one, prerequisites first).
var ErrAfterInBatch = fmt.Errorf("after: not taken by a batch enqueue: %w", ErrInvalid)

// Prerequisite is one job another job waits for, as it is now.
type Prerequisite struct {
	ID     int64  `json:"id"`
	Kind   Kind   `json:"kind"`
	Report string `json:"report"`
	Status Status `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Name is how a dependent's messages name the prerequisite: "etl plex-accounts (job 41)".
func (p Prerequisite) Name() string {
	return fmt.Sprintf("%s %s (job %d)", p.Kind, p.Report, p.ID)
}

// DependentEnd is how a dependent ends when prerequisite p ended without success:
// failed or cancelled like p, with an error naming p (and p's error, which names its
// own prerequisite when p ended for the same reason).
func DependentEnd(p Prerequisite) (Status, string, string) {
	reason := p.Name() + " " + string(p.Status)
	if p.Error != "" {
		reason += ": " + p.Error
	}
	if p.Status == StatusCancelled {
		return StatusCancelled, EventCancelled, reason
	}
	return StatusFailed, EventFailed, reason
}

// PrerequisiteLister is implemented by both stores: the jobs a job waits (or waited)
// for, in id order. `rpt jobs show` says what a queued dependent waits for with it.
type PrerequisiteLister interface {
	JobPrerequisites(ctx context.Context, id int64) ([]Prerequisite, error)
}

// DependWaiter puts a running job back to wait for other jobs (a report whose needs:
// ETL runs): queued, due as soon as every one of jobs has succeeded, or at the latest
// after until (by the database clock) so that the caller may give up; a failed or
// cancelled one ends it the same way (SettleDependents). Fenced like JobWait; reason is
// its error and its "waiting" event's. Both stores implement it.
type DependWaiter interface {
	JobWaitFor(ctx context.Context, l Lease, jobs []int64, until time.Duration, reason string) error
}

// DepsTx is the part of a store's transaction the dependency logic uses.
type DepsTx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// DepsDialect is what differs between the stores: the database clock, the row-lock
// suffix, how a time is bound, and how an event is recorded.
type DepsDialect struct {
	Now       string // SQL expression of the database clock as run_after holds it
	ForUpdate string // " FOR UPDATE" where rows are locked by reads, "" on SQLite
	Time      func(time.Time) any
	// Event records job id's current row as an event (the store's insertEvent).
	Event func(ctx context.Context, tx DepsTx, id int64, event, errText string) error
}

// CheckAfter refuses prerequisites no store can act on: a non-positive id, or a
// RunAfter given together with them (a dependent is due when they succeed).
func (p *JobEnqueueParams) CheckAfter() error {
	for i, id := range p.After {
		if id <= 0 {
			return fmt.Errorf("after[%d]: job id %d is not positive: %w", i, id, ErrInvalid)
		}
	}
	if len(p.After) > 0 && p.RunAfter != nil {
		return fmt.Errorf("after: a job that waits for other jobs is due when they succeed; run_after cannot be given too: %w", ErrInvalid)
	}
	return nil
}

// CheckWaitFor refuses a JobWaitFor no store can act on: no jobs, or the job itself.
func CheckWaitFor(l Lease, jobs []int64) error {
	if len(jobs) == 0 {
		return fmt.Errorf("wait for jobs: none given: %w", ErrInvalid)
	}
	for i, id := range jobs {
		if id == l.JobID {
			return fmt.Errorf("wait for jobs: jobs[%d]: job %d cannot wait for itself: %w", i, id, ErrInvalid)
		}
	}
	return nil
}

// prerequisites reads (and, where the dialect locks, locks) the jobs of ids.
func (d DepsDialect) prerequisites(ctx context.Context, tx DepsTx, ids []int64) ([]Prerequisite, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	in, args := InList(ids)
	rows, err := tx.QueryContext(ctx, "SELECT id, kind, report, status, COALESCE(error, '') FROM rpt_jobs WHERE id IN "+in+
		" ORDER BY id"+d.ForUpdate, args...)
	if err != nil {
		return nil, fmt.Errorf("read prerequisites: %w", err)
	}
	return scanPrerequisites(rows)
}

func scanPrerequisites(rows *sql.Rows) ([]Prerequisite, error) {
	defer rows.Close()
	var out []Prerequisite
	for rows.Next() {
		var p Prerequisite
		var kind, status string
		if err := rows.Scan(&p.ID, &kind, &p.Report, &status, &p.Error); err != nil {
			return nil, err
		}
		p.Kind, p.Status = Kind(kind), Status(status)
		out = append(out, p)
	}
	return out, rows.Err()
}

// ListPrerequisites is JobPrerequisites in a store's connection or transaction.
func ListPrerequisites(ctx context.Context, q DepsTx, id int64) ([]Prerequisite, error) {
	rows, err := q.QueryContext(ctx, "SELECT j.id, j.kind, j.report, j.status, COALESCE(j.error, '') FROM rpt_job_after a "+
		"JOIN rpt_jobs j ON j.id = a.after_id WHERE a.job_id = ? ORDER BY j.id", id)
	if err != nil {
		return nil, fmt.Errorf("prerequisites of job %d: %w", id, err)
	}
	return scanPrerequisites(rows)
}

// LockPrerequisites locks the rows of the jobs a new wait names, before the waiting
// job's own row: every transaction that touches both locks a prerequisite first (a
// completion locks its own row, then its dependents'), so they do not deadlock. It
// returns ErrInvalid naming an id no job has.
func (d DepsDialect) LockPrerequisites(ctx context.Context, tx DepsTx, ids []int64) ([]Prerequisite, error) {
	ps, err := d.prerequisites(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	have := map[int64]bool{}
	for _, p := range ps {
		have[p.ID] = true
	}
	for i, id := range ids {
		if !have[id] {
			return nil, fmt.Errorf("after[%d]: job %d: %w (%w)", i, id, ErrNotFound, ErrInvalid)
		}
	}
	return ps, nil
}

// Link records that job id waits for ps (locked by LockPrerequisites, in this
// transaction) and decides its state: due as it is when all have succeeded; queued
// with run_after at notBefore (NotDue, or a waiter's deadline) while any is pending; and
// ended at once, failed or cancelled naming it, when one ended without success. It
// returns the status the job ended with ("" when still queued). The job's row is
// queued and locked (or new) in this transaction.
func (d DepsDialect) Link(ctx context.Context, tx DepsTx, id int64, ps []Prerequisite, notBefore any) (Status, error) {
	if len(ps) == 0 {
		return "", nil
	}
	var b []byte
	args := make([]any, 0, 2*len(ps))
	for i, p := range ps {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, "(?, ?)"...)
		args = append(args, id, p.ID)
	}
	// A job that waits again for a job it waited for before keeps its one row.
	if _, err := tx.ExecContext(ctx, "DELETE FROM rpt_job_after WHERE job_id = ?", id); err != nil {
		return "", fmt.Errorf("prerequisites of job %d: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO rpt_job_after (job_id, after_id) VALUES "+string(b), args...); err != nil {
		return "", fmt.Errorf("prerequisites of job %d: %w", id, err)
	}
	pending := false
	for _, p := range ps {
		switch p.Status {
		case StatusSucceeded:
		case StatusFailed, StatusCancelled:
			return d.end(ctx, tx, id, p)
		default:
			pending = true
		}
	}
	if pending {
		if _, err := tx.ExecContext(ctx, "UPDATE rpt_jobs SET run_after = ? WHERE id = ?", notBefore, id); err != nil {
			return "", fmt.Errorf("job %d: wait for prerequisites: %w", id, err)
		}
	}
	return "", nil
}

// end ends queued job id because prerequisite p ended without success, then settles
// id's own dependents.
func (d DepsDialect) end(ctx context.Context, tx DepsTx, id int64, p Prerequisite) (Status, error) {
	status, event, reason := DependentEnd(p)
	if _, err := tx.ExecContext(ctx, "UPDATE rpt_jobs SET status = ?, error = ?, finished_at = "+d.Now+" WHERE id = ? AND status = 'queued'",
		string(status), reason, id); err != nil {
		return "", fmt.Errorf("end job %d after its prerequisite: %w", id, err)
	}
	if err := d.Event(ctx, tx, id, event, reason); err != nil {
		return "", err
	}
	return status, d.SettleDependents(ctx, tx, id)
}

// SettleDependents is called by every transaction that ends jobs (succeeded, failed
// for good, cancelled), after the change, with their ids: the queued dependents whose
// prerequisites have all succeeded are due now (a "ready" event each); the queued
// dependents of a job that ended without success end the same way, naming it, and
// theirs after them. Jobs with no dependents cost one indexed read for all of ids.
func (d DepsDialect) SettleDependents(ctx context.Context, tx DepsTx, ids ...int64) error {
	if len(ids) == 0 {
		return nil
	}
	// Lock the queued dependents first: two prerequisites of one dependent that end in
	// concurrent transactions then take turns, and the second sees the first's status.
	in, args := InList(ids)
	rows, err := tx.QueryContext(ctx, "SELECT a.after_id, d.id FROM rpt_job_after a JOIN rpt_jobs d ON d.id = a.job_id "+
		"WHERE a.after_id IN "+in+" AND d.status = 'queued' ORDER BY d.id"+d.ForUpdate, args...)
	if err != nil {
		return fmt.Errorf("dependents of jobs %v: %w", ids, err)
	}
	deps := map[int64][]int64{}
	for rows.Next() {
		var pre, dep int64
		if err := rows.Scan(&pre, &dep); err != nil {
			rows.Close()
			return err
		}
		deps[pre] = append(deps[pre], dep)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(deps) == 0 {
		return nil
	}
	settled := map[int64]bool{} // a dependent of two of ids is settled once
	for _, id := range ids {
		if len(deps[id]) == 0 {
			continue
		}
		if err := d.settle(ctx, tx, id, deps[id], settled); err != nil {
			return err
		}
	}
	return nil
}

// settle settles the queued dependents deps of job id, which has just ended.
func (d DepsDialect) settle(ctx context.Context, tx DepsTx, id int64, deps []int64, settled map[int64]bool) error {
	self, err := d.prerequisites(ctx, tx, []int64{id})
	if err != nil || len(self) == 0 {
		return err
	}
	for _, dep := range deps {
		if settled[dep] {
			continue
		}
		if self[0].Status != StatusSucceeded {
			settled[dep] = true
			if _, err := d.end(ctx, tx, dep, self[0]); err != nil {
				return err
			}
			continue
		}
		var pending int
		r, err := tx.QueryContext(ctx, "SELECT COUNT(*) FROM rpt_job_after a JOIN rpt_jobs p ON p.id = a.after_id "+
			"WHERE a.job_id = ? AND p.status <> 'succeeded'", dep)
		if err != nil {
			return fmt.Errorf("prerequisites of job %d: %w", dep, err)
		}
		if r.Next() {
			err = r.Scan(&pending)
		}
		r.Close()
		if err != nil {
			return err
		}
		if pending > 0 {
			continue
		}
		settled[dep] = true
		if _, err := tx.ExecContext(ctx, "UPDATE rpt_jobs SET run_after = "+d.Now+" WHERE id = ?", dep); err != nil {
			return fmt.Errorf("job %d: due: %w", dep, err)
		}
		if err := d.Event(ctx, tx, dep, EventReady, ""); err != nil {
			return err
		}
	}
	return nil
}
