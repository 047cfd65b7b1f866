package crontab

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"rpt/internal/errclass"
	"rpt/internal/jobs"
	"rpt/internal/queue"
)

// Schedules are the schedules kept in the queue database (rpt schedules): add, update,
// delete, hold, resume, list with each one's last and next occurrence, and render as a
// crontab file. Every change is validated as rpt submit and rpt cron lint would (the
// cron expression, the zone, the report, its parameters and deliveries), so a stored
// schedule is one that runs. The runner (Runner.Schedules) ticks them.
//
// This is the Go API for every front door (rpt schedules now; the HTTP API and web app
// next): inputs are plain structs, errors carry an errclass class naming the field.
type Schedules struct {
	Store queue.Schedules
	Jobs  *jobs.Service
}

// ScheduleSpec is a schedule as a front door gives it.
type ScheduleSpec struct {
	Name     string
	Cron     string
	Timezone string // "": the configured zone (jobs.Service.Loc)
	Report   string
	Params   map[string]string
	Deliver  []string
	Missed   string // "" or skip; once
}

var scheduleNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ScheduleView is a schedule with what list and show print.
type ScheduleView struct {
	queue.Schedule
	Next    *time.Time `json:"next"`     // nil: never (or held)
	LastJob *queue.Job `json:"last_job"` // the job of the last occurrence, if still kept
}

func invalid(field, format string, args ...any) error {
	return errclass.Errorf(errclass.Invalid, "%s: %s", field, fmt.Sprintf(format, args...))
}

// check validates spec and returns the row to store.
func (s *Schedules) check(spec ScheduleSpec, now time.Time) (queue.Schedule, error) {
	if !scheduleNameRE.MatchString(spec.Name) {
		return queue.Schedule{}, invalid("name", "%q: want 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", spec.Name)
	}
	sched, err := ParseSchedule(spec.Cron)
	if err != nil {
		msg := err.Error()
		var es Errors
		if errors.As(err, &es) && len(es) > 0 {
			msg = fmt.Sprintf("column %d: %s: %s", es[0].Col, es[0].Field, es[0].Msg)
		}
		return queue.Schedule{}, invalid("--cron", "%q: %s", spec.Cron, msg)
	}
	if strings.ContainsAny(spec.Cron, "\n\r") {
		return queue.Schedule{}, invalid("--cron", "%q: one line", spec.Cron)
	}
	tz := spec.Timezone
	if tz == "" {
		tz = "UTC"
		if s.Jobs != nil && s.Jobs.Loc != nil && s.Jobs.Loc.String() != "Local" {
			tz = s.Jobs.Loc.String()
		}
	}
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "Local" {
		return queue.Schedule{}, invalid("--timezone", "%q: unknown time zone (want an IANA name such as America/Indiana/Indianapolis)", tz)
	}
	missed := spec.Missed
	if missed == "" {
		missed = queue.MissedSkip
	}
	if missed != queue.MissedSkip && missed != queue.MissedOnce {
		return queue.Schedule{}, invalid("--missed", "%q: want skip or once", missed)
	}
	next := sched.Next(now, loc)
	if next.IsZero() {
		return queue.Schedule{}, invalid("--cron", "%q never runs: no date has this day-of-month in these months", spec.Cron)
	}
	if s.Jobs != nil {
		req := jobs.SubmitRequest{Report: spec.Report, Params: spec.Params, Deliver: spec.Deliver, DeliverField: "--deliver", Occurrence: next, OnceKey: "check"}
		if err := s.Jobs.Check(req); err != nil {
			return queue.Schedule{}, err
		}
	}
	params := spec.Params
	if params == nil {
		params = map[string]string{}
	}
	return queue.Schedule{Name: spec.Name, Cron: strings.TrimSpace(spec.Cron), Timezone: tz, Report: spec.Report, Params: params,
		Deliver: slices.Clone(spec.Deliver), Missed: missed}, nil
}

func (s *Schedules) now() time.Time {
	if s.Jobs != nil && s.Jobs.Now != nil {
		return s.Jobs.Now()
	}
	return time.Now()
}

// Add validates and stores a new schedule.
func (s *Schedules) Add(ctx context.Context, spec ScheduleSpec) (queue.Schedule, error) {
	row, err := s.check(spec, s.now())
	if err != nil {
		return queue.Schedule{}, err
	}
	if s.Jobs != nil {
		row.CreatedBy = s.Jobs.SubmittedBy
	}
	if row.CreatedBy == "" {
		row.CreatedBy = jobs.Submitter()
	}
	return s.Store.ScheduleCreate(ctx, row)
}

// ScheduleChange is what Update changes: nil fields stay as they are.
type ScheduleChange struct {
	Cron, Timezone, Report, Missed *string
	Params                         map[string]string // replaces all parameters when not nil
	Deliver                        []string          // replaces all deliveries when not nil
}

// Update changes a schedule, validating the result as Add does.
func (s *Schedules) Update(ctx context.Context, name string, c ScheduleChange) (queue.Schedule, error) {
	cur, err := s.Store.ScheduleGet(ctx, name)
	if err != nil {
		return queue.Schedule{}, err
	}
	spec := ScheduleSpec{Name: cur.Name, Cron: cur.Cron, Timezone: cur.Timezone, Report: cur.Report, Params: cur.Params, Deliver: cur.Deliver, Missed: cur.Missed}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&spec.Cron, c.Cron)
	set(&spec.Timezone, c.Timezone)
	set(&spec.Report, c.Report)
	set(&spec.Missed, c.Missed)
	if c.Params != nil {
		spec.Params = c.Params
	}
	if c.Deliver != nil {
		spec.Deliver = c.Deliver
	}
	row, err := s.check(spec, s.now())
	if err != nil {
		return queue.Schedule{}, err
	}
	return s.Store.ScheduleUpdate(ctx, row)
}

// Delete, Hold and Resume act on one schedule by name.
func (s *Schedules) Delete(ctx context.Context, name string) error {
	return s.Store.ScheduleDelete(ctx, name)
}
func (s *Schedules) Hold(ctx context.Context, name string) (queue.Schedule, error) {
	return s.Store.ScheduleHold(ctx, name, true)
}
func (s *Schedules) Resume(ctx context.Context, name string) (queue.Schedule, error) {
	return s.Store.ScheduleHold(ctx, name, false)
}

// List lists schedules with their next occurrence and the job of their last one.
func (s *Schedules) List(ctx context.Context) ([]ScheduleView, error) {
	list, err := s.Store.ScheduleList(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]ScheduleView, 0, len(list))
	for _, sc := range list {
		out = append(out, s.view(ctx, sc, now))
	}
	return out, nil
}

// Show is one schedule as List gives it.
func (s *Schedules) Show(ctx context.Context, name string) (ScheduleView, error) {
	sc, err := s.Store.ScheduleGet(ctx, name)
	if err != nil {
		return ScheduleView{}, err
	}
	return s.view(ctx, sc, s.now()), nil
}

func (s *Schedules) view(ctx context.Context, sc queue.Schedule, now time.Time) ScheduleView {
	v := ScheduleView{Schedule: sc}
	if !sc.Held {
		if sched, loc, err := parsed(sc); err == nil {
			if t := sched.Next(now, loc); !t.IsZero() {
				v.Next = &t
			}
		}
	}
	if sc.LastJobID != 0 && s.Jobs != nil && s.Jobs.Store != nil {
		if j, err := s.Jobs.Store.JobGet(ctx, sc.LastJobID); err == nil {
			v.LastJob = j
		}
	}
	return v
}

func parsed(sc queue.Schedule) (*Schedule, *time.Location, error) {
	sched, err := ParseSchedule(sc.Cron)
	if err != nil {
		return nil, nil, err
	}
	loc, err := time.LoadLocation(sc.Timezone)
	if err != nil {
		return nil, nil, err
	}
	return sched, loc, nil
}

// ScheduleOnceKey is the once key of one occurrence of a database schedule: every
// runner computes the same one, so the queue keeps one job per occurrence.
func ScheduleOnceKey(name string, occ time.Time) string {
	return "schedule:" + name + "@" + occ.UTC().Truncate(time.Minute).Format(time.RFC3339)
}

// Render writes the schedules as a crontab file for a host's cron: each under its
// CRON_TZ, as an rpt submit line with --once-per 1m (one job per occurrence from any
// number of nodes), held ones commented out. exe is the rpt binary's path, config the
// rpt.yaml cron's lines are to use.
func Render(list []queue.Schedule, exe, config string) string {
	var b strings.Builder
	b.WriteString("# rpt schedules from the queue database, as a crontab file (rpt cron render).\n")
	b.WriteString("# Held schedules are commented out. Check it with rpt cron lint.\n")
	fmt.Fprintf(&b, "RPT_CONFIG=%s\nMAILTO=\"\"\n", config)
	sorted := slices.Clone(list)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	tz := ""
	for _, sc := range sorted {
		if sc.Timezone != tz {
			tz = sc.Timezone
			fmt.Fprintf(&b, "\nCRON_TZ=%s\n", tz)
		}
		fmt.Fprintf(&b, "# %s", sc.Name)
		if sc.Held {
			b.WriteString(" (held)")
		}
		if sc.Missed == queue.MissedOnce {
			b.WriteString(" (missed: once; cron itself skips missed runs)")
		}
		b.WriteString("\n")
		if sc.Held {
			b.WriteString("# ")
		}
		words := []string{exe, "submit", sc.Report}
		keys := make([]string, 0, len(sc.Params))
		for k := range sc.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			words = append(words, "-p", k+"="+sc.Params[k])
		}
		for _, d := range sc.Deliver {
			words = append(words, "--deliver", d)
		}
		words = append(words, "--once-per", "1m")
		for i, w := range words {
			words[i] = shellQuote(w)
		}
		fmt.Fprintf(&b, "%s  %s\n", sc.Cron, strings.Join(words, " "))
	}
	return b.String()
}

// shellQuote quotes a word for /bin/sh when it needs it, and escapes '%' for cron.
func shellQuote(w string) string {
	safe := w != ""
	for _, c := range w {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./:=@,+", c)) {
			safe = false
			break
		}
	}
	if !safe {
		w = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.ReplaceAll(w, "%", `\%`)
}

// prev is the latest occurrence of sched at or before t and after floor (zero: none),
// found by walking forward from floor; at most limit steps.
func prev(sched *Schedule, loc *time.Location, floor, t time.Time) time.Time {
	var last time.Time
	at := floor
	for range 200000 {
		n := sched.Next(at, loc)
		if n.IsZero() || n.After(t) {
			break
		}
		last, at = n, n
	}
	return last
}

// fireSchedule submits one occurrence of a database schedule and records it.
func (r *Runner) fireSchedule(ctx context.Context, sc queue.Schedule, occ time.Time, why string) {
	attrs := []any{"schedule", sc.Name, "occurrence", occ.UTC().Format(time.RFC3339), "report", sc.Report}
	if why != "" {
		attrs = append(attrs, "why", why)
	}
	req := jobs.SubmitRequest{Report: sc.Report, Params: sc.Params, Deliver: sc.Deliver, DeliverField: "deliver", Occurrence: occ,
		OnceKey: ScheduleOnceKey(sc.Name, occ), Origin: queue.OriginCron}
	res, err := r.Jobs.Submit(ctx, req)
	if err != nil {
		r.Log.Error("submit failed", append(attrs, "error", err.Error())...)
		return
	}
	if err := r.Schedules.Store.ScheduleFired(ctx, sc.Name, occ, res.Job.ID); err != nil {
		r.Log.Warn("recording the schedule's run failed", append(attrs, "error", err.Error())...)
	}
	r.Log.Info("submitted", append(attrs, "job", res.Job.ID, "queued", res.Queued)...)
}

// schedulesDue fires every occurrence in (from, to] of the schedules not held.
func (r *Runner) schedulesDue(ctx context.Context, from, to time.Time) {
	if r.Schedules == nil {
		return
	}
	list, err := r.Schedules.Store.ScheduleList(ctx)
	if err != nil {
		r.Log.Error("list schedules", "error", err.Error())
		return
	}
	for _, sc := range list {
		if sc.Held {
			continue
		}
		sched, loc, err := parsed(sc)
		if err != nil {
			r.Log.Error("schedule does not parse", "schedule", sc.Name, "error", err.Error())
			continue
		}
		for at := sched.Next(from, loc); !at.IsZero() && !at.After(to); at = sched.Next(at, loc) {
			if ctx.Err() != nil {
				return
			}
			r.fireSchedule(ctx, sc, at, "")
		}
	}
}

// catchUp runs, for each database schedule and file line whose missed-run policy is
// once, its latest occurrence before start, once: a runner restarted after downtime
// queues what it missed, and several runners starting together queue it once (the
// once key). A schedule's occurrence before it was created or at or before its last
// recorded one is not missed. File lines have no record: their latest occurrence in
// the last 8 days is submitted, and the once key (--once-per, required) makes that a
// no-op when it ran.
func (r *Runner) catchUp(ctx context.Context, start time.Time) {
	for _, l := range r.lines {
		if l.submit == nil || !l.missedOnce {
			continue
		}
		if l.submit.OncePer == 0 && l.submit.Dedupe == "" {
			r.Log.Warn("RPT_MISSED=once needs --once-per on the line to run a missed occurrence only once; not caught up", "file", l.file, "line", l.e.Line)
			continue
		}
		if at := prev(l.e.Schedule, l.e.Loc, start.Add(-8*24*time.Hour), start); !at.IsZero() {
			r.Log.Info("catching up a missed occurrence (RPT_MISSED=once)", "file", l.file, "line", l.e.Line, "occurrence", at.UTC().Format(time.RFC3339))
			r.fire(ctx, l, at)
		}
	}
	if r.Schedules == nil {
		return
	}
	list, err := r.Schedules.Store.ScheduleList(ctx)
	if err != nil {
		r.Log.Error("list schedules", "error", err.Error())
		return
	}
	for _, sc := range list {
		if sc.Held || sc.Missed != queue.MissedOnce {
			continue
		}
		sched, loc, err := parsed(sc)
		if err != nil {
			continue
		}
		floor := sc.CreatedAt
		if sc.LastOccurrence != nil && sc.LastOccurrence.After(floor) {
			floor = *sc.LastOccurrence
		}
		if y := start.Add(-366 * 24 * time.Hour); floor.Before(y) {
			floor = y
		}
		if at := prev(sched, loc, floor, start); !at.IsZero() {
			r.fireSchedule(ctx, sc, at, "missed while no runner ran (missed: once)")
		}
	}
}
