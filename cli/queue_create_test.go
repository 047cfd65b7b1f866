package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Read-only commands never create a queue: on an SQLite queue that does not exist they
// say so (exit 5) and leave no folder and no empty database; the commands that queue
// work or set the queue up create it, folders included.
func TestReadOnlyCommandsNeverCreateTheQueue(t *testing.T) {
	work := t.TempDir()
	isolateEnv(t, work)
	dir := filepath.Join(work, "q", "sub")
	q := "sqlite:" + filepath.Join(dir, "q.db")
	for _, args := range [][]string{
		{"jobs", "list"}, {"jobs"}, {"jobs", "show", "1"}, {"get", "1"}, {"get", "--latest", "trial-balance"},
		{"watch", "1"}, {"agents", "list"}, {"agents", "drain", "a1"}, {"pause"}, {"resume", "report", "trial-balance"},
		{"db", "status"}, {"db", "prune"}, {"cancel", "1"}, {"retry", "1"},
	} {
		code, stdout, stderr := runCLI(t, context.Background(), append([]string{"--queue", q}, args...))
		if code != 5 || !strings.Contains(stderr, "does not exist (nothing was queued there yet)") {
			t.Errorf("rpt %s: exit %d, want 5 saying the queue does not exist\nstdout %q\nstderr %q", strings.Join(args, " "), code, stdout, stderr)
		}
		if _, err := os.Stat(filepath.Join(work, "q")); err == nil {
			t.Fatalf("rpt %s created %s", strings.Join(args, " "), filepath.Join(work, "q"))
		}
	}
	// The default queue in the data dir, too.
	if code, _, _ := runCLI(t, context.Background(), []string{"jobs", "list"}); code != 5 {
		t.Errorf("jobs list on the default queue: exit %d, want 5", code)
	}
	if _, err := os.Stat(filepath.Join(work, "data", "rpt")); err == nil {
		t.Error("jobs list created the default queue's folder")
	}

	for i, args := range [][]string{{"submit", "trial-balance"}, {"db", "migrate"}} {
		p := filepath.Join(work, "made", string(rune('a'+i)), "q.db")
		if code, _, stderr := runCLI(t, context.Background(), append([]string{"--queue", "sqlite:" + p}, args...)); code != 0 {
			t.Fatalf("rpt %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("rpt %s did not create the queue: %v", strings.Join(args, " "), err)
		}
		// Once it exists, reading it works.
		if code, _, stderr := runCLI(t, context.Background(), []string{"--queue", "sqlite:" + p, "jobs", "list"}); code != 0 {
			t.Errorf("jobs list after %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
	}
}
