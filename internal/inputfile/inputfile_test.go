package inputfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadRegular(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "a.yaml")
	if err := os.WriteFile(p, []byte("name: a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := Read(p, 8, "a report definition")
	if err != nil || string(data) != "name: a\n" {
		t.Fatalf("Read = %q, %v", data, err)
	}
	// Through a symbolic link too.
	link := filepath.Join(t.TempDir(), "link.yaml")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	if data, err := Read(link, 8, "x"); err != nil || string(data) != "name: a\n" {
		t.Fatalf("Read(link) = %q, %v", data, err)
	}
}

// refused runs Read with a deadline: a FIFO or a device must be refused at once, so a
// Read that blocks or reads on fails the test instead of hanging it.
func refused(t *testing.T, path string, limit int64, wantErr error, wantMsg string) {
	t.Helper()
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		data, err := Read(path, limit, "a report definition")
		done <- result{data, err}
	}()
	select {
	case r := <-done:
		if r.err == nil {
			t.Fatalf("Read(%s) read %d bytes, want an error", path, len(r.data))
		}
		var e *Error
		if !errors.As(r.err, &e) || e.Path != path {
			t.Errorf("Read(%s) error %T %v, want an *Error naming the path", path, r.err, r.err)
		}
		if !errors.Is(r.err, wantErr) || !strings.Contains(r.err.Error(), wantMsg) {
			t.Errorf("Read(%s) = %v, want %v with %q", path, r.err, wantErr, wantMsg)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Read(%s) took %s", path, d)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Read(%s) still running after 10s", path)
	}
}

func TestReadRefusesSpecialFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	refused(t, dir, 1<<20, ErrNotRegular, "is a directory, not a regular file")
	refused(t, filepath.Join(dir, "nope.yaml"), 1<<20, fs.ErrNotExist, "does not exist")
	if runtime.GOOS == "windows" {
		t.Skip("no /dev/zero, no FIFOs")
	}
	refused(t, "/dev/zero", 1<<20, ErrNotRegular, "is a character device, not a regular file")
	link := filepath.Join(dir, "zero.yaml")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	refused(t, link, 1<<20, ErrNotRegular, "character device")
	fifo := filepath.Join(dir, "pipe.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	refused(t, fifo, 1<<20, ErrNotRegular, "is a named pipe (FIFO), not a regular file")
}

func TestReadRefusesLargeWithoutReading(t *testing.T) {
	t.Parallel()
	// A sparse 50 GiB file: reading it would take minutes and all the memory; the size
	// check must refuse it from Stat alone.
	p := filepath.Join(t.TempDir(), "huge.yaml")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(50 << 30); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	f.Close()
	refused(t, p, 1<<20, ErrTooLarge, "file is 50 GiB; a report definition may be at most 1 MiB")

	small := filepath.Join(t.TempDir(), "small.yaml")
	if err := os.WriteFile(small, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(small, 5, "x"); err != nil {
		t.Errorf("a file of exactly the limit: %v", err)
	}
	refused(t, small, 4, ErrTooLarge, "file is 5 bytes; a report definition may be at most 4 bytes")
}

// TestReadBoundsWhatStatDoesNotShow: files whose size Stat does not tell (Linux /proc
// reports 0 for text it generates, a file can grow between Stat and read) are still
// read only up to the limit.
func TestReadBoundsWhatStatDoesNotShow(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("uses /proc")
	}
	st, err := os.Stat("/proc/self/status")
	if err != nil || st.Size() != 0 {
		t.Skipf("/proc/self/status: %v, size %v", err, st)
	}
	refused(t, "/proc/self/status", 16, ErrTooLarge, "file is more than 16 bytes; a report definition may be at most 16 bytes")
}

func TestSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0 bytes", 1: "1 byte", 512: "512 bytes", 1 << 10: "1 KiB", 1536: "1.5 KiB",
		64 << 10: "64 KiB", 1 << 20: "1 MiB", 50 << 20: "50 MiB", 52428801: "50.0 MiB", 3 << 30: "3 GiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
