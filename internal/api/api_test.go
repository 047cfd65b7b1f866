package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rpt/internal/api"
	"rpt/internal/config"
	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/queue/sqlite"
	"rpt/internal/results"
	"rpt/internal/source"
	"rpt/internal/testenv"
	"rpt/reportdefs"
)

// numbersDef is the report the tests submit: two parameters, one an enum, and a
// filename: template with a string parameter that tries to leave the folder.
const numbersDef = `name: numbers
title: Numbers
source: demo
params:
  - {name: n,     type: int}
  - {name: label, type: string, default: "x"}
filename: "nums-{label}-{n}.csv"
sql: SELECT :n AS n, :label AS label
`

// periodsDef takes the old API's two periods.
const periodsDef = `name: periods
source: demo
params:
  - {name: start_period, type: period}
  - {name: end_period,   type: period}
sql: SELECT :start_period AS s, :end_period AS e
`

type store struct {
	name string
	open func(t testing.TB) queue.Store
}

func openSQLite(t testing.TB) queue.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "q.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func openMariaDB(t testing.TB) queue.Store {
	t.Helper()
	st, err := mysql.Open(context.Background(), testenv.MariaDB(t), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

var stores = []store{{"sqlite", openSQLite}, {"mariadb", openMariaDB}}

// fixture is an API server over a real queue, with one token per role.
type fixture struct {
	t      testing.TB
	st     queue.Store
	srv    *httptest.Server
	tokens map[string]string // role -> token
	logs   *syncBuffer
	cfg    *config.Config
	api    *api.Server
}

// newServer is an API server over the fixture's queue (a restart makes another).
func (f *fixture) newServer() *api.Server {
	st := f.st
	svc := &jobs.Service{Store: st, Config: f.cfg, Loc: time.UTC}
	return &api.Server{
		Jobs:      svc,
		Schedules: crontabSchedules{st: st, svc: svc},
		OpenResults: func(_ context.Context, j *queue.Job) (results.Store, error) {
			return results.InQueue(st), nil
		},
		FileName: func(j *queue.Job, ext string) (string, error) {
			d, err := reportdefs.Parse(j.Report+".yaml", j.Definition)
			if err != nil {
				return "", err
			}
			return d.FileName(j.ID, j.Params, time.Now(), time.UTC, ext), nil
		},
		Log:       slogTo(f.logs),
		Legacy:    true,
		Heartbeat: 100 * time.Millisecond,
	}
}

func newFixture(t testing.TB, st queue.Store) *fixture {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "numbers.yaml"), []byte(numbersDef), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "periods.yaml"), []byte(periodsDef), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Reports = []string{dir}
	cfg.Sources = map[string]source.Config{"demo": {Driver: "sqlite", DSN: "sqlite:" + filepath.Join(dir, "demo.db")}}
	f := &fixture{t: t, st: st, cfg: cfg, tokens: map[string]string{}, logs: &syncBuffer{}}
	f.api = f.newServer()
	f.srv = httptest.NewServer(f.api.Handler())
	t.Cleanup(func() { f.srv.Close(); f.api.Close() })
	for _, role := range queue.Roles {
		f.tokens[role] = f.newToken(role+"-1", role)
	}
	return f
}

func (f *fixture) newToken(name, role string) string {
	f.t.Helper()
	tok, err := queue.NewAPIToken()
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.st.TokenCreate(context.Background(), name, role, queue.TokenSHA256(tok)); err != nil {
		f.t.Fatal(err)
	}
	return tok
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %v\n%s", r.status, err, r.body)
	}
	return m
}

// errorOf returns the error object's code, message and field; it fails the test when
// the body is not the API's error shape.
func (r response) errorOf(t testing.TB) (code, msg, field string) {
	t.Helper()
	m := r.json(t)
	e, ok := m["error"].(map[string]any)
	if !ok {
		t.Fatalf("status %d: no error object in %s", r.status, r.body)
	}
	code, _ = e["code"].(string)
	msg, _ = e["message"].(string)
	field, _ = e["field"].(string)
	if code == "" || msg == "" {
		t.Fatalf("error without code or message: %s", r.body)
	}
	return code, msg, field
}

func (f *fixture) do(method, path, token string, body string, hdr ...string) response {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, b}
}

func (f *fixture) countJobs() int {
	f.t.Helper()
	list, err := f.st.JobList(context.Background(), queue.JobListParams{})
	if err != nil {
		f.t.Fatal(err)
	}
	return len(list)
}

// submit queues numbers with n as a submitter and returns the job id.
func (f *fixture) submit(n int) int64 {
	f.t.Helper()
	r := f.do("POST", "/api/v1/jobs", f.tokens[queue.RoleSubmitter], fmt.Sprintf(`{"report":"numbers","params":{"n":%d}}`, n))
	if r.status != http.StatusCreated {
		f.t.Fatalf("submit: %d %s", r.status, r.body)
	}
	return int64(r.json(f.t)["id"].(float64))
}

// run plays the agent: claims the next job and completes it with rows rows.
func (f *fixture) run(rows int) *queue.Job {
	f.t.Helper()
	ctx := context.Background()
	claimed, err := f.st.JobClaim(ctx, queue.JobClaimParams{Agent: "test", Limit: 1, LeaseDuration: time.Minute})
	if err != nil || len(claimed) != 1 {
		f.t.Fatalf("claim: %d jobs, %v", len(claimed), err)
	}
	j := claimed[0]
	w := results.NewWriter(results.InQueue(f.st), j.Lease(), []source.Column{{Name: "n", Type: source.TypeInt}, {Name: "label", Type: source.TypeString}})
	for i := range rows {
		if err := w.Write(ctx, []any{int64(i), fmt.Sprintf("row, \"%d\"", i)}); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.JobComplete(ctx, j.Lease(), queue.Completion{Rows: int64(rows), ResultStore: results.QueueStoreName, ResultChunks: w.Chunks()}); err != nil {
		f.t.Fatal(err)
	}
	j, err = f.st.JobGet(ctx, j.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return j
}

func forStores(t *testing.T, fn func(t *testing.T, f *fixture)) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			fn(t, newFixture(t, s.open(t)))
		})
	}
}
