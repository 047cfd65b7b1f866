package cli

import (
	"fmt"
	"time"

	ucli "github.com/urfave/cli/v2"

	"rpt/internal/queue"
	"rpt/internal/source"
)

func dbCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name:  "db",
		Usage: "the queue database's schema",
		Subcommands: []*ucli.Command{
			pruneCommand(d),
			{
				Name: "migrate", Usage: "bring the queue schema to this version (additive, safe while agents run)",
				Action: func(c *ucli.Context) error {
					e, err := loadEnv(c, d)
					if err != nil {
						return err
					}
					store, err := e.openQueue(c.Context, true)
					if err != nil {
						return err
					}
					defer store.Close()
					ms, err := store.MigrationStatus(c.Context)
					if err != nil {
						return fmt.Errorf("migration status: %w", err)
					}
					if len(ms) > 0 {
						fmt.Fprintf(d.Stderr, "queue schema at version %d\n", ms[len(ms)-1].Version)
					}
					return nil
				},
			},
			{
				Name: "status", Usage: "the schema migrations applied: version, name, applied (when)",
				Flags: []ucli.Flag{outputFlag("format: " + listFormats)},
				Action: func(c *ucli.Context) error {
					format, err := listFormat(c, d)
					if err != nil {
						return err
					}
					e, err := loadEnv(c, d)
					if err != nil {
						return err
					}
					store, err := e.openQueue(c.Context, false)
					if err != nil {
						return err
					}
					defer store.Close()
					ms, err := store.MigrationStatus(c.Context)
					if err != nil {
						return fmt.Errorf("migration status: %w", err)
					}
					switch format {
					case "json":
						if ms == nil {
							ms = []queue.Migration{}
						}
						return writeJSON(d.Stdout, ms)
					case "yaml":
						return writeYAML(d.Stdout, ms)
					}
					rows := make([][]any, len(ms))
					for i, m := range ms {
						applied := "pending"
						if m.AppliedAt != nil {
							applied = m.AppliedAt.UTC().Format(time.RFC3339)
						}
						rows[i] = []any{m.Version, m.Name, applied}
					}
					cols := []source.Column{{Name: "version", Type: source.TypeInt}, {Name: "name", Type: source.TypeString}, {Name: "applied", Type: source.TypeString}}
					return renderList(c, d, format, cols, rows)
				},
			},
		},
	}
}
