package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"rpt/internal/dsn"
	"rpt/internal/errclass"
	"rpt/internal/source"
	"rpt/internal/source/plexws"
)

// sourcesCommand is `rpt sources list | test NAME`: what sources this configuration
// names, and whether each answers ("does my Plex account work?"). Neither prints a
// password: DSNs are redacted, plexws accounts show their user only.
func sourcesCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name:  "sources",
		Usage: "list the configured data sources and test that they answer",
		Subcommands: []*ucli.Command{
			{
				Name: "list", Usage: "the configured sources: name, driver, where, accounts (PCN:user, no passwords), built (in this binary)",
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
					type sourceView struct {
						Name     string   `json:"name"`
						Driver   string   `json:"driver"`
						Where    string   `json:"where"`
						Accounts []string `json:"accounts,omitempty"`
						Built    bool     `json:"built"`
					}
					var views []sourceView
					var rows [][]any
					for _, name := range sourceNames(e.cfg.Sources) {
						sc := e.cfg.Sources[name]
						v := sourceView{Name: name, Driver: sc.DriverName(), Where: sourceWhere(sc), Built: source.Built(sc.DriverName())}
						for _, pcn := range sortedPCNs(sc.Accounts) {
							v.Accounts = append(v.Accounts, fmt.Sprintf("%d:%s", pcn, sc.Accounts[pcn].User))
						}
						views = append(views, v)
						built := "yes"
						if !v.Built {
							built = "no (not built in this binary)"
						}
						rows = append(rows, []any{v.Name, v.Driver, v.Where, strings.Join(v.Accounts, " "), built})
					}
					cols := []source.Column{{Name: "name", Type: source.TypeString}, {Name: "driver", Type: source.TypeString},
						{Name: "where", Type: source.TypeString}, {Name: "accounts", Type: source.TypeString}, {Name: "built", Type: source.TypeString}}
					return writeListing(c, d, format, views, cols, rows)
				},
			},
			{
				Name: "test", Usage: "check that a source answers: per Plex account a Workcenter_Get (4031) call, elsewhere SELECT 1",
				ArgsUsage: "NAME",
				Flags: []ucli.Flag{
					&ucli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "the `DURATION` each check may take"},
				},
				Action: func(c *ucli.Context) error {
					if c.NArg() != 1 {
						return usagef("sources test: want one source NAME")
					}
					if c.Duration("timeout") <= 0 {
						return usagef("--timeout %s: must be positive", c.Duration("timeout"))
					}
					e, err := loadEnv(c, d)
					if err != nil {
						return err
					}
					return testSource(c.Context, d, e, c.Args().First(), c.Duration("timeout"))
				},
			},
		},
	}
}

// testSource runs the cheap check of one source and prints one line per account (or
// one for a database): ok with what it took, or FAIL with why. The error returned is the
// first failure's, so the exit code says what kind (2 a refused password or a wrong
// URL, 5 a source that does not answer).
func testSource(ctx context.Context, d *Deps, e *env, name string, limit time.Duration) error {
	octx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	src, err := e.openSource(octx, name)
	if err != nil {
		fmt.Fprintf(d.Stdout, "FAIL  %s  %s\n", name, oneLine(dsn.Redact(err.Error())))
		return err
	}
	defer src.Close()
	if pc, ok := src.(*plexws.Client); ok {
		results := pc.Check(ctx, limit)
		var failed []string
		class := errclass.Unavailable
		for _, r := range results {
			if r.Err != nil {
				fmt.Fprintf(d.Stdout, "FAIL  %s  PCN %d  %s  %s\n", name, r.PCN, r.User, oneLine(explainCheck(r.Err)))
				failed = append(failed, fmt.Sprint(r.PCN))
				if errors.Is(r.Err, source.ErrRequest) {
					class = errclass.Invalid // a password, URL or certificate to fix, not a wait
				}
				continue
			}
			fmt.Fprintf(d.Stdout, "ok    %s  PCN %d  %s  %s (%d): %d rows in %s%s\n", name, r.PCN, r.User,
				plexws.CheckName, plexws.CheckKey, r.Rows, r.Duration.Round(time.Millisecond), triesNote(r.Tries))
		}
		if len(failed) > 0 {
			return errclass.Errorf(class, "source %q: %d of %d accounts failed (PCN %s)", name, len(failed), len(results), strings.Join(failed, ", "))
		}
		return nil
	}
	start := time.Now()
	qctx, qcancel := context.WithTimeout(ctx, limit)
	defer qcancel()
	rows, err := src.Query(qctx, "SELECT 1", nil)
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
		_ = rows.Close()
	}
	if err != nil {
		if qctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w: source %q: no answer to SELECT 1 within %s", source.ErrUnavailable, name, limit)
		}
		fmt.Fprintf(d.Stdout, "FAIL  %s  %s\n", name, oneLine(dsn.Redact(err.Error())))
		return err
	}
	fmt.Fprintf(d.Stdout, "ok    %s  %s: SELECT 1 in %s\n", name, src.Driver(), time.Since(start).Round(time.Millisecond))
	return nil
}

// explainCheck leads a failed check's message with what it most likely means.
func explainCheck(err error) string {
	msg := dsn.Redact(err.Error())
	switch {
	case errors.Is(err, plexws.ErrAuth):
		return "refused password or user (Plex answered 401/403): " + msg
	case strings.Contains(msg, "is the url right"):
		return "wrong URL: " + msg
	case strings.Contains(msg, "certificate is not trusted"):
		return "untrusted certificate: " + msg
	case errors.Is(err, plexws.ErrPlex):
		return "Plex refused the call: " + msg
	case strings.Contains(msg, "gave up after"):
		// Every try failed to connect or got a 5xx: not a time-out, whatever ended it.
		return "cannot reach Plex: " + msg
	case strings.Contains(msg, "no answer within") || strings.Contains(msg, "no complete answer"):
		return "time-out: " + msg
	case errors.Is(err, source.ErrUnavailable):
		return "cannot reach Plex: " + msg
	}
	return msg
}

func triesNote(n int) string {
	if n > 1 {
		return fmt.Sprintf(" after %d tries", n)
	}
	return ""
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// sourceWhere is where a source is, as it may be shown: a plexws URL without user
// info, a DSN with its password redacted.
func sourceWhere(sc source.Config) string {
	if sc.DriverName() == source.DriverPlexWS {
		u := sc.URL
		if u == "" {
			u = plexws.DefaultURL
		}
		if pu, err := url.Parse(u); err == nil {
			pu.User = nil
			return pu.String()
		}
		return dsn.Redact(u)
	}
	return dsn.Redact(sc.DSN)
}

func sortedPCNs(m map[int]source.Account) []int {
	out := make([]int, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
