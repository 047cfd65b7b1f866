package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"rpt/internal/config"
	"rpt/internal/errclass"
	"rpt/internal/jobs"
	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/queue/sqlite"
	"rpt/internal/source"
	"rpt/internal/testenv"
)

// relDef has relative defaults, so a submit's instant shows in its parameters.
const relDef = `name: rel
source: demo
params:
  - {name: day,   type: date,   default: yesterday}
  - {name: month, type: period, default: last-month}
  - {name: n,     type: int,    default: 1}
sql: SELECT :day AS day, :month AS month, :n AS n
`

// store is one queue store under test.
type store struct {
	name string
	open func(t *testing.T) queue.Store
}

func openSQLite(t *testing.T) queue.Store {
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

func openMariaDB(t *testing.T) queue.Store {
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

// stores are the queue stores a test that depends on the store runs on.
var stores = []store{{"sqlite", openSQLite}, {"mariadb", openMariaDB}}

// newService is a Service over st with relDef in its catalogue and the demo source.
func newService(t *testing.T, st queue.Store, loc *time.Location, now func() time.Time) *jobs.Service {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rel.yaml"), []byte(relDef), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Reports = []string{dir}
	cfg.Sources = map[string]source.Config{"demo": {Driver: "sqlite", DSN: "sqlite:" + filepath.Join(dir, "demo.db")}}
	return &jobs.Service{Store: st, Config: cfg, Loc: loc, Now: now, SubmittedBy: "tester@host"}
}

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

func params(t *testing.T, j *queue.Job) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(j.Params, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func countJobs(t *testing.T, st queue.Store) int {
	t.Helper()
	list, err := st.JobList(context.Background(), queue.JobListParams{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

// flakyStore fails JobEnqueue with ErrUnavailable the first `fail` times: before the
// insert (the connection was refused) or, with commitFirst, after it committed (the
// answer was lost).
type flakyStore struct {
	queue.Store
	fail        int
	commitFirst bool
	calls       atomic.Int32
}

func (f *flakyStore) JobEnqueue(ctx context.Context, p queue.JobEnqueueParams) (queue.JobEnqueueResult, error) {
	n := int(f.calls.Add(1))
	if n <= f.fail {
		if f.commitFirst {
			if _, err := f.Store.JobEnqueue(ctx, p); err != nil {
				return queue.JobEnqueueResult{}, err
			}
		}
		return queue.JobEnqueueResult{}, queue.ErrUnavailable
	}
	return f.Store.JobEnqueue(ctx, p)
}

// retryUnavailable is a RetryQueue policy without pauses.
func retryUnavailable(ctx context.Context, op func(context.Context) error) error {
	for {
		err := op(ctx)
		if !errors.Is(err, queue.ErrUnavailable) {
			return err
		}
	}
}

// A cron submit on two nodes: node A queues the 07:00 occurrence; node B's queue
// database refuses it until 08:00:30, past the --once-per 1h bucket. Node B read the
// clock once, at 07:00, before its first try, so its retry makes the same once key and
// finds A's job: the occurrence runs once. (Reading the clock inside the retry loop made
// the key @08:00 and queued it a second time.)
func TestSubmitRetryAcrossOncePerBucketQueuesOnce(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			st := s.open(t)
			t0 := time.Date(2026, 11, 30, 7, 0, 10, 0, time.UTC)
			req := jobs.SubmitRequest{Report: "rel", OncePer: time.Hour, Origin: queue.OriginCron}

			a := newService(t, st, time.UTC, fixed(t0))
			first, err := a.Submit(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}

			// Node B: every read of its clock is an hour later than the one before.
			var reads atomic.Int32
			clock := func() time.Time { return t0.Add(time.Duration(reads.Add(1)-1) * time.Hour) }
			flaky := &flakyStore{Store: st, fail: 2}
			b := newService(t, flaky, time.UTC, clock)
			b.RetryQueue = retryUnavailable
			second, err := b.Submit(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if flaky.calls.Load() != 3 {
				t.Fatalf("enqueue tried %d times, want 3 (two refused)", flaky.calls.Load())
			}
			if second.Job.ID != first.Job.ID || !second.Existing || second.Queued {
				t.Errorf("retried submit: job %d existing=%v queued=%v; want node A's job %d, existing, not queued",
					second.Job.ID, second.Existing, second.Queued, first.Job.ID)
			}
			if n := countJobs(t, st); n != 1 {
				t.Errorf("%d jobs queued for one occurrence, want 1", n)
			}
		})
	}
}

// An enqueue whose answer was lost committed anyway: the retry finds the job by
// Submit's own token and reports it as queued by this call, once.
func TestSubmitLostAnswerQueuedOnce(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			st := s.open(t)
			flaky := &flakyStore{Store: st, fail: 1, commitFirst: true}
			svc := newService(t, flaky, time.UTC, fixed(time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)))
			svc.RetryQueue = retryUnavailable
			res, err := svc.Submit(context.Background(), jobs.SubmitRequest{Report: "rel", Origin: queue.OriginCLI})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Existing || !res.Queued {
				t.Errorf("existing=%v queued=%v, want the job this call queued (true, true)", res.Existing, res.Queued)
			}
			if !strings.HasPrefix(res.Job.SubmitToken, "cli-") {
				t.Errorf("submit token %q, want one of Submit's own (cli-...)", res.Job.SubmitToken)
			}
			if n := countJobs(t, st); n != 1 {
				t.Errorf("%d jobs, want 1", n)
			}
		})
	}
}

// --occurrence: relative parameters and the once key come from the occurrence, read in
// the configured zone, not from the host clock. 2026-12-01T02:00Z is the evening of
// Nov 30 in Chicago: yesterday is Nov 29 and last month October there (Nov 30 and
// November in UTC).
func TestSubmitOccurrenceResolvesInConfiguredZone(t *testing.T) {
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Skip("no tz database:", err)
	}
	st := openSQLite(t)
	occ := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	hostNow := time.Date(2027, 3, 15, 12, 0, 0, 0, time.UTC)
	svc := newService(t, st, chicago, fixed(hostNow))
	req := jobs.SubmitRequest{Report: "rel", OncePer: 24 * time.Hour, Occurrence: occ, Origin: queue.OriginCron}
	res, err := svc.Submit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	p := params(t, res.Job)
	if p["day"] != "2026-11-29" || fmt.Sprint(p["month"]) != "202610" {
		t.Errorf("params %v, want day 2026-11-29 and month 202610 (the occurrence in America/Chicago)", p)
	}
	want := jobs.OnceKey("rel", res.Job.Params, occ, 24*time.Hour)
	if res.Job.OnceKey != want || !strings.HasSuffix(want, "@2026-12-01T00:00:00Z") {
		t.Errorf("once key %q, want %q (the occurrence's bucket)", res.Job.OnceKey, want)
	}

	// The same occurrence submitted later (a node that ran behind) is the same job.
	svc.Now = fixed(hostNow.Add(48 * time.Hour))
	again, err := svc.Submit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Job.ID != res.Job.ID || again.Queued {
		t.Errorf("same occurrence again: job %d queued=%v, want job %d not queued", again.Job.ID, again.Queued, res.Job.ID)
	}

	// Without an occurrence, the host clock decides.
	plain, err := svc.Submit(context.Background(), jobs.SubmitRequest{Report: "rel", Origin: queue.OriginCLI})
	if err != nil {
		t.Fatal(err)
	}
	if p := params(t, plain.Job); p["day"] != "2027-03-16" || fmt.Sprint(p["month"]) != "202702" {
		t.Errorf("params without occurrence %v, want day 2027-03-16 and month 202702 (now in Chicago)", p)
	}
}

// The edge priorities round-trip on both stores; one past them is refused before the
// queue sees it, as invalid input naming the field and the range.
func TestSubmitPriorityRange(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			st := s.open(t)
			svc := newService(t, st, time.UTC, fixed(time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)))
			for _, p := range []int{jobs.MinPriority, jobs.MaxPriority, 0} {
				res, err := svc.Submit(context.Background(), jobs.SubmitRequest{Report: "rel", Priority: p, Origin: queue.OriginCLI})
				if err != nil {
					t.Fatalf("priority %d: %v", p, err)
				}
				j, err := st.JobGet(context.Background(), res.Job.ID)
				if err != nil {
					t.Fatal(err)
				}
				if j.Priority != p {
					t.Errorf("priority %d stored as %d", p, j.Priority)
				}
			}
			for _, p := range []int{jobs.MinPriority - 1, jobs.MaxPriority + 1, -1 << 63} {
				_, err := svc.Submit(context.Background(), jobs.SubmitRequest{Report: "rel", Priority: p, Origin: queue.OriginCLI})
				if c, _ := errclass.Of(err); c != errclass.Invalid || !strings.Contains(err.Error(), "priority") || !strings.Contains(err.Error(), "2147483647") {
					t.Errorf("priority %d: %v (class %v), want invalid naming priority and its range", p, err, c)
				}
			}
			if n := countJobs(t, st); n != 3 {
				t.Errorf("%d jobs, want 3 (the refused ones queue nothing)", n)
			}
		})
	}
}

func TestSubmitInvalidRequests(t *testing.T) {
	st := openSQLite(t)
	svc := newService(t, st, time.UTC, fixed(time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)))
	for _, tc := range []struct {
		req  jobs.SubmitRequest
		want string
	}{
		{jobs.SubmitRequest{Report: "rel", Dedupe: "k", OncePer: time.Hour}, "cannot be combined"},
		{jobs.SubmitRequest{Report: "rel", OncePer: time.Second}, "once-per 1s: must be at least 1m"},
		{jobs.SubmitRequest{Report: "rel", Params: map[string]string{"n": "x"}}, "n"},
		{jobs.SubmitRequest{Report: "nosuch"}, "nosuch"},
	} {
		_, err := svc.Submit(context.Background(), tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error containing %q", tc.req, err, tc.want)
		}
		if c := jobs.Class(err); c != errclass.Invalid && c != errclass.NotFound {
			t.Errorf("%+v: class %v, want invalid or not found", tc.req, c)
		}
	}
	// A definition whose source is not configured: named with file:line.
	svc.Config.Sources = map[string]source.Config{"other": {Driver: "sqlite", DSN: "sqlite:x.db"}}
	_, err := svc.Submit(context.Background(), jobs.SubmitRequest{Report: "rel"})
	if err == nil || !strings.Contains(err.Error(), `rel.yaml:2:9: source: "demo" is not configured`) || jobs.Class(err) != errclass.Invalid {
		t.Errorf("unconfigured source: %v", err)
	}
	if n := countJobs(t, st); n != 0 {
		t.Errorf("%d jobs queued by invalid requests", n)
	}
}

type recorder struct {
	mu      sync.Mutex
	wakes   int
	cancels []int64
}

func (r *recorder) PublishWake() { r.mu.Lock(); r.wakes++; r.mu.Unlock() }
func (r *recorder) PublishCancel(id int64) {
	r.mu.Lock()
	r.cancels = append(r.cancels, id)
	r.mu.Unlock()
}

func claimOne(t *testing.T, st queue.Store) *queue.Job {
	t.Helper()
	got, err := st.JobClaim(context.Background(), queue.JobClaimParams{Agent: "a1", Limit: 1, LeaseDuration: time.Minute})
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v (%d jobs)", err, len(got))
	}
	return got[0]
}

func TestCancelRetryAndPublish(t *testing.T) {
	st := openSQLite(t)
	svc := newService(t, st, time.UTC, time.Now)
	rec := &recorder{}
	svc.Publisher = rec
	ctx := context.Background()
	res, err := svc.Submit(ctx, jobs.SubmitRequest{Report: "rel", Priority: 7, Origin: queue.OriginCLI})
	if err != nil {
		t.Fatal(err)
	}
	if rec.wakes != 1 {
		t.Errorf("%d wakes after a submit, want 1", rec.wakes)
	}
	// Queued: cancelled at once, no agent to tell.
	j, err := svc.Cancel(ctx, res.Job.ID)
	if err != nil || j.Status != queue.StatusCancelled || len(rec.cancels) != 0 {
		t.Fatalf("cancel queued: %v %v, published %v", j, err, rec.cancels)
	}
	// Retry: the same snapshot and parameters, a new job that says what it retries.
	again, err := svc.Retry(ctx, res.Job.ID, queue.OriginAPI)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID == res.Job.ID || again.RetryOf != res.Job.ID || again.DefinitionSHA256 != res.Job.DefinitionSHA256 ||
		string(again.Params) != string(res.Job.Params) || again.Priority != 7 || again.Origin != queue.OriginAPI || again.SubmittedBy != "tester@host" {
		t.Errorf("retry: %+v", again)
	}
	// Running: a cancel request, published for its agent.
	claimOne(t, st)
	j, err = svc.Cancel(ctx, again.ID)
	if err != nil || j.Status != queue.StatusRunning || len(rec.cancels) != 1 || rec.cancels[0] != again.ID {
		t.Fatalf("cancel running: %v %v, published %v", j, err, rec.cancels)
	}
	if _, err := svc.Cancel(ctx, 999); jobs.Class(err) != errclass.NotFound {
		t.Errorf("cancel of an unknown job: %v (class %v), want not found", err, jobs.Class(err))
	}
	if _, err := svc.Retry(ctx, 999, queue.OriginCLI); jobs.Class(err) != errclass.NotFound || !strings.Contains(err.Error(), "job 999") {
		t.Errorf("retry of an unknown job: %v, want not found naming it", err)
	}
	// Every way to an unknown job says so once, in the same words (the stores' own
	// "get job: job 999: not found" repeated them), still matching queue.ErrNotFound.
	_, errGet := svc.Get(ctx, 999)
	_, errCancel := svc.Cancel(ctx, 999)
	_, errRetry := svc.Retry(ctx, 999, queue.OriginCLI)
	for name, err := range map[string]error{"get": errGet, "cancel": errCancel, "retry": errRetry} {
		if err == nil || err.Error() != "job 999 not found" || !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("%s of an unknown job: %v, want exactly \"job 999 not found\" wrapping queue.ErrNotFound", name, err)
		}
	}
}

func TestLatestMatchesResolvedParams(t *testing.T) {
	st := openSQLite(t)
	now := time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)
	svc := newService(t, st, time.UTC, fixed(now))
	ctx := context.Background()
	var ids []int64
	for _, m := range []string{"202609", "202610", "202609"} {
		res, err := svc.Submit(ctx, jobs.SubmitRequest{Report: "rel", Params: map[string]string{"month": m}})
		if err != nil {
			t.Fatal(err)
		}
		j := claimOne(t, st)
		if err := st.JobComplete(ctx, j.Lease(), queue.Completion{Rows: 1}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Job.ID)
	}
	// last-month at now is 202610: the second job.
	j, err := svc.Latest(ctx, "rel", map[string]string{"month": "last-month"})
	if err != nil || j.ID != ids[1] {
		t.Errorf("latest month=last-month: %v %v, want job %d", j, err, ids[1])
	}
	j, err = svc.Latest(ctx, "rel", nil)
	if err != nil || j.ID != ids[2] {
		t.Errorf("latest: %v %v, want job %d", j, err, ids[2])
	}
	_, err = svc.Latest(ctx, "rel", map[string]string{"month": "202601"})
	if jobs.Class(err) != errclass.NotFound || !strings.Contains(err.Error(), "no succeeded run of rel matches") {
		t.Errorf("latest without a match: %v", err)
	}
}

func TestViewShape(t *testing.T) {
	started := time.Date(2026, 11, 30, 7, 0, 1, 0, time.FixedZone("x", 3600))
	j := &queue.Job{ID: 4, Kind: queue.KindReport, Report: "rel", Status: queue.StatusRunning, Attempt: 2, Failures: 1,
		Params: json.RawMessage(`{"n":1}`), Source: "demo", Priority: 3, LeaseOwner: "a1", LeaseToken: "secret-token",
		Definition: []byte("sql: secret"), Rows: 10, RetryOf: 2, Origin: "cli", SubmittedBy: "u@h",
		RunAfter: started, CreatedAt: started, StartedAt: &started}
	b, err := json.Marshal(jobs.ViewOf(j))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":4,"kind":"report","report":"rel","status":"running","attempt":2,"failures":1,"params":{"n":1},` +
		`"source":"demo","priority":3,"agent":"a1","rows":10,"error":null,"retry_of":2,"origin":"cli","submitted_by":"u@h",` +
		`"run_after":"2026-11-30T06:00:01Z","created_at":"2026-11-30T06:00:01Z","started_at":"2026-11-30T06:00:01Z","finished_at":null}`
	if string(b) != want {
		t.Errorf("view\n got %s\nwant %s", b, want)
	}
	if strings.Contains(string(b), "secret") {
		t.Error("the view shows the lease token or the definition")
	}
	// Empty params are an object, not null.
	if v := jobs.ViewOf(&queue.Job{}); string(v.Params) != "{}" {
		t.Errorf("empty params shown as %s", v.Params)
	}
}

func TestWaitReasons(t *testing.T) {
	st := openSQLite(t)
	svc := newService(t, st, time.UTC, time.Now)
	ctx := context.Background()
	res, err := svc.Submit(ctx, jobs.SubmitRequest{Report: "rel"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PauseSet(ctx, queue.PauseReport, "rel", true); err != nil {
		t.Fatal(err)
	}
	v, err := svc.Describe(ctx, res.Job)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Waiting) == 0 || !strings.Contains(strings.Join(v.Waiting, "\n"), "paused: report rel") {
		t.Errorf("waiting %q, want the pause", v.Waiting)
	}
	if err := st.PauseSet(ctx, queue.PauseReport, "rel", false); err != nil {
		t.Fatal(err)
	}
	running := claimOne(t, st)
	why, err := svc.WaitReasons(ctx, running)
	if err != nil || why != nil {
		t.Errorf("a running job waits for %q (%v), want nothing", why, err)
	}
}

func TestWait(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			st := s.open(t)
			svc := newService(t, st, time.UTC, time.Now)
			ctx := context.Background()
			res, err := svc.Submit(ctx, jobs.SubmitRequest{Report: "rel"})
			if err != nil {
				t.Fatal(err)
			}
			// Not finished within the timeout: the job as it is, class NotFinished.
			j, err := svc.Wait(ctx, res.Job.ID, jobs.WaitOptions{Timeout: 300 * time.Millisecond})
			if jobs.Class(err) != errclass.NotFinished || j == nil || j.Status != queue.StatusQueued {
				t.Fatalf("wait with timeout: %v, %v; want the queued job and not finished", j, err)
			}
			// Finished while waiting: the job from the queue, with the events seen.
			go func() {
				time.Sleep(200 * time.Millisecond)
				c := claimOne(t, st)
				st.JobFail(context.Background(), c.Lease(), queue.JobFailParams{Error: "boom"})
			}()
			var mu sync.Mutex
			var seen []string
			j, err = svc.Wait(ctx, res.Job.ID, jobs.WaitOptions{Timeout: 20 * time.Second, OnEvent: func(ev queue.Event) {
				mu.Lock()
				seen = append(seen, ev.Event)
				mu.Unlock()
			}})
			if err != nil || j.Status != queue.StatusFailed {
				t.Fatalf("wait: %v, %v; want the failed job", j, err)
			}
			mu.Lock()
			if strings.Join(seen, ",") != "queued,running,failed" {
				t.Errorf("events %v", seen)
			}
			mu.Unlock()
			if err := jobs.Outcome(j); jobs.Class(err) != errclass.JobFailed || err.Error() != "job "+itoa(j.ID)+" failed: boom" {
				t.Errorf("outcome %v (class %v)", err, jobs.Class(err))
			}
			// Interrupted: the caller's context error; the job goes on.
			res2, err := svc.Submit(ctx, jobs.SubmitRequest{Report: "rel", Params: map[string]string{"n": "2"}})
			if err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			if _, err := svc.Wait(cctx, res2.Job.ID, jobs.WaitOptions{}); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("interrupted wait: %v", err)
			}
		})
	}
}

func TestOutcome(t *testing.T) {
	for status, want := range map[queue.Status]errclass.Class{
		queue.StatusFailed: errclass.JobFailed, queue.StatusCancelled: errclass.Cancelled,
		queue.StatusRunning: errclass.NotFinished, queue.StatusQueued: errclass.NotFinished,
	} {
		err := jobs.Outcome(&queue.Job{ID: 1, Status: status})
		if c, ok := errclass.Of(err); !ok || c != want {
			t.Errorf("%s: %v (class %v), want %v", status, err, c, want)
		}
	}
	if err := jobs.Outcome(&queue.Job{Status: queue.StatusSucceeded}); err != nil {
		t.Errorf("succeeded: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
