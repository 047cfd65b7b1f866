package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"rpt/crontab"
	"rpt/internal/config"
	"rpt/internal/errclass"
	"rpt/internal/jobs"
	"rpt/internal/results"
	"rpt/internal/source"
)

// cronCommand is rpt cron: check and preview plain crontab files. Parsing, the
// daylight-saving rule and the checks live in package crontab.
func cronCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name:  "cron",
		Usage: "check crontab files and show when their lines run",
		Subcommands: []*ucli.Command{
			{
				Name:      "run",
				Usage:     "run crontab files and the database schedules (rpt schedules) in this process (containers, hosts without cron): rpt submit lines through the queue with their exact occurrence, others through /bin/sh; JSON log on stderr; SIGTERM stops",
				ArgsUsage: "[FILE...]",
				Flags: []ucli.Flag{
					&ucli.BoolFlag{Name: "schedules", Value: true, Usage: "also run the schedules kept in the queue database (--schedules=false: the files only)"},
				},
				Action: func(c *ucli.Context) error {
					if c.NArg() == 0 && !c.Bool("schedules") {
						return usagef("cron run: want one or more crontab FILEs, or the database schedules")
					}
					return cronRun(c, d)
				},
			},
			{
				Name:  "render",
				Usage: "print the database schedules (rpt schedules) as a crontab file for a host's cron",
				Flags: []ucli.Flag{
					&ucli.StringFlag{Name: "rpt", Usage: "`PATH` of rpt in the lines; default this binary's, else /usr/local/bin/rpt"},
				},
				Action: func(c *ucli.Context) error {
					if c.NArg() != 0 {
						return usagef("cron render: unexpected argument %q", c.Args().First())
					}
					return cronRender(c, d)
				},
			},
			{
				Name:      "lint",
				Usage:     "check crontab files as cron and rpt submit would read them (exit 2 on any error)",
				ArgsUsage: "FILE...",
				Action: func(c *ucli.Context) error {
					if c.NArg() == 0 {
						return usagef("cron lint: want one or more crontab FILEs")
					}
					return cronLint(c, d)
				},
			},
			{
				Name:      "next",
				Usage:     "print the next runs of each line of a crontab file, in its time zone",
				ArgsUsage: "FILE",
				Flags: []ucli.Flag{
					&ucli.IntFlag{Name: "n", Value: 3, Usage: "`N` runs per line"},
					&ucli.StringFlag{Name: "from", Usage: "start after `TIME` (RFC 3339, or 'YYYY-MM-DD HH:MM' in this host's zone); default now"},
					outputFlag("format: table|json|tsv (default: a block per line); table and tsv columns: line, spec, zone, run (in the line's zone), run_utc, command; a line that never runs has an empty run"),
				},
				Action: func(c *ucli.Context) error {
					if c.NArg() != 1 {
						return usagef("cron next: want one crontab FILE, got %d arguments", c.NArg())
					}
					return cronNext(c, d)
				},
			},
		},
	}
}

func cronLint(c *ucli.Context, d *Deps) error {
	e, err := loadEnv(c, d)
	if err != nil {
		return err
	}
	own := e.jobs(nil)
	services := map[string]*jobs.Service{}
	// A line's --config or RPT_CONFIG names the configuration cron runs it with: check
	// against that file when this host has it, else against this command's own.
	service := func(path string) (*jobs.Service, error) {
		if path == "" {
			return own, nil
		}
		if s, ok := services[path]; ok {
			return s, nil
		}
		cfg, err := config.Load(path)
		switch {
		case errors.Is(err, fs.ErrNotExist) || (err != nil && strings.Contains(err.Error(), "does not exist")):
			fmt.Fprintf(d.Stderr, "rpt: cron lint: %s is not on this host; rpt submit lines are checked against %s\n", path, jobs.ConfigName(e.cfg))
			services[path] = own
			return own, nil
		case err != nil:
			return nil, err
		}
		s := &jobs.Service{Config: cfg, Loc: cfg.Location(), Now: d.Now}
		services[path] = s
		return s, nil
	}
	opts := crontab.LintOptions{Service: service, Now: d.Now()}
	errs, warns := 0, 0
	for _, path := range c.Args().Slice() {
		data, err := crontab.ReadFile(path)
		var problems []crontab.Problem
		if err != nil {
			problems = []crontab.Problem{{File: path, Severity: crontab.SevError, Msg: strings.TrimPrefix(err.Error(), path+": ")}}
		} else {
			problems = crontab.LintFile(path, data, time.Local, opts)
		}
		for _, p := range problems {
			fmt.Fprintln(d.Stdout, p)
			if p.Severity == crontab.SevError {
				errs++
			} else {
				warns++
			}
		}
	}
	if errs > 0 {
		return errclass.Errorf(errclass.Invalid, "cron lint: %s, %s", plural(errs, "error"), plural(warns, "warning"))
	}
	if warns > 0 {
		fmt.Fprintf(d.Stderr, "cron lint: no errors, %s\n", plural(warns, "warning"))
	}
	return nil
}

func cronRun(c *ucli.Context, d *Deps) error {
	var files []*crontab.File
	for _, path := range c.Args().Slice() {
		f, err := crontab.Load(path, time.Local)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	e, err := loadEnv(c, d)
	if err != nil {
		return err
	}
	ctx := c.Context
	store, err := e.openQueueFor(ctx, queueWrite)
	if err != nil {
		return err
	}
	defer store.Close()
	pub := &lazyNotifier{e: e, ctx: ctx, store: store}
	defer pub.close()
	svc := e.jobs(store)
	svc.Publisher = pub
	log := slog.New(slog.NewJSONHandler(d.Stderr, nil))
	r, err := crontab.NewRunner(files, svc, log)
	if err != nil {
		return err
	}
	r.Now = d.Now
	r.Watch(c.Args().Slice(), time.Local)
	if c.Bool("schedules") {
		r.Schedules = &crontab.Schedules{Store: store, Jobs: svc}
	}
	log.Info("running", "lines", r.String(), "database_schedules", c.Bool("schedules"))
	return r.Run(ctx)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func cronNext(c *ucli.Context, d *Deps) error {
	n := c.Int("n")
	if n < 1 || n > 1000 {
		return usagef("cron next: -n %d: want 1 to 1000", n)
	}
	from := d.Now()
	if s := c.String("from"); s != "" {
		t, err := parseTime("--from", s, time.Local)
		if err != nil {
			return err
		}
		from = t
	}
	f, err := crontab.Load(c.Args().First(), time.Local)
	if err != nil {
		return err
	}
	if format := c.String("output"); format != "" {
		return cronNextFormatted(c.Context, d, format, f, from, n)
	}
	for i, e := range f.Entries {
		if i > 0 {
			fmt.Fprintln(d.Stdout)
		}
		fmt.Fprintf(d.Stdout, "%s:%d: %s (%s): %s\n", f.Name, e.Line, e.Spec, e.Loc, strings.TrimSpace(e.Command))
		at := from
		for k := 0; k < n; k++ {
			at = e.Schedule.Next(at, e.Loc)
			if at.IsZero() {
				fmt.Fprintln(d.Stdout, "  never")
				break
			}
			fmt.Fprintf(d.Stdout, "  %s  %s\n", at.In(e.Loc).Format("Mon 2006-01-02 15:04 MST"), at.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// cronNextRun is one entry of cron next -o json: a crontab line and its next runs, in
// its zone (RFC 3339 with the offset); empty runs: it never runs.
type cronNextRun struct {
	File    string   `json:"file"`
	Line    int      `json:"line"`
	Spec    string   `json:"spec"`
	Zone    string   `json:"zone"`
	Command string   `json:"command"`
	Runs    []string `json:"runs"`
}

func cronNextFormatted(ctx context.Context, d *Deps, format string, f *crontab.File, from time.Time, n int) error {
	var views []cronNextRun
	var rows [][]any
	for _, e := range f.Entries {
		v := cronNextRun{File: f.Name, Line: e.Line, Spec: e.Spec, Zone: e.Loc.String(), Command: strings.TrimSpace(e.Command), Runs: []string{}}
		at := from
		for k := 0; k < n; k++ {
			at = e.Schedule.Next(at, e.Loc)
			if at.IsZero() {
				break
			}
			v.Runs = append(v.Runs, at.In(e.Loc).Format(time.RFC3339))
			rows = append(rows, []any{int64(e.Line), e.Spec, v.Zone, at.In(e.Loc).Format("Mon 2006-01-02 15:04 MST"), at.UTC().Format(time.RFC3339), v.Command})
		}
		if len(v.Runs) == 0 {
			rows = append(rows, []any{int64(e.Line), e.Spec, v.Zone, "", "", v.Command})
		}
		views = append(views, v)
	}
	if format == "json" {
		if views == nil {
			views = []cronNextRun{}
		}
		return writeJSON(d.Stdout, views)
	}
	cols := []source.Column{{Name: "line", Type: source.TypeInt}, {Name: "spec", Type: source.TypeString},
		{Name: "zone", Type: source.TypeString}, {Name: "run", Type: source.TypeString},
		{Name: "run_utc", Type: source.TypeString}, {Name: "command", Type: source.TypeString}}
	return results.Render(ctx, d.Stdout, format, newMemRows(cols, rows), results.RenderOptions{})
}
