package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/internal/source"
	"rpt/reportdefs"
)

// Why a job's context was cancelled (context.Cause). The first cause wins.
var (
	errCancelRequested = errors.New("cancel requested")
	errLeaseLost       = errors.New("lease lost")
	errSelfFenced      = errors.New("self-fenced: queue database unreachable for too long")
	errShutdown        = errors.New("agent shutting down")
	errTimeout         = errors.New("timeout")
)

// run is one claimed job while this agent holds it.
type run struct {
	job    *queue.Job
	lease  queue.Lease
	ctx    context.Context // cancelled to stop the query; see the err* causes
	cancel context.CancelCauseFunc
	rows   atomic.Int64    // rows written so far, reported by heartbeats
	chunks int             // the result's chunk count once written (the job goroutine's only)
	held   []byte          // chunk 0 of a small result, stored by the completion (results.Writer.HoldSmall)
	read   *queue.ReadInfo // where and when a report read its data, recorded by the completion
	fenced atomic.Bool     // set by the lease keeper: never complete, only release
	ending atomic.Bool     // the outcome is being written: a lease lost now is that write's doing
	gone   chan struct{}   // closed once the job is no longer registered (Running)
	log    *slog.Logger

	mu       sync.Mutex
	lastGood time.Time // monotonic: when the last successful heartbeat (or the claim) was sent
}

func (r *run) setLastGood(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.After(r.lastGood) {
		r.lastGood = t
	}
}

func (r *run) getLastGood() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastGood
}

// CancelNow is called when a cancel of job id is announced (MQTT): it renews the job's
// lease at once, and when the database confirms the cancel (the announcement alone is
// not trusted), the job stops now rather than at its next heartbeat.
func (a *Agent) CancelNow(id int64) {
	a.mu.Lock()
	var runs []*run
	for l, r := range a.jobs {
		if l.JobID == id {
			runs = append(runs, r)
		}
	}
	a.mu.Unlock()
	for _, r := range runs {
		ctx, cancel := context.WithTimeout(r.ctx, a.callTimeout())
		hb, err := a.store.JobHeartbeat(ctx, r.lease, r.rows.Load(), a.cfg.LeaseDuration)
		cancel()
		if err == nil && hb.CancelRequested && r.ctx.Err() == nil {
			r.log.Info("cancel requested (announced)")
			r.cancel(errCancelRequested)
		}
	}
}

// start registers a claimed job and runs it in its own goroutine.
func (a *Agent) start(hard context.Context, job *queue.Job, claimed time.Time) {
	ctx, cancel := context.WithCancelCause(hard)
	r := &run{
		job:      job,
		lease:    job.Lease(),
		ctx:      ctx,
		cancel:   cancel,
		lastGood: claimed,
		gone:     make(chan struct{}),
		log:      a.log.With(keyJob, job.ID, keyReport, job.Report, keyAttempt, job.Attempt),
	}
	a.mu.Lock()
	a.jobs[r.lease] = r
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer func() {
			if p := recover(); p != nil {
				// A bug in the agent's own bookkeeping: the lease expires and another
				// agent rescues the job, while this one keeps serving the others.
				r.log.Error("job goroutine panicked", keyError, fmt.Sprint(p), "stack", string(debug.Stack()))
			}
			cancel(nil)
			a.mu.Lock()
			delete(a.jobs, r.lease)
			a.mu.Unlock()
			close(r.gone)
			a.Wake() // capacity is free again
		}()
		a.runJob(hard, r)
	}()
}

// runJob executes the job and then writes its outcome, keeping the lease alive for as
// long as both take.
func (a *Agent) runJob(hard context.Context, r *run) {
	r.log.Info("job started", keySource, r.job.Source)
	began := time.Now()
	stopKeeper := make(chan struct{})
	keeperDone := make(chan struct{})
	go func() {
		defer close(keeperDone)
		a.keepLease(hard, r, stopKeeper)
	}()
	defer func() {
		close(stopKeeper)
		<-keeperDone
	}()

	if r.job.Timeout > 0 {
		t := time.AfterFunc(r.job.Timeout, func() { r.cancel(errTimeout) })
		defer t.Stop()
	}

	err := a.execute(r)
	a.finish(hard, r, err, time.Since(began))
}

// execute runs the attempt with the runner of the job's kind. A panic becomes the job's
// error: one bad job must not take the agent down.
func (a *Agent) execute(r *run) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("job panicked", keyError, fmt.Sprint(p), "stack", string(debug.Stack()))
			err = &panicError{msg: fmt.Sprint(p)}
		}
	}()
	kind := r.job.Kind
	if kind == "" {
		kind = queue.KindReport // rows written before kinds were set
	}
	rn, ok := a.runners[kind]
	if !ok {
		// The route check keeps such jobs away from this agent (their route requires
		// queue.KindLabel); one that got here anyway was queued without it.
		return &noRunnerError{kind: kind, have: kindNames(a.runners)}
	}
	// Before anything of the snapshot is used, whatever the kind: only trusted
	// definitions run (trust.go).
	if err := a.checkTrusted(r.ctx, r); err != nil {
		return err
	}
	return rn.run(a, r)
}

type panicError struct{ msg string }

func (e *panicError) Error() string { return "panic: " + e.msg }

// noRunnerError is a job of a kind this agent has no runner for: retrying here would
// not help.
type noRunnerError struct {
	kind queue.Kind
	have string
}

func (e *noRunnerError) Error() string {
	return fmt.Sprintf("this agent cannot run jobs of kind %q (it runs %s); the job was queued without the route label %s",
		e.kind, e.have, queue.KindLabel(e.kind))
}

// keepLease renews the job's lease every HeartbeatInterval until stop is closed. It
// cancels the job when a cancel is requested or the lease is lost, and self-fences when
// the database has not answered for LeaseDuration - margin: the job's query is killed
// before the lease can expire, so no other agent can be running the job at the same time.
func (a *Agent) keepLease(hard context.Context, r *run, stop <-chan struct{}) {
	margin := a.cfg.LeaseDuration / 4
	fenceIn := func() time.Duration {
		return time.Until(r.getLastGood().Add(a.cfg.LeaseDuration - margin))
	}
	fence := time.NewTimer(fenceIn())
	defer fence.Stop()
	tick := time.NewTicker(a.cfg.HeartbeatInterval)
	defer tick.Stop()

	type beat struct {
		sent time.Time
		hb   queue.Heartbeat
		err  error
	}
	results := make(chan beat, 1) // one call in flight at most; the buffer lets it finish after stop
	inFlight := false
	failed := 0 // heartbeats failed in a row; logged at the first and then now and then
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if inFlight {
				continue
			}
			if r.ending.Load() && time.Since(r.getLastGood()) < a.cfg.LeaseDuration/2 {
				// The outcome is on its way (most often waiting for its turn in a batch of
				// completions) and the lease has more than half of its time left: a renewal
				// would only contend for the row the outcome's transaction locks. Past
				// half the lease, a slow outcome write gets its lease kept as before.
				continue
			}
			inFlight = true
			go func() {
				sent := time.Now()
				ctx, cancel := context.WithTimeout(hard, a.callTimeout())
				defer cancel()
				hb, err := a.store.JobHeartbeat(ctx, r.lease, r.rows.Load(), a.cfg.LeaseDuration)
				results <- beat{sent: sent, hb: hb, err: err}
			}()
		case b := <-results:
			inFlight = false
			if errors.Is(b.err, queue.ErrLeaseLost) && r.ending.Load() {
				// The outcome (a batched completion) committed while this heartbeat was
				// on its way: not a stale write, and the job is done.
				return
			}
			a.queueCall("heartbeat", b.err)
			switch {
			case b.err == nil:
				if failed > 0 {
					r.log.Info("heartbeat succeeded again", "failed", failed)
				}
				failed = 0
				r.setLastGood(b.sent)
				if !r.fenced.Load() {
					fence.Reset(fenceIn())
				}
				if b.hb.CancelRequested && r.ctx.Err() == nil {
					r.log.Info("cancel requested")
					r.cancel(errCancelRequested)
				}
			case errors.Is(b.err, queue.ErrLeaseLost):
				if r.ctx.Err() == nil {
					r.log.Warn("lease lost; stopping job")
				}
				r.cancel(errLeaseLost)
				return
			default:
				if failed++; failed == 1 || failed%30 == 0 {
					r.log.Warn("heartbeat failed", keyError, b.err.Error(), "failed", failed)
				}
			}
		case <-fence.C:
			if d := fenceIn(); d > 0 {
				// A heartbeat succeeded while the timer was firing.
				fence.Reset(d)
				continue
			}
			if !r.fenced.Swap(true) {
				r.log.Warn("self-fencing: no heartbeat for too long; stopping job",
					"last_good", time.Since(r.getLastGood()).Round(time.Millisecond).String())
				r.cancel(errSelfFenced)
			}
		}
	}
}

// outcome is the write that ends an attempt.
type outcome int

const (
	outComplete outcome = iota
	outCancelled
	outFail
	outRelease
	outDrop // the lease is gone: write nothing
	outWait // the report's data is stale: queued again to wait for its ETL (needs.go)
)

func (o outcome) String() string {
	return [...]string{"succeeded", "cancelled", "failed", "released", "dropped", "waiting"}[o]
}

// decide maps how execute ended to the write that records it.
func decide(r *run, err error) (out outcome, failure queue.JobFailParams) {
	cause := context.Cause(r.ctx)
	if r.ctx.Err() == nil {
		cause = nil
	}
	switch {
	case errors.Is(cause, errLeaseLost) || errors.Is(err, queue.ErrLeaseLost):
		return outDrop, failure
	case r.fenced.Load() || errors.Is(cause, errSelfFenced):
		return outRelease, failure
	case errors.Is(cause, errCancelRequested):
		return outCancelled, failure
	case err == nil:
		// Finished, even if a timeout or shutdown arrived in the same instant.
		return outComplete, failure
	case errors.Is(cause, errTimeout):
		return outFail, queue.JobFailParams{Error: "timeout after " + formatDuration(r.job.Timeout)}
	case errors.Is(cause, errShutdown):
		return outRelease, failure
	case errors.As(err, new(*waitError)):
		// The data a report needs is being reloaded: no failure, no attempt spent.
		return outWait, failure
	case errors.Is(err, queue.ErrUnavailable):
		// The queue database stopped answering while rows were stored: not the job's
		// fault; give it back once the database answers.
		return outRelease, failure
	case errors.Is(err, results.ErrStoreDown):
		// The results store's server does not answer (a MongoDB outage): not the job's
		// fault either; released like a queue outage, with no failure counted.
		return outRelease, failure
	case errors.Is(err, results.ErrUnavailable):
		// The results store answers but cannot keep the result (disk full, I/O error):
		// fail the attempt, retryable, so it runs again later or on an agent whose store
		// has room. Releasing would loop on the same full disk without end.
		return outFail, queue.JobFailParams{Error: err.Error(), Retryable: true}
	case errors.Is(err, reportdefs.ErrInvalid), errors.Is(err, source.ErrConvert), errors.Is(err, results.ErrHistorySpec),
		errors.Is(err, source.ErrRequest), errors.Is(err, source.ErrNotBuilt):
		return outFail, queue.JobFailParams{Error: err.Error(), Retryable: false}
	default:
		var p *panicError
		var nr *noRunnerError
		if errors.As(err, &p) || errors.As(err, &nr) {
			return outFail, queue.JobFailParams{Error: err.Error(), Retryable: false}
		}
		// source.ErrUnavailable and other query errors: retryable, and the store counts
		// attempts against max_attempts.
		return outFail, queue.JobFailParams{Error: err.Error(), Retryable: true}
	}
}

// finish records the attempt's outcome, retrying while the database does not answer.
// Once the job is self-fenced, the only write left is a release. An attempt that does
// not succeed discards its partial result first.
func (a *Agent) finish(hard context.Context, r *run, err error, took time.Duration) {
	out, failure := decide(r, err)
	rows := r.rows.Load()
	attrs := []any{keyOutcome, out.String(), keyRows, rows, keyDuration, took.Round(time.Millisecond).String()}
	if out == outDrop {
		a.discard(hard, r)
		a.metrics.jobEnded(r.job.Report, outcomeLeaseLost, took)
		r.log.Warn("lease lost; job stopped without writing", attrs...)
		return
	}
	discarded := false
	backoff := a.cfg.HeartbeatInterval
	r.ending.Store(true)
	for {
		if r.fenced.Load() && out != outRelease {
			r.log.Warn("self-fenced: releasing instead of recording "+out.String(), keyError, errString(err))
			out = outRelease
			attrs[1] = out.String()
		}
		if out != outComplete && !discarded && !r.fenced.Load() {
			// Before the outcome: on a full disk the outcome write needs the space. Not
			// when self-fenced: the database has not answered for most of a lease, and the
			// release must not wait on a delete; retention prunes those chunks.
			a.discard(hard, r)
			discarded = true
		}
		ctx, cancel := context.WithTimeout(hard, a.callTimeout())
		var werr error
		var status queue.Status
		switch out {
		case outComplete:
			c := queue.Completion{Rows: rows}
			if r.chunks > 0 { // a kind that keeps no result records no store
				c.ResultStore, c.ResultChunks = a.results.Name(), r.chunks
			}
			c.Chunk = r.held
			c.Read = r.read
			werr = a.complete(ctx, r, c)
			if errors.Is(werr, queue.ErrFull) {
				// The queue database cannot take even the completion: the result, which
				// may be what fills it, goes, and the attempt fails, to run again once
				// there is room.
				cancel()
				r.log.Warn("queue database full: failing the attempt instead of recording its success", keyError, werr.Error())
				out, failure = outFail, queue.JobFailParams{Error: fmt.Sprintf("%v: record the result: %v", results.ErrUnavailable, werr), Retryable: true}
				attrs[1] = out.String()
				continue
			}
		case outCancelled:
			werr = a.store.JobCancelled(ctx, r.lease)
		case outRelease:
			werr = a.store.JobRelease(ctx, r.lease)
		case outWait:
			var w *waitError
			errors.As(err, &w)
			if dw, ok := a.store.(queue.DependWaiter); ok && len(w.jobs) > 0 {
				werr = dw.JobWaitFor(ctx, r.lease, w.jobs, w.until, w.reason)
			} else if ws, ok := a.store.(queue.Waiter); ok {
				werr = ws.JobWait(ctx, r.lease, w.after, w.reason)
			} else {
				werr = a.store.JobRelease(ctx, r.lease)
			}
		case outFail:
			status, werr = a.store.JobFail(ctx, r.lease, failure)
		}
		cancel()
		a.queueCall("finish job", werr)
		switch {
		case werr == nil:
			if out == outComplete && r.job.Kind == queue.KindETL {
				a.wakeOthers() // jobs waiting for this ETL are due now
			}
			a.metrics.jobEnded(r.job.Report, metricOutcome(out, status), took)
			switch out {
			case outFail:
				r.log.Warn("job failed", append(attrs, keyError, failure.Error, "retryable", failure.Retryable, "status", string(status))...)
			case outRelease:
				r.log.Info("job released", append(attrs, "reason", errString(context.Cause(r.ctx)))...)
			default:
				r.log.Info("job "+out.String(), attrs...)
			}
			return
		case errors.Is(werr, queue.ErrLeaseLost), errors.Is(werr, queue.ErrNotFound):
			if out == outComplete {
				a.metrics.staleCompletions.Inc()
			}
			a.metrics.jobEnded(r.job.Report, outcomeLeaseLost, took)
			r.log.Warn("lease lost before the outcome was recorded", append(attrs, keyError, werr.Error())...)
			return
		}
		r.log.Warn("recording outcome failed; retrying", append(attrs, keyError, werr.Error())...)
		t := time.NewTimer(backoff)
		select {
		case <-hard.Done():
			t.Stop()
			r.log.Error("gave up recording outcome: agent stopped; the lease will expire and the job be rescued", attrs...)
			return
		case <-t.C:
		}
		backoff = min(backoff*2, a.maxRetryWait())
	}
}

// discard deletes the partial result of an attempt that will not succeed, once and
// best effort: what it leaves, retention prunes later. It runs even when the queue
// database is failing, with the usual bound on one call.
func (a *Agent) discard(hard context.Context, r *run) {
	ctx, cancel := context.WithTimeout(hard, a.callTimeout())
	defer cancel()
	n, err := a.results.Discard(ctx, r.lease.JobID, r.lease.Attempt)
	if err != nil {
		r.log.Warn("discarding the partial result failed; retention will prune it", keyError, err.Error())
		return
	}
	if n > 0 {
		r.log.Info("partial result discarded", "chunks", n)
	}
}

// metricOutcome is the rpt_jobs_finished_total outcome of a recorded write; status is
// what JobFail answered.
func metricOutcome(out outcome, status queue.Status) string {
	switch out {
	case outComplete:
		return outcomeSucceeded
	case outCancelled:
		return outcomeCancelled
	case outRelease, outWait:
		return outcomeReleased
	case outDrop:
		return outcomeLeaseLost
	}
	switch status {
	case queue.StatusQueued:
		return outcomeRetry
	case queue.StatusCancelled:
		return outcomeCancelled
	}
	return outcomeFailed
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// formatDuration prints 2h, 1h30m, 90s as 1m30s: time.Duration.String without the
// trailing zero units.
func formatDuration(d time.Duration) string {
	s := d.String()
	for _, suffix := range []string{"0s", "0m"} {
		if len(s) > len(suffix)+1 && s[len(s)-len(suffix):] == suffix {
			switch c := s[len(s)-len(suffix)-1]; c {
			case 'h', 'm':
				s = s[:len(s)-len(suffix)]
			}
		}
	}
	return s
}
