package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"rpt/internal/config"
	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/queue/sqlite"
	"rpt/internal/results"
	"rpt/internal/source"
	"rpt/internal/web"
)

// numbersDef has one parameter of each input kind a form draws.
const numbersDef = `name: numbers
title: Numbers
source: demo
params:
  - {name: n,     type: int, title: How many}
  - {name: label, type: string, default: "x"}
  - {name: mode,  type: enum, values: [fast, slow], default: fast}
  - {name: day,   type: date, default: yesterday}
sql: SELECT :n AS n, :label AS label
`

// mttfDef stands for the series report: its name picks the chart.
const mttfDef = `name: mean-time-to-failure
source: demo
params:
  - {name: pcn, type: int, default: 1}
sql: SELECT 1 AS pcn
`

type fixture struct {
	t      *testing.T
	st     queue.Store
	srv    *httptest.Server
	tokens map[string]string
	cfg    *config.Config
}

func newFixture(t *testing.T, loc *time.Location) *fixture {
	t.Helper()
	dir := t.TempDir()
	for name, text := range map[string]string{"numbers.yaml": numbersDef, "mttf.yaml": mttfDef} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "q.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Reports = []string{dir}
	cfg.Sources = map[string]source.Config{"demo": {Driver: "sqlite", DSN: "sqlite:" + filepath.Join(dir, "demo.db")}}
	s := &web.Server{
		Jobs: &jobs.Service{Store: st, Config: cfg, Loc: loc},
		OpenResults: func(context.Context, *queue.Job) (results.Store, error) {
			return results.InQueue(st), nil
		},
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	f := &fixture{t: t, st: st, srv: srv, tokens: map[string]string{}, cfg: cfg}
	for _, role := range queue.Roles {
		tok, err := queue.NewAPIToken()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.TokenCreate(context.Background(), role+"-1", role, queue.TokenSHA256(tok)); err != nil {
			t.Fatal(err)
		}
		f.tokens[role] = tok
	}
	return f
}

// client is a browser: a cookie jar, and redirects not followed (the tests look at them).
func (f *fixture) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type page struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (f *fixture) send(c *http.Client, method, path string, form url.Values, hdr ...string) page {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return page{res.StatusCode, res.Header.Get("Location"), string(b), res.Header}
}

// login returns a browser logged in as role.
func (f *fixture) login(role string) *http.Client {
	f.t.Helper()
	c := f.client()
	p := f.send(c, "POST", "/login", url.Values{"token": {f.tokens[role]}, "next": {"/jobs"}})
	if p.status != http.StatusSeeOther || p.location != "/jobs" {
		f.t.Fatalf("login as %s: %d %q %s", role, p.status, p.location, p.body)
	}
	return c
}

func (f *fixture) countJobs() int {
	f.t.Helper()
	l, err := f.st.JobList(context.Background(), queue.JobListParams{})
	if err != nil {
		f.t.Fatal(err)
	}
	return len(l)
}

// Logging in sets an HttpOnly, SameSite=Strict session cookie holding nothing but the
// token; a wrong token is refused on the page; the next address stays on the site; a
// revoked token ends the session; logging out clears it.
func TestLogin(t *testing.T) {
	f := newFixture(t, time.UTC)
	c := f.client()
	if p := f.send(c, "GET", "/jobs", nil); p.status != http.StatusSeeOther || p.location != "/login?next=%2Fjobs" {
		t.Errorf("a page before login: %d %q", p.status, p.location)
	}
	p := f.send(c, "POST", "/login", url.Values{"token": {"rpt_wrong"}})
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "unknown API token") || len(p.header.Values("Set-Cookie")) != 0 {
		t.Errorf("a wrong token: %d %v", p.status, p.header.Values("Set-Cookie"))
	}
	p = f.send(c, "POST", "/login", url.Values{"token": {f.tokens[queue.RoleViewer]}, "next": {"//evil.example/x"}})
	if p.status != http.StatusSeeOther || p.location != "/" {
		t.Errorf("an off-site next: %d %q, want /", p.status, p.location)
	}
	ck := p.header.Get("Set-Cookie")
	for _, want := range []string{web.CookieName + "=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="} {
		if !strings.Contains(ck, want) {
			t.Errorf("session cookie %q lacks %s", ck, want)
		}
	}
	if p := f.send(c, "GET", "/", nil); p.status != 200 || !strings.Contains(p.body, "viewer-1 (viewer)") {
		t.Errorf("the catalogue after login: %d", p.status)
	}
	if _, err := f.st.TokenRevoke(context.Background(), "viewer-1"); err != nil {
		t.Fatal(err)
	}
	if p := f.send(c, "GET", "/", nil); p.status != http.StatusSeeOther {
		t.Errorf("a revoked token's session: %d, want the login page", p.status)
	}
	c = f.login(queue.RoleAdmin)
	if p := f.send(c, "POST", "/logout", url.Values{}); p.status != http.StatusSeeOther || !strings.Contains(p.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("logout: %d %q", p.status, p.header.Get("Set-Cookie"))
	}
	if p := f.send(c, "GET", "/", nil); p.status != http.StatusSeeOther {
		t.Errorf("after logout: %d", p.status)
	}
}

// A form post from another site is refused even with the session cookie, and queues
// nothing; the same post from the page's own origin goes through.
func TestCrossSitePostRefused(t *testing.T) {
	f := newFixture(t, time.UTC)
	c := f.login(queue.RoleSubmitter)
	form := url.Values{"n": {"3"}}
	for _, hdr := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "https://evil.example"},
		{"Sec-Fetch-Site", "same-site", "Origin", "https://sub.example"},
	} {
		p := f.send(c, "POST", "/reports/numbers", form, hdr...)
		if p.status != http.StatusForbidden {
			t.Errorf("cross-site post %v: %d, want 403", hdr, p.status)
		}
	}
	if n := f.countJobs(); n != 0 {
		t.Fatalf("%d jobs queued by refused posts", n)
	}
	p := f.send(c, "POST", "/reports/numbers", form, "Sec-Fetch-Site", "same-origin", "Origin", f.srv.URL)
	if p.status != http.StatusSeeOther {
		t.Errorf("same-origin post: %d %s", p.status, p.body)
	}
}

// The form is drawn from the parameter schema; a bad value comes back as a 422 with
// the message beside its field and the values kept; a good one queues the job as the
// logged-in user (web:NAME, origin web) and a second post of the same form queues no
// second job.
func TestReportForm(t *testing.T) {
	f := newFixture(t, time.UTC)
	c := f.login(queue.RoleSubmitter)
	p := f.send(c, "GET", "/reports/numbers", nil)
	for _, want := range []string{
		`<label for="p-n">How many <code>n</code> <span class="req">(required)</span></label>`,
		`id="p-n" name="n" type="number" step="1"`,
		`<option value="slow">slow</option>`,
		`placeholder="yesterday"`,
		`Default: <code>x</code>`,
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("form lacks %s", want)
		}
	}
	key := regexp.MustCompile(`name="key" value="([0-9a-f]{32})"`).FindStringSubmatch(p.body)
	if key == nil {
		t.Fatalf("form without a key")
	}
	p = f.send(c, "POST", "/reports/numbers", url.Values{"key": {key[1]}, "n": {"seven"}, "label": {"kept"}})
	if p.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad value: %d", p.status)
	}
	if !regexp.MustCompile(`(?s)id="p-n"[^>]*aria-invalid="true".*<p class="error" id="e-n" role="alert">param &#34;n&#34;`).MatchString(p.body) {
		t.Errorf("the error is not beside field n:\n%s", p.body)
	}
	if !strings.Contains(p.body, `value="kept"`) || f.countJobs() != 0 {
		t.Errorf("values not kept, or a job queued")
	}
	form := url.Values{"key": {key[1]}, "n": {"7"}, "mode": {"slow"}}
	p = f.send(c, "POST", "/reports/numbers", form)
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/jobs/") {
		t.Fatalf("submit: %d %q", p.status, p.location)
	}
	again := f.send(c, "POST", "/reports/numbers", form)
	if again.location != p.location || f.countJobs() != 1 {
		t.Errorf("the same form posted twice: %q then %q, %d jobs", p.location, again.location, f.countJobs())
	}
	l, _ := f.st.JobList(context.Background(), queue.JobListParams{})
	if j := l[0]; j.SubmittedBy != "web:submitter-1" || j.Origin != queue.OriginWeb || !strings.Contains(string(j.Params), `"mode":"slow"`) || !strings.Contains(string(j.Params), `"label":"x"`) {
		t.Errorf("queued: by %q origin %q params %s", j.SubmittedBy, j.Origin, j.Params)
	}
	evs, _ := f.st.EventList(context.Background(), l[0].ID, 0, 0)
	if len(evs) == 0 || evs[0].By != "web:submitter-1" {
		t.Errorf("queued event by %+v", evs)
	}
}

// Every page and post, for every role and for nobody: pages need a login, posts that
// change the queue a submitter.
func TestRolesPerPage(t *testing.T) {
	f := newFixture(t, time.UTC)
	sub := f.login(queue.RoleSubmitter)
	p := f.send(sub, "POST", "/reports/numbers", url.Values{"n": {"1"}})
	id := strings.TrimPrefix(p.location, "/jobs/")
	routes := []struct {
		method, path string
		form         url.Values
		min          string
		ok           int
	}{
		{"GET", "/", nil, queue.RoleViewer, 200},
		{"GET", "/reports/numbers", nil, queue.RoleViewer, 200},
		{"GET", "/jobs", nil, queue.RoleViewer, 200},
		{"GET", "/jobs/" + id, nil, queue.RoleViewer, 200},
		{"GET", "/jobs/" + id + "/row", nil, queue.RoleViewer, 200},
		{"GET", "/agents", nil, queue.RoleViewer, 200},
		{"POST", "/reports/numbers", url.Values{"n": {"2"}}, queue.RoleSubmitter, 303},
		{"POST", "/jobs/" + id + "/cancel", url.Values{}, queue.RoleSubmitter, 303},
		{"POST", "/jobs/" + id + "/retry", url.Values{}, queue.RoleSubmitter, 303},
	}
	for _, rt := range routes {
		name := rt.method + " " + rt.path
		before := f.countJobs()
		p := f.send(f.client(), rt.method, rt.path, rt.form)
		if rt.method == "GET" && (p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/login")) ||
			rt.method == "POST" && p.status != http.StatusUnauthorized {
			t.Errorf("%s without a login: %d %q", name, p.status, p.location)
		}
		for _, role := range queue.Roles {
			p := f.send(f.login(role), rt.method, rt.path, rt.form)
			if queue.RoleRank(role) < queue.RoleRank(rt.min) {
				if p.status != http.StatusForbidden || f.countJobs() != before {
					t.Errorf("%s as %s: %d, want 403 and nothing queued", name, role, p.status)
				}
				continue
			}
			if p.status != rt.ok {
				t.Errorf("%s as %s: %d, want %d", name, role, p.status, rt.ok)
			}
		}
	}
	if p := f.send(f.login(queue.RoleViewer), "GET", "/static/app.js", nil); p.status != 200 || !strings.Contains(p.body, "EventSource") {
		t.Errorf("app.js: %d", p.status)
	}
}

// runJob plays the agent: claims the next job and completes it with rows.
func (f *fixture) runJob(cols []source.Column, rows [][]any) *queue.Job {
	f.t.Helper()
	ctx := context.Background()
	cl, err := f.st.JobClaim(ctx, queue.JobClaimParams{Agent: "a", Limit: 1, LeaseDuration: time.Minute})
	if err != nil || len(cl) != 1 {
		f.t.Fatalf("claim: %v %v", cl, err)
	}
	w := results.NewWriter(results.InQueue(f.st), cl[0].Lease(), cols)
	for _, r := range rows {
		if err := w.Write(ctx, r); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		f.t.Fatal(err)
	}
	readAt := time.Date(2026, 12, 7, 19, 5, 3, 0, time.UTC)
	loaded := readAt.Add(-(2*time.Hour + 55*time.Minute))
	read := &queue.ReadInfo{Source: "warehouse", Kind: "mysql", At: readAt, Loads: []queue.ETLLoad{{ETL: "plex-workcenter-log", At: &loaded}}}
	if err := f.st.JobComplete(ctx, cl[0].Lease(), queue.Completion{Rows: int64(len(rows)), ResultStore: results.QueueStoreName, ResultChunks: w.Chunks(), Read: read}); err != nil {
		f.t.Fatal(err)
	}
	return cl[0]
}

// A job page shows the preview, the downloads (through the API's routes), its events
// with who did what, and times in the plant's zone; a series report gets its chart,
// drawn on the server with every name escaped.
func TestJobPageAndChart(t *testing.T) {
	plant, err := time.LoadLocation("America/Indiana/Indianapolis")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	f := newFixture(t, plant)
	c := f.login(queue.RoleSubmitter)
	p := f.send(c, "POST", "/reports/mean-time-to-failure", url.Values{})
	if p.status != http.StatusSeeOther {
		t.Fatalf("submit: %d %s", p.status, p.body)
	}
	cols := []source.Column{{Name: "pcn", Type: source.TypeInt}, {Name: "workcenter_code", Type: source.TypeString},
		{Name: "month", Type: source.TypeString}, {Name: "mttf_hours", Type: source.TypeString}}
	var rows [][]any
	for m := 1; m <= 6; m++ {
		rows = append(rows, []any{int64(1), "ASY-1", fmt.Sprintf("2026-%02d", m), fmt.Sprintf("%d.5", 10+m)})
		rows = append(rows, []any{int64(1), `<script>alert(1)</script>`, fmt.Sprintf("2026-%02d", m), fmt.Sprintf("%d.25", 20-m)})
	}
	j := f.runJob(cols, rows)
	p = f.send(c, "GET", p.location, nil)
	if p.status != 200 {
		t.Fatalf("job page: %d", p.status)
	}
	for _, want := range []string{
		`<svg xmlns="http://www.w3.org/2000/svg"`, `class="series" data-series="ASY-1"`, `&lt;script&gt;alert(1)&lt;/script&gt;`,
		fmt.Sprintf(`href="/api/v1/jobs/%d/result?format=csv"`, j.ID), fmt.Sprintf(`href="/api/v1/jobs/%d/result?format=xlsx"`, j.ID),
		`<td>2026-03</td>`, `by web:submitter-1`, `id="retry"`,
		// Where and when it was read, and how old the warehouse copy was, in the plant's zone.
		`<dd id="read">from a copy in MySQL (warehouse, not live Plex) (source warehouse) at 2026-12-07 14:05:03 EST America/Indiana/Indianapolis; warehouse copy loaded by etl plex-workcenter-log at 11:10 (2h55m before the read)</dd>`,
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("job page lacks %s", want)
		}
	}
	if strings.Contains(p.body, "<script>alert") {
		t.Errorf("a series name is not escaped")
	}
	if n := strings.Count(p.body, `<polyline class="series"`); n != 2 {
		t.Errorf("%d lines, want 2", n)
	}
	if !regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d E[SD]T`).MatchString(p.body) || strings.Contains(p.body, " UTC</") {
		t.Errorf("times are not in the plant's zone (America/Indiana/Indianapolis)")
	}
}
