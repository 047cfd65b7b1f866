package queue

import "errors"

// ErrInvalid: an Operations call was given a malformed argument (a pause kind other
// than "report" or "source", an empty name). The error text names the argument.
var ErrInvalid = errors.New("invalid")
