package cli

import (
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
)

// The rules of --help that hold for every command, applied by walking the command tree
// in NewApp, so a new command follows them without repeating them: -o refuses what it
// does not list, a boolean does not print "(default: false)", and a duration default
// reads as it is written (10m, not 10m0s). TestOutputRules checks them.

// flagChoices reads the values a flag allows from its usage, written
// "`PLACEHOLDER`: a|b|c ...": -o's formats, --role's roles, --status's states.
// nil when the usage lists none.
func flagChoices(f ucli.Flag) []string {
	df, ok := f.(ucli.DocGenerationFlag)
	if !ok {
		return nil
	}
	u := df.GetUsage()
	i := strings.Index(u, "`: ")
	if i < 0 {
		return nil
	}
	list, _, _ := strings.Cut(u[i+3:], " ")
	list = strings.TrimRight(list, ",;.")
	if !strings.Contains(list, "|") {
		return nil
	}
	return strings.Split(list, "|")
}

// checkOutputs gives every command with -o the same refusal of a format it does not
// list, before its action runs, so a new command cannot print JSON for -o tsv.
func checkOutputs(cmds []*ucli.Command) {
	for _, c := range cmds {
		checkOutputs(c.Subcommands)
		var formats []string
		for _, f := range c.Flags {
			if slices.Contains(f.Names(), "output") {
				formats = flagChoices(f)
			}
		}
		if formats == nil {
			continue
		}
		before := c.Before
		c.Before = func(ctx *ucli.Context) error {
			if o := ctx.String("output"); o != "" && !slices.Contains(formats, o) {
				return usagef("-o/--output: unknown format %q (want %s)", o, strings.Join(formats, "|"))
			}
			if before != nil {
				return before(ctx)
			}
			return nil
		}
	}
}

// tidyDefaults sets how defaults print: booleans none (a flag given is true), durations
// as written (10m0s becomes 10m), unless the flag says its own DefaultText.
func tidyDefaults(flags []ucli.Flag, cmds []*ucli.Command) {
	for _, f := range flags {
		switch f := f.(type) {
		case *ucli.BoolFlag:
			f.DisableDefaultText = true
		case *ucli.DurationFlag:
			if f.DefaultText == "" && f.Value != 0 {
				f.DefaultText = shortDuration(f.Value)
			}
		}
	}
	for _, c := range cmds {
		tidyDefaults(c.Flags, c.Subcommands)
	}
}

// shortDuration prints d without zero units: 10m, 1h30m, 90s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
