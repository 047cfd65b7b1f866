package cli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"rpt/etl"
	"rpt/internal/errclass"
	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/internal/source"
)

// etlWarehouse is the source ETLs load into (as history tables do).
const etlWarehouse = "warehouse"

func etlDirFlag() ucli.Flag {
	return &ucli.StringFlag{Name: "etl", EnvVars: []string{"RPT_ETL"}, Usage: "`DIR` of ETL definitions besides the shipped ones (path-list separated)"}
}

func etlCatalog(c *ucli.Context) (*etl.Catalog, error) {
	var dirs []string
	if s := c.String("etl"); s != "" {
		dirs = filepath.SplitList(s)
	}
	cat, err := etl.LoadCatalog(dirs...)
	return cat, etlErr(err)
}

// etlErr classes the etl package's errors for the exit code: a bad definition or a
// refused guard is bad input (2).
func etlErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, etl.ErrInvalid) || errors.Is(err, etl.ErrGuard) {
		return errclass.Wrap(errclass.Invalid, err)
	}
	return err
}

func etlCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name:  "etl",
		Usage: "ETL from Plex to the warehouse: list, show, run in process, submit to the agents, status",
		Subcommands: []*ucli.Command{
			{
				Name: "list", Usage: "the ETLs this machine knows: name, mode, source, target, after",
				Flags: []ucli.Flag{outputFlag("format: " + listFormats), etlDirFlag()},
				Action: func(c *ucli.Context) error {
					format, err := listFormat(c, d)
					if err != nil {
						return err
					}
					cat, err := etlCatalog(c)
					if err != nil {
						return err
					}
					type view struct {
						Name   string   `json:"name"`
						Mode   string   `json:"mode"`
						Source string   `json:"source"`
						Target string   `json:"target"`
						After  []string `json:"after"`
						File   string   `json:"file"`
					}
					var views []view
					var rows [][]any
					for _, def := range cat.List() {
						after := def.After
						if after == nil {
							after = []string{}
						}
						views = append(views, view{def.Name, def.Mode, def.Source, def.Target, after, def.File})
						rows = append(rows, []any{def.Name, def.Mode, def.Source, def.Target, strings.Join(def.After, ", ")})
					}
					cols := []source.Column{{Name: "name", Type: source.TypeString}, {Name: "mode", Type: source.TypeString},
						{Name: "source", Type: source.TypeString}, {Name: "target", Type: source.TypeString}, {Name: "after", Type: source.TypeString}}
					return writeListing(c, d, format, views, cols, rows)
				},
			},
			{
				Name: "show", Usage: "print an ETL's definition: the file as written (table), or its parsed form (json, yaml)", ArgsUsage: "NAME",
				Flags: []ucli.Flag{etlDirFlag(), outputFlag("format: table|json|yaml")},
				Action: func(c *ucli.Context) error {
					if c.NArg() != 1 {
						return usagef("etl show: want one ETL NAME")
					}
					cat, err := etlCatalog(c)
					if err != nil {
						return err
					}
					def, err := cat.Get(c.Args().First())
					if err != nil {
						return etlErr(err)
					}
					return showDefinition(d.Stdout, c.String("output"), def.File, def.Raw, etlViewOf(def))
				},
			},
			{
				Name: "run", Usage: "run ETLs in this process, their after: dependencies first (no queue)", ArgsUsage: "NAME...",
				Flags: []ucli.Flag{etlDirFlag(),
					&ucli.BoolFlag{Name: "only", Usage: "run only the named ETLs, not their dependencies"},
					&ucli.BoolFlag{Name: "force", Usage: "load what a guard refuses (an empty or shrunken full load, a reconcile deleting more than reconcile.max_delete)"},
					&ucli.IntFlag{Name: "from", Usage: "period-range ETLs: first period `YYYYMM` to re-load", DefaultText: "the ETL's own window"},
					&ucli.IntFlag{Name: "to", Usage: "period-range ETLs: last period `YYYYMM` to re-load", DefaultText: "the ETL's own window"},
					&ucli.BoolFlag{Name: "reconcile", Usage: "also delete target rows whose keys the source no longer has, over every row (incremental and period-range ETLs)"},
				},
				Action: func(c *ucli.Context) error {
					if c.NArg() == 0 {
						return usagef("etl run: want at least one ETL NAME (rpt etl list shows them)")
					}
					if (c.Int("from") == 0) != (c.Int("to") == 0) {
						return usagef("--from and --to go together")
					}
					e, err := loadEnv(c, d)
					if err != nil {
						return err
					}
					cat, err := etlCatalog(c)
					if err != nil {
						return err
					}
					var defs []*etl.Definition
					if c.Bool("only") {
						for _, n := range c.Args().Slice() {
							def, err := cat.Get(n)
							if err != nil {
								return etlErr(err)
							}
							defs = append(defs, def)
						}
					} else if defs, err = cat.Order(c.Args().Slice()); err != nil {
						return etlErr(err)
					}
					opts := etl.Options{Force: c.Bool("force"), From: c.Int("from"), To: c.Int("to"), Reconcile: c.Bool("reconcile")}
					for _, def := range defs {
						st, err := runETL(c.Context, e, def, opts, d)
						if len(st.Parts) > 0 {
							// A per_pcn ETL: the partitions that committed stay committed.
							for _, p := range st.Parts {
								fmt.Fprintf(d.Stdout, "%s\n", describeRun(def, p))
							}
						}
						if err != nil {
							return err
						}
						if len(st.Parts) == 0 {
							fmt.Fprintf(d.Stdout, "%s\n", describeRun(def, st))
						}
					}
					return nil
				},
			},
			{
				Name: "submit", Usage: "queue an ETL run for the agents; prints the job id (with --pipeline, its after: ETLs too, one id a line)", ArgsUsage: "NAME",
				Flags: []ucli.Flag{etlDirFlag(),
					&ucli.BoolFlag{Name: "pipeline", Usage: "also queue the ETLs it runs after (after:, transitively), dependencies first, each job waiting for its prerequisites' jobs; runs already queued or running are joined"},
					&ucli.BoolFlag{Name: "force", Usage: "load what a guard refuses (an empty or shrunken full load); with --pipeline, for NAME only"},
					&ucli.IntFlag{Name: "from", Usage: "period-range ETLs: first period `YYYYMM` to re-load", DefaultText: "the ETL's own window"},
					&ucli.IntFlag{Name: "to", Usage: "period-range ETLs: last period `YYYYMM` to re-load", DefaultText: "the ETL's own window"},
					&ucli.BoolFlag{Name: "reconcile", Usage: "also delete target rows whose keys the source no longer has, over every row; with --pipeline, for NAME only"},
					&ucli.IntFlag{Name: "priority", Usage: "higher `N` runs first"},
					&ucli.BoolFlag{Name: "wait", Usage: "wait until the job (with --pipeline, NAME's job, the last) ends; exit as it ended (0 ok, 1 failed, 3 cancelled)"},
					&ucli.DurationFlag{Name: "timeout", Usage: "with --wait: stop waiting after `DURATION` (exit 4; the job goes on)", DefaultText: "none, wait until it ends"},
					outputFlag("format: table|json|yaml (default: the job ids, one a line)"),
				},
				Action: func(c *ucli.Context) error {
					format := c.String("output")
					switch format {
					case "", "table", "json", "yaml":
					default:
						return usagef("-o/--output: unknown format %q (want table|json|yaml)", format)
					}
					if c.NArg() != 1 {
						return usagef("etl submit: want one ETL NAME (rpt etl list shows them)")
					}
					if (c.Int("from") == 0) != (c.Int("to") == 0) {
						return usagef("--from and --to go together")
					}
					if c.IsSet("timeout") && !c.Bool("wait") {
						return usagef("--timeout needs --wait")
					}
					if err := jobs.CheckPriority(c.Int("priority")); err != nil {
						return err
					}
					e, err := loadEnv(c, d)
					if err != nil {
						return err
					}
					cat, err := etlCatalog(c)
					if err != nil {
						return err
					}
					def, err := cat.Get(c.Args().First())
					if err != nil {
						return etlErr(err)
					}
					if def.Mode != etl.ModePeriodRange && c.Int("from") != 0 {
						return usagef("--from/--to: %s is a %s ETL, not period-range", def.Name, def.Mode)
					}
					order := []*etl.Definition{def}
					if c.Bool("pipeline") {
						if order, err = cat.Order([]string{def.Name}); err != nil {
							return etlErr(err)
						}
					}
					for _, od := range order {
						for _, name := range []string{od.Source, etlWarehouse} {
							if _, ok := e.cfg.Sources[name]; !ok {
								return errclass.Errorf(errclass.Invalid, "%s: source %q is not configured in %s", od.File, name, jobs.ConfigName(e.cfg))
							}
						}
					}
					args := etl.JobArgs{Force: c.Bool("force"), From: c.Int("from"), To: c.Int("to"), Reconcile: c.Bool("reconcile")}
					token := jobs.NewSubmitToken("cli")
					each := func(od *etl.Definition, p *queue.JobEnqueueParams) {
						p.Priority = c.Int("priority")
						p.Origin = "cli"
						p.SubmittedBy = jobs.Submitter()
						p.SubmitToken = token
						if len(order) > 1 {
							p.SubmitToken = token + ":" + od.Name
						}
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
					var queued []etl.PipelineJob
					if err := e.retryQueue(ctx, func(ctx context.Context) (err error) {
						queued, err = etl.EnqueuePipeline(ctx, store, order, args, each)
						return err
					}); err != nil {
						return etlErr(fmt.Errorf("submit etl %s: %w", def.Name, err))
					}
					woke := false
					for _, q := range queued {
						switch {
						case q.Joined:
							fmt.Fprintf(d.Stderr, "job %d already %s for %s; joined it\n", q.Job.ID, q.Job.Status, q.ETL)
						case !woke:
							pub.PublishWake()
							woke = true
						}
					}
					if err := printPipeline(c, d, format, queued); err != nil {
						return err
					}
					last := queued[len(queued)-1].Job
					if d.StderrTTY && last.Status == queue.StatusQueued && len(queued) == 1 {
						warnWait(ctx, d, svc, last)
					}
					if !c.Bool("wait") {
						return nil
					}
					j, err := waitJob(ctx, e, svc, pub.client(), last.ID, c.Duration("timeout"))
					if err != nil {
						return err
					}
					return jobs.Outcome(j)
				},
			},
			{
				Name: "verify", Usage: "compare an ETL's whole extract with its target: rows and exact sums per first key column (exit 1 when they differ)", ArgsUsage: "NAME...",
				Flags: []ucli.Flag{etlDirFlag(), outputFlag("format: " + listFormats)},
				Action: func(c *ucli.Context) error {
					if c.NArg() == 0 {
						return usagef("etl verify: want at least one ETL NAME")
					}
					format, e, cat, wh, db, err := etlWarehouseCommand(c, d)
					if err != nil {
						return err
					}
					defer wh.Close()
					type view struct {
						ETL string `json:"etl"`
						etl.VerifyGroup
					}
					var views []view
					var rows [][]any
					differ := 0
					for _, name := range c.Args().Slice() {
						def, err := cat.Get(name)
						if err != nil {
							return etlErr(err)
						}
						if _, ok := e.cfg.Sources[def.Source]; !ok {
							return errclass.Errorf(errclass.Invalid, "%s: source %q is not configured in %s", def.File, def.Source, jobs.ConfigName(e.cfg))
						}
						src, err := e.openSource(c.Context, def.Source)
						if err != nil {
							return err
						}
						groups, err := etl.Verify(c.Context, def, src, db)
						src.Close()
						if err != nil {
							return etlErr(err)
						}
						for _, g := range groups {
							if len(g.Differs) > 0 {
								differ++
							}
							views = append(views, view{def.Name, g})
							rows = append(rows, []any{def.Name, g.Group, g.SourceRows, g.TargetRows, strings.Join(g.Differs, ", ")})
						}
					}
					cols := []source.Column{{Name: "etl", Type: source.TypeString}, {Name: "group", Type: source.TypeString},
						{Name: "source_rows", Type: source.TypeInt}, {Name: "target_rows", Type: source.TypeInt}, {Name: "differs", Type: source.TypeString}}
					if err := writeListing(c, d, format, views, cols, rows); err != nil {
						return err
					}
					if differ > 0 {
						return errclass.Errorf(errclass.JobFailed, "etl verify: %d groups differ between source and target", differ)
					}
					return nil
				},
			},
			{
				Name: "status", Usage: "last run, watermark, rows and age of each ETL (from the warehouse's rpt_etl_state)",
				Flags: []ucli.Flag{outputFlag("format: " + listFormats), etlDirFlag()},
				Action: func(c *ucli.Context) error {
					format, _, cat, wh, db, err := etlWarehouseCommand(c, d)
					if err != nil {
						return err
					}
					defer wh.Close()
					states, err := etl.States(c.Context, db)
					if err != nil {
						return err
					}
					now := d.Now()
					type view struct {
						Name        string     `json:"name"`
						PCN         int        `json:"pcn,omitempty"`
						Mode        string     `json:"mode"`
						Target      string     `json:"target"`
						LastSuccess *time.Time `json:"last_success"`
						AgeSeconds  *int64     `json:"age_seconds"`
						Watermark   string     `json:"watermark,omitempty"`
						RowsRead    int64      `json:"rows_read"`
						RowsWritten int64      `json:"rows_written"`
						Runs        int64      `json:"runs"`
						JobID       int64      `json:"job_id,omitempty"`
						Loader      string     `json:"loader,omitempty"`
						DurationMS  int64      `json:"duration_ms"`
						RowsPerSec  int64      `json:"rows_per_second"`
						Reconciled  int64      `json:"rows_reconciled"`
						LastError   string     `json:"last_error,omitempty"`
						LastErrorAt *time.Time `json:"last_error_at,omitempty"`
					}
					var views []view
					var rows [][]any
					// A per_pcn ETL: its line (the oldest partition's last success) and one
					// line per partition.
					var list []etl.State
					for _, def := range cat.List() {
						s := states[def.Name]
						s.Name, s.Mode, s.Target = def.Name, def.Mode, def.Target
						list = append(list, s)
						list = append(list, s.Partitions...)
					}
					for _, s := range list {
						v := view{Name: s.Name, PCN: s.PCN, Mode: s.Mode, Target: s.Target, Watermark: s.Watermark, RowsRead: s.RowsRead,
							RowsWritten: s.RowsWritten, Runs: s.Runs, JobID: s.JobID, Loader: s.Loader, DurationMS: s.Duration.Milliseconds(),
							Reconciled: s.Reconciled, LastError: s.LastError, LastErrorAt: s.LastErrorAt}
						if s.Duration > 0 {
							v.RowsPerSec = int64(float64(s.RowsWritten) / s.Duration.Seconds())
						}
						last, age := "never", ""
						if s.LastSuccess != nil {
							ls := *s.LastSuccess
							v.LastSuccess = &ls
							a := int64(now.Sub(ls).Seconds())
							v.AgeSeconds = &a
							last = ls.UTC().Format(time.RFC3339)
							age = roundDur(now.Sub(ls)).String()
						}
						part := ""
						if s.PCN != 0 {
							part = fmt.Sprintf("pcn %d", s.PCN)
						}
						failed := ""
						if s.LastErrorAt != nil && (s.LastSuccess == nil || s.LastErrorAt.After(*s.LastSuccess)) {
							failed = "failed " + roundDur(now.Sub(*s.LastErrorAt)).String() + " ago"
						}
						views = append(views, v)
						rows = append(rows, []any{s.Name, part, s.Mode, last, age, s.Watermark, s.RowsRead, s.RowsWritten, v.RowsPerSec, s.Runs, failed})
					}
					cols := []source.Column{{Name: "name", Type: source.TypeString}, {Name: "partition", Type: source.TypeString}, {Name: "mode", Type: source.TypeString},
						{Name: "last_success", Type: source.TypeString}, {Name: "age", Type: source.TypeString},
						{Name: "watermark", Type: source.TypeString}, {Name: "rows_read", Type: source.TypeInt},
						{Name: "rows_written", Type: source.TypeInt}, {Name: "rows_per_second", Type: source.TypeInt}, {Name: "runs", Type: source.TypeInt},
						{Name: "last_error", Type: source.TypeString}}
					return writeListing(c, d, format, views, cols, rows)
				},
			},
		},
	}
}

// printPipeline prints the jobs of an etl submit, dependencies first: the ids one a
// line (what scripts read), or a table, JSON or YAML of each ETL, its job, whether it
// was joined and the jobs it waits for.
func printPipeline(c *ucli.Context, d *Deps, format string, queued []etl.PipelineJob) error {
	type view struct {
		ETL    string       `json:"etl" yaml:"etl"`
		ID     int64        `json:"id" yaml:"id"`
		Status queue.Status `json:"status" yaml:"status"`
		Joined bool         `json:"joined" yaml:"joined"`
		After  []int64      `json:"after" yaml:"after"`
	}
	views := make([]view, 0, len(queued))
	var rows [][]any
	for _, q := range queued {
		after := q.After
		if after == nil {
			after = []int64{}
		}
		views = append(views, view{q.ETL, q.Job.ID, q.Job.Status, q.Joined, after})
		ids := make([]string, len(after))
		for i, id := range after {
			ids[i] = fmt.Sprint(id)
		}
		rows = append(rows, []any{q.ETL, q.Job.ID, string(q.Job.Status), q.Joined, strings.Join(ids, ", ")})
	}
	switch format {
	case "json":
		return writeJSON(d.Stdout, views)
	case "yaml":
		return writeYAML(d.Stdout, views)
	case "table":
		cols := []source.Column{{Name: "etl", Type: source.TypeString}, {Name: "id", Type: source.TypeInt},
			{Name: "status", Type: source.TypeString}, {Name: "joined", Type: source.TypeBool}, {Name: "after", Type: source.TypeString}}
		return results.Render(c.Context, d.Stdout, "table", newMemRows(cols, rows), results.RenderOptions{})
	}
	for _, v := range views {
		fmt.Fprintln(d.Stdout, v.ID)
	}
	return nil
}

// openWarehouse opens the warehouse source and its database handle; ETL targets are
// MySQL/MariaDB.
// etlWarehouseCommand is what etl verify and status start from: the output format,
// the configuration, the ETL catalogue and the warehouse the ETLs load, open (the
// caller closes wh).
func etlWarehouseCommand(c *ucli.Context, d *Deps) (format string, e *env, cat *etl.Catalog, wh source.Source, db *sql.DB, err error) {
	if format, err = listFormat(c, d); err != nil {
		return "", nil, nil, nil, nil, err
	}
	if e, err = loadEnv(c, d); err != nil {
		return "", nil, nil, nil, nil, err
	}
	if cat, err = etlCatalog(c); err != nil {
		return "", nil, nil, nil, nil, err
	}
	if wh, db, err = openWarehouse(c.Context, e); err != nil {
		return "", nil, nil, nil, nil, err
	}
	return format, e, cat, wh, db, nil
}

func openWarehouse(ctx context.Context, e *env) (source.Source, *sql.DB, error) {
	if _, ok := e.cfg.Sources[etlWarehouse]; !ok {
		return nil, nil, errclass.Errorf(errclass.Invalid, "etl: no source %q in %s: ETLs load into it", etlWarehouse, jobs.ConfigName(e.cfg))
	}
	wh, err := e.openSource(ctx, etlWarehouse)
	if err != nil {
		return nil, nil, err
	}
	withDB, ok := wh.(interface{ DB() *sql.DB })
	if !ok || wh.Driver() != source.DialectMySQL {
		wh.Close()
		return nil, nil, errclass.Errorf(errclass.Invalid, "etl: source %q is %s; ETL targets must be mysql (MySQL 8 or MariaDB 10.6+)", etlWarehouse, wh.Driver())
	}
	return wh, withDB.DB(), nil
}

// runETL runs one ETL in process, printing progress on stderr.
func runETL(ctx context.Context, e *env, def *etl.Definition, opts etl.Options, d *Deps) (etl.Stats, error) {
	if _, ok := e.cfg.Sources[def.Source]; !ok {
		return etl.Stats{}, errclass.Errorf(errclass.Invalid, "%s: source: %q is not configured in %s (have %s)", def.File, def.Source, jobs.ConfigName(e.cfg), strings.Join(sourceNames(e.cfg.Sources), ", "))
	}
	wh, db, err := openWarehouse(ctx, e)
	if err != nil {
		return etl.Stats{}, err
	}
	defer wh.Close()
	src, err := e.openSource(ctx, def.Source)
	if err != nil {
		return etl.Stats{}, err
	}
	defer src.Close()
	start := time.Now()
	opts.Progress = func(read, written int64) {
		if secs := time.Since(start).Seconds(); secs > 0 {
			fmt.Fprintf(d.Stderr, "%s: %d rows read, %d written (%.0f rows/s)\n", def.Name, read, written, float64(written)/secs)
		}
	}
	st, err := etl.Run(ctx, def, src, db, opts)
	if err != nil {
		err = etlErr(err)
		if jobs.Class(err) == errclass.Internal {
			err = errclass.Wrap(errclass.JobFailed, err)
		}
		return st, err
	}
	return st, nil
}

func describeRun(def *etl.Definition, st etl.Stats) string {
	if st.Skipped != "" {
		return fmt.Sprintf("%s: skipped: %s", def.Name, st.Skipped)
	}
	name := def.Name
	if st.PCN != 0 {
		name = fmt.Sprintf("%s pcn %d", def.Name, st.PCN)
		if st.Error != "" {
			return fmt.Sprintf("%s: failed (its rows are as they were): %s", name, st.Error)
		}
	}
	s := fmt.Sprintf("%s: %s -> %s: read %d, wrote %d", name, def.Mode, def.Target, st.Read, st.Written)
	if st.Deleted > 0 {
		s += fmt.Sprintf(", replaced %d", st.Deleted)
	}
	if st.Reconciled > 0 || st.Compared > 0 {
		s += fmt.Sprintf(", reconcile deleted %d of %d", st.Reconciled, st.Compared)
	}
	if len(st.AddedColumns) > 0 {
		s += ", added column " + strings.Join(st.AddedColumns, ", ")
	}
	if st.Watermark != "" {
		s += ", watermark " + st.Watermark
	}
	if def.Mode == etl.ModePeriodRange {
		if st.From == 0 {
			s += ", every period (first run)"
		} else {
			s += fmt.Sprintf(", periods %d-%d", st.From, st.To)
		}
	}
	return s + fmt.Sprintf(" (%s, %s)", st.Loader, roundDur(st.Elapsed))
}

// etlView is the parsed form of an ETL definition that etl show -o json|yaml prints.
type etlView struct {
	Name           string            `json:"name" yaml:"name"`
	Title          string            `json:"title,omitempty" yaml:"title,omitempty"`
	Description    string            `json:"description,omitempty" yaml:"description,omitempty"`
	File           string            `json:"file" yaml:"file"`
	Source         string            `json:"source" yaml:"source"`
	After          []string          `json:"after,omitempty" yaml:"after,omitempty"`
	SQL            string            `json:"sql,omitempty" yaml:"sql,omitempty"`
	Table          string            `json:"table,omitempty" yaml:"table,omitempty"`
	Procedure      string            `json:"procedure,omitempty" yaml:"procedure,omitempty"`
	DataSource     *etlDSView        `json:"datasource,omitempty" yaml:"datasource,omitempty"`
	Columns        map[string]string `json:"columns,omitempty" yaml:"columns,omitempty"`
	Target         string            `json:"target" yaml:"target"`
	Key            []string          `json:"key,omitempty" yaml:"key,omitempty"`
	Mode           string            `json:"mode" yaml:"mode"`
	Incremental    *etlIncView       `json:"incremental,omitempty" yaml:"incremental,omitempty"`
	PeriodColumn   string            `json:"period_column,omitempty" yaml:"period_column,omitempty"`
	SnapshotColumn string            `json:"snapshot_column,omitempty" yaml:"snapshot_column,omitempty"`
	MaxShrink      float64           `json:"max_shrink,omitempty" yaml:"max_shrink,omitempty"`
	AllowEmpty     bool              `json:"allow_empty,omitempty" yaml:"allow_empty,omitempty"`
	PerPCN         *etlPCNView       `json:"per_pcn,omitempty" yaml:"per_pcn,omitempty"`
	Reconcile      *etlReconView     `json:"reconcile,omitempty" yaml:"reconcile,omitempty"`
}

type etlDSView struct {
	Key     int               `json:"key" yaml:"key"`
	Name    string            `json:"name,omitempty" yaml:"name,omitempty"`
	Inputs  map[string]string `json:"inputs,omitempty" yaml:"inputs,omitempty"`
	Columns []string          `json:"columns" yaml:"columns"`
}

type etlPCNView struct {
	Column string `json:"column" yaml:"column"`
	PCNs   []int  `json:"pcns,omitempty" yaml:"pcns,omitempty"` // none: the source's accounts
}

type etlReconView struct {
	Within    string  `json:"within" yaml:"within"`
	KeysSQL   string  `json:"keys_sql,omitempty" yaml:"keys_sql,omitempty"`
	MaxDelete float64 `json:"max_delete" yaml:"max_delete"`
}

type etlIncView struct {
	Column   string `json:"column" yaml:"column"`
	Lookback string `json:"lookback,omitempty" yaml:"lookback,omitempty"` // a Go duration
	Nulls    string `json:"nulls,omitempty" yaml:"nulls,omitempty"`
}

func etlViewOf(def *etl.Definition) etlView {
	v := etlView{Name: def.Name, Title: def.Title, Description: def.Description, File: def.File, Source: def.Source,
		After: def.After, SQL: def.SQL, Table: def.Table, Target: def.Target, Key: def.Key, Mode: def.Mode,
		SnapshotColumn: def.SnapshotColumn, MaxShrink: def.MaxShrink, AllowEmpty: def.AllowEmpty}
	if def.Procedure != nil {
		v.Procedure = def.Procedure.Name
	}
	if len(def.Columns) > 0 {
		v.Columns = map[string]string{}
		for k, t := range def.Columns {
			v.Columns[k] = string(t)
		}
	}
	if def.Increment != nil {
		v.Incremental = &etlIncView{Column: def.Increment.Column, Nulls: def.Increment.Nulls}
		if def.Increment.Lookback > 0 {
			v.Incremental.Lookback = shortDuration(def.Increment.Lookback)
		}
	}
	if def.Period != nil {
		v.PeriodColumn = def.Period.Column
	}
	if ds := def.DataSource; ds != nil {
		v.DataSource = &etlDSView{Key: ds.Key, Name: ds.Name, Inputs: ds.Inputs, Columns: ds.Columns}
	}
	if p := def.PerPCN; p != nil {
		v.PerPCN = &etlPCNView{Column: p.Column, PCNs: p.PCNs}
	}
	if r := def.Reconcile; r != nil {
		v.Reconcile = &etlReconView{Within: r.Within, KeysSQL: r.KeysSQL, MaxDelete: r.MaxDelete}
	}
	return v
}
