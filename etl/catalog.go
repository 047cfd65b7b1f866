package etl

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"rpt/internal/deffiles"
	"rpt/internal/didyoumean"
	"rpt/internal/yamlstrict"
)

//go:embed defs/*.yaml
var shipped embed.FS

// ShippedPrefix starts the File of a definition embedded in the binary.
const ShippedPrefix = deffiles.ShippedPrefix

// ErrNotFound is an unknown ETL name (also ErrInvalid: exit 2).
var ErrNotFound = errors.New("unknown etl")

// Catalog is the known ETLs: the shipped ones plus those of extra folders (a folder's
// file with a shipped name replaces it).
type Catalog struct {
	defs map[string]*Definition
}

// LoadCatalog reads the shipped definitions and every *.yaml/*.yml file in dirs. All
// problems of all files are returned together; a dependency on an unknown ETL or a
// cycle is one too.
func LoadCatalog(dirs ...string) (*Catalog, error) {
	defs, errs, err := deffiles.Catalog[*Definition]{
		Shipped:    shipped,
		ShippedDir: "defs",
		Parse:      Parse,
		ReadFile:   ReadFile,
		Name:       func(d *Definition) string { return d.Name },
		FolderError: func(dir string, err error) error {
			return &yamlstrict.Error{File: dir, Msg: "cannot read etl folder: " + err.Error(), Class: ErrInvalid}
		},
		Duplicate: func(file string, d *Definition, prev string) error {
			return &yamlstrict.Error{File: file, Line: 1, Field: "name", Msg: fmt.Sprintf("etl %q is also defined in %s", d.Name, prev), Class: ErrInvalid}
		},
	}.Load(dirs)
	if err != nil {
		return nil, err
	}
	c := &Catalog{defs: defs}
	if len(errs) == 0 {
		for _, d := range c.List() {
			for i, a := range d.After {
				if _, ok := c.defs[a]; !ok {
					errs = append(errs, afterError(d, i, didyoumean.Append(fmt.Sprintf("unknown etl %q", a), a, c.names())))
				}
			}
		}
	}
	if len(errs) == 0 {
		if _, err := c.Order(c.names()); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// Get returns the named ETL.
func (c *Catalog) Get(name string) (*Definition, error) {
	if d, ok := c.defs[name]; ok {
		return d, nil
	}
	msg := fmt.Sprintf("%q (known: %s)", name, strings.Join(c.names(), ", "))
	return nil, fmt.Errorf("%w %s: %w", ErrNotFound, didyoumean.Append(msg, name, c.names()), ErrInvalid)
}

// BySHA256 returns the definition whose file bytes hash to sum (hex), for the agent's
// trust check: it runs only snapshots its own catalogue has.
func (c *Catalog) BySHA256(sum string) (*Definition, bool) {
	for _, d := range c.defs {
		if SHA256(d.Raw) == sum {
			return d, true
		}
	}
	return nil, false
}

// SHA256 is the hex sha256 of a definition's bytes.
func SHA256(raw []byte) string {
	s := sha256.Sum256(raw)
	return hex.EncodeToString(s[:])
}

// List returns every definition sorted by name.
func (c *Catalog) List() []*Definition {
	out := make([]*Definition, 0, len(c.defs))
	for _, n := range c.names() {
		out = append(out, c.defs[n])
	}
	return out
}

func (c *Catalog) names() []string {
	out := make([]string, 0, len(c.defs))
	for n := range c.defs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Order returns names and everything they depend on (after:), dependencies first,
// ties by name; a cycle is an error naming it.
func (c *Catalog) Order(names []string) ([]*Definition, error) {
	var out []*Definition
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, stack []string, from *Definition, fromIdx int) error
	visit = func(n string, stack []string, from *Definition, fromIdx int) error {
		d, err := c.Get(n)
		if err != nil {
			return err
		}
		switch state[n] {
		case 2:
			return nil
		case 1:
			// Reported where the cycle closes: the after: entry that leads back.
			return afterError(from, fromIdx, "dependency cycle: "+strings.Join(append(stack, n), " -> "))
		}
		state[n] = 1
		deps := slices.Clone(d.After)
		slices.Sort(deps)
		for _, a := range deps {
			if err := visit(a, append(stack, n), d, slices.Index(d.After, a)); err != nil {
				return err
			}
		}
		state[n] = 2
		out = append(out, d)
		return nil
	}
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	for _, n := range sorted {
		if err := visit(n, nil, nil, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// afterError is a problem with d's i-th after: entry, at its place in d's file.
func afterError(d *Definition, i int, msg string) error {
	field := yamlstrict.Index("after", i)
	pos := d.Pos(field)
	if pos.Line == 0 {
		pos.Line = 1
	}
	return &yamlstrict.Error{File: d.File, Line: pos.Line, Column: pos.Column, Field: field, Msg: msg, Class: ErrInvalid}
}
