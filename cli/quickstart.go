package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	ucli "github.com/urfave/cli/v2"

	"rpt/agent"
	"rpt/internal/demo"
	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/results"
)

func quickstartCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name:  "quickstart",
		Usage: "no servers needed: demo data, an in-process agent, a 13-month trial balance printed",
		Flags: []ucli.Flag{
			&ucli.IntFlag{Name: "max-rows", Value: 30, Usage: "show at most `N` rows of the result"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() > 0 {
				return usagef("quickstart: unexpected argument %q", c.Args().First())
			}
			e, err := loadEnv(c, d)
			if err != nil {
				return err
			}
			ctx := c.Context
			demoPath := filepath.Join(e.dataDir, "demo.db")
			if !demo.Loaded(ctx, "sqlite:"+demoPath, d.Now()) {
				if err := os.MkdirAll(e.dataDir, 0o755); err != nil {
					return fmt.Errorf("quickstart: %w", err)
				}
				fmt.Fprintf(d.Stderr, "loading demo data into %s ...\n", demoPath)
				st, err := demo.Load(ctx, "sqlite:"+demoPath, demo.Options{Scale: 1, Force: true}) // rpt's own demo database
				if err != nil {
					return fmt.Errorf("load demo data: %w", err)
				}
				fmt.Fprintf(d.Stderr, "loaded %d accounts x %d periods in %s\n", st.Accounts, st.Periods, roundDur(st.Elapsed))
			}
			store, err := e.openQueue(ctx, true)
			if err != nil {
				return err
			}
			defer store.Close()

			// The same wiring as rpt server: an embedded broker on a free port and an
			// in-process agent, stopped (before the broker) when the result is in.
			log := slog.New(slog.NewTextHandler(d.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			stopBroker, err := startEmbeddedBroker(ctx, e, store, "127.0.0.1:0", false, log)
			if err != nil {
				return err
			}
			defer stopBroker()
			agentCtx, stopAgent := context.WithCancel(ctx)
			var wg sync.WaitGroup
			defer func() { stopAgent(); wg.Wait() }()
			cfg := agent.Config{Name: "quickstart", Sources: sourceNames(e.cfg.Sources), Concurrency: 2, Version: d.Version}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := runAgent(agentCtx, e, store, cfg, log); err != nil && !errors.Is(err, context.Canceled) {
					log.Error("quickstart agent stopped", "error", err)
				}
			}()
			client := e.notifier(ctx, store)
			defer closeNotifier(client)

			// The last 13 closed months.
			now := d.Now().In(e.loc)
			first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, e.loc)
			start, end := first.AddDate(0, -13, 0), first.AddDate(0, -1, 0)
			svc := e.jobs(store)
			if client != nil {
				svc.Publisher = client
			}
			res, err := svc.Submit(ctx, jobs.SubmitRequest{Report: "trial-balance", Origin: queue.OriginCLI,
				Params: map[string]string{"start_period": start.Format("200601"), "end_period": end.Format("200601")}})
			if err != nil {
				return err
			}
			fmt.Fprintf(d.Stderr, "submitted trial-balance %s..%s as job %d\n", start.Format("2006-01"), end.Format("2006-01"), res.Job.ID)
			j, err := waitJob(ctx, e, svc, client, res.Job.ID, 0)
			if err != nil {
				return err
			}
			if err := jobs.Outcome(j); err != nil {
				return err
			}
			rs, err := e.resultsOf(ctx, store, j)
			if err != nil {
				return err
			}
			defer rs.Close()
			rows, err := results.Open(ctx, rs, results.RefOf(j))
			if err != nil {
				return fmt.Errorf("read result of job %d: %w", j.ID, err)
			}
			defer rows.Close()
			if err := results.Render(ctx, d.Stdout, "table", rows, results.RenderOptions{MaxTableRows: c.Int("max-rows"), TotalRows: j.Rows, SheetName: j.Report}); err != nil {
				return err
			}
			fmt.Fprintf(d.Stderr, "\njob %d: %d rows in %s. Next:\n", j.ID, j.Rows, elapsed(d.Now(), j.StartedAt, j.FinishedAt))
			// The comments line up whatever the id's width.
			get := fmt.Sprintf("rpt get %d --file tb.xlsx", j.ID)
			w := max(len(get), len("rpt reports list")) + 2
			fmt.Fprintf(d.Stderr, "  %-*s# the whole result for Excel\n  %-*s# what ran\n  %-*s# what else there is\n",
				w, get, w, "rpt jobs", w, "rpt reports list")
			return nil
		},
	}
}
