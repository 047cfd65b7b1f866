package cli_test

import (
	"context"
	"path/filepath"
	"testing"
)

// TestComplete: the candidates the shell scripts of rpt completion ask for: commands,
// flags, report names, parameter names after -p (as name=) and job ids.
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
		{[]string{"submit", "trial-"}, "trial-balance\ntrial-balance-live\n"},
		{[]string{"submit", "trial-balance", "-p", "start_"}, "start_period=\n"},
		{[]string{"get", "--latest", "trial-balance", "-p", "p"}, "pcn=\n"},
		{[]string{"agent", "--concu"}, "--concurrency\n"},
		{[]string{"jobs", "list", "--report", "mean-time-to-f"}, "mean-time-to-failure\n"},
		{[]string{"--config", cfg, "--queue", queue, "get", ""}, "1\n"},
		{[]string{"--config", cfg, "--queue", queue, "cancel", "2"}, ""},
		{[]string{"submit", "--at", ""}, ""}, // a time: nothing to guess
	}
	for _, tt := range tests {
		code, out, errs := runCLI(t, context.Background(), append([]string{"__complete"}, tt.words...))
		if code != 0 || out != tt.want || errs != "" {
			t.Errorf("complete %q: exit %d, %q (stderr %q), want %q", tt.words, code, out, errs, tt.want)
		}
	}
}
