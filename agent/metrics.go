package agent

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"rpt/internal/queue"
)

// Outcomes counted by rpt_jobs_finished_total: how an attempt ended for this agent.
const (
	outcomeSucceeded = "succeeded"
	outcomeFailed    = "failed" // failed for good
	outcomeRetry     = "retry"  // failed, queued again after backoff
	outcomeCancelled = "cancelled"
	outcomeReleased  = "released"   // handed back without a failure (self-fence, shutdown)
	outcomeLeaseLost = "lease_lost" // another agent (or a rescue) holds the job now
)

// durationBuckets run from 0.1 s to 4 h: reports take from a blink to an afternoon.
var durationBuckets = []float64{
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400,
}

// queueStatsMaxAge is how long one QueueStats answer serves scrapes: several scrapers
// (or a scraper that retries) cost the queue database one query.
const queueStatsMaxAge = 2 * time.Second

// metrics are the agent's Prometheus metrics, in a registry of the agent's own so that
// several agents can live in one process (tests) without clashing.
type metrics struct {
	reg *prometheus.Registry

	finished     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	rescues      prometheus.Counter
	staleWrites  prometheus.Counter
	pruneDeleted *prometheus.CounterVec
	queue        *queueCollector

	claimed          *prometheus.CounterVec
	staleCompletions prometheus.Counter
	broker           brokerCollector
}

func newMetrics(a *Agent) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rpt_jobs_finished_total",
			Help: "Job attempts this agent ended, by report and outcome (succeeded, failed, retry, cancelled, released, lease_lost).",
		}, []string{"report", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rpt_job_duration_seconds",
			Help:    "Run time of job attempts on this agent, from start to the recorded outcome, by report.",
			Buckets: durationBuckets,
		}, []string{"report"}),
		rescues: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rpt_lease_rescues_total",
			Help: "Jobs with expired leases this agent returned to the queue (or ended).",
		}),
		staleWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rpt_stale_writes_rejected_total",
			Help: "Writes of this agent the queue fenced out because the job's lease was no longer ours.",
		}),
		pruneDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rpt_pruned_total",
			Help: "What this agent's background pruner deleted: results (jobs whose result chunks went) and jobs.",
		}, []string{"kind"}),
		queue: &queueCollector{a: a, maxAge: queueStatsMaxAge},
		claimed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rpt_jobs_claimed_total",
			Help: "Jobs this agent claimed (each attempt once), by report.",
		}, []string{"report"}),
		staleCompletions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rpt_stale_completions_refused_total",
			Help: "Completions of this agent the queue refused because the attempt's lease was no longer ours (the job was rescued or released meanwhile): its result does not count.",
		}),
	}
	// Both kinds show from the start, so a pruner that never deletes reads as 0.
	m.pruneDeleted.WithLabelValues("results")
	m.pruneDeleted.WithLabelValues("jobs")
	m.reg.MustRegister(
		m.finished, m.duration, m.rescues, m.staleWrites, m.pruneDeleted,
		m.claimed, m.staleCompletions, &m.broker,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "rpt_agent_running_jobs",
			Help: "Jobs this agent is running now.",
		}, func() float64 { return float64(a.Running()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "rpt_agent_draining",
			Help: "1 while this agent claims no new jobs (drain requested or shutting down).",
		}, func() float64 {
			if a.Draining() {
				return 1
			}
			return 0
		}),
		m.queue,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// queueCollector reports the queue as a whole, read with QueueStats when scraped. Every
// agent reports the same figures; dashboards take max() over agents.
type queueCollector struct {
	a      *Agent
	maxAge time.Duration

	mu    sync.Mutex
	at    time.Time
	stats *queueStatsSnapshot
}

type queueStatsSnapshot struct {
	queued, scheduled, running int
	oldest                     time.Duration
	slots                      map[string]int
	waiting                    []queue.QueueWaiting
}

var (
	descQueueDepth = prometheus.NewDesc("rpt_queue_depth",
		"Jobs in the queue by state: queued (due), scheduled (run_after in the future), running.",
		[]string{"state"}, nil)
	descOldestQueued = prometheus.NewDesc("rpt_queue_oldest_queued_seconds",
		"Age of the oldest due queued job (0 when none waits).", nil, nil)
	descSlotsInUse = prometheus.NewDesc("rpt_slots_in_use",
		"Concurrency slots taken, by scope (report:NAME, source:NAME, group:NAME).",
		[]string{"scope"}, nil)
	descWaiting = prometheus.NewDesc("rpt_queue_waiting_jobs",
		"Due queued jobs by report and source (the queued part of rpt_queue_depth, broken down).",
		[]string{"report", "source"}, nil)
	descWaitingOldest = prometheus.NewDesc("rpt_queue_waiting_oldest_seconds",
		"Age of the oldest due queued job of each report and source.",
		[]string{"report", "source"}, nil)
	descQueueUp = prometheus.NewDesc("rpt_queue_stats_up",
		"1 when the last read of the queue statistics succeeded.", nil, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descQueueDepth
	ch <- descOldestQueued
	ch <- descSlotsInUse
	ch <- descWaiting
	ch <- descWaitingOldest
	ch <- descQueueUp
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.read()
	if st == nil {
		// No figures rather than stale or zero ones: a zero depth would look like an
		// empty queue while the database is down.
		ch <- prometheus.MustNewConstMetric(descQueueUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descQueueUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, float64(st.queued), "queued")
	ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, float64(st.scheduled), "scheduled")
	ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, float64(st.running), "running")
	ch <- prometheus.MustNewConstMetric(descOldestQueued, prometheus.GaugeValue, st.oldest.Seconds())
	for scope, n := range st.slots {
		ch <- prometheus.MustNewConstMetric(descSlotsInUse, prometheus.GaugeValue, float64(n), scope)
	}
	for _, w := range st.waiting {
		ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(w.Queued), w.Report, w.Source)
		ch <- prometheus.MustNewConstMetric(descWaitingOldest, prometheus.GaugeValue, w.OldestQueuedAge.Seconds(), w.Report, w.Source)
	}
}

// read returns the queue statistics, at most queueStatsMaxAge old, or nil when the
// database did not answer within the short scrape budget.
func (c *queueCollector) read() *queueStatsSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stats != nil && time.Since(c.at) < c.maxAge {
		return c.stats
	}
	// A scrape must not hang on a stuck database: Prometheus times out at 10s by default.
	timeout := min(c.a.callTimeout(), 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := c.a.store.QueueStats(ctx)
	if err != nil {
		c.a.log.Debug("metrics: read queue stats", keyError, err.Error())
		c.stats = nil
		return nil
	}
	c.at = time.Now()
	c.stats = &queueStatsSnapshot{
		queued: st.Queued, scheduled: st.Scheduled, running: st.Running,
		oldest: st.OldestQueuedAge, slots: st.SlotsInUse, waiting: st.Waiting,
	}
	return c.stats
}

// BrokerState is what the agent reports about its MQTT connection; *notify.Client is one.
type BrokerState interface {
	Connected() bool
	Dropped() uint64 // publishes dropped because the outbox was full, since the start
}

// WatchBroker makes /metrics report the MQTT connection (rpt_mqtt_connected,
// rpt_mqtt_dropped_events_total). An agent without a broker reports neither: a 0 would
// read as a broken connection.
func (a *Agent) WatchBroker(b BrokerState) { a.metrics.broker.set(b) }

// brokerCollector reports the broker connection, read when scraped.
type brokerCollector struct {
	mu sync.Mutex
	b  BrokerState
}

var (
	descMQTTConnected = prometheus.NewDesc("rpt_mqtt_connected",
		"1 while the agent's connection to the MQTT broker is up (with its subscriptions), 0 while it reconnects.", nil, nil)
	descMQTTDropped = prometheus.NewDesc("rpt_mqtt_dropped_events_total",
		"Messages (events, presence) the agent dropped because its outbox was full while the broker was away; subscribers read them from the events table instead.", nil, nil)
)

func (c *brokerCollector) set(b BrokerState) {
	c.mu.Lock()
	c.b = b
	c.mu.Unlock()
}

func (c *brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descMQTTConnected
	ch <- descMQTTDropped
}

func (c *brokerCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	b := c.b
	c.mu.Unlock()
	if b == nil {
		return
	}
	up := 0.0
	if b.Connected() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descMQTTConnected, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(descMQTTDropped, prometheus.CounterValue, float64(b.Dropped()))
}

// jobClaimed counts a claimed attempt.
func (m *metrics) jobClaimed(report string) { m.claimed.WithLabelValues(report).Inc() }

// jobEnded counts an attempt's end and observes its run time.
func (m *metrics) jobEnded(report, outcome string, took time.Duration) {
	m.finished.WithLabelValues(report, outcome).Inc()
	m.duration.WithLabelValues(report).Observe(took.Seconds())
}
