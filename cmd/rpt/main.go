// Command rpt runs parameterised reports against live Plex data. This file only picks
// the concrete drivers and the process's streams; everything else is in package cli.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	gomysql "github.com/go-sql-driver/mysql"
	"golang.org/x/term"

	"rpt/cli"
	"rpt/internal/dsn"
	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/queue/sqlite"
	"rpt/internal/source"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args, cli.Deps{
		OpenQueue:  openQueue,
		OpenSource: source.Open,
		Version:    version,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		StdoutTTY:  term.IsTerminal(int(os.Stdout.Fd())),
		StderrTTY:  term.IsTerminal(int(os.Stderr.Fd())),
		DriverLog:  func(l *slog.Logger) { _ = gomysql.SetLogger(driverLog{l}) },
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
