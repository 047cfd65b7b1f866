package cli

import (
	"context"
	"errors"
	"fmt"

	"rpt/internal/config"
	"rpt/internal/demo"
	"rpt/internal/dsn"
	"rpt/internal/errclass"
	"rpt/internal/queue"
	"rpt/internal/source"
	"rpt/reportdefs"
)

// Exit codes: the README's table; internal/errclass defines them with their classes.
const (
	ExitOK          = errclass.ExitOK
	ExitJobFailed   = errclass.ExitJobFailed
	ExitUsage       = errclass.ExitUsage
	ExitCancelled   = errclass.ExitCancelled
	ExitNotFinished = errclass.ExitNotFinished
	ExitUnreachable = errclass.ExitUnreachable
	ExitInterrupted = errclass.ExitInterrupted
)

// usageError is bad usage or invalid input given on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// ExitCode maps an error returned by a command to the documented exit code.
func ExitCode(err error) int {
	var ue *usageError
	if c, ok := errclass.Of(err); ok {
		return c.Exit()
	}
	switch {
	case err == nil:
		return ExitOK
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
