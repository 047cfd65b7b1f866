package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"rpt/internal/config"
	"rpt/internal/notify"
	"rpt/internal/queue"
	"rpt/reportdefs"
)

func paramFlag() ucli.Flag {
	// KeepSpace: a string parameter's value is bound exactly as given, spaces included.
	return &ucli.StringSliceFlag{Name: "param", Aliases: []string{"p"}, KeepSpace: true, Usage: "parameter `name=value` (repeat; lists comma separated)"}
}

// parseParams turns -p name=value flags into a map; a malformed or repeated one is an error
// naming it, and so are more than reportdefs.MaxParams of them or an oversized value.
func parseParams(given []string) (map[string]string, error) {
	if len(given) > reportdefs.MaxParams {
		return nil, usagef("-p: %d parameters given; at most %d are accepted", len(given), reportdefs.MaxParams)
	}
	out := make(map[string]string, len(given))
	for _, p := range given {
		name, value, ok := strings.Cut(p, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, usagef("-p %.60q: want name=value", p)
		}
		if len(value) > reportdefs.MaxParamValue {
			return nil, usagef("-p %.60s: value is %d bytes; at most %d", name, len(value), reportdefs.MaxParamValue)
		}
		if _, dup := out[name]; dup {
			return nil, usagef("-p %s: given twice", name)
		}
		out[name] = value
	}
	return out, nil
}

func submitCommand(d *Deps) *ucli.Command {
	return &ucli.Command{
		Name:      "submit",
		Usage:     "queue a report run and print its job id",
		ArgsUsage: "REPORT",
		Flags: []ucli.Flag{
			paramFlag(),
			&ucli.IntFlag{Name: "priority", Usage: "higher runs first"},
			&ucli.StringFlag{Name: "at", Usage: "run at or after `TIME` (RFC 3339, 'YYYY-MM-DD HH:MM' in the configured time zone, or +DURATION)"},
			&ucli.StringFlag{Name: "dedupe", Usage: "while a job with this `KEY` is queued or running, return its id instead"},
			&ucli.DurationFlag{Name: "once-per", Usage: "enqueue at most once per `DURATION` for the same report and parameters (crontab on many nodes)"},
			&ucli.StringFlag{Name: "submit-token", Usage: "client `TOKEN` that makes a retried submit idempotent"},
			&ucli.BoolFlag{Name: "wait", Usage: "wait for the job to finish; the exit code is its outcome"},
			&ucli.DurationFlag{Name: "timeout", Usage: "with --wait: stop waiting after `DURATION` (exit 4); the job goes on"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return usagef("submit: want one REPORT, got %d arguments", c.NArg())
			}
			if c.String("dedupe") != "" && c.IsSet("once-per") {
				return usagef("submit: --dedupe and --once-per cannot be combined")
			}
			if c.IsSet("once-per") && c.Duration("once-per") < time.Minute {
				return usagef("--once-per %s: must be at least 1m", c.Duration("once-per"))
			}
			if c.IsSet("timeout") && !c.Bool("wait") {
				return usagef("--timeout needs --wait")
			}
			e, err := loadEnv(c, d)
			if err != nil {
				return err
			}
			params, err := parseParams(c.StringSlice("param"))
			if err != nil {
				return err
			}
			req := submitRequest{report: c.Args().First(), params: params, priority: c.Int("priority"),
				dedupe: c.String("dedupe"), oncePer: c.Duration("once-per"), token: c.String("submit-token"),
				origin: queue.OriginCLI}
			if at := c.String("at"); at != "" {
				t, err := parseAt(at, d.Now(), e.loc)
				if err != nil {
					return err
				}
				req.at = &t
			}
			ctx := c.Context
			store, err := e.openQueue(ctx, false)
			if err != nil {
				return err
			}
			defer store.Close()
			// A token of its own makes retrying an enqueue whose answer was lost safe:
			// the insert may have committed before the connection dropped.
			if req.token == "" {
				req.token = newSubmitToken()
			}
			var res queue.JobEnqueueResult
			err = e.retryQueue(ctx, func(ctx context.Context) error {
				res, err = submit(ctx, e, store, req)
				return err
			})
			if err != nil {
				return err
			}
			// Our own token found: an earlier try of this command queued the job.
			queued := !res.Existing || (c.String("submit-token") == "" && res.Job.SubmitToken == req.token)
			client := e.notifier(ctx)
			defer closeNotifier(client)
			if client != nil && queued {
				client.PublishWake()
			}
			if !queued {
				fmt.Fprintf(d.Stderr, "job %d already exists (%s); not queued again\n", res.Job.ID, res.Job.Status)
			}
			fmt.Fprintln(d.Stdout, res.Job.ID)
			if !c.Bool("wait") {
				return nil
			}
			j, err := waitJob(ctx, e, client, store, res.Job.ID, c.Duration("timeout"))
			if err != nil {
				return err
			}
			return jobOutcome(j)
		},
	}
}

// newSubmitToken is a random token for a CLI submit that did not bring one.
func newSubmitToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "cli-" + hex.EncodeToString(b[:])
}

// submitRequest is one run to queue, from the command line, cron or the API.
type submitRequest struct {
	report   string
	params   map[string]string
	priority int
	at       *time.Time
	dedupe   string
	oncePer  time.Duration
	occurs   time.Time // the occurrence a --once-per key is made from; zero: now
	token    string
	origin   string
	retryOf  int64
}

// submit resolves a report's parameters (relative dates fixed now, in the configured
// time zone) and queues the run with its definition snapshot.
func submit(ctx context.Context, e *env, store queue.Store, r submitRequest) (queue.JobEnqueueResult, error) {
	cat, err := e.catalog()
	if err != nil {
		return queue.JobEnqueueResult{}, err
	}
	def, err := cat.Get(r.report)
	if err != nil {
		return queue.JobEnqueueResult{}, err
	}
	// A job for a source no agent is configured with would wait forever; the submitting
	// side shares rpt.yaml with the agents, so an unknown name is a mistake to report now.
	if _, ok := e.cfg.Sources[def.Source]; !ok {
		return queue.JobEnqueueResult{}, usagef("%s:%d: source: %q is not configured in %s (sources: %s)",
			def.File, keyLine(def.Raw, "source"), def.Source, configName(e.cfg), strings.Join(sourceNames(e.cfg.Sources), ", "))
	}
	now := e.d.Now()
	resolved, err := def.Resolve(r.params, now, e.loc)
	if err != nil {
		return queue.JobEnqueueResult{}, err
	}
	p := def.JobParams(resolved, e.cfg.Sources)
	p.Priority = r.priority
	p.RunAfter = r.at
	p.DedupeKey = r.dedupe
	p.SubmitToken = r.token
	p.RetryOf = r.retryOf
	p.Origin = r.origin
	p.SubmittedBy = submitter()
	if r.oncePer > 0 {
		occ := r.occurs
		if occ.IsZero() {
			occ = now
		}
		occ = occ.UTC().Truncate(time.Minute).Truncate(r.oncePer)
		p.OnceKey = reportdefs.CanonicalKey(def.Name, resolved) + "@" + occ.Format(time.RFC3339)
	}
	res, err := store.JobEnqueue(ctx, p)
	if err != nil {
		return res, fmt.Errorf("submit %s: %w", def.Name, err)
	}
	return res, nil
}

func submitter() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

// parseAt reads --at: RFC 3339, "YYYY-MM-DD HH:MM[:SS]" in loc, or "+DURATION".
func parseAt(s string, now time.Time, loc *time.Location) (time.Time, error) {
	if rest, ok := strings.CutPrefix(s, "+"); ok {
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return time.Time{}, usagef("--at %q: want +DURATION like +10m", s)
		}
		return now.Add(d).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usagef("--at %q: want RFC 3339 (2026-11-30T07:20:00Z), 'YYYY-MM-DD HH:MM' or +DURATION", s)
}

// waitJob follows a job's events until it is finished: from MQTT when a broker is
// configured, merged with the events table (the source of truth), else by polling the
// table. Progress goes to stderr on a terminal. Interrupting stops the wait, never the job.
func waitJob(ctx context.Context, e *env, client *notify.Client, store queue.Store, id int64, timeout time.Duration) (*queue.Job, error) {
	d := e.d
	followCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		followCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	err := notify.Follow(followCtx, store, client, []int64{id}, "", 0, func(ev queue.Event) {
		if d.StderrTTY {
			fmt.Fprintf(d.Stderr, "\rjob %d %-9s attempt %d  %d rows  %s   ", ev.JobID, ev.Status, ev.Attempt, ev.Rows, roundDur(time.Since(start)))
		}
	})
	if d.StderrTTY {
		fmt.Fprintln(d.Stderr)
	}
	switch {
	case ctx.Err() != nil:
		fmt.Fprintf(d.Stderr, "stopped waiting; job %d goes on (rpt watch %d)\n", id, id)
		return nil, ctx.Err()
	case err != nil && followCtx.Err() == nil:
		return nil, fmt.Errorf("wait for job %d: %w", id, err)
	}
	var j *queue.Job
	gerr := e.retryQueue(ctx, func(ctx context.Context) (err error) {
		j, err = store.JobGet(ctx, id)
		return err
	})
	if gerr != nil {
		return nil, fmt.Errorf("job %d: %w", id, gerr)
	}
	if !j.Status.Terminal() {
		return j, &exitError{code: ExitNotFinished, msg: fmt.Sprintf("job %d is still %s after %s", id, j.Status, timeout)}
	}
	return j, nil
}

// configName names where sources come from, for messages.
func configName(c *config.Config) string {
	if c.File == "" {
		return "the built-in defaults (no rpt.yaml)"
	}
	return c.File
}

// keyLine is the line of a top-level "key:" in a definition file, 1 if not found.
func keyLine(raw []byte, key string) int {
	for i, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, key+":") {
			return i + 1
		}
	}
	return 1
}
