package reportdefs

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"rpt/internal/deffiles"
	"rpt/internal/didyoumean"
	"rpt/internal/yamlstrict"
)

//go:embed reports/*.yaml
var shipped embed.FS

// ShippedPrefix starts the File of a definition embedded in the binary.
const ShippedPrefix = deffiles.ShippedPrefix

// Catalog is the set of known reports: the shipped ones plus those of extra folders.
type Catalog struct {
	defs map[string]*Definition
}

// LoadCatalog loads the shipped definitions, then every *.yaml / *.yml file directly in
// each of dirs (in order). A folder's definition with the name of a shipped report
// replaces it; the same name in two folder files is an error naming both. All
// problems of all files are returned together.
func LoadCatalog(dirs ...string) (*Catalog, error) {
	defs, errs, err := deffiles.Catalog[*Definition]{
		Shipped:    shipped,
		ShippedDir: "reports",
		Parse:      Parse,
		ReadFile:   ParseFile,
		Name:       func(d *Definition) string { return d.Name },
		FolderError: func(dir string, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return fieldError(dir, yamlstrict.Pos{}, "", "reports folder does not exist (named by reports: in rpt.yaml, --reports or RPT_REPORTS)")
			}
			return fieldError(dir, yamlstrict.Pos{}, "", "cannot read reports folder: %v", errors.Unwrap(err))
		},
		Duplicate: func(file string, d *Definition, prev string) error {
			return fieldError(file, d.NamePos, "name", "report %q is also defined in %s", d.Name, prev)
		},
	}.Load(dirs)
	if err != nil {
		return nil, err
	}
	c := &Catalog{defs: defs}
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
