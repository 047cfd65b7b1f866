package queue

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// The queue logic that is not SQL: both stores call these, so that the SQLite and the
// MySQL/MariaDB queue validate, deduplicate and decide outcomes the same way, and each
// store keeps only its dialect's statements.

// MaxPriority bounds --priority both ways: the stores keep it negated in a 32-bit
// column (the claim index sorts it ascending), so -MaxPriority..MaxPriority always fits.
const MaxPriority = math.MaxInt32

// MaxScopeLimit bounds the slot rows one concurrency scope may have.
const MaxScopeLimit = 10000

// Normalize checks an enqueue request and fills its defaults (kind report, params {},
// the default max attempts). Errors wrap ErrInvalid and name the field.
func (p *JobEnqueueParams) Normalize() error {
	if p.Kind == "" {
		p.Kind = KindReport
	}
	if p.Kind != KindReport && p.Kind != KindETL && p.Kind != KindDeliver {
		return fmt.Errorf("kind: %q is not %q, %q or %q: %w", p.Kind, KindReport, KindETL, KindDeliver, ErrInvalid)
	}
	if p.Report == "" {
		return fmt.Errorf("report: empty: %w", ErrInvalid)
	}
	if len(p.Params) == 0 {
		p.Params = json.RawMessage("{}")
	} else if !json.Valid(p.Params) {
		return fmt.Errorf("params: not valid JSON: %w", ErrInvalid)
	}
	if p.Priority > MaxPriority || p.Priority < -MaxPriority {
		return fmt.Errorf("priority: %d is outside -%d..%d: %w", p.Priority, MaxPriority, MaxPriority, ErrInvalid)
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.Timeout < 0 {
		return fmt.Errorf("timeout: %s is negative: %w", p.Timeout, ErrInvalid)
	}
	for i, sc := range p.Scopes {
		if sc.Name == "" {
			return fmt.Errorf("scopes[%d]: empty name: %w", i, ErrInvalid)
		}
		if sc.Limit > MaxScopeLimit {
			return fmt.Errorf("scopes[%d] %s: limit %d above %d: %w", i, sc.Name, sc.Limit, MaxScopeLimit, ErrInvalid)
		}
	}
	if p.Definition == nil {
		p.Definition = []byte{}
	}
	return p.CheckAfter()
}

// RouteJSON and ScopesJSON are the stored forms of a job's route and scopes: never
// JSON null, so readers can always decode an object or an array.
func (p *JobEnqueueParams) RouteJSON() string { return LabelsJSON(p.Route) }

// ScopesJSON: see RouteJSON.
func (p *JobEnqueueParams) ScopesJSON() string {
	scopes := p.Scopes
	if scopes == nil {
		scopes = []Scope{}
	}
	b, _ := json.Marshal(scopes) // a []Scope of strings and ints always encodes
	return string(b)
}

// LabelsJSON encodes a label set (a route, an agent's labels) as a JSON object, {} for none.
func LabelsJSON(m map[string]string) string {
	if m == nil {
		m = map[string]string{}
	}
	b, _ := json.Marshal(m) // a map of strings always encodes
	return string(b)
}

// ExistingKey is one unique column an enqueue looks up to return the job already there.
type ExistingKey struct {
	Column, Value string
}

// ExistingKeys lists, in the order they win, the keys that make an enqueue return an
// existing job: the submit token (the same submit retried), the once key (this
// occurrence already queued, whatever became of it), the active dedupe key (a job
// with this key is queued or running). Only the keys the request sets are listed.
func (p *JobEnqueueParams) ExistingKeys() []ExistingKey {
	var out []ExistingKey
	for _, k := range []ExistingKey{
		{"submit_token", p.SubmitToken}, {"once_key", p.OnceKey}, {"dedupe_active", p.DedupeKey},
	} {
		if k.Value != "" {
			out = append(out, k)
		}
	}
	return out
}

// LeasedJob is what ending an attempt needs to know about a running job: its failures
// so far, its attempt budget, whether cancel was requested and who held it.
type LeasedJob struct {
	ID              int64
	Failures, Max   int
	CancelRequested bool
	Owner           string
}

// AttemptEnd is how an attempt that did not succeed ends.
type AttemptEnd struct {
	Status   Status        // queued (retry), failed or cancelled
	Event    string        // retry_scheduled, failed or cancelled
	Failures int           // the job's failures after this attempt
	RetryIn  time.Duration // for a retry: the wait before it may be claimed again
}

// EndAttempt decides how a failed attempt ends: a job whose cancel was requested ends
// cancelled (its error is most likely the cancel itself); a retryable error below
// max_attempts queues it again after retryDelay(failures); anything else fails it.
func EndAttempt(j LeasedJob, retryable bool, retryDelay func(failures int) time.Duration) AttemptEnd {
	failures := j.Failures + 1
	switch {
	case j.CancelRequested:
		return AttemptEnd{Status: StatusCancelled, Event: EventCancelled, Failures: j.Failures}
	case retryable && failures < j.Max:
		return AttemptEnd{Status: StatusQueued, Event: EventRetryScheduled, Failures: failures, RetryIn: retryDelay(failures)}
	}
	return AttemptEnd{Status: StatusFailed, Event: EventFailed, Failures: failures}
}

// Release decides how a job given back without a failure (drain, self-fence, a lost
// claim answer) ends: queued again, or cancelled when its cancel was requested.
func Release(cancelRequested bool) (Status, string) {
	if cancelRequested {
		return StatusCancelled, EventCancelled
	}
	return StatusQueued, EventReleased
}

// ScanLeasedJobs reads rows of (id, cancel requested, owner) and, when the query selects
// them, (failures, max_attempts) after those: the running jobs a release or rescue ends.
func ScanLeasedJobs(rows *sql.Rows, withFailures bool) ([]LeasedJob, error) {
	defer rows.Close()
	var out []LeasedJob
	for rows.Next() {
		var j LeasedJob
		dest := []any{&j.ID, &j.CancelRequested, &j.Owner}
		if withFailures {
			dest = append(dest, &j.Failures, &j.Max)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// CheckPause validates PauseSet's arguments.
func CheckPause(kind, name string) error {
	if kind != PauseReport && kind != PauseSource {
		return fmt.Errorf("%w: kind: %q is not %q or %q", ErrInvalid, kind, PauseReport, PauseSource)
	}
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("%w: name: empty", ErrInvalid)
	}
	return nil
}

// RescueError is the error recorded for an attempt whose lease expired.
func RescueError(owner string) string {
	if owner == "" {
		return "lease expired"
	}
	return fmt.Sprintf("lease of agent %s expired", owner)
}
