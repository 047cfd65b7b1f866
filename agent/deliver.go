package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"rpt/internal/deliver"
	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/internal/source"
	"rpt/reportdefs"
)

// Delivery: a report job submitted with targets (rpt submit --deliver, a definition's
// deliver:) has rows in rpt_deliveries. Once the report job is finished, any agent with
// delivery configured queues one deliver job per target (deliverLoop; the once key
// "deliver:ID" keeps it one job whichever agents find it), and the deliver runner sends
// the stored result: the report never runs again for a failed delivery.
//
// Exactly once, as far as it can be: the runner records "sending" under its lease
// before it hands the message over and "sent" as soon as the receiver accepted it; an
// attempt that finds "sent" sends nothing. Left open: a crash (or a queue outage that
// outlasts the retries of the "sent" write) after the receiver accepted and before
// "sent" is recorded; the next attempt sends again, with the same Message-ID (and the
// same X-Rpt-Delivery header for webhooks), so receivers can tell it is one message.

// DeliveryStore is the part of the queue delivery needs beyond Store; queue.Store has it.
type DeliveryStore interface {
	JobEnqueue(ctx context.Context, p queue.JobEnqueueParams) (queue.JobEnqueueResult, error)
	JobGet(ctx context.Context, id int64) (*queue.Job, error)
	queue.Deliveries
}

// deliverParams are a deliver job's params.
type deliverParams struct {
	Delivery int64 `json:"delivery"`
	Job      int64 `json:"job"`
}

// DefaultDeliverInterval is how often an agent looks for finished jobs to deliver.
const DefaultDeliverInterval = 2 * time.Second

// deliverMaxAttempts is how many times a delivery is tried (with the queue's backoff)
// before its job fails.
const deliverMaxAttempts = 5

type deliverRunner struct{}

func (deliverRunner) kind() queue.Kind   { return queue.KindDeliver }
func (deliverRunner) features() []string { return nil }

// permanent is a delivery error retrying cannot fix: decide fails the job at once (it
// satisfies reportdefs.ErrInvalid, the class of errors that are not retried).
type permanent struct{ err error }

func (p permanent) Error() string   { return p.err.Error() }
func (p permanent) Unwrap() []error { return []error{p.err, reportdefs.ErrInvalid} }

func (deliverRunner) run(a *Agent, r *run) error {
	ctx := r.ctx
	ds, ok := a.store.(DeliveryStore)
	if !ok || a.cfg.Deliver == nil {
		return permanent{errors.New("this agent has no delivery configured")}
	}
	var p deliverParams
	if err := json.Unmarshal(r.job.Params, &p); err != nil || p.Delivery == 0 {
		return permanent{fmt.Errorf("deliver job params %s: want {\"delivery\": ID, \"job\": ID}", r.job.Params)}
	}
	d, err := ds.DeliveryGet(ctx, p.Delivery)
	if err != nil {
		return err
	}
	if d.State == queue.DeliverySent {
		r.log.Info("delivery already sent; nothing to do", "delivery", d.ID, "message_id", d.MessageID)
		return nil
	}
	t, err := deliver.Parse(d.Target)
	if err != nil {
		return permanent{fmt.Errorf("delivery %d: %w", d.ID, err)}
	}
	// The agent's own allow lists decide, not the submitter's word: a delivery row
	// written into the queue by hand is refused here.
	if err := t.Allowed(a.cfg.Deliver.Deliver, a.cfg.Deliver.SMTP); err != nil {
		return permanent{fmt.Errorf("delivery %d: %w", d.ID, err)}
	}
	rep, err := ds.JobGet(ctx, d.JobID)
	if err != nil {
		return err
	}
	if rep.Status != queue.StatusSucceeded {
		return permanent{fmt.Errorf("delivery %d: report job %d is %s, not succeeded: nothing to deliver", d.ID, rep.ID, rep.Status)}
	}
	if name := results.StoreOf(rep); name != a.results.Name() {
		return fmt.Errorf("delivery %d: the result of job %d is in results store %q; this agent writes to %q: %w", d.ID, rep.ID, name, a.results.Name(), results.ErrNotConfigured)
	}
	res := deliver.Result{
		JobID: rep.ID, Report: rep.Report, Params: rep.Params, Rows: rep.Rows, Filename: fileStem(rep, t, a.cfg.Deliver.Loc),
		Open: func(ctx context.Context) (source.Rows, error) {
			return results.Open(ctx, a.results, results.RefOf(rep))
		},
	}
	if rep.FinishedAt != nil {
		res.Finished = *rep.FinishedAt
	}
	msgID := a.cfg.Deliver.MessageID(d.ID, rep.ID)
	alreadySent := errors.New("already sent")
	err = a.cfg.Deliver.Send(ctx, t, d.ID, res, func(ctx context.Context) error {
		before, err := ds.DeliverySending(ctx, r.lease, d.ID, msgID)
		if err != nil {
			return err
		}
		if before.State == queue.DeliverySent {
			return alreadySent
		}
		if before.Attempts > 0 {
			r.log.Warn("sending again: an earlier attempt began the hand-over and did not record its end (the receiver may have it twice; same Message-ID)",
				"delivery", d.ID, "message_id", msgID, "earlier_attempts", before.Attempts)
		}
		return nil
	})
	switch {
	case errors.Is(err, alreadySent):
		return nil
	case errors.Is(err, deliver.ErrPermanent):
		return permanent{err}
	case err != nil:
		return err
	}
	// Sent: record it whatever the lease says. A failure here is the at-least-once
	// window; try for a while before giving the job back.
	for try := 0; ; try++ {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.callTimeout())
		err = ds.DeliverySent(cctx, d.ID)
		cancel()
		if err == nil || try >= 5 {
			break
		}
		time.Sleep(time.Duration(try+1) * a.cfg.HeartbeatInterval)
	}
	if err != nil {
		r.log.Error("sent, but recording it failed: a later attempt will send again", "delivery", d.ID, keyError, err.Error())
		return fmt.Errorf("record delivery %d sent: %w", d.ID, err)
	}
	r.log.Info("delivered", "delivery", d.ID, "target", logTarget(t), "message_id", msgID)
	return nil
}

// fileStem is the attachment's name without extension: the definition's deliver.email
// filename or filename: template, expanded for the job.
func fileStem(rep *queue.Job, t deliver.Target, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	finished := time.Now()
	if rep.FinishedAt != nil {
		finished = *rep.FinishedAt
	}
	name := fmt.Sprintf("%s-%d", rep.Report, rep.ID)
	if def, err := reportdefs.Parse(rep.Report+".yaml", rep.Definition); err == nil {
		if def.Deliver != nil && def.Deliver.Email != nil && def.Deliver.Email.Filename != "" {
			def.Filename = def.Deliver.Email.Filename
		}
		name = def.FileName(rep.ID, rep.Params, finished, loc, t.Format)
	}
	return strings.TrimSuffix(name, filepath.Ext(name))
}

// logTarget names a target in logs: the recipients or the URL without its query.
func logTarget(t deliver.Target) string {
	if t.Kind == deliver.KindEmail {
		return "mailto:" + strings.Join(t.To, ",")
	}
	u, _, _ := strings.Cut(t.URL, "?")
	return u
}

// deliverLoop queues the deliver jobs of finished report jobs until ctx ends.
func (a *Agent) deliverLoop(ctx context.Context) {
	ds, ok := a.store.(DeliveryStore)
	if !ok || a.cfg.Deliver == nil {
		return
	}
	every := a.cfg.DeliverInterval
	if every <= 0 {
		every = DefaultDeliverInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		a.queueDeliveries(ctx, ds)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// queueDeliveries queues one deliver job per due delivery. The once key makes agents
// doing this at the same time queue one job; a delivery whose report did not succeed
// is marked skipped.
func (a *Agent) queueDeliveries(ctx context.Context, ds DeliveryStore) {
	cctx, cancel := context.WithTimeout(ctx, a.callTimeout())
	due, err := ds.DeliveryDueList(cctx, 50)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("list due deliveries", keyError, err.Error())
		}
		return
	}
	queued := false
	for _, d := range due {
		if ctx.Err() != nil {
			return
		}
		if err := a.queueDelivery(ctx, ds, d); err != nil {
			a.log.Warn("queue delivery", "delivery", d.ID, keyJob, d.JobID, keyError, err.Error())
			continue
		}
		queued = queued || d.JobStatus == queue.StatusSucceeded
	}
	if queued {
		a.Wake()
	}
}

func (a *Agent) queueDelivery(ctx context.Context, ds DeliveryStore, d queue.DeliveryDue) error {
	ctx, cancel := context.WithTimeout(ctx, a.callTimeout())
	defer cancel()
	if d.JobStatus != queue.StatusSucceeded {
		a.log.Info("delivery skipped: the report job did not succeed", "delivery", d.ID, keyJob, d.JobID, "status", string(d.JobStatus))
		return ds.DeliveryQueued(ctx, d.ID, 0)
	}
	rep, err := ds.JobGet(ctx, d.JobID)
	if err != nil {
		return err
	}
	params, _ := json.Marshal(deliverParams{Delivery: d.ID, Job: d.JobID})
	res, err := ds.JobEnqueue(ctx, queue.JobEnqueueParams{
		Kind: queue.KindDeliver, Report: rep.Report, Definition: rep.Definition, DefinitionSHA256: rep.DefinitionSHA256,
		Params: params, Source: rep.Source, Route: map[string]string{queue.KindLabel(queue.KindDeliver): queue.CapabilityYes},
		Priority: rep.Priority, MaxAttempts: deliverMaxAttempts, Timeout: 5 * time.Minute,
		OnceKey: fmt.Sprintf("deliver:%d", d.ID), SubmittedBy: rep.SubmittedBy, Origin: rep.Origin,
	})
	if err != nil {
		return err
	}
	a.log.Info("delivery queued", "delivery", d.ID, keyJob, d.JobID, "deliver_job", res.Job.ID)
	return ds.DeliveryQueued(ctx, d.ID, res.Job.ID)
}
