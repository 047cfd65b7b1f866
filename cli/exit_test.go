package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"

	"rpt/internal/queue"
)

// listStore is a queue whose JobList fails with err.
type listStore struct {
	queue.Store
	err error
}

func (s listStore) JobList(context.Context, queue.JobListParams) ([]*queue.Job, error) {
	return nil, s.err
}
func (s listStore) Close() error { return nil }

// What `rpt jobs list` exits with when the queue fails in each class: the class decides,
// and only a job's failure exits 1.
func TestExitCodeByClass(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"queue.ErrInvalid (exited 1 before)", fmt.Errorf("pause: %w", queue.ErrInvalid), ExitUsage},
		{"disk full (exited 1 before)", &fs.PathError{Op: "write", Path: "q.db", Err: syscall.ENOSPC}, ExitUnreachable},
		{"nobody classified it (exited 1 before)", errors.New("boom"), ExitInternal},
		{"not found", fmt.Errorf("job 3: %w", queue.ErrNotFound), ExitUsage},
		{"interrupted", context.Canceled, ExitInterrupted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("XDG_DATA_HOME", t.TempDir())
			var out, errOut bytes.Buffer
			d := Deps{Stdout: &out, Stderr: &errOut, Now: time.Now,
				OpenQueue: func(context.Context, string, queue.Options) (queue.Store, error) { return listStore{err: tc.err}, nil }}
			code := Main(context.Background(), []string{"rpt", "--queue", "mysql://u@h/db", "--retry-for", "0", "jobs", "list"}, d)
			if code != tc.want {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.want, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.err.Error()) {
				t.Errorf("stderr %q does not say %q", errOut.String(), tc.err)
			}
		})
	}
}
