package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"
)

func versionCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name: "version", Usage: "print rpt's version",
		Action: func(c *ucli.Context) error {
			_, err := fmt.Fprintf(d.Stdout, "rpt %s\n", d.Version)
			return err
		},
	}
}
