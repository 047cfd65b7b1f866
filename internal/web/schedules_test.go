package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"rpt/crontab"
	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/web"
)

// crontabSchedules is the adapter cli gives the web app, over the real crontab.Schedules.
type crontabSchedules struct {
	st  queue.Store
	svc *jobs.Service
}

func (c crontabSchedules) s(by string) *crontab.Schedules {
	svc := *c.svc
	svc.SubmittedBy = by
	return &crontab.Schedules{Store: c.st, Jobs: &svc}
}

func (c crontabSchedules) List(ctx context.Context) ([]web.ScheduleRow, error) {
	l, err := c.s("").List(ctx)
	var out []web.ScheduleRow
	for _, v := range l {
		out = append(out, web.ScheduleRow{Schedule: v.Schedule, Next: v.Next})
	}
	return out, err
}
func (c crontabSchedules) Add(ctx context.Context, in web.ScheduleInput, by string) error {
	_, err := c.s(by).Add(ctx, crontab.ScheduleSpec{Name: in.Name, Cron: in.Cron, Timezone: in.Timezone, Report: in.Report, Params: in.Params})
	return err
}
func (c crontabSchedules) Delete(ctx context.Context, name string) error {
	return c.s("").Delete(ctx, name)
}
func (c crontabSchedules) Hold(ctx context.Context, name string, held bool) error {
	var err error
	if held {
		_, err = c.s("").Hold(ctx, name)
	} else {
		_, err = c.s("").Resume(ctx, name)
	}
	return err
}

// The schedules page: add (validated as rpt schedules add, the error beside the form),
// hold, resume, delete; a viewer sees and changes nothing; a cross-site post is refused.
func TestSchedulesPage(t *testing.T) {
	f := newFixture(t, time.UTC)
	svc := &jobs.Service{Store: f.st, Config: f.cfg, Loc: time.UTC}
	s := &web.Server{Jobs: svc, Schedules: crontabSchedules{st: f.st, svc: svc}}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	f.srv = srv
	sub := f.login(queue.RoleSubmitter)
	if p := f.send(sub, "GET", "/schedules", nil); p.status != 200 || !strings.Contains(p.body, "No schedules yet") || !strings.Contains(p.body, `href="/schedules"`) {
		t.Fatalf("schedules page: %d", p.status)
	}
	bad := f.send(sub, "POST", "/schedules", url.Values{"name": {"weekly"}, "cron": {"61 19 * * 1"}, "report": {"numbers"}, "params": {"n=3"}})
	if bad.status != http.StatusUnprocessableEntity || !regexp.MustCompile(`id="s-cron"[^>]*aria-invalid="true"`).MatchString(bad.body) {
		t.Errorf("a bad cron: %d\n%s", bad.status, bad.body)
	}
	if !strings.Contains(bad.body, `value="weekly"`) {
		t.Errorf("the form lost its values")
	}
	badParam := f.send(sub, "POST", "/schedules", url.Values{"name": {"weekly"}, "cron": {"10 19 * * 1"}, "report": {"numbers"}, "params": {"n=seven"}})
	if badParam.status != http.StatusUnprocessableEntity || !strings.Contains(badParam.body, "seven") {
		t.Errorf("a bad parameter: %d", badParam.status)
	}
	form := url.Values{"name": {"weekly"}, "cron": {"10 19 * * 1"}, "report": {"numbers"}, "params": {"n=3"}}
	if p := f.send(sub, "POST", "/schedules", form, "Sec-Fetch-Site", "cross-site"); p.status != http.StatusForbidden {
		t.Errorf("a cross-site add: %d", p.status)
	}
	if p := f.send(f.login(queue.RoleViewer), "POST", "/schedules", form); p.status != http.StatusForbidden {
		t.Errorf("a viewer's add: %d", p.status)
	}
	if l, _ := f.st.ScheduleList(context.Background()); len(l) != 0 {
		t.Fatalf("refused adds stored %d schedules", len(l))
	}
	if p := f.send(sub, "POST", "/schedules", form); p.status != http.StatusSeeOther {
		t.Fatalf("add: %d %s", p.status, p.body)
	}
	l, err := f.st.ScheduleList(context.Background())
	if err != nil || len(l) != 1 || l[0].CreatedBy != "web:submitter-1" || l[0].Params["n"] != "3" {
		t.Fatalf("stored: %+v %v", l, err)
	}
	p := f.send(sub, "GET", "/schedules", nil)
	if !strings.Contains(p.body, `data-schedule="weekly"`) || !regexp.MustCompile(`\d{4}-\d\d-\d\d 19:10:00 UTC`).MatchString(p.body) {
		t.Errorf("the list lacks the schedule or its next run:\n%s", p.body)
	}
	if p := f.send(sub, "POST", "/schedules/weekly/hold", url.Values{}); p.status != http.StatusSeeOther {
		t.Errorf("hold: %d", p.status)
	}
	if l, _ := f.st.ScheduleList(context.Background()); !l[0].Held {
		t.Errorf("not held")
	}
	if p := f.send(sub, "POST", "/schedules/weekly/resume", url.Values{}); p.status != http.StatusSeeOther {
		t.Errorf("resume: %d", p.status)
	}
	if p := f.send(f.login(queue.RoleViewer), "POST", "/schedules/weekly/delete", url.Values{}); p.status != http.StatusForbidden {
		t.Errorf("a viewer's delete: %d", p.status)
	}
	if p := f.send(sub, "POST", "/schedules/weekly/delete", url.Values{}); p.status != http.StatusSeeOther {
		t.Errorf("delete: %d", p.status)
	}
	if l, _ := f.st.ScheduleList(context.Background()); len(l) != 0 {
		t.Errorf("%d schedules after delete", len(l))
	}
	if p := f.send(sub, "POST", "/schedules/nosuch/delete", url.Values{}); p.status != http.StatusNotFound {
		t.Errorf("delete an unknown schedule: %d", p.status)
	}
}
