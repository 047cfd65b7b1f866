package web

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"rpt/internal/errclass"
	"rpt/internal/queue"
)

// Schedules is what the schedules page needs of the database schedules (rpt
// schedules). crontab.Schedules does the work; it sits in this package's layer, so
// the command line hands it in through this interface.
type Schedules interface {
	List(ctx context.Context) ([]ScheduleRow, error)
	// Add validates and stores a schedule as rpt schedules add does; by is who adds it.
	Add(ctx context.Context, in ScheduleInput, by string) error
	Delete(ctx context.Context, name string) error
	Hold(ctx context.Context, name string, held bool) error
}

// ScheduleRow is a schedule with its next occurrence (nil: held, or never).
type ScheduleRow struct {
	queue.Schedule
	Next *time.Time
}

// ScheduleInput is the add form.
type ScheduleInput struct {
	Name, Cron, Timezone, Report string
	Params                       map[string]string
}

// scheduleField finds the field a schedule error names ("cron: ...", "param \"x\"").
var scheduleField = regexp.MustCompile(`^(name|cron|timezone|report|params?)\b`)

func (s *Server) schedules(w http.ResponseWriter, r *http.Request) {
	s.schedulesPage(w, r, http.StatusOK, ScheduleInput{}, "", "")
}

func (s *Server) schedulesPage(w http.ResponseWriter, r *http.Request, status int, in ScheduleInput, params, formErr string) {
	list, err := s.Schedules.List(r.Context())
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	cat, err := s.Jobs.Catalog()
	if err != nil {
		s.errorPage(w, r, err)
		return
	}
	// crontab names fields as rpt schedules add's flags (--cron: ...); the form's
	// fields have the same names.
	formErr = strings.TrimPrefix(formErr, "--")
	field := ""
	if m := scheduleField.FindStringSubmatch(formErr); m != nil {
		field = strings.TrimSuffix(m[1], "s")
	}
	s.render(w, r, status, "schedules", map[string]any{"Title": "Schedules", "Schedules": list, "Reports": cat.List(),
		"In": in, "ParamText": params, "Error": formErr, "ErrorField": field})
}

// parseParams reads the add form's parameters: one name=value a line.
func parseParams(text string) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, errclass.Errorf(errclass.Invalid, "params: line %d %q: want name=value", i+1, line)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

func (s *Server) addSchedule(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, errclass.Errorf(errclass.Invalid, "the form could not be read: %v", err))
		return
	}
	f := r.PostForm
	in := ScheduleInput{Name: strings.TrimSpace(f.Get("name")), Cron: strings.TrimSpace(f.Get("cron")),
		Timezone: strings.TrimSpace(f.Get("timezone")), Report: f.Get("report")}
	params, err := parseParams(f.Get("params"))
	if err == nil {
		in.Params = params
		err = s.Schedules.Add(r.Context(), in, "web:"+caller(r).Name)
	}
	if err != nil {
		if c := jobClass(err); c != errclass.Invalid && c != errclass.NotFound && c != errclass.Conflict {
			s.errorPage(w, r, err)
			return
		}
		s.schedulesPage(w, r, http.StatusUnprocessableEntity, in, f.Get("params"), err.Error())
		return
	}
	http.Redirect(w, r, "/schedules", http.StatusSeeOther)
}

func (s *Server) scheduleAction(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var err error
	switch r.PathValue("action") {
	case "delete":
		err = s.Schedules.Delete(r.Context(), name)
	case "hold":
		err = s.Schedules.Hold(r.Context(), name, true)
	case "resume":
		err = s.Schedules.Hold(r.Context(), name, false)
	default:
		err = errclass.Errorf(errclass.NotFound, "%s: no such action on a schedule", r.PathValue("action"))
	}
	if err != nil {
		s.errorPage(w, r, fmt.Errorf("schedule %q: %w", name, err))
		return
	}
	http.Redirect(w, r, "/schedules", http.StatusSeeOther)
}
