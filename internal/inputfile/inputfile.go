// Package inputfile reads the files rpt takes as input (rpt.yaml, report definitions,
// and the crontab and parameter files to come) with a bound: it looks at what a path
// is before opening it, so a FIFO cannot hang a command and a device such as /dev/zero
// cannot grow its memory, and it refuses a file over the caller's size limit without
// reading it whole. See ARCHITECTURE.md, "Reading input files".
package inputfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Sentinels an *Error wraps, besides the operating system's own (fs.ErrNotExist,
// fs.ErrPermission).
var (
	// ErrNotRegular: the path is a directory, FIFO, socket or device.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: the file is over the size limit.
	ErrTooLarge = errors.New("file too large")
)

// Error is a file that cannot be read as input; Msg says why in words a user acts on.
type Error struct {
	Path string
	Msg  string
	Err  error // ErrNotRegular, ErrTooLarge or the underlying os error
}

func (e *Error) Error() string { return e.Path + ": " + e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// Read returns the contents of the regular file at path (symbolic links followed).
// what names the kind of file in the size message ("a report definition"). It refuses,
// with an *Error and without reading: a path that is not a regular file, and a file
// whose size is over limit; a file that grows past limit while being read is refused
// after reading limit+1 bytes, never more.
func Read(path string, limit int64, what string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, osError(path, err)
	}
	if err := check(path, st, limit, what); err != nil {
		return nil, err
	}
	// Non-blocking, in case the path was swapped for a FIFO after the Stat: opening a
	// FIFO for reading blocks until a writer comes, O_NONBLOCK returns at once.
	f, err := os.OpenFile(path, os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, osError(path, err)
	}
	defer f.Close()
	fst, err := f.Stat()
	if err != nil {
		return nil, osError(path, err)
	}
	if err := check(path, fst, limit, what); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, osError(path, err)
	}
	if int64(len(data)) > limit {
		return nil, &Error{Path: path, Err: ErrTooLarge,
			Msg: fmt.Sprintf("file is more than %s; %s may be at most %s", Size(limit), what, Size(limit))}
	}
	return data, nil
}

// Check refuses what Read refuses, from a FileInfo the caller already has (a folder
// listing), without opening anything.
func Check(path string, st fs.FileInfo, limit int64, what string) error {
	return check(path, st, limit, what)
}

func check(path string, st fs.FileInfo, limit int64, what string) error {
	m := st.Mode()
	if !m.IsRegular() {
		return &Error{Path: path, Err: ErrNotRegular, Msg: kind(m) + ", not a regular file"}
	}
	if st.Size() > limit {
		return &Error{Path: path, Err: ErrTooLarge,
			Msg: fmt.Sprintf("file is %s; %s may be at most %s", Size(st.Size()), what, Size(limit))}
	}
	return nil
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "is a directory"
	case m&fs.ModeNamedPipe != 0:
		return "is a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "is a socket"
	case m&fs.ModeCharDevice != 0:
		return "is a character device"
	case m&fs.ModeDevice != 0:
		return "is a device"
	}
	return "is a special file"
}

// osError words the operating system's error without repeating the path.
func osError(path string, err error) error {
	var pe *fs.PathError
	inner := err
	if errors.As(err, &pe) {
		inner = pe.Err
	}
	msg := inner.Error()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		msg = "does not exist"
	case errors.Is(err, fs.ErrPermission):
		msg = "permission denied"
	}
	return &Error{Path: path, Err: err, Msg: msg}
}

// Size prints a byte count the way people read it: 512 bytes, 64 KiB, 1.5 MiB.
func Size(n int64) string {
	unit := func(u int64, name string) string {
		if n%u == 0 {
			return fmt.Sprintf("%d %s", n/u, name)
		}
		return fmt.Sprintf("%.1f %s", float64(n)/float64(u), name)
	}
	switch {
	case n >= 1<<30:
		return unit(1<<30, "GiB")
	case n >= 1<<20:
		return unit(1<<20, "MiB")
	case n >= 1<<10:
		return unit(1<<10, "KiB")
	case n == 1:
		return "1 byte"
	}
	return fmt.Sprintf("%d bytes", n)
}
