package crontab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"time"

	"rpt/internal/jobs"
	"rpt/internal/queue"
)

// Runner runs crontab lines at their times, in process: what a host's cron does, for
// containers and hosts without one. An rpt submit line is submitted through the job
// service with its exact occurrence, so every replica running the same file computes
// the same once key (--once-per) and the queue keeps one job per occurrence; relative
// parameters mean the occurrence's day. Other lines run through /bin/sh with the
// file's environment lines.
type Runner struct {
	Jobs *jobs.Service
	Log  *slog.Logger
	// Now is the clock; Sleep waits for d or until ctx ends. nil: the real ones.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration)
	Shell string // default /bin/sh
	// Schedules, when set, are the database schedules ticked along with the files'
	// lines (listed afresh before each firing, so changes apply within a minute).
	Schedules *Schedules

	lines    []runLine
	watch    []string // files Run re-reads when they change (Watch)
	watchLoc *time.Location
	sums     map[string][32]byte
}

type runLine struct {
	file   string
	e      *Entry
	submit *jobs.SubmitRequest // nil: a shell line
	// missedOnce: the file sets RPT_MISSED=once above the line (catch up the latest
	// missed occurrence at start-up); otherwise missed occurrences are skipped.
	missedOnce bool
}

// NewRunner checks the files as lint does (without the configuration checks; Submit
// makes those at each occurrence) and refuses any file with an error: a runner that
// started would otherwise miss the line's runs silently.
func NewRunner(files []*File, svc *jobs.Service, log *slog.Logger) (*Runner, error) {
	r := &Runner{Jobs: svc, Log: log}
	var errs Errors
	for _, f := range files {
		reqs := map[*Entry]jobs.SubmitRequest{}
		l := &linter{f: f, o: LintOptions{}, onSubmit: func(e *Entry, req jobs.SubmitRequest) { reqs[e] = req }}
		for _, p := range lint(l) {
			if p.Severity == SevError {
				errs = append(errs, &Error{File: p.File, Line: p.Line, Col: p.Col, Field: p.Field, Msg: p.Msg})
			}
		}
		for _, e := range f.Entries {
			rl := runLine{file: f.Name, e: e}
			if v, ok := e.Getenv("RPT_MISSED"); ok {
				switch v.Value {
				case queue.MissedOnce:
					rl.missedOnce = true
				case queue.MissedSkip:
				default:
					errs = append(errs, &Error{File: f.Name, Line: v.Line, Col: v.Col, Field: "RPT_MISSED", Msg: fmt.Sprintf("%q: want skip or once", v.Value)})
				}
			}
			if req, ok := reqs[e]; ok {
				if len(e.Words) != 1 {
					errs = append(errs, &Error{File: f.Name, Line: e.Line, Col: e.CommandCol, Field: "command",
						Msg: "rpt cron run submits an rpt submit line in process: give it alone (a pipe or a second command would not run; the runner logs each submit as JSON itself)"})
				}
				req.Origin = queue.OriginCron
				rl.submit = &req
			}
			r.lines = append(r.lines, rl)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}

func (r *Runner) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

func (r *Runner) sleep(ctx context.Context, d time.Duration) {
	if r.Sleep != nil {
		r.Sleep(ctx, d)
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Run runs every line (and database schedule) at each of its occurrences after now
// until ctx ends (SIGTERM), then returns nil: an occurrence already started finishes,
// no new one is taken. Occurrences missed while the runner was not running are skipped,
// unless the line's or schedule's missed-run policy is once (catchUp).
func (r *Runner) Run(ctx context.Context) error {
	from := r.now()
	r.catchUp(ctx, from)
	for ctx.Err() == nil {
		r.reloadIfChanged()
		next := time.Time{}
		for _, l := range r.lines {
			if t := l.e.Schedule.Next(from, l.e.Loc); !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
		if r.Schedules != nil || len(r.watch) > 0 {
			// Schedules change in the database and files on disk: look again at the
			// next minute at least.
			if m := from.Truncate(time.Minute).Add(time.Minute); next.IsZero() || m.Before(next) {
				next = m
			}
		}
		if next.IsZero() {
			r.Log.Info("no line ever runs again; stopping")
			return nil
		}
		for {
			d := next.Sub(r.now())
			if d <= 0 || ctx.Err() != nil {
				break
			}
			r.sleep(ctx, min(d, time.Minute))
		}
		if ctx.Err() != nil {
			break
		}
		r.RunDue(ctx, from, next)
		r.schedulesDue(ctx, from, next)
		from = next
	}
	r.Log.Info("stopping: no new occurrences are taken")
	return nil
}

// RunDue runs every occurrence in (from, to], in order.
func (r *Runner) RunDue(ctx context.Context, from, to time.Time) {
	for _, l := range r.lines {
		for at := l.e.Schedule.Next(from, l.e.Loc); !at.IsZero() && !at.After(to); at = l.e.Schedule.Next(at, l.e.Loc) {
			if ctx.Err() != nil {
				return
			}
			r.fire(ctx, l, at)
		}
	}
}

func (r *Runner) fire(ctx context.Context, l runLine, occ time.Time) {
	attrs := []any{"file", l.file, "line", l.e.Line, "occurrence", occ.UTC().Format(time.RFC3339)}
	if l.submit != nil {
		req := *l.submit
		req.Occurrence = occ
		res, err := r.Jobs.Submit(ctx, req)
		if err != nil {
			r.Log.Error("submit failed", append(attrs, "report", req.Report, "error", err.Error())...)
			return
		}
		r.Log.Info("submitted", append(attrs, "report", req.Report, "job", res.Job.ID, "queued", res.Queued)...)
		return
	}
	shell := r.Shell
	if shell == "" {
		shell = "/bin/sh"
	}
	cmd := exec.CommandContext(ctx, shell, "-c", l.e.Command)
	env := []string{"PATH=" + cronPath}
	for _, v := range l.e.Env {
		env = append(env, v.Name+"="+v.Value)
	}
	cmd.Env = env
	cmd.Stdin = strings.NewReader(l.e.Stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	output := out.String()
	if len(output) > 4096 {
		output = output[:4096] + "..."
	}
	status := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		status = ee.ExitCode()
	case err != nil:
		r.Log.Error("command did not start", append(attrs, "error", err.Error())...)
		return
	}
	r.Log.Info("ran", append(attrs, "exit_status", status, "output", output)...)
}

// String names the runner's lines, for its start-up log.
func (r *Runner) String() string {
	var b strings.Builder
	for _, l := range r.lines {
		kind := "sh"
		if l.submit != nil {
			kind = "submit " + l.submit.Report
		}
		fmt.Fprintf(&b, "%s:%d %s (%s); ", l.file, l.e.Line, l.e.Spec, kind)
	}
	return strings.TrimSuffix(b.String(), "; ")
}
