package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"rpt/internal/queue"
	"rpt/internal/results"
)

// Completions of jobs that finish together share one transaction (queue.BatchCompleter):
// each job's finish hands its completion to the completer goroutine, which takes every
// completion waiting at that moment (up to maxCompleteBatch) and writes them in one
// call, each still fenced by its own lease token; while its previous call is in flight
// the next batch gathers, so nothing waits for a timer. When the agent has room for
// more work, the same transaction claims as many jobs as the batch frees (and as were
// free before), so a finished job's successor costs no round trip of its own.

// maxCompleteBatch bounds the completions of one transaction.
const maxCompleteBatch = 256

// heldChunkMax is the largest result (compressed chunk 0 of a one-chunk result) that
// goes with the completion instead of being put on its own.
const heldChunkMax = 64 << 10

type completeReq struct {
	item queue.CompleteItem
	done chan error
	gone <-chan struct{} // the job's run.gone
}

// completesWithChunk reports whether a completion can carry a small result: the store
// completes in batches (both queue stores do) and results go to the queue database.
func (a *Agent) completesWithChunk() bool {
	return a.batch != nil && a.results != nil && a.results.Name() == results.QueueStoreName
}

// complete records a succeeded attempt: through the completer when the store batches
// and the completer runs, else with a JobComplete of its own.
func (a *Agent) complete(ctx context.Context, r *run, c queue.Completion) error {
	l := r.lease
	if a.batch == nil || !a.completerOn.Load() {
		return a.store.JobComplete(ctx, l, c)
	}
	req := &completeReq{item: queue.CompleteItem{Lease: l, Completion: c}, done: make(chan error, 1), gone: r.gone}
	select {
	case a.completions <- req:
	case <-a.completerDone:
		return a.store.JobComplete(ctx, l, c)
	case <-ctx.Done():
		return fmt.Errorf("complete job %d: %w: %w", l.JobID, queue.ErrUnavailable, ctx.Err())
	}
	// Handed over: wait for the answer, however long the completer takes to reach it
	// (ctx bounds only the hand-over). The completer answers every request it takes,
	// each batch within one call's limit, and after a batch that claimed it waits for
	// the batch's jobs to end; a job that stopped listening and sent its completion
	// again would wait for a completer waiting for it.
	select {
	case err := <-req.done:
		return err
	case <-a.completerDone:
		// It stopped: it answered before stopping, or it never took the request.
		select {
		case err := <-req.done:
			return err
		default:
			return a.store.JobComplete(ctx, l, c)
		}
	}
}

// completer writes the completions handed to it until stop is closed.
func (a *Agent) completer(hard context.Context, stop <-chan struct{}) {
	defer close(a.completerDone)
	for {
		var first *completeReq
		select {
		case first = <-a.completions:
		case <-stop:
			return
		}
		batch := []*completeReq{first}
	more:
		for len(batch) < maxCompleteBatch {
			select {
			case r := <-a.completions:
				batch = append(batch, r)
			default:
				break more
			}
		}
		a.completeBatch(hard, batch)
	}
}

// completeBatch writes one batch of completions and, when there is room, claims in
// the same transaction.
func (a *Agent) completeBatch(hard context.Context, batch []*completeReq) {
	items := make([]queue.CompleteItem, len(batch))
	for i, r := range batch {
		items[i] = r.item
	}
	// The claim state is the Run loop's too; the lock also keeps the two from claiming
	// past the agent's concurrency together: the claimed jobs start only once the jobs
	// of this batch have unregistered, all under the lock, so Running() never goes past
	// the concurrency and the Run loop never claims the same room.
	a.claimMu.Lock()
	defer a.claimMu.Unlock()
	var cp *queue.JobClaimParams
	free := 0
	if !a.drain.Load() && len(a.inDoubt) == 0 && !time.Now().Before(a.nextClaim) {
		free = a.cfg.Concurrency - a.Running() + len(batch)
	}
	start := time.Now()
	if free > 0 {
		tokens := make([]string, free)
		for i := range tokens {
			tokens[i] = queue.NewLeaseToken()
		}
		cp = &queue.JobClaimParams{Agent: a.cfg.Name, Sources: a.cfg.Sources, Labels: a.cfg.Labels, Limit: free,
			LeaseDuration: a.cfg.LeaseDuration, Tokens: tokens}
	}
	ctx, cancel := context.WithTimeout(hard, a.callTimeout())
	errs, jobs, err := a.batch.JobCompleteBatch(ctx, items, cp)
	cancel()
	a.queueCall("complete jobs", err)
	if err != nil {
		if cp != nil && errors.Is(err, queue.ErrUnavailable) {
			// The claim may have committed with its answer lost on the way.
			a.inDoubt = append(a.inDoubt, cp.Tokens...)
			if over := len(a.inDoubt) - maxInDoubt; over > 0 {
				a.inDoubt = a.inDoubt[over:]
			}
		}
		if len(batch) > 1 && !errors.Is(err, queue.ErrUnavailable) {
			// Something about one completion (a full disk refusing its chunk): write
			// each on its own, so the others still succeed and each gets its own answer.
			for _, r := range batch {
				cctx, cancel := context.WithTimeout(hard, a.callTimeout())
				r.done <- a.store.JobComplete(cctx, r.item.Lease, r.item.Completion)
				cancel()
			}
			return
		}
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	for i, r := range batch {
		r.done <- errs[i]
	}
	if len(jobs) > 0 {
		// Wait for the batch's jobs to unregister before their successors start, so the
		// agent never runs more than its concurrency. Only for answers that end a job's
		// finish without the completer (recorded, lease gone, or failed on a full queue
		// through JobFail): a job answered otherwise sends its completion again, to this
		// completer, and waiting for it would deadlock both.
		for i, r := range batch {
			if e := errs[i]; e == nil || errors.Is(e, queue.ErrLeaseLost) || errors.Is(e, queue.ErrNotFound) || errors.Is(e, queue.ErrFull) {
				<-r.gone
			}
		}
	}
	for i, job := range jobs {
		if i >= free {
			a.log.Error("claim returned more jobs than asked; releasing", keyJob, job.ID, "limit", free)
			rctx, cancel := context.WithTimeout(hard, a.callTimeout())
			a.queueCall("release", a.store.JobRelease(rctx, job.Lease()))
			cancel()
			continue
		}
		a.start(hard, job, start)
	}
}
