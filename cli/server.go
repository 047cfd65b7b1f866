package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"rpt/agent"
	"rpt/internal/dsn"
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
			&ucli.StringFlag{Name: "api", Usage: "also serve the HTTP API on `ADDR` (off unless given; see rpt api)", EnvVars: []string{"RPT_SERVER_API"}},
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
			stop, err := startEmbeddedBroker(ctx, e, store, c.String("broker"), !c.IsSet("broker"), log)
			if err != nil {
				return err
			}
			defer stop()
			if addr := c.String("api"); addr != "" {
				ln, err := listenAPI(e, addr)
				if err != nil {
					return err
				}
				if err := printFirstAdminToken(ctx, d, store, apiScheme(e)+"://"+ln.Addr().String()); err != nil {
					// The API serves anyway: tokens can be made with rpt tokens create.
					fmt.Fprintf(d.Stderr, "rpt server: %v\n", err)
				}
				apiErr := make(chan error, 1)
				actx, stopAPI := context.WithCancel(ctx)
				defer func() { stopAPI(); <-apiErr }()
				go func() {
					err := serveAPI(actx, e, store, ln, false, log)
					if err != nil {
						// The agent goes on: its jobs need not stop because the API did.
						log.Error("api stopped", "error", err)
					}
					apiErr <- err
				}()
			}
			host, _ := os.Hostname()
			fmt.Fprintf(d.Stderr, "rpt server: queue %s, broker %s, agent %s\n", redactedQueue(e), dsn.Redact(e.cfg.MQTT), host+"-server")
			return runAgent(ctx, e, store, agent.Config{
				Name: host + "-server", Concurrency: c.Int("concurrency"), // Sources: runAgent
				Listen: c.String("listen"), Version: d.Version, PruneInterval: agent.DefaultPruneInterval,
				Retention: agent.Retention{Results: e.cfg.Retention.Results, Jobs: e.cfg.Retention.Jobs},
			}, log)
		},
	}
}

// startEmbeddedBroker starts the in-process MQTT broker on addr and points the
// configuration at it; addr "" keeps the configured broker. Its passwords are those kept
// with the queue (generated the first time), which every rpt on the queue reads to
// connect; they are never printed.
//
// Where another broker already listens on the default address (a Mosquitto on the same
// machine), the embedded one takes a free port instead and says which; an address given
// with --broker is not second-guessed.
func startEmbeddedBroker(ctx context.Context, e *env, store queue.Settings, addr string, isDefault bool, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	creds, err := notify.BrokerCredentials(ctx, store)
	if err != nil {
		return nil, fmt.Errorf("embedded mqtt broker: %w", err)
	}
	creds.Logger = log
	// The broker outlives the signal that stops the agent: while the agent drains, its
	// events still go out and watchers stay connected; stop closes it after.
	ctx = context.WithoutCancel(ctx)
	b, err := notify.StartBroker(ctx, addr, creds)
	if errors.Is(err, syscall.EADDRINUSE) && isDefault {
		host, _, _ := net.SplitHostPort(addr)
		if b, err = notify.StartBroker(ctx, net.JoinHostPort(host, "0"), creds); err == nil {
			fmt.Fprintf(e.d.Stderr, "rpt server: %s is taken (another MQTT broker runs there?); the embedded broker listens on %s instead: give other rpt commands --mqtt %s (or RPT_MQTT)\n",
				addr, b.URL(), b.URL())
		}
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%w: %s is already in use (another MQTT broker?): choose another --broker ADDR, or use that broker with --broker \"\" --mqtt URL", notify.ErrBroker, addr)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: on %s: %v", notify.ErrBroker, addr, err)
	}
	// No user in the URL: each rpt takes its role's credentials from the queue.
	e.cfg.MQTT = b.URL()
	return func() { b.Close() }, nil
}

// FirstAdminToken is the name of the token rpt server makes on a queue that has none.
const FirstAdminToken = "first-admin"

// printFirstAdminToken makes an admin API token when the queue has no token at all, and
// prints it once with a login link, so that the web app this process serves is usable
// on this machine at once. The link carries the token after '#', which a browser never
// sends to a server (nor into its logs); the page fills the form from it. Of two
// servers starting together, one makes it (the name is unique); the other prints
// nothing.
func printFirstAdminToken(ctx context.Context, d *Deps, store queue.Tokens, base string) error {
	list, err := store.TokenList(ctx)
	if err != nil {
		return fmt.Errorf("api tokens: %w", err)
	}
	if len(list) > 0 {
		return nil
	}
	tok, err := queue.NewAPIToken()
	if err != nil {
		return err
	}
	if _, err := store.TokenCreate(ctx, FirstAdminToken, queue.RoleAdmin, queue.TokenSHA256(tok)); errors.Is(err, queue.ErrExists) {
		return nil
	} else if err != nil {
		return fmt.Errorf("create the first admin token: %w", err)
	}
	fmt.Fprintf(d.Stderr, "rpt server: the queue had no API token, so this one was made (admin, named %s; shown this once, keep it secret; rpt tokens revoke %s withdraws it):\n  %s\n  log in: %s/login#token=%s\n",
		FirstAdminToken, FirstAdminToken, tok, base, tok)
	return nil
}
