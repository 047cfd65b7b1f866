package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestReorderArgs(t *testing.T) {
	t.Parallel()
	app := NewApp(&Deps{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Now: time.Now})
	tests := []struct{ in, want string }{
		{"rpt get 42 --csv", "rpt get --csv -- 42"},
		{"rpt get --csv 42", "rpt get --csv -- 42"},
		{"rpt submit trial-balance -p pcn=1 --wait", "rpt submit -p pcn=1 --wait -- trial-balance"},
		{"rpt submit -p pcn=1 trial-balance --priority 5", "rpt submit -p pcn=1 --priority 5 -- trial-balance"},
		{"rpt get 42 --queue sqlite:q.db --csv", "rpt --queue sqlite:q.db get --csv -- 42"},
		{"rpt --queue sqlite:q.db jobs list --status queued", "rpt --queue sqlite:q.db jobs list --status queued"},
		{"rpt jobs show 7 -o json", "rpt jobs show -o json -- 7"},
		{"rpt submit tb -- -p", "rpt submit -- tb -p"},
		{"rpt get 42 --file=out.csv", "rpt get --file=out.csv -- 42"},
		{"rpt nosuch 1 --x", "rpt nosuch 1 --x"},
		{"rpt", "rpt"},
	}
	for _, tt := range tests {
		got := strings.Join(reorderArgs(app, strings.Fields(tt.in)), " ")
		if got != tt.want {
			t.Errorf("reorderArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	d := Deps{Stdout: &out, Stderr: &errOut, Now: time.Now}
	for args, want := range map[string]int{
		"rpt version":              ExitOK,
		"rpt bogus":                ExitUsage,
		"rpt jobs list --limit -1": ExitUsage,
		"rpt get 1 --csv --json":   ExitUsage,
		"rpt submit":               ExitUsage,
		"rpt --no-such-flag jobs":  ExitUsage,
		"rpt jobs list --nope":     ExitUsage,
	} {
		if got := Main(context.Background(), strings.Fields(args), d); got != want {
			t.Errorf("%s: exit %d, want %d (stderr %q)", args, got, want, errOut.String())
		}
	}
}
