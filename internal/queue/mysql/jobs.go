package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"rpt/internal/queue"
)

// jobColumns is every column of a queue.Job, in the order scanJob reads them.
const jobColumns = "id, kind, report, definition, definition_sha256, params, source, route, scopes, neg_priority, " +
	"status, attempt, failures, max_attempts, run_after, lease_token, lease_owner, lease_expires, cancel_requested_at, " +
	"dedupe_key, once_key, submit_token, result_attempt, `rows`, error, retry_of, submitted_by, origin, timeout_ms, " +
	"created_at, started_at, finished_at, result_store, result_chunks, read_source, read_kind, read_at, read_loads"

type rowScanner interface{ Scan(dest ...any) error }

func scanJob(r rowScanner) (*queue.Job, error) {
	var (
		j                                        queue.Job
		params, route, scopes                    sql.NullString
		negPriority                              int
		status, kind                             string
		leaseToken, leaseOwner                   sql.NullString
		leaseExpires, cancelAt, startedAt, finAt sql.NullTime
		dedupe, once, token, errText             sql.NullString
		retryOf                                  sql.NullInt64
		timeoutMS                                int64
		resultStore                              sql.NullString
		resultChunks                             sql.NullInt64
		readSource, readKind, readLoads          sql.NullString
		readAt                                   sql.NullTime
	)
	err := r.Scan(&j.ID, &kind, &j.Report, &j.Definition, &j.DefinitionSHA256, &params, &j.Source, &route, &scopes,
		&negPriority, &status, &j.Attempt, &j.Failures, &j.MaxAttempts, &j.RunAfter, &leaseToken, &leaseOwner,
		&leaseExpires, &cancelAt, &dedupe, &once, &token, &j.ResultAttempt, &j.Rows, &errText, &retryOf,
		&j.SubmittedBy, &j.Origin, &timeoutMS, &j.CreatedAt, &startedAt, &finAt, &resultStore, &resultChunks,
		&readSource, &readKind, &readAt, &readLoads)
	if err != nil {
		return nil, err
	}
	j.Kind = queue.Kind(kind)
	j.Status = queue.Status(status)
	j.Priority = -negPriority
	j.Params = json.RawMessage(params.String)
	if route.Valid && route.String != "" {
		if err := json.Unmarshal([]byte(route.String), &j.Route); err != nil {
			return nil, fmt.Errorf("job %d: route: %w", j.ID, err)
		}
	}
	if scopes.Valid && scopes.String != "" {
		if err := json.Unmarshal([]byte(scopes.String), &j.Scopes); err != nil {
			return nil, fmt.Errorf("job %d: scopes: %w", j.ID, err)
		}
	}
	j.LeaseToken = leaseToken.String
	j.LeaseOwner = leaseOwner.String
	j.LeaseExpires = timePtr(leaseExpires)
	j.CancelRequestedAt = timePtr(cancelAt)
	j.DedupeKey = dedupe.String
	j.OnceKey = once.String
	j.SubmitToken = token.String
	j.Error = errText.String
	j.RetryOf = retryOf.Int64
	j.Timeout = time.Duration(timeoutMS) * time.Millisecond
	j.StartedAt = timePtr(startedAt)
	j.FinishedAt = timePtr(finAt)
	j.ResultStore = resultStore.String
	j.ResultChunks = int(resultChunks.Int64)
	if readSource.Valid {
		j.Read = &queue.ReadInfo{Source: readSource.String, Kind: readKind.String}
		if readAt.Valid {
			j.Read.At = readAt.Time.UTC()
		}
		if err := j.Read.SetLoadsJSON(readLoads.String); err != nil {
			return nil, fmt.Errorf("job %d: read_loads: %w", j.ID, err)
		}
	}
	j.RunAfter = j.RunAfter.UTC()
	j.CreatedAt = j.CreatedAt.UTC()
	return &j, nil
}

// readArgs are the read_source, read_kind, read_at and read_loads values of a
// completion's Read (NULLs when it has none).
func readArgs(r *queue.ReadInfo) []any {
	if r == nil || r.Source == "" {
		return []any{nil, nil, nil, nil}
	}
	var at any
	if !r.At.IsZero() {
		at = r.At.UTC()
	}
	return []any{r.Source, nullString(r.Kind), at, r.LoadsJSON()}
}

func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullPositive stores 0 (not known) as NULL.
func nullPositive(n int) any {
	if n <= 0 {
		return nil
	}
	return n
}

// micros is a duration as whole microseconds for INTERVAL ? MICROSECOND.
func micros(d time.Duration) int64 { return d.Microseconds() }

// insertEvent records the job's current row as an event; it reads the row the
// transaction just changed, so event and job never disagree. agent and error, when not
// empty, override the row's (a requeued job no longer names its agent).
func insertEvent(ctx context.Context, tx execer, id int64, event, agent, errText string) error {
	return insertEventBy(ctx, tx, id, event, agent, errText, "")
}

// insertEventBy is insertEvent naming who caused it (a submitter, a canceller).
func insertEventBy(ctx context.Context, tx execer, id int64, event, agent, errText, by string) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO rpt_job_events (job_id, report, event, status, attempt, agent, `rows`, error, at, actor) "+
		"SELECT id, report, ?, status, attempt, COALESCE(NULLIF(?, ''), lease_owner, ''), `rows`, NULLIF(?, ''), UTC_TIMESTAMP(6), NULLIF(?, '') "+
		"FROM rpt_jobs WHERE id = ?", event, agent, errText, by, id)
	if err != nil {
		return fmt.Errorf("event %s of job %d: %w", event, id, err)
	}
	return nil
}

// execer is a transaction: a *sql.Tx, or a *sql.Conn of the multi pool in one.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// freeSlots releases every slot a job holds; run in the transaction that ends its run.
func freeSlots(ctx context.Context, tx *sql.Tx, id int64) error {
	if _, err := tx.ExecContext(ctx, "UPDATE rpt_slots SET job_id = NULL, lease_token = NULL WHERE job_id = ?", id); err != nil {
		return fmt.Errorf("free slots of job %d: %w", id, err)
	}
	return nil
}

// fence is the condition every agent write about a job ends with.
const fence = "id = ? AND lease_token = ? AND status = 'running'"

type queryRower interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

func getJob(ctx context.Context, q queryRower, id int64) (*queue.Job, error) {
	j, err := scanJob(q.QueryRowContext(ctx, "SELECT "+jobColumns+" FROM rpt_jobs WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %d: %w", id, queue.ErrNotFound)
	}
	return j, err
}

// jobBy returns the job whose unique column equals v, or nil.
func jobBy(ctx context.Context, q queryRower, column, v string) (*queue.Job, error) {
	j, err := scanJob(q.QueryRowContext(ctx, "SELECT "+jobColumns+" FROM rpt_jobs WHERE "+column+" = ?", v))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return j, err
}

// JobGet returns one job.
func (s *Store) JobGet(ctx context.Context, id int64) (*queue.Job, error) {
	j, err := getJob(ctx, s.db, id)
	if err != nil {
		return nil, s.wrap("get job", err)
	}
	return j, nil
}

// JobEnqueue inserts a queued job, or returns the job its submit token, once key or
// active dedupe key already names (in that order). The insert is tried first: the
// UNIQUE indexes decide races between submitters (1062), and the loser reads the winner.
func (s *Store) JobEnqueue(ctx context.Context, p queue.JobEnqueueParams) (queue.JobEnqueueResult, error) {
	const op = "enqueue job"
	if err := p.Normalize(); err != nil {
		return queue.JobEnqueueResult{}, fmt.Errorf("%s: %w", op, err)
	}
	var runAfter, retryOf any
	if p.RunAfter != nil {
		runAfter = p.RunAfter.UTC()
	}
	if p.RetryOf != 0 {
		retryOf = p.RetryOf
	}

	for try := 0; try < 5; try++ {
		var j *queue.Job
		var err error
		if len(p.After) == 0 && !limitedScopes(p.Scopes) {
			// Nothing to lock first and no slots to create: one round trip (multi.go).
			j, err = s.enqueueOne(ctx, op, p, runAfter, retryOf)
		} else {
			j, err = s.enqueueTx(ctx, op, p, runAfter, retryOf)
		}
		if err == nil {
			return queue.JobEnqueueResult{Job: j}, nil
		}
		if mysqlErrNo(err) != errDupEntry {
			return queue.JobEnqueueResult{}, err
		}
		j, ferr := s.findExisting(ctx, p)
		if ferr != nil {
			return queue.JobEnqueueResult{}, s.wrap(op, ferr)
		}
		if j != nil {
			return queue.JobEnqueueResult{Job: j, Existing: true}, nil
		}
		// The active job we collided with finished in between (dedupe): insert again.
	}
	return queue.JobEnqueueResult{}, fmt.Errorf("%s: duplicate key kept changing; giving up", op)
}

// enqueueTx inserts a job, its slot rows, its "queued" event and its prerequisites in
// a transaction, and reads it back.
func (s *Store) enqueueTx(ctx context.Context, op string, p queue.JobEnqueueParams, runAfter, retryOf any) (*queue.Job, error) {
	var id int64
	err := s.inTx(ctx, op, func(tx *sql.Tx) error {
		// Prerequisites are locked before the job exists: a completion that ends one
		// meanwhile either commits first (and Link sees its end) or waits for this
		// transaction (and settles the new job).
		ps, err := deps.LockPrerequisites(ctx, tx, p.After)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, insertJobSQL,
			string(p.Kind), p.Report, p.Definition, p.DefinitionSHA256, string(p.Params), p.Source, p.RouteJSON(),
			p.ScopesJSON(), -p.Priority, p.MaxAttempts, runAfter, nullString(p.DedupeKey), nullString(p.OnceKey),
			nullString(p.SubmitToken), retryOf, p.SubmittedBy, p.Origin, p.Timeout.Milliseconds())
		if err != nil {
			return err
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		if err := ensureSlots(ctx, tx, p.Scopes); err != nil {
			return err
		}
		if err := insertEventBy(ctx, tx, id, queue.EventQueued, "", "", p.SubmittedBy); err != nil {
			return err
		}
		_, err = deps.Link(ctx, tx, id, ps, queue.NotDue)
		return err
	})
	if err != nil {
		return nil, err
	}
	j, err := getJob(ctx, s.db, id)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	return j, nil
}

// enqueueOne inserts a job that waits for no other job and needs no slot rows, with its
// "queued" event, commits and reads the job back, in one call on the multi pool (the
// session variable holding the new id is set by every call before it is read).
func (s *Store) enqueueOne(ctx context.Context, op string, p queue.JobEnqueueParams, runAfter, retryOf any) (*queue.Job, error) {
	var j *queue.Job
	err := s.inMultiTx(ctx, op, func(c *sql.Conn) error {
		j = nil
		var st stmts
		st.add("START TRANSACTION")
		st.add(insertJobSQL, string(p.Kind), p.Report, p.Definition, p.DefinitionSHA256, string(p.Params), p.Source, p.RouteJSON(),
			p.ScopesJSON(), -p.Priority, p.MaxAttempts, runAfter, nullString(p.DedupeKey), nullString(p.OnceKey),
			nullString(p.SubmitToken), retryOf, p.SubmittedBy, p.Origin, p.Timeout.Milliseconds())
		// The event's own insert changes LAST_INSERT_ID(): the job's id is kept first.
		st.add("SET @rpt_enqueued = LAST_INSERT_ID()")
		st.add("INSERT INTO rpt_job_events (job_id, report, event, status, attempt, agent, `rows`, error, at, actor) "+
			"SELECT id, report, ?, status, attempt, COALESCE(lease_owner, ''), `rows`, NULL, UTC_TIMESTAMP(6), NULLIF(?, '') "+
			"FROM rpt_jobs WHERE id = @rpt_enqueued", queue.EventQueued, p.SubmittedBy)
		st.add("COMMIT")
		st.add("SELECT " + jobColumns + " FROM rpt_jobs WHERE id = @rpt_enqueued")
		return st.query(ctx, c, func(rows *sql.Rows) error {
			if !rows.Next() {
				if err := rows.Err(); err != nil {
					return err
				}
				return errors.New("the inserted job is not there")
			}
			var err error
			j, err = scanJob(rows)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return j, nil
}

// limitedScopes reports whether any scope has a limit (and so slot rows to create).
func limitedScopes(scopes []queue.Scope) bool {
	for _, sc := range scopes {
		if sc.Limit > 0 {
			return true
		}
	}
	return false
}

// insertJobSQL inserts one queued job.
const insertJobSQL = "INSERT INTO rpt_jobs (kind, report, definition, definition_sha256, params, " +
	"source, route, scopes, neg_priority, status, max_attempts, run_after, dedupe_key, once_key, submit_token, " +
	"retry_of, submitted_by, origin, timeout_ms, created_at) " +
	"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, COALESCE(?, UTC_TIMESTAMP(6)), ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))"

// findExisting returns the job a submit token, once key or active dedupe key names, or nil.
func (s *Store) findExisting(ctx context.Context, p queue.JobEnqueueParams) (*queue.Job, error) {
	for _, k := range p.ExistingKeys() {
		j, err := jobBy(ctx, s.db, k.Column, k.Value)
		if err != nil || j != nil {
			return j, err
		}
	}
	return nil, nil
}

// ensureSlots creates the slot rows 1..limit of each scope that are missing: raising a
// limit adds rows, lowering it leaves rows the claim ignores (n > limit). It reads first,
// without locking, so the common case (all rows there) never touches the hot rows.
func ensureSlots(ctx context.Context, tx *sql.Tx, scopes []queue.Scope) error {
	for _, sc := range scopes {
		if sc.Limit <= 0 {
			continue
		}
		var have int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM rpt_slots WHERE scope = ? AND n <= ?", sc.Name, sc.Limit).Scan(&have); err != nil {
			return fmt.Errorf("slots of %s: %w", sc.Name, err)
		}
		if have >= sc.Limit {
			continue
		}
		var b strings.Builder
		args := make([]any, 0, 2*sc.Limit)
		b.WriteString("INSERT IGNORE INTO rpt_slots (scope, n) VALUES ")
		for n := 1; n <= sc.Limit; n++ {
			if n > 1 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?)")
			args = append(args, sc.Name, n)
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("slots of %s: %w", sc.Name, err)
		}
	}
	return nil
}

// claimShape is what varies in the claim query text: how many sources the agent has
// (0: any) and how many reports and sources are paused, and whether the batch continues
// behind the previous one.
type claimShape struct {
	sources, pausedReports, pausedSources int
	after                                 bool
}

// claimQuery selects a batch of claim candidates in claim order (priority desc as
// neg_priority asc, run_after, id), locking them and skipping rows other claimers hold,
// with the server's clock and every column of the job (the claim returns the jobs as
// they are once claimed without reading them again). The ORDER BY is the claim index
// (status, neg_priority, run_after, id) under status = 'queued', so the scan stops after
// LIMIT matching rows and never sorts; rows the other conditions reject are not kept
// locked (READ COMMITTED). The EXPLAIN test checks every shape. Paused names are bound
// as lists rather than a subquery on rpt_pauses, which FOR UPDATE SKIP LOCKED would
// lock too (MariaDB has no FOR UPDATE OF).
func claimQuery(sh claimShape) string {
	var b strings.Builder
	b.WriteString("SELECT UTC_TIMESTAMP(6), " + jobColumns + " FROM rpt_jobs FORCE INDEX (rpt_jobs_claim) " +
		"WHERE status = 'queued' AND run_after <= UTC_TIMESTAMP(6)")
	list := func(col, op string, n int) {
		if n > 0 {
			b.WriteString(" AND " + col + " " + op + " (?" + strings.Repeat(", ?", n-1) + ")")
		}
	}
	list("source", "IN", sh.sources)
	list("report", "NOT IN", sh.pausedReports)
	list("source", "NOT IN", sh.pausedSources)
	if sh.after {
		b.WriteString(" AND (neg_priority > ? OR (neg_priority = ? AND (run_after > ? OR (run_after = ? AND id > ?))))")
	}
	b.WriteString(" ORDER BY status, neg_priority, run_after, id LIMIT ? FOR UPDATE SKIP LOCKED")
	return b.String()
}

// claimArgs are claimQuery's arguments.
func claimArgs(sources, pausedReports, pausedSources []string, last *claimCandidate, limit int) []any {
	args := make([]any, 0, len(sources)+len(pausedReports)+len(pausedSources)+6)
	for _, list := range [][]string{sources, pausedReports, pausedSources} {
		for _, v := range list {
			args = append(args, v)
		}
	}
	if last != nil {
		neg := -last.job.Priority
		args = append(args, neg, neg, last.job.RunAfter, last.job.RunAfter, last.job.ID)
	}
	return append(args, limit)
}

// slotQuery locks up to LIMIT free slots of a scope numbered in (after, limit],
// skipping slots other transactions hold.
const slotQuery = "SELECT n FROM rpt_slots WHERE scope = ? AND n > ? AND n <= ? AND job_id IS NULL " +
	"ORDER BY n LIMIT ? FOR UPDATE SKIP LOCKED"

// Claim batches: the first locks as many candidates as the claim wants (in the common
// case, no routes and no full scopes, it is the whole claim); each one after it up to
// claimBatchFactor x limit (at least claimBatchMin); a claim reads at most
// claimMaxBatches, so jobs behind saturated scopes or foreign routes still get their
// turn without one claim locking the whole queue.
const (
	claimBatchFactor = 4
	claimBatchMin    = 16
	claimMaxBatches  = 16
)

type claimCandidate struct {
	now time.Time // the server's clock when the candidate was read
	job *queue.Job
}

// JobClaim claims up to p.Limit runnable jobs this agent can run, taking a slot of
// every scope of each, in one READ COMMITTED transaction; jobs of saturated scopes are
// skipped, not waited for. Two round trips when no scope or route is in the way
// (multi.go).
func (s *Store) JobClaim(ctx context.Context, p queue.JobClaimParams) ([]*queue.Job, error) {
	if p.Limit <= 0 {
		return nil, nil
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	var jobs []*queue.Job
	err := s.inMultiTx(ctx, "claim jobs", func(c *sql.Conn) error {
		var err error
		_, jobs, err = completeAndClaim(ctx, c, nil, &p)
		return err
	})
	if err != nil {
		return nil, err
	}
	return jobs, nil
}

// completeAndClaim is a batch completion (items; may be none), a claim (p; may be
// nil) or both, in one transaction on c that it begins and commits. The first call
// begins, locks the items' rows, reads the pauses and the first batch of candidates;
// the last writes the completions, the claim and the events, and commits. A claim that
// needs slots, or more candidates, makes calls in between.
func completeAndClaim(ctx context.Context, c *sql.Conn, items []queue.CompleteItem, p *queue.JobClaimParams) ([]error, []*queue.Job, error) {
	claiming := p != nil && p.Limit > 0
	if len(items) == 0 && !claiming {
		return nil, nil, nil
	}
	var first stmts
	first.add("START TRANSACTION")
	var ids []int64
	if len(items) > 0 {
		ids = make([]int64, len(items))
		for i, it := range items {
			ids[i] = it.Lease.JobID
		}
		in, args := queue.InList(ids)
		first.add("SELECT id, lease_token, attempt FROM rpt_jobs WHERE id IN "+in+
			" AND status = 'running' ORDER BY id FOR UPDATE", args...)
		// Which of them have queued dependents to settle, read after the lock: a new
		// dependent locks its prerequisites first (deps.LockPrerequisites), so one not
		// seen here is linked after this commit and sees its prerequisite succeeded.
		first.add("SELECT DISTINCT a.after_id FROM rpt_job_after a JOIN rpt_jobs d ON d.id = a.job_id "+
			"WHERE a.after_id IN "+in+" AND d.status = 'queued'", args...)
	}
	if claiming {
		// The pauses are not known yet: the first batch is filtered by them here.
		first.add("SELECT kind, name FROM rpt_pauses")
		first.add(claimQuery(claimShape{sources: len(p.Sources)}), claimArgs(p.Sources, nil, nil, nil, p.Limit)...)
	}
	var (
		errs    []error
		ok      []int
		waiting map[int64]bool // completed jobs with queued dependents
		paused  pauseSet
		cands   []claimCandidate
	)
	err := first.query(ctx, c, func(rows *sql.Rows) error {
		if len(items) > 0 {
			live, err := scanLeases(rows)
			if err != nil {
				return err
			}
			errs = make([]error, len(items))
			ok = heldLeases(items, errs, live)
			if err := nextSet(rows, "dependents"); err != nil {
				return err
			}
			if waiting, err = scanIDSet(rows); err != nil {
				return err
			}
			if !claiming {
				return nil
			}
			if err := nextSet(rows, "pauses"); err != nil {
				return err
			}
		}
		var err error
		if paused, err = scanPauses(rows); err != nil {
			return err
		}
		if err := nextSet(rows, "claim candidates"); err != nil {
			return err
		}
		cands, err = scanCandidates(rows)
		return err
	})
	if err != nil {
		return nil, nil, err
	}

	var writes stmts
	if len(ok) > 0 {
		completeLocked(&writes, items, ok)
		var settle []int64
		for _, i := range ok {
			if id := items[i].Lease.JobID; waiting[id] {
				settle = append(settle, id)
			}
		}
		if len(settle) > 0 {
			if err := writes.exec(ctx, c); err != nil { // settling reads the jobs succeeded
				return nil, nil, err
			}
			if err := deps.SettleDependents(ctx, c, settle...); err != nil {
				return nil, nil, err
			}
		}
	}
	var cl *claim
	if claiming {
		cl = &claim{c: c, writes: &writes, p: *p, limit: p.Limit, saturated: map[string]int{}, pools: map[string]*slotPool{}}
		if err := cl.run(ctx, cands, paused); err != nil {
			return nil, nil, err
		}
		cl.apply()
	}
	writes.add("COMMIT")
	if err := writes.exec(ctx, c); err != nil {
		return nil, nil, err
	}
	if cl == nil {
		return errs, nil, nil
	}
	return errs, cl.claimed(), nil
}

// scanIDSet reads a result of one id column.
func scanIDSet(rows *sql.Rows) (map[int64]bool, error) {
	set := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		set[id] = true
	}
	return set, rows.Err()
}

// pauseSet is the paused report and source names.
type pauseSet struct{ reports, sources []string }

func (ps pauseSet) holds(j *queue.Job) bool {
	return slices.Contains(ps.reports, j.Report) || slices.Contains(ps.sources, j.Source)
}

// scanPauses reads the result of SELECT kind, name FROM rpt_pauses (a plain read: no lock).
func scanPauses(rows *sql.Rows) (pauseSet, error) {
	var ps pauseSet
	for rows.Next() {
		var kind, name string
		if err := rows.Scan(&kind, &name); err != nil {
			return ps, fmt.Errorf("read pauses: %w", err)
		}
		switch kind {
		case queue.PauseReport:
			ps.reports = append(ps.reports, name)
		case queue.PauseSource:
			ps.sources = append(ps.sources, name)
		}
	}
	return ps, rows.Err()
}

// prefixScanner scans the columns before a job's.
type prefixScanner struct {
	rows *sql.Rows
	pre  []any
}

func (p prefixScanner) Scan(dest ...any) error { return p.rows.Scan(append(p.pre, dest...)...) }

// scanCandidates reads a result of claimQuery.
func scanCandidates(rows *sql.Rows) ([]claimCandidate, error) {
	var out []claimCandidate
	for rows.Next() {
		var c claimCandidate
		j, err := scanJob(prefixScanner{rows, []any{&c.now}})
		if err != nil {
			return nil, fmt.Errorf("select candidates: %w", err)
		}
		c.job = j
		c.now = c.now.UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// claim is one claim transaction's plan: the jobs it takes, the slots it takes for
// them, and what it learnt about scopes on the way. The writes go into writes, sent
// with the commit: a few statements for the whole batch rather than a few per job.
type claim struct {
	c      *sql.Conn
	writes *stmts // not sent yet: the batch's completions, then the claim's writes
	p      queue.JobClaimParams
	limit  int
	jobs   []claimedJob
	now    time.Time // the server's clock at the first candidate
	// saturated[scope] is the largest limit at which the scope had no free slot: a
	// job with that limit or less cannot run now either.
	saturated map[string]int
	pools     map[string]*slotPool
}

type claimedJob struct {
	job   *queue.Job
	token string
	slots []slotRef
}

type slotRef struct {
	scope string
	n     int
}

// slotPool is the free slots of one scope this transaction has locked and not yet
// given to a job, and how far (slot number) it has looked.
type slotPool struct {
	upTo int
	free []int // ascending
}

// run plans the claim from the first batch of candidates (read before the pauses were
// known), reading more batches while the claim is short and the queue has more.
func (cl *claim) run(ctx context.Context, cands []claimCandidate, paused pauseSet) error {
	p := cl.p
	batch := p.Limit
	for b := 0; ; b++ {
		for i := range cands {
			if len(cl.jobs) == p.Limit {
				break
			}
			if paused.holds(cands[i].job) || !queue.RouteSatisfied(cands[i].job.Route, p.Labels) {
				continue
			}
			if err := cl.consider(ctx, cands[i:]); err != nil {
				return err
			}
		}
		if len(cl.jobs) == p.Limit || len(cands) < batch || b+1 == claimMaxBatches {
			return nil
		}
		last := &cands[len(cands)-1]
		batch = max(claimBatchFactor*p.Limit, claimBatchMin)
		sh := claimShape{sources: len(p.Sources), pausedReports: len(paused.reports), pausedSources: len(paused.sources), after: true}
		rows, err := cl.c.QueryContext(ctx, claimQuery(sh), claimArgs(p.Sources, paused.reports, paused.sources, last, batch)...)
		if err != nil {
			return fmt.Errorf("select candidates: %w", err)
		}
		cands, err = scanCandidates(rows)
		rows.Close()
		if err != nil {
			return err
		}
	}
}

// consider claims cands[0] when every scope of it has a free slot. The rest of cands is
// the batch behind it, used to size how many slots of a scope to lock at once.
func (cl *claim) consider(ctx context.Context, cands []claimCandidate) error {
	c := &cands[0]
	scopes := queue.ClaimScopes(c.job.Scopes)
	for _, sc := range scopes {
		if lim, ok := cl.saturated[sc.Name]; ok && sc.Limit <= lim {
			return nil
		}
	}
	taken := make([]slotRef, 0, len(scopes))
	for _, sc := range scopes {
		n, ok, err := cl.takeSlot(ctx, sc, cands)
		if err != nil {
			return err
		}
		if !ok {
			cl.saturated[sc.Name] = max(cl.saturated[sc.Name], sc.Limit)
			for _, t := range taken { // give back: the job stays queued
				pool := cl.pools[t.scope]
				pool.free = append(pool.free, t.n)
				sort.Ints(pool.free)
			}
			return nil
		}
		taken = append(taken, slotRef{sc.Name, n})
	}
	if cl.now.IsZero() {
		cl.now = c.now
	}
	cl.jobs = append(cl.jobs, claimedJob{job: c.job, token: cl.p.Token(len(cl.jobs)), slots: taken})
	return nil
}

// takeSlot gives a free slot numbered <= sc.Limit, locking more from rpt_slots when the
// pool has none: as many as the rest of the batch could use, so a claim of many jobs of
// one scope locks its slots in one statement without holding slots it will not use.
func (cl *claim) takeSlot(ctx context.Context, sc queue.Scope, cands []claimCandidate) (int, bool, error) {
	pool := cl.pools[sc.Name]
	if pool == nil {
		pool = &slotPool{}
		cl.pools[sc.Name] = pool
	}
	for {
		if len(pool.free) > 0 && pool.free[0] <= sc.Limit {
			n := pool.free[0]
			pool.free = pool.free[1:]
			return n, true, nil
		}
		if pool.upTo >= sc.Limit {
			return 0, false, nil
		}
		want := 0
		for i := range cands {
			if slices.ContainsFunc(cands[i].job.Scopes, func(o queue.Scope) bool { return o.Name == sc.Name }) {
				want++
			}
		}
		want = max(1, min(want, cl.limit-len(cl.jobs)))
		// The slots the transaction's completions free must be free when it looks.
		if err := cl.writes.exec(ctx, cl.c); err != nil {
			return 0, false, err
		}
		rows, err := cl.c.QueryContext(ctx, slotQuery, sc.Name, pool.upTo, sc.Limit, want)
		if err != nil {
			return 0, false, fmt.Errorf("slots of %s: %w", sc.Name, err)
		}
		got := 0
		for rows.Next() {
			var n int
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return 0, false, err
			}
			pool.free = append(pool.free, n)
			pool.upTo = n
			got++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, false, err
		}
		if got < want {
			pool.upTo = sc.Limit // looked at every slot up to the limit
		}
		sort.Ints(pool.free)
	}
}

// leaseExpires is when a lease taken at now ends, as the database stores it (microseconds).
func leaseExpires(now time.Time, lease time.Duration) time.Time {
	return now.Add(time.Duration(micros(lease)) * time.Microsecond).Truncate(time.Microsecond)
}

// apply adds the plan's writes: slots taken, jobs running under their new lease tokens
// from the server's clock at the first candidate, one "running" event each.
func (cl *claim) apply() {
	if len(cl.jobs) == 0 {
		return
	}
	var slotRows []string
	var slotArgs []any
	var tokenCase strings.Builder
	var tokenArgs, idArgs []any
	for _, j := range cl.jobs {
		for _, sl := range j.slots {
			slotRows = append(slotRows, "(?, ?, ?, ?)")
			slotArgs = append(slotArgs, sl.scope, sl.n, j.job.ID, j.token)
		}
		tokenCase.WriteString(" WHEN ? THEN ?")
		tokenArgs = append(tokenArgs, j.job.ID, j.token)
		idArgs = append(idArgs, j.job.ID)
	}
	in := "(?" + strings.Repeat(", ?", len(idArgs)-1) + ")"
	if len(slotRows) > 0 {
		// The slot rows exist and this transaction holds their locks: the upsert is an
		// update of all of them in one statement.
		cl.writes.add("INSERT INTO rpt_slots (scope, n, job_id, lease_token) VALUES "+
			strings.Join(slotRows, ", ")+" ON DUPLICATE KEY UPDATE job_id = VALUES(job_id), lease_token = VALUES(lease_token)",
			slotArgs...)
	}
	now := cl.now.Truncate(time.Microsecond)
	args := append(tokenArgs, cl.p.Agent, leaseExpires(now, cl.p.LeaseDuration), now)
	args = append(args, idArgs...)
	cl.writes.add("UPDATE rpt_jobs SET status = 'running', attempt = attempt + 1, "+
		"lease_token = CASE id"+tokenCase.String()+" END, lease_owner = ?, "+
		"lease_expires = ?, started_at = ?, finished_at = NULL "+
		"WHERE id IN "+in, args...)
	cl.writes.add("INSERT INTO rpt_job_events (job_id, report, event, status, attempt, agent, `rows`, error, at) "+
		"SELECT id, report, ?, status, attempt, COALESCE(lease_owner, ''), `rows`, NULL, UTC_TIMESTAMP(6) "+
		"FROM rpt_jobs WHERE id IN "+in+" ORDER BY id", append([]any{queue.EventRunning}, idArgs...)...)
}

// claimed is the claimed jobs as apply's writes left them, once committed.
func (cl *claim) claimed() []*queue.Job {
	if len(cl.jobs) == 0 {
		return nil
	}
	now := cl.now.Truncate(time.Microsecond)
	exp := leaseExpires(now, cl.p.LeaseDuration)
	out := make([]*queue.Job, len(cl.jobs))
	for i, cj := range cl.jobs {
		j := cj.job
		j.Status = queue.StatusRunning
		j.Attempt++
		j.LeaseToken = cj.token
		j.LeaseOwner = cl.p.Agent
		started, expires := now, exp
		j.StartedAt, j.LeaseExpires = &started, &expires
		j.FinishedAt = nil
		out[i] = j
	}
	return out
}

// JobHeartbeat renews the lease, records the row count (a progress event when it
// changed) and tells the agent whether cancel was requested. Every running job sends
// one a second, so it takes two round trips (multi.go): one locks the row, one writes
// and commits.
func (s *Store) JobHeartbeat(ctx context.Context, l queue.Lease, rows int64, leaseDuration time.Duration) (queue.Heartbeat, error) {
	op := fmt.Sprintf("heartbeat job %d", l.JobID)
	if leaseDuration <= 0 {
		return queue.Heartbeat{}, fmt.Errorf("%s: lease duration: %s is not positive", op, leaseDuration)
	}
	var hb queue.Heartbeat
	err := s.inMultiTx(ctx, op, func(c *sql.Conn) error {
		hb = queue.Heartbeat{}
		var lock stmts
		lock.add("START TRANSACTION")
		lock.add("SELECT `rows`, cancel_requested_at IS NOT NULL FROM rpt_jobs WHERE "+fence+" FOR UPDATE", l.JobID, l.Token)
		var old int64
		found := false
		if err := lock.query(ctx, c, func(r *sql.Rows) error {
			if r.Next() {
				found = true
				return r.Scan(&old, &hb.CancelRequested)
			}
			return nil
		}); err != nil {
			return err
		}
		if !found {
			return queue.ErrLeaseLost // rolled back by inMultiTx
		}
		var w stmts
		w.add("UPDATE rpt_jobs SET lease_expires = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, "+
			"`rows` = ? WHERE "+fence, micros(leaseDuration), rows, l.JobID, l.Token)
		if rows != old {
			w.add("INSERT INTO rpt_job_events (job_id, report, event, status, attempt, agent, `rows`, error, at, actor) "+
				"SELECT id, report, ?, status, attempt, COALESCE(lease_owner, ''), `rows`, NULL, UTC_TIMESTAMP(6), NULL "+
				"FROM rpt_jobs WHERE id = ?", queue.EventProgress, l.JobID)
		}
		w.add("COMMIT")
		return w.exec(ctx, c)
	})
	return hb, err
}

// fencedUpdate runs a fenced UPDATE; no matching row means the lease is lost. (The
// connection reports found rows, not changed rows, so 0 means "no match".)
func fencedUpdate(ctx context.Context, tx *sql.Tx, l queue.Lease, set string, args ...any) error {
	res, err := tx.ExecContext(ctx, "UPDATE rpt_jobs SET "+set+" WHERE "+fence, append(args, l.JobID, l.Token)...)
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

// JobComplete marks the job succeeded; the lease's attempt is the result that counts,
// recorded with where its result lives and how many chunks it has (and chunk 0 itself
// when the completion carries it).
func (s *Store) JobComplete(ctx context.Context, l queue.Lease, c queue.Completion) error {
	return s.inTx(ctx, fmt.Sprintf("complete job %d", l.JobID), func(tx *sql.Tx) error {
		if err := fencedUpdate(ctx, tx, l, "status = 'succeeded', `rows` = ?, result_attempt = attempt, "+
			"result_store = ?, result_chunks = ?, read_source = ?, read_kind = ?, read_at = ?, read_loads = ?, "+
			"error = NULL, lease_expires = NULL, finished_at = UTC_TIMESTAMP(6)",
			append([]any{c.Rows, nullString(c.ResultStore), nullPositive(c.ResultChunks)}, readArgs(c.Read)...)...); err != nil {
			return err
		}
		if c.Chunk != nil {
			if _, err := tx.ExecContext(ctx, "REPLACE INTO rpt_results (job_id, attempt, seq, data) VALUES (?, ?, 0, ?)",
				l.JobID, l.Attempt, c.Chunk); err != nil {
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
	})
}

// JobCompleteBatch completes many leases in one transaction: it locks the rows of the
// items' jobs, keeps the items whose lease still holds (the others get ErrLeaseLost),
// and writes their completions, result chunks, freed slots and events in a few
// statements for the whole batch; then, when claim is given, claims in the same
// transaction. Two round trips when the claim needs no slots (completeAndClaim).
func (s *Store) JobCompleteBatch(ctx context.Context, items []queue.CompleteItem, claim *queue.JobClaimParams) ([]error, []*queue.Job, error) {
	if claim != nil {
		if err := claim.Check(); err != nil {
			return nil, nil, err
		}
	}
	var errs []error
	var claimed []*queue.Job
	err := s.inMultiTx(ctx, fmt.Sprintf("complete %d jobs", len(items)), func(c *sql.Conn) error {
		var err error
		errs, claimed, err = completeAndClaim(ctx, c, items, claim)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if errs == nil {
		errs = make([]error, len(items))
	}
	return errs, claimed, nil
}

// heldLease is a running job's lease as its locked row has it.
type heldLease struct {
	token   string
	attempt int
}

// scanLeases reads the result of the items' lock: SELECT id, lease_token, attempt.
func scanLeases(rows *sql.Rows) (map[int64]heldLease, error) {
	live := map[int64]heldLease{}
	for rows.Next() {
		var id int64
		var token sql.NullString
		var attempt int
		if err := rows.Scan(&id, &token, &attempt); err != nil {
			return nil, err
		}
		live[id] = heldLease{token.String, attempt}
	}
	return live, rows.Err()
}

// heldLeases returns the indexes of the items whose lease holds (live: the locked
// running rows), in id order; errs gets ErrLeaseLost for the others (and for a second
// item naming the same lease).
func heldLeases(items []queue.CompleteItem, errs []error, live map[int64]heldLease) []int {
	var ok []int
	for i, it := range items {
		h, found := live[it.Lease.JobID]
		if !found || h.token != it.Lease.Token || it.Lease.Token == "" {
			errs[i] = fmt.Errorf("complete job %d: %w", it.Lease.JobID, queue.ErrLeaseLost)
			continue
		}
		delete(live, it.Lease.JobID) // a duplicate item finds the lease taken
		items[i].Lease.Attempt = h.attempt
		ok = append(ok, i)
	}
	slices.SortFunc(ok, func(a, b int) int { return cmpInt64(items[a].Lease.JobID, items[b].Lease.JobID) })
	return ok
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// completeLocked adds the writes of the completions of items[ok], whose rows the
// transaction holds.
func completeLocked(w *stmts, items []queue.CompleteItem, ok []int) {
	var rowsCase, storeCase, chunksCase, readCase strings.Builder
	var rowsArgs, storeArgs, chunksArgs, readSrcArgs, readKindArgs, readAtArgs, readLoadsArgs, ids, chunkArgs []any
	var chunkRows []string
	for _, i := range ok {
		it := items[i]
		id := it.Lease.JobID
		rowsCase.WriteString(" WHEN ? THEN ?")
		rowsArgs = append(rowsArgs, id, it.Completion.Rows)
		storeCase.WriteString(" WHEN ? THEN ?")
		storeArgs = append(storeArgs, id, nullString(it.Completion.ResultStore))
		chunksCase.WriteString(" WHEN ? THEN ?")
		chunksArgs = append(chunksArgs, id, nullPositive(it.Completion.ResultChunks))
		readCase.WriteString(" WHEN ? THEN ?")
		ra := readArgs(it.Completion.Read)
		readSrcArgs = append(readSrcArgs, id, ra[0])
		readKindArgs = append(readKindArgs, id, ra[1])
		readAtArgs = append(readAtArgs, id, ra[2])
		readLoadsArgs = append(readLoadsArgs, id, ra[3])
		ids = append(ids, id)
		if it.Completion.Chunk != nil {
			chunkRows = append(chunkRows, "(?, ?, 0, ?)")
			chunkArgs = append(chunkArgs, id, it.Lease.Attempt, it.Completion.Chunk)
		}
	}
	in := "(?" + strings.Repeat(", ?", len(ids)-1) + ")"
	args := append(append(append(rowsArgs, storeArgs...), chunksArgs...), readSrcArgs...)
	args = append(append(append(append(args, readKindArgs...), readAtArgs...), readLoadsArgs...), ids...)
	w.add("UPDATE rpt_jobs SET status = 'succeeded', `rows` = CASE id"+rowsCase.String()+" END, "+
		"result_attempt = attempt, result_store = CASE id"+storeCase.String()+" END, result_chunks = CASE id"+chunksCase.String()+" END, "+
		"read_source = CASE id"+readCase.String()+" END, read_kind = CASE id"+readCase.String()+" END, "+
		"read_at = CASE id"+readCase.String()+" END, read_loads = CASE id"+readCase.String()+" END, "+
		"error = NULL, lease_expires = NULL, finished_at = UTC_TIMESTAMP(6) WHERE id IN "+in, args...)
	if len(chunkRows) > 0 {
		w.add("REPLACE INTO rpt_results (job_id, attempt, seq, data) VALUES "+strings.Join(chunkRows, ", "), chunkArgs...)
	}
	w.add("UPDATE rpt_slots SET job_id = NULL, lease_token = NULL WHERE job_id IN "+in, ids...)
	w.add("INSERT INTO rpt_job_events (job_id, report, event, status, attempt, agent, `rows`, error, at) "+
		"SELECT id, report, ?, status, attempt, COALESCE(lease_owner, ''), `rows`, NULL, UTC_TIMESTAMP(6) "+
		"FROM rpt_jobs WHERE id IN "+in+" ORDER BY id", append([]any{queue.EventSucceeded}, ids...)...)
}

// JobFail records an attempt's error. A retryable error below max_attempts queues the
// job again after backoff; a job whose cancel was requested ends cancelled (its error is
// most likely the cancel itself); anything else ends failed.
func (s *Store) JobFail(ctx context.Context, l queue.Lease, p queue.JobFailParams) (queue.Status, error) {
	var status queue.Status
	err := s.inTx(ctx, fmt.Sprintf("fail job %d", l.JobID), func(tx *sql.Tx) error {
		status = ""
		var j queue.LeasedJob
		err := tx.QueryRowContext(ctx, "SELECT id, failures, max_attempts, cancel_requested_at IS NOT NULL, "+
			"COALESCE(lease_owner, '') FROM rpt_jobs WHERE "+fence+" FOR UPDATE", l.JobID, l.Token).
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

// endAttempt counts a failure of a running job (whose row the transaction has locked)
// and queues it again after backoff, fails it or cancels it; it frees its slots and
// records the event.
func (s *Store) endAttempt(ctx context.Context, tx *sql.Tx, j queue.LeasedJob, errText string, retryable, backoff bool) (queue.Status, error) {
	end := queue.EndAttempt(j, retryable, func(failures int) time.Duration { return s.retryDelay(failures, backoff) })
	var set string
	var args []any
	switch end.Status {
	case queue.StatusCancelled:
		set = "status = 'cancelled', lease_token = NULL, lease_expires = NULL, finished_at = UTC_TIMESTAMP(6)"
	case queue.StatusQueued:
		set = "status = 'queued', failures = ?, lease_token = NULL, lease_owner = NULL, lease_expires = NULL, " +
			"run_after = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND"
		args = []any{end.Failures, micros(end.RetryIn)}
	default:
		set = "status = 'failed', failures = ?, lease_token = NULL, lease_expires = NULL, finished_at = UTC_TIMESTAMP(6)"
		args = []any{end.Failures}
	}
	args = append(args, nullString(errText), j.ID)
	if _, err := tx.ExecContext(ctx, "UPDATE rpt_jobs SET "+set+", error = ? WHERE id = ?", args...); err != nil {
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
	return s.inTx(ctx, fmt.Sprintf("cancel job %d", l.JobID), func(tx *sql.Tx) error {
		if err := fencedUpdate(ctx, tx, l, "status = 'cancelled', lease_token = NULL, lease_expires = NULL, "+
			"cancel_requested_at = COALESCE(cancel_requested_at, UTC_TIMESTAMP(6)), finished_at = UTC_TIMESTAMP(6)"); err != nil {
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

// JobRelease queues a running job again without counting a failure (drain,
// self-fence), keeping its place in the claim order. A job whose cancel was requested
// ends cancelled instead.
func (s *Store) JobRelease(ctx context.Context, l queue.Lease) error {
	return s.inTx(ctx, fmt.Sprintf("release job %d", l.JobID), func(tx *sql.Tx) error {
		var cancelRequested bool
		var owner string
		err := tx.QueryRowContext(ctx, "SELECT cancel_requested_at IS NOT NULL, COALESCE(lease_owner, '') FROM rpt_jobs WHERE "+
			fence+" FOR UPDATE", l.JobID, l.Token).Scan(&cancelRequested, &owner)
		if errors.Is(err, sql.ErrNoRows) {
			return queue.ErrLeaseLost
		}
		if err != nil {
			return err
		}
		return release(ctx, tx, l.JobID, cancelRequested, owner)
	})
}

// JobWait queues a running job again no sooner than after, with no failure counted and
// reason as its error and its waiting event's (queue.Waiter).
func (s *Store) JobWait(ctx context.Context, l queue.Lease, after time.Duration, reason string) error {
	return s.inTx(ctx, fmt.Sprintf("put job %d to wait", l.JobID), func(tx *sql.Tx) error {
		var cancelRequested bool
		var owner string
		err := tx.QueryRowContext(ctx, "SELECT cancel_requested_at IS NOT NULL, COALESCE(lease_owner, '') FROM rpt_jobs WHERE "+
			fence+" FOR UPDATE", l.JobID, l.Token).Scan(&cancelRequested, &owner)
		if errors.Is(err, sql.ErrNoRows) {
			return queue.ErrLeaseLost
		}
		if err != nil {
			return err
		}
		if cancelRequested {
			return release(ctx, tx, l.JobID, true, owner)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE rpt_jobs SET status = 'queued', lease_token = NULL, lease_owner = NULL, lease_expires = NULL, "+
			"run_after = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, error = ? WHERE id = ?", micros(after), nullString(reason), l.JobID); err != nil {
			return err
		}
		if err := freeSlots(ctx, tx, l.JobID); err != nil {
			return err
		}
		return insertEvent(ctx, tx, l.JobID, queue.EventWaiting, owner, reason)
	})
}

// release queues a running job again (released) or, when its cancel was requested,
// ends it cancelled; the row is locked by the caller.
func release(ctx context.Context, tx *sql.Tx, id int64, cancelRequested bool, owner string) error {
	status, event := queue.Release(cancelRequested)
	set := "status = 'queued', lease_token = NULL, lease_owner = NULL, lease_expires = NULL"
	if status == queue.StatusCancelled {
		set = "status = 'cancelled', lease_token = NULL, lease_expires = NULL, finished_at = UTC_TIMESTAMP(6)"
	}
	if _, err := tx.ExecContext(ctx, "UPDATE rpt_jobs SET "+set+" WHERE id = ?", id); err != nil {
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
// was lost). Running jobs are few, so the status index finds them without one on tokens.
func (s *Store) JobReleaseTokens(ctx context.Context, tokens []string) (int, error) {
	if len(tokens) == 0 {
		return 0, nil
	}
	n := 0
	err := s.inTx(ctx, "release claimed jobs", func(tx *sql.Tx) error {
		n = 0
		in, args := queue.InList(tokens)
		rows, err := tx.QueryContext(ctx, "SELECT id, cancel_requested_at IS NOT NULL, COALESCE(lease_owner, '') FROM rpt_jobs "+
			"WHERE status = 'running' AND lease_token IN "+in+" ORDER BY id FOR UPDATE", args...)
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
	err := s.inTx(ctx, fmt.Sprintf("cancel job %d", id), func(tx *sql.Tx) error {
		job = nil
		var status string
		var cancelRequested bool
		err := tx.QueryRowContext(ctx, "SELECT status, cancel_requested_at IS NOT NULL FROM rpt_jobs WHERE id = ? FOR UPDATE", id).
			Scan(&status, &cancelRequested)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("job %d: %w", id, queue.ErrNotFound)
		}
		if err != nil {
			return err
		}
		switch {
		case queue.Status(status) == queue.StatusQueued:
			if _, err := tx.ExecContext(ctx, "UPDATE rpt_jobs SET status = 'cancelled', cancel_requested_at = UTC_TIMESTAMP(6), "+
				"finished_at = UTC_TIMESTAMP(6) WHERE id = ?", id); err != nil {
				return err
			}
			if err := insertEventBy(ctx, tx, id, queue.EventCancelled, "", "", by); err != nil {
				return err
			}
			if err := settle(ctx, tx, id); err != nil {
				return err
			}
		case queue.Status(status) == queue.StatusRunning && !cancelRequested:
			if _, err := tx.ExecContext(ctx, "UPDATE rpt_jobs SET cancel_requested_at = UTC_TIMESTAMP(6) WHERE id = ?", id); err != nil {
				return err
			}
			if err := insertEventBy(ctx, tx, id, queue.EventCancelRequested, "", "", by); err != nil {
				return err
			}
		}
		job, err = getJob(ctx, tx, id)
		return err
	})
	return job, err
}

// rescueBatch bounds how many expired leases one transaction ends.
const rescueBatch = 100

// JobRescue ends the attempts whose lease expired (by the database clock): each counts
// as a failure (queued again after backoff, or failed at max_attempts), or ends
// cancelled when cancel was requested. Expired rows another rescuer holds are skipped.
func (s *Store) JobRescue(ctx context.Context) (int, error) {
	total := 0
	for {
		n := 0
		err := s.inTx(ctx, "rescue jobs", func(tx *sql.Tx) error {
			n = 0
			rows, err := tx.QueryContext(ctx, "SELECT id, cancel_requested_at IS NOT NULL, COALESCE(lease_owner, ''), "+
				"failures, max_attempts FROM rpt_jobs WHERE status = 'running' AND lease_expires < UTC_TIMESTAMP(6) "+
				"ORDER BY status, lease_expires LIMIT ? FOR UPDATE SKIP LOCKED", rescueBatch)
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
		total += n
		if err != nil {
			return total, err
		}
		if n < rescueBatch {
			return total, nil
		}
	}
}

// listPage is how many rows JobList reads at a time when it filters params in Go
// (queue.ParamsMatch, so both stores match params the same way).
const listPage = 500

// JobList lists jobs newest first, filtered by status, report and params values;
// Limit <= 0 means all.
func (s *Store) JobList(ctx context.Context, p queue.JobListParams) ([]*queue.Job, error) {
	var out []*queue.Job
	before := p.Before
	for {
		q := "SELECT " + jobColumns + " FROM rpt_jobs WHERE 1 = 1"
		var args []any
		if p.Status != "" {
			q += " AND status = ?"
			args = append(args, string(p.Status))
		}
		if p.Report != "" {
			q += " AND report = ?"
			args = append(args, p.Report)
		}
		if before > 0 {
			q += " AND id < ?"
			args = append(args, before)
		}
		q += " ORDER BY id DESC"
		page := 0
		switch {
		case len(p.Params) > 0:
			page = listPage
		case p.Limit > 0:
			page = p.Limit
		}
		if page > 0 {
			q += " LIMIT ?"
			args = append(args, page)
		}
		rows, err := s.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, s.wrap("list jobs", err)
		}
		n := 0
		for rows.Next() {
			j, err := scanJob(rows)
			if err != nil {
				rows.Close()
				return nil, s.wrap("list jobs", err)
			}
			n++
			before = j.ID
			if (p.Limit <= 0 || len(out) < p.Limit) && queue.ParamsMatch(j.Params, p.Params) {
				out = append(out, j)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, s.wrap("list jobs", err)
		}
		if page == 0 || n < page || (p.Limit > 0 && len(out) >= p.Limit) || len(p.Params) == 0 {
			return out, nil
		}
	}
}

// EventList returns events after afterSeq in seq order, of one job when jobID != 0;
// limit <= 0 means all.
func (s *Store) EventList(ctx context.Context, jobID int64, afterSeq int64, limit int) ([]queue.Event, error) {
	q := "SELECT seq, job_id, report, event, status, attempt, agent, `rows`, error, at, COALESCE(actor, '') FROM rpt_job_events WHERE seq > ?"
	args := []any{afterSeq}
	if jobID != 0 {
		q += " AND job_id = ?"
		args = append(args, jobID)
	}
	q += " ORDER BY seq"
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap("list events", err)
	}
	defer rows.Close()
	var out []queue.Event
	for rows.Next() {
		var e queue.Event
		var status string
		var errText sql.NullString
		if err := rows.Scan(&e.Seq, &e.JobID, &e.Report, &e.Event, &status, &e.Attempt, &e.Agent, &e.Rows, &errText, &e.At, &e.By); err != nil {
			return nil, s.wrap("list events", err)
		}
		e.Status = queue.Status(status)
		e.Error = errText.String
		e.At = e.At.UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("list events", err)
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
