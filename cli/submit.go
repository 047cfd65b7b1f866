package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"rpt/internal/deliver"
	"rpt/internal/errclass"
	"rpt/internal/inputfile"
	"rpt/internal/jobs"
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
			&ucli.IntFlag{Name: "priority", Usage: "priority `N`: higher runs first"},
			&ucli.StringFlag{Name: "at", Usage: "run at or after `TIME` (RFC 3339, 'YYYY-MM-DD HH:MM' in the configured time zone, or +DURATION)"},
			&ucli.StringFlag{Name: "occurrence", Usage: "the `TIME` this run stands for (a cron occurrence): relative parameters and the --once-per key are resolved at it, in the configured time zone"},
			&ucli.StringFlag{Name: "dedupe", Usage: "while a job with this `KEY` is queued or running, return its id instead"},
			&ucli.DurationFlag{Name: "once-per", Usage: "enqueue at most once per `DURATION` for the same report and parameters (crontab on many nodes)", DefaultText: "off"},
			&ucli.StringFlag{Name: "submit-token", Usage: "client `TOKEN` that makes a retried submit idempotent"},
			&ucli.StringSliceFlag{Name: "deliver", Usage: "once the report succeeds, deliver its result to `TARGET`: mailto:ADDR[,ADDR][?format=csv] (an .xlsx attachment by default) or an https:// webhook (signed JSON); repeat for more; only what rpt.yaml's deliver: allows"},
			&ucli.BoolFlag{Name: "wait", Usage: "wait for the job to finish; the exit code is its outcome"},
			&ucli.DurationFlag{Name: "timeout", Usage: "with --wait: stop waiting after `DURATION` (exit 4); the job goes on", DefaultText: "none, wait until it ends"},
			&ucli.StringFlag{Name: "from", Usage: "queue one job per parameter set read from `FILE` (- for stdin): JSON lines or CSV with a header row; all or nothing"},
			&ucli.StringFlag{Name: "from-format", Usage: "`FORMAT` of --from: jsonl or csv (default: by the file name, else by the first character)"},
		},
		Action: func(c *ucli.Context) error {
			if c.NArg() != 1 {
				return usagef("submit: want one REPORT, got %d arguments%s", c.NArg(), paramHint(c.Args().Slice()))
			}
			if c.String("dedupe") != "" && c.IsSet("once-per") {
				return usagef("submit: --dedupe and --once-per cannot be combined")
			}
			if c.IsSet("once-per") && c.Duration("once-per") < jobs.MinOncePer {
				return usagef("--once-per %s: must be at least 1m", c.Duration("once-per"))
			}
			if c.IsSet("timeout") && !c.Bool("wait") {
				return usagef("--timeout needs --wait")
			}
			if err := jobs.CheckPriority(c.Int("priority")); err != nil {
				return usagef("--%s", err)
			}
			if c.IsSet("from-format") && !c.IsSet("from") {
				return usagef("--from-format needs --from")
			}
			if c.IsSet("from") {
				for _, f := range []string{"wait", "dedupe", "submit-token"} {
					if c.IsSet(f) {
						return usagef("--from: --%s applies to one job; it cannot be combined with --from", f)
					}
				}
			}
			e, err := loadEnv(c, d)
			if err != nil {
				return err
			}
			params, err := parseParams(c.StringSlice("param"))
			if err != nil {
				return err
			}
			req := jobs.SubmitRequest{Report: c.Args().First(), Params: params, Priority: c.Int("priority"),
				Dedupe: c.String("dedupe"), OncePer: c.Duration("once-per"), Token: c.String("submit-token"),
				Origin: queue.OriginCLI, Deliver: c.StringSlice("deliver"), DeliverField: "--deliver"}
			// One reading of the clock for the whole submit: --at +DURATION, relative
			// parameters and the once key all count from the same instant.
			now := d.Now()
			if at := c.String("at"); at != "" {
				t, err := parseAt(at, now, e.loc)
				if err != nil {
					return err
				}
				req.At = &t
			}
			if occ := c.String("occurrence"); occ != "" {
				t, err := parseTime("--occurrence", occ, e.loc)
				if err != nil {
					return err
				}
				req.Occurrence = t
			}
			var sets []jobs.ParamSet
			if from := c.String("from"); from != "" {
				if sets, err = readParamSets(c.App.Reader, from, c.String("from-format")); err != nil {
					return err
				}
			}
			ctx := c.Context
			store, err := e.openQueueFor(ctx, queueWrite)
			if err != nil {
				return err
			}
			defer store.Close()
			pub := &lazyNotifier{e: e, ctx: ctx, store: store}
			defer pub.close()
			svc := e.jobs(store)
			svc.Now = func() time.Time { return now }
			svc.Publisher = pub
			if sets != nil {
				return submitMany(ctx, d, svc, req, sets)
			}
			res, err := svc.Submit(ctx, req)
			if err != nil {
				return err
			}
			// From here the clock moves on: why a job waits is asked of the present.
			svc.Now = d.Now
			if !res.Queued {
				fmt.Fprintf(d.Stderr, "job %d already exists (%s); not queued again\n", res.Job.ID, res.Job.Status)
			}
			fmt.Fprintln(d.Stdout, res.Job.ID)
			if d.StderrTTY && res.Job.Status == queue.StatusQueued {
				warnWait(ctx, d, svc, res.Job)
			}
			if !c.Bool("wait") {
				return nil
			}
			waitStart := time.Now()
			j, err := waitJob(ctx, e, svc, pub.client(), res.Job.ID, c.Duration("timeout"))
			if err != nil {
				return err
			}
			if err := jobs.Outcome(j); err != nil {
				return err
			}
			// --wait covers the deliveries too: the command ends when the mail went (or
			// failed), so a script can trust exit 0.
			left := time.Duration(0)
			if t := c.Duration("timeout"); t > 0 {
				if left = t - time.Since(waitStart); left <= 0 {
					left = time.Millisecond
				}
			}
			ds, err := svc.WaitDeliveries(ctx, j.ID, left, 0)
			if ctx.Err() != nil {
				return interrupted(svc, j.ID)
			}
			for _, dv := range ds {
				if dv.State == queue.DeliverySent {
					fmt.Fprintf(d.Stderr, "delivered to %s\n", deliver.Shown(dv.Target))
				}
			}
			return err
		},
	}
}

// paramHint is the advice for a name=value given where a REPORT was expected (the
// -p forgotten): "; parameters go after -p: -p start_period=202501", or "".
func paramHint(args []string) string {
	var ps []string
	for _, a := range args {
		if name, _, ok := strings.Cut(a, "="); ok && name != "" && !strings.ContainsAny(name, " \t") {
			ps = append(ps, "-p "+a)
		}
	}
	if len(ps) == 0 {
		return ""
	}
	return "; parameters go after -p: " + strings.Join(ps, " ")
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
	t, err := parseTime("--at", s, loc)
	if err != nil {
		// The example is tomorrow, so copying it queues a run that is not already due.
		ex := now.Add(24 * time.Hour).In(loc)
		return time.Time{}, usagef("--at %q: want RFC 3339 (%s), 'YYYY-MM-DD HH:MM' (%s) or +DURATION", s,
			ex.UTC().Truncate(time.Hour).Format(time.RFC3339), ex.Truncate(time.Hour).Format("2006-01-02 15:04"))
	}
	return t, nil
}

// parseTime reads a time flag: RFC 3339, or "YYYY-MM-DD HH:MM[:SS]" in loc.
func parseTime(flag, s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), nil
		}
	}
	if flag == "--at" {
		return time.Time{}, usagef("--at %q: want RFC 3339 (2026-11-30T07:20:00Z), 'YYYY-MM-DD HH:MM' or +DURATION", s)
	}
	return time.Time{}, usagef("%s %q: want RFC 3339 (2026-11-30T07:20:00Z) or 'YYYY-MM-DD HH:MM' in the configured time zone", flag, s)
}

// warnWait tells a person at a terminal why the job they just queued cannot start
// (no agent running, none with its source or labels, a pause): the reasons rpt jobs
// show gives. A wait that is expected (--at in the future, slots taken by other runs of
// the report, an agent that will claim it) says nothing. It only advises: a queue that
// cannot answer the question leaves the submit as it was.
func warnWait(ctx context.Context, d *Deps, svc *jobs.Service, j *queue.Job) {
	why, err := svc.WaitReasons(ctx, j)
	if err != nil {
		return
	}
	for _, r := range why {
		if strings.HasPrefix(r, "runnable:") || strings.HasPrefix(r, "not due:") || strings.HasPrefix(r, "no free slot:") {
			continue
		}
		fmt.Fprintf(d.Stderr, "rpt: job %d will wait: %s\n", j.ID, r)
	}
}

// waitJob waits for a job with progress on a terminal's stderr: a line that redraws
// itself with each event. Interrupting stops the wait, never the job: the error then
// says so, and how to stop the job too. A timeout says why a queued job still waits.
func waitJob(ctx context.Context, e *env, svc *jobs.Service, client *notify.Client, id int64, timeout time.Duration) (*queue.Job, error) {
	d := e.d
	start := time.Now()
	j, err := svc.Wait(ctx, id, jobs.WaitOptions{Timeout: timeout, Client: client, OnEvent: func(ev queue.Event) {
		if d.StderrTTY {
			fmt.Fprintf(d.Stderr, "\rjob %d %-9s attempt %d  %d rows  %s   ", ev.JobID, ev.Status, ev.Attempt, ev.Rows, roundDur(time.Since(start)))
		}
	}})
	if d.StderrTTY {
		fmt.Fprintln(d.Stderr)
	}
	if ctx.Err() != nil {
		return nil, interrupted(svc, id)
	}
	if err != nil && j != nil && j.Status == queue.StatusQueued && jobs.Class(err) == errclass.NotFinished {
		if why, werr := svc.WaitReasons(ctx, j); werr == nil && len(why) > 0 {
			return j, errclass.Errorf(errclass.NotFinished, "%s: %s", err, strings.Join(why, "; "))
		}
	}
	return j, err
}

// interrupted is the error of a wait stopped by Ctrl-C: the job's state read afresh
// (the command's context is done, so a short one of its own) and how to stop it.
// Main prints it without the "rpt: " prefix: it is the whole answer, not a failure.
func interrupted(svc *jobs.Service, id int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	msg := fmt.Sprintf("interrupted; job %d goes on (rpt cancel %d stops it)", id, id)
	if j, err := svc.Store.JobGet(ctx, id); err == nil {
		if j.Status.Terminal() {
			msg = fmt.Sprintf("interrupted; job %d is %s", id, j.Status)
		} else {
			msg = fmt.Sprintf("interrupted; job %d is still %s (rpt cancel %d stops it)", id, j.Status, id)
		}
	}
	return bareError{errclass.New(errclass.Interrupted, msg)}
}

// bareError is printed by Main as it is, without the "rpt: " prefix.
type bareError struct{ error }

func (b bareError) Unwrap() error { return b.error }

// lazyNotifier is a jobs.Publisher that connects to the broker on first use, so a
// command that has nothing to publish never waits for one.
type lazyNotifier struct {
	e     *env
	ctx   context.Context
	store queue.Settings // where the broker credentials are kept
	c     *notify.Client
	tried bool
}

func (l *lazyNotifier) client() *notify.Client {
	if !l.tried {
		l.tried = true
		l.c = l.e.notifier(l.ctx, l.store)
	}
	return l.c
}

func (l *lazyNotifier) PublishWake() {
	if c := l.client(); c != nil {
		c.PublishWake()
	}
}

func (l *lazyNotifier) PublishCancel(id int64) {
	if c := l.client(); c != nil {
		c.PublishCancel(id)
	}
}

func (l *lazyNotifier) close() { closeNotifier(l.c) }

// maxFromBytes bounds what --from reads.
const maxFromBytes = 64 << 20

// readParamSets reads --from: a file (through inputfile, bounded) or stdin.
func readParamSets(stdin io.Reader, from, format string) ([]jobs.ParamSet, error) {
	var data []byte
	name := from
	if from == "-" {
		name = "stdin"
		b, err := io.ReadAll(io.LimitReader(stdin, maxFromBytes+1))
		if err != nil {
			return nil, fmt.Errorf("--from -: read stdin: %w", err)
		}
		if len(b) > maxFromBytes {
			return nil, usagef("--from -: more than %s on stdin", inputfile.Size(maxFromBytes))
		}
		data = b
	} else {
		b, err := inputfile.Read(from, maxFromBytes, "parameter file")
		if err != nil {
			return nil, errclass.Wrap(errclass.Invalid, fmt.Errorf("--from: %w", err))
		}
		data = b
		if format == "" {
			switch strings.ToLower(filepath.Ext(from)) {
			case ".csv":
				format = jobs.FormatCSV
			case ".jsonl", ".ndjson", ".json":
				format = jobs.FormatJSONLines
			}
		}
	}
	sets, err := jobs.ParseParamSets(data, format)
	if err != nil {
		return nil, fmt.Errorf("--from %s: %w", name, err)
	}
	return sets, nil
}

// submitMany queues one job per parameter set, all or nothing, and prints their ids in
// the order of the input.
func submitMany(ctx context.Context, d *Deps, svc *jobs.Service, base jobs.SubmitRequest, sets []jobs.ParamSet) error {
	reqs := make([]jobs.SubmitRequest, len(sets))
	for i, set := range sets {
		r := base
		r.Params = make(map[string]string, len(base.Params)+len(set.Params))
		for k, v := range base.Params {
			r.Params[k] = v
		}
		for k, v := range set.Params {
			if _, dup := base.Params[k]; dup {
				return usagef("--from line %d: field %q: also given with -p", set.Line, k)
			}
			r.Params[k] = v
		}
		reqs[i] = r
	}
	res, err := svc.SubmitMany(ctx, reqs)
	var ie *jobs.ItemError
	if errors.As(err, &ie) {
		// The same class as the single submit's error; the line tells which set.
		return errclass.Wrap(jobs.Class(ie.Err), fmt.Errorf("--from line %d: %w; nothing was queued", sets[ie.Index].Line, ie.Err))
	}
	if err != nil {
		return err
	}
	existing := 0
	for _, r := range res {
		if !r.Queued {
			existing++
		}
		fmt.Fprintln(d.Stdout, r.Job.ID)
	}
	if existing > 0 {
		fmt.Fprintf(d.Stderr, "%d of %d jobs already existed; not queued again\n", existing, len(res))
	}
	return nil
}
