package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"rpt/internal/errclass"
	"rpt/internal/queue"
)

// Schedules is what the schedule routes need of the database schedules (rpt
// schedules). crontab.Schedules does the work and validates every change; it sits in
// this package's layer, so the command line hands it in through this interface.
type Schedules interface {
	List(ctx context.Context) ([]ScheduleView, error)
	Add(ctx context.Context, spec ScheduleSpec, by string) (queue.Schedule, error)
	Update(ctx context.Context, name string, c ScheduleChange) (queue.Schedule, error)
	Delete(ctx context.Context, name string) error
	Hold(ctx context.Context, name string, held bool) (queue.Schedule, error)
}

// ScheduleView is a schedule with its next occurrence (null: held, or never).
type ScheduleView struct {
	queue.Schedule
	Next *time.Time `json:"next"`
}

// ScheduleSpec is POST /schedules.
type ScheduleSpec struct {
	Name     string            `json:"name"`
	Cron     string            `json:"cron"`
	Timezone string            `json:"timezone"`
	Report   string            `json:"report"`
	Params   map[string]string `json:"params"`
	Deliver  []string          `json:"deliver"`
	Missed   string            `json:"missed"`
}

// ScheduleChange is PATCH /schedules/{name}: absent fields stay as they are.
type ScheduleChange struct {
	Cron     *string           `json:"cron"`
	Timezone *string           `json:"timezone"`
	Report   *string           `json:"report"`
	Missed   *string           `json:"missed"`
	Params   map[string]string `json:"params"`
	Deliver  []string          `json:"deliver"`
}

// scheduleFail names the field a schedule error is about: crontab says "--cron: ..."
// as rpt schedules add's flags; the API's fields have the same names. A refused
// delivery target carries its field (deliver.FieldError), whatever its place in the list.
func (s *Server) scheduleFail(w http.ResponseWriter, r *http.Request, err error) {
	field := ""
	msg := err.Error()
	for _, f := range []string{"name", "cron", "timezone", "report", "missed"} {
		if strings.HasPrefix(msg, "--"+f+":") || strings.HasPrefix(msg, f+":") {
			field = f
		}
	}
	if deliverField(err) != "" {
		field = "deliver" // crontab checks the targets as --deliver; this is the API's name
	}
	if field != "" && jobsClass(err) == errclass.Invalid {
		s.failStatus(w, r, err, field, http.StatusUnprocessableEntity)
		return
	}
	s.fail(w, r, err, field)
}

func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request) {
	list, err := s.Schedules.List(r.Context())
	if err != nil {
		s.fail(w, r, err, "")
		return
	}
	if list == nil {
		list = []ScheduleView{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"schedules": list})
}

func (s *Server) addSchedule(w http.ResponseWriter, r *http.Request) {
	var b ScheduleSpec
	if field, err := decode(w, r, &b); err != nil {
		s.fail(w, r, err, field)
		return
	}
	sc, err := s.Schedules.Add(r.Context(), b, "api:"+callerOf(r).token.Name)
	if err != nil {
		s.scheduleFail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/schedules/"+sc.Name)
	writeJSON(w, http.StatusCreated, sc)
}

func (s *Server) updateSchedule(w http.ResponseWriter, r *http.Request) {
	var b ScheduleChange
	if field, err := decode(w, r, &b); err != nil {
		s.fail(w, r, err, field)
		return
	}
	sc, err := s.Schedules.Update(r.Context(), r.PathValue("name"), b)
	if err != nil {
		s.scheduleFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sc)
}

func (s *Server) deleteSchedule(w http.ResponseWriter, r *http.Request) {
	if !s.emptyBody(w, r) {
		return
	}
	if err := s.Schedules.Delete(r.Context(), r.PathValue("name")); err != nil {
		s.scheduleFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": r.PathValue("name"), "deleted": true})
}

func (s *Server) holdSchedule(held bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.emptyBody(w, r) {
			return
		}
		sc, err := s.Schedules.Hold(r.Context(), r.PathValue("name"), held)
		if err != nil {
			s.scheduleFail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, sc)
	}
}
