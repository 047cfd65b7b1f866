// Package agent is the rpt daemon that runs queued jobs: it claims as many jobs as it
// has free capacity for, runs each job's definition snapshot against its source,
// streams the rows into the result store, and keeps the job's lease alive with
// heartbeats. Every write about a job is fenced by its lease (ARCHITECTURE.md, "Queue
// semantics"); when the queue database stops answering, the agent stops its own jobs
// before their leases can expire (self-fencing) and releases them once it answers again,
// so no job ever runs twice at the same time.
//
// How an attempt ends:
//   - rows all stored: JobComplete with the result's store and chunk count (also when a
//     timeout or shutdown arrives as it finishes)
//   - cancel requested (seen by a heartbeat): the query is killed, JobCancelled
//   - timeout: the query is killed, JobFail "timeout after D", not retryable
//   - lease lost (a heartbeat or chunk write is fenced out): the query is killed, nothing written
//   - self-fenced, or the queue database stopped answering while storing rows: the query
//     is killed, JobRelease (retried until the database answers), never JobComplete
//   - the results store failed (disk full, an I/O error: results.ErrUnavailable), or the
//     completion could not be written for such a fault: JobFail, retryable, so the job
//     runs again later or on another agent
//   - shutdown after Grace: the query is killed, JobRelease (no failure counted)
//   - invalid definition, parameters or column types (reportdefs.ErrInvalid), a request the
//     source cannot run (source.ErrRequest, source.ErrNotBuilt), a job kind without a
//     runner here, or a panic: JobFail, not retryable
//   - any other error, source.ErrUnavailable included: JobFail, retryable (the store counts
//     failures against max_attempts)
//
// Whatever the end other than success, the attempt's partial result is discarded first
// (results.Store.Discard), so a full disk is freed before the outcome is written; only
// a self-fenced attempt leaves it to retention, as its database is not answering.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"rpt/internal/deliver"
	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/internal/source"
)

// Store is the part of the queue the agent uses. queue.Store satisfies it; so does any
// fake in tests. AgentGet tells the agent a drain was requested, QueueStats feeds
// /metrics and Prune is the background pruner's (finished jobs; results are pruned
// through the results store).
type Store interface {
	JobClaim(ctx context.Context, p queue.JobClaimParams) ([]*queue.Job, error)
	JobHeartbeat(ctx context.Context, l queue.Lease, rows int64, leaseDuration time.Duration) (queue.Heartbeat, error)
	JobComplete(ctx context.Context, l queue.Lease, c queue.Completion) error
	JobFail(ctx context.Context, l queue.Lease, p queue.JobFailParams) (queue.Status, error)
	JobCancelled(ctx context.Context, l queue.Lease) error
	JobRelease(ctx context.Context, l queue.Lease) error
	JobReleaseTokens(ctx context.Context, tokens []string) (int, error)
	JobRescue(ctx context.Context) (int, error)
	AgentHeartbeat(ctx context.Context, a queue.Agent) error
	AgentGet(ctx context.Context, name string) (queue.Agent, error)
	AgentUndrain(ctx context.Context, name string) error
	QueueStats(ctx context.Context) (queue.QueueStats, error)
	Prune(ctx context.Context, p queue.PruneParams) (queue.PruneResult, error)
	// DefinitionGet finds a published definition: the agent runs a job's snapshot only
	// when it is published or in the agent's own catalogue (trust.go).
	DefinitionGet(ctx context.Context, sha256 string) (queue.PublishedDefinition, error)
}

// SourceOpener opens the named source. The agent opens each source once, on its first
// job, keeps it for the jobs after (one connection pool per source) and closes it when
// Run returns.
type SourceOpener func(ctx context.Context, name string) (source.Source, error)

// Config tunes an Agent. Zero values take the defaults.
type Config struct {
	// Name identifies the agent in the queue (lease owner, rpt agents list); default
	// hostname-pid.
	Name string
	// Labels are matched against a job's route (plant=albion). The agent adds its
	// capability labels (rpt/kind.report, rpt/feature.procedure; see runner.go) and
	// ignores any rpt/ label given here.
	Labels map[string]string
	// Sources are the sources this agent can run; empty means any.
	Sources []string
	// Concurrency is how many jobs run at once in this agent; default 2.
	Concurrency int
	// LeaseDuration is how long a claim or heartbeat keeps a job ours; default 30s.
	LeaseDuration time.Duration
	// HeartbeatInterval is how often running jobs renew their lease and report rows; it
	// is also how fast a cancel requested in the database is noticed. Default 1s.
	HeartbeatInterval time.Duration
	// PollInterval is how often an agent with free capacity asks for jobs; default 1s.
	// Wake claims at once.
	PollInterval time.Duration
	// HistorySource names the source whose database holds history tables (a definition's
	// store:); default "warehouse".
	HistorySource string
	// RescueInterval is how often the agent returns expired leases to the queue; default
	// 1s, so a dead agent's jobs run again within lease + about a second.
	RescueInterval time.Duration
	// AgentHeartbeatInterval is how often the agent records its presence; default 5s.
	AgentHeartbeatInterval time.Duration
	// Grace is how long running jobs may finish on shutdown before their queries are
	// killed and the jobs released; default 30s.
	Grace time.Duration
	// ReportDirs are the agent's reports folders: with the shipped reports, the
	// definitions it runs without their being published (trust.go).
	ReportDirs []string
	// ETLDirs are ETL definition folders besides the shipped ones, where a report's
	// needs: finds the ETL it queues (needs.go).
	ETLDirs []string
	// NeedsRecheck is how long a report waiting for an ETL stays queued before its data
	// is checked again; default DefaultNeedsRecheck.
	NeedsRecheck time.Duration
	// NeedsGiveUp is how long after its submission a report may wait for its data
	// before it fails; default DefaultNeedsGiveUp.
	NeedsGiveUp time.Duration
	// Version is reported in the agent's presence row.
	Version string
	// Listen is the address of /healthz, /readyz and /metrics (":9464",
	// "127.0.0.1:0"); empty serves nothing (Handler still works).
	Listen string
	// PruneInterval is how often the agent deletes results and jobs past Retention;
	// 0 never (the CLI passes DefaultPruneInterval). Every agent may prune: the stores
	// make concurrent prunes harmless, and the first one runs at a random point of the
	// first interval so that agents restarted together do not prune together.
	PruneInterval time.Duration
	// Retention is how long results and finished jobs are kept; a zero field keeps
	// them forever.
	Retention Retention
	// Deliver sends results (rpt.yaml smtp: and deliver:); nil: this agent neither
	// runs deliver jobs nor queues them (it does not advertise rpt/kind.deliver).
	Deliver *deliver.Sender
	// DeliverInterval is how often the agent looks for finished jobs with deliveries;
	// default 2s.
	DeliverInterval time.Duration
	// QueueJustBack says the queue did not answer when the agent started (it waited for
	// it): the agent holds off rescue as after an outage, since the leases it would find
	// expired are those of agents about to release them.
	QueueJustBack bool
}

// Retention says how long finished work is kept (rpt.yaml retention:).
type Retention struct {
	Results time.Duration // result chunks of finished jobs
	Jobs    time.Duration // finished jobs with their events
}

// Defaults for Config.
const (
	DefaultConcurrency            = 2
	DefaultLeaseDuration          = 30 * time.Second
	DefaultHeartbeatInterval      = time.Second
	DefaultPollInterval           = time.Second
	DefaultRescueInterval         = time.Second
	DefaultAgentHeartbeatInterval = 5 * time.Second
	DefaultGrace                  = 30 * time.Second
	// DefaultPruneInterval is the CLI's; Config's zero means no pruning.
	DefaultPruneInterval = 10 * time.Minute
)

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.Name == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "agent"
		}
		c.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.LeaseDuration <= 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.NeedsRecheck <= 0 {
		c.NeedsRecheck = DefaultNeedsRecheck
	}
	if c.NeedsGiveUp <= 0 {
		c.NeedsGiveUp = DefaultNeedsGiveUp
	}
	if c.HistorySource == "" {
		c.HistorySource = "warehouse"
	}
	if c.RescueInterval <= 0 {
		c.RescueInterval = DefaultRescueInterval
	}
	if c.AgentHeartbeatInterval <= 0 {
		c.AgentHeartbeatInterval = DefaultAgentHeartbeatInterval
	}
	if c.Grace <= 0 {
		c.Grace = DefaultGrace
	}
	return c
}

// Log attribute keys, constant so that log queries keep working.
const (
	keyAgent    = "agent"
	keyJob      = "job"
	keyReport   = "report"
	keyAttempt  = "attempt"
	keyRows     = "rows"
	keyError    = "error"
	keySource   = "source"
	keyOutcome  = "outcome"
	keyRunning  = "running"
	keyDuration = "duration"
	keyRescued  = "rescued"
)

// Agent claims and runs jobs. Create it with New and start it with Run.
type Agent struct {
	store   Store
	batch   queue.BatchCompleter // the store's batch completion, when it has one (complete.go)
	results results.Store        // where results are written (rpt.yaml results:)
	open    SourceOpener
	sources *sources // the opened sources, kept across jobs (pools.go)
	cfg     Config   // cfg.Labels includes the capability labels
	runners map[queue.Kind]runner
	log     *slog.Logger
	host    string

	wake    chan struct{}
	wakeFn  atomic.Pointer[func()] // wakes the other agents (WakeOthersWith); nil: none
	drain   atomic.Bool
	queueOK atomic.Bool
	backAt  atomic.Int64 // unix nanos when the queue last answered again after failing

	// completions go to the completer goroutine (complete.go) while completerOn;
	// completerDone is closed when it has stopped.
	completions   chan *completeReq
	completerOn   atomic.Bool
	completerDone chan struct{}

	// claimMu guards the claim state below: the Run loop and the completer claim.
	claimMu sync.Mutex
	// Claim backoff while the queue does not answer.
	claimWait time.Duration
	nextClaim time.Time
	// inDoubt holds the lease tokens of claims whose answer was lost: they may have
	// committed, leaving jobs leased to this agent that it never started.
	inDoubt []string

	trust    *trust // the definitions this agent runs (trust.go)
	metrics  *metrics
	running  atomic.Bool  // Run's loop is on (/healthz)
	lastLoop atomic.Int64 // unix nanos of the loop's last turn (/healthz)
	addr     atomic.Pointer[net.Addr]
	errMu    sync.Mutex
	lastErr  string // the last failed queue call's error (/readyz)

	mu sync.Mutex
	// Running jobs by lease, not id: a released job can be claimed again (a new
	// attempt) before the old attempt's goroutine has unregistered.
	jobs map[queue.Lease]*run
	wg   sync.WaitGroup
}

// New returns an agent that claims from store, writes results to res and opens sources
// with open. A nil log discards logging. The agent does not close res.
func New(store Store, res results.Store, open SourceOpener, cfg Config, log *slog.Logger) *Agent {
	cfg = cfg.WithDefaults()
	rs := map[queue.Kind]runner{}
	for _, rn := range runners() {
		if rn.kind() == queue.KindDeliver && cfg.Deliver == nil {
			continue // not advertised: deliver jobs wait for an agent that can send
		}
		rs[rn.kind()] = rn
	}
	cfg.Labels = withCapabilities(cfg.Labels, rs)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	a := &Agent{
		store:   store,
		results: res,
		open:    open,
		sources: newSources(open),

		completions:   make(chan *completeReq, maxCompleteBatch),
		completerDone: make(chan struct{}),
		cfg:           cfg,
		runners:       rs,
		log:           log.With(keyAgent, cfg.Name),
		host:          host,
		wake:          make(chan struct{}, 1),
		jobs:          make(map[queue.Lease]*run),
		trust:         newTrust(cfg.ReportDirs),
	}
	a.batch, _ = store.(queue.BatchCompleter)
	a.queueOK.Store(true)
	a.metrics = newMetrics(a)
	return a
}

// Name is the agent's name in the queue.
func (a *Agent) Name() string { return a.cfg.Name }

// Wake makes the agent claim at once instead of waiting for the next poll (an MQTT
// wake-up, or a job of its own finishing). It never blocks.
func (a *Agent) Wake() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// WakeOthersWith gives the agent a way to wake the other agents (an MQTT wake-up, as a
// submit sends): it calls fn after an ETL job it ran succeeded, since the jobs that
// waited for it (a pipeline's next ETLs, reports whose needs: it loads) are due in
// that completion.
func (a *Agent) WakeOthersWith(fn func()) { a.wakeFn.Store(&fn) }

func (a *Agent) wakeOthers() {
	if fn := a.wakeFn.Load(); fn != nil && *fn != nil {
		(*fn)()
	}
}

// Drain stops claiming new jobs; running jobs go on to their end.
func (a *Agent) Drain() {
	if !a.drain.Swap(true) {
		a.log.Info("draining: no new claims")
	}
}

// Draining reports whether the agent has stopped claiming (Drain or shutdown).
func (a *Agent) Draining() bool { return a.drain.Load() }

// Running is the number of jobs the agent is running now.
func (a *Agent) Running() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.jobs)
}

// Ready reports whether the agent takes work: not draining, and its last call to the
// queue database succeeded (/readyz).
func (a *Agent) Ready() bool { return !a.drain.Load() && a.queueOK.Load() }

// queueCall records the outcome of a call to the queue for Ready, and logs the moments
// the database stops and starts answering rather than every failed call.
//
// It also counts the stale writes the queue rejected: every ErrLeaseLost is one.
func (a *Agent) queueCall(op string, err error) {
	if errors.Is(err, queue.ErrLeaseLost) {
		a.metrics.staleWrites.Inc()
	}
	if err == nil || errors.Is(err, queue.ErrLeaseLost) || errors.Is(err, queue.ErrNotFound) {
		if !a.queueOK.Swap(true) {
			a.backAt.Store(time.Now().UnixNano())
			a.log.Info("queue database answers again", "op", op)
		}
		return
	}
	a.errMu.Lock()
	a.lastErr = op + ": " + err.Error()
	a.errMu.Unlock()
	if a.queueOK.Swap(false) {
		a.log.Warn("queue database call failed", "op", op, keyError, err.Error())
	}
}

// callTimeout bounds one call to the queue, so a hung connection cannot stall a loop
// for longer than the lease leaves room for.
func (a *Agent) callTimeout() time.Duration { return a.cfg.LeaseDuration / 4 }

// Run claims and runs jobs until ctx is cancelled (SIGTERM), then stops claiming at
// once, lets running jobs finish within Grace, kills and releases the rest, and returns
// nil. It returns an error when Listen cannot be listened on, or when jobs would not
// stop. The endpoints are served until Run returns, so /readyz says "draining" during
// the shutdown.
func (a *Agent) Run(ctx context.Context) error {
	// Jobs and queue calls outlive ctx: a shutdown still completes or releases jobs.
	// hard ends them all when even the release phase is over.
	hard, hardCancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer hardCancel(nil)

	a.loopBeat()
	a.running.Store(true)
	defer a.running.Store(false)
	if a.cfg.QueueJustBack {
		a.backAt.Store(time.Now().UnixNano())
	}
	stopServing, err := a.serve()
	if err != nil {
		return err
	}
	defer stopServing()
	// Closed after every job has ended (the defers run after shutdown).
	defer a.sources.closeAll()
	if a.batch != nil {
		stopCompleter := make(chan struct{})
		a.completerOn.Store(true)
		go a.completer(hard, stopCompleter)
		defer func() {
			close(stopCompleter)
			<-a.completerDone
		}()
	}

	// The pruner works on its own: a long prune must not hold up claims.
	pruneCtx, stopPruning := context.WithCancel(ctx)
	pruned := make(chan struct{})
	go func() {
		defer close(pruned)
		a.pruneLoop(pruneCtx)
	}()
	// So does the delivery queuer (deliver.go), on the same context.
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		a.deliverLoop(pruneCtx)
	}()
	defer func() {
		stopPruning()
		<-pruned
		<-delivered
	}()

	a.log.Info("agent started", "concurrency", a.cfg.Concurrency, "sources", a.cfg.Sources,
		"labels", a.cfg.Labels, "lease", a.cfg.LeaseDuration.String(), "version", a.cfg.Version)
	a.clearEarlierDrain(hard)
	a.agentHeartbeat(hard)

	poll := time.NewTicker(a.cfg.PollInterval)
	defer poll.Stop()
	rescue := time.NewTicker(a.cfg.RescueInterval)
	defer rescue.Stop()
	presence := time.NewTicker(a.cfg.AgentHeartbeatInterval)
	defer presence.Stop()

	a.claim(hard)
	for ctx.Err() == nil {
		a.loopBeat()
		select {
		case <-ctx.Done():
		case <-poll.C:
			a.claim(hard)
		case <-a.wake:
			a.claim(hard)
		case <-rescue.C:
			a.rescue(hard)
		case <-presence.C:
			a.agentHeartbeat(hard)
			a.checkDrainRequest(hard)
		}
	}
	return a.shutdown(hard, hardCancel, presence.C)
}

// shutdown runs after Run's context is cancelled.
func (a *Agent) shutdown(hard context.Context, hardCancel context.CancelCauseFunc, presence <-chan time.Time) error {
	a.drain.Store(true)
	n := a.Running()
	a.log.Info("shutting down: no new claims", keyRunning, n, "grace", a.cfg.Grace.String())
	a.agentHeartbeat(hard)

	done := make(chan struct{})
	go func() {
		a.wg.Wait()
		close(done)
	}()
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return true
			case <-presence:
				a.loopBeat()
				a.agentHeartbeat(hard)
			case <-t.C:
				return false
			}
		}
	}
	if !wait(a.cfg.Grace) {
		a.mu.Lock()
		for _, r := range a.jobs {
			r.cancel(errShutdown)
		}
		n := len(a.jobs)
		a.mu.Unlock()
		a.log.Warn("grace period over: stopping and releasing jobs", keyRunning, n)
		if !wait(a.releaseWait()) {
			hardCancel(errShutdown)
			if !wait(5 * time.Second) {
				return fmt.Errorf("shutdown: %d jobs did not stop", a.Running())
			}
		}
	}
	a.claimMu.Lock()
	if len(a.inDoubt) > 0 {
		a.releaseInDoubt(hard)
	}
	a.claimMu.Unlock()
	a.agentHeartbeat(hard)
	a.log.Info("agent stopped")
	return nil
}

// minReleaseWait is the shortest release phase: a server can take a moment to act on
// a kill. MariaDB 10.11, sent two KILL QUERYs at once for prepared statements in
// SLEEP(), makes one of them wait 2s before the statement stops (reproduced outside
// rpt; queries doing real work stop within milliseconds).
const minReleaseWait = 5 * time.Second

// releaseWait bounds the phase after Grace in which killed queries return and their
// jobs are released. The lease keepers go on renewing meanwhile, so it may be longer
// than a short lease; past it, the leases are left to expire and the jobs are rescued
// (counted as failures), as when the queue database does not answer.
func (a *Agent) releaseWait() time.Duration { return max(a.cfg.LeaseDuration, minReleaseWait) }

// backOffClaims spaces the next claim after a failed one: doubling from the poll
// interval up to maxRetryWait.
func (a *Agent) backOffClaims() {
	a.claimWait = min(max(2*a.claimWait, a.cfg.PollInterval), a.maxRetryWait())
	a.nextClaim = time.Now().Add(a.claimWait)
}

// maxInDoubt bounds the lease tokens of lost claims an agent remembers (an outage
// long enough to lose more leaves the rest to rescue).
const maxInDoubt = 1024

// releaseInDoubt gives back the jobs of claims whose answer was lost, before the agent
// claims again; it reports whether the queue answered.
func (a *Agent) releaseInDoubt(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, a.callTimeout())
	n, err := a.store.JobReleaseTokens(cctx, a.inDoubt)
	cancel()
	a.queueCall("release lost claims", err)
	if err != nil {
		return false
	}
	if n > 0 {
		a.log.Info("released jobs of a claim whose answer was lost", "released", n)
	}
	a.inDoubt = nil
	return true
}

// maxRetryWait caps the backoff of claims and of outcome writes while the queue does not
// answer: at most half a lease, so that a job whose lease ran out in an outage is
// released by its agent before the others stop holding off their rescue.
func (a *Agent) maxRetryWait() time.Duration {
	return min(5*time.Second, max(a.cfg.LeaseDuration/2, a.cfg.HeartbeatInterval))
}

// rescueHoldoff is how long an agent does not rescue after the queue answers again.
func (a *Agent) rescueHoldoff() time.Duration { return a.cfg.LeaseDuration + a.cfg.HeartbeatInterval }

// claim asks for as many jobs as there is free capacity and starts them.
func (a *Agent) claim(ctx context.Context) {
	a.claimMu.Lock()
	defer a.claimMu.Unlock()
	if time.Now().Before(a.nextClaim) {
		return // backing off: the queue did not answer
	}
	if len(a.inDoubt) > 0 && !a.releaseInDoubt(ctx) {
		a.backOffClaims()
		return
	}
	if a.drain.Load() {
		return
	}
	free := a.cfg.Concurrency - a.Running()
	if free <= 0 {
		return
	}
	// The lease runs from the database's clock at claim time, which is after now: now is
	// a safe start for the self-fencing deadline.
	start := time.Now()
	tokens := make([]string, free)
	for i := range tokens {
		tokens[i] = queue.NewLeaseToken()
	}
	cctx, cancel := context.WithTimeout(ctx, a.callTimeout())
	jobs, err := a.store.JobClaim(cctx, queue.JobClaimParams{
		Agent:         a.cfg.Name,
		Sources:       a.cfg.Sources,
		Labels:        a.cfg.Labels,
		Limit:         free,
		LeaseDuration: a.cfg.LeaseDuration,
		Tokens:        tokens,
	})
	cancel()
	a.queueCall("claim", err)
	if errors.Is(err, queue.ErrUnavailable) {
		// The commit may have happened with its answer lost on the way.
		a.inDoubt = append(a.inDoubt, tokens...)
		if over := len(a.inDoubt) - maxInDoubt; over > 0 {
			a.inDoubt = a.inDoubt[over:] // oldest first: their leases have long run out
		}
	}
	if err != nil {
		a.backOffClaims()
		return
	}
	a.claimWait, a.nextClaim = 0, time.Time{}
	for i, job := range jobs {
		if i >= free {
			// A store never returns more than asked; if one did, running the extra jobs
			// would break the concurrency promise, so hand them back.
			a.log.Error("claim returned more jobs than asked; releasing", keyJob, job.ID, "limit", free)
			rctx, cancel := context.WithTimeout(ctx, a.callTimeout())
			a.queueCall("release", a.store.JobRelease(rctx, job.Lease()))
			cancel()
			continue
		}
		a.metrics.jobClaimed(job.Report)
		a.start(ctx, job, start)
	}
}

// rescue returns jobs with expired leases to the queue, counting a failure each. Just
// after the queue database answers again it holds off: every lease ran out during the
// outage, and the agents that hold them are releasing them (no failure counted) within
// one retry wait; only a dead agent's jobs are left to rescue after that.
func (a *Agent) rescue(ctx context.Context) {
	// Not the first call after an outage either: the leases it would find expired
	// include this agent's own, whose outcomes it is about to write.
	if !a.queueOK.Load() {
		return
	}
	if back := a.backAt.Load(); back != 0 && time.Since(time.Unix(0, back)) < a.rescueHoldoff() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, a.callTimeout())
	defer cancel()
	n, err := a.store.JobRescue(cctx)
	a.queueCall("rescue", err)
	if err == nil && n > 0 {
		a.metrics.rescues.Add(float64(n))
		a.log.Info("rescued jobs with expired leases", keyRescued, n)
		a.Wake() // they are queued again and due now: claim them at once if there is room
	}
}

func (a *Agent) agentHeartbeat(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, a.callTimeout())
	defer cancel()
	err := a.store.AgentHeartbeat(cctx, queue.Agent{
		Name:     a.cfg.Name,
		Host:     a.host,
		Labels:   a.cfg.Labels,
		Sources:  a.cfg.Sources,
		Version:  a.cfg.Version,
		Running:  a.Running(),
		Draining: a.drain.Load(),
	})
	a.queueCall("agent heartbeat", err)
}

// clearEarlierDrain withdraws a drain request an earlier process of this name left in
// its row. Agents named after their node (a DaemonSet) keep the name across restarts:
// without this, the pod that replaces a drained one would start drained, never become
// ready, and stall the rolling update. A drain asks a running process to finish; it
// does not outlive it.
func (a *Agent) clearEarlierDrain(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, a.callTimeout())
	defer cancel()
	row, err := a.store.AgentGet(cctx, a.cfg.Name)
	if err != nil || !row.DrainRequested {
		return // a new name, or the queue not answering: the first beat will say so
	}
	if err := a.store.AgentUndrain(cctx, a.cfg.Name); err != nil {
		a.queueCall("undrain agent", err)
		return
	}
	a.log.Info("cleared the drain request an earlier agent of this name left", "agent_host", row.Host, "last_seen", row.LastSeen)
}

// checkDrainRequest reads the agent's own row: `rpt agents drain` sets DrainRequested
// there, and the agent drains (and says so in its next presence beat, sent at once).
func (a *Agent) checkDrainRequest(ctx context.Context) {
	if a.drain.Load() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, a.callTimeout())
	row, err := a.store.AgentGet(cctx, a.cfg.Name)
	cancel()
	// ErrNotFound: the presence row is not written yet (the first beat failed).
	a.queueCall("get agent", err)
	if err != nil || !row.DrainRequested {
		return
	}
	a.log.Info("drain requested in the queue")
	a.Drain()
	a.agentHeartbeat(ctx)
}
