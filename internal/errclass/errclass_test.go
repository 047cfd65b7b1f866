package errclass_test

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"rpt/internal/errclass"
)

// The table as the README documents it: each class's exit code and HTTP status.
func TestTable(t *testing.T) {
	want := map[errclass.Class][2]int{
		errclass.Internal:     {6, 500},
		errclass.Invalid:      {2, 400},
		errclass.NotFound:     {2, 404},
		errclass.Conflict:     {2, 409},
		errclass.Unavailable:  {5, 503},
		errclass.Unauthorized: {2, 401},
		errclass.Forbidden:    {2, 403},
		errclass.JobFailed:    {1, 409},
		errclass.Cancelled:    {3, 409},
		errclass.NotFinished:  {4, 409},
		errclass.Interrupted:  {130, 499},
	}
	names := map[string]bool{}
	for _, c := range errclass.Classes() {
		w, ok := want[c]
		if !ok {
			t.Errorf("class %v is not in this test: add its codes", c)
			continue
		}
		if c.Exit() != w[0] || c.HTTP() != w[1] {
			t.Errorf("%v: exit %d, HTTP %d; want %d, %d", c, c.Exit(), c.HTTP(), w[0], w[1])
		}
		if names[c.String()] || c.String() == "" {
			t.Errorf("class name %q empty or repeated", c.String())
		}
		names[c.String()] = true
		delete(want, c)
	}
	for c := range want {
		t.Errorf("class %v missing from Classes()", c)
	}
	// Only a job's failure exits 1.
	for _, c := range errclass.Classes() {
		if c.Exit() == errclass.ExitJobFailed && c != errclass.JobFailed {
			t.Errorf("%v exits 1, which means the job failed", c)
		}
	}
	if c := errclass.Class(99); c.Exit() != errclass.ExitInternal || c.HTTP() != 500 {
		t.Errorf("an unknown class: exit %d, HTTP %d; want internal's", c.Exit(), c.HTTP())
	}
}

func TestErrorfWrapsAndOf(t *testing.T) {
	err := errclass.Errorf(errclass.Unavailable, "open %s: %w", "q.db", fs.ErrPermission)
	if err.Error() != "open q.db: permission denied" {
		t.Errorf("text %q", err)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Error("Errorf lost the wrapped error")
	}
	outer := fmt.Errorf("submit: %w", err)
	if c, ok := errclass.Of(outer); !ok || c != errclass.Unavailable {
		t.Errorf("Of through a wrap: %v %v", c, ok)
	}
	// The outermost class decides: a front door may re-class what it wraps.
	re := errclass.Wrap(errclass.JobFailed, outer)
	if c, _ := errclass.Of(re); c != errclass.JobFailed || re.Error() != outer.Error() || !errors.Is(re, fs.ErrPermission) {
		t.Errorf("Wrap: class %v, text %q", c, re)
	}
	if c, ok := errclass.Of(errors.New("plain")); ok || c != errclass.Internal {
		t.Errorf("Of(plain) = %v, %v; want internal, false", c, ok)
	}
	if errclass.Wrap(errclass.Invalid, nil) != nil {
		t.Error("Wrap(nil) is not nil")
	}
	two := errclass.Errorf(errclass.Invalid, "%w and %w", fs.ErrExist, fs.ErrClosed)
	if !errors.Is(two, fs.ErrExist) || !errors.Is(two, fs.ErrClosed) {
		t.Error("Errorf with two %w lost one")
	}
}
