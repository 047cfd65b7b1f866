package etl

import (
	"context"
	"fmt"

	"rpt/internal/queue"
)

// Enqueuer is the queue call a pipeline submit needs (every queue.Store has it).
type Enqueuer interface {
	JobEnqueue(ctx context.Context, p queue.JobEnqueueParams) (queue.JobEnqueueResult, error)
}

// PipelineJob is one ETL of a pipeline submit and the job that runs it.
type PipelineJob struct {
	ETL string
	Job *queue.Job
	// Joined: a run of this ETL with the same arguments was already queued or running
	// (JobParams' dedupe key), and the pipeline waits for that job instead; it keeps
	// the prerequisites it was queued with (none, when it was queued alone).
	Joined bool
	// After are the jobs this one waits for: the jobs of its after: ETLs.
	After []int64
}

// EnqueuePipeline queues the ETL named last in order (Catalog.Order of one name: its
// after: ETLs, transitively, dependencies first) and each of its dependencies, one job
// each, every job waiting for the jobs of its after: ETLs (queue.JobEnqueueParams.After):
// a job is claimable once its prerequisites have succeeded, and ends failed or
// cancelled, naming the one, when a prerequisite does. args apply to the last ETL (the
// one asked for); its dependencies run with their defaults. each, when not nil, fills
// in what the caller decides per job (priority, origin, submitter, a submit token
// derived per ETL so that a retried submit returns the same jobs).
//
// The jobs are queued one by one, dependencies first, so a queue that stops answering
// midway leaves only whole ETL runs queued, whose prerequisites are queued too.
func EnqueuePipeline(ctx context.Context, q Enqueuer, order []*Definition, args JobArgs, each func(d *Definition, p *queue.JobEnqueueParams)) ([]PipelineJob, error) {
	ids := map[string]int64{}
	out := make([]PipelineJob, 0, len(order))
	for i, d := range order {
		a := JobArgs{}
		if i == len(order)-1 {
			a = args
		}
		p, err := JobParams(d, a)
		if err != nil {
			return out, err
		}
		for _, name := range d.After {
			id, ok := ids[name]
			if !ok {
				return out, fmt.Errorf("%s: after: %s is not queued before it (the order is not the catalogue's): %w", d.File, name, ErrInvalid)
			}
			p.After = append(p.After, id)
		}
		if each != nil {
			each(d, &p)
		}
		res, err := q.JobEnqueue(ctx, p)
		if err != nil {
			return out, fmt.Errorf("queue etl %s: %w", d.Name, err)
		}
		joined := res.Existing && (p.SubmitToken == "" || res.Job.SubmitToken != p.SubmitToken)
		ids[d.Name] = res.Job.ID
		out = append(out, PipelineJob{ETL: d.Name, Job: res.Job, Joined: joined, After: p.After})
	}
	return out, nil
}
