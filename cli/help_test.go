package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"

	"rpt/cli"
)

// TestHelpTeaches walks every command: each has an example in its help, and no flag
// shows the placeholder "value" (the help names the kind: FILE, DSN, DURATION, N) or
// its default twice.
func TestHelpTeaches(t *testing.T) {
	var out, errb bytes.Buffer
	d := deps(&out, &errb)
	app := cli.NewApp(&d)
	var walk func(path string, cmds []*ucli.Command)
	walk = func(path string, cmds []*ucli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			name := strings.TrimSpace(path + " " + c.Name)
			if !strings.Contains(c.Description, "rpt "+name) && !strings.Contains(c.UsageText, "rpt "+name) {
				t.Errorf("rpt %s: no example (Description or UsageText with `rpt %s ...`)", name, name)
			}
			for _, f := range c.Flags {
				s := f.String()
				if strings.Contains(s, " value\t") || strings.Contains(s, " value ") {
					t.Errorf("rpt %s: flag %q: placeholder \"value\" (name its kind)", name, s)
				}
				if strings.Count(s, "default") > 1 {
					t.Errorf("rpt %s: flag %q: default shown twice", name, s)
				}
			}
			walk(name, c.Subcommands)
		}
	}
	walk("", app.Commands)
	for _, f := range app.Flags {
		if s := f.String(); strings.Contains(s, " value\t") {
			t.Errorf("rpt: global flag %q: placeholder \"value\"", s)
		}
	}
}

// TestFlagDidYouMean: a mistyped flag is answered with the flag meant.
func TestFlagDidYouMean(t *testing.T) {
	code, _, stderr := runCLI(t, context.Background(), []string{"agent", "--concurency", "2"})
	if code != cli.ExitUsage || !strings.Contains(stderr, "did you mean `--concurrency`?") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
