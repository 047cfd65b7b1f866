package cli

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"rpt/internal/errclass"
)

// writeOutput writes a result to the --file path without ever destroying what is there:
//
//   - a regular file (or none yet) is written through a temporary file in the same folder
//     and renamed into place, so a failed write never leaves a half-written file; an
//     existing file keeps its permission bits (and, where allowed, its owner), and one
//     we may not write to is refused, as the shell's > would refuse it;
//   - a symlink is followed: its target is written by these same rules (a regular target
//     is replaced, not the link); a dangling symlink is refused, since creating a file
//     wherever a link points is how a planted link steers a write;
//   - a FIFO or a character device (/dev/stdout, /dev/null, a terminal, a pipe a script
//     reads) is opened and written directly: that is a legitimate use, and renaming over
//     it would replace the node itself (as root, --file /dev/null would swap /dev/null
//     for a regular file);
//   - a directory, a socket or a block device is refused.
func writeOutput(path string, write func(io.Writer) error) error {
	target, fi, err := outputTarget(path)
	if err != nil {
		return err
	}
	if fi != nil && !fi.Mode().IsRegular() {
		return writeDirect(path, target, write)
	}
	return writeReplace(path, target, fi, write)
}

// outputTarget resolves the path to write: the path itself, or a symlink's final target.
// fi is nil when nothing exists there yet.
func outputTarget(path string) (string, fs.FileInfo, error) {
	lfi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("--file %s: %w", path, err)
	}
	target := path
	fi := lfi
	if lfi.Mode()&fs.ModeSymlink != 0 {
		if fi, err = os.Stat(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", nil, usagef("--file %s: a symlink to nothing (%s); rpt writes through a symlink only to a file that exists", path, linkText(path))
			}
			return "", nil, fmt.Errorf("--file %s: %w", path, err)
		}
		if fi.Mode().IsRegular() {
			// The rename must happen next to the real file, not next to the link.
			if target, err = filepath.EvalSymlinks(path); err != nil {
				return "", nil, fmt.Errorf("--file %s: %w", path, err)
			}
		}
	}
	m := fi.Mode()
	switch {
	case m.IsRegular(), m&fs.ModeNamedPipe != 0, m&fs.ModeCharDevice != 0:
		return target, fi, nil
	case m.IsDir():
		return "", nil, usagef("--file %s: is a folder; give a file name", path)
	case m&fs.ModeDevice != 0:
		return "", nil, usagef("--file %s: is a block device; rpt does not write to one", path)
	}
	return "", nil, usagef("--file %s: is a %s, not a file, FIFO or character device; rpt does not write to it", path, kindOf(m))
}

func linkText(path string) string {
	s, err := os.Readlink(path)
	if err != nil {
		return "unreadable"
	}
	return "-> " + s
}

func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeIrregular != 0:
		return "special file"
	}
	return m.Type().String()
}

// writeDirect writes to a FIFO or character device in place. Opening a FIFO waits for a
// reader, as the shell's > does. What was written before a failure has already gone.
func writeDirect(path, target string, write func(io.Writer) error) error {
	f, err := os.OpenFile(target, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("--file %s: %w", path, err)
	}
	// Between the look and the open the node may have been swapped: write only to what
	// was checked (a regular file here would be written without truncation).
	if fi, err := f.Stat(); err != nil || fi.Mode()&(fs.ModeNamedPipe|fs.ModeCharDevice) == 0 {
		f.Close()
		return errclass.Errorf(errclass.Conflict, "--file %s: changed while opening it; not written", path)
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--file %s: %w", path, err)
	}
	return nil
}

// writeReplace writes target (a regular file or nothing yet) by temporary file and
// rename. old is what is there now (nil: nothing).
func writeReplace(path, target string, old fs.FileInfo, write func(io.Writer) error) error {
	if old != nil {
		// The shell refuses to write into a file the user may not write; so does rpt,
		// rather than renaming a new file over the protection.
		f, err := os.OpenFile(target, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("--file %s: %w", path, err)
		}
		f.Close()
	}
	f, tmp, err := createTemp(target)
	if err != nil {
		return fmt.Errorf("--file %s: %w", path, err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := write(f); err != nil {
		return fail(err)
	}
	if old != nil {
		if err := f.Chmod(old.Mode().Perm()); err != nil {
			return fail(fmt.Errorf("--file %s: keep its mode: %w", path, err))
		}
		if st, ok := old.Sys().(*syscall.Stat_t); ok {
			// Root replacing a user's file keeps it theirs; anyone else may keep only what
			// the system lets them, and the file is still written.
			_ = f.Chown(int(st.Uid), int(st.Gid))
		}
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("--file %s: %w", path, err))
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("--file %s: %w", path, err)
	}
	// Look again just before the rename: a FIFO or device that appeared meanwhile is
	// not replaced.
	if fi, err := os.Lstat(target); err == nil && !fi.Mode().IsRegular() {
		os.Remove(tmp)
		return errclass.Errorf(errclass.Conflict, "--file %s: became a %s while writing; not replaced", path, kindOf(fi.Mode()))
	}
	if err := os.Rename(tmp, target); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("--file %s: %w", path, err)
	}
	return nil
}

// createTemp creates a hidden file next to target. Unlike os.CreateTemp it asks for
// mode 0666 so a new file gets the umask's permissions like any file the shell creates.
func createTemp(target string) (*os.File, string, error) {
	dir, base := filepath.Split(target)
	for range 10 {
		var b [6]byte
		_, _ = rand.Read(b[:])
		tmp := filepath.Join(dir, "."+base+"."+hex.EncodeToString(b[:])+".tmp")
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, tmp, err
	}
	return nil, "", errors.New("cannot create a temporary file")
}

// maxFileNameBytes keeps a filled-in template under the 255 bytes most file systems allow,
// with room for the extension.
const maxFileNameBytes = 200

// safeFileName makes a filled-in filename: template a file name in the current folder
// and nothing else: a parameter value may hold "/", "..", a leading dot or control
// characters (-p who=.profile, -p who=../x), and the result must still be a plain,
// visible file with the format's extension. fallback is used when nothing usable is left.
func safeFileName(name, ext, fallback string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == '/' || r == '\\' || r == utf8.RuneError:
			b.WriteByte('-')
		case unicode.IsControl(r) || r == 0x7f:
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	s := strings.TrimSpace(b.String())
	s = strings.TrimLeft(s, ".-")
	s = strings.TrimSuffix(s, "."+ext)
	if len(s) > maxFileNameBytes {
		s = s[:maxFileNameBytes]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	s = strings.TrimRight(s, ". ")
	if s == "" {
		return fallback
	}
	return s + "." + ext
}
