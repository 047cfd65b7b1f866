package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	ucli "github.com/urfave/cli/v2"

	"rpt/agent"
	"rpt/internal/notify"
	"rpt/internal/queue"
)

func serverCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name:  "server",
		Usage: "one machine, one process: an embedded MQTT broker, the queue, an agent (Ctrl-C drains and stops)",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "broker", Value: "127.0.0.1:1883", Usage: "embedded MQTT broker listen `ADDR` (\"\" for none: use --mqtt's)", EnvVars: []string{"RPT_SERVER_BROKER"}},
			&ucli.IntFlag{Name: "concurrency", Value: 2, Usage: "the agent runs at most `N` jobs at once"},
			&ucli.StringFlag{Name: "listen", Usage: "agent /healthz /readyz /metrics on `ADDR`", EnvVars: []string{"RPT_AGENT_LISTEN"}},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() > 0 {
				return usagef("server: unexpected argument %q", c.Args().First())
			}
			if c.Int("concurrency") < 1 {
				return usagef("--concurrency %d: must be 1 or more", c.Int("concurrency"))
			}
			e, err := loadEnv(c, d)
			if err != nil {
				return err
			}
			ctx := c.Context
			store, err := e.openQueue(ctx, true)
			if err != nil {
				return err
			}
			defer store.Close()
			log := slog.New(slog.NewJSONHandler(d.Stderr, nil))
			stop, err := startEmbeddedBroker(ctx, e, c.String("broker"), log)
			if err != nil {
				return err
			}
			defer stop()
			host, _ := os.Hostname()
			fmt.Fprintf(d.Stderr, "rpt server: queue %s, broker %s, agent %s\n", redactedQueue(e), e.cfg.MQTT, host+"-server")
			return runAgent(ctx, e, store, agent.Config{
				Name: host + "-server", Sources: sourceNames(e.cfg.Sources), Concurrency: c.Int("concurrency"),
				Listen: c.String("listen"), Version: d.Version, PruneInterval: agent.DefaultPruneInterval,
				Retention: agent.Retention{Results: e.cfg.Retention.Results, Jobs: e.cfg.Retention.Jobs},
			}, log)
		},
	}
}

// startEmbeddedBroker starts the in-process MQTT broker on addr and points the
// configuration at it; addr "" keeps the configured broker.
func startEmbeddedBroker(ctx context.Context, e *env, addr string, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	b, err := notify.StartBroker(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("%w: embedded mqtt broker on %s: %v", queue.ErrUnavailable, addr, err)
	}
	e.cfg.MQTT = b.URL()
	return func() { b.Close() }, nil
}
