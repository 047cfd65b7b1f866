package cli_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"rpt/cli"
)

// TestGetFileThroughTheCLI: `rpt get --file` on a finished job through a symlink, onto a
// folder and /dev/null, and `-o xlsx` on a terminal with a filename: template filled from
// a hostile parameter.
func TestGetFileThroughTheCLI(t *testing.T) {
	work, cfgPath := injectionSetup(t)
	writeFile(t, filepath.Join(work, "defs", "named.yaml"), []byte("name: named\nsource: inj\nparams:\n  - {name: s, type: string}\nfilename: \"{s}\"\nsql: SELECT :s AS s\n"))
	migrate(t, cfgPath)
	_, stop := startAgent(t, "--config", cfgPath)
	submit := func(report, s string) string {
		t.Helper()
		code, stdout, stderr := runCLI(t, context.Background(), []string{"--config", cfgPath, "submit", report, "-p", "s=" + s, "--wait", "--timeout", "2m"})
		if code != 0 {
			t.Fatalf("submit: exit %d: %s", code, stderr)
		}
		return strings.TrimSpace(stdout)
	}
	id := submit("echo", "hello")
	hostileID := submit("named", "../.profile")
	stop()

	real := filepath.Join(work, "real.csv")
	writeFile(t, real, []byte("old"))
	if err := os.Chmod(real, 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(work, "link.csv")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, context.Background(), []string{"--config", cfgPath, "get", id, "--file", link}); code != 0 {
		t.Fatalf("get --file link: exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(real); string(b) != "s\nhello\n" {
		t.Errorf("the link's target holds %q", b)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link was replaced")
	}
	if fi, _ := os.Stat(real); fi.Mode().Perm() != 0o640 {
		t.Errorf("target mode %v, want 0640", fi.Mode().Perm())
	}
	code, _, stderr := runCLI(t, context.Background(), []string{"--config", cfgPath, "get", id, "-o", "csv", "--file", filepath.Join(work, "defs")})
	if code != cli.ExitUsage || !strings.Contains(stderr, "is a folder") {
		t.Errorf("get --file FOLDER: exit %d, want 2: %s", code, stderr)
	}
	if os.Geteuid() == 0 {
		if code, _, stderr := runCLI(t, context.Background(), []string{"--config", cfgPath, "get", id, "-o", "csv", "--file", "/dev/null"}); code != 0 {
			t.Errorf("get --file /dev/null: exit %d: %s", code, stderr)
		}
		if fi, err := os.Lstat("/dev/null"); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
			t.Fatalf("/dev/null is now %v", fi.Mode())
		}
	}

	// -o xlsx on a terminal saves under the filename: template, in the current folder.
	dir := filepath.Join(work, "cwd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	var out, errb bytes.Buffer
	d := deps(&out, &errb)
	d.StdoutTTY = true
	if code := cli.Main(context.Background(), []string{"rpt", "--config", cfgPath, "get", hostileID, "-o", "xlsx"}, d); code != 0 {
		t.Fatalf("get -o xlsx: exit %d: %s", code, errb.String())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "profile.xlsx" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("files written: %v, want [profile.xlsx]", names)
	}
	if _, err := os.Stat(filepath.Join(work, ".profile")); err == nil {
		t.Errorf("../.profile was written")
	}
}
