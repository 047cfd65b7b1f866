// Command rpt runs parameterised reports against live Plex data. This file only picks
// the concrete drivers and the process's streams; everything else is in package cli.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	gomysql "github.com/go-sql-driver/mysql"
	"golang.org/x/term"

	"rpt/cli"
	"rpt/internal/dsn"
	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/queue/sqlite"
	"rpt/internal/results"
	"rpt/internal/results/mongo"
	"rpt/internal/source"
	_ "rpt/internal/source/plexws" // registers the plexws driver (Plex web services)
)

// version is set at build time (make build: -ldflags "-X main.version=$(git describe)").
// Unset, it is what the Go toolchain recorded: the module version of `go install
// rpt/cmd/rpt@v1.2.3`, or the commit of a `go build` in a checkout (buildVersion).
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args, cli.Deps{
		OpenQueue:  openQueue,
		OpenSource: source.Open,
		Version:    buildVersion(version),
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		StdoutTTY:  term.IsTerminal(int(os.Stdout.Fd())),
		StderrTTY:  term.IsTerminal(int(os.Stderr.Fd())),
		DriverLog:  func(l *slog.Logger) { _ = gomysql.SetLogger(driverLog{l}) },

		OpenResults: openResults,
	})
	stop()
	os.Exit(code)
}

// driverLog sends go-sql-driver's messages (a connection reset, "closing bad idle
// connection") to the command's logger, so that the agent's log stays JSON lines; they
// often say why a call failed with only "invalid connection".
type driverLog struct{ l *slog.Logger }

func (d driverLog) Print(v ...any) {
	d.l.Warn("mysql driver", "message", strings.TrimSpace(fmt.Sprint(v...)))
}

func openQueue(ctx context.Context, s string, opts queue.Options) (queue.Store, error) {
	scheme, err := dsn.Scheme(s)
	if err != nil {
		return nil, err
	}
	switch scheme {
	case "sqlite":
		path, err := dsn.SQLitePath(s)
		if err != nil {
			return nil, err
		}
		return sqlite.Open(ctx, path, opts)
	case "mysql":
		return mysql.Open(ctx, s, opts)
	}
	return nil, fmt.Errorf("%w: the queue runs on sqlite: or mysql://, not %s", dsn.ErrInvalid, scheme)
}

// openResults opens a results store other than the queue database: MongoDB.
func openResults(ctx context.Context, uri string, q queue.Store) (results.Store, error) {
	return mongo.Open(ctx, uri, q)
}

// buildVersion is the stamped version, else what the build recorded, else "dev" (go run
// and go test record no commit).
func buildVersion(stamped string) string {
	if stamped != "" {
		return stamped
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return "dev"
	}
	return "dev-" + rev + dirty
}
