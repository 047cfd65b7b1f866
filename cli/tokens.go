package cli

import (
	"fmt"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"rpt/internal/queue"
	"rpt/internal/source"
)

// tokensCommand manages the HTTP API's tokens. A token is printed once, at creation;
// the queue keeps only its sha256, so a lost token is revoked and made anew.
func tokensCommand(d *Deps) *ucli.Command {
	roles := strings.Join(queue.Roles, "|")
	return &ucli.Command{
		Name:  "tokens",
		Usage: "API tokens for the HTTP API (rpt api): create, list, revoke",
		Subcommands: []*ucli.Command{
			{
				Name: "create", Usage: "make a token with a role and print it once (only its hash is kept)", ArgsUsage: "NAME",
				Flags: []ucli.Flag{&ucli.StringFlag{Name: "role", Required: true, Usage: "`ROLE`: " + roles +
					" (viewer reads; submitter also submits, cancels, retries; admin also pauses and drains)"}},
				Action: func(c *ucli.Context) error {
					if c.NArg() != 1 {
						return usagef("tokens create: want one NAME")
					}
					name, role := c.Args().First(), c.String("role")
					if queue.RoleRank(role) == 0 {
						return usagef("--role %q: want %s", role, roles)
					}
					e, err := loadEnv(c, d)
					if err != nil {
						return err
					}
					store, err := e.openQueueFor(c.Context, queueWrite)
					if err != nil {
						return err
					}
					defer store.Close()
					tok, err := queue.NewAPIToken()
					if err != nil {
						return err
					}
					if _, err := store.TokenCreate(c.Context, name, role, queue.TokenSHA256(tok)); err != nil {
						return err
					}
					fmt.Fprintf(d.Stderr, "token %q (%s) created; it is shown this once: keep it secret\n", name, role)
					fmt.Fprintln(d.Stdout, tok)
					return nil
				},
			},
			{
				Name: "list", Usage: "the API tokens: name, role, created, last_used, revoked (never the tokens themselves)",
				Flags: []ucli.Flag{outputFlag("format: " + listFormats)},
				Action: func(c *ucli.Context) error {
					if c.NArg() != 0 {
						return usagef("tokens list: unexpected argument %q", c.Args().First())
					}
					format, err := listFormat(c, d)
					if err != nil {
						return err
					}
					return withStore(c, d, func(e *env, store queue.Store) error {
						toks, err := store.TokenList(c.Context)
						if err != nil {
							return err
						}
						switch format {
						case "json":
							if toks == nil {
								toks = []queue.APIToken{}
							}
							return writeJSON(d.Stdout, toks)
						case "yaml":
							return writeYAML(d.Stdout, toks)
						}
						when := func(t *time.Time) string {
							if t == nil {
								return "-"
							}
							return t.UTC().Format(time.RFC3339)
						}
						rows := make([][]any, len(toks))
						for i, t := range toks {
							rows[i] = []any{t.Name, t.Role, when(&t.CreatedAt), when(t.LastUsedAt), when(t.RevokedAt)}
						}
						cols := []source.Column{{Name: "name", Type: source.TypeString}, {Name: "role", Type: source.TypeString},
							{Name: "created", Type: source.TypeString}, {Name: "last_used", Type: source.TypeString},
							{Name: "revoked", Type: source.TypeString}}
						return renderList(c, d, format, cols, rows)
					})
				},
			},
			{
				Name: "revoke", Usage: "stop a token working at once (its name is not reused)", ArgsUsage: "NAME",
				Action: func(c *ucli.Context) error {
					if c.NArg() != 1 {
						return usagef("tokens revoke: want one NAME")
					}
					return withStore(c, d, func(e *env, store queue.Store) error {
						t, err := store.TokenRevoke(c.Context, c.Args().First())
						if err != nil {
							return err
						}
						fmt.Fprintf(d.Stdout, "token %q revoked at %s\n", t.Name, t.RevokedAt.UTC().Format(time.RFC3339))
						return nil
					})
				},
			},
		},
	}
}
