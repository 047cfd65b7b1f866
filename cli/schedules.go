package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	ucli "github.com/urfave/cli/v2"

	"rpt/crontab"
	"rpt/internal/source"
)

// schedulesCommand is rpt schedules: report schedules kept in the queue database,
// ticked by rpt cron run. Validation and the rest live in crontab.Schedules.
func schedulesCommand(d *Deps) *ucli.Command {
	specFlags := func(required bool) []ucli.Flag {
		return []ucli.Flag{
			&ucli.StringFlag{Name: "cron", Required: required, Usage: "`EXPR`: five crontab fields or an @-macro, e.g. '10 19 * * 1'"},
			&ucli.StringFlag{Name: "report", Required: required, Usage: "`REPORT` to run"},
			paramFlag(),
			&ucli.StringFlag{Name: "timezone", Usage: "`ZONE` the fields are read in (IANA); default rpt.yaml's timezone:, else UTC"},
			&ucli.StringSliceFlag{Name: "deliver", Usage: "deliver each run's result to `TARGET` (as rpt submit --deliver; repeat)"},
			&ucli.StringFlag{Name: "missed", Usage: "`POLICY` for runs missed while no rpt cron run ran: skip (default) or once (the latest, once, at start-up)"},
		}
	}
	withSchedules := func(c *ucli.Context, fn func(s *crontab.Schedules, e *env) error) error {
		e, err := loadEnv(c, d)
		if err != nil {
			return err
		}
		store, err := e.openQueueFor(c.Context, queueWrite)
		if err != nil {
			return err
		}
		defer store.Close()
		svc := e.jobs(store)
		svc.Now = d.Now
		return fn(&crontab.Schedules{Store: store, Jobs: svc}, e)
	}
	oneName := func(c *ucli.Context, what string) (string, error) {
		if c.NArg() != 1 {
			return "", usagef("schedules %s: want one NAME, got %d arguments", what, c.NArg())
		}
		return c.Args().First(), nil
	}
	return &ucli.Command{
		Name:  "schedules",
		Usage: "report schedules kept in the queue database (run by rpt cron run): list, show, add, update, rm, hold, resume",
		Subcommands: []*ucli.Command{
			{
				Name: "list", Usage: "each schedule: name, cron, timezone, report, state (active or held), last (occurrence), last_job and its status, next (occurrence)",
				Flags: []ucli.Flag{outputFlag("format: " + listFormats)},
				Action: func(c *ucli.Context) error {
					if c.NArg() != 0 {
						return usagef("schedules list: unexpected argument %q", c.Args().First())
					}
					format, err := listFormat(c, d)
					if err != nil {
						return err
					}
					return withSchedules(c, func(s *crontab.Schedules, e *env) error {
						list, err := s.List(c.Context)
						if err != nil {
							return err
						}
						switch format {
						case "json":
							if list == nil {
								list = []crontab.ScheduleView{}
							}
							return writeJSON(d.Stdout, list)
						case "yaml":
							return writeYAML(d.Stdout, list)
						}
						rows := make([][]any, len(list))
						for i, v := range list {
							rows[i] = scheduleRow(v)
						}
						var cols []source.Column
						for _, n := range []string{"name", "cron", "timezone", "report", "state", "last", "last_job", "status", "next"} {
							cols = append(cols, source.Column{Name: n, Type: source.TypeString})
						}
						return renderList(c, d, format, cols, rows)
					})
				},
			},
			{
				Name: "show", Usage: "one schedule in full (-o json for scripts)", ArgsUsage: "NAME",
				Flags: []ucli.Flag{outputFlag("format: table|json|yaml (table, the default: the schedule as YAML)")},
				Action: func(c *ucli.Context) error {
					name, err := oneName(c, "show")
					if err != nil {
						return err
					}
					return withSchedules(c, func(s *crontab.Schedules, e *env) error {
						v, err := s.Show(c.Context, name)
						if err != nil {
							return err
						}
						switch c.String("output") {
						case "json":
							return writeJSON(d.Stdout, v)
						case "yaml":
							return writeYAML(d.Stdout, v)
						}
						return writeYAML(d.Stdout, v)
					})
				},
			},
			{
				Name: "add", Usage: "add a schedule (checked as rpt submit and rpt cron lint would check it)", ArgsUsage: "NAME",
				Flags: specFlags(true),
				Action: func(c *ucli.Context) error {
					name, err := oneName(c, "add")
					if err != nil {
						return err
					}
					params, err := parseParams(c.StringSlice("param"))
					if err != nil {
						return err
					}
					return withSchedules(c, func(s *crontab.Schedules, e *env) error {
						sc, err := s.Add(c.Context, crontab.ScheduleSpec{Name: name, Cron: c.String("cron"), Timezone: c.String("timezone"),
							Report: c.String("report"), Params: params, Deliver: c.StringSlice("deliver"), Missed: c.String("missed")})
						if err != nil {
							return err
						}
						v, _ := s.Show(c.Context, sc.Name)
						fmt.Fprintf(d.Stdout, "schedule %s added: %s (%s) %s; next %s\n", sc.Name, sc.Cron, sc.Timezone, sc.Report, nextText(v))
						return nil
					})
				},
			},
			{
				Name: "update", Usage: "change a schedule: only the flags given change (-p replaces all parameters, --deliver all deliveries)", ArgsUsage: "NAME",
				Flags: specFlags(false),
				Action: func(c *ucli.Context) error {
					name, err := oneName(c, "update")
					if err != nil {
						return err
					}
					var ch crontab.ScheduleChange
					str := func(flag string) *string {
						if !c.IsSet(flag) {
							return nil
						}
						v := c.String(flag)
						return &v
					}
					ch.Cron, ch.Timezone, ch.Report, ch.Missed = str("cron"), str("timezone"), str("report"), str("missed")
					if c.IsSet("param") {
						if ch.Params, err = parseParams(c.StringSlice("param")); err != nil {
							return err
						}
					}
					if c.IsSet("deliver") {
						ch.Deliver = c.StringSlice("deliver")
					}
					return withSchedules(c, func(s *crontab.Schedules, e *env) error {
						sc, err := s.Update(c.Context, name, ch)
						if err != nil {
							return err
						}
						v, _ := s.Show(c.Context, sc.Name)
						fmt.Fprintf(d.Stdout, "schedule %s updated: %s (%s) %s; next %s\n", sc.Name, sc.Cron, sc.Timezone, sc.Report, nextText(v))
						return nil
					})
				},
			},
			{
				Name: "rm", Aliases: []string{"delete"}, Usage: "delete a schedule (its jobs stay)", ArgsUsage: "NAME",
				Action: func(c *ucli.Context) error {
					name, err := oneName(c, "rm")
					if err != nil {
						return err
					}
					return withSchedules(c, func(s *crontab.Schedules, e *env) error {
						if err := s.Delete(c.Context, name); err != nil {
							return err
						}
						fmt.Fprintf(d.Stdout, "schedule %s deleted\n", name)
						return nil
					})
				},
			},
			{
				Name: "hold", Usage: "stop a schedule firing until resumed (missed runs are not caught up)", ArgsUsage: "NAME",
				Action: func(c *ucli.Context) error {
					name, err := oneName(c, "hold")
					if err != nil {
						return err
					}
					return withSchedules(c, func(s *crontab.Schedules, e *env) error {
						if _, err := s.Hold(c.Context, name); err != nil {
							return err
						}
						fmt.Fprintf(d.Stdout, "schedule %s held\n", name)
						return nil
					})
				},
			},
			{
				Name: "resume", Usage: "let a held schedule fire again, from its next occurrence", ArgsUsage: "NAME",
				Action: func(c *ucli.Context) error {
					name, err := oneName(c, "resume")
					if err != nil {
						return err
					}
					return withSchedules(c, func(s *crontab.Schedules, e *env) error {
						v, err := s.Resume(c.Context, name)
						if err != nil {
							return err
						}
						sv, _ := s.Show(c.Context, v.Name)
						fmt.Fprintf(d.Stdout, "schedule %s resumed; next %s\n", name, nextText(sv))
						return nil
					})
				},
			},
		},
	}
}

func nextText(v crontab.ScheduleView) string {
	if v.Next == nil {
		return "never"
	}
	loc, err := time.LoadLocation(v.Timezone)
	if err != nil {
		loc = time.UTC
	}
	return v.Next.In(loc).Format("Mon 2006-01-02 15:04 MST")
}

func scheduleRow(v crontab.ScheduleView) []any {
	state := "active"
	if v.Held {
		state = "held"
	}
	last, lastJob, status := "-", "-", "-"
	if v.LastOccurrence != nil {
		last = v.LastOccurrence.UTC().Format(time.RFC3339)
	}
	if v.LastJobID != 0 {
		lastJob = fmt.Sprint(v.LastJobID)
		status = "pruned"
	}
	if v.LastJob != nil {
		status = string(v.LastJob.Status)
	}
	next := "-"
	if v.Next != nil {
		next = v.Next.UTC().Format(time.RFC3339)
	}
	return []any{v.Name, v.Cron, v.Timezone, v.Report, state, last, lastJob, status, next}
}

// cronRender prints the database schedules as a crontab file.
func cronRender(c *ucli.Context, d *Deps) error {
	e, err := loadEnv(c, d)
	if err != nil {
		return err
	}
	store, err := e.openQueue(c.Context, false)
	if err != nil {
		return err
	}
	defer store.Close()
	list, err := store.ScheduleList(c.Context)
	if err != nil {
		return err
	}
	exe := c.String("rpt")
	if exe == "" {
		exe = "/usr/local/bin/rpt"
		if p, err := os.Executable(); err == nil && filepath.IsAbs(p) && filepath.Base(p) == "rpt" {
			exe = p
		}
	}
	cfgPath := "/etc/rpt/rpt.yaml"
	if e.cfg != nil && filepath.IsAbs(e.cfg.File) {
		cfgPath = e.cfg.File
	}
	_, err = fmt.Fprint(d.Stdout, crontab.Render(list, exe, cfgPath))
	return err
}
