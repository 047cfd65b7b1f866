package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"rpt/internal/demo"
	"rpt/internal/dsn"
)

func demoCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name:  "demo",
		Usage: "synthetic Plex-shaped data for trying rpt out",
		Subcommands: []*ucli.Command{
			{
				Name: "load", Usage: "generate demo data into a database (replaces the PCNs it loads)",
				Flags: []ucli.Flag{
					&ucli.IntFlag{Name: "scale", Value: 1, Usage: "`N` x about 4,600 accounts per PCN"},
					&ucli.StringFlag{Name: "pcn", Usage: "comma-separated `PCNS` (default 123681)"},
					&ucli.IntFlag{Name: "periods", Value: 24, Usage: "`N` monthly periods ending last month"},
					&ucli.StringFlag{Name: "plants", Usage: "comma-separated `PCNS` of the plants with production data (default the seven plants)"},
					&ucli.IntFlag{Name: "log-days", Value: 60, Usage: "`N` days of work-center logs and shift reports ending yesterday (0: none)"},
					&ucli.StringFlag{Name: "into", Usage: "target `DSN` (sqlite:PATH or mysql://...; default the embedded demo database)"},
					&ucli.StringFlag{Name: "shape", Value: "both", Usage: "accounting data of `SHAPE`: plex|warehouse|both (plex: Plex's views only, a database standing in for Plex, for rpt etl; warehouse: the warehouse tables only)"},
					&ucli.BoolFlag{Name: "force", Usage: "load --into a database that has the demo's table names but was not made by a demo load (its rows for the PCNs loaded are deleted)"},
				},
				Action: func(c *ucli.Context) error {
					if c.NArg() > 0 {
						return usagef("demo load: unexpected argument %q", c.Args().First())
					}
					if c.Int("scale") < 1 {
						return usagef("--scale %d: must be 1 or more", c.Int("scale"))
					}
					if c.Int("periods") < 1 || c.Int("periods") > 600 {
						return usagef("--periods %d: must be between 1 and 600", c.Int("periods"))
					}
					opts := demo.Options{Scale: c.Int("scale"), Periods: c.Int("periods"), LogDays: c.Int("log-days"), Shape: c.String("shape")}
					switch opts.Shape {
					case demo.ShapeBoth, demo.ShapePlex, demo.ShapeWarehouse:
					default:
						return usagef("--shape %q: want plex, warehouse or both", opts.Shape)
					}
					if opts.LogDays < 0 || opts.LogDays > demo.MaxLogDays {
						return usagef("--log-days %d: must be between 0 and %d", opts.LogDays, demo.MaxLogDays)
					}
					if opts.LogDays == 0 {
						opts.LogDays = -1 // no production data
					}
					var err error
					if opts.PCNs, err = parsePCNs("--pcn", c.String("pcn")); err != nil {
						return err
					}
					if opts.Plants, err = parsePCNs("--plants", c.String("plants")); err != nil {
						return err
					}
					e, err := loadEnv(c, d)
					if err != nil {
						return err
					}
					into := c.String("into")
					opts.Force = c.Bool("force")
					if into == "" {
						// rpt's own demo database: whatever is in it, rpt put there.
						into = "sqlite:" + filepath.Join(e.dataDir, "demo.db")
						opts.Force = true
					}
					if _, err := dsn.Scheme(into); err != nil {
						return fmt.Errorf("--into: %w", err)
					}
					if p, err := dsn.SQLitePath(into); err == nil {
						if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
							return fmt.Errorf("--into: %w", err)
						}
					}
					st, err := demo.Load(c.Context, into, opts)
					if err != nil {
						return fmt.Errorf("load demo data into %s: %w", dsn.Redact(into), err)
					}
					fmt.Fprintf(d.Stderr, "loaded %d PCNs, %d accounts, %d periods, %d balances; %d plants, %d work centers, %d log entries, %d shift reports into %s in %s\n",
						st.PCNs, st.Accounts, st.Periods, st.Balances, st.Plants, st.WorkCenters, st.LogEntries, st.ShiftReports, dsn.Redact(into), roundDur(st.Elapsed))
					return nil
				},
			},
		},
	}
}

// parsePCNs reads a comma-separated list of PCNs; empty means the default.
func parsePCNs(flag, s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, usagef("%s %q: %q is not a PCN (a positive integer)", flag, s, f)
		}
		out = append(out, n)
	}
	return out, nil
}
