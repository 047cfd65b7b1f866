// Package queue is the job queue of rpt: the job model, the Store interface that both
// the SQLite (one machine) and MySQL/MariaDB (many nodes) implementations satisfy, and
// their embedded migrations. The rules every Store obeys are ARCHITECTURE.md's "Queue
// semantics"; queuetest holds the conformance suite that checks them on every store.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Status is where a job is in its life.
type Status string

const (
	StatusQueued    Status = "queued"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

// Terminal reports whether no further change can happen to a job in this status.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCancelled
}

// Kind is what a job runs.
type Kind string

const (
	KindReport Kind = "report"
	KindETL    Kind = "etl"
)

// Origin says where a submit came from.
const (
	OriginCLI  = "cli"
	OriginCron = "cron"
	OriginAPI  = "api"
	OriginWeb  = "web"
	// OriginNeeds: an ETL job an agent queued because a report it claimed needs
	// fresher data (a report definition's needs:).
	OriginNeeds = "needs"
)

// Event names recorded in rpt_job_events and published over MQTT.
const (
	EventQueued         = "queued"
	EventRunning        = "running"
	EventProgress       = "progress"
	EventRetryScheduled = "retry_scheduled"
	EventReleased       = "released"
	// EventWaiting: a running job was put back to wait for something it needs (a
	// report's stale data being reloaded), not before a delay and with no failure
	// counted; the event's error says what it waits for.
	EventWaiting         = "waiting"
	EventSucceeded       = "succeeded"
	EventFailed          = "failed"
	EventCancelled       = "cancelled"
	EventCancelRequested = "cancel_requested"
)

// Scope is one concurrency limit a job is subject to: "report:NAME", "source:NAME"
// or "group:NAME", with at most Limit jobs of the scope running across all agents.
type Scope struct {
	Name  string `json:"scope"`
	Limit int    `json:"limit"`
}

// Job is one row of rpt_jobs. Times are UTC and written by the database.
type Job struct {
	ID                int64             `json:"id"`
	Kind              Kind              `json:"kind"`
	Report            string            `json:"report"`
	Definition        []byte            `json:"-"` // the definition snapshot (YAML) the agent runs
	DefinitionSHA256  string            `json:"definition_sha256"`
	Params            json.RawMessage   `json:"params"` // resolved at submit: {"name": value}
	Source            string            `json:"source"`
	Route             map[string]string `json:"route,omitempty"`  // labels an agent must have
	Scopes            []Scope           `json:"scopes,omitempty"` // concurrency limits
	Priority          int               `json:"priority"`         // higher runs first
	Status            Status            `json:"status"`
	Attempt           int               `json:"attempt"`  // claims so far; never decreases
	Failures          int               `json:"failures"` // errors and lease-expiry rescues
	MaxAttempts       int               `json:"max_attempts"`
	RunAfter          time.Time         `json:"run_after"`
	LeaseToken        string            `json:"-"`
	LeaseOwner        string            `json:"agent,omitempty"`
	LeaseExpires      *time.Time        `json:"lease_expires,omitempty"`
	CancelRequestedAt *time.Time        `json:"cancel_requested_at,omitempty"`
	DedupeKey         string            `json:"dedupe_key,omitempty"`
	OnceKey           string            `json:"once_key,omitempty"`
	SubmitToken       string            `json:"submit_token,omitempty"`
	ResultAttempt     int               `json:"result_attempt,omitempty"` // the attempt whose result counts
	Rows              int64             `json:"rows"`
	Error             string            `json:"error,omitempty"`
	RetryOf           int64             `json:"retry_of,omitempty"`
	SubmittedBy       string            `json:"submitted_by,omitempty"`
	Origin            string            `json:"origin,omitempty"`
	Timeout           time.Duration     `json:"-"` // from the definition; 0 means none
	CreatedAt         time.Time         `json:"created_at"`
	StartedAt         *time.Time        `json:"started_at"`
	FinishedAt        *time.Time        `json:"finished_at"`
	// ResultStore names the results store holding the result ("" for jobs finished
	// before it was recorded: the queue database); ResultChunks is its chunk count (0:
	// not recorded). Both are written by JobComplete.
	ResultStore  string `json:"result_store,omitempty"`
	ResultChunks int    `json:"result_chunks,omitempty"`
	// Read says where and when the succeeded attempt read its data (nil: not recorded,
	// as for a job completed by an older agent or a kind that reads no source).
	Read *ReadInfo `json:"read,omitempty"`
}

// ReadInfo is where and when a report's data was read: the source's rpt.yaml name, its
// kind (the driver: plexws and odbc read Plex live, mysql, sqlite and sqlserver a copy
// or the demo) and when the query started (UTC).
type ReadInfo struct {
	Source string    `json:"source"`
	Kind   string    `json:"kind"`
	At     time.Time `json:"at"`
	// Loads are the last loads of the ETLs that fill the warehouse tables the report
	// read (its definition's needs: and loaded_by:), as the warehouse's ETL state had
	// them when the query started: how old the copy was. Empty when the definition
	// names none, or the warehouse keeps no ETL state.
	Loads []ETLLoad `json:"loads,omitempty"`
}

// ETLLoad is an ETL's last successful load as a report read it.
type ETLLoad struct {
	ETL string     `json:"etl"`
	At  *time.Time `json:"at"` // UTC; nil: never loaded
}

// LoadsJSON is the read_loads column's value of r: a JSON array, or nil when there
// are no loads (both stores).
func (r *ReadInfo) LoadsJSON() any {
	if r == nil || len(r.Loads) == 0 {
		return nil
	}
	b, err := json.Marshal(r.Loads)
	if err != nil {
		return nil
	}
	return string(b)
}

// SetLoadsJSON reads a read_loads column's value into r.Loads ("" leaves none).
func (r *ReadInfo) SetLoadsJSON(s string) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), &r.Loads)
}

// Lease identifies one claim of a job. Every agent write about a job is fenced by it:
// it applies only while the job is running under this token.
type Lease struct {
	JobID   int64
	Token   string
	Attempt int
}

// Lease returns the lease the job was claimed under.
func (j *Job) Lease() Lease { return Lease{JobID: j.ID, Token: j.LeaseToken, Attempt: j.Attempt} }

// Completion is what JobComplete records about a succeeded attempt.
type Completion struct {
	Rows int64
	// ResultStore names the results store the attempt wrote its result to (rpt.yaml
	// results:); "" when the job kind keeps no result.
	ResultStore string
	// ResultChunks is how many chunks the result has, so that a reader can tell a
	// complete result from one cut short (0: not known).
	ResultChunks int
	// Chunk, when not nil, is chunk 0 of the attempt's result, stored in the queue
	// database's results table (results.InQueue) by the completion's own transaction:
	// a small result costs no commit of its own. ResultChunks is then 1.
	Chunk []byte
	// Read, when not nil, is where and when the attempt read its data.
	Read *ReadInfo
}

// BatchEnqueuer is a Store that enqueues many jobs in one transaction (a fan-out,
// `rpt submit --from`): a few statements and one durable commit for all of them. Both
// stores implement it.
type BatchEnqueuer interface {
	// JobEnqueueBatch enqueues the jobs in one transaction, all or nothing: results[i]
	// is what JobEnqueue would have returned for ps[i] had the jobs been enqueued one
	// after the other, so a submit token, once key or active dedupe key that an earlier
	// job of the same batch holds returns that job (Existing). An invalid job is an
	// error naming its index (from 0), and nothing is enqueued.
	JobEnqueueBatch(ctx context.Context, ps []JobEnqueueParams) ([]JobEnqueueResult, error)
}

// CompleteItem is one completion of a JobCompleteBatch.
type CompleteItem struct {
	Lease      Lease
	Completion Completion
}

// BatchCompleter is a Store that completes many leases in one transaction and can take
// the next claim in the same transaction: an agent whose jobs finish together pays one
// round trip and one durable commit for all of them. Both stores implement it.
type BatchCompleter interface {
	// JobCompleteBatch does what JobComplete does for each item, in one transaction.
	// Each item is fenced by its own lease: errs[i] is ErrLeaseLost for an item whose
	// lease no longer holds, and the others complete all the same. When claim is not
	// nil, a JobClaim with those parameters runs in the same transaction after the
	// completions, and its jobs are returned. err is for the whole call (nothing was
	// written); errs is then nil.
	JobCompleteBatch(ctx context.Context, items []CompleteItem, claim *JobClaimParams) (errs []error, claimed []*Job, err error)
}

// JobEnqueueParams is a new job. Definition, Params and the rest are taken as given:
// reportdefs resolves and validates them before they get here.
type JobEnqueueParams struct {
	Kind             Kind
	Report           string
	Definition       []byte
	DefinitionSHA256 string
	Params           json.RawMessage
	Source           string
	Route            map[string]string
	Scopes           []Scope
	Priority         int
	MaxAttempts      int
	RunAfter         *time.Time // nil: now (database clock)
	Timeout          time.Duration
	DedupeKey        string // while a job with this key is queued or running, enqueue returns it
	OnceKey          string // never reused: enqueue returns the job that has it, whatever its status
	SubmitToken      string // client idempotency token
	RetryOf          int64
	SubmittedBy      string
	Origin           string
	// After are the jobs this one waits for (deps.go): it is not claimable until all of
	// them have succeeded, and ends failed or cancelled, naming the one, when one does
	// not. Not with RunAfter, nor in a batch. A job an existing key returns keeps its own.
	After []int64
}

// JobEnqueueResult is the enqueued job, or the existing one a dedupe, once or submit
// key matched (Existing true).
type JobEnqueueResult struct {
	Job      *Job
	Existing bool
}

// JobClaimParams asks for up to Limit jobs for one agent.
type JobClaimParams struct {
	Agent         string
	Sources       []string          // the sources this agent can run; empty: any
	Labels        map[string]string // this agent's labels; a job's Route must be a subset
	Limit         int
	LeaseDuration time.Duration
	// Tokens, when given, are the lease tokens of the claimed jobs in claim order: the
	// caller knows them before the answer, so it can give back with JobReleaseTokens a
	// claim that committed while its answer was lost. Missing ones are made up.
	Tokens []string
}

// Check refuses claim parameters no store can act on: an empty agent name or a lease
// duration that is not positive.
func (p JobClaimParams) Check() error {
	if p.Agent == "" {
		return errors.New("claim jobs: agent: empty")
	}
	if p.LeaseDuration <= 0 {
		return fmt.Errorf("claim jobs: lease duration: %s is not positive", p.LeaseDuration)
	}
	return nil
}

// Token is the lease token of the i-th job a claim takes.
func (p JobClaimParams) Token(i int) string {
	if i < len(p.Tokens) && p.Tokens[i] != "" {
		return p.Tokens[i]
	}
	return NewLeaseToken()
}

// JobFailParams records an attempt's error. Retryable errors are queued again with
// exponential backoff and jitter while failures < max_attempts.
type JobFailParams struct {
	Error     string
	Retryable bool
}

// JobListParams filters a listing, newest first.
type JobListParams struct {
	Status Status
	Report string
	Limit  int
	// Before, when set, keeps jobs with an id below it: the next page of a listing
	// (keyset paging, stable while new jobs arrive).
	Before int64
	// Params, when set, keeps jobs whose resolved params contain these values (rpt get --latest -p).
	Params map[string]any
}

// Heartbeat is what an agent learns when it renews a lease.
type Heartbeat struct {
	CancelRequested bool
}

// Event is one row of rpt_job_events: Seq increases globally.
type Event struct {
	Seq     int64     `json:"seq"`
	JobID   int64     `json:"id"`
	Report  string    `json:"report"`
	Event   string    `json:"event"`
	Status  Status    `json:"status"`
	Attempt int       `json:"attempt"`
	Agent   string    `json:"agent,omitempty"`
	Rows    int64     `json:"rows"`
	Error   string    `json:"error,omitempty"`
	At      time.Time `json:"at"`
	// By is who caused the event: the submitter of a queued job (of a retry, who
	// retried), who cancelled; empty for what agents do.
	By string `json:"by,omitempty"`
}

// Agent is one row of rpt_agents.
type Agent struct {
	Name           string            `json:"name"`
	Host           string            `json:"host"`
	Labels         map[string]string `json:"labels,omitempty"`
	Sources        []string          `json:"sources,omitempty"`
	Version        string            `json:"version"`
	Running        int               `json:"running"`
	Draining       bool              `json:"draining"`        // the agent says it is draining
	DrainRequested bool              `json:"drain_requested"` // rpt agents drain asked it to
	LastSeen       time.Time         `json:"last_seen"`
}

// Errors a Store returns; callers test them with errors.Is.
var (
	// ErrLeaseLost: the fenced write matched no row: the job is no longer running under
	// this lease (rescued, cancelled, released). The agent must stop the job at once.
	ErrLeaseLost = errors.New("lease lost")
	// ErrNotFound: no job (or agent) with that id.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable wraps errors reaching the queue database.
	ErrUnavailable = errors.New("queue database unavailable")
	// ErrFull wraps a write the queue database refused for want of space (SQLite's
	// SQLITE_FULL, MySQL's "table is full" or "disk full"). The database answers: reads
	// and deletes still work, so pruning and discarding partial results free room.
	ErrFull = errors.New("queue database full")
)

// Waiter puts a running job back to wait: queued again, claimable no sooner than after
// (by the database clock), without counting a failure, its error and its "waiting"
// event saying why (reason). A job whose cancel was requested ends cancelled instead.
// Both stores implement it; the agent asserts it, so a store without it (a fake)
// falls back to a plain release.
type Waiter interface {
	JobWait(ctx context.Context, l Lease, after time.Duration, reason string) error
}

// Store is the queue. Every method is safe for concurrent use by many goroutines and
// many processes sharing one database; no transaction stays open between calls.
type Store interface {
	Operations
	Settings
	Definitions
	Tokens
	Deliveries
	Schedules

	// JobEnqueue inserts a queued job and its "queued" event, or returns the job an
	// active dedupe key, a once key or a submit token already names.
	JobEnqueue(ctx context.Context, p JobEnqueueParams) (JobEnqueueResult, error)
	// JobClaim claims up to p.Limit runnable jobs in claim order (priority desc,
	// run_after, id), taking a free slot of every scope, issuing a new lease token each.
	JobClaim(ctx context.Context, p JobClaimParams) ([]*Job, error)
	// JobHeartbeat renews the lease and records rows so far (a "progress" event when
	// rows changed). ErrLeaseLost when fenced out.
	JobHeartbeat(ctx context.Context, l Lease, rows int64, leaseDuration time.Duration) (Heartbeat, error)
	// JobComplete marks the job succeeded with its row count and where its result lives;
	// the lease's attempt is the result attempt. Frees slots.
	JobComplete(ctx context.Context, l Lease, c Completion) error
	// JobFail records an error: queued again after backoff (retry_scheduled) or failed.
	// It returns the job's resulting status.
	JobFail(ctx context.Context, l Lease, p JobFailParams) (Status, error)
	// JobCancelled ends a running job whose cancel was requested as cancelled.
	JobCancelled(ctx context.Context, l Lease) error
	// JobRelease returns a running job to the queue without counting a failure (drain,
	// self-fence).
	JobRelease(ctx context.Context, l Lease) error
	// JobReleaseTokens returns to the queue, without counting a failure, the running jobs
	// that hold one of these lease tokens: the jobs of a claim whose answer never came
	// back (JobClaimParams.Tokens). It returns how many it released.
	JobReleaseTokens(ctx context.Context, tokens []string) (int, error)
	// JobCancel cancels a queued job at once, or requests cancel of a running one, by
	// whom (recorded on the event; "" for nobody named). It returns the job after the
	// change; a finished job is returned unchanged.
	JobCancel(ctx context.Context, id int64, by string) (*Job, error)
	// JobRescue returns jobs whose lease expired to the queue (counting a failure), or
	// fails them after max_attempts, or cancels them when cancel was requested.
	JobRescue(ctx context.Context) (int, error)
	JobGet(ctx context.Context, id int64) (*Job, error)
	JobList(ctx context.Context, p JobListParams) ([]*Job, error)
	// EventList returns events with seq > afterSeq, for one job when jobID != 0.
	EventList(ctx context.Context, jobID int64, afterSeq int64, limit int) ([]Event, error)

	// The chunks of results kept in the queue database (the default results store).
	// Only results.InQueue calls these; everything else goes through a results.Store.
	//
	// ResultChunkPut stores one chunk of the lease's attempt; fenced.
	ResultChunkPut(ctx context.Context, l Lease, seq int, data []byte) error
	// ResultChunkGet returns chunk seq (0, 1, ...) of (job, attempt); ErrNotFound past
	// the last one. Readers pull one chunk at a time, so memory stays flat.
	ResultChunkGet(ctx context.Context, jobID int64, attempt int, seq int) ([]byte, error)
	// ResultChunkDelete deletes every chunk of (job, attempt) unless that attempt is the
	// job's succeeded result: an attempt that failed frees its space at once. It
	// returns how many chunks it deleted.
	ResultChunkDelete(ctx context.Context, jobID int64, attempt int) (int, error)

	// AgentHeartbeat records an agent's presence (upsert). It never clears DrainRequested.
	AgentHeartbeat(ctx context.Context, a Agent) error
	AgentList(ctx context.Context) ([]Agent, error)

	// Migrate brings the schema to the newest version; MigrationStatus lists versions.
	Migrate(ctx context.Context) error
	MigrationStatus(ctx context.Context) ([]Migration, error)
	Close() error
}

// QueueStats summarises the queue.
type QueueStats struct {
	Queued          int // queued and due
	Scheduled       int // queued with run_after in the future
	Running         int
	OldestQueuedAge time.Duration // age of the oldest due queued job (0 when none)
	SlotsInUse      map[string]int
	// Waiting breaks the due queued jobs down by report and source, ordered by both.
	Waiting []QueueWaiting
}

// QueueWaiting is how many due queued jobs one report has on one source, and how long
// the oldest of them has waited.
type QueueWaiting struct {
	Report, Source  string
	Queued          int
	OldestQueuedAge time.Duration
}

// PruneParams are the retention cut-offs, as times computed by the caller from the
// configured retention (results 7 days, jobs 90 days by default).
type PruneParams struct {
	ResultsBefore time.Time
	JobsBefore    time.Time
}

// PruneResult counts what Prune deleted.
type PruneResult struct {
	ResultJobs int // jobs whose result chunks were deleted
	Jobs       int // jobs deleted with their events
}

// Operations is what plant IT runs the queue with: pauses, drains, slot usage, stats
// and retention. Every Store implements it.
type Operations interface {
	// AgentGet returns one agent; ErrNotFound for an unknown one. An agent reads its own
	// row to learn that a drain was requested.
	AgentGet(ctx context.Context, name string) (Agent, error)
	// PauseSet pauses (paused true) or resumes claims of a report's or a source's jobs
	// (kind PauseReport or PauseSource); idempotent. PauseList lists the pauses.
	PauseSet(ctx context.Context, kind, name string, paused bool) error
	PauseList(ctx context.Context) ([]Pause, error)
	// AgentDrain asks an agent to stop claiming and finish its work (sets DrainRequested);
	// the agent learns of it from AgentGet. ErrNotFound for an unknown agent.
	AgentDrain(ctx context.Context, name string) error
	// AgentUndrain withdraws a drain request (rpt agents undrain; a new agent process
	// of the same name, since agents named after their node outlive a restart); an
	// agent already draining finishes draining. ErrNotFound for an unknown agent.
	AgentUndrain(ctx context.Context, name string) error
	// EventLastSeq is the highest event seq (0 when there are none): where a watcher
	// that wants only news starts.
	EventLastSeq(ctx context.Context) (int64, error)
	// SlotUsage counts taken slots by scope.
	SlotUsage(ctx context.Context) (map[string]int, error)
	// QueueStats is what /metrics reports about the queue as a whole.
	QueueStats(ctx context.Context) (QueueStats, error)
	// Prune deletes result chunks of jobs finished before ResultsBefore and finished jobs
	// (with their events and chunks) finished before JobsBefore. Queued and running jobs
	// are never touched.
	Prune(ctx context.Context, p PruneParams) (PruneResult, error)
}

// Settings are small named values kept with the queue (rpt_settings), so that every
// process pointed at the same queue finds them without configuration: the embedded
// broker's generated credentials. Settings (rpt_settings) are readable by every role;
// agent secrets (rpt_agent_secrets) only by the agent and admin roles, where the
// database's grants keep roles apart (the README's MySQL grants), so a submitter cannot
// read the agent's broker password.
type Settings interface {
	// SettingGet returns a setting's value; ErrNotFound when it is not set.
	SettingGet(ctx context.Context, name string) (string, error)
	// SettingInit stores value under name unless the name is set already, and returns
	// the value stored: of several processes initialising one name at once, all get
	// the first one's value.
	SettingInit(ctx context.Context, name, value string) (string, error)
	// AgentSecretGet and AgentSecretInit are SettingGet and SettingInit on the agent
	// secrets (a separate name space).
	AgentSecretGet(ctx context.Context, name string) (string, error)
	AgentSecretInit(ctx context.Context, name, value string) (string, error)
}

// Migration is one embedded schema version and whether it is applied.
type Migration struct {
	Version   int64      `json:"version"`
	Name      string     `json:"name"`
	AppliedAt *time.Time `json:"applied_at"`
}
