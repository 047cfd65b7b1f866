package cli_test

import (
	"context"
	"path/filepath"
	"testing"
)

// TestComplete: the candidates the shell scripts of rpt completion ask for: commands,
// flags, report names, parameter names after -p (as name=), their values, the values a
// flag lists (-o's formats) and job ids.
func TestComplete(t *testing.T) {
	dir := t.TempDir()
	if code, _, errs := runSubmit(t, context.Background(), dir, false, "trial-balance"); code != 0 {
		t.Fatalf("submit: %d %s", code, errs)
	}
	queue := "sqlite:" + filepath.Join(dir, "q.db")
	cfg := filepath.Join(dir, "rpt.yaml")
	tests := []struct {
		words []string
		want  string
	}{
		{[]string{"sub"}, "submit\n"},
		{[]string{"agents", "d"}, "drain\n"},
		{[]string{"submit", "trial-"}, "trial-balance\ntrial-balance-live\ntrial-balance-ws\n"},
		{[]string{"submit", "trial-balance", "-p", "start_"}, "start_period=\n"},
		{[]string{"get", "--latest", "trial-balance", "-p", "p"}, "pcn=\n"},
		{[]string{"agent", "--concu"}, "--concurrency\n"},
		{[]string{"jobs", "list", "--report", "mean-time-to-f"}, "mean-time-to-failure\n"},
		{[]string{"--config", cfg, "--queue", queue, "get", ""}, "1\n"},
		{[]string{"--config", cfg, "--queue", queue, "cancel", "2"}, ""},
		{[]string{"submit", "--at", ""}, ""}, // a time: nothing to guess
		// Values of -p name=: the default as written, the relative words and what they
		// stand for today (fixedNow is 2026-11-29), an int's default.
		{[]string{"submit", "trial-balance", "-p", "start_period="},
			"start_period=last-month\nstart_period=this-month\nstart_period=-12m\nstart_period=202610\nstart_period=202611\n"},
		{[]string{"submit", "daily-production", "-p", "report_date=2026"}, "report_date=2026-11-28\nreport_date=2026-11-29\n"},
		{[]string{"get", "--latest", "trial-balance", "-p", "pcn="}, "pcn=123681\n"},
		// bash splits name=value at the =: the = is the word until a value follows it,
		// and readline replaces only what follows it, so the candidates are bare.
		{[]string{"submit", "trial-balance", "-p", "end_period", "="}, "last-month\nthis-month\n-12m\n202610\n202611\n"},
		{[]string{"submit", "trial-balance", "-p", "end_period", "=", "2026"}, "202610\n202611\n"},
		{[]string{"submit", "trial-balance", "-p", "end_period", "=", "202611", "-p", "s"}, "start_period=\n"},
		// Flags whose help lists their values.
		{[]string{"jobs", "list", "-o", ""}, "table\ncsv\ntsv\njson\nyaml\n"},
		{[]string{"reports", "show", "-o", ""}, "table\njson\nyaml\n"},
		{[]string{"jobs", "list", "--status", "f"}, "failed\n"},
		{[]string{"tokens", "create", "ci", "--role", ""}, "viewer\nsubmitter\nadmin\n"},
		{[]string{"demo", "load", "--shape", ""}, "plex\nwarehouse\nboth\n"},
	}
	for _, tt := range tests {
		code, out, errs := runCLI(t, context.Background(), append([]string{"__complete"}, tt.words...))
		if code != 0 || out != tt.want || errs != "" {
			t.Errorf("complete %q: exit %d, %q (stderr %q), want %q", tt.words, code, out, errs, tt.want)
		}
	}
}
