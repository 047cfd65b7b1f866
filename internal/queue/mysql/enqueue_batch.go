package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"rpt/internal/queue"
)

// insertBatchBytes bounds the data of one multi-row INSERT (well under the server's
// max_allowed_packet, 16 MiB by default); insertBatchRows its rows.
const (
	insertBatchBytes = 1 << 20
	insertBatchRows  = 1000
)

// JobEnqueueBatch enqueues the jobs in one transaction: the database's clock read
// once, the keys the jobs name looked up with one query per kind of key, the new jobs
// inserted with multi-row INSERTs, their events with one INSERT ... SELECT per INSERT;
// the jobs returned are built from what was inserted, without reading them back. A
// duplicate-key error (another submitter took a key meanwhile) runs the transaction
// again, which then finds that job.
func (s *Store) JobEnqueueBatch(ctx context.Context, ps []queue.JobEnqueueParams) ([]queue.JobEnqueueResult, error) {
	const op = "enqueue jobs"
	ps = append([]queue.JobEnqueueParams(nil), ps...)
	for i := range ps {
		if err := ps[i].Normalize(); err != nil {
			return nil, fmt.Errorf("%s: job %d: %w", op, i, err)
		}
		if len(ps[i].After) > 0 {
			return nil, fmt.Errorf("%s: job %d: %w", op, i, queue.ErrAfterInBatch)
		}
	}
	if len(ps) == 0 {
		return nil, nil
	}
	consecutive, err := s.consecutiveIDs(ctx)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	for try := 0; try < 5; try++ {
		var out []queue.JobEnqueueResult
		err := s.inTx(ctx, op, func(tx *sql.Tx) error {
			var err error
			out, err = enqueueBatchIn(ctx, tx, ps, consecutive)
			return err
		})
		if err == nil {
			return out, nil
		}
		if mysqlErrNo(err) != errDupEntry {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%s: duplicate key kept changing; giving up", op)
}

// consecutiveIDs reports whether a multi-row INSERT gets consecutive AUTO_INCREMENT ids
// (innodb_autoinc_lock_mode 0 or 1, MariaDB's default; with 2, "interleaved", ids of
// one statement may interleave with another's, so the batch inserts row by row).
func (s *Store) consecutiveIDs(ctx context.Context) (bool, error) {
	s.autoincMu.Lock()
	defer s.autoincMu.Unlock()
	if s.autoinc == nil {
		var mode int
		if err := s.db.QueryRowContext(ctx, "SELECT @@innodb_autoinc_lock_mode").Scan(&mode); err != nil {
			return false, err
		}
		ok := mode != 2
		s.autoinc = &ok
	}
	return *s.autoinc, nil
}

type batchKey struct{ column, value string }

func enqueueBatchIn(ctx context.Context, tx *sql.Tx, ps []queue.JobEnqueueParams, consecutive bool) ([]queue.JobEnqueueResult, error) {
	var now time.Time
	if err := tx.QueryRowContext(ctx, "SELECT UTC_TIMESTAMP(6)").Scan(&now); err != nil {
		return nil, err
	}
	now = now.UTC()
	// The jobs that already hold a key one of ps names.
	values := map[string][]string{}
	for i := range ps {
		for _, k := range ps[i].ExistingKeys() {
			values[k.Column] = append(values[k.Column], k.Value)
		}
	}
	have := map[batchKey]*queue.Job{}
	for _, col := range []string{"submit_token", "once_key", "dedupe_active"} {
		if len(values[col]) == 0 {
			continue
		}
		in, args := queue.InList(values[col])
		rows, err := tx.QueryContext(ctx, "SELECT "+jobColumns+", "+col+" FROM rpt_jobs WHERE "+col+" IN "+in, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var key sql.NullString
			j, err := scanJob(withExtra{rows, &key})
			if err != nil {
				rows.Close()
				return nil, err
			}
			have[batchKey{col, key.String}] = j
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	// Each job in order: an existing job its keys name (in the database, or inserted
	// earlier in this batch), else a new one.
	out := make([]queue.JobEnqueueResult, len(ps))
	var fresh []int // indexes of the new jobs, in order
	for i := range ps {
		p := &ps[i]
		keys := p.ExistingKeys()
		for _, k := range keys {
			if j := have[batchKey{k.Column, k.Value}]; j != nil {
				out[i] = queue.JobEnqueueResult{Job: j, Existing: true}
				break
			}
		}
		if out[i].Job != nil {
			continue
		}
		j, err := newJob(p, now)
		if err != nil {
			return nil, fmt.Errorf("job %d: %w", i, err)
		}
		out[i] = queue.JobEnqueueResult{Job: j}
		fresh = append(fresh, i)
		for _, k := range keys {
			have[batchKey{k.Column, k.Value}] = j // a later job of the batch finds it
		}
	}
	scopes := map[string]queue.Scope{}
	for start := 0; start < len(fresh); {
		end, size := start, 0
		for end < len(fresh) && end-start < insertBatchRows && (end == start || size < insertBatchBytes) {
			p := &ps[fresh[end]]
			size += len(p.Definition) + len(p.Params) + 256
			end++
		}
		if !consecutive {
			end = start + 1
		}
		if err := insertJobs(ctx, tx, ps, out, fresh[start:end], now); err != nil {
			return nil, err
		}
		start = end
	}
	for _, i := range fresh {
		for _, sc := range ps[i].Scopes {
			if sc.Limit > scopes[sc.Name].Limit {
				scopes[sc.Name] = sc
			}
		}
	}
	if len(scopes) > 0 {
		list := make([]queue.Scope, 0, len(scopes))
		for _, sc := range scopes {
			list = append(list, sc)
		}
		if err := ensureSlots(ctx, tx, list); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// insertJobs inserts the jobs ps[idx] in one statement, sets their ids and records
// their queued events.
func insertJobs(ctx context.Context, tx *sql.Tx, ps []queue.JobEnqueueParams, out []queue.JobEnqueueResult, idx []int, now time.Time) error {
	var b strings.Builder
	b.WriteString("INSERT INTO rpt_jobs (kind, report, definition, definition_sha256, params, source, route, scopes, " +
		"neg_priority, status, max_attempts, run_after, dedupe_key, once_key, submit_token, retry_of, submitted_by, " +
		"origin, timeout_ms, created_at) VALUES ")
	args := make([]any, 0, 19*len(idx))
	for n, i := range idx {
		if n > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		p := &ps[i]
		var retryOf any
		if p.RetryOf != 0 {
			retryOf = p.RetryOf
		}
		j := out[i].Job
		args = append(args, string(p.Kind), p.Report, p.Definition, p.DefinitionSHA256, string(p.Params), p.Source,
			p.RouteJSON(), p.ScopesJSON(), -p.Priority, p.MaxAttempts, j.RunAfter, nullString(p.DedupeKey),
			nullString(p.OnceKey), nullString(p.SubmitToken), retryOf, p.SubmittedBy, p.Origin, p.Timeout.Milliseconds(), now)
	}
	res, err := tx.ExecContext(ctx, b.String(), args...)
	if err != nil {
		return err
	}
	first, err := res.LastInsertId()
	if err != nil {
		return err
	}
	ids := make([]int64, len(idx))
	for n, i := range idx {
		ids[n] = first + int64(n)
		out[i].Job.ID = ids[n]
	}
	in, idArgs := queue.InList(ids)
	ev, err := tx.ExecContext(ctx, "INSERT INTO rpt_job_events (job_id, report, event, status, attempt, agent, `rows`, error, at, actor) "+
		"SELECT id, report, ?, status, attempt, '', `rows`, NULL, ?, NULLIF(submitted_by, '') FROM rpt_jobs WHERE id IN "+in+" ORDER BY id",
		append([]any{queue.EventQueued, now}, idArgs...)...)
	if err != nil {
		return fmt.Errorf("queued events: %w", err)
	}
	// Every id must be one of this statement's rows: a row that is not would leave a
	// job without its event (the ids were not consecutive after all).
	if n, err := ev.RowsAffected(); err != nil || n != int64(len(idx)) {
		return fmt.Errorf("queued events: %d of %d jobs found by id (%v)", n, len(idx), err)
	}
	return nil
}

// newJob is the job a new row of p becomes, as JobGet would read it back: the times are
// the database's (now, or the given run_after at the column's microseconds).
func newJob(p *queue.JobEnqueueParams, now time.Time) (*queue.Job, error) {
	j := &queue.Job{
		Kind: p.Kind, Report: p.Report, Definition: p.Definition, DefinitionSHA256: p.DefinitionSHA256,
		Params: json.RawMessage(string(p.Params)), Source: p.Source, Priority: p.Priority, Status: queue.StatusQueued,
		MaxAttempts: p.MaxAttempts, RunAfter: now, DedupeKey: p.DedupeKey, OnceKey: p.OnceKey, SubmitToken: p.SubmitToken,
		RetryOf: p.RetryOf, SubmittedBy: p.SubmittedBy, Origin: p.Origin,
		Timeout: time.Duration(p.Timeout.Milliseconds()) * time.Millisecond, CreatedAt: now,
	}
	if j.Definition == nil {
		j.Definition = []byte{}
	}
	if p.RunAfter != nil {
		j.RunAfter = p.RunAfter.UTC().Truncate(time.Microsecond)
	}
	if err := json.Unmarshal([]byte(p.RouteJSON()), &j.Route); err != nil {
		return nil, fmt.Errorf("route: %w", err)
	}
	if err := json.Unmarshal([]byte(p.ScopesJSON()), &j.Scopes); err != nil {
		return nil, fmt.Errorf("scopes: %w", err)
	}
	return j, nil
}

// withExtra scans a job row followed by one more column.
type withExtra struct {
	rows  *sql.Rows
	extra any
}

func (w withExtra) Scan(dest ...any) error { return w.rows.Scan(append(dest, w.extra)...) }
