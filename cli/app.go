// Package cli is rpt's command line: one file per command group, each a thin layer
// from flags to a package call to output. Output goes through the injected streams of
// Deps, so every command is tested without a terminal; exit codes live in exit.go.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"rpt/internal/config"
	"rpt/internal/didyoumean"
	"rpt/internal/dsn"
	"rpt/internal/errclass"
	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/internal/source"
	"rpt/reportdefs"
)

// Deps is what cmd/rpt injects: the concrete drivers and the process's streams.
type Deps struct {
	OpenQueue  func(ctx context.Context, dsn string, opts queue.Options) (queue.Store, error)
	OpenSource func(ctx context.Context, name string, cfg source.Config) (source.Source, error)
	Version    string
	Stdout     io.Writer
	Stderr     io.Writer
	StdoutTTY  bool
	StderrTTY  bool
	Now        func() time.Time
	// DriverLog, when set, routes the database drivers' own messages to a command's
	// logger (the agent's JSON log, or stderr).
	DriverLog func(*slog.Logger)

	// OpenResults opens a results store other than the queue database: a mongodb:// URI
	// of rpt.yaml's results: or results_read: (nil: none is built in). q is the queue the
	// store's jobs are in.
	OpenResults func(ctx context.Context, uri string, q queue.Store) (results.Store, error)
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, d Deps) int {
	if d.Now == nil {
		d.Now = time.Now
	}
	if len(args) > 1 && args[1] == completeArg {
		complete(ctx, d, args[2:])
		return ExitOK
	}
	app := NewApp(&d)
	err := checkParamText(args)
	if err == nil {
		err = app.RunContext(ctx, reorderArgs(app, args))
	}
	var bare bareError
	switch {
	case errors.As(err, &bare):
		fmt.Fprintln(d.Stderr, bare.Error())
	case err != nil:
		fmt.Fprintf(d.Stderr, "rpt: %s\n", err)
	}
	return ExitCode(err)
}

// NewApp builds the command tree.
func NewApp(d *Deps) *ucli.App {
	app := &ucli.App{
		Name:                      "rpt",
		Usage:                     "run parameterised reports against live Plex data, small or hours long",
		Version:                   d.Version,
		Writer:                    d.Stdout,
		ErrWriter:                 d.Stderr,
		HideHelpCommand:           true,
		DisableSliceFlagSeparator: true,
		ExitErrHandler:            func(*ucli.Context, error) {}, // Main maps errors to exit codes
		Action: func(c *ucli.Context) error {
			if c.NArg() > 0 {
				return usagef("unknown command %q (rpt --help lists them)", c.Args().First())
			}
			return ucli.ShowAppHelp(c)
		},
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "config", Usage: "config `FILE` (default ./rpt.yaml, else the user config dir)", EnvVars: []string{"RPT_CONFIG"}},
			&ucli.StringFlag{Name: "queue", Usage: "queue database `DSN`: mysql://user:pass@host:port/db or sqlite:PATH", EnvVars: []string{"RPT_QUEUE"}},
			&ucli.StringFlag{Name: "mqtt", Usage: "MQTT broker `URL`, e.g. tcp://host:1883", EnvVars: []string{"RPT_MQTT"}},
			&ucli.StringFlag{Name: "mqtt-prefix", Value: "rpt", Usage: "MQTT topic `PREFIX` (one per deployment sharing a broker)", EnvVars: []string{"RPT_MQTT_PREFIX"}},
			&ucli.StringFlag{Name: "reports", Usage: "extra report definition folder `DIR`", EnvVars: []string{"RPT_REPORTS"}},
			&ucli.DurationFlag{Name: "retry-for", Value: defaultRetryFor,
				Usage:   "retry a queue database that does not answer for `DURATION` before giving up (exit 5); 0 never; rpt agent waits until it answers unless set",
				EnvVars: []string{"RPT_RETRY_FOR"}},
		},
		Commands: []*ucli.Command{
			quickstartCommand(d),
			serverCommand(d),
			agentCommand(d),
			agentsCommand(d),
			pauseCommand(d, true),
			pauseCommand(d, false),
			submitCommand(d),
			jobsCommand(d),
			cancelCommand(d),
			retryCommand(d),
			getCommand(d),
			watchCommand(d),
			reportsCommand(d),
			sourcesCommand(d),
			etlCommand(d),
			dbCommand(d),
			demoCommand(d),
			tokensCommand(d), apiCommand(d), schedulesCommand(d),
			cronCommand(d),
			versionCommand(d),
			completionCommand(d),
		},
	}
	setUsageErrors(app.Commands)
	checkOutputs(app.Commands)
	tidyDefaults(app.Flags, app.Commands)
	addExamples(app.Commands, "")
	app.OnUsageError = onUsageError
	return app
}

func onUsageError(c *ucli.Context, err error, _ bool) error {
	msg := flagSuggestion(c, flagValueError(c, err.Error()))
	if path := commandPath(c); path != "" {
		return usagef("%s: %s (rpt %s --help lists the flags)", path, msg, path)
	}
	return usagef("%s (rpt --help lists the flags)", msg)
}

// commandPath is the command of c as typed after rpt ("jobs list"); "" for the app's
// own flags, which come with a root command named like the app.
func commandPath(c *ucli.Context) string {
	if c == nil {
		return ""
	}
	var names []string
	for _, c := range c.Lineage() {
		if c.Command != nil && c.Command.Name != "" && (c.App == nil || c.Command.Name != c.App.Name) {
			if len(names) == 0 || names[0] != c.Command.Name {
				names = append([]string{c.Command.Name}, names...)
			}
		}
	}
	return strings.Join(names, " ")
}

var (
	// the flag package's and urfave's words for a value that does not parse
	badFlagValueRE = regexp.MustCompile(`^invalid value ("[^"]*") for flag -+([\w-]+): .*$`)
	badEnvValueRE  = regexp.MustCompile(`^could not parse ("[^"]*") as \w+ value from environment variable "(\w+)" for flag ([\w-]+): .*$`)
)

// flagValueError says a flag value that does not parse the way parameters say it,
// naming the flag and what it wants, instead of the flag package's `invalid value
// "high" for flag -priority: parse error` or urfave's strconv text.
func flagValueError(c *ucli.Context, msg string) string {
	if m := badFlagValueRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("--%s %s: %s", m[2], m[1], flagWants(c, m[2]))
	}
	if m := badEnvValueRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s=%s (for --%s): %s", m[2], m[1], m[3], flagWants(c, m[3]))
	}
	return msg
}

// flagWants is what a flag's value must be, from its type.
func flagWants(c *ucli.Context, name string) string {
	var fs []ucli.Flag
	if c != nil && c.Command != nil {
		fs = append(fs, c.Command.Flags...)
	}
	if c != nil && c.App != nil {
		fs = append(fs, c.App.Flags...)
	}
	for _, f := range fs {
		if !slices.Contains(f.Names(), name) {
			continue
		}
		switch f.(type) {
		case *ucli.IntFlag, *ucli.Int64Flag, *ucli.UintFlag, *ucli.Uint64Flag:
			return "want an integer"
		case *ucli.DurationFlag:
			return "want a duration such as 30s, 10m or 2h"
		case *ucli.BoolFlag:
			return "want true or false"
		case *ucli.Float64Flag:
			return "want a number"
		}
	}
	return "not a valid value"
}

// flagSuggestion turns the flag package's "flag provided but not defined: -concurency"
// into "unknown flag --concurency; did you mean `--concurrency`?", from the flags of the
// command and the global ones: report and parameter names get the same help.
func flagSuggestion(c *ucli.Context, msg string) string {
	const undefined = "flag provided but not defined: "
	bad, ok := strings.CutPrefix(msg, undefined)
	if !ok || c == nil {
		return msg
	}
	bad = strings.TrimLeft(bad, "-")
	msg = "unknown flag --" + bad
	if len(bad) < 2 {
		// One letter is one edit from every other: no suggestion beats a wrong one.
		return "unknown flag -" + bad
	}
	var known []string
	add := func(fs []ucli.Flag) {
		for _, f := range fs {
			known = append(known, f.Names()...)
		}
	}
	if c.Command != nil {
		add(c.Command.Flags)
	}
	if c.App != nil {
		add(c.App.Flags)
	}
	s := didyoumean.Suggest(bad, known)
	if s == "" {
		return msg
	}
	// Suggest quotes the bare name; a flag is written with its dashes.
	for _, k := range known {
		if s == "did you mean `"+k+"`?" {
			dash := "--"
			if len(k) == 1 {
				dash = "-"
			}
			return msg + "; did you mean `" + dash + k + "`?"
		}
	}
	return msg
}

func setUsageErrors(cmds []*ucli.Command) {
	for _, c := range cmds {
		c.OnUsageError = onUsageError
		setUsageErrors(c.Subcommands)
	}
}

// env is what a command runs with: the configuration after flags and environment, the
// time zone, and the injected dependencies.
type env struct {
	d          *Deps
	cfg        *config.Config
	loc        *time.Location
	dataDir    string
	mqttPrefix string
	log        *slog.Logger
	retryFor   time.Duration // how long to retry an unreachable queue; retryForever
	// queueWaited is set once a call had to wait for the queue database.
	queueWaited bool
}

// loadEnv reads the configuration: --config (RPT_CONFIG), else ./rpt.yaml, else the user
// config dir's rpt/rpt.yaml, else defaults; flags and environment override the file.
func loadEnv(c *ucli.Context, d *Deps) (*env, error) {
	path := c.String("config")
	if path == "" {
		for _, p := range defaultConfigPaths() {
			if _, err := os.Stat(p); err == nil {
				path = p
				break
			}
		}
	}
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return nil, err
		}
	}
	dataDir, err := userDataDir()
	if err != nil {
		return nil, err
	}
	if q := c.String("queue"); q != "" {
		if _, err := dsn.Scheme(q); err != nil {
			return nil, fmt.Errorf("--queue: %w", err)
		}
		cfg.Queue = q
	}
	if cfg.Queue == "" {
		cfg.Queue = "sqlite:" + filepath.Join(dataDir, "rpt.db")
	}
	if m := c.String("mqtt"); m != "" {
		cfg.MQTT = m
	}
	if r := c.String("reports"); r != "" {
		cfg.Reports = append(cfg.Reports, filepath.SplitList(r)...)
	}
	if cfg.Sources == nil {
		cfg.Sources = map[string]source.Config{}
	}
	// The embedded default, only when there is no rpt.yaml at all: the demo database
	// stands in for the warehouse and for Plex's ODBC data source, plex-odbc (it holds
	// both shapes of the accounting data). plex, the Plex web-services source, is not
	// among them: the demo file does not answer ExecuteDataSource. A configuration file gets exactly the sources it names, so a report on a
	// source it leaves out fails clearly instead of showing demo numbers as live data.
	if cfg.File == "" {
		demoDSN := "sqlite:" + filepath.Join(dataDir, "demo.db")
		for _, name := range []string{"demo", "warehouse", reportdefs.PlexODBCSource} {
			cfg.Sources[name] = source.Config{Driver: "sqlite", DSN: demoDSN}
		}
	}
	loc := time.Local
	if cfg.Timezone != "" {
		if loc, err = time.LoadLocation(cfg.Timezone); err != nil {
			return nil, fmt.Errorf("%w: timezone %q: %v", config.ErrInvalid, cfg.Timezone, err)
		}
	}
	retryFor := c.Duration("retry-for")
	if retryFor < 0 {
		return nil, usagef("--retry-for %s: must not be negative", retryFor)
	}
	log := slog.New(slog.NewTextHandler(d.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if d.DriverLog != nil {
		d.DriverLog(log)
	}
	return &env{d: d, cfg: cfg, loc: loc, dataDir: dataDir, mqttPrefix: c.String("mqtt-prefix"), log: log, retryFor: retryFor}, nil
}

func defaultConfigPaths() []string {
	paths := []string{"rpt.yaml"}
	if dir, err := os.UserConfigDir(); err == nil {
		paths = append(paths, filepath.Join(dir, "rpt", "rpt.yaml"))
	}
	return paths
}

// userDataDir is where the embedded default keeps its databases: $XDG_DATA_HOME/rpt,
// else ~/.local/share/rpt.
func userDataDir() (string, error) {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "rpt"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the user data dir: %w", err)
	}
	return filepath.Join(home, ".local", "share", "rpt"), nil
}

// queueUse says what a command does with the queue, and so whether it may create one.
type queueUse int

const (
	// queueRead: the command reads (or changes what exists: cancel, retry, pause,
	// drain, prune). It never creates a queue: an absent SQLite file is an error saying
	// so, with no folder and no empty database left behind.
	queueRead queueUse = iota
	// queueWrite: the command queues work (submit); the embedded SQLite queue is
	// created, with its folder, when absent.
	queueWrite
	// queueMigrate: agents, rpt server, quickstart and rpt db migrate: as queueWrite,
	// and a MySQL queue is migrated too.
	queueMigrate
)

// openQueue opens the queue database for reading (migrate false) or for an agent or
// `rpt db migrate` (migrate true); see openQueueFor.
func (e *env) openQueue(ctx context.Context, migrate bool) (queue.Store, error) {
	if migrate {
		return e.openQueueFor(ctx, queueMigrate)
	}
	return e.openQueueFor(ctx, queueRead)
}

// openQueueFor opens the queue database for use. An existing embedded SQLite queue is
// migrated on open, so the default needs no setup; a MySQL queue is migrated by
// `rpt db migrate` and agents.
func (e *env) openQueueFor(ctx context.Context, use queueUse) (queue.Store, error) {
	scheme, err := dsn.Scheme(e.cfg.Queue)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	migrate := use == queueMigrate
	if scheme == "sqlite" {
		p, err := dsn.SQLitePath(e.cfg.Queue)
		if err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		if use == queueRead {
			if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
				return nil, errclass.Errorf(errclass.Unavailable,
					"queue database %s does not exist (nothing was queued there yet): check --queue (RPT_QUEUE, or queue: in rpt.yaml); rpt submit, rpt agent, rpt server and rpt db migrate create it",
					redactedQueue(e))
			}
		} else if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("queue: %w: %v", queue.ErrUnavailable, err)
		}
		migrate = true
	}
	var st queue.Store
	open := func(ctx context.Context) (err error) {
		st, err = e.d.OpenQueue(ctx, e.cfg.Queue, queue.Options{})
		return err
	}
	if scheme == "sqlite" {
		err = open(ctx) // a local file: nothing to wait for
	} else {
		err = e.retryQueue(ctx, open)
	}
	if errors.Is(err, queue.ErrUnavailable) {
		hint := "check the host and port in --queue (RPT_QUEUE, or queue: in rpt.yaml) and that the server runs"
		if scheme == "sqlite" {
			hint = "check the path in --queue (RPT_QUEUE, or queue: in rpt.yaml) and that you may write there"
		}
		return nil, fmt.Errorf("queue database %s does not answer: %w; %s", redactedQueue(e), err, hint)
	}
	if err != nil {
		return nil, err
	}
	if migrate {
		// The server may go away between the connect and the migration (an agent
		// starting as the database restarts): a daemon keeps waiting for it here too.
		// Migrations are idempotent and serialised by their own lock.
		migrateOnce := func(ctx context.Context) error { return st.Migrate(ctx) }
		if scheme == "sqlite" {
			err = migrateOnce(ctx)
		} else {
			err = e.retryQueue(ctx, migrateOnce)
		}
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("migrate queue: %w", err)
		}
	}
	return st, nil
}

func (e *env) catalog() (*reportdefs.Catalog, error) {
	return reportdefs.LoadCatalog(e.cfg.Reports...)
}

// jobs is the job service over store, as this command's configuration sets it up:
// the same calls the API and the cron runner make.
func (e *env) jobs(store queue.Store) *jobs.Service {
	return &jobs.Service{Store: store, Config: e.cfg, Loc: e.loc, Now: e.d.Now, RetryQueue: e.retryQueue}
}

func (e *env) openSource(ctx context.Context, name string) (source.Source, error) {
	sc, err := (&jobs.Service{Config: e.cfg}).SourceConfig(name)
	if err != nil {
		return nil, err
	}
	if sc.Driver == "sqlite" {
		if p, err := dsn.SQLitePath(sc.DSN); err == nil {
			if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w: source %q: %s does not exist (load demo data with `rpt demo load`)", source.ErrUnavailable, name, p)
			}
		}
	}
	return e.d.OpenSource(ctx, name, sc)
}

func sourceNames(m map[string]source.Config) []string { return jobs.SourceNames(m) }

// redactedQueue is the queue DSN as it may be shown.
func redactedQueue(e *env) string { return dsn.Redact(e.cfg.Queue) }
