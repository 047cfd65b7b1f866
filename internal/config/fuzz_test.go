package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// FuzzCatalogue is FuzzParse started from the bad-input catalogue's config files
// (testdata/bad/config-*.txtar at the module root): any input gives a config or an
// ErrInvalid error naming the file, and no message shows a password.
func FuzzCatalogue(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join("..", "..", "testdata", "bad", "*.txtar"))
	if err != nil {
		f.Fatal(err)
	}
	seeds := 0
	for _, p := range paths {
		ar, err := txtar.ParseFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range ar.Files {
			if file.Name == "rpt.yaml" {
				f.Add(file.Data)
				seeds++
			}
		}
	}
	if seeds == 0 {
		f.Fatal("no config files in testdata/bad")
	}
	f.Add([]byte("sources:\n  w: {driver: mysql, dsn: \"mysql://u:S3cr3t-Pw@h/db?timeout=x\"}\n"))
	f.Add([]byte("queue: \"mysql://u:S3cr3t-Pw@/db\"\n"))
	f.Add([]byte("sources:\n  w: {driver: plexws, url: \"ftp://u:S3cr3t-Pw@h\", password: S3cr3t-Pw}\n"))
	env := func(name string) string {
		if name == "PW" {
			return "S3cr3t-Pw"
		}
		return ""
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data, env)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			// A password written as ${PW} is never printed.
			if strings.Contains(err.Error(), "S3cr3t-Pw") && !strings.Contains(string(data), "S3cr3t-Pw") {
				t.Fatalf("error shows the expanded ${PW}: %v", err)
			}
			return
		}
		_ = c.Location()
	})
}

func TestLoadLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Parse("big.yaml", []byte(strings.Repeat("#", MaxFileSize+1)), nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at most 1 MiB") {
		t.Errorf("big file: %v", err)
	}
}
