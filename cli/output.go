package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/internal/source"
)

// outputFlag is -o/--output. usage starts with the formats, "format: a|b|c", then
// anything more to say: the formats are its choices (flagChoices), so checkOutputs
// refuses any other and completion offers them.
func outputFlag(usage string) ucli.Flag {
	// The placeholder names the kind; the usage lists the formats.
	return &ucli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "output `FORMAT`: " + strings.TrimPrefix(usage, "format: ")}
}

const listFormats = "table|csv|tsv|json|yaml"

// listFormat is the -o format of a listing: table on a TTY, plain rows in a pipe.
func listFormat(c *ucli.Context, d *Deps) (string, error) {
	f := c.String("output")
	switch f {
	case "":
		if d.StdoutTTY {
			return "table", nil
		}
		return "plain", nil
	case "table", "csv", "tsv", "json", "yaml":
		return f, nil
	}
	return "", usagef("-o/--output: unknown format %q (want %s)", f, listFormats)
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeYAML prints v (a JSON-tagged value) as YAML with the same keys.
func writeYAML(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		return err
	}
	if generic == nil && reflect.ValueOf(v).Kind() == reflect.Slice {
		generic = []any{} // an empty listing is [], as in JSON, not null
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(generic); err != nil {
		return err
	}
	return enc.Close()
}

// printJobs writes jobs in format; one (show) prints an object rather than an array.
func printJobs(ctx context.Context, d *Deps, format string, list []*queue.Job, one bool) error {
	views := make([]jobs.View, len(list))
	for i, j := range list {
		views[i] = jobs.ViewOf(j)
	}
	switch format {
	case "json":
		if one {
			return writeJSON(d.Stdout, views[0])
		}
		return writeJSON(d.Stdout, views)
	case "yaml":
		if one {
			return writeYAML(d.Stdout, views[0])
		}
		return writeYAML(d.Stdout, views)
	}
	now := d.Now()
	tty := format == "table"
	cols := []source.Column{{Name: "id", Type: source.TypeInt}, {Name: "report", Type: source.TypeString},
		{Name: "status", Type: source.TypeString}, {Name: "attempt", Type: source.TypeInt},
		{Name: "agent", Type: source.TypeString}, {Name: "rows", Type: source.TypeInt},
		{Name: "created", Type: source.TypeString}, {Name: "elapsed", Type: source.TypeString},
		{Name: "error", Type: source.TypeString}}
	rows := make([][]any, len(views))
	for i, v := range views {
		agent, errText := "", ""
		if v.Agent != nil {
			agent = *v.Agent
		}
		if v.Error != nil {
			errText = *v.Error
		}
		created := v.CreatedAt.Format(time.RFC3339)
		if tty {
			created = relTime(now, v.CreatedAt)
		}
		rows[i] = []any{v.ID, v.Report, string(v.Status), int64(v.Attempt), agent, v.Rows, created, elapsed(now, v.StartedAt, v.FinishedAt), errText}
	}
	if format == "plain" {
		return writePlain(d.Stdout, rows)
	}
	return results.Render(ctx, d.Stdout, format, newMemRows(cols, rows), results.RenderOptions{})
}

// writePlain writes tab-separated rows without a header, for scripts (`cut -f1`), with
// control characters in values escaped (results.EscapeControl).
func writePlain(w io.Writer, rows [][]any) error {
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				if _, err := io.WriteString(w, "\t"); err != nil {
					return err
				}
			}
			// Escaped like the table: a value holding a tab or newline would break `cut`,
			// and one holding ESC would drive the terminal it is shown on.
			if _, err := io.WriteString(w, results.EscapeControl(fmt.Sprint(v))); err != nil {
				return err
			}
		}
		if _, err := io.WriteString(w, "\n"); err != nil {
			return err
		}
	}
	return nil
}

func relTime(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + roundDur(-d).String()
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h ago"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func elapsed(now time.Time, started, finished *time.Time) string {
	if started == nil {
		return ""
	}
	end := now
	if finished != nil {
		end = *finished
	}
	return roundDur(end.Sub(*started)).String()
}

func roundDur(d time.Duration) time.Duration { return jobs.RoundDuration(d) }

// memRows is a small in-memory source.Rows so listings use the same renderers as results.
type memRows struct {
	cols []source.Column
	rows [][]any
	i    int
}

func newMemRows(cols []source.Column, rows [][]any) *memRows {
	return &memRows{cols: cols, rows: rows, i: -1}
}

func (m *memRows) Columns() []source.Column { return m.cols }
func (m *memRows) Next() bool               { m.i++; return m.i < len(m.rows) }
func (m *memRows) Values() []any            { return m.rows[m.i] }
func (m *memRows) Err() error               { return nil }
func (m *memRows) Close() error             { return nil }

func sortStrings(s []string) { sort.Strings(s) }

// renderList prints a listing's rows in format: plain as tab-separated rows without a
// header (writePlain), any other format through results.Render with cols as the header.
func renderList(c *ucli.Context, d *Deps, format string, cols []source.Column, rows [][]any) error {
	if format == "plain" {
		return writePlain(d.Stdout, rows)
	}
	return results.Render(c.Context, d.Stdout, format, newMemRows(cols, rows), results.RenderOptions{})
}

// writeListing prints a listing: views (JSON-tagged) as JSON or YAML, otherwise rows
// under cols as renderList does.
func writeListing(c *ucli.Context, d *Deps, format string, views any, cols []source.Column, rows [][]any) error {
	switch format {
	case "json":
		return writeJSON(d.Stdout, views)
	case "yaml":
		return writeYAML(d.Stdout, views)
	}
	return renderList(c, d, format, cols, rows)
}

// showDefinition prints a definition as the show commands do: its parsed view as JSON,
// or as YAML encoded from the struct (yaml tags, not writeYAML's map) so the keys keep
// the definition's order, name first; otherwise the file as written under a "# FILE"
// line.
func showDefinition(w io.Writer, format, file string, raw []byte, view any) error {
	switch format {
	case "json":
		return writeJSON(w, view)
	case "yaml":
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(view); err != nil {
			return err
		}
		return enc.Close()
	}
	fmt.Fprintf(w, "# %s\n", file)
	_, err := w.Write(raw)
	return err
}

// age prints a retention as users write it in rpt.yaml: 7d rather than 168h0m0s.
func age(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}
