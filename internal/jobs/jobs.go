// Package jobs is the one way every front door (the command line now, the HTTP API and
// the cron runner to come) submits, cancels, retries, finds, describes and waits for
// jobs, so that they all do it exactly alike. Inputs are plain structs; printing,
// flags and prompts stay with the caller. Errors carry an errclass class (Class maps
// the building blocks' sentinels), so each front door answers them from one table.
// See ARCHITECTURE.md, "Packages".
package jobs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"sort"
	"strings"
	"time"

	"rpt/internal/config"
	"rpt/internal/deliver"
	"rpt/internal/errclass"
	"rpt/internal/queue"
	"rpt/internal/source"
	"rpt/reportdefs"
)

// Service is the job front door over one queue and one configuration.
type Service struct {
	Store  queue.Store
	Config *config.Config // sources, report folders; File names it in messages
	// Loc is the configured time zone: relative parameters (yesterday, last-month)
	// and local times are read in it. nil: UTC.
	Loc *time.Location
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// RetryQueue runs a queue call again while the queue database does not answer, by
	// the front door's policy (the CLI's --retry-for); nil: once.
	RetryQueue func(ctx context.Context, op func(ctx context.Context) error) error
	// Publisher, when set, is told of new jobs (wake agents) and of cancels of running
	// ones, so agents learn at once instead of at their next poll or heartbeat.
	Publisher Publisher
	// SubmittedBy names who submits ("user@host"); empty: Submitter().
	SubmittedBy string

	// catalog, when set, is the catalogue read once for a SubmitMany (reading it per
	// job parsed every definition twice a job).
	catalog *reportdefs.Catalog
}

// Publisher is the part of the MQTT client a Service uses.
type Publisher interface {
	PublishWake()
	PublishCancel(id int64)
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Service) loc() *time.Location {
	if s.Loc == nil {
		return time.UTC
	}
	return s.Loc
}

func (s *Service) retry(ctx context.Context, op func(ctx context.Context) error) error {
	if s.RetryQueue == nil {
		return op(ctx)
	}
	return s.RetryQueue(ctx, op)
}

func (s *Service) submittedBy() string {
	if s.SubmittedBy != "" {
		return s.SubmittedBy
	}
	return Submitter()
}

// Catalog loads the report definitions: the shipped ones and the configured folders.
func (s *Service) Catalog() (*reportdefs.Catalog, error) {
	if s.catalog != nil {
		return s.catalog, nil
	}
	var dirs []string
	if s.Config != nil {
		dirs = s.Config.Reports
	}
	return reportdefs.LoadCatalog(dirs...)
}

func (s *Service) sources() map[string]source.Config {
	if s.Config == nil {
		return nil
	}
	return s.Config.Sources
}

// SourceConfig is the configuration of a named source; a name that is not configured
// is invalid input naming the configured ones.
func (s *Service) SourceConfig(name string) (source.Config, error) {
	sc, ok := s.sources()[name]
	if !ok {
		return source.Config{}, fmt.Errorf("%w: source %q is not configured (sources: %s)", config.ErrInvalid, name, strings.Join(SourceNames(s.sources()), ", "))
	}
	return sc, nil
}

// SourceNames lists source names, sorted.
func SourceNames(m map[string]source.Config) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Priorities a job may have: what both queue stores hold (queue.MaxPriority). The
// stores refuse others too; checking here names the field the caller gave.
const (
	MaxPriority = queue.MaxPriority
	MinPriority = -MaxPriority
)

// CheckPriority refuses a priority the queue cannot hold; the error names "priority"
// so a front door can prefix its own spelling (--priority, "priority" in JSON).
func CheckPriority(p int) error {
	if p < MinPriority || p > MaxPriority {
		return errclass.Errorf(errclass.Invalid, "priority %d: out of range (want %d to %d; higher runs first)", p, MinPriority, MaxPriority)
	}
	return nil
}

// MinOncePer is the shortest --once-per bucket: once keys are made at minute precision.
const MinOncePer = time.Minute

// SubmitRequest is one run to queue, from the command line, cron or the API.
type SubmitRequest struct {
	Report   string
	Params   map[string]string // as given: relative words are resolved by Submit
	Priority int
	At       *time.Time // run at or after; nil: now
	Dedupe   string     // while a job with this key is queued or running, return it
	OncePer  time.Duration
	// Occurrence is the instant this submit stands for (a cron occurrence); zero: now.
	// Relative parameters and the once key are resolved at it, in the configured zone.
	Occurrence time.Time
	// Token makes a retried submit idempotent; empty: Submit makes one of its own.
	Token  string
	Origin string // queue.OriginCLI, OriginCron, ...
	// Deliver are where the result goes once the report succeeds (mailto:ADDR,
	// https://URL; deliver.Parse), checked against rpt.yaml's deliver: allow lists.
	// The definition's deliver: block adds its own. Errors name DeliverField.
	Deliver      []string
	DeliverField string // how the caller spells the field in errors; default "deliver"
	// OnceKey, when set, is the once key as given, instead of one made from OncePer: a
	// database schedule's name and occurrence ("schedule:NAME@TIME").
	OnceKey string
}

// SubmitResult is the queued job, or the existing one a key matched.
type SubmitResult struct {
	Job *queue.Job
	// Existing: a dedupe key, once key or the caller's token named a job that was
	// already there.
	Existing bool
	// Queued: this call queued the job (also when an earlier try of this call, whose
	// answer was lost, did: Submit's own token found it).
	Queued bool
}

// Submit resolves a report's parameters (relative dates at the occurrence, or now, in
// the configured time zone) and queues the run with its definition snapshot.
//
// The clock is read once, before the first queue call: retries of an unanswered
// enqueue (RetryQueue) reuse the same resolved parameters and once key, so a retry that
// crosses a --once-per bucket boundary cannot queue the occurrence a second time.
func (s *Service) Submit(ctx context.Context, r SubmitRequest) (SubmitResult, error) {
	p, targets, err := s.prepare(r, s.now())
	if err != nil {
		return SubmitResult{}, err
	}
	own := p.SubmitToken == ""
	if own {
		// A token of its own makes retrying an enqueue whose answer was lost safe: the
		// insert may have committed before the connection dropped.
		p.SubmitToken = NewSubmitToken(r.Origin)
	}
	var res queue.JobEnqueueResult
	err = s.retry(ctx, func(ctx context.Context) (err error) {
		res, err = s.Store.JobEnqueue(ctx, p)
		return err
	})
	if err != nil {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", p.Report, err)
	}
	if len(targets) > 0 {
		// After the enqueue, not in its transaction: a submit whose answer is lost is
		// retried with the same token, finds the job and adds the targets then (the
		// add keeps targets the job has already). Agents queue the deliveries of a
		// finished job whenever they find them, so a target added late is still sent.
		err = s.retry(ctx, func(ctx context.Context) error { return s.Store.DeliveryAdd(ctx, res.Job.ID, targets) })
		if err != nil {
			return SubmitResult{}, fmt.Errorf("submit %s: job %d queued, but its deliveries were not recorded (submit again with the same --submit-token): %w", p.Report, res.Job.ID, err)
		}
	}
	out := SubmitResult{Job: res.Job, Existing: res.Existing}
	out.Queued = !res.Existing || (own && res.Job.SubmitToken == p.SubmitToken)
	if out.Queued && s.Publisher != nil {
		s.Publisher.PublishWake()
	}
	return out, nil
}

// prepare checks r and builds the enqueue request at the instant now.
func (s *Service) prepare(r SubmitRequest, now time.Time) (queue.JobEnqueueParams, []string, error) {
	p, err := s.prepareJob(r, now)
	if err != nil {
		return p, nil, err
	}
	targets := r.Deliver
	if def, err := s.definition(r.Report); err == nil && def.Deliver != nil && def.Deliver.Email != nil {
		t := "mailto:" + strings.Join(def.Deliver.Email.To, ",")
		if f := def.Deliver.Email.Format; f != "" && f != "xlsx" {
			t += "?format=" + f
		}
		targets = append(slices.Clone(targets), t)
	}
	var cfg config.Config
	if s.Config != nil {
		cfg = *s.Config
	}
	field := r.DeliverField
	if field == "" {
		field = "deliver"
	}
	canon, err := deliver.Check(targets, field, cfg.Deliver, cfg.SMTP)
	if err != nil {
		return queue.JobEnqueueParams{}, nil, err
	}
	if r.OnceKey != "" {
		p.OnceKey = r.OnceKey
	} else if p.OnceKey != "" && len(canon) > 0 {
		// The deliveries are part of what the occurrence is: the weekly trial balance
		// mailed to accounting and the 19:10 refresh of the same report and hour are
		// two jobs, not one (a shared key would drop the mail on Mondays).
		p.OnceKey = deliverKey(canon) + p.OnceKey
	}
	return p, canon, nil
}

// deliverKey is the once key's prefix for a set of delivery targets.
func deliverKey(targets []string) string {
	sorted := slices.Clone(targets)
	slices.Sort(sorted)
	sum := sha256.Sum256([]byte(strings.Join(sorted, "\n")))
	return "deliver=" + hex.EncodeToString(sum[:8]) + ":"
}

func (s *Service) definition(name string) (*reportdefs.Definition, error) {
	cat, err := s.Catalog()
	if err != nil {
		return nil, err
	}
	return cat.Get(name)
}

func (s *Service) prepareJob(r SubmitRequest, now time.Time) (queue.JobEnqueueParams, error) {
	if err := CheckPriority(r.Priority); err != nil {
		return queue.JobEnqueueParams{}, err
	}
	if r.Dedupe != "" && r.OncePer != 0 {
		return queue.JobEnqueueParams{}, errclass.New(errclass.Invalid, "dedupe and once-per cannot be combined")
	}
	if r.OncePer != 0 && r.OncePer < MinOncePer {
		return queue.JobEnqueueParams{}, errclass.Errorf(errclass.Invalid, "once-per %s: must be at least %s", r.OncePer, MinOncePer)
	}
	cat, err := s.Catalog()
	if err != nil {
		return queue.JobEnqueueParams{}, err
	}
	def, err := cat.Get(r.Report)
	if err != nil {
		return queue.JobEnqueueParams{}, err
	}
	// A job for a source no agent is configured with would wait forever, and a request
	// the source cannot run (a procedure on SQLite) would fail on an agent max_attempts
	// times: the submitting side shares rpt.yaml with the agents, so both are mistakes
	// to report now.
	if err := def.CheckSource(s.sources(), ConfigName(s.Config)); err != nil {
		return queue.JobEnqueueParams{}, err
	}
	// A needs: naming an ETL the agents do not have would fail on the agent.
	if err := CheckNeeds(def); err != nil {
		return queue.JobEnqueueParams{}, err
	}
	at := now
	if !r.Occurrence.IsZero() {
		at = r.Occurrence
	}
	resolved, err := def.Resolve(r.Params, at, s.loc())
	if err != nil {
		return queue.JobEnqueueParams{}, err
	}
	p := def.JobParams(resolved, s.sources())
	p.Priority = r.Priority
	p.RunAfter = r.At
	p.DedupeKey = r.Dedupe
	p.SubmitToken = r.Token
	p.Origin = r.Origin
	p.SubmittedBy = s.submittedBy()
	if r.OncePer > 0 {
		p.OnceKey = OnceKey(def.Name, resolved, at, r.OncePer)
	}
	return p, nil
}

// OnceKey is the key that makes a report with these resolved parameters run at most
// once per bucket of length per: the bucket holding instant at (minute precision,
// buckets counted from the zero time in UTC, so every node computes the same key
// whatever its own time zone).
func OnceKey(report string, resolved json.RawMessage, at time.Time, per time.Duration) string {
	occ := at.UTC().Truncate(time.Minute).Truncate(per)
	return reportdefs.CanonicalKey(report, resolved) + "@" + occ.Format(time.RFC3339)
}

// NewSubmitToken is a random token for a submit that did not bring one, prefixed with
// its origin ("cli-...").
func NewSubmitToken(origin string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	if origin == "" {
		origin = "rpt"
	}
	return origin + "-" + hex.EncodeToString(b[:])
}

// Submitter is "user@host" of this process.
func Submitter() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// ConfigName names where sources come from, for messages.
func ConfigName(c *config.Config) string {
	if c == nil || c.File == "" {
		return "the built-in defaults (no rpt.yaml)"
	}
	return c.File
}

// Get returns one job; an unknown id is queue.ErrNotFound naming it.
func (s *Service) Get(ctx context.Context, id int64) (*queue.Job, error) {
	j, err := s.Store.JobGet(ctx, id)
	if err != nil {
		return nil, jobErr(id, err)
	}
	return j, nil
}

// jobErr names the job once. The stores' errors already carry the id and the
// operation ("get job: job 9: not found"), which read as repeated words; an unknown
// id becomes just "job 9 not found", keeping queue.ErrNotFound in the chain for
// errors.Is and the class (exit 2, HTTP 404). Other errors keep their own text.
func jobErr(id int64, err error) error {
	if errors.Is(err, queue.ErrNotFound) {
		return &errclass.Error{Class: errclass.NotFound, Msg: fmt.Sprintf("job %d not found", id), Err: err}
	}
	if strings.Contains(err.Error(), fmt.Sprintf("job %d", id)) {
		return err
	}
	return fmt.Errorf("job %d: %w", id, err)
}

// List lists jobs, newest first.
func (s *Service) List(ctx context.Context, p queue.JobListParams) ([]*queue.Job, error) {
	jobs, err := s.Store.JobList(ctx, p)
	if err != nil && !strings.HasPrefix(err.Error(), "list jobs") { // the MySQL store names it already
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return jobs, err
}

// Cancel cancels a queued job at once, or asks the agent of a running one to stop it
// (told at once through the Publisher, else at its next heartbeat). It returns the
// job after the change; a finished job comes back unchanged.
func (s *Service) Cancel(ctx context.Context, id int64) (*queue.Job, error) {
	j, err := s.Store.JobCancel(ctx, id, s.submittedBy())
	if err != nil {
		return nil, jobErr(id, err)
	}
	if j.Status == queue.StatusRunning && s.Publisher != nil {
		s.Publisher.PublishCancel(id)
	}
	return j, nil
}

// Retry queues job id again with the same definition snapshot and parameters; the new
// job records which one it retries.
func (s *Service) Retry(ctx context.Context, id int64, origin string) (*queue.Job, error) {
	old, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	res, err := s.Store.JobEnqueue(ctx, queue.JobEnqueueParams{
		Kind: old.Kind, Report: old.Report, Definition: old.Definition, DefinitionSHA256: old.DefinitionSHA256,
		Params: old.Params, Source: old.Source, Route: old.Route, Scopes: old.Scopes, Priority: old.Priority,
		MaxAttempts: old.MaxAttempts, Timeout: old.Timeout, RetryOf: old.ID, SubmittedBy: s.submittedBy(), Origin: origin,
	})
	if err != nil {
		return nil, fmt.Errorf("retry job %d: %w", id, err)
	}
	if s.Publisher != nil {
		s.Publisher.PublishWake()
	}
	return res.Job, nil
}

// Latest finds the newest succeeded run of report whose parameters match those given
// (compared after resolving, so start_period=last-month works).
func (s *Service) Latest(ctx context.Context, report string, given map[string]string) (*queue.Job, error) {
	p := queue.JobListParams{Status: queue.StatusSucceeded, Report: report, Limit: 1}
	if len(given) > 0 {
		cat, err := s.Catalog()
		if err != nil {
			return nil, err
		}
		def, err := cat.Get(report)
		if err != nil {
			return nil, err
		}
		resolved, err := def.Resolve(given, s.now(), s.loc())
		if err != nil {
			return nil, err
		}
		var all map[string]any
		if err := json.Unmarshal(resolved, &all); err != nil {
			return nil, fmt.Errorf("resolved params: %w", err)
		}
		p.Params = map[string]any{}
		for name := range given {
			p.Params[name] = all[name]
		}
	}
	jobs, err := s.Store.JobList(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("find latest %s: %w", report, err)
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("%w: no succeeded run of %s matches", queue.ErrNotFound, report)
	}
	return jobs[0], nil
}
