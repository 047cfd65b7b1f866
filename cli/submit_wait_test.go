package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rpt/cli"
)

// runSubmit runs rpt submit on a fresh SQLite queue in dir, stderr a terminal or not.
func runSubmit(t *testing.T, ctx context.Context, dir string, tty bool, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	d := deps(&out, &errb)
	d.StderrTTY = tty
	cfg := filepath.Join(dir, "rpt.yaml")
	// The shipped trial balance reads the warehouse; submitting needs it named only.
	yaml := "sources:\n  warehouse: {driver: sqlite, dsn: \"sqlite:" + filepath.Join(dir, "demo.db") + "\"}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	// The queue's clock is the real one (agents' last_seen, run_after); relative
	// parameters need none here.
	d.Now = time.Now
	code := cli.Main(ctx, append([]string{"rpt", "--config", cfg, "--queue", "sqlite:" + filepath.Join(dir, "q.db"), "submit"}, args...), d)
	return code, out.String(), errb.String()
}

// TestSubmitSaysWhyItWaits: on a terminal, a job no agent can run is said to wait and
// why (it used to print the id and nothing else); in a pipe the id stays alone.
func TestSubmitSaysWhyItWaits(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	code, out, errs := runSubmit(t, ctx, dir, true, "trial-balance", "-p", "start_period=202501", "-p", "end_period=202512")
	if code != 0 || strings.TrimSpace(out) != "1" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if want := "rpt: job 1 will wait: no agent is running (start one: rpt agent)\n"; errs != want {
		t.Errorf("stderr %q, want %q", errs, want)
	}
	code, out, errs = runSubmit(t, ctx, dir, false, "trial-balance", "-p", "start_period=202502", "-p", "end_period=202512")
	if code != 0 || strings.TrimSpace(out) != "2" || errs != "" {
		t.Errorf("in a pipe: exit %d, stdout %q, stderr %q; want 2 alone", code, out, errs)
	}
}

// TestSubmitWaitTimeoutSaysWhy: a --wait --timeout that runs out on a queued job says
// why it still waits (it used to end with "still queued after 1s" and no reason).
func TestSubmitWaitTimeoutSaysWhy(t *testing.T) {
	dir := t.TempDir()
	code, _, errs := runSubmit(t, context.Background(), dir, false, "trial-balance", "--wait", "--timeout", "300ms")
	if code != cli.ExitNotFinished {
		t.Fatalf("exit %d, want %d; stderr %q", code, cli.ExitNotFinished, errs)
	}
	if want := "rpt: job 1 is still queued after 300ms: no agent is running (start one: rpt agent)\n"; errs != want {
		t.Errorf("stderr %q, want %q", errs, want)
	}
}

// TestSubmitWaitInterrupted: Ctrl-C of submit --wait exits 130 and says only that the
// job is still queued and how to stop it (it used to add "rpt: context canceled").
func TestSubmitWaitInterrupted(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	code, out, errs := runSubmit(t, ctx, dir, false, "trial-balance", "--wait")
	if code != cli.ExitInterrupted {
		t.Fatalf("exit %d, want %d; stderr %q", code, cli.ExitInterrupted, errs)
	}
	if strings.TrimSpace(out) != "1" {
		t.Errorf("stdout %q, want the id", out)
	}
	if want := "interrupted; job 1 is still queued (rpt cancel 1 stops it)\n"; errs != want {
		t.Errorf("stderr %q, want %q", errs, want)
	}
}
