package queue

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The reading of the small tables (tokens, schedules, deliveries, published
// definitions) that both SQL stores share: the columns they select, how a row becomes
// its struct, and the loop over a result. What differs between the stores (how they
// write, lock and stamp the time) stays in each store.

// RowScanner is a *sql.Row or *sql.Rows.
type RowScanner interface{ Scan(dest ...any) error }

// CollectRows reads every row of rows with scan and closes rows. The caller names the
// operation in the error, as its store does.
func CollectRows[T any](rows *sql.Rows, scan func(RowScanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// dbTime reads a time column of either store: a DATETIME(6) (MySQL, read with
// parseTime, in UTC) or microseconds since the epoch (SQLite). NULL leaves it unset.
type dbTime struct {
	t     time.Time
	valid bool
}

func (d *dbTime) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*d = dbTime{}
	case time.Time:
		*d = dbTime{x.UTC(), true}
	case int64:
		*d = dbTime{time.UnixMicro(x).UTC(), true}
	default:
		return fmt.Errorf("a time column holds %T", v)
	}
	return nil
}

// ptr is the time, nil for NULL.
func (d dbTime) ptr() *time.Time {
	if !d.valid {
		return nil
	}
	t := d.t
	return &t
}

// TokenColumns are the columns ScanToken reads, in its order.
const TokenColumns = "id, name, role, token_sha256, created_at, last_used_at, revoked_at"

// ScanToken reads a row of TokenColumns.
func ScanToken(row RowScanner) (APIToken, error) {
	var t APIToken
	var created, used, revoked dbTime
	err := row.Scan(&t.ID, &t.Name, &t.Role, &t.SHA256, &created, &used, &revoked)
	t.CreatedAt, t.LastUsedAt, t.RevokedAt = created.t, used.ptr(), revoked.ptr()
	return t, err
}

// ScheduleColumns are the columns ScanSchedule reads, in its order.
const ScheduleColumns = "id, name, cron, timezone, report, params, deliver, missed, held, created_by, created_at, updated_at, last_occurrence, last_job_id"

// ScanSchedule reads a row of ScheduleColumns; params and deliver are JSON.
func ScanSchedule(row RowScanner) (Schedule, error) {
	var s Schedule
	var params, deliver string
	var created, updated, last dbTime
	var job sql.NullInt64
	err := row.Scan(&s.ID, &s.Name, &s.Cron, &s.Timezone, &s.Report, &params, &deliver, &s.Missed, &s.Held, &s.CreatedBy,
		&created, &updated, &last, &job)
	if err != nil {
		return s, err
	}
	s.CreatedAt, s.UpdatedAt, s.LastOccurrence, s.LastJobID = created.t, updated.t, last.ptr(), job.Int64
	if err := json.Unmarshal([]byte(params), &s.Params); err != nil {
		return s, fmt.Errorf("schedule %s: params: %w", s.Name, err)
	}
	if err := json.Unmarshal([]byte(deliver), &s.Deliver); err != nil {
		return s, fmt.Errorf("schedule %s: deliver: %w", s.Name, err)
	}
	return s, nil
}

// ScheduleByName reads the schedule called name through q; ErrNotFound names it.
func ScheduleByName(ctx context.Context, q RowQuerier, name string) (Schedule, error) {
	sc, err := ScanSchedule(q.QueryRowContext(ctx, "SELECT "+ScheduleColumns+" FROM rpt_schedules WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return sc, fmt.Errorf("schedule %q: %w", name, ErrNotFound)
	}
	return sc, err
}

// DeliveryColumns are the columns ScanDelivery reads, in its order.
const DeliveryColumns = "id, job_id, target, state, deliver_job_id, message_id, attempts, sent_at, created_at"

// DeliveryDueQuery selects the pending deliveries whose report job is terminal, with
// the job's status after DeliveryColumns (ScanDeliveryDue); its arguments are
// DeliveryDueArgs(limit).
const DeliveryDueQuery = `SELECT d.id, d.job_id, d.target, d.state, d.deliver_job_id, d.message_id, d.attempts,
		d.sent_at, d.created_at, j.status
	FROM rpt_deliveries d JOIN rpt_jobs j ON j.id = d.job_id
	WHERE d.state = ? AND j.status IN (?, ?, ?) ORDER BY d.id LIMIT ?`

// DeliveryDueArgs are DeliveryDueQuery's arguments.
func DeliveryDueArgs(limit int) []any {
	return []any{DeliveryPending, StatusSucceeded, StatusFailed, StatusCancelled, limit}
}

// ScanDelivery reads a row of DeliveryColumns.
func ScanDelivery(row RowScanner) (Delivery, error) { return scanDelivery(row) }

// scanDelivery reads a row of DeliveryColumns, then extra.
func scanDelivery(row RowScanner, extra ...any) (Delivery, error) {
	var d Delivery
	var job sql.NullInt64
	var msg sql.NullString
	var sent, created dbTime
	err := row.Scan(append([]any{&d.ID, &d.JobID, &d.Target, &d.State, &job, &msg, &d.Attempts, &sent, &created}, extra...)...)
	d.DeliverJobID, d.MessageID, d.SentAt, d.CreatedAt = job.Int64, msg.String, sent.ptr(), created.t
	return d, err
}

// ScanDeliveryDue reads a row of DeliveryDueQuery.
func ScanDeliveryDue(row RowScanner) (DeliveryDue, error) {
	var d DeliveryDue
	var st string
	var err error
	d.Delivery, err = scanDelivery(row, &st)
	d.JobStatus = Status(st)
	return d, err
}

// DeliveryTargetSHA256 is the hash a delivery's target is unique by, per job (a
// target may be longer than an index takes).
func DeliveryTargetSHA256(target string) string {
	sum := sha256.Sum256([]byte(target))
	return hex.EncodeToString(sum[:])
}

// DeliveryQueuedState is the state and deliver_job_id DeliveryQueued records: queued
// with the job, or skipped (NULL) when no deliver job was queued (deliverJobID 0).
func DeliveryQueuedState(deliverJobID int64) (string, sql.NullInt64) {
	if deliverJobID == 0 {
		return DeliverySkipped, sql.NullInt64{}
	}
	return DeliveryQueued, sql.NullInt64{Int64: deliverJobID, Valid: true}
}

// RowQuerier is a *sql.DB or a store's transaction.
type RowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Tx is what the shared transaction bodies use of a store's write transaction.
type Tx interface {
	RowQuerier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// DeliveryBeginSending is the body of both stores' DeliverySending transaction: it
// checks the deliver job's lease (ErrLeaseLost), reads the delivery (ErrNotFound) and,
// unless it is sent, marks it sending with messageID, one more attempt. It returns the
// delivery as it was. forUpdate is " FOR UPDATE" where the store locks the rows it
// reads (MySQL), "" where the write transaction holds the whole database (SQLite).
func DeliveryBeginSending(ctx context.Context, tx Tx, forUpdate string, l Lease, id int64, messageID string) (Delivery, error) {
	var one int
	err := tx.QueryRowContext(ctx, "SELECT 1 FROM rpt_jobs WHERE id = ? AND lease_token = ? AND status = ?"+forUpdate,
		l.JobID, l.Token, StatusRunning).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, ErrLeaseLost
	}
	if err != nil {
		return Delivery{}, err
	}
	before, err := ScanDelivery(tx.QueryRowContext(ctx, "SELECT "+DeliveryColumns+" FROM rpt_deliveries WHERE id = ?"+forUpdate, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	if err != nil || before.State == DeliverySent {
		return before, err
	}
	_, err = tx.ExecContext(ctx, "UPDATE rpt_deliveries SET state = ?, message_id = ?, attempts = attempts + 1 WHERE id = ?",
		DeliverySending, messageID, id)
	return before, err
}

// DefinitionColumns are the columns ScanDefinition reads, in its order.
const DefinitionColumns = "sha256, report, definition, published_by, published_at"

// ScanDefinition reads a row of DefinitionColumns.
func ScanDefinition(row RowScanner) (PublishedDefinition, error) {
	var d PublishedDefinition
	var at dbTime
	err := row.Scan(&d.SHA256, &d.Report, &d.Definition, &d.PublishedBy, &at)
	d.PublishedAt = at.t
	return d, err
}

// AgentColumns are the columns ScanAgent reads, in its order.
const AgentColumns = "name, host, labels, sources, version, running, draining, drain_requested, last_seen"

// ScanAgent reads a row of AgentColumns; labels and sources are JSON (NULL or empty is
// none).
func ScanAgent(row RowScanner) (Agent, error) {
	var a Agent
	var labels, sources sql.NullString
	var lastSeen dbTime
	if err := row.Scan(&a.Name, &a.Host, &labels, &sources, &a.Version, &a.Running, &a.Draining, &a.DrainRequested,
		&lastSeen); err != nil {
		return Agent{}, err
	}
	if labels.String != "" && labels.String != "null" {
		if err := json.Unmarshal([]byte(labels.String), &a.Labels); err != nil {
			return Agent{}, fmt.Errorf("agent %s: labels: %w", a.Name, err)
		}
	}
	if sources.String != "" && sources.String != "null" {
		if err := json.Unmarshal([]byte(sources.String), &a.Sources); err != nil {
			return Agent{}, fmt.Errorf("agent %s: sources: %w", a.Name, err)
		}
	}
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	if len(a.Sources) == 0 {
		a.Sources = nil
	}
	a.LastSeen = lastSeen.t
	return a, nil
}

// PauseQuery selects every pause by kind and name, for ScanPause.
const PauseQuery = "SELECT kind, name, created_at FROM rpt_pauses ORDER BY kind, name"

// ScanPause reads a row of PauseQuery.
func ScanPause(row RowScanner) (Pause, error) {
	var p Pause
	var at dbTime
	err := row.Scan(&p.Kind, &p.Name, &at)
	p.CreatedAt = at.t
	return p, err
}

// SlotUsageQuery counts taken slots by scope, for CollectSlotUsage. A plain read: it
// never waits for a claim's slot locks.
const SlotUsageQuery = "SELECT scope, COUNT(*) FROM rpt_slots WHERE job_id IS NOT NULL GROUP BY scope"

// CollectSlotUsage reads the rows of SlotUsageQuery (and closes them) into counts by
// scope; scopes with none taken are absent.
func CollectSlotUsage(rows *sql.Rows) (map[string]int, error) {
	type count struct {
		scope string
		n     int
	}
	counts, err := CollectRows(rows, func(r RowScanner) (count, error) {
		var c count
		err := r.Scan(&c.scope, &c.n)
		return c, err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(counts))
	for _, c := range counts {
		out[c.scope] = c.n
	}
	return out, nil
}
