package cli_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"rpt/cli"
)

// placeholderRE is a flag's value placeholder as --help shows it: the kind in capitals
// (FILE, DSN, DURATION, N, table|csv are not placeholders), or name=value.
var placeholderRE = regexp.MustCompile("^([A-Z][A-Z0-9_]*|[a-z]+=[a-z]+)$")

var knownFormats = []string{"table", "csv", "tsv", "json", "yaml", "xlsx"}

// commandPaths walks the command tree: every command by its path ("jobs show").
func commandPaths(app *ucli.App) map[string]*ucli.Command {
	out := map[string]*ucli.Command{}
	var walk func(path string, cmds []*ucli.Command)
	walk = func(path string, cmds []*ucli.Command) {
		for _, c := range cmds {
			name := strings.TrimSpace(path + " " + c.Name)
			out[name] = c
			walk(name, c.Subcommands)
		}
	}
	walk("", app.Commands)
	return out
}

func outputChoices(c *ucli.Command) (formats []string, has bool) {
	for _, f := range c.Flags {
		if slices.Contains(f.Names(), "output") {
			u := f.(ucli.DocGenerationFlag).GetUsage()
			i := strings.Index(u, "`: ")
			if i < 0 {
				return nil, true
			}
			list, _, _ := strings.Cut(u[i+3:], " ")
			return strings.Split(list, "|"), true
		}
	}
	return nil, false
}

// TestFlagRules walks every command's flags (new commands too): a flag that takes a
// value names its kind in capitals (`FILE`, `DSN`, `DURATION`, `N`; never urfave's
// "value"), a default prints once, with its unit (10m, not 10m0s; a zero duration says
// what it means), and no boolean prints "(default: false)".
func TestFlagRules(t *testing.T) {
	var out, errb bytes.Buffer
	d := deps(&out, &errb)
	app := cli.NewApp(&d)
	check := func(where string, fs []ucli.Flag) {
		for _, f := range fs {
			df, ok := f.(ucli.DocGenerationFlag)
			if !ok {
				continue
			}
			s := f.String()
			if df.TakesValue() {
				u := df.GetUsage()
				_, rest, ok := strings.Cut(u, "`")
				ph, _, ok2 := strings.Cut(rest, "`")
				switch {
				case !ok || !ok2:
					t.Errorf("%s: flag --%s: no `PLACEHOLDER` in its usage (help would show \"value\")", where, f.Names()[0])
				case !placeholderRE.MatchString(ph):
					t.Errorf("%s: flag --%s: placeholder %q: want the kind in capitals (FILE, DSN, DURATION, N) or name=value", where, f.Names()[0], ph)
				}
			}
			if strings.Count(s, "default") > 1 {
				t.Errorf("%s: flag %q: default shown twice", where, s)
			}
			// 0 is a value of --priority; elsewhere a zero default means none or unlimited.
			if strings.Contains(s, "(default: 0)") && f.Names()[0] != "priority" {
				t.Errorf("%s: flag %q: a zero default printed as a number, where it means none (say so)", where, s)
			}
			if strings.Contains(s, "(default: false)") {
				t.Errorf("%s: flag %q: a boolean's default printed", where, s)
			}
			if regexp.MustCompile(`\d+[hm]0s\b|default: 0s\)`).MatchString(s) {
				t.Errorf("%s: flag %q: a duration default as Go prints it, not as it is written (10m; a zero says what it means)", where, s)
			}
		}
	}
	check("rpt", app.Flags)
	for name, c := range commandPaths(app) {
		check("rpt "+name, c.Flags)
	}
}

// noOutputFlag: commands that print no listing, so no -o, and why. A command neither
// here nor with -o is logged (a new command: decide), not failed.
var noOutputFlag = map[string]string{
	"quickstart": "a demo that prints a table; its Next: lines say how to get the result in a format",
	"server":     "a daemon (logs on stderr)", "agent": "a daemon (JSON log on stderr)", "api": "a daemon",
	"agents": "a group", "agents drain": "a message on stderr", "agents undrain": "a message on stderr",
	"resume": "a message on stderr", "submit": "the job id alone, for id=$(...)", "retry": "the new job id alone",
	"cancel": "a message on stderr", "reports": "a group", "reports validate": "ok or file:line errors",
	"db": "a group", "db migrate": "a message", "db prune": "a message", "demo": "a group", "demo load": "a message",
	"tokens": "a group", "tokens create": "the token alone, once", "tokens revoke": "a message",
	"cron": "a group", "cron run": "a daemon", "cron lint": "file:line:column findings, as compilers print them",
	"version": "one line", "completion": "a shell script",
	"etl": "a group", "etl run": "a line per ETL run",
	"sources": "a group", "sources test": "ok or FAIL lines, one per account, as a check prints them",
	"schedules": "a group", "schedules add": "a message", "schedules update": "a message",
	"schedules rm": "a message", "schedules hold": "a message", "schedules resume": "a message",
	"cron render": "a crontab file",
}

// outputRuns: how to run each command that has -o on the seeded queue, and where its
// columns are documented when not in its own help ("" when they are the report's).
var outputRuns = map[string]struct {
	args   []string
	colDoc string
}{
	"agents list":     {[]string{"agents", "list"}, "agents list"},
	"pause":           {[]string{"pause"}, "pause"},
	"jobs":            {[]string{"jobs"}, "jobs list"},
	"jobs list":       {[]string{"jobs", "list"}, "jobs list"},
	"jobs show":       {[]string{"jobs", "show", "1"}, "jobs list"},
	"get":             {[]string{"get", "1"}, ""},
	"watch":           {[]string{"watch", "1"}, ""},
	"reports list":    {[]string{"reports", "list"}, "reports list"},
	"reports show":    {[]string{"reports", "show", "trial-balance"}, ""},
	"reports run":     {[]string{"reports", "run", "daily-production"}, ""},
	"reports publish": {[]string{"reports", "publish", "trial-balance"}, "reports publish"},
	"db status":       {[]string{"db", "status"}, "db status"},
	"tokens list":     {[]string{"tokens", "list"}, "tokens list"},
	"etl list":        {[]string{"etl", "list"}, "etl list"},
	"schedules list":  {[]string{"schedules", "list"}, "schedules list"},
	"schedules show":  {[]string{"schedules", "show", "weekly"}, ""},
	"etl show":        {[]string{"etl", "show", "plex-balances"}, ""},
	"cron next":       {[]string{"cron", "next", "testdata/next.crontab"}, "cron next"},
	// etl status reads the warehouse's rpt_etl_state, on MySQL only: not run here.
	"sources list": {[]string{"sources", "list"}, "sources list"},
}

// helpText is what --help says about a command: its usage, description and flags.
func helpText(c *ucli.Command) string {
	s := c.Usage + "\n" + c.Description
	for _, f := range c.Flags {
		s += "\n" + f.String()
	}
	return s
}

// TestOutputRules: every command that prints a listing or a record takes -o; each lists
// its formats, json among them; every format listed prints that format (JSON parses,
// TSV is a header of column names and rows of as many fields, never JSON), every column
// of a listing is named in the help, and a format not listed is refused the same way
// everywhere (exit 2, naming the ones there are), before the command does anything.
func TestOutputRules(t *testing.T) {
	work := t.TempDir()
	isolateEnv(t, work)
	ctx := context.Background()
	for _, args := range [][]string{
		{"quickstart", "--max-rows", "1"}, // demo data, job 1 succeeded, an agent row
		{"pause", "report", "daily-production"},
		{"tokens", "create", "ci", "--role", "viewer"},
		{"schedules", "add", "weekly", "--cron", "10 19 * * 1", "--report", "trial-balance"},
	} {
		if code, _, stderr := runCLI(t, ctx, args); code != 0 {
			t.Fatalf("setup %v: exit %d: %s", args, code, stderr)
		}
	}
	var out, errb bytes.Buffer
	d := deps(&out, &errb)
	cmds := commandPaths(cli.NewApp(&d))
	for name, c := range cmds {
		formats, has := outputChoices(c)
		if !has {
			if _, ok := noOutputFlag[name]; !ok {
				t.Logf("rpt %s: no -o and not in noOutputFlag: does it print a listing?", name)
			}
			continue
		}
		if len(formats) == 0 {
			t.Errorf("rpt %s: -o usage lists no formats (want \"format: table|json|...\")", name)
			continue
		}
		for _, f := range formats {
			if !slices.Contains(knownFormats, f) {
				t.Errorf("rpt %s: -o lists %q, not a format (%v)", name, f, knownFormats)
			}
		}
		if !slices.Contains(formats, "json") {
			t.Errorf("rpt %s: -o without json (%v)", name, formats)
		}
		// Refused before the command runs: no arguments needed.
		path := strings.Fields(name)
		code, stdout, stderr := runCLI(t, ctx, append(slices.Clone(path), "-o", "bogus"))
		want := `-o/--output: unknown format "bogus" (want ` + strings.Join(formats, "|") + ")"
		if code != cli.ExitUsage || stdout != "" || !strings.Contains(stderr, want) {
			t.Errorf("rpt %s -o bogus: exit %d, stdout %q, stderr %q; want exit 2 and %q", name, code, stdout, stderr, want)
		}
		run, ok := outputRuns[name]
		if !ok {
			t.Logf("rpt %s: has -o but no entry in outputRuns: its formats are not exercised", name)
			continue
		}
		for _, f := range formats {
			if f == "xlsx" {
				continue // binary; TestGetFileThroughTheCLI reads it back
			}
			code, stdout, stderr := runCLI(t, ctx, append(slices.Clone(run.args), "-o", f))
			if code != 0 {
				t.Errorf("rpt %s -o %s: exit %d: %s", name, f, code, stderr)
				continue
			}
			checkFormat(t, "rpt "+name+" -o "+f, f, stdout, cmds[run.colDoc])
		}
	}
}

// checkFormat checks that out is in format f; for csv and tsv, that each column is
// named in doc's help (nil: the columns are a report's own).
func checkFormat(t *testing.T, what, f, out string, doc *ucli.Command) {
	t.Helper()
	if strings.TrimSpace(out) == "" {
		t.Errorf("%s: printed nothing", what)
		return
	}
	var header []string
	switch f {
	case "json":
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() { // watch prints one object per line
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Errorf("%s: not JSON: %v\n%s", what, err, out)
				return
			}
		}
	case "yaml":
		var v any
		if err := yaml.Unmarshal([]byte(out), &v); err != nil || v == nil {
			t.Errorf("%s: not YAML (or null): %v\n%s", what, err, out)
		}
	case "csv":
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil {
			t.Errorf("%s: not CSV: %v\n%s", what, err, out)
			return
		}
		header = recs[0]
	case "tsv":
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		header = strings.Split(lines[0], "\t")
		for i, l := range lines {
			if n := len(strings.Split(l, "\t")); n != len(header) {
				t.Errorf("%s: line %d has %d fields, the header %d:\n%s", what, i+1, n, len(header), l)
			}
		}
	case "table":
		if strings.HasPrefix(strings.TrimSpace(out), "{") || strings.HasPrefix(strings.TrimSpace(out), "[") {
			t.Errorf("%s: JSON, not a table:\n%s", what, out)
		}
	}
	for _, h := range header {
		if !regexp.MustCompile(`^[a-z][a-z0-9_]*$`).MatchString(h) {
			t.Errorf("%s: header %q is not a column name (is this a header?)\n%s", what, h, out)
			return
		}
	}
	if doc == nil {
		return
	}
	help := helpText(doc)
	for _, h := range header {
		if !regexp.MustCompile(`\b` + h + `\b`).MatchString(help) {
			t.Errorf("%s: column %q is not named in rpt %s --help", what, h, doc.Name)
		}
	}
}
