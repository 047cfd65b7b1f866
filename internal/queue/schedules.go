package queue

import (
	"context"
	"encoding/json"
	"time"
)

// Missed-run policies of a schedule: what a runner starting after downtime does with
// the occurrences it missed.
const (
	MissedSkip = "skip" // nothing: the next occurrence runs (the default)
	MissedOnce = "once" // the latest missed occurrence runs once, at start-up
)

// Schedule is one row of rpt_schedules: a report run on a cron expression, kept in the
// queue database (rpt schedules), ticked by rpt cron run.
type Schedule struct {
	ID       int64             `json:"id"`
	Name     string            `json:"name"`
	Cron     string            `json:"cron"`     // five fields or an @-macro
	Timezone string            `json:"timezone"` // IANA zone the fields are read in
	Report   string            `json:"report"`
	Params   map[string]string `json:"params"` // as given: relative words resolve at each occurrence
	Deliver  []string          `json:"deliver,omitempty"`
	Missed   string            `json:"missed"` // MissedSkip or MissedOnce
	Held     bool              `json:"held"`
	// CreatedBy names who added it ("user@host").
	CreatedBy      string     `json:"created_by,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	LastOccurrence *time.Time `json:"last_occurrence,omitempty"`
	LastJobID      int64      `json:"last_job,omitempty"`
}

// ParamsJSON and DeliverJSON are the stored forms of Params and Deliver.
func (s Schedule) ParamsJSON() string {
	if s.Params == nil {
		return "{}"
	}
	b, _ := json.Marshal(s.Params)
	return string(b)
}

func (s Schedule) DeliverJSON() string {
	if s.Deliver == nil {
		return "[]"
	}
	b, _ := json.Marshal(s.Deliver)
	return string(b)
}

// Schedules is the table of schedules. Every Store implements it. Callers validate a
// schedule (crontab.Schedules) before storing it.
type Schedules interface {
	// ScheduleCreate stores a new schedule; ErrExists when the name is taken.
	ScheduleCreate(ctx context.Context, s Schedule) (Schedule, error)
	// ScheduleUpdate replaces the cron, zone, report, params, deliveries and policy of
	// the schedule called s.Name; ErrNotFound for an unknown name.
	ScheduleUpdate(ctx context.Context, s Schedule) (Schedule, error)
	// ScheduleGet returns one schedule; ErrNotFound for an unknown name.
	ScheduleGet(ctx context.Context, name string) (Schedule, error)
	// ScheduleList lists schedules by name.
	ScheduleList(ctx context.Context) ([]Schedule, error)
	// ScheduleDelete deletes a schedule; ErrNotFound for an unknown name.
	ScheduleDelete(ctx context.Context, name string) error
	// ScheduleHold holds (true) or resumes (false) a schedule; ErrNotFound for an
	// unknown name.
	ScheduleHold(ctx context.Context, name string, held bool) (Schedule, error)
	// ScheduleFired records an occurrence and its job, unless a later one is recorded.
	ScheduleFired(ctx context.Context, name string, occurrence time.Time, jobID int64) error
}
