package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/source"
	"rpt/reportdefs"
)

// publishCommand is `rpt reports publish`: the admin's act that makes a definition
// trusted by every agent of the queue (agents otherwise run only their own catalogue).
// It needs the admin role's grants; a submitter's account is refused by the database.
func publishCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name:      "publish",
		Usage:     "publish definitions to the queue so that agents run them (all known reports when none is given; needs the admin role)",
		ArgsUsage: "[FILE|NAME]...",
		Flags:     []ucli.Flag{outputFlag("format: table|csv|tsv|json|yaml (table: a line per report; the others the columns report, sha256, file, new, published_by, published_at)")},
		Action: func(c *ucli.Context) error {
			format := c.String("output")
			e, err := loadEnv(c, d)
			if err != nil {
				return err
			}
			defs, err := publishArgs(e, c.Args().Slice())
			if err != nil {
				return err
			}
			return withStore(c, d, func(e *env, store queue.Store) error {
				type view struct {
					Report      string `json:"report"`
					SHA256      string `json:"sha256"`
					File        string `json:"file"`
					New         bool   `json:"new"`
					PublishedBy string `json:"published_by"`
					PublishedAt string `json:"published_at"`
				}
				var views []view
				for _, def := range defs {
					p, existing, err := store.DefinitionPublish(c.Context, queue.DefinitionPublishParams{
						Report: def.Name, Definition: def.Raw, PublishedBy: jobs.Submitter()})
					if err != nil {
						return fmt.Errorf("%s: %w", def.File, err)
					}
					v := view{Report: p.Report, SHA256: p.SHA256, File: def.File, New: !existing, PublishedBy: p.PublishedBy,
						PublishedAt: p.PublishedAt.UTC().Format("2006-01-02T15:04:05Z")}
					views = append(views, v)
					if format == "" || format == "table" {
						state := "published"
						if existing {
							state = "already published by " + v.PublishedBy + " at " + v.PublishedAt
						}
						fmt.Fprintf(d.Stdout, "%s  %s  %s (%s)\n", v.Report, v.SHA256[:12], state, v.File)
					}
				}
				switch format {
				case "json":
					return writeJSON(d.Stdout, views)
				case "yaml":
					return writeYAML(d.Stdout, views)
				case "csv", "tsv":
					cols := []source.Column{{Name: "report", Type: source.TypeString}, {Name: "sha256", Type: source.TypeString},
						{Name: "file", Type: source.TypeString}, {Name: "new", Type: source.TypeBool},
						{Name: "published_by", Type: source.TypeString}, {Name: "published_at", Type: source.TypeString}}
					rows := make([][]any, len(views))
					for i, v := range views {
						rows[i] = []any{v.Report, v.SHA256, v.File, v.New, v.PublishedBy, v.PublishedAt}
					}
					return renderList(c, d, format, cols, rows)
				}
				return nil
			})
		},
	}
}

// publishArgs turns FILE and NAME arguments into definitions: an argument ending in
// .yaml or .yml, or naming a path, is a file (validated as `rpt reports validate`
// does); anything else a report of the catalogue. None means the whole catalogue.
func publishArgs(e *env, args []string) ([]*reportdefs.Definition, error) {
	var cat *reportdefs.Catalog
	catalog := func() (*reportdefs.Catalog, error) {
		if cat != nil {
			return cat, nil
		}
		var err error
		cat, err = e.catalog()
		return cat, err
	}
	if len(args) == 0 {
		c, err := catalog()
		if err != nil {
			return nil, err
		}
		return c.List(), nil
	}
	var defs []*reportdefs.Definition
	for _, a := range args {
		ext := filepath.Ext(a)
		if ext == ".yaml" || ext == ".yml" || strings.ContainsRune(a, filepath.Separator) || strings.ContainsRune(a, '/') {
			def, err := reportdefs.ParseFile(a)
			if err != nil && !errors.Is(err, reportdefs.ErrInvalid) {
				return nil, usagef("%s: %v", a, errors.Unwrap(err)) // cannot read the file
			}
			if err != nil {
				return nil, err
			}
			defs = append(defs, def)
			continue
		}
		c, err := catalog()
		if err != nil {
			return nil, err
		}
		def, err := c.Get(a)
		if err != nil {
			return nil, err
		}
		defs = append(defs, def)
	}
	return defs, nil
}
