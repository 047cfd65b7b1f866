package cli

import (
	"errors"
	"fmt"
	"io"

	ucli "github.com/urfave/cli/v2"

	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/reportdefs"
)

const resultFormats = "table|csv|tsv|json|yaml|xlsx"

func getCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name:      "get",
		Usage:     "print or save a finished job's result (table on a terminal, CSV in a pipe)",
		ArgsUsage: "ID | --latest REPORT",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "latest", Usage: "the latest succeeded run of `REPORT` (filtered by -p)"},
			paramFlag(),
			&ucli.BoolFlag{Name: "csv", Usage: "CSV"},
			&ucli.BoolFlag{Name: "tsv", Usage: "TSV, for scripts (awk -F'\\t'; a comma inside a field does not split it): the same as -o tsv"},
			&ucli.BoolFlag{Name: "json", Usage: "JSON"},
			outputFlag("format: " + resultFormats),
			&ucli.StringFlag{Name: "file", Usage: "write to `PATH` (format from the extension unless -o says)"},
			&ucli.IntFlag{Name: "max-rows", Value: 1000, Usage: "table format: show at most `N` rows"},
		},
		Action: func(c *ucli.Context) error {
			format, err := resultFormat(c, d)
			if err != nil {
				return err
			}
			latest := c.String("latest")
			switch {
			case latest == "" && c.NArg() != 1:
				return usagef("get: want one job ID or --latest REPORT")
			case latest != "" && c.NArg() != 0:
				return usagef("get: give a job ID or --latest REPORT, not both")
			case latest == "" && c.IsSet("param"):
				return usagef("get: -p filters --latest; it cannot be used with a job ID")
			}
			e, err := loadEnv(c, d)
			if err != nil {
				return err
			}
			store, err := e.openQueue(c.Context, false)
			if err != nil {
				return err
			}
			defer store.Close()
			svc := e.jobs(store)
			var j *queue.Job
			if latest != "" {
				given, err := parseParams(c.StringSlice("param"))
				if err != nil {
					return err
				}
				if j, err = svc.Latest(c.Context, latest, given); err != nil {
					return err
				}
			} else {
				id, err := jobID(c)
				if err != nil {
					return err
				}
				if j, err = svc.Get(c.Context, id); err != nil {
					return unknownJob(err)
				}
			}
			if err := jobs.Outcome(j); err != nil {
				return err
			}
			rs, err := e.resultsOf(c.Context, store, j)
			if err != nil {
				return err
			}
			defer rs.Close()
			// The rows end in an error, never short, when a chunk is missing (pruned
			// while read: results.ErrPruned); the command then fails, whatever it printed.
			rows, err := results.Open(c.Context, rs, results.RefOf(j))
			if errors.Is(err, queue.ErrNotFound) {
				return fmt.Errorf("job %d: its result is gone: results are kept for %s (retention.results); `rpt retry %d` runs it again: %w",
					j.ID, age(e.cfg.Retention.Results), j.ID, err)
			}
			if err != nil {
				return fmt.Errorf("read result of job %d: %w", j.ID, err)
			}
			defer rows.Close()
			note := jobs.ReadNote(j.Read, e.loc)
			opts := results.RenderOptions{MaxTableRows: c.Int("max-rows"), TotalRows: j.Rows, SheetName: j.Report}
			if note != "" {
				opts.Note = fmt.Sprintf("Job %d (%s) read its data %s", j.ID, j.Report, note)
			}
			if note != "" && d.StderrTTY {
				// For the person at the terminal only: stdout stays the data.
				fmt.Fprintf(d.Stderr, "job %d read %s\n", j.ID, results.EscapeControl(note))
			}
			path := c.String("file")
			if path == "" && format == "xlsx" && d.StdoutTTY {
				// Binary never goes to a terminal: save under the report's file name.
				if path, err = defaultFileName(e, j, "xlsx"); err != nil {
					return err
				}
				fmt.Fprintf(d.Stderr, "writing %s\n", path)
			}
			if path == "" {
				return results.Render(c.Context, d.Stdout, format, rows, opts)
			}
			return writeOutput(path, func(w io.Writer) error {
				return results.Render(c.Context, w, format, rows, opts)
			})
		},
	}
}

// resultFormat picks get's format: --csv, --tsv, --json, -o; else the --file extension; else a
// table on a terminal and CSV in a pipe.
func resultFormat(c *ucli.Context, d *Deps) (string, error) {
	n := 0
	format := ""
	if c.Bool("csv") {
		n, format = n+1, "csv"
	}
	if c.Bool("tsv") {
		n, format = n+1, "tsv"
	}
	if c.Bool("json") {
		n, format = n+1, "json"
	}
	if o := c.String("output"); o != "" {
		n, format = n+1, o
	}
	if n > 1 {
		return "", usagef("get: give one of --csv, --tsv, --json, -o")
	}
	switch format {
	case "table", "csv", "tsv", "json", "yaml", "xlsx":
		return format, nil
	case "":
	default:
		return "", usagef("-o/--output: unknown format %q (want %s)", format, resultFormats)
	}
	if p := c.String("file"); p != "" {
		f, ok := results.FormatFromPath(p)
		if !ok {
			return "", usagef("--file %s: cannot tell the format from the extension; add -o (%s)", p, resultFormats)
		}
		return f, nil
	}
	if d.StdoutTTY {
		return "table", nil
	}
	return "csv", nil
}

// defaultFileName is where a result is saved when no --file is given: the definition's
// filename: template (the trial balance: TB-<start>_to_<end>_on_<MM-DD>.xlsx), else
// REPORT-ID.EXT, in the current folder. A template filled from string parameters is made a
// plain file name (safeFileName): never a path, a hidden file or another extension.
func defaultFileName(e *env, j *queue.Job, ext string) (string, error) {
	def, err := reportdefs.Parse(j.Report+".yaml", j.Definition)
	if err != nil {
		return "", fmt.Errorf("job %d: definition snapshot: %w", j.ID, err)
	}
	finished := e.d.Now()
	if j.FinishedAt != nil {
		finished = *j.FinishedAt
	}
	fallback := safeFileName(fmt.Sprintf("%s-%d", j.Report, j.ID), ext, fmt.Sprintf("job-%d.%s", j.ID, ext))
	return safeFileName(def.FileName(j.ID, j.Params, finished, e.loc, ext), ext, fallback), nil
}
