package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"rpt/internal/api"
	"rpt/internal/config"
	"rpt/internal/jobs"
	"rpt/internal/queue"
)

// The old POST /report: a submitter's token, the old body, 422 on any bad input, and
// the job queued as POST /api/v1/jobs queues it.
func TestLegacyReport(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		sub := f.tokens[queue.RoleSubmitter]
		if r := f.do("POST", "/report", "", `{"report_name":"periods"}`); r.status != 401 {
			t.Errorf("without a token: %d", r.status)
		}
		if r := f.do("POST", "/report", f.tokens[queue.RoleViewer], `{"report_name":"periods"}`); r.status != 403 {
			t.Errorf("as a viewer: %d", r.status)
		}
		for _, c := range []struct{ name, body, field string }{
			{"no report", `{"start_period":"202601"}`, "report_name"},
			{"unknown report", `{"report_name":"nosuch","start_period":"202601","end_period":"202601"}`, "report_name"},
			{"bad period", `{"report_name":"periods","start_period":"2026-13","end_period":"202601"}`, "start_period"},
			{"missing period", `{"report_name":"periods","start_period":"202601"}`, "end_period"},
			{"bad email", `{"report_name":"periods","start_period":"202601","end_period":"202601","email":"nobody"}`, "email"},
			{"unknown field", `{"report_name":"periods","sql":"DELETE FROM rpt_jobs"}`, "sql"},
			{"not json", `report_name=periods`, ""},
		} {
			r := f.do("POST", "/report", sub, c.body)
			if _, msg, field := r.errorOf(t); r.status != 422 || field != c.field {
				t.Errorf("%s: %d field %q (%s), want 422 %q", c.name, r.status, field, msg, c.field)
			}
		}
		if n := f.countJobs(); n != 0 {
			t.Fatalf("%d jobs queued by refused calls", n)
		}
		r := f.do("POST", "/report", sub, `{"report_name":"periods","start_period":"202601","end_period":"202603","email":"ap@plant.example"}`)
		v := r.json(t)
		if r.status != 201 || v["job_id"] == nil || v["result"] == nil || v["email"] != "ap@plant.example" {
			t.Fatalf("legacy submit: %d %s", r.status, r.body)
		}
		j, err := f.st.JobGet(context.Background(), int64(v["job_id"].(float64)))
		if err != nil || string(j.Params) != `{"end_period":202603,"start_period":202601}` || j.SubmittedBy != "api:submitter-1" {
			t.Errorf("queued job: %+v %v", j, err)
		}
		// Off unless asked for.
		off := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/report", strings.NewReader(`{"report_name":"periods"}`))
		req.Header.Set("Authorization", "Bearer "+sub)
		(&api.Server{Jobs: &jobs.Service{Store: f.st}}).Handler().ServeHTTP(off, req)
		if off.Code != http.StatusNotFound {
			t.Errorf("POST /report without Legacy: %d, want 404", off.Code)
		}
	})
}

// Where smtp: is configured, the old call's email becomes the job's mailto: delivery,
// held to deliver.email_domains like any other: an address outside them is refused as
// on POST /api/v1/jobs (403, a policy refusal rather than bad input, naming email) and
// queues nothing.
func TestLegacyReportDelivers(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		f.cfg.SMTP = &config.SMTP{Host: "smtp.plant.example", Port: 587, TLS: "starttls", From: "reports@plant.example"}
		f.cfg.Deliver.EmailDomains = []string{"plant.example"}
		sub := f.tokens[queue.RoleSubmitter]
		r := f.do("POST", "/report", sub, `{"report_name":"periods","start_period":"202601","end_period":"202601","email":"ap@other.example"}`)
		if _, msg, field := r.errorOf(t); r.status != 403 || field != "email" {
			t.Fatalf("an address outside the allowed domains: %d field %q (%s), want 403 on email", r.status, field, msg)
		}
		if n := f.countJobs(); n != 0 {
			t.Fatalf("%d jobs queued by a refused delivery", n)
		}
		r = f.do("POST", "/report", sub, `{"report_name":"periods","start_period":"202601","end_period":"202601","email":"ap@plant.example"}`)
		v := r.json(t)
		if r.status != 201 || v["delivered"] != true {
			t.Fatalf("legacy submit with smtp configured: %d %s", r.status, r.body)
		}
		ds, err := f.st.DeliveryList(context.Background(), int64(v["job_id"].(float64)))
		if err != nil || len(ds) != 1 || ds[0].Target != "mailto:ap@plant.example" {
			t.Fatalf("deliveries of the job: %+v %v, want one to mailto:ap@plant.example", ds, err)
		}
	})
}

// POST /api/v1/jobs takes deliver: targets as rpt submit --deliver does: held to the
// allow lists (a webhook outside them: 403 naming deliver, nothing queued), a bad target
// a 400 naming deliver, an allowed one recorded on the job.
func TestSubmitDeliver(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		f.cfg.SMTP = &config.SMTP{Host: "smtp.plant.example", Port: 587, TLS: "starttls", From: "reports@plant.example"}
		f.cfg.Deliver.EmailDomains = []string{"plant.example"}
		sub := f.tokens[queue.RoleSubmitter]
		for _, c := range []struct {
			name, deliver string
			status        int
		}{
			{"webhook not allowed", `["https://evil.example/hook"]`, 403},
			{"domain not allowed", `["mailto:x@other.example"]`, 403},
			{"not a target", `["ftp://plant.example/x"]`, 400},
			{"second target not allowed", `["mailto:ap@plant.example","https://evil.example/hook"]`, 403},
		} {
			r := f.do("POST", "/api/v1/jobs", sub, `{"report":"periods","params":{"start_period":"202601","end_period":"202601"},"deliver":`+c.deliver+`}`)
			if _, msg, field := r.errorOf(t); r.status != c.status || field != "deliver" {
				t.Errorf("%s: %d field %q (%s), want %d on deliver", c.name, r.status, field, msg, c.status)
			}
		}
		if n := f.countJobs(); n != 0 {
			t.Fatalf("%d jobs queued by refused deliveries", n)
		}
		r := f.do("POST", "/api/v1/jobs", sub, `{"report":"periods","params":{"start_period":"202601","end_period":"202601"},"deliver":["mailto:ap@plant.example"]}`)
		v := r.json(t)
		if r.status != 201 {
			t.Fatalf("submit with a delivery: %d %s", r.status, r.body)
		}
		ds, err := f.st.DeliveryList(context.Background(), int64(v["id"].(float64)))
		if err != nil || len(ds) != 1 || ds[0].Target != "mailto:ap@plant.example" {
			t.Fatalf("deliveries of the job: %+v %v, want one to mailto:ap@plant.example", ds, err)
		}
	})
}
