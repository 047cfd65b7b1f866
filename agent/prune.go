package agent

import (
	"context"
	"math/rand/v2"
	"time"

	"rpt/internal/queue"
)

// pruneTimeout bounds one Prune call. The stores delete in small batches, each its own
// transaction, so a prune cut short has still done its share and the next one goes on.
const pruneTimeout = 5 * time.Minute

// pruneLoop deletes results and jobs past their retention every PruneInterval until ctx
// ends. The first prune comes at a random point of the first interval.
func (a *Agent) pruneLoop(ctx context.Context) {
	every := a.cfg.PruneInterval
	if every <= 0 || (a.cfg.Retention.Results <= 0 && a.cfg.Retention.Jobs <= 0) {
		return
	}
	t := time.NewTimer(rand.N(every))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.prune(ctx, time.Now())
		t.Reset(every)
	}
}

// pruneParams turns the retention into cut-offs; a zero retention keeps its kind
// forever (a zero cut-off prunes nothing).
func (r Retention) pruneParams(now time.Time) queue.PruneParams {
	var p queue.PruneParams
	if r.Results > 0 {
		p.ResultsBefore = now.Add(-r.Results)
	}
	if r.Jobs > 0 {
		p.JobsBefore = now.Add(-r.Jobs)
	}
	return p
}

// prune deletes results past retention through the results store, then finished jobs
// past theirs through the queue (with whatever chunks the queue database still holds
// for them).
func (a *Agent) prune(ctx context.Context, now time.Time) {
	p := a.cfg.Retention.pruneParams(now)
	cctx, cancel := context.WithTimeout(ctx, pruneTimeout)
	defer cancel()
	began := time.Now()
	var res queue.PruneResult
	var err error
	res.ResultJobs, err = a.results.Prune(cctx, p.ResultsBefore)
	if err == nil {
		var jobs queue.PruneResult
		jobs, err = a.store.Prune(cctx, queue.PruneParams{JobsBefore: p.JobsBefore})
		res.Jobs = jobs.Jobs
	}
	// Count what was deleted even when a later batch failed.
	a.metrics.pruneDeleted.WithLabelValues("results").Add(float64(res.ResultJobs))
	a.metrics.pruneDeleted.WithLabelValues("jobs").Add(float64(res.Jobs))
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("prune failed", keyError, err.Error(), "result_jobs", res.ResultJobs, "jobs", res.Jobs)
		}
		return
	}
	if res.ResultJobs > 0 || res.Jobs > 0 {
		a.log.Info("pruned", "result_jobs", res.ResultJobs, "jobs", res.Jobs,
			keyDuration, time.Since(began).Round(time.Millisecond).String())
	}
}
