package deffiles

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

type def struct{ name, file string }

func testCatalog() Catalog[def] {
	parse := func(file string, data []byte) (def, error) {
		name := strings.TrimSpace(string(data))
		if name == "" {
			return def{}, fmt.Errorf("%s: empty", file)
		}
		return def{name: name, file: file}, nil
	}
	return Catalog[def]{
		Shipped:    fstest.MapFS{"defs/a.yaml": {Data: []byte("a")}, "defs/b.yaml": {Data: []byte("b")}},
		ShippedDir: "defs",
		Parse:      parse,
		ReadFile: func(path string) (def, error) {
			data, err := os.ReadFile(path)
			if err != nil {
				return def{}, err
			}
			return parse(path, data)
		},
		Name:        func(d def) string { return d.name },
		FolderError: func(dir string, err error) error { return fmt.Errorf("folder %s: %w", dir, err) },
		Duplicate: func(file string, d def, prev string) error {
			return fmt.Errorf("%s: %s also in %s", file, d.name, prev)
		},
	}
}

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFilesTakesOnlyDefinitions(t *testing.T) {
	dir := t.TempDir()
	want := []string{write(t, dir, "x.yaml", "x"), write(t, dir, "y.yml", "y")}
	write(t, dir, ".hidden.yaml", "h")
	write(t, dir, "notes.txt", "n")
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Files = %v, want %v", got, want)
	}
}

func TestLoadFolderReplacesShippedAndRefusesDuplicates(t *testing.T) {
	one, two := t.TempDir(), t.TempDir()
	bFile := write(t, one, "b.yaml", "b")
	write(t, one, "c.yaml", "c")
	write(t, one, "empty.yaml", "")
	dup := write(t, two, "c2.yaml", "c")
	missing := filepath.Join(t.TempDir(), "gone")

	defs, problems, err := testCatalog().Load([]string{one, missing, two})
	if err != nil {
		t.Fatal(err)
	}
	if got := defs["a"].file; got != ShippedPrefix+"a.yaml" {
		t.Errorf("a comes from %q, want the shipped file", got)
	}
	if got := defs["b"].file; got != bFile {
		t.Errorf("b comes from %q, want the folder's %s", got, bFile)
	}
	if got := defs["c"].file; got != filepath.Join(one, "c.yaml") {
		t.Errorf("c comes from %q, want the first folder's", got)
	}
	if len(problems) != 3 {
		t.Fatalf("problems = %v, want the empty file, the missing folder and the duplicate", problems)
	}
	if !strings.Contains(problems[0].Error(), "empty.yaml: empty") {
		t.Errorf("problem 0 = %v, want the empty file", problems[0])
	}
	if !errors.Is(problems[1], os.ErrNotExist) || !strings.Contains(problems[1].Error(), missing) {
		t.Errorf("problem 1 = %v, want the missing folder", problems[1])
	}
	if want := dup + ": c also in " + filepath.Join(one, "c.yaml"); problems[2].Error() != want {
		t.Errorf("problem 2 = %v, want %s", problems[2], want)
	}
}

func TestLoadBrokenShippedIsAnError(t *testing.T) {
	c := testCatalog()
	c.ShippedDir = "nowhere"
	if _, _, err := c.Load(nil); err == nil {
		t.Fatal("Load with no shipped folder: want an error")
	}
}
