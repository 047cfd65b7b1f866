package cli

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"rpt/reportdefs"
)

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// noTemps fails when a temporary file was left in dir.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestWriteOutputNewFile(t *testing.T) {
	// Not parallel: reads the process umask.
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "out.csv")
	if err := writeOutput(p, writeString("a,b\n")); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, p); got != "a,b\n" {
		t.Errorf("content %q", got)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("new file mode %v, want 0640 (0666 less the umask 027)", fi.Mode().Perm())
	}
	noTemps(t, dir)
}

func TestWriteOutputKeepsMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "out.csv")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := writeOutput(p, writeString("new")); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, p); got != "new" {
		t.Errorf("content %q", got)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v after the write, want the file's own 0640", fi.Mode().Perm())
	}
	noTemps(t, dir)
}

func TestWriteOutputFailedWriteKeepsFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "out.csv")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := writeOutput(p, func(w io.Writer) error {
		io.WriteString(w, "half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if got := readString(t, p); got != "old" {
		t.Errorf("content %q after a failed write, want the old file", got)
	}
	noTemps(t, dir)
}

func TestWriteOutputSymlinkWritesThrough(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	other := filepath.Join(dir, "real")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(other, "data.csv")
	if err := os.WriteFile(target, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(target, 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "out.csv")
	if err := os.Symlink("real/data.csv", link); err != nil {
		t.Fatal(err)
	}
	if err := writeOutput(link, writeString("new")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(link)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi.Mode(), err)
	}
	if got := readString(t, target); got != "new" {
		t.Errorf("target content %q, want the new result", got)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o640 {
		t.Errorf("target mode %v, want 0640", fi.Mode().Perm())
	}
	noTemps(t, dir)
	noTemps(t, other)
}

func TestWriteOutputDanglingSymlinkRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	link := filepath.Join(dir, "out.csv")
	aim := filepath.Join(dir, "planted.csv")
	if err := os.Symlink(aim, link); err != nil {
		t.Fatal(err)
	}
	err := writeOutput(link, writeString("new"))
	if err == nil || ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "symlink to nothing") {
		t.Fatalf("err = %v (exit %d), want a refusal with exit 2", err, ExitCode(err))
	}
	if _, err := os.Lstat(aim); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the link's target was created: %v", err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link was replaced")
	}
}

func TestWriteOutputFIFO(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	got := make(chan string, 1)
	go func() {
		f, err := os.Open(p)
		if err != nil {
			got <- "open: " + err.Error()
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- string(b)
	}()
	if err := writeOutput(p, writeString("through the pipe")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "through the pipe" {
			t.Errorf("reader got %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reader got nothing")
	}
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Fatalf("the FIFO was replaced: %v %v", fi.Mode(), err)
	}
	noTemps(t, dir)
}

func TestWriteOutputRefusesDirSocket(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Skip("unix socket:", err)
	}
	defer l.Close()
	for _, p := range []string{sub, sock} {
		err := writeOutput(p, writeString("x"))
		if err == nil || ExitCode(err) != ExitUsage {
			t.Errorf("%s: err = %v (exit %d), want a refusal with exit 2", p, err, ExitCode(err))
		}
	}
	if fi, err := os.Lstat(sock); err != nil || fi.Mode()&fs.ModeSocket == 0 {
		t.Errorf("the socket was replaced: %v", err)
	}
	noTemps(t, dir)
}

// TestWriteOutputCharDevice writes to a character device: first a private copy of
// /dev/null made with mknod (root only), then, only when that survived, /dev/null itself.
func TestWriteOutputCharDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "null")
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, int(mkdev(1, 3))); err != nil {
		t.Skip("mknod:", err)
	}
	if err := writeOutput(p, writeString("gone")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		t.Fatalf("the device node was replaced by a %v: %v", fi.Mode(), err)
	}
	noTemps(t, dir)

	if err := writeOutput("/dev/null", writeString("gone")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat("/dev/null"); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		t.Fatalf("/dev/null is now a %v: %v", fi.Mode(), err)
	}
}

func mkdev(major, minor uint64) uint64 {
	return (major&0xfff)<<8 | (minor & 0xff) | (major&^0xfff)<<32 | (minor&^0xff)<<12
}

func TestWriteOutputReadOnlyFileRefused(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root may write any file")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "out.csv")
	if err := os.WriteFile(p, []byte("keep"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := writeOutput(p, writeString("new")); err == nil {
		t.Fatal("a read-only file was replaced")
	}
	if got := readString(t, p); got != "keep" {
		t.Errorf("content %q", got)
	}
}

// TestSafeFileName fills a filename: template from hostile string parameters: the result
// is always a plain, visible file name in the current folder with the format's extension.
func TestSafeFileName(t *testing.T) {
	t.Parallel()
	def, err := reportdefs.Parse("r.yaml", []byte(`name: r
source: warehouse
sql: SELECT :who AS who
params:
  - name: who
    type: string
filename: "{who}"
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{
		".profile", "../x", "../../etc/passwd", "..", ".", "/etc/cron.d/x", `..\..\x`, "a/b/c",
		"", "   ", "-rf", "x\x1b[2Jy", "x\ny", "...hidden", "x.xlsx", ".xlsx", strings.Repeat("é", 300), "\xff\xfe",
	} {
		params := []byte(`{"who":` + jsonString(who) + `}`)
		name := safeFileName(def.FileName(7, params, time.Now(), time.UTC, "xlsx"), "xlsx", "r-7.xlsx")
		switch {
		case filepath.Base(name) != name, strings.ContainsAny(name, `/\`):
			t.Errorf("who=%q: %q is a path", who, name)
		case strings.HasPrefix(name, ".") || strings.HasPrefix(name, "-"):
			t.Errorf("who=%q: %q starts with a dot or dash", who, name)
		case !strings.HasSuffix(name, ".xlsx") || name == ".xlsx":
			t.Errorf("who=%q: %q lacks the .xlsx extension", who, name)
		case len(name) > 255:
			t.Errorf("who=%q: %q is %d bytes", who, name, len(name))
		}
		for _, r := range name {
			if r < 0x20 || r == 0x7f {
				t.Errorf("who=%q: %q holds a control character", who, name)
			}
		}
	}
	if got := safeFileName("TB-2026-01_to_2026-03_on_11-29.xlsx", "xlsx", "x"); got != "TB-2026-01_to_2026-03_on_11-29.xlsx" {
		t.Errorf("an ordinary name changed: %q", got)
	}
	if got := safeFileName("..", "csv", "r-7.csv"); got != "r-7.csv" {
		t.Errorf(`".." gave %q, want the fallback`, got)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestWritePlainEscapesControl: the tab-separated list output for scripts keeps one line
// per row and one field per column whatever a value holds, and no ESC reaches a terminal.
func TestWritePlainEscapesControl(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	rows := [][]any{{int64(1), "tb\x1b[2J", "failed: a\tb\nc"}, {int64(2), "ok", ""}}
	if err := writePlain(&b, rows); err != nil {
		t.Fatal(err)
	}
	want := "1\ttb\\x1b[2J\tfailed: a\\tb\\nc\n2\tok\t\n"
	if b.String() != want {
		t.Errorf("writePlain = %q, want %q", b.String(), want)
	}
}
