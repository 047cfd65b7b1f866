// Package deffiles is the one walk over definition files, shared by the report and ETL
// catalogues and the agent's trust check: the definitions shipped in the binary, then
// the files directly in each configured folder. Which entries of a folder count as
// definitions, the order they are read in, that a folder's file replaces a shipped
// definition of its name, and that one name in two folder files is an error are
// decided here once; what a definition is and how its errors read stay with the caller.
package deffiles

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ShippedPrefix starts the File of a definition embedded in the binary.
const ShippedPrefix = "shipped:"

// IsDefinition reports whether a folder entry is a definition file: a *.yaml or *.yml
// that is not a folder and not hidden.
func IsDefinition(e fs.DirEntry) bool {
	ext := filepath.Ext(e.Name())
	return !e.IsDir() && !strings.HasPrefix(e.Name(), ".") && (ext == ".yaml" || ext == ".yml")
}

// Files returns the paths of the definition files directly in dir, sorted by name.
func Files(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if IsDefinition(e) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}

// Catalog says how one kind of definition is read.
type Catalog[D any] struct {
	Shipped    fs.FS  // the definitions embedded in the binary
	ShippedDir string // their folder in Shipped
	// Parse reads a shipped file's bytes; file is ShippedPrefix and the file's name.
	Parse func(file string, data []byte) (D, error)
	// ReadFile reads and parses a folder's file.
	ReadFile func(path string) (D, error)
	// Name is a definition's name, the catalogue's key.
	Name func(D) string
	// FolderError is the problem of a folder that cannot be read.
	FolderError func(dir string, err error) error
	// Duplicate is the problem of a folder's file whose name an earlier folder file
	// (prev) already defined.
	Duplicate func(file string, d D, prev string) error
}

// Load reads the shipped definitions, then the definition files of each of dirs in
// order. It returns the definitions by name and every problem of every file (a
// definition with a problem is left out); err is set only when the shipped files
// cannot be read, which is a broken binary, not bad input.
func (c Catalog[D]) Load(dirs []string) (defs map[string]D, problems []error, err error) {
	defs = map[string]D{}
	entries, err := fs.ReadDir(c.Shipped, c.ShippedDir)
	if err != nil {
		return nil, nil, fmt.Errorf("read shipped definitions: %w", err)
	}
	for _, e := range entries {
		data, err := fs.ReadFile(c.Shipped, path.Join(c.ShippedDir, e.Name()))
		if err != nil {
			return nil, nil, fmt.Errorf("read shipped definition %s: %w", e.Name(), err)
		}
		d, err := c.Parse(ShippedPrefix+e.Name(), data)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		defs[c.Name(d)] = d
	}
	fromDir := map[string]string{} // name -> file, for one name in two folder files
	for _, dir := range dirs {
		files, err := Files(dir)
		if err != nil {
			problems = append(problems, c.FolderError(dir, err))
			continue
		}
		for _, file := range files {
			d, err := c.ReadFile(file)
			if err != nil {
				problems = append(problems, err)
				continue
			}
			name := c.Name(d)
			if prev, dup := fromDir[name]; dup {
				problems = append(problems, c.Duplicate(file, d, prev))
				continue
			}
			fromDir[name] = file
			defs[name] = d
		}
	}
	return defs, problems, nil
}
