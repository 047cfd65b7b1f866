package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"rpt/internal/queue"
)

// jobColumns is every column a queue.Job is read from, in scanJob's order.
const jobColumns = `id, kind, report, definition, definition_sha256, params, source, route, scopes,
	neg_priority, status, attempt, failures, max_attempts, run_after, lease_token, lease_owner,
	lease_expires, cancel_requested_at, dedupe_key, once_key, submit_token, result_attempt, "rows",
	error, retry_of, submitted_by, origin, timeout_ms, created_at, started_at, finished_at,
	result_store, result_chunks, read_source, read_kind, read_at, read_loads`

// fenced is the condition of every agent write: it applies only while the job runs
// under this lease.
const fenced = `id = ? AND lease_token = ? AND status = 'running'`

// maxScopeLimit bounds the slot rows one scope may have.
const maxScopeLimit = 10000

// claimPage is how many candidate jobs a claim reads at a time.
const claimPage = 64

type rowScanner interface{ Scan(dest ...any) error }

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func fromNullMicros(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromMicros(n.Int64)
	return &t
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// nullPositive stores 0 (not known) as NULL.
func nullPositive(n int) sql.NullInt64 { return sql.NullInt64{Int64: int64(n), Valid: n > 0} }

func scanJob(sc rowScanner) (*queue.Job, error) {
	var (
		j                                        queue.Job
		kind, status, params, route, scopes      string
		negPriority, runAfter, createdAt, timeMS int64
		leaseToken, leaseOwner                   sql.NullString
		dedupe, once, submit                     sql.NullString
		leaseExpires, cancelAt, retryOf          sql.NullInt64
		startedAt, finishedAt                    sql.NullInt64
		resultStore                              sql.NullString
		resultChunks                             sql.NullInt64
		readSource, readKind, readLoads          sql.NullString
		readAt                                   sql.NullInt64
	)
	err := sc.Scan(&j.ID, &kind, &j.Report, &j.Definition, &j.DefinitionSHA256, &params, &j.Source,
		&route, &scopes, &negPriority, &status, &j.Attempt, &j.Failures, &j.MaxAttempts, &runAfter,
		&leaseToken, &leaseOwner, &leaseExpires, &cancelAt, &dedupe, &once, &submit, &j.ResultAttempt,
		&j.Rows, &j.Error, &retryOf, &j.SubmittedBy, &j.Origin, &timeMS, &createdAt, &startedAt, &finishedAt,
		&resultStore, &resultChunks, &readSource, &readKind, &readAt, &readLoads)
	if err != nil {
		return nil, err
	}
	j.Kind = queue.Kind(kind)
	j.Status = queue.Status(status)
	j.Params = json.RawMessage(params)
	if err := json.Unmarshal([]byte(route), &j.Route); err != nil {
		return nil, fmt.Errorf("job %d: route: %w", j.ID, err)
	}
	if len(j.Route) == 0 {
		j.Route = nil
	}
	if err := json.Unmarshal([]byte(scopes), &j.Scopes); err != nil {
		return nil, fmt.Errorf("job %d: scopes: %w", j.ID, err)
	}
	if len(j.Scopes) == 0 {
		j.Scopes = nil
	}
	j.Priority = int(-negPriority)
	j.RunAfter = fromMicros(runAfter)
	j.LeaseToken = leaseToken.String
	j.LeaseOwner = leaseOwner.String
	j.LeaseExpires = fromNullMicros(leaseExpires)
	j.CancelRequestedAt = fromNullMicros(cancelAt)
	j.DedupeKey = dedupe.String
	j.OnceKey = once.String
	j.SubmitToken = submit.String
	j.RetryOf = retryOf.Int64
	j.Timeout = time.Duration(timeMS) * time.Millisecond
	j.CreatedAt = fromMicros(createdAt)
	j.StartedAt = fromNullMicros(startedAt)
	j.FinishedAt = fromNullMicros(finishedAt)
	j.ResultStore = resultStore.String
	j.ResultChunks = int(resultChunks.Int64)
	if readSource.Valid {
		j.Read = &queue.ReadInfo{Source: readSource.String, Kind: readKind.String}
		if readAt.Valid {
			j.Read.At = fromMicros(readAt.Int64)
		}
		if err := j.Read.SetLoadsJSON(readLoads.String); err != nil {
			return nil, fmt.Errorf("job %d: read_loads: %w", j.ID, err)
		}
	}
	return &j, nil
}

func getJob(ctx context.Context, q querier, id int64) (*queue.Job, error) {
	j, err := scanJob(q.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM rpt_jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %d: %w", id, queue.ErrNotFound)
	}
	return j, err
}

// jobBy returns the job whose unique column equals v, or nil.
func jobBy(ctx context.Context, q querier, column, v string) (*queue.Job, error) {
	j, err := scanJob(q.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM rpt_jobs WHERE `+column+` = ?`, v))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return j, err
}

// insertEvent records an event with the job's status, attempt and rows after the
// change; agent and errText, when given, override the job's.
func insertEvent(ctx context.Context, tx *wtx, id int64, event, agent, errText string) error {
	return insertEventBy(ctx, tx, id, event, agent, errText, "")
}

// insertEventBy is insertEvent naming who caused it (a submitter, a canceller).
func insertEventBy(ctx context.Context, tx *wtx, id int64, event, agent, errText, by string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO rpt_job_events
		(job_id, report, event, status, attempt, agent, "rows", error, at, actor)
		SELECT id, report, ?, status, attempt, COALESCE(NULLIF(?, ''), lease_owner, ''), "rows", ?, `+nowUS+`, NULLIF(?, '')
		FROM rpt_jobs WHERE id = ?`, event, agent, errText, by, id)
	if err != nil {
		return fmt.Errorf("event %s of job %d: %w", event, id, err)
	}
	return nil
}

func freeSlots(ctx context.Context, tx *wtx, id int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE rpt_slots SET job_id = NULL, lease_token = NULL WHERE job_id = ?`, id)
	if err != nil {
		return fmt.Errorf("free slots of job %d: %w", id, err)
	}
	return nil
}

func dbNow(ctx context.Context, tx *wtx) (int64, error) {
	var now int64
	err := tx.QueryRowContext(ctx, `SELECT `+nowUS).Scan(&now)
	return now, err
}

// JobEnqueue inserts a queued job, or returns the job its submit token, once key or
// active dedupe key names (checked in that order).
func (s *Store) JobEnqueue(ctx context.Context, p queue.JobEnqueueParams) (queue.JobEnqueueResult, error) {
	if err := p.Normalize(); err != nil {
		return queue.JobEnqueueResult{}, fmt.Errorf("enqueue job: %w", err)
	}
	var res queue.JobEnqueueResult
	err := s.write(ctx, "enqueue job", func(tx *wtx) error {
		var err error
		res, err = enqueueIn(ctx, tx, &p)
		return err
	})
	return res, err
}

// JobEnqueueBatch enqueues the jobs in one write transaction (one commit on the file),
// each as JobEnqueue would after the ones before it: a key an earlier job of the batch
// took returns that job.
func (s *Store) JobEnqueueBatch(ctx context.Context, ps []queue.JobEnqueueParams) ([]queue.JobEnqueueResult, error) {
	ps = append([]queue.JobEnqueueParams(nil), ps...)
	for i := range ps {
		if err := ps[i].Normalize(); err != nil {
			return nil, fmt.Errorf("enqueue jobs: job %d: %w", i, err)
		}
		if len(ps[i].After) > 0 {
			return nil, fmt.Errorf("enqueue jobs: job %d: %w", i, queue.ErrAfterInBatch)
		}
	}
	if len(ps) == 0 {
		return nil, nil
	}
	var out []queue.JobEnqueueResult
	err := s.write(ctx, "enqueue jobs", func(tx *wtx) error {
		out = make([]queue.JobEnqueueResult, len(ps))
		for i := range ps {
			res, err := enqueueIn(ctx, tx, &ps[i])
			if err != nil {
				return fmt.Errorf("job %d: %w", i, err)
			}
			out[i] = res
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// enqueueIn is one enqueue in the caller's write transaction.
func enqueueIn(ctx context.Context, tx *wtx, p *queue.JobEnqueueParams) (queue.JobEnqueueResult, error) {
	var runAfter sql.NullInt64
	if p.RunAfter != nil {
		runAfter = sql.NullInt64{Int64: p.RunAfter.UTC().UnixMicro(), Valid: true}
	}
	for _, k := range p.ExistingKeys() {
		j, err := jobBy(ctx, tx, k.Column, k.Value)
		if err != nil {
			return queue.JobEnqueueResult{}, err
		}
		if j != nil {
			return queue.JobEnqueueResult{Job: j, Existing: true}, nil
		}
	}
	ps, err := deps.LockPrerequisites(ctx, tx, p.After)
	if err != nil {
		return queue.JobEnqueueResult{}, err
	}
	j, err := scanJob(tx.QueryRowContext(ctx, `INSERT INTO rpt_jobs (kind, report, definition, definition_sha256,
		params, source, route, scopes, neg_priority, status, max_attempts, run_after, dedupe_key, once_key,
		submit_token, retry_of, submitted_by, origin, timeout_ms, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, COALESCE(?, `+nowUS+`), ?, ?, ?, ?, ?, ?, ?, `+nowUS+`)
		RETURNING `+jobColumns,
		string(p.Kind), p.Report, p.Definition, p.DefinitionSHA256, string(p.Params), p.Source,
		p.RouteJSON(), p.ScopesJSON(), -int64(p.Priority), p.MaxAttempts, runAfter,
		nullString(p.DedupeKey), nullString(p.OnceKey), nullString(p.SubmitToken),
		sql.NullInt64{Int64: p.RetryOf, Valid: p.RetryOf != 0}, p.SubmittedBy, p.Origin,
		p.Timeout.Milliseconds()))
	if err != nil {
		return queue.JobEnqueueResult{}, fmt.Errorf("insert: %w", err)
	}
	for _, sc := range p.Scopes {
		if sc.Limit <= 0 {
			continue
		}
		// Slot rows appear lazily; raising a limit adds rows, never removes them
		// (the claim ignores rows above the job's limit).
		_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO rpt_slots (scope, n)
			WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ?)
			SELECT ?, n FROM c`, sc.Limit, sc.Name)
		if err != nil {
			return queue.JobEnqueueResult{}, fmt.Errorf("slots of %s: %w", sc.Name, err)
		}
	}
	if err := insertEventBy(ctx, tx, j.ID, queue.EventQueued, "", "", p.SubmittedBy); err != nil {
		return queue.JobEnqueueResult{}, err
	}
	if len(ps) > 0 {
		if _, err := deps.Link(ctx, tx, j.ID, ps, queue.NotDue.UnixMicro()); err != nil {
			return queue.JobEnqueueResult{}, err
		}
		if j, err = getJob(ctx, tx, j.ID); err != nil {
			return queue.JobEnqueueResult{}, err
		}
	}
	return queue.JobEnqueueResult{Job: j}, nil
}

// claimCandidate is a queued job the claim considers.
type claimCandidate struct {
	id                    int64
	negPriority, runAfter int64
	route                 map[string]string
	scopes                []queue.Scope
}

// JobClaim claims up to p.Limit runnable jobs in claim order, taking a free slot of
// each of a job's scopes; jobs whose scopes are saturated are skipped, not waited for.
func (s *Store) JobClaim(ctx context.Context, p queue.JobClaimParams) ([]*queue.Job, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	var claimed []*queue.Job
	err := s.write(ctx, "claim jobs", func(tx *wtx) error {
		var err error
		claimed, err = claimIn(ctx, tx, p)
		return err
	})
	return claimed, err
}

// claimIn is the claim, in a write transaction of the caller's (JobClaim's own, or a
// batch completion's).
func claimIn(ctx context.Context, tx *wtx, p queue.JobClaimParams) ([]*queue.Job, error) {
	var claimed []*queue.Job
	now, err := dbNow(ctx, tx)
	if err != nil {
		return nil, err
	}
	// saturated[scope] is the largest limit at which the scope had no free slot:
	// a job with that limit or less can't run now either.
	saturated := map[string]int{}
	var after *claimCandidate
	for len(claimed) < p.Limit {
		page, err := claimCandidates(ctx, tx, now, p.Sources, after)
		if err != nil {
			return nil, err
		}
		for i := range page {
			c := &page[i]
			if len(claimed) >= p.Limit {
				break
			}
			if !queue.RouteSatisfied(c.route, p.Labels) {
				continue
			}
			j, err := claimOne(ctx, tx, c, p, p.Token(len(claimed)), saturated)
			if err != nil {
				return nil, err
			}
			if j != nil {
				claimed = append(claimed, j)
			}
		}
		if len(page) < claimPage {
			break
		}
		after = &page[len(page)-1]
	}
	return claimed, nil
}

func claimCandidates(ctx context.Context, tx *wtx, now int64, sources []string, after *claimCandidate) ([]claimCandidate, error) {
	var q strings.Builder
	args := []any{now}
	q.WriteString(`SELECT id, neg_priority, run_after, route, scopes FROM rpt_jobs
		WHERE status = 'queued' AND run_after <= ?
		AND report NOT IN (SELECT name FROM rpt_pauses WHERE kind = 'report')
		AND source NOT IN (SELECT name FROM rpt_pauses WHERE kind = 'source')`)
	if len(sources) > 0 {
		q.WriteString(` AND source IN (?` + strings.Repeat(`, ?`, len(sources)-1) + `)`)
		for _, src := range sources {
			args = append(args, src)
		}
	}
	if after != nil {
		q.WriteString(` AND (neg_priority, run_after, id) > (?, ?, ?)`)
		args = append(args, after.negPriority, after.runAfter, after.id)
	}
	q.WriteString(` ORDER BY neg_priority, run_after, id LIMIT ?`)
	args = append(args, claimPage)
	rows, err := tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("select candidates: %w", err)
	}
	defer rows.Close()
	var out []claimCandidate
	for rows.Next() {
		var c claimCandidate
		var route, scopes string
		if err := rows.Scan(&c.id, &c.negPriority, &c.runAfter, &route, &scopes); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(route), &c.route); err != nil {
			return nil, fmt.Errorf("job %d: route: %w", c.id, err)
		}
		if err := json.Unmarshal([]byte(scopes), &c.scopes); err != nil {
			return nil, fmt.Errorf("job %d: scopes: %w", c.id, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// claimOne takes slots for c and marks it running under token, or returns nil when a
// scope is full.
func claimOne(ctx context.Context, tx *wtx, c *claimCandidate, p queue.JobClaimParams, token string, saturated map[string]int) (*queue.Job, error) {
	scopes := queue.ClaimScopes(c.scopes)
	slots := make([]int64, len(scopes))
	for i, sc := range scopes {
		if lim, ok := saturated[sc.Name]; ok && sc.Limit <= lim {
			return nil, nil
		}
		err := tx.QueryRowContext(ctx, `SELECT n FROM rpt_slots
			WHERE scope = ? AND job_id IS NULL AND n <= ? ORDER BY n LIMIT 1`, sc.Name, sc.Limit).Scan(&slots[i])
		if errors.Is(err, sql.ErrNoRows) {
			saturated[sc.Name] = max(saturated[sc.Name], sc.Limit)
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("slot of %s: %w", sc.Name, err)
		}
	}
	for i, sc := range scopes {
		if _, err := tx.ExecContext(ctx, `UPDATE rpt_slots SET job_id = ?, lease_token = ? WHERE scope = ? AND n = ?`,
			c.id, token, sc.Name, slots[i]); err != nil {
			return nil, fmt.Errorf("take slot %s/%d: %w", sc.Name, slots[i], err)
		}
	}
	j, err := scanJob(tx.QueryRowContext(ctx, `UPDATE rpt_jobs SET status = 'running', attempt = attempt + 1,
		lease_token = ?, lease_owner = ?, lease_expires = `+nowUS+` + ?, started_at = `+nowUS+`, finished_at = NULL
		WHERE id = ? AND status = 'queued' RETURNING `+jobColumns,
		token, p.Agent, p.LeaseDuration.Microseconds(), c.id))
	if err != nil {
		return nil, fmt.Errorf("mark job %d running: %w", c.id, err)
	}
	if err := insertEvent(ctx, tx, c.id, queue.EventRunning, "", ""); err != nil {
		return nil, err
	}
	return j, nil
}

// JobHeartbeat renews the lease and records rows so far; a "progress" event when the
// row count changed.
func (s *Store) JobHeartbeat(ctx context.Context, l queue.Lease, rows int64, leaseDuration time.Duration) (queue.Heartbeat, error) {
	if leaseDuration <= 0 {
		return queue.Heartbeat{}, fmt.Errorf("heartbeat job %d: lease duration: %s is not positive", l.JobID, leaseDuration)
	}
	var hb queue.Heartbeat
	err := s.write(ctx, fmt.Sprintf("heartbeat job %d", l.JobID), func(tx *wtx) error {
		hb = queue.Heartbeat{}
		var old int64
		err := tx.QueryRowContext(ctx, `SELECT "rows", cancel_requested_at IS NOT NULL FROM rpt_jobs WHERE `+fenced,
			l.JobID, l.Token).Scan(&old, &hb.CancelRequested)
		if errors.Is(err, sql.ErrNoRows) {
			return queue.ErrLeaseLost
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE rpt_jobs SET lease_expires = `+nowUS+` + ?, "rows" = ? WHERE `+fenced,
			leaseDuration.Microseconds(), rows, l.JobID, l.Token); err != nil {
			return err
		}
		if rows != old {
			return insertEvent(ctx, tx, l.JobID, queue.EventProgress, "", "")
		}
		return nil
	})
	return hb, err
}

// fencedUpdate runs a fenced UPDATE; no row means the lease is lost.
func fencedUpdate(ctx context.Context, tx *wtx, l queue.Lease, set string, args ...any) error {
	res, err := tx.ExecContext(ctx, `UPDATE rpt_jobs SET `+set+` WHERE `+fenced, append(args, l.JobID, l.Token)...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return queue.ErrLeaseLost
	}
	return nil
}

// JobComplete marks the job succeeded; the lease's attempt becomes the result attempt,
// recorded with where its result lives and how many chunks it has (and chunk 0 itself
// when the completion carries it).
func (s *Store) JobComplete(ctx context.Context, l queue.Lease, c queue.Completion) error {
	return s.write(ctx, fmt.Sprintf("complete job %d", l.JobID), func(tx *wtx) error {
		return completeOne(ctx, tx, l, c)
	})
}

func completeOne(ctx context.Context, tx *wtx, l queue.Lease, c queue.Completion) error {
	var attempt int
	var rs, rk sql.NullString
	var ra sql.NullInt64
	var rl any
	if c.Read != nil && c.Read.Source != "" {
		rs, rk = nullString(c.Read.Source), nullString(c.Read.Kind)
		ra = sql.NullInt64{Int64: c.Read.At.UnixMicro(), Valid: !c.Read.At.IsZero()}
		rl = c.Read.LoadsJSON()
	}
	err := tx.QueryRowContext(ctx, `UPDATE rpt_jobs SET status = 'succeeded', "rows" = ?, result_attempt = attempt,
		result_store = ?, result_chunks = ?, read_source = ?, read_kind = ?, read_at = ?, read_loads = ?,
		error = '', lease_expires = NULL, finished_at = `+nowUS+`
		WHERE `+fenced+` RETURNING attempt`,
		c.Rows, nullString(c.ResultStore), nullPositive(c.ResultChunks), rs, rk, ra, rl, l.JobID, l.Token).Scan(&attempt)
	if errors.Is(err, sql.ErrNoRows) {
		return queue.ErrLeaseLost
	}
	if err != nil {
		return err
	}
	if c.Chunk != nil {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO rpt_results (job_id, attempt, seq, data) VALUES (?, ?, 0, ?)`,
			l.JobID, attempt, c.Chunk); err != nil {
			return fmt.Errorf("result chunk 0: %w", err)
		}
	}
	if err := freeSlots(ctx, tx, l.JobID); err != nil {
		return err
	}
	if err := insertEvent(ctx, tx, l.JobID, queue.EventSucceeded, "", ""); err != nil {
		return err
	}
	return settle(ctx, tx, l.JobID)
}

// JobCompleteBatch completes many leases in one write transaction (one commit on the
// file for all of them), each fenced by its own lease: an item whose lease no longer
// holds gets ErrLeaseLost and the others complete. A claim, when given, runs in the
// same transaction after them.
func (s *Store) JobCompleteBatch(ctx context.Context, items []queue.CompleteItem, claim *queue.JobClaimParams) ([]error, []*queue.Job, error) {
	if claim != nil {
		if err := claim.Check(); err != nil {
			return nil, nil, err
		}
	}
	var errs []error
	var claimed []*queue.Job
	err := s.write(ctx, fmt.Sprintf("complete %d jobs", len(items)), func(tx *wtx) error {
		errs, claimed = make([]error, len(items)), nil
		for i, it := range items {
			err := completeOne(ctx, tx, it.Lease, it.Completion)
			if errors.Is(err, queue.ErrLeaseLost) {
				errs[i] = fmt.Errorf("complete job %d: %w", it.Lease.JobID, err)
				continue
			}
			if err != nil {
				return fmt.Errorf("complete job %d: %w", it.Lease.JobID, err)
			}
		}
		if claim != nil && claim.Limit > 0 {
			var err error
			claimed, err = claimIn(ctx, tx, *claim)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return errs, claimed, nil
}

// JobFail records an attempt's error. A retryable error below max_attempts queues the
// job again after backoff; a job whose cancel was requested ends cancelled (its error
// is most likely the cancel itself); anything else ends failed.
func (s *Store) JobFail(ctx context.Context, l queue.Lease, p queue.JobFailParams) (queue.Status, error) {
	var status queue.Status
	err := s.write(ctx, fmt.Sprintf("fail job %d", l.JobID), func(tx *wtx) error {
		status = ""
		var j queue.LeasedJob
		err := tx.QueryRowContext(ctx, `SELECT id, failures, max_attempts, cancel_requested_at IS NOT NULL,
			COALESCE(lease_owner, '') FROM rpt_jobs WHERE `+fenced, l.JobID, l.Token).
			Scan(&j.ID, &j.Failures, &j.Max, &j.CancelRequested, &j.Owner)
		if errors.Is(err, sql.ErrNoRows) {
			return queue.ErrLeaseLost
		}
		if err != nil {
			return err
		}
		status, err = s.endAttempt(ctx, tx, j, p.Error, p.Retryable, true)
		return err
	})
	return status, err
}

// endAttempt counts a failure of a running job and queues it again, fails it or
// cancels it; it frees its slots and records the event.
func (s *Store) endAttempt(ctx context.Context, tx *wtx, j queue.LeasedJob, errText string, retryable, backoff bool) (queue.Status, error) {
	end := queue.EndAttempt(j, retryable, func(failures int) time.Duration { return s.retryDelay(failures, backoff) })
	var set string
	var args []any
	switch end.Status {
	case queue.StatusCancelled:
		set = `status = 'cancelled', lease_expires = NULL, finished_at = ` + nowUS
	case queue.StatusQueued:
		set = `status = 'queued', failures = ?, lease_token = NULL, lease_owner = NULL, lease_expires = NULL,
			run_after = ` + nowUS + ` + ?`
		args = []any{end.Failures, end.RetryIn.Microseconds()}
	default:
		set = `status = 'failed', failures = ?, lease_expires = NULL, finished_at = ` + nowUS
		args = []any{end.Failures}
	}
	args = append(args, errText, j.ID)
	if _, err := tx.ExecContext(ctx, `UPDATE rpt_jobs SET `+set+`, error = ? WHERE id = ?`, args...); err != nil {
		return "", err
	}
	if err := freeSlots(ctx, tx, j.ID); err != nil {
		return "", err
	}
	if err := insertEvent(ctx, tx, j.ID, end.Event, j.Owner, errText); err != nil {
		return "", err
	}
	if end.Status.Terminal() {
		return end.Status, settle(ctx, tx, j.ID)
	}
	return end.Status, nil
}

// JobCancelled ends a running job as cancelled.
func (s *Store) JobCancelled(ctx context.Context, l queue.Lease) error {
	return s.write(ctx, fmt.Sprintf("cancel job %d", l.JobID), func(tx *wtx) error {
		if err := fencedUpdate(ctx, tx, l, `status = 'cancelled', lease_expires = NULL,
			cancel_requested_at = COALESCE(cancel_requested_at, `+nowUS+`), finished_at = `+nowUS); err != nil {
			return err
		}
		if err := freeSlots(ctx, tx, l.JobID); err != nil {
			return err
		}
		if err := insertEvent(ctx, tx, l.JobID, queue.EventCancelled, "", ""); err != nil {
			return err
		}
		return settle(ctx, tx, l.JobID)
	})
}

// JobRelease queues a running job again without counting a failure, keeping its place
// in the claim order. A job whose cancel was requested ends cancelled instead.
func (s *Store) JobRelease(ctx context.Context, l queue.Lease) error {
	return s.write(ctx, fmt.Sprintf("release job %d", l.JobID), func(tx *wtx) error {
		var cancelRequested bool
		var owner sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT cancel_requested_at IS NOT NULL, lease_owner FROM rpt_jobs WHERE `+fenced,
			l.JobID, l.Token).Scan(&cancelRequested, &owner)
		if errors.Is(err, sql.ErrNoRows) {
			return queue.ErrLeaseLost
		}
		if err != nil {
			return err
		}
		return release(ctx, tx, l.JobID, cancelRequested, owner.String)
	})
}

// JobWait queues a running job again no sooner than after, with no failure counted and
// reason as its error and its waiting event's (queue.Waiter).
func (s *Store) JobWait(ctx context.Context, l queue.Lease, after time.Duration, reason string) error {
	return s.write(ctx, fmt.Sprintf("put job %d to wait", l.JobID), func(tx *wtx) error {
		var cancelRequested bool
		var owner sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT cancel_requested_at IS NOT NULL, lease_owner FROM rpt_jobs WHERE `+fenced,
			l.JobID, l.Token).Scan(&cancelRequested, &owner)
		if errors.Is(err, sql.ErrNoRows) {
			return queue.ErrLeaseLost
		}
		if err != nil {
			return err
		}
		if cancelRequested {
			return release(ctx, tx, l.JobID, true, owner.String)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE rpt_jobs SET status = 'queued', lease_token = NULL, lease_owner = NULL, lease_expires = NULL,
			run_after = `+nowUS+` + ?, error = ? WHERE id = ?`, after.Microseconds(), nullString(reason), l.JobID); err != nil {
			return err
		}
		if err := freeSlots(ctx, tx, l.JobID); err != nil {
			return err
		}
		return insertEvent(ctx, tx, l.JobID, queue.EventWaiting, owner.String, reason)
	})
}

// release queues a running job again (released) or, when its cancel was requested,
// ends it cancelled.
func release(ctx context.Context, tx *wtx, id int64, cancelRequested bool, owner string) error {
	status, event := queue.Release(cancelRequested)
	set := `status = 'queued', lease_token = NULL, lease_owner = NULL, lease_expires = NULL`
	if status == queue.StatusCancelled {
		set = `status = 'cancelled', lease_expires = NULL, finished_at = ` + nowUS
	}
	if _, err := tx.ExecContext(ctx, `UPDATE rpt_jobs SET `+set+` WHERE id = ?`, id); err != nil {
		return err
	}
	if err := freeSlots(ctx, tx, id); err != nil {
		return err
	}
	if err := insertEvent(ctx, tx, id, event, owner, ""); err != nil {
		return err
	}
	if status.Terminal() {
		return settle(ctx, tx, id)
	}
	return nil
}

// JobReleaseTokens releases the running jobs holding one of tokens (a claim whose answer
// was lost).
func (s *Store) JobReleaseTokens(ctx context.Context, tokens []string) (int, error) {
	if len(tokens) == 0 {
		return 0, nil
	}
	n := 0
	err := s.write(ctx, "release claimed jobs", func(tx *wtx) error {
		n = 0
		in, args := queue.InList(tokens)
		rows, err := tx.QueryContext(ctx, `SELECT id, cancel_requested_at IS NOT NULL, COALESCE(lease_owner, '') FROM rpt_jobs
			WHERE status = 'running' AND lease_token IN `+in+` ORDER BY id`, args...)
		if err != nil {
			return err
		}
		found, err := queue.ScanLeasedJobs(rows, false)
		if err != nil {
			return err
		}
		for _, h := range found {
			if err := release(ctx, tx, h.ID, h.CancelRequested, h.Owner); err != nil {
				return fmt.Errorf("job %d: %w", h.ID, err)
			}
		}
		n = len(found)
		return nil
	})
	return n, err
}

// JobCancel cancels a queued job at once or requests cancel of a running one; a
// finished job, or a running one already asked, is returned unchanged.
func (s *Store) JobCancel(ctx context.Context, id int64, by string) (*queue.Job, error) {
	var job *queue.Job
	err := s.write(ctx, fmt.Sprintf("cancel job %d", id), func(tx *wtx) error {
		job = nil
		j, err := getJob(ctx, tx, id)
		if err != nil {
			return err
		}
		switch {
		case j.Status == queue.StatusQueued:
			if _, err := tx.ExecContext(ctx, `UPDATE rpt_jobs SET status = 'cancelled',
				cancel_requested_at = `+nowUS+`, finished_at = `+nowUS+` WHERE id = ?`, id); err != nil {
				return err
			}
			if err := insertEventBy(ctx, tx, id, queue.EventCancelled, "", "", by); err != nil {
				return err
			}
			if err := settle(ctx, tx, id); err != nil {
				return err
			}
		case j.Status == queue.StatusRunning && j.CancelRequestedAt == nil:
			if _, err := tx.ExecContext(ctx, `UPDATE rpt_jobs SET cancel_requested_at = `+nowUS+` WHERE id = ?`, id); err != nil {
				return err
			}
			if err := insertEventBy(ctx, tx, id, queue.EventCancelRequested, "", "", by); err != nil {
				return err
			}
		default:
			job = j
			return nil
		}
		job, err = getJob(ctx, tx, id)
		return err
	})
	return job, err
}

// JobRescue ends the attempts whose lease expired: each counts as a failure (retried
// after backoff, or failed at max_attempts), or ends cancelled when cancel was requested.
func (s *Store) JobRescue(ctx context.Context) (int, error) {
	var n int
	err := s.write(ctx, "rescue jobs", func(tx *wtx) error {
		n = 0
		rows, err := tx.QueryContext(ctx, `SELECT id, cancel_requested_at IS NOT NULL, COALESCE(lease_owner, ''),
			failures, max_attempts FROM rpt_jobs WHERE status = 'running' AND lease_expires < `+nowUS+` ORDER BY id`)
		if err != nil {
			return err
		}
		expired, err := queue.ScanLeasedJobs(rows, true)
		if err != nil {
			return err
		}
		for _, j := range expired {
			if _, err := s.endAttempt(ctx, tx, j, queue.RescueError(j.Owner), true, false); err != nil {
				return fmt.Errorf("job %d: %w", j.ID, err)
			}
		}
		n = len(expired)
		return nil
	})
	return n, err
}

// JobGet returns one job.
func (s *Store) JobGet(ctx context.Context, id int64) (*queue.Job, error) {
	j, err := getJob(ctx, s.r, id)
	if err != nil {
		return nil, fmt.Errorf("get job: %w", err)
	}
	return j, nil
}

// JobList returns jobs newest first, filtered by status, report and params values.
func (s *Store) JobList(ctx context.Context, p queue.JobListParams) ([]*queue.Job, error) {
	var q strings.Builder
	var args []any
	q.WriteString(`SELECT ` + jobColumns + ` FROM rpt_jobs WHERE 1 = 1`)
	if p.Status != "" {
		q.WriteString(` AND status = ?`)
		args = append(args, string(p.Status))
	}
	if p.Report != "" {
		q.WriteString(` AND report = ?`)
		args = append(args, p.Report)
	}
	if p.Before > 0 {
		q.WriteString(` AND id < ?`)
		args = append(args, p.Before)
	}
	q.WriteString(` ORDER BY id DESC`)
	// With a params filter the limit applies after matching, in Go.
	if p.Limit > 0 && len(p.Params) == 0 {
		q.WriteString(` LIMIT ?`)
		args = append(args, p.Limit)
	}
	rows, err := s.r.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var out []*queue.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		if !queue.ParamsMatch(j.Params, p.Params) {
			continue
		}
		out = append(out, j)
		if p.Limit > 0 && len(out) >= p.Limit {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}

// EventList returns events after afterSeq in seq order, of one job when jobID != 0;
// limit <= 0 means all.
func (s *Store) EventList(ctx context.Context, jobID int64, afterSeq int64, limit int) ([]queue.Event, error) {
	q := `SELECT seq, job_id, report, event, status, attempt, agent, "rows", error, at, COALESCE(actor, '') FROM rpt_job_events WHERE seq > ?`
	args := []any{afterSeq}
	if jobID != 0 {
		q += ` AND job_id = ?`
		args = append(args, jobID)
	}
	q += ` ORDER BY seq`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []queue.Event
	for rows.Next() {
		var e queue.Event
		var status string
		var at int64
		if err := rows.Scan(&e.Seq, &e.JobID, &e.Report, &e.Event, &status, &e.Attempt, &e.Agent, &e.Rows, &e.Error, &at, &e.By); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		e.Status = queue.Status(status)
		e.At = fromMicros(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// AgentHeartbeat upserts an agent's row; last_seen is the database's now. It leaves
// drain_requested as it is: the agent reports its state, only AgentDrain asks.
func (s *Store) AgentHeartbeat(ctx context.Context, a queue.Agent) error {
	if a.Name == "" {
		return errors.New("agent heartbeat: name: empty")
	}
	labels := queue.LabelsJSON(a.Labels)
	sources := a.Sources
	if sources == nil {
		sources = []string{}
	}
	sourcesJSON, err := json.Marshal(sources)
	if err != nil {
		return fmt.Errorf("agent heartbeat %s: sources: %w", a.Name, err)
	}
	return s.write(ctx, "agent heartbeat "+a.Name, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO rpt_agents (name, host, labels, sources, version, running, draining, last_seen)
			VALUES (?, ?, ?, ?, ?, ?, ?, `+nowUS+`)
			ON CONFLICT (name) DO UPDATE SET host = excluded.host, labels = excluded.labels,
			sources = excluded.sources, version = excluded.version, running = excluded.running,
			draining = excluded.draining, last_seen = excluded.last_seen`,
			a.Name, a.Host, labels, string(sourcesJSON), a.Version, a.Running, a.Draining)
		return err
	})
}

// AgentList returns every agent by name.
func (s *Store) AgentList(ctx context.Context) ([]queue.Agent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+queue.AgentColumns+` FROM rpt_agents ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	out, err := queue.CollectRows(rows, queue.ScanAgent)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return out, nil
}

// retryDelay is the wait before the next attempt: backoff after an error; none after a
// lease expired (the agent died, not the job), so a rescued job runs again at once.
func (s *Store) retryDelay(failures int, backoff bool) time.Duration {
	if !backoff {
		return 0
	}
	return s.opts.RetryDelay(failures)
}
