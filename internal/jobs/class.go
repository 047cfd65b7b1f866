package jobs

import (
	"context"
	"errors"
	"io/fs"
	"syscall"

	"rpt/internal/config"
	"rpt/internal/demo"
	"rpt/internal/dsn"
	"rpt/internal/errclass"
	"rpt/internal/notify"
	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/internal/source"
	"rpt/reportdefs"
)

// sentinels maps the building blocks' sentinel errors to their class, in the order
// they are tried: the first that err matches wins. errclass holds the codes; this is
// the one place that knows which sentinel means what.
var sentinels = []struct {
	err   error
	class errclass.Class
}{
	{context.Canceled, errclass.Interrupted},
	// Not found before invalid: an unknown report also matches reportdefs.ErrInvalid.
	{queue.ErrNotFound, errclass.NotFound},
	{reportdefs.ErrNotFound, errclass.NotFound},
	// A name that is taken (an API token's): pick another.
	{queue.ErrExists, errclass.Conflict},
	{reportdefs.ErrInvalid, errclass.Invalid},
	{config.ErrInvalid, errclass.Invalid},
	{dsn.ErrInvalid, errclass.Invalid},
	{demo.ErrInvalid, errclass.Invalid},
	{queue.ErrInvalid, errclass.Invalid},
	{source.ErrUnknownParam, errclass.Invalid},
	{source.ErrConvert, errclass.Invalid},
	// Report SQL that writes, refused by the source (read-only run): the definition is wrong.
	{source.ErrReadOnly, errclass.Invalid},
	// SQL that is not one statement (or a replace_where that is not one condition).
	{source.ErrStatement, errclass.Invalid},
	{source.ErrUnknownDriver, errclass.Invalid},
	// A driver this build leaves out (odbc without -tags odbc): use the build that has it.
	{source.ErrNotBuilt, errclass.Invalid},
	// A request its source cannot run (a result column an odbc report does not type).
	{source.ErrRequest, errclass.Invalid},
	{queue.ErrUnavailable, errclass.Unavailable},
	{source.ErrUnavailable, errclass.Unavailable},
	{notify.ErrBroker, errclass.Unavailable},
	// A result in a store this configuration does not name: configure it.
	{results.ErrNotConfigured, errclass.Invalid},
	// A results store that cannot keep or return a result, and a stored result found
	// damaged (a chunk missing): the store's trouble, not the job's nor the input's.
	{results.ErrUnavailable, errclass.Unavailable},
	{results.ErrIncomplete, errclass.Unavailable},
	{queue.ErrFull, errclass.Unavailable},
	// Local faults: a full or failing disk is the machine's trouble, not the input's
	// nor the job's.
	{syscall.ENOSPC, errclass.Unavailable},
	{syscall.EDQUOT, errclass.Unavailable},
	{syscall.EIO, errclass.Unavailable},
	{syscall.EROFS, errclass.Unavailable},
	// A path that does not exist or may not be opened was given by the caller (a
	// --file, --config or report folder), or names a folder where a file belongs.
	{fs.ErrNotExist, errclass.Invalid},
	{fs.ErrPermission, errclass.Invalid},
	{syscall.EISDIR, errclass.Invalid},
	{syscall.ENOTDIR, errclass.Invalid},
}

// Class is the class of err: the class of an *errclass.Error in its chain, else the
// class of the first sentinel it matches, else errclass.Internal. A job's failure is
// only ever JobFailed through Outcome, never by default.
func Class(err error) errclass.Class {
	if c, ok := errclass.Of(err); ok {
		return c
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.class
		}
	}
	return errclass.Internal
}
