package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"rpt/agent"
	"rpt/internal/deliver"
	"rpt/internal/notify"
	"rpt/internal/queue"
	"rpt/internal/source"
)

func agentCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name:  "agent",
		Usage: "the node daemon: claim jobs, run them, store results (SIGTERM drains)",
		Flags: []ucli.Flag{
			&ucli.IntFlag{Name: "concurrency", Value: 2, Usage: "run at most `N` jobs at once", EnvVars: []string{"RPT_AGENT_CONCURRENCY"}},
			&ucli.StringSliceFlag{Name: "label", Usage: "`key=value` label that definitions' requires: match (repeat)", EnvVars: []string{"RPT_AGENT_LABELS"}},
			&ucli.StringFlag{Name: "name", Usage: "agent `NAME` (default host-pid)", EnvVars: []string{"RPT_AGENT_NAME"}},
			// Zero means "the configured or built-in value", so the default is shown as text.
			&ucli.DurationFlag{Name: "lease", Usage: "lease `DURATION`: a dead agent's jobs run again after it", DefaultText: "30s, or rpt.yaml's agent lease"},
			&ucli.DurationFlag{Name: "grace", Usage: "on SIGTERM, the `DURATION` running jobs may take to finish before they are released", DefaultText: "30s"},
			&ucli.DurationFlag{Name: "poll", Usage: "when idle, claim every `DURATION` (a wake-up over MQTT claims at once)", DefaultText: "1s"},
			&ucli.StringFlag{Name: "listen", Usage: "serve /healthz, /readyz and /metrics on `ADDR` (e.g. :9464); empty serves none",
				EnvVars: []string{"RPT_AGENT_LISTEN"}},
			&ucli.DurationFlag{Name: "prune-interval", Value: agent.DefaultPruneInterval,
				Usage:   "every `DURATION`, delete results and finished jobs older than rpt.yaml's retention:; 0 never",
				EnvVars: []string{"RPT_AGENT_PRUNE_INTERVAL"}},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() > 0 {
				return usagef("agent: unexpected argument %q", c.Args().First())
			}
			if c.Int("concurrency") < 1 {
				return usagef("--concurrency %d: must be 1 or more", c.Int("concurrency"))
			}
			if c.Duration("prune-interval") < 0 {
				return usagef("--prune-interval %s: must not be negative", c.Duration("prune-interval"))
			}
			flagLabels, err := parseLabels(c.StringSlice("label"))
			if err != nil {
				return err
			}
			e, err := loadEnv(c, d)
			if err != nil {
				return err
			}
			// rpt.yaml's agent: block, with flags and RPT_AGENT_* on top.
			ac := e.cfg.Agent
			labels := map[string]string{}
			for k, v := range ac.Labels {
				labels[k] = v
			}
			for k, v := range flagLabels {
				labels[k] = v
			}
			// rpt/ labels are what the agent can run (rpt/kind.report, rpt/feature.procedure):
			// the agent sets them itself, so a hand-set one could only claim jobs it would fail.
			for k := range labels {
				if queue.IsCapability(k) {
					return usagef("label %q: labels starting with %s are the agent's capabilities, set by rpt itself", k, queue.CapabilityPrefix)
				}
			}
			name := c.String("name")
			if name == "" {
				name = ac.Name
			}
			concurrency := c.Int("concurrency")
			if !c.IsSet("concurrency") && ac.Concurrency > 0 {
				concurrency = ac.Concurrency
			}
			lease := c.Duration("lease")
			if lease == 0 {
				lease = ac.Lease
			}
			log := slog.New(slog.NewJSONHandler(d.Stderr, nil))
			if d.DriverLog != nil {
				d.DriverLog(log)
			}
			e.log = log
			if name != "" {
				e.log = log.With("agent", name)
			}
			// A daemon waits for its queue database (no crash loop while it restarts),
			// logging once; --retry-for bounds the wait.
			if !c.IsSet("retry-for") {
				e.retryFor = retryForever
			}
			store, err := e.openQueue(c.Context, true)
			if err != nil {
				if c.Context.Err() != nil {
					// SIGTERM while waiting for the queue: a clean stop, nothing was claimed.
					log.Info("stopped before the queue database answered")
					return nil
				}
				return err
			}
			defer store.Close()
			cfg := agent.Config{
				Name: name, Labels: labels, // Sources: runAgent
				Concurrency: concurrency, LeaseDuration: lease, HeartbeatInterval: ac.Heartbeat,
				Grace: c.Duration("grace"), PollInterval: c.Duration("poll"), Version: d.Version,
				Listen:        c.String("listen"),
				PruneInterval: c.Duration("prune-interval"),
				Retention:     agent.Retention{Results: e.cfg.Retention.Results, Jobs: e.cfg.Retention.Jobs},
				QueueJustBack: e.queueWaited,
			}
			if e.cfg.SMTP != nil || len(e.cfg.Deliver.Webhooks) > 0 {
				cfg.Deliver = &deliver.Sender{Deliver: e.cfg.Deliver, SMTP: e.cfg.SMTP, Loc: e.loc}
			}
			// The connection budget: claim loop and presence/rescue, plus a heartbeat and a
			// result writer per running job (a DSN's max_open_conns wins).
			if pool, ok := store.(interface{ SetMaxOpenConns(int) }); ok && !strings.Contains(e.cfg.Queue, "max_open_conns=") {
				pool.SetMaxOpenConns(2 + 2*concurrency)
			}
			return runAgent(c.Context, e, store, cfg, log)
		},
	}
}

// runAgent runs an agent, with its MQTT side when a broker is configured: wake-ups and
// announced cancels reach it at once, its presence is retained with a last will, and a
// relay publishes the events table (duplicates from several agents are harmless:
// subscribers dedupe by seq). Nothing waits on the broker: without one the agent polls.
//
// The agent advertises (and claims jobs of) the configured sources this binary can open:
// one whose driver is not built here is left out with a warning, so its jobs wait for
// an agent that has the driver instead of failing here.
func runAgent(ctx context.Context, e *env, store queue.Store, cfg agent.Config, log *slog.Logger) error {
	names, skipped := runnableSources(e.cfg.Sources)
	for _, n := range skipped {
		log.Warn("source not served: its driver is not built in this binary", "source", n, "driver", e.cfg.Sources[n].DriverName())
	}
	if len(names) == 0 && len(skipped) > 0 {
		// An empty list would mean "any source".
		return usagef("agent: no configured source can run in this binary (%s: driver not built)", strings.Join(skipped, ", "))
	}
	cfg.Sources = names
	// The agent runs, unpublished, only what its own configuration ships or names.
	cfg.ReportDirs = e.cfg.Reports
	rs, err := e.agentResults(ctx, store)
	if err != nil {
		return err
	}
	defer rs.Close()
	a := agent.New(store, rs, e.openSource, cfg, log)
	if e.cfg.MQTT == "" {
		return a.Run(ctx)
	}
	user, pw := e.mqttCredentials(ctx, store, notify.AgentUser)
	client, err := notify.Connect(ctx, notify.Options{URL: e.cfg.MQTT, ClientID: notify.NewClientID("rpt-agent"),
		Prefix: e.mqttPrefix, Agent: a.Name(), LegacyTopic: e.cfg.LegacyTopic, Logger: log, Username: user, Password: pw})
	if err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	defer closeNotifier(client)
	a.WatchBroker(client)
	client.SubscribeWake(a.Wake)
	a.WakeOthersWith(client.PublishWake)
	client.SubscribeCancel(a.CancelNow)
	// The relay outlives ctx so the events of a drain (released, succeeded) still go out.
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	relay := notify.NewRelay(store, client, notify.RelayOptions{Interval: 250 * time.Millisecond, Logger: log})
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		relay.Run(relayCtx)
	}()
	go func() {
		<-ctx.Done()
		client.PublishPresence(notify.PresenceDraining)
	}()
	err = a.Run(ctx)
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	relay.Poll(flushCtx)
	cancel()
	stopRelay()
	<-relayDone
	return err
}

func parseLabels(given []string) (map[string]string, error) {
	labels := map[string]string{}
	for _, l := range given {
		for _, kv := range strings.Split(l, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, usagef("--label %q: want key=value", kv)
			}
			labels[k] = v
		}
	}
	return labels, nil
}

// runnableSources splits the configured sources (sorted by name) into those whose
// driver this binary has and those whose driver it lacks (plexws, odbc).
func runnableSources(m map[string]source.Config) (names, skipped []string) {
	for _, n := range sourceNames(m) {
		if source.Built(m[n].DriverName()) {
			names = append(names, n)
		} else {
			skipped = append(skipped, n)
		}
	}
	return names, skipped
}
