package sqlite_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"rpt/internal/errclass"
	"rpt/internal/queue"
)

// A full disk (SQLite's max_page_count stands in for it) fails the write as class
// Unavailable with what to do: the machine's fault, neither bad input nor a job's
// failure (it exited 1 before).
func TestDiskFullIsUnavailable(t *testing.T) {
	s := newStore(t, suiteOptions)
	ctx := context.Background()
	var pages int
	if err := s.DB().QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, "PRAGMA max_page_count = "+strconv.Itoa(pages)); err != nil {
		t.Fatal(err)
	}
	big := queue.JobEnqueueParams{Kind: queue.KindReport, Report: "r", Definition: []byte(strings.Repeat("x", 1<<20)),
		Params: []byte("{}"), Source: "s", MaxAttempts: 1}
	_, err := s.JobEnqueue(ctx, big)
	if err == nil {
		t.Fatal("enqueue into a full database succeeded")
	}
	if c, ok := errclass.Of(err); !ok || c != errclass.Unavailable {
		t.Errorf("%v: class %v, want unavailable", err, c)
	}
	if !strings.Contains(err.Error(), "full") || !strings.Contains(err.Error(), "free space") {
		t.Errorf("%q does not say the disk is full and what to do", err)
	}
}
