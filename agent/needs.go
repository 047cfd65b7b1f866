package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"rpt/etl"
	"rpt/internal/queue"
	"rpt/internal/source"
	"rpt/reportdefs"
)

// Defaults of the freshness rule (a report's needs:).
const (
	// DefaultNeedsRecheck is how long a report waiting for an ETL stays queued before an
	// agent checks its data again, on a queue that cannot make a job wait for another
	// (queue.DependWaiter); both stores can, and there the report waits for the ETL job
	// itself: it is due in the transaction in which that job succeeds.
	DefaultNeedsRecheck = 30 * time.Second
	// DefaultNeedsGiveUp is how long after its submission a report may keep waiting for
	// its data: past it, a still-stale report fails (not retried), so an ETL that keeps
	// failing does not keep a report queued, and re-queue the ETL, for ever.
	DefaultNeedsGiveUp = 6 * time.Hour
)

// needsStore is what the freshness rule needs of the queue beyond the agent's Store:
// queue an ETL job (or join the one queued or running) and put the report back to wait.
// Both queue stores implement it.
type needsStore interface {
	JobEnqueue(ctx context.Context, p queue.JobEnqueueParams) (queue.JobEnqueueResult, error)
	queue.Waiter
}

// waitError ends a report attempt whose data is stale: finish puts the job back to wait
// for the ETL jobs (queue.DependWaiter: due when they have all succeeded, ended when
// one fails for good or is cancelled, and due at the latest after until, when the
// give-up rule decides), or, on a queue that cannot, for after (queue.Waiter), with
// reason as what `rpt jobs show` says; no failure counts.
type waitError struct {
	jobs   []int64
	until  time.Duration
	after  time.Duration
	reason string
}

func (e *waitError) Error() string { return e.reason }

// checkNeeds applies a report's needs: before it runs. For each needed ETL it reads the
// last successful load from rpt_etl_state in the warehouse the ETLs load (the history
// source); when one is missing or older than max_age it queues that ETL (joining a run
// already queued or running: etl.JobParams' dedupe key) and returns a *waitError.
// Fresh data returns nil and the report runs at once.
func (a *Agent) checkNeeds(ctx context.Context, r *run, def *reportdefs.Definition) error {
	name := a.cfg.HistorySource
	wh, err := a.sources.get(ctx, name)
	if err != nil {
		return fmt.Errorf("needs: open warehouse %q: %w", name, err)
	}
	withDB, ok := wh.(interface{ DB() *sql.DB })
	if !ok || wh.Driver() != source.DialectMySQL {
		return fmt.Errorf("needs: warehouse %q is %s; ETL state lives in a mysql warehouse: %w", name, wh.Driver(), reportdefs.ErrInvalid)
	}
	states, err := etl.States(ctx, withDB.DB())
	if err != nil {
		return fmt.Errorf("needs: %w", err)
	}
	now := time.Now()
	var stale []reportdefs.Need
	var why []string
	for _, n := range def.Needs {
		st, ok := states[n.ETL]
		switch {
		case !ok || st.LastSuccess == nil:
			why = append(why, fmt.Sprintf("waiting for etl %s: never loaded, needs %s", n.ETL, formatDuration(n.MaxAge)))
		case now.Sub(*st.LastSuccess) > n.MaxAge:
			age := now.Sub(*st.LastSuccess).Round(time.Minute)
			why = append(why, fmt.Sprintf("waiting for etl %s: last loaded %s ago, needs %s", n.ETL, formatDuration(age), formatDuration(n.MaxAge)))
		default:
			continue
		}
		stale = append(stale, n)
	}
	if len(stale) == 0 {
		return nil
	}
	reason := why[0]
	for _, w := range why[1:] {
		reason += "; " + w
	}
	if !r.job.CreatedAt.IsZero() && now.Sub(r.job.CreatedAt) > a.cfg.NeedsGiveUp {
		return fmt.Errorf("needs: gave up after %s: %s: %w", formatDuration(a.cfg.NeedsGiveUp), reason, reportdefs.ErrInvalid)
	}
	ns, ok := a.store.(needsStore)
	if !ok {
		return fmt.Errorf("needs: this agent's queue cannot queue ETL jobs (%s): %w", reason, reportdefs.ErrInvalid)
	}
	cat, err := etl.LoadCatalog(a.cfg.ETLDirs...)
	if err != nil {
		return fmt.Errorf("needs: read etl definitions: %w", err)
	}
	var etlJobs []int64
	for i, n := range stale {
		d, err := cat.Get(n.ETL)
		if err != nil {
			return fmt.Errorf("needs[%d].etl: %w: %w", i, err, reportdefs.ErrInvalid)
		}
		p, err := etl.JobParams(d, etl.JobArgs{})
		if err != nil {
			return fmt.Errorf("needs: %w", err)
		}
		p.Origin = queue.OriginNeeds
		p.SubmittedBy = r.job.SubmittedBy
		res, err := ns.JobEnqueue(ctx, p)
		if err != nil {
			if errors.Is(err, queue.ErrInvalid) {
				return fmt.Errorf("needs: queue etl %s: %w: %w", n.ETL, err, reportdefs.ErrInvalid)
			}
			return fmt.Errorf("needs: queue etl %s: %w", n.ETL, err)
		}
		reason += fmt.Sprintf(" (etl job %d)", res.Job.ID)
		etlJobs = append(etlJobs, res.Job.ID)
		r.log.Info("report data stale; waiting for etl", "etl", n.ETL, "etl_job", res.Job.ID, "joined", res.Existing)
	}
	// Due at the latest when the give-up time has passed (a little after, so that the
	// check above decides), should the ETL jobs not have ended by then.
	until := a.cfg.NeedsGiveUp + time.Second
	if !r.job.CreatedAt.IsZero() {
		until -= now.Sub(r.job.CreatedAt)
	}
	return &waitError{jobs: etlJobs, until: max(until, time.Second), after: a.cfg.NeedsRecheck, reason: reason}
}

// copyLoads is how old the warehouse copy a report reads is: the last successful load
// of each ETL its definition names (needs:, then loaded_by:), from rpt_etl_state in the
// history source, recorded with the read. A definition that names none, or a warehouse
// that keeps no ETL state (the SQLite demo), records none: nothing is shown rather than
// a guess. Not knowing is no reason to fail the report; it is logged.
func (a *Agent) copyLoads(ctx context.Context, r *run, def *reportdefs.Definition) []queue.ETLLoad {
	names := def.CopyETLs()
	if len(names) == 0 {
		return nil
	}
	wh, err := a.sources.get(ctx, a.cfg.HistorySource)
	if err != nil {
		r.log.Warn("cannot say how old the warehouse copy is", keyError, err.Error())
		return nil
	}
	withDB, ok := wh.(interface{ DB() *sql.DB })
	if !ok || wh.Driver() != source.DialectMySQL {
		return nil
	}
	states, err := etl.States(ctx, withDB.DB())
	if err != nil {
		r.log.Warn("cannot say how old the warehouse copy is", keyError, err.Error())
		return nil
	}
	out := make([]queue.ETLLoad, len(names))
	for i, n := range names {
		out[i] = queue.ETLLoad{ETL: n}
		if st, ok := states[n]; ok && st.LastSuccess != nil {
			at := st.LastSuccess.UTC()
			out[i].At = &at
		}
	}
	return out
}
