package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"rpt/internal/api"
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
