package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"rpt/crontab"
	"rpt/internal/api"
	"rpt/internal/config"
	"rpt/internal/jobs"
	"rpt/internal/queue"
)

// crontabSchedules is the adapter cli gives the API, over the real crontab.Schedules.
type crontabSchedules struct {
	st  queue.Store
	svc *jobs.Service
}

func (c crontabSchedules) s(by string) *crontab.Schedules {
	svc := *c.svc
	svc.SubmittedBy = by
	return &crontab.Schedules{Store: c.st, Jobs: &svc}
}
func (c crontabSchedules) List(ctx context.Context) ([]api.ScheduleView, error) {
	l, err := c.s("").List(ctx)
	var out []api.ScheduleView
	for _, v := range l {
		out = append(out, api.ScheduleView{Schedule: v.Schedule, Next: v.Next})
	}
	return out, err
}
func (c crontabSchedules) Add(ctx context.Context, s api.ScheduleSpec, by string) (queue.Schedule, error) {
	return c.s(by).Add(ctx, crontab.ScheduleSpec{Name: s.Name, Cron: s.Cron, Timezone: s.Timezone, Report: s.Report, Params: s.Params, Deliver: s.Deliver, Missed: s.Missed})
}
func (c crontabSchedules) Update(ctx context.Context, name string, ch api.ScheduleChange) (queue.Schedule, error) {
	return c.s("").Update(ctx, name, crontab.ScheduleChange{Cron: ch.Cron, Timezone: ch.Timezone, Report: ch.Report, Missed: ch.Missed, Params: ch.Params, Deliver: ch.Deliver})
}
func (c crontabSchedules) Delete(ctx context.Context, name string) error {
	return c.s("").Delete(ctx, name)
}
func (c crontabSchedules) Hold(ctx context.Context, name string, held bool) (queue.Schedule, error) {
	if held {
		return c.s("").Hold(ctx, name)
	}
	return c.s("").Resume(ctx, name)
}

// Schedules over HTTP: add (validated as rpt schedules add: 422 naming the field),
// list with the next run, update, hold, resume, delete; who added is the token.
func TestSchedules(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		sub := f.tokens[queue.RoleSubmitter]
		r := f.do("POST", "/api/v1/schedules", sub, `{"name":"weekly","cron":"61 19 * * 1","report":"numbers","params":{"n":"3"}}`)
		if _, _, field := r.errorOf(t); r.status != 422 || field != "cron" {
			t.Errorf("bad cron: %d %s", r.status, r.body)
		}
		r = f.do("POST", "/api/v1/schedules", sub, `{"name":"weekly","cron":"10 19 * * 1","report":"numbers","params":{"n":"3"},"sql":"x"}`)
		if _, _, field := r.errorOf(t); r.status != 400 || field != "sql" {
			t.Errorf("unknown field: %d %s", r.status, r.body)
		}
		r = f.do("POST", "/api/v1/schedules", sub, `{"name":"weekly","cron":"10 19 * * 1","timezone":"UTC","report":"numbers","params":{"n":"3"}}`)
		if r.status != 201 || r.json(t)["created_by"] != "api:submitter-1" {
			t.Fatalf("add: %d %s", r.status, r.body)
		}
		r = f.do("GET", "/api/v1/schedules", f.tokens[queue.RoleViewer], "")
		if r.status != 200 || !strings.Contains(string(r.body), `"name": "weekly"`) || !strings.Contains(string(r.body), `T19:10:00Z"`) {
			t.Errorf("list: %d %s", r.status, r.body)
		}
		r = f.do("PATCH", "/api/v1/schedules/weekly", sub, `{"cron":"20 7 * * *"}`)
		if r.status != 200 || r.json(t)["cron"] != "20 7 * * *" {
			t.Errorf("update: %d %s", r.status, r.body)
		}
		if r := f.do("POST", "/api/v1/schedules/weekly/hold", sub, ""); r.status != 200 || r.json(t)["held"] != true {
			t.Errorf("hold: %d %s", r.status, r.body)
		}
		if r := f.do("POST", "/api/v1/schedules/weekly/resume", sub, ""); r.status != 200 || r.json(t)["held"] != false {
			t.Errorf("resume: %d %s", r.status, r.body)
		}
		if r := f.do("DELETE", "/api/v1/schedules/weekly", sub, ""); r.status != 200 {
			t.Errorf("delete: %d %s", r.status, r.body)
		}
		if r := f.do("DELETE", "/api/v1/schedules/weekly", sub, ""); r.status != http.StatusNotFound {
			t.Errorf("delete again: %d %s", r.status, r.body)
		}
	})
}

// A schedule's delivery target that is not one is a 422 naming deliver, wherever it
// stands in the list (the field comes with the error, not from its first words); a
// refused one queues no schedule.
func TestScheduleDeliverField(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		f.cfg.SMTP = &config.SMTP{Host: "smtp.plant.example", Port: 587, TLS: "starttls", From: "reports@plant.example"}
		f.cfg.Deliver.EmailDomains = []string{"plant.example"}
		sub := f.tokens[queue.RoleSubmitter]
		for _, c := range []struct{ name, deliver, inMsg string }{
			{"alone", `["ftp://plant.example/x"]`, "--deliver: "},
			{"second of two", `["mailto:ap@plant.example","ftp://plant.example/x"]`, "--deliver[1]: "},
		} {
			r := f.do("POST", "/api/v1/schedules", sub, `{"name":"weekly","cron":"10 19 * * 1","report":"numbers","params":{"n":"3"},"deliver":`+c.deliver+`}`)
			if _, msg, field := r.errorOf(t); r.status != 422 || field != "deliver" || !strings.Contains(msg, c.inMsg) {
				t.Errorf("%s: %d field %q (%s), want 422 on deliver saying %q", c.name, r.status, field, msg, c.inMsg)
			}
		}
		r := f.do("GET", "/api/v1/schedules", f.tokens[queue.RoleViewer], "")
		if r.status != 200 || strings.Contains(string(r.body), "weekly") {
			t.Errorf("schedules after refused adds: %d %s, want none", r.status, r.body)
		}
	})
}
