package reportdefs

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"rpt/internal/didyoumean"
	"rpt/internal/yamlstrict"
)

//go:embed reports/*.yaml
var shipped embed.FS

// ShippedPrefix starts the File of a definition embedded in the binary.
const ShippedPrefix = "shipped:"

// Catalog is the set of known reports: the shipped ones plus those of extra folders.
type Catalog struct {
	defs map[string]*Definition
}

// LoadCatalog loads the shipped definitions, then every *.yaml / *.yml file directly in
// each of dirs (in order). A folder's definition with the name of a shipped report
// replaces it; the same name in two folder files is an error naming both. All
// problems of all files are returned together.
func LoadCatalog(dirs ...string) (*Catalog, error) {
	c := &Catalog{defs: map[string]*Definition{}}
	var errs []error
	entries, err := fs.ReadDir(shipped, "reports")
	if err != nil {
		return nil, fmt.Errorf("read shipped reports: %w", err)
	}
	for _, e := range entries {
		data, err := shipped.ReadFile(path.Join("reports", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read shipped report %s: %w", e.Name(), err)
		}
		d, err := Parse(ShippedPrefix+e.Name(), data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.defs[d.Name] = d
	}
	fromDir := map[string]string{} // name -> file, for duplicates across folders
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fieldError(dir, yamlstrict.Pos{}, "", "reports folder does not exist (named by reports: in rpt.yaml, --reports or RPT_REPORTS)"))
			continue
		} else if err != nil {
			errs = append(errs, fieldError(dir, yamlstrict.Pos{}, "", "cannot read reports folder: %v", errors.Unwrap(err)))
			continue
		}
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") || (ext != ".yaml" && ext != ".yml") {
				continue
			}
			file := filepath.Join(dir, e.Name())
			d, err := ParseFile(file)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if prev, dup := fromDir[d.Name]; dup {
				errs = append(errs, fieldError(file, d.NamePos, "name", "report %q is also defined in %s", d.Name, prev))
				continue
			}
			fromDir[d.Name] = file
			c.defs[d.Name] = d
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// Get returns the named definition; an unknown name is an error satisfying both
// errors.Is(err, ErrNotFound) and errors.Is(err, ErrInvalid).
func (c *Catalog) Get(name string) (*Definition, error) {
	if d, ok := c.defs[name]; ok {
		return d, nil
	}
	msg := fmt.Sprintf("unknown report %q (known: %s)", name, strings.Join(c.names(), ", "))
	return nil, &notFoundError{msg: didyoumean.Append(msg, name, c.names())}
}

// List returns every definition, sorted by name.
func (c *Catalog) List() []*Definition {
	out := make([]*Definition, 0, len(c.defs))
	for _, name := range c.names() {
		out = append(out, c.defs[name])
	}
	return out
}

func (c *Catalog) names() []string {
	names := sortedKeys(c.defs)
	slices.Sort(names)
	return names
}
