package cli

import (
	"context"
	"errors"
	"fmt"

	"rpt/internal/config"
	"rpt/internal/demo"
	"rpt/internal/dsn"
	"rpt/internal/queue"
	"rpt/internal/source"
	"rpt/reportdefs"
)

// Exit codes: the table of DESIGN.md and the README, kept in this one place.
const (
	ExitOK          = 0
	ExitJobFailed   = 1
	ExitUsage       = 2
	ExitCancelled   = 3
	ExitNotFinished = 4
	ExitUnreachable = 5
	ExitInterrupted = 130
)

// usageError is bad usage or invalid input given on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitError carries an exit code decided by a command (a job's outcome) with its message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// ExitCode maps an error returned by a command to the documented exit code.
func ExitCode(err error) int {
	var ee *exitError
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.As(err, &ue),
		errors.Is(err, reportdefs.ErrInvalid),
		errors.Is(err, config.ErrInvalid),
		errors.Is(err, dsn.ErrInvalid),
		errors.Is(err, demo.ErrInvalid),
		errors.Is(err, queue.ErrNotFound),
		errors.Is(err, source.ErrUnknownParam),
		errors.Is(err, source.ErrConvert):
		return ExitUsage
	case errors.Is(err, queue.ErrUnavailable), errors.Is(err, source.ErrUnavailable):
		return ExitUnreachable
	}
	return ExitJobFailed
}

// jobOutcome turns a finished or unfinished job into the command's exit error (nil when
// it succeeded).
func jobOutcome(j *queue.Job) error {
	switch j.Status {
	case queue.StatusSucceeded:
		return nil
	case queue.StatusFailed:
		return &exitError{code: ExitJobFailed, msg: fmt.Sprintf("job %d failed: %s", j.ID, j.Error)}
	case queue.StatusCancelled:
		return &exitError{code: ExitCancelled, msg: fmt.Sprintf("job %d was cancelled", j.ID)}
	}
	return &exitError{code: ExitNotFinished, msg: fmt.Sprintf("job %d is %s, not finished yet", j.ID, j.Status)}
}
