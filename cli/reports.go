package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"rpt/internal/errclass"
	"rpt/internal/jobs"
	"rpt/internal/results"
	"rpt/internal/source"
	"rpt/reportdefs"
)

func reportsCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name:  "reports",
		Usage: "list, show, validate, run and publish report definitions",
		Subcommands: []*ucli.Command{
			publishCommand(d),
			{
				Name: "list", Usage: "the reports this machine knows: name, title, source, params", Flags: []ucli.Flag{outputFlag("format: " + listFormats)},
				Action: func(c *ucli.Context) error {
					format, err := listFormat(c, d)
					if err != nil {
						return err
					}
					e, err := loadEnv(c, d)
					if err != nil {
						return err
					}
					cat, err := e.catalog()
					if err != nil {
						return err
					}
					defs := cat.List()
					type reportView struct {
						Name   string   `json:"name"`
						Title  string   `json:"title"`
						Source string   `json:"source"`
						Params []string `json:"params"`
						File   string   `json:"file"`
					}
					views := make([]reportView, len(defs))
					rows := make([][]any, len(defs))
					for i, def := range defs {
						var ps []string
						for _, p := range def.Params {
							ps = append(ps, p.Name)
						}
						views[i] = reportView{Name: def.Name, Title: def.Title, Source: def.Source, Params: ps, File: def.File}
						rows[i] = []any{def.Name, def.Title, def.Source, strings.Join(ps, ", ")}
					}
					cols := []source.Column{{Name: "name", Type: source.TypeString}, {Name: "title", Type: source.TypeString},
						{Name: "source", Type: source.TypeString}, {Name: "params", Type: source.TypeString}}
					return writeListing(c, d, format, views, cols, rows)
				},
			},
			{
				Name: "show", Usage: "print a report's definition: the file as written (table), or its parsed form (json, yaml)", ArgsUsage: "NAME",
				Flags: []ucli.Flag{outputFlag("format: table|json|yaml")},
				Action: func(c *ucli.Context) error {
					if c.NArg() != 1 {
						return usagef("reports show: want one report NAME")
					}
					format := c.String("output")
					switch format {
					case "", "table", "json", "yaml":
					default:
						return usagef("-o/--output: unknown format %q (want table|json|yaml)", format)
					}
					e, err := loadEnv(c, d)
					if err != nil {
						return err
					}
					cat, err := e.catalog()
					if err != nil {
						return err
					}
					def, err := cat.Get(c.Args().First())
					if err != nil {
						return err
					}
					return showDefinition(d.Stdout, format, def.File, def.Raw, definitionViewOf(def))
				},
			},
			{
				Name: "validate", Usage: "check definition files against the configuration (all known reports when no FILE is given)", ArgsUsage: "[FILE]...",
				Action: func(c *ucli.Context) error {
					e, err := loadEnv(c, d)
					if err != nil {
						return err
					}
					where := jobs.ConfigName(e.cfg)
					if c.NArg() == 0 {
						cat, err := e.catalog()
						if err != nil {
							return err
						}
						var errs []error
						for _, def := range cat.List() {
							if err := def.CheckSource(e.cfg.Sources, where); err != nil {
								if _, configured := e.cfg.Sources[def.Source]; !configured && strings.HasPrefix(def.File, reportdefs.ShippedPrefix) {
									// A shipped report for a source this site does not have is
									// not this site's mistake; submit and run refuse it.
									fmt.Fprintf(d.Stdout, "skip  %s (%s): source %q is not configured in %s\n", def.Name, def.File, def.Source, where)
									continue
								}
								errs = append(errs, err)
								continue
							}
							if err := jobs.CheckNeeds(def); err != nil {
								errs = append(errs, err)
								continue
							}
							fmt.Fprintf(d.Stdout, "ok  %s (%s)\n", def.Name, def.File)
						}
						return errors.Join(errs...)
					}
					// Each file as submit would take it: bounded read, strict parse, its
					// source configured and able to run it.
					var errs []error
					for _, path := range c.Args().Slice() {
						def, err := reportdefs.ParseFile(path)
						if err == nil {
							err = def.CheckSource(e.cfg.Sources, where)
						}
						if err == nil {
							err = jobs.CheckNeeds(def)
						}
						if err != nil {
							errs = append(errs, err)
							continue
						}
						fmt.Fprintf(d.Stdout, "ok  %s (%s)\n", def.Name, path)
					}
					return errors.Join(errs...)
				},
			},
			{
				Name: "run", Usage: "run a report in this process and print its rows (no queue, no store:)", ArgsUsage: "NAME",
				Flags: []ucli.Flag{paramFlag(), outputFlag("format: " + resultFormats), &ucli.IntFlag{Name: "max-rows", Value: 1000, Usage: "table format: show at most `N` rows"}},
				Action: func(c *ucli.Context) error {
					if c.NArg() != 1 {
						return usagef("reports run: want one report NAME")
					}
					format := c.String("output")
					if format == "" {
						format = "csv"
						if d.StdoutTTY {
							format = "table"
						}
					}
					if format == "xlsx" && d.StdoutTTY {
						// Binary never goes to a terminal.
						return usagef("reports run: -o xlsx writes a binary workbook; redirect it to a file (> %s.xlsx)", c.Args().First())
					}
					e, err := loadEnv(c, d)
					if err != nil {
						return err
					}
					params, err := parseParams(c.StringSlice("param"))
					if err != nil {
						return err
					}
					cat, err := e.catalog()
					if err != nil {
						return err
					}
					def, err := cat.Get(c.Args().First())
					if err != nil {
						return err
					}
					resolved, err := def.Resolve(params, d.Now(), e.loc)
					if err != nil {
						return err
					}
					values, err := def.BindValues(resolved)
					if err != nil {
						return err
					}
					ctx := c.Context
					if def.Timeout > 0 {
						var cancel func()
						ctx, cancel = context.WithTimeout(ctx, def.Timeout)
						defer cancel()
					}
					// An unconfigured source or a request it cannot run (a procedure on
					// SQLite) is a definition error (exit 2) at its file:line, found before
					// connecting, as submit finds it.
					if err := def.CheckSource(e.cfg.Sources, jobs.ConfigName(e.cfg)); err != nil {
						return err
					}
					src, err := e.openSource(ctx, def.Source)
					if err != nil {
						return err
					}
					defer src.Close()
					// The agent's path too: one request, run and retyped by source.Run. A
					// data source's lookups open the sources their definition names.
					req := def.Request(src.Driver(), values)
					var others []source.Source
					defer func() {
						for _, o := range others {
							_ = o.Close()
						}
					}()
					req.Sources = func(ctx context.Context, name string) (source.Source, error) {
						o, err := e.openSource(ctx, name)
						if err == nil {
							others = append(others, o)
						}
						return o, err
					}
					rows, err := source.Run(ctx, src, req, def.Columns)
					if err != nil {
						err = fmt.Errorf("run %s: %w", def.Name, err)
						if jobs.Class(err) == errclass.Internal {
							// The report's own failure (its SQL, its timeout): what exit 1 means for a job.
							err = errclass.Wrap(errclass.JobFailed, err)
						}
						return err
					}
					defer rows.Close()
					return results.Render(ctx, d.Stdout, format, rows, results.RenderOptions{MaxTableRows: c.Int("max-rows"), SheetName: def.Name})
				},
			},
		},
	}
}

// definitionView is `reports show -o json|yaml`: what a script needs to build a
// submit (parameters with their types and defaults) and to know how the report runs.
// A definition names its source and never holds credentials (those are in rpt.yaml's
// sources); the delivery block, which may hold addresses, is left out all the same.
type definitionView struct {
	Name        string            `json:"name" yaml:"name"`
	Title       string            `json:"title,omitempty" yaml:"title,omitempty"`
	Description string            `json:"description,omitempty" yaml:"description,omitempty"`
	File        string            `json:"file" yaml:"file"`
	Source      string            `json:"source" yaml:"source"`
	Params      []paramView       `json:"params" yaml:"params"`
	Range       []string          `json:"range,omitempty" yaml:"range,omitempty"`
	Concurrency int               `json:"concurrency" yaml:"concurrency"` // 0: unlimited
	Group       string            `json:"group,omitempty" yaml:"group,omitempty"`
	Timeout     string            `json:"timeout,omitempty" yaml:"timeout,omitempty"` // a Go duration; absent: none
	MaxAttempts int               `json:"max_attempts,omitempty" yaml:"max_attempts,omitempty"`
	Requires    map[string]string `json:"requires,omitempty" yaml:"requires,omitempty"`
	Filename    string            `json:"filename,omitempty" yaml:"filename,omitempty"`
	Store       *storeView        `json:"store,omitempty" yaml:"store,omitempty"`
	// LoadedBy are the ETLs whose last loads a result reports (loaded_by:); Lookups
	// the tables a data source's shaping reads from other sources.
	LoadedBy []string     `json:"loaded_by,omitempty" yaml:"loaded_by,omitempty"`
	Lookups  []lookupView `json:"lookups,omitempty" yaml:"lookups,omitempty"`
}

type lookupView struct {
	Name    string `json:"name" yaml:"name"`
	Source  string `json:"source" yaml:"source"`
	SQL     string `json:"sql" yaml:"sql"`
	MaxRows int    `json:"max_rows" yaml:"max_rows"`
}

type paramView struct {
	Name        string   `json:"name" yaml:"name"`
	Type        string   `json:"type" yaml:"type"`
	Title       string   `json:"title,omitempty" yaml:"title,omitempty"`
	Description string   `json:"description,omitempty" yaml:"description,omitempty"`
	Values      []string `json:"values,omitempty" yaml:"values,omitempty"`
	Default     *string  `json:"default,omitempty" yaml:"default,omitempty"` // absent: no default (an empty default is "")
	Required    bool     `json:"required" yaml:"required"`
}

type storeView struct {
	Table        string   `json:"table" yaml:"table"`
	Mode         string   `json:"mode" yaml:"mode"`
	Key          []string `json:"key,omitempty" yaml:"key,omitempty"`
	ReplaceWhere string   `json:"replace_where,omitempty" yaml:"replace_where,omitempty"`
	Adopt        bool     `json:"adopt,omitempty" yaml:"adopt,omitempty"`
}

func definitionViewOf(def *reportdefs.Definition) definitionView {
	v := definitionView{Name: def.Name, Title: def.Title, Description: def.Description, File: def.File, Source: def.Source,
		Params: []paramView{}, Range: def.Range, Concurrency: def.Concurrency, Group: def.Group, MaxAttempts: def.MaxAttempts,
		Requires: def.Requires, Filename: def.Filename}
	if def.Timeout > 0 {
		v.Timeout = def.Timeout.String()
	}
	for _, p := range def.Params {
		pv := paramView{Name: p.Name, Type: p.Type, Title: p.Title, Description: p.Description, Values: p.Values, Required: p.Required}
		if p.HasDefault {
			dflt := p.Default
			pv.Default = &dflt
		}
		v.Params = append(v.Params, pv)
	}
	if st := def.Store; st != nil {
		v.Store = &storeView{Table: st.Table, Mode: st.Mode, Key: st.Key, ReplaceWhere: st.ReplaceWhere, Adopt: st.Adopt}
	}
	v.LoadedBy = def.LoadedBy
	if def.DataSource != nil {
		for _, lk := range def.DataSource.Lookups {
			v.Lookups = append(v.Lookups, lookupView{Name: lk.Name, Source: lk.Source, SQL: lk.SQL, MaxRows: lk.MaxRows})
		}
	}
	return v
}
