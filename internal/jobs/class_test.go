package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"rpt/internal/config"
	"rpt/internal/demo"
	"rpt/internal/dsn"
	"rpt/internal/errclass"
	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/source"
	"rpt/reportdefs"
)

func TestClass(t *testing.T) {
	w := func(err error) error { return fmt.Errorf("op: %w", err) }
	_, openErr := os.Open("/nonexistent/rpt/file")
	for _, tc := range []struct {
		name string
		err  error
		want errclass.Class
	}{
		{"queue.ErrInvalid (exited 1 before)", w(queue.ErrInvalid), errclass.Invalid},
		{"queue.ErrNotFound", w(queue.ErrNotFound), errclass.NotFound},
		{"unknown report", w(reportdefs.ErrNotFound), errclass.NotFound},
		{"bad definition", w(reportdefs.ErrInvalid), errclass.Invalid},
		{"bad config", w(config.ErrInvalid), errclass.Invalid},
		{"bad dsn", w(dsn.ErrInvalid), errclass.Invalid},
		{"bad demo options", w(demo.ErrInvalid), errclass.Invalid},
		{"unknown param", w(source.ErrUnknownParam), errclass.Invalid},
		{"column type", w(source.ErrConvert), errclass.Invalid},
		{"unknown driver", w(source.ErrUnknownDriver), errclass.Invalid},
		{"queue unavailable", w(queue.ErrUnavailable), errclass.Unavailable},
		{"source unavailable", w(source.ErrUnavailable), errclass.Unavailable},
		{"disk full", w(&fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), errclass.Unavailable},
		{"I/O error", w(syscall.EIO), errclass.Unavailable},
		{"read-only file system", w(syscall.EROFS), errclass.Unavailable},
		{"missing file", w(openErr), errclass.Invalid},
		{"access denied to a file", w(&fs.PathError{Op: "open", Path: "x", Err: syscall.EACCES}), errclass.Invalid},
		{"a folder given for a file", w(&fs.PathError{Op: "read", Path: "x", Err: syscall.EISDIR}), errclass.Invalid},
		{"interrupted", w(context.Canceled), errclass.Interrupted},
		{"classed beats sentinel", errclass.Errorf(errclass.Unavailable, "schema missing: %w", queue.ErrNotFound), errclass.Unavailable},
		{"job outcome", jobs.Outcome(&queue.Job{ID: 1, Status: queue.StatusFailed}), errclass.JobFailed},
		{"nobody classified it", errors.New("boom"), errclass.Internal},
	} {
		if got := jobs.Class(tc.err); got != tc.want {
			t.Errorf("%s: %v is %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
	if c := jobs.Class(errors.New("boom")); c.Exit() == errclass.ExitJobFailed {
		t.Error("an unclassified error exits 1, which means a job failed")
	}
}
