package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"rpt/agent"
	"rpt/internal/notify"
	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/results"
	"rpt/internal/source"
	"rpt/internal/testenv"
	"rpt/reportdefs"
)

// EnvMQTT names the broker the wake-up benchmark uses (tcp://127.0.0.1:1883).
const EnvMQTT = "RPT_TEST_MQTT"

// BenchmarkSubmitToRunning measures the submit -> running latency a user sees, with the
// real agent (package agent) wired to MQTT as `rpt agent` wires it (cli/agent.go
// runAgent: wake and cancel subscriptions, presence, the events relay) on a MariaDB
// queue. One op is one job: the clock starts before JobEnqueue (the insert's cost is
// included; submit then publishes the wake-up, as `rpt submit` does) and stops when the
// agent's JobClaim returns the job, in this one process with one clock.
//
//   - mosquitto/poll=10s: the agent is woken over MQTT (the broker at RPT_TEST_MQTT);
//     its poll is so long that a pickup by polling would show as seconds.
//   - embedded/poll=10s: the same through the embedded broker of `rpt server`.
//   - poll=200ms, poll=1s: no broker; the agent finds the job at its next poll.
//
// Jobs are submitted one at a time at random gaps (up to 20ms with the broker, up to
// half the poll without), so they land at every phase of the poll cycle. Reported:
// p50-ms, p99-ms, max-ms, enqueue-p50-ms (the JobEnqueue call alone, the part of the
// latency that is the insert) and after-enqueue-p50-ms (from JobEnqueue's return to the
// claim: the wake-up or the poll wait, plus the claim itself). Run with -benchtime 500x for the figures of BENCHMARKS.md.
// Needs RPT_TEST_MYSQL_DSN; the mosquitto case also RPT_TEST_MQTT.
func BenchmarkSubmitToRunning(b *testing.B) {
	cases := []struct {
		name   string
		broker string // "mosquitto", "embedded" or "" (polling only)
		poll   time.Duration
	}{
		{"mosquitto/poll=10s", "mosquitto", 10 * time.Second},
		{"embedded/poll=10s", "embedded", 10 * time.Second},
		{"poll=200ms", "", 200 * time.Millisecond},
		{"poll=1s", "", time.Second},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			url := ""
			switch c.broker {
			case "mosquitto":
				url = os.Getenv(EnvMQTT)
				if url == "" {
					b.Skip(EnvMQTT + " is not set; skipping the Mosquitto wake-up benchmark")
				}
			case "embedded":
				// rpt server's broker, in this process, on a port of its own.
				br, err := notify.StartBroker(context.Background(), "127.0.0.1:0",
					notify.BrokerOptions{AgentPassword: "bench-agent", ClientPassword: "bench-client"})
				if err != nil {
					b.Fatal(err)
				}
				defer br.Close()
				// One URL for the agent and the submitter here: the agent role may do both.
				url = "tcp://" + notify.AgentUser + ":bench-agent@" + br.Addr()
			}
			runSubmitToRunning(b, url, c.poll)
		})
	}
}

// claimClock is the agent's queue with a stopwatch on JobClaim: it records when each
// job was handed to the agent.
type claimClock struct {
	*mysql.Store
	mu      sync.Mutex
	claimed map[int64]time.Time
	signal  chan struct{} // a token per claimed job
}

func (c *claimClock) JobClaim(ctx context.Context, p queue.JobClaimParams) ([]*queue.Job, error) {
	jobs, err := c.Store.JobClaim(ctx, p)
	c.record(jobs)
	return jobs, err
}

// JobCompleteBatch: the agent also claims in its completions' transactions.
func (c *claimClock) JobCompleteBatch(ctx context.Context, items []queue.CompleteItem, claim *queue.JobClaimParams) ([]error, []*queue.Job, error) {
	errs, jobs, err := c.Store.JobCompleteBatch(ctx, items, claim)
	c.record(jobs)
	return errs, jobs, err
}

func (c *claimClock) record(jobs []*queue.Job) {
	now := time.Now()
	if len(jobs) > 0 {
		c.mu.Lock()
		for _, j := range jobs {
			c.claimed[j.ID] = now
		}
		c.mu.Unlock()
		for range jobs {
			c.signal <- struct{}{}
		}
	}
}

func runSubmitToRunning(b *testing.B, broker string, poll time.Duration) {
	dsn := testenv.MariaDB(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := mysql.Open(ctx, dsn, queue.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	if err := sub.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	agentStore, err := mysql.Open(ctx, dsn, queue.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer agentStore.Close()
	const concurrency = 8
	agentStore.SetMaxOpenConns(2 + 2*concurrency)

	sources := map[string]source.Config{"db": {Driver: "mysql", DSN: dsn}}
	def, err := reportdefs.Parse("pickup.yaml", []byte("name: pickup\nsource: db\nsql: SELECT 1 AS one\n"))
	if err != nil {
		b.Fatal(err)
	}
	resolved, err := def.Resolve(nil, time.Now(), time.UTC)
	if err != nil {
		b.Fatal(err)
	}
	params := def.JobParams(resolved, sources)
	params.Origin = queue.OriginCLI
	// Agents run published definitions only (the lookup follows the claim, outside the measured pickup).
	if _, _, err := sub.DefinitionPublish(ctx, queue.DefinitionPublishParams{Report: def.Name, Definition: def.Raw}); err != nil {
		b.Fatal(err)
	}

	n := b.N
	clock := &claimClock{Store: agentStore, claimed: make(map[int64]time.Time, n), signal: make(chan struct{}, n+concurrency)}
	var prefixBytes [4]byte
	rand.Read(prefixBytes[:])
	prefix := "rpt-bench-" + hex.EncodeToString(prefixBytes[:])
	log := slog.New(slog.DiscardHandler)
	a := agent.New(clock, results.InQueue(agentStore), func(ctx context.Context, name string) (source.Source, error) {
		return source.Open(ctx, name, sources[name])
	}, agent.Config{Name: "bench-pickup", Concurrency: concurrency, PollInterval: poll, Grace: time.Second}, log)

	// The agent's side of MQTT, as cli/agent.go's runAgent wires it.
	var submitter *notify.Client
	agentCtx, stopAgent := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if broker != "" {
		ac, err := notify.Connect(ctx, notify.Options{URL: broker, ClientID: notify.NewClientID("rpt-bench-agent"),
			Prefix: prefix, Agent: a.Name(), Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		defer ac.Close()
		ac.SubscribeWake(a.Wake)
		ac.SubscribeCancel(a.CancelNow)
		relay := notify.NewRelay(agentStore, ac, notify.RelayOptions{Interval: 250 * time.Millisecond, Logger: log})
		wg.Go(func() { relay.Run(agentCtx) })
		// The submitting side: its own connection, as `rpt submit` has.
		submitter, err = notify.Connect(ctx, notify.Options{URL: broker, ClientID: notify.NewClientID("rpt-bench-submit"), Prefix: prefix, Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		defer submitter.Close()
		for !ac.Connected() || !submitter.Connected() {
			if ctx.Err() != nil {
				b.Fatal(ctx.Err())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	var runErr error
	wg.Go(func() { runErr = a.Run(agentCtx) })
	// Let the agent make its first (empty) claim and go idle.
	time.Sleep(100 * time.Millisecond)

	gap := 20 * time.Millisecond
	if broker == "" {
		gap = poll / 2
	}
	enqueued := make(map[int64]time.Time, n)
	insert := make([]float64, 0, n)
	returned := make(map[int64]time.Time, n)
	b.ResetTimer()
	for range n {
		time.Sleep(mrand.N(gap + 1))
		at := time.Now()
		res, err := sub.JobEnqueue(ctx, params)
		if err != nil {
			b.Fatal(err)
		}
		back := time.Now()
		insert = append(insert, float64(back.Sub(at))/float64(time.Millisecond))
		returned[res.Job.ID] = back
		if submitter != nil {
			submitter.PublishWake()
		}
		enqueued[res.Job.ID] = at
	}
	timeout := time.After(poll + time.Minute)
	for range n {
		select {
		case <-clock.signal:
		case <-timeout:
			b.Fatal("timed out waiting for the agent to claim every job")
		}
	}
	b.StopTimer()
	stopAgent()
	wg.Wait()
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		b.Fatalf("agent: %v", runErr)
	}

	clock.mu.Lock()
	defer clock.mu.Unlock()
	lat := make([]float64, 0, n)
	after := make([]float64, 0, n)
	for id, e := range enqueued {
		c, ok := clock.claimed[id]
		if !ok {
			b.Fatalf("job %d was never claimed", id)
		}
		lat = append(lat, float64(c.Sub(e))/float64(time.Millisecond))
		after = append(after, float64(c.Sub(returned[id]))/float64(time.Millisecond))
	}
	slices.Sort(lat)
	slices.Sort(after)
	b.ReportMetric(percentile(after, 0.50), "after-enqueue-p50-ms")
	b.ReportMetric(percentile(lat, 0.50), "p50-ms")
	b.ReportMetric(percentile(lat, 0.99), "p99-ms")
	b.ReportMetric(lat[len(lat)-1], "max-ms")
	slices.Sort(insert)
	b.ReportMetric(percentile(insert, 0.50), "enqueue-p50-ms")
}
