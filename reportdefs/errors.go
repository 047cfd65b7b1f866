package reportdefs

import (
	"errors"
	"fmt"

	"rpt/internal/yamlstrict"
)

// ErrInvalid marks every error about a malformed definition or parameter value, so the
// CLI can map it to exit code 2 with errors.Is.
var ErrInvalid = errors.New("invalid report definition")

// ErrNotFound is returned by Catalog.Get for an unknown report; the error also
// satisfies errors.Is(err, ErrInvalid) because an unknown name is bad input.
var ErrNotFound = errors.New("unknown report")

// FieldError is one problem in a definition file: file:line:column, the field (a path
// such as "params[2].type"; empty for file-level problems) and what is wrong. It
// satisfies errors.Is(err, ErrInvalid).
type FieldError = yamlstrict.Error

// fieldError makes a FieldError outside a parse (catalog and configuration checks).
func fieldError(file string, pos yamlstrict.Pos, field, format string, args ...any) *FieldError {
	return &FieldError{File: file, Line: pos.Line, Column: pos.Column, Field: field, Msg: fmt.Sprintf(format, args...), Class: ErrInvalid}
}

// paramError is a bad parameter value at submit time.
type paramError struct{ msg string }

func (e *paramError) Error() string        { return e.msg }
func (e *paramError) Is(target error) bool { return target == ErrInvalid }

func paramErrorf(format string, args ...any) error {
	return &paramError{msg: fmt.Sprintf(format, args...)}
}

type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }
func (e *notFoundError) Is(target error) bool {
	return target == ErrNotFound || target == ErrInvalid
}
