package cli

import (
	"fmt"
	"sort"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"rpt/internal/config"
	"rpt/internal/queue"
	"rpt/internal/source"
)

func agentsCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name:  "agents",
		Usage: "the agents sharing this queue",
		Subcommands: []*ucli.Command{
			{
				Name: "list", Usage: "every agent: name, host, labels, sources, version, running (jobs), state (up, draining, drain requested, gone), last_seen",
				Flags: []ucli.Flag{outputFlag("format: " + listFormats)},
				Action: func(c *ucli.Context) error {
					format, err := listFormat(c, d)
					if err != nil {
						return err
					}
					return withStore(c, d, func(e *env, store queue.Store) error {
						agents, err := store.AgentList(c.Context)
						if err != nil {
							return fmt.Errorf("list agents: %w", err)
						}
						switch format {
						case "json":
							if agents == nil {
								agents = []queue.Agent{}
							}
							return writeJSON(d.Stdout, agents)
						case "yaml":
							return writeYAML(d.Stdout, agents)
						}
						now := d.Now()
						rows := make([][]any, len(agents))
						for i, a := range agents {
							state := "up"
							switch {
							case now.Sub(a.LastSeen) > queue.AgentAlive:
								state = "gone"
							case a.Draining:
								state = "draining"
							case a.DrainRequested:
								state = "drain requested"
							}
							seen := a.LastSeen.UTC().Format(time.RFC3339)
							if format == "table" {
								seen = relTime(now, a.LastSeen)
							}
							rows[i] = []any{a.Name, a.Host, labelString(a.Labels), strings.Join(a.Sources, ","), a.Version, int64(a.Running), state, seen}
						}
						cols := []source.Column{{Name: "name", Type: source.TypeString}, {Name: "host", Type: source.TypeString},
							{Name: "labels", Type: source.TypeString}, {Name: "sources", Type: source.TypeString},
							{Name: "version", Type: source.TypeString}, {Name: "running", Type: source.TypeInt},
							{Name: "state", Type: source.TypeString}, {Name: "last_seen", Type: source.TypeString}}
						return renderList(c, d, format, cols, rows)
					})
				},
			},
			{
				Name: "drain", Usage: "ask an agent to stop claiming and finish its running jobs", ArgsUsage: "AGENT",
				Action: func(c *ucli.Context) error {
					if c.NArg() != 1 {
						return usagef("agents drain: want one AGENT name")
					}
					name := c.Args().First()
					return withStore(c, d, func(e *env, store queue.Store) error {
						if err := store.AgentDrain(c.Context, name); err != nil {
							return fmt.Errorf("drain agent %q: %w", name, err)
						}
						fmt.Fprintf(d.Stderr, "agent %s: drain requested; it finishes its running jobs and claims no more\n", name)
						return nil
					})
				},
			},
			{
				Name: "undrain", Usage: "withdraw a drain request (an agent already draining finishes; a new process of that name claims again)", ArgsUsage: "AGENT",
				Action: func(c *ucli.Context) error {
					if c.NArg() != 1 {
						return usagef("agents undrain: want one AGENT name")
					}
					name := c.Args().First()
					return withStore(c, d, func(e *env, store queue.Store) error {
						if err := store.AgentUndrain(c.Context, name); err != nil {
							return fmt.Errorf("undrain agent %q: %w", name, err)
						}
						fmt.Fprintf(d.Stderr, "agent %s: drain request withdrawn\n", name)
						return nil
					})
				},
			},
		},
	}
}

func labelString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// pauseCommand is `rpt pause report R | source S` (and resume): claims of those jobs stop
// across all agents until resumed; running jobs go on. With no arguments, pause lists
// the pauses.
func pauseCommand(d *Deps, paused bool) *ucli.Command {
	name, usage := "resume", "let an agent claim a paused report's or source's jobs again"
	if paused {
		name, usage = "pause", "stop claims of a report's or a source's jobs (e.g. Plex maintenance); no arguments lists the pauses: kind, name, since"
	}
	var flags []ucli.Flag
	if paused { // the listing; resume prints nothing but its message
		flags = []ucli.Flag{outputFlag("format: " + listFormats)}
	}
	return &ucli.Command{
		Name: name, Usage: usage, ArgsUsage: "report NAME | source NAME",
		Flags: flags,
		Action: func(c *ucli.Context) error {
			if paused && c.NArg() == 0 {
				format, err := listFormat(c, d)
				if err != nil {
					return err
				}
				return withStore(c, d, func(e *env, store queue.Store) error {
					ps, err := store.PauseList(c.Context)
					if err != nil {
						return fmt.Errorf("list pauses: %w", err)
					}
					switch format {
					case "json":
						if ps == nil {
							ps = []queue.Pause{}
						}
						return writeJSON(d.Stdout, ps)
					case "yaml":
						return writeYAML(d.Stdout, ps)
					}
					rows := make([][]any, len(ps))
					for i, p := range ps {
						rows[i] = []any{p.Kind, p.Name, p.CreatedAt.UTC().Format(time.RFC3339)}
					}
					cols := []source.Column{{Name: "kind", Type: source.TypeString}, {Name: "name", Type: source.TypeString}, {Name: "since", Type: source.TypeString}}
					return renderList(c, d, format, cols, rows)
				})
			}
			if c.NArg() != 2 {
				return usagef("%s: want `report NAME` or `source NAME`", name)
			}
			kind, target := c.Args().Get(0), c.Args().Get(1)
			if kind != queue.PauseReport && kind != queue.PauseSource {
				return usagef("%s %s: want `report NAME` or `source NAME`", name, kind)
			}
			e, err := loadEnv(c, d)
			if err != nil {
				return err
			}
			// Check the name, so a typo is not a pause that never matches.
			switch kind {
			case queue.PauseReport:
				cat, err := e.catalog()
				if err != nil {
					return err
				}
				if _, err := cat.Get(target); err != nil {
					return err
				}
			case queue.PauseSource:
				if _, ok := e.cfg.Sources[target]; !ok {
					return fmt.Errorf("%w: source %q is not configured (sources: %s)", config.ErrInvalid, target, strings.Join(sourceNames(e.cfg.Sources), ", "))
				}
			}
			store, err := e.openQueue(c.Context, false)
			if err != nil {
				return err
			}
			defer store.Close()
			if err := store.PauseSet(c.Context, kind, target, paused); err != nil {
				return fmt.Errorf("%s %s %s: %w", name, kind, target, err)
			}
			if paused {
				fmt.Fprintf(d.Stderr, "%s %s paused: queued jobs wait, running ones go on (rpt resume %s %s)\n", kind, target, kind, target)
			} else {
				fmt.Fprintf(d.Stderr, "%s %s resumed\n", kind, target)
			}
			return nil
		},
	}
}

func pruneCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name: "prune", Usage: "delete results and jobs past their retention (agents also do this in the background)",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "results", Usage: "keep results for `AGE` (default retention.results, 7d)"},
			&ucli.StringFlag{Name: "jobs", Usage: "keep finished jobs and their events for `AGE` (default retention.jobs, 90d)"},
		},
		Action: func(c *ucli.Context) error {
			e, err := loadEnv(c, d)
			if err != nil {
				return err
			}
			keepResults, keepJobs := e.cfg.Retention.Results, e.cfg.Retention.Jobs
			for _, f := range []struct {
				flag string
				dst  *time.Duration
			}{{"results", &keepResults}, {"jobs", &keepJobs}} {
				if v := c.String(f.flag); v != "" {
					dur, err := config.ParseDuration(v)
					if err != nil || dur <= 0 {
						return usagef("--%s %q: want a positive age like 7d or 36h", f.flag, v)
					}
					*f.dst = dur
				}
			}
			store, err := e.openQueue(c.Context, false)
			if err != nil {
				return err
			}
			defer store.Close()
			stores, closeStores, err := e.allResults(c.Context, store)
			if err != nil {
				return err
			}
			defer closeStores()
			now := d.Now()
			// Results first, through the stores that keep them (the configured one, the
			// queue database and results_read:, so results left behind by a switch of
			// results: age out too); then finished jobs. Only deletes: on a full queue
			// database this is what frees room.
			resultJobs := 0
			for _, rs := range stores {
				n, err := rs.Prune(c.Context, now.Add(-keepResults))
				resultJobs += n
				if err != nil {
					return fmt.Errorf("prune results in %s: %w", rs.Name(), err)
				}
			}
			res, err := store.Prune(c.Context, queue.PruneParams{JobsBefore: now.Add(-keepJobs)})
			res.ResultJobs = resultJobs
			if err != nil {
				return fmt.Errorf("prune: %w", err)
			}
			fmt.Fprintf(d.Stderr, "pruned the results of %d jobs (older than %s) and %d jobs (older than %s)\n", res.ResultJobs, age(keepResults), res.Jobs, age(keepJobs))
			return nil
		},
	}
}
