package cli

import (
	"slices"
	"testing"

	ucli "github.com/urfave/cli/v2"

	"rpt/crontab"
)

// rpt cron lint reads rpt submit lines with crontab's own table of flags; it must match
// the command line's, or lint would pass a line rpt submit refuses (or the reverse).
func TestCronLintKnowsTheFlags(t *testing.T) {
	app := NewApp(&Deps{})
	split := func(flags []ucli.Flag) (value, boolean []string) {
		for _, f := range flags {
			_, isBool := f.(*ucli.BoolFlag)
			for _, n := range f.Names() {
				if isBool {
					boolean = append(boolean, n)
				} else {
					value = append(value, n)
				}
			}
		}
		return value, boolean
	}
	same := func(what string, got, want []string) {
		t.Helper()
		slices.Sort(got)
		want = slices.Clone(want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the command line has %v, crontab knows %v", what, got, want)
		}
	}
	gv, _ := split(app.Flags)
	same("global flags with a value", gv, crontab.GlobalValueFlags)
	for _, c := range app.Commands {
		if c.Name == "submit" {
			v, b := split(c.Flags)
			same("submit flags with a value", v, crontab.SubmitValueFlags)
			same("submit switches", append(b, "help", "h"), crontab.SubmitBoolFlags)
			return
		}
	}
	t.Fatal("no submit command")
}
