// Package errclass is rpt's one table of error classes. Every front door answers an
// error by its class: the command line with an exit code, the HTTP API with a status.
// A package that knows what went wrong returns an *Error of a class (or wraps a
// sentinel that internal/jobs.Class maps); nothing else decides exit codes or statuses.
package errclass

import (
	"errors"
	"fmt"
	"net/http"
)

// Class is what kind of failure an error is, from the caller's point of view.
type Class int

const (
	// Internal is an error nobody classified: a bug, or a local fault rpt did not
	// expect. It is never reported as a job's failure.
	Internal Class = iota
	// Invalid: bad usage or invalid input (flags, parameters, definitions,
	// configuration); the message names the field.
	Invalid
	// NotFound: an unknown report, job or agent.
	NotFound
	// Conflict: the request cannot be done in the current state (e.g. a definition
	// already published with other content).
	Conflict
	// Unavailable: infrastructure that does not answer or refuses rpt (queue database,
	// broker, source, a full disk), with what to do about it.
	Unavailable
	// Unauthorized: the caller did not prove who it is (the API's own authentication).
	Unauthorized
	// Forbidden: the caller may not do this.
	Forbidden
	// JobFailed: the job ran and failed.
	JobFailed
	// Cancelled: the job was cancelled.
	Cancelled
	// NotFinished: the job is not finished (a wait timed out, or its result is asked
	// for while it runs).
	NotFinished
	// Interrupted: the caller stopped (Ctrl-C, a client that went away).
	Interrupted
)

// Exit codes, as the README documents them.
const (
	ExitOK          = 0
	ExitJobFailed   = 1
	ExitUsage       = 2
	ExitCancelled   = 3
	ExitNotFinished = 4
	ExitUnreachable = 5
	ExitInternal    = 6
	ExitInterrupted = 130
)

// StatusClientClosedRequest is the status recorded when the client went away before
// the answer (nginx's 499; no answer reaches the client anyway).
const StatusClientClosedRequest = 499

// Info is one row of the table.
type Info struct {
	Name string // for logs and the API's error body
	Exit int    // the command line's exit code
	HTTP int    // the API's status
}

// table is the one mapping of classes to exit codes and HTTP statuses. A job's state
// that does not allow the request (failed, cancelled, still running) is a 409 for the
// API: the request was fine, the job is not in a state to answer it.
var table = [...]Info{
	Internal:     {"internal", ExitInternal, http.StatusInternalServerError},
	Invalid:      {"invalid", ExitUsage, http.StatusBadRequest},
	NotFound:     {"not_found", ExitUsage, http.StatusNotFound},
	Conflict:     {"conflict", ExitUsage, http.StatusConflict},
	Unavailable:  {"unavailable", ExitUnreachable, http.StatusServiceUnavailable},
	Unauthorized: {"unauthorized", ExitUsage, http.StatusUnauthorized},
	Forbidden:    {"forbidden", ExitUsage, http.StatusForbidden},
	JobFailed:    {"job_failed", ExitJobFailed, http.StatusConflict},
	Cancelled:    {"cancelled", ExitCancelled, http.StatusConflict},
	NotFinished:  {"not_finished", ExitNotFinished, http.StatusConflict},
	Interrupted:  {"interrupted", ExitInterrupted, StatusClientClosedRequest},
}

// Classes lists every class, for tests and documentation.
func Classes() []Class {
	out := make([]Class, len(table))
	for i := range table {
		out[i] = Class(i)
	}
	return out
}

func (c Class) info() Info {
	if c < 0 || int(c) >= len(table) {
		return table[Internal]
	}
	return table[c]
}

// Exit is the class's exit code.
func (c Class) Exit() int { return c.info().Exit }

// HTTP is the class's HTTP status.
func (c Class) HTTP() int { return c.info().HTTP }

func (c Class) String() string { return c.info().Name }

// Error is an error of a class. Its text is Msg alone: the class decides the code, the
// message says what happened and what to do.
type Error struct {
	Class Class
	Msg   string
	Err   error // the cause, kept for errors.Is/As; not part of the text unless Msg has it
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// New returns an error of class c with the message msg.
func New(c Class, msg string) error { return &Error{Class: c, Msg: msg} }

// Errorf formats a message of class c; a %w verb wraps its operand as with fmt.Errorf.
func Errorf(c Class, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Class: c, Msg: err.Error(), Err: err}
}

// Wrap gives err the class c, keeping its text and chain.
func Wrap(c Class, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Class: c, Msg: err.Error(), Err: err}
}

// Of returns the class of the outermost *Error in err's chain, and whether there was
// one. Sentinel errors of the building blocks (queue.ErrNotFound, ...) are mapped by
// internal/jobs.Class, which knows them.
func Of(err error) (Class, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Class, true
	}
	return Internal, false
}
