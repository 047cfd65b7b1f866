package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"rpt/internal/queue"
	"rpt/internal/results"
)

// Every route refuses a call without a token, with an unknown one and with a role too
// low, and answers one with a role high enough.
func TestRolesPerRoute(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		done := f.submit(1)
		f.run(3)
		routes := []struct {
			method, path, body string
			min                string
			ok                 int
		}{
			{"GET", "/api/v1/reports", "", queue.RoleViewer, 200},
			{"GET", "/api/v1/reports/numbers", "", queue.RoleViewer, 200},
			{"GET", "/api/v1/jobs", "", queue.RoleViewer, 200},
			{"GET", fmt.Sprintf("/api/v1/jobs/%d", done), "", queue.RoleViewer, 200},
			{"GET", fmt.Sprintf("/api/v1/jobs/%d/result", done), "", queue.RoleViewer, 200},
			{"POST", "/api/v1/jobs", `{"report":"numbers","params":{"n":5}}`, queue.RoleSubmitter, 201},
			{"POST", fmt.Sprintf("/api/v1/jobs/%d/retry", done), "", queue.RoleSubmitter, 201},
			{"POST", fmt.Sprintf("/api/v1/jobs/%d/cancel", done), "", queue.RoleSubmitter, 200},
			{"POST", "/api/v1/agents/nobody/drain", "", queue.RoleAdmin, 404},
			{"GET", "/api/v1/pauses", "", queue.RoleViewer, 200},
			{"GET", "/api/v1/events", "", queue.RoleViewer, 200},
			{"GET", "/api/v1/openapi.json", "", queue.RoleViewer, 200},
			{"GET", "/api/v1/agents", "", queue.RoleViewer, 200},
			{"GET", "/api/v1/schedules", "", queue.RoleViewer, 200},
			{"POST", "/api/v1/schedules", `{"name":"nightly-ROLE","cron":"@daily","report":"numbers","params":{"n":"1"}}`, queue.RoleSubmitter, 201},
			{"PATCH", "/api/v1/schedules/nightly-ROLE", `{"cron":"@weekly"}`, queue.RoleSubmitter, 200},
			{"POST", "/api/v1/schedules/nightly-ROLE/hold", "", queue.RoleSubmitter, 200},
			{"POST", "/api/v1/schedules/nightly-ROLE/resume", "", queue.RoleSubmitter, 200},
			{"DELETE", "/api/v1/schedules/nightly-ROLE", "", queue.RoleSubmitter, 200},
			{"PUT", "/api/v1/pauses/report/numbers", "", queue.RoleAdmin, 200},
			{"DELETE", "/api/v1/pauses/report/numbers", "", queue.RoleAdmin, 200},
		}
		// The table covers every route Routes() registers (healthz and POST /report have
		// tests of their own).
		mux := http.NewServeMux()
		for _, rt := range f.api.Routes() {
			mux.HandleFunc(rt.Pattern, func(http.ResponseWriter, *http.Request) {})
		}
		covered := map[string]bool{}
		for _, rt := range routes {
			req, _ := http.NewRequest(rt.method, rt.path, nil)
			_, pattern := mux.Handler(req)
			covered[pattern] = true
		}
		for _, rt := range f.api.Routes() {
			if !covered[rt.Pattern] && rt.Pattern != "GET /api/v1/healthz" && rt.Pattern != "POST /report" {
				t.Errorf("route %s: not in this test's table", rt.Pattern)
			}
		}
		for _, rt := range routes {
			name := rt.method + " " + rt.path
			r := f.do(rt.method, rt.path, "", rt.body)
			if code, _, _ := r.errorOf(t); r.status != 401 || code != "unauthorized" || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s without a token: %d %s", name, r.status, r.body)
			}
			r = f.do(rt.method, rt.path, "rpt_not-a-token", rt.body)
			if r.status != 401 {
				t.Errorf("%s with an unknown token: %d %s", name, r.status, r.body)
			}
			for _, role := range queue.Roles {
				before := f.countJobs()
				var r response
				if strings.HasPrefix(rt.path, "/api/v1/events") && queue.RoleRank(role) >= queue.RoleRank(rt.min) {
					_, r = f.openStream(f.srv.URL, rt.path, f.tokens[role], -1) // a stream: open, then let go
				} else {
					// Schedule routes name a schedule per role, so each role's add,
					// change and delete act on its own.
					r = f.do(rt.method, strings.ReplaceAll(rt.path, "ROLE", role), f.tokens[role], strings.ReplaceAll(rt.body, "ROLE", role))
				}
				if queue.RoleRank(role) < queue.RoleRank(rt.min) {
					if code, _, _ := r.errorOf(t); r.status != 403 || code != "forbidden" {
						t.Errorf("%s as %s: %d %s, want 403", name, role, r.status, r.body)
					}
					if f.countJobs() != before {
						t.Errorf("%s as %s: refused, but the queue changed", name, role)
					}
					continue
				}
				if r.status != rt.ok {
					t.Errorf("%s as %s: %d %s, want %d", name, role, r.status, r.body, rt.ok)
				}
			}
		}
		// /healthz needs no token and tells nothing but the state.
		if r := f.do("GET", "/api/v1/healthz", "", ""); r.status != 200 || r.json(t)["status"] != "ok" {
			t.Errorf("healthz: %d %s", r.status, r.body)
		}
		// An unknown route: 401 to a stranger, 404 to a caller.
		if r := f.do("GET", "/api/v1/nothing", "", ""); r.status != 401 {
			t.Errorf("unknown route without a token: %d", r.status)
		}
		if r := f.do("GET", "/api/v1/nothing", f.tokens[queue.RoleViewer], ""); r.status != 404 {
			t.Errorf("unknown route: %d", r.status)
		}
		// A known path with another method: 405 naming the allowed ones, and nothing done.
		r := f.do("DELETE", fmt.Sprintf("/api/v1/jobs/%d", done), f.tokens[queue.RoleAdmin], "")
		if code, _, _ := r.errorOf(t); r.status != 405 || code != "method_not_allowed" || r.header.Get("Allow") != "GET" {
			t.Errorf("DELETE a job: %d %s (Allow %q)", r.status, r.body, r.header.Get("Allow"))
		}
		if r := f.do("GET", "/api/v1/jobs/1/cancel", f.tokens[queue.RoleAdmin], ""); r.status != 405 || r.header.Get("Allow") != "POST" {
			t.Errorf("GET cancel: %d %s", r.status, r.body)
		}
	})
}

// A revoked token stops working at once; last use is recorded; tokens never appear in
// responses or logs.
func TestRevokedTokenStopsWorking(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		tok := f.newToken("temp", queue.RoleAdmin)
		if r := f.do("GET", "/api/v1/jobs", tok, ""); r.status != 200 {
			t.Fatalf("before revoke: %d %s", r.status, r.body)
		}
		got, err := f.st.TokenByHash(context.Background(), queue.TokenSHA256(tok))
		if err != nil || got.LastUsedAt == nil {
			t.Errorf("last_used_at after a call: %+v, %v", got, err)
		}
		if _, err := f.st.TokenRevoke(context.Background(), "temp"); err != nil {
			t.Fatal(err)
		}
		r := f.do("GET", "/api/v1/jobs", tok, "")
		if code, msg, _ := r.errorOf(t); r.status != 401 || code != "unauthorized" || !strings.Contains(msg, "revoked") {
			t.Errorf("after revoke: %d %s", r.status, r.body)
		}
		if strings.Contains(string(r.body), tok) {
			t.Errorf("the token is echoed: %s", r.body)
		}
		if logs := f.logs.String(); strings.Contains(logs, tok) || !strings.Contains(logs, "token=temp") {
			t.Errorf("logs hold the token, or not the token's name:\n%s", logs)
		}
	})
}

// Submit, list with filters and keyset paging, show, cancel, retry; the job is queued
// exactly as the CLI queues it (resolved parameters, origin, who).
func TestJobsLifecycle(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		sub := f.tokens[queue.RoleSubmitter]
		r := f.do("POST", "/api/v1/jobs", sub, `{"report":"numbers","params":{"n":"7","label":"a"},"priority":3}`)
		if r.status != 201 || r.header.Get("Location") == "" {
			t.Fatalf("submit: %d %s", r.status, r.body)
		}
		v := r.json(t)
		id := int64(v["id"].(float64))
		j, err := f.st.JobGet(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if string(j.Params) != `{"label":"a","n":7}` || j.Origin != queue.OriginAPI || j.SubmittedBy != "api:submitter-1" || j.Priority != 3 {
			t.Errorf("queued job: params %s origin %q by %q priority %d", j.Params, j.Origin, j.SubmittedBy, j.Priority)
		}
		var ids []int64
		ids = append(ids, id)
		for n := range 4 {
			ids = append(ids, f.submit(n))
		}
		// Pages of two, newest first, until next_before is null.
		var seen []int64
		before := ""
		for page := 0; page < 5; page++ {
			r := f.do("GET", "/api/v1/jobs?limit=2&report=numbers&status=queued"+before, f.tokens[queue.RoleViewer], "")
			if r.status != 200 {
				t.Fatalf("list: %d %s", r.status, r.body)
			}
			var l struct {
				Jobs []struct {
					ID int64 `json:"id"`
				} `json:"jobs"`
				Next *int64 `json:"next_before"`
			}
			if err := json.Unmarshal(r.body, &l); err != nil {
				t.Fatal(err)
			}
			for _, j := range l.Jobs {
				seen = append(seen, j.ID)
			}
			if l.Next == nil {
				break
			}
			before = fmt.Sprintf("&before=%d", *l.Next)
		}
		if fmt.Sprint(seen) != fmt.Sprint([]int64{ids[4], ids[3], ids[2], ids[1], ids[0]}) {
			t.Errorf("paged listing = %v, want %v newest first", seen, ids)
		}
		if r := f.do("GET", "/api/v1/jobs?status=succeeded", f.tokens[queue.RoleViewer], ""); !strings.Contains(string(r.body), `"jobs": []`) {
			t.Errorf("status filter: %s", r.body)
		}
		// Show: the job, and why it waits.
		r = f.do("GET", fmt.Sprintf("/api/v1/jobs/%d", id), f.tokens[queue.RoleViewer], "")
		if v := r.json(t); r.status != 200 || v["status"] != "queued" || v["waiting"] == nil {
			t.Errorf("show: %d %s", r.status, r.body)
		}
		if strings.Contains(string(r.body), "lease") || strings.Contains(string(r.body), "SELECT") {
			t.Errorf("show leaks the lease or the SQL: %s", r.body)
		}
		// Cancel a queued job; retry it: a new job that records what it retries.
		r = f.do("POST", fmt.Sprintf("/api/v1/jobs/%d/cancel", id), sub, "")
		if v := r.json(t); r.status != 200 || v["status"] != "cancelled" {
			t.Errorf("cancel: %d %s", r.status, r.body)
		}
		r = f.do("POST", fmt.Sprintf("/api/v1/jobs/%d/retry", id), sub, "")
		if v := r.json(t); r.status != 201 || v["retry_of"] != float64(id) || v["status"] != "queued" {
			t.Errorf("retry: %d %s", r.status, r.body)
		}
	})
}

// Each error class is answered with its status and the error shape; a parameter error
// is a 422 naming the parameter.
func TestErrorStatuses(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		sub := f.tokens[queue.RoleSubmitter]
		running := f.submit(1)
		if _, err := f.st.JobClaim(context.Background(), queue.JobClaimParams{Agent: "a", Limit: 1, LeaseDuration: 60e9}); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name, method, path, body string
			status                   int
			code, field              string
		}{
			{"unknown report", "POST", "/api/v1/jobs", `{"report":"nosuch"}`, 404, "not_found", ""},
			{"no report", "POST", "/api/v1/jobs", `{"params":{"n":1}}`, 400, "invalid", "report"},
			{"bad int", "POST", "/api/v1/jobs", `{"report":"numbers","params":{"n":"seven"}}`, 422, "invalid", "n"},
			{"missing required", "POST", "/api/v1/jobs", `{"report":"numbers"}`, 422, "invalid", "n"},
			{"undeclared param", "POST", "/api/v1/jobs", `{"report":"numbers","params":{"n":1,"pcn":2}}`, 422, "invalid", "pcn"},
			{"object param", "POST", "/api/v1/jobs", `{"report":"numbers","params":{"n":{"a":1}}}`, 400, "invalid", "n"},
			{"comma in a list element", "POST", "/api/v1/jobs", `{"report":"numbers","params":{"n":["1,2"]}}`, 400, "invalid", "n"},
			{"null in a list", "POST", "/api/v1/jobs", `{"report":"numbers","params":{"n":[1,null]}}`, 400, "invalid", "n"},
			{"null param is not given", "POST", "/api/v1/jobs", `{"report":"numbers","params":{"n":null}}`, 422, "invalid", "n"},
			{"priority", "POST", "/api/v1/jobs", `{"report":"numbers","params":{"n":1},"priority":3000000000}`, 400, "invalid", "priority"},
			{"at", "POST", "/api/v1/jobs", `{"report":"numbers","params":{"n":1},"at":"tomorrow"}`, 400, "invalid", "at"},
			{"once_per", "POST", "/api/v1/jobs", `{"report":"numbers","params":{"n":1},"once_per":"5s"}`, 400, "invalid", "once_per"},
			{"wrong type", "POST", "/api/v1/jobs", `{"report":7}`, 400, "invalid", "report"},
			{"not json", "POST", "/api/v1/jobs", `{"report":`, 400, "invalid", ""},
			{"two values", "POST", "/api/v1/jobs", `{"report":"numbers"}{}`, 400, "invalid", ""},
			{"sql field", "POST", "/api/v1/jobs", `{"report":"numbers","params":{"n":1},"sql":"DROP TABLE rpt_jobs"}`, 400, "invalid", "sql"},
			{"definition field", "POST", "/api/v1/jobs", `{"report":"numbers","params":{"n":1},"definition":"name: x\nsql: DELETE FROM t"}`, 400, "invalid", "definition"},
			{"unknown job", "GET", "/api/v1/jobs/99999", "", 404, "not_found", ""},
			{"bad job id", "GET", "/api/v1/jobs/abc", "", 400, "invalid", "id"},
			{"bad status", "GET", "/api/v1/jobs?status=done", "", 400, "invalid", "status"},
			{"bad limit", "GET", "/api/v1/jobs?limit=0", "", 400, "invalid", "limit"},
			{"bad before", "GET", "/api/v1/jobs?before=x", "", 400, "invalid", "before"},
			{"cancel unknown", "POST", "/api/v1/jobs/99999/cancel", "", 404, "not_found", ""},
			{"retry unknown", "POST", "/api/v1/jobs/99999/retry", "", 404, "not_found", ""},
			{"cancel with a body", "POST", fmt.Sprintf("/api/v1/jobs/%d/cancel", running), `{"force":true}`, 400, "invalid", "force"},
			{"result unfinished", "GET", fmt.Sprintf("/api/v1/jobs/%d/result", running), "", 409, "not_finished", ""},
			{"result format", "GET", fmt.Sprintf("/api/v1/jobs/%d/result?format=pdf", running), "", 400, "invalid", "format"},
			{"unknown report show", "GET", "/api/v1/reports/nosuch", "", 404, "not_found", ""},
		}
		for _, c := range cases {
			before := f.countJobs()
			r := f.do(c.method, c.path, sub, c.body)
			code, msg, field := r.errorOf(t)
			if r.status != c.status || code != c.code || field != c.field {
				t.Errorf("%s: %d code %q field %q (%s), want %d %q %q", c.name, r.status, code, field, msg, c.status, c.code, c.field)
			}
			if c.method == "POST" && f.countJobs() != before {
				t.Errorf("%s: refused, but a job was queued", c.name)
			}
		}
		// A failed job's result: 409 job_failed, its error in the message.
		failed := f.submit(2)
		cl, err := f.st.JobClaim(context.Background(), queue.JobClaimParams{Agent: "a", Limit: 1, LeaseDuration: 60e9})
		if err != nil || len(cl) != 1 || cl[0].ID != failed {
			t.Fatalf("claim: %v %v", cl, err)
		}
		if _, err := f.st.JobFail(context.Background(), cl[0].Lease(), queue.JobFailParams{Error: "source said no"}); err != nil {
			t.Fatal(err)
		}
		r := f.do("GET", fmt.Sprintf("/api/v1/jobs/%d/result", failed), sub, "")
		if code, msg, _ := r.errorOf(t); r.status != 409 || code != "job_failed" || !strings.Contains(msg, "source said no") {
			t.Errorf("failed job's result: %d %s", r.status, r.body)
		}
	})
}

// A body over 1 MiB is 413, a wrong content type 400, and nothing is queued.
func TestBodyLimits(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		sub := f.tokens[queue.RoleSubmitter]
		huge := `{"report":"numbers","params":{"n":1,"label":"` + strings.Repeat("x", 2<<20) + `"}}`
		r := f.do("POST", "/api/v1/jobs", sub, huge)
		if code, _, _ := r.errorOf(t); r.status != 413 || code != "invalid" {
			t.Errorf("huge body: %d %.200s", r.status, r.body)
		}
		// Under the body limit but over a parameter's: 422 naming it.
		long := `{"report":"numbers","params":{"n":1,"label":"` + strings.Repeat("x", 100<<10) + `"}}`
		r = f.do("POST", "/api/v1/jobs", sub, long)
		if _, _, field := r.errorOf(t); r.status != 422 || field != "label" {
			t.Errorf("long parameter: %d %.300s", r.status, r.body)
		}
		r = f.do("POST", "/api/v1/jobs", sub, `{"report":"numbers","params":{"n":1}}`, "Content-Type", "text/plain")
		if r.status != 400 {
			t.Errorf("text/plain body: %d %s", r.status, r.body)
		}
		if n := f.countJobs(); n != 0 {
			t.Errorf("%d jobs queued by refused requests", n)
		}
	})
}

// An Idempotency-Key retried submits once; the same key from another token is another
// submit (keys are in the caller's own namespace).
func TestIdempotencyKey(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		body := `{"report":"numbers","params":{"n":1}}`
		first := f.do("POST", "/api/v1/jobs", f.tokens[queue.RoleSubmitter], body, "Idempotency-Key", "order-42")
		again := f.do("POST", "/api/v1/jobs", f.tokens[queue.RoleSubmitter], body, "Idempotency-Key", "order-42")
		if first.status != 201 || again.status != 200 || first.json(t)["id"] != again.json(t)["id"] {
			t.Fatalf("replayed key: %d %s / %d %s; want 201 then 200 with the same job", first.status, first.body, again.status, again.body)
		}
		other := f.do("POST", "/api/v1/jobs", f.tokens[queue.RoleAdmin], body, "Idempotency-Key", "order-42")
		if other.status != 201 || other.json(t)["id"] == first.json(t)["id"] {
			t.Errorf("same key, other token: %d %s; want a new job", other.status, other.body)
		}
		if n := f.countJobs(); n != 2 {
			t.Errorf("%d jobs, want 2", n)
		}
		bad := f.do("POST", "/api/v1/jobs", f.tokens[queue.RoleSubmitter], body, "Idempotency-Key", strings.Repeat("k", 300))
		if _, _, field := bad.errorOf(t); bad.status != 400 || field != "Idempotency-Key" {
			t.Errorf("overlong key: %d %s", bad.status, bad.body)
		}
	})
}

// The result downloads as rpt get renders it (results.Render of the same stored
// result), named from the report's filename: template, with a strong ETag; JSON and
// XLSX too, and a JSON preview.
func TestResultDownload(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		r := f.do("POST", "/api/v1/jobs", f.tokens[queue.RoleSubmitter], `{"report":"numbers","params":{"n":4,"label":"../../etc/passwd"}}`)
		if r.status != 201 {
			t.Fatalf("submit: %d %s", r.status, r.body)
		}
		j := f.run(250)
		var want bytes.Buffer
		rows, err := results.Open(context.Background(), results.InQueue(f.st), results.RefOf(j))
		if err != nil {
			t.Fatal(err)
		}
		if err := results.Render(context.Background(), &want, "csv", rows, results.RenderOptions{}); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		view := f.tokens[queue.RoleViewer]
		path := fmt.Sprintf("/api/v1/jobs/%d/result", j.ID)
		r = f.do("GET", path, view, "")
		if r.status != 200 || !bytes.Equal(r.body, want.Bytes()) {
			t.Fatalf("csv: %d, %d bytes; want the %d bytes rpt get renders", r.status, len(r.body), want.Len())
		}
		recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
		if err != nil || len(recs) != 251 || recs[3][1] != `row, "2"` {
			t.Errorf("csv: %d records, %v", len(recs), err)
		}
		if ct := r.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		cd := r.header.Get("Content-Disposition")
		if !strings.HasPrefix(cd, "attachment;") || strings.Contains(cd, "/") || !strings.Contains(cd, "nums-") {
			t.Errorf("Content-Disposition %q: want an attachment named from the template, with no path", cd)
		}
		etag := r.header.Get("ETag")
		if !strings.HasPrefix(etag, `"`) {
			t.Errorf("ETag %q: want a strong one", etag)
		}
		if r2 := f.do("GET", path, view, "", "If-None-Match", etag); r2.status != 304 || len(r2.body) != 0 {
			t.Errorf("If-None-Match: %d, %d bytes", r2.status, len(r2.body))
		}
		js := f.do("GET", path+"?format=json", view, "")
		var all []map[string]any
		if err := json.Unmarshal(js.body, &all); err != nil || len(all) != 250 || js.header.Get("Content-Type") != "application/json" {
			t.Errorf("json: %d rows, %v, %q", len(all), err, js.header.Get("Content-Type"))
		}
		if js.header.Get("ETag") == etag {
			t.Errorf("json and csv share an ETag")
		}
		pv := f.do("GET", path+"?format=json&limit=100", view, "")
		var preview []map[string]any
		if err := json.Unmarshal(pv.body, &preview); err != nil || len(preview) != 100 || preview[99]["n"] != float64(99) {
			t.Errorf("preview: %d rows, %v", len(preview), err)
		}
		if pv := f.do("GET", path+"?format=csv&limit=5", view, ""); pv.status != 400 {
			t.Errorf("csv preview: %d, want 400", pv.status)
		}
		x := f.do("GET", path+"?format=xlsx", view, "")
		if x.status != 200 || !bytes.HasPrefix(x.body, []byte("PK")) || !strings.Contains(x.header.Get("Content-Type"), "spreadsheetml") {
			t.Errorf("xlsx: %d %q %.4q", x.status, x.header.Get("Content-Type"), x.body)
		}
	})
}

// The report catalogue and one report's parameter schema, with no SQL.
func TestReports(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		r := f.do("GET", "/api/v1/reports", f.tokens[queue.RoleViewer], "")
		if r.status != 200 || !strings.Contains(string(r.body), `"name": "numbers"`) {
			t.Fatalf("reports: %d %s", r.status, r.body)
		}
		r = f.do("GET", "/api/v1/reports/numbers", f.tokens[queue.RoleViewer], "")
		var d struct {
			Name   string `json:"name"`
			Params []struct {
				Name     string  `json:"name"`
				Type     string  `json:"type"`
				Default  *string `json:"default"`
				Required bool    `json:"required"`
			} `json:"parameters"`
		}
		if err := json.Unmarshal(r.body, &d); err != nil || d.Name != "numbers" || len(d.Params) != 2 {
			t.Fatalf("report: %v %s", err, r.body)
		}
		if p := d.Params[0]; p.Name != "n" || p.Type != "int" || p.Default != nil || !p.Required {
			t.Errorf("param n: %+v", p)
		}
		if p := d.Params[1]; p.Name != "label" || p.Default == nil || *p.Default != "x" {
			t.Errorf("param label: %+v", p)
		}
		if strings.Contains(string(r.body), "SELECT") {
			t.Errorf("the report's SQL is shown: %s", r.body)
		}
	})
}

// Pausing a report holds its queued jobs (as rpt pause); names are checked.
func TestPauses(t *testing.T) {
	forStores(t, func(t *testing.T, f *fixture) {
		admin := f.tokens[queue.RoleAdmin]
		id := f.submit(1)
		if r := f.do("PUT", "/api/v1/pauses/report/numbers", admin, ""); r.status != 200 {
			t.Fatalf("pause: %d %s", r.status, r.body)
		}
		r := f.do("GET", "/api/v1/pauses", f.tokens[queue.RoleViewer], "")
		if r.status != 200 || !strings.Contains(string(r.body), `"name": "numbers"`) {
			t.Errorf("pauses: %d %s", r.status, r.body)
		}
		r = f.do("GET", fmt.Sprintf("/api/v1/jobs/%d", id), admin, "")
		if !strings.Contains(string(r.body), "paused: report numbers") {
			t.Errorf("paused job does not say why it waits: %s", r.body)
		}
		if got, _ := f.st.JobClaim(context.Background(), queue.JobClaimParams{Agent: "a", Limit: 1, LeaseDuration: 60e9}); len(got) != 0 {
			t.Errorf("a paused report's job was claimed")
		}
		if r := f.do("DELETE", "/api/v1/pauses/report/numbers", admin, ""); r.status != 200 {
			t.Fatalf("resume: %d %s", r.status, r.body)
		}
		if r := f.do("GET", "/api/v1/pauses", admin, ""); !strings.Contains(string(r.body), `"pauses": []`) {
			t.Errorf("after resume: %s", r.body)
		}
		for _, c := range []struct {
			path   string
			status int
			field  string
		}{
			{"/api/v1/pauses/report/nosuch", 404, ""},
			{"/api/v1/pauses/source/nowhere", 400, "name"},
			{"/api/v1/pauses/job/1", 400, "kind"},
		} {
			r := f.do("PUT", c.path, admin, "")
			if _, _, field := r.errorOf(t); r.status != c.status || field != c.field {
				t.Errorf("PUT %s: %d %s", c.path, r.status, r.body)
			}
		}
		if ps, _ := f.st.PauseList(context.Background()); len(ps) != 0 {
			t.Errorf("refused pauses were stored: %+v", ps)
		}
	})
}

// With SessionCookie set, the web app's cookie stands for the bearer token (same
// checks, same roles); without it, a cookie is nothing.
func TestSessionCookie(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	get := func(cookie string) int {
		req, _ := http.NewRequest("GET", f.srv.URL+"/api/v1/jobs", nil)
		req.AddCookie(&http.Cookie{Name: "rpt_session", Value: cookie})
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := get(f.tokens[queue.RoleViewer]); got != 401 {
		t.Errorf("a cookie without SessionCookie set: %d, want 401", got)
	}
	f.api.SessionCookie = "rpt_session"
	f.srv.Config.Handler = f.api.Handler()
	if got := get(f.tokens[queue.RoleViewer]); got != 200 {
		t.Errorf("the session cookie: %d, want 200", got)
	}
	if got := get("rpt_forged"); got != 401 {
		t.Errorf("a forged cookie: %d, want 401", got)
	}
}
