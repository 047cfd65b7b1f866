//go:build unix

package cli_test

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"rpt/cli"
)

// TestInputsNeverHang: a FIFO given as a definition or as rpt.yaml is refused at once
// (exit 2) instead of waiting for a writer, and so is an endless device.
func TestInputsNeverHang(t *testing.T) {
	work := t.TempDir()
	isolateEnv(t, work)
	fifo := filepath.Join(work, "pipe.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"reports", "validate", fifo},
		{"--config", fifo, "jobs", "list"},
		{"--config", "/dev/zero", "jobs", "list"},
		{"reports", "validate", "/dev/zero", "/dev/urandom"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		code, _, stderr := runCLI(t, ctx, args)
		cancel()
		if time.Since(start) > 5*time.Second {
			t.Errorf("rpt %v took %s", args, time.Since(start))
		}
		if code != cli.ExitUsage || !strings.Contains(stderr, "not a regular file") {
			t.Errorf("rpt %v: exit %d, %q; want exit 2 naming a file that is not regular", args, code, stderr)
		}
	}
}
