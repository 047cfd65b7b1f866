package cli

import (
	"fmt"

	"rpt/internal/errclass"
	"rpt/internal/jobs"
)

// Exit codes: the README's table. internal/errclass defines them with their classes
// (and the HTTP status of each), and jobs.Class says which class an error is; this file
// only looks the code up.
const (
	ExitOK          = errclass.ExitOK
	ExitJobFailed   = errclass.ExitJobFailed
	ExitUsage       = errclass.ExitUsage
	ExitCancelled   = errclass.ExitCancelled
	ExitNotFinished = errclass.ExitNotFinished
	ExitUnreachable = errclass.ExitUnreachable
	ExitInternal    = errclass.ExitInternal
	ExitInterrupted = errclass.ExitInterrupted
)

// usagef is bad usage or invalid input given on the command line.
func usagef(format string, args ...any) error {
	return errclass.New(errclass.Invalid, fmt.Sprintf(format, args...))
}

// ExitCode maps an error returned by a command to the documented exit code. Only a
// job's outcome (jobs.Outcome) exits 1; an error nobody classified exits 6, never 1.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	return jobs.Class(err).Exit()
}
