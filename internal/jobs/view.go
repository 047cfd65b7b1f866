package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"rpt/internal/deliver"
	"rpt/internal/queue"
)

// View is the one shape of a job shown to users: `-o json`/`-o yaml` of the command
// line and the API's job object. It holds nothing secret (no lease token, no
// definition text).
type View struct {
	ID         int64           `json:"id"`
	Kind       queue.Kind      `json:"kind"`
	Report     string          `json:"report"`
	Status     queue.Status    `json:"status"`
	Attempt    int             `json:"attempt"`
	Failures   int             `json:"failures"`
	Params     json.RawMessage `json:"params"`
	Source     string          `json:"source"`
	Priority   int             `json:"priority"`
	Agent      *string         `json:"agent"`
	Rows       int64           `json:"rows"`
	Error      *string         `json:"error"`
	RetryOf    *int64          `json:"retry_of,omitempty"`
	Origin     string          `json:"origin,omitempty"`
	By         string          `json:"submitted_by,omitempty"`
	RunAfter   time.Time       `json:"run_after"`
	CreatedAt  time.Time       `json:"created_at"`
	StartedAt  *time.Time      `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
	Waiting    []string        `json:"waiting,omitempty"`
	// After are the jobs this one waits (or waited) for, its prerequisites, as they
	// are now (Describe fills them).
	After []queue.Prerequisite `json:"after,omitempty"`
	// Deliveries are where a report job's result goes once it succeeds, and whether
	// it went (Describe fills them; webhook URLs without their query).
	Deliveries []DeliveryView `json:"deliveries,omitempty"`
	// Read is where and when a succeeded report read its data (nil: not recorded);
	// ViewOf's note is in UTC, Describe's in the plant's zone.
	Read *ReadView `json:"read,omitempty"`
}

// DeliveryView is one delivery of a report job as shown.
type DeliveryView struct {
	ID         int64      `json:"id"`
	Target     string     `json:"target"`
	State      string     `json:"state"`
	DeliverJob *int64     `json:"deliver_job"`
	Attempts   int        `json:"attempts"`
	MessageID  string     `json:"message_id,omitempty"`
	SentAt     *time.Time `json:"sent_at"`
}

// ViewOf is j as shown; times in UTC, absent values null.
func ViewOf(j *queue.Job) View {
	v := View{ID: j.ID, Kind: j.Kind, Report: j.Report, Status: j.Status, Attempt: j.Attempt,
		Failures: j.Failures, Params: j.Params, Source: j.Source, Priority: j.Priority, Rows: j.Rows,
		Origin: j.Origin, By: j.SubmittedBy, RunAfter: j.RunAfter.UTC(), CreatedAt: j.CreatedAt.UTC(),
		StartedAt: utcPtr(j.StartedAt), FinishedAt: utcPtr(j.FinishedAt), Read: ReadOf(j.Read, time.UTC)}
	if len(v.Params) == 0 {
		v.Params = json.RawMessage("{}")
	}
	if j.LeaseOwner != "" {
		owner := j.LeaseOwner
		v.Agent = &owner
	}
	if j.Error != "" {
		msg := j.Error
		v.Error = &msg
	}
	if j.RetryOf != 0 {
		id := j.RetryOf
		v.RetryOf = &id
	}
	return v
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Describe is the view of one job with, for a queued one, why it waits.
func (s *Service) Describe(ctx context.Context, j *queue.Job) (View, error) {
	v := ViewOf(j)
	v.Read = ReadOf(j.Read, s.Loc)
	if pl, ok := s.Store.(queue.PrerequisiteLister); ok {
		ps, err := pl.JobPrerequisites(ctx, j.ID)
		if err != nil {
			return View{}, err
		}
		v.After = ps
	}
	why, err := s.waitReasons(ctx, j, v.After)
	if err != nil {
		return View{}, err
	}
	v.Waiting = why
	ds, err := s.Store.DeliveryList(ctx, j.ID)
	if err != nil {
		return View{}, err
	}
	for _, d := range ds {
		dv := DeliveryView{ID: d.ID, Target: deliver.Shown(d.Target), State: d.State, Attempts: d.Attempts, MessageID: d.MessageID, SentAt: utcPtr(d.SentAt)}
		if d.DeliverJobID != 0 {
			id := d.DeliverJobID
			dv.DeliverJob = &id
		}
		v.Deliveries = append(v.Deliveries, dv)
	}
	return v, nil
}

// WaitReasons says why a queued job is not running yet (nil for other jobs): not due,
// paused, no agent with its source or route, its concurrency slots taken; else that it
// waits for a free agent.
func (s *Service) WaitReasons(ctx context.Context, j *queue.Job) ([]string, error) {
	if j.Status != queue.StatusQueued {
		return nil, nil
	}
	var after []queue.Prerequisite
	if pl, ok := s.Store.(queue.PrerequisiteLister); ok {
		var err error
		if after, err = pl.JobPrerequisites(ctx, j.ID); err != nil {
			return nil, err
		}
	}
	return s.waitReasons(ctx, j, after)
}

// waitReasons is WaitReasons knowing the job's prerequisites: one not succeeded yet
// comes first ("after etl plex-accounts (job 41): running"), and a job that waits for
// them with no deadline is not said to be "not due" until the year 9999.
func (s *Service) waitReasons(ctx context.Context, j *queue.Job, after []queue.Prerequisite) ([]string, error) {
	if j.Status != queue.StatusQueued {
		return nil, nil
	}
	var first []string
	for _, p := range after {
		if p.Status != queue.StatusSucceeded {
			first = append(first, fmt.Sprintf("after %s: %s", p.Name(), p.Status))
		}
	}
	pauses, err := s.Store.PauseList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pauses: %w", err)
	}
	agents, err := s.Store.AgentList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	used, err := s.Store.SlotUsage(ctx)
	if err != nil {
		return nil, fmt.Errorf("slot usage: %w", err)
	}
	shown := *j
	if len(first) > 0 {
		// Due when they succeed (said above); a waiter's deadline is said as such.
		if now := s.now(); j.RunAfter.Before(queue.NotDue) && j.RunAfter.After(now) {
			first = append(first, fmt.Sprintf("due at %s at the latest (in %s)", j.RunAfter.UTC().Format(time.RFC3339), j.RunAfter.Sub(now).Round(time.Second)))
		}
		shown.RunAfter = time.Time{}
	}
	why := append(first, queue.WaitReasons(&shown, s.now(), pauses, agents, used)...)
	if len(why) == 0 {
		why = []string{"runnable: waits for a free agent"}
	}
	return why, nil
}
