package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"rpt/etl"
	"rpt/internal/queue"
)

// needsReport reads the warehouse table the orders ETL loads; its data must be at most
// 4h old.
const needsReport = `name: orders-total
source: warehouse
max_attempts: 1
needs:
  - {etl: orders, max_age: 4h}
sql: SELECT COUNT(*) AS n, SUM(amount) AS total FROM orders_wh
`

func (e *etlEnv) submitReport(t *testing.T) int64 {
	t.Helper()
	return (&sqliteEnv{store: e.store}).submit(t, needsReport, nil)
}

func (e *etlEnv) etlJobs(t *testing.T) []*queue.Job {
	t.Helper()
	js, err := e.store.JobList(context.Background(), queue.JobListParams{Report: "orders", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func (e *etlEnv) waitingReasons(t *testing.T, id int64) []string {
	t.Helper()
	ev, err := e.store.EventList(context.Background(), id, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range ev {
		if v.Event == queue.EventWaiting {
			out = append(out, v.Error)
		}
	}
	return out
}

// TestNeedsStaleQueuesOneETL: two report jobs that need the orders ETL, never loaded,
// queue one ETL job between them, wait without a failure counted (max_attempts 1 would
// fail them at the first), say why, and run after the load on its data: they wait for
// the ETL job itself, so they are due in the transaction of its completion (a "ready"
// event right after its "succeeded"), not at a recheck (an hour here, which the test
// would not live to see). A report whose
// data is then fresh runs at once; one whose data has aged past max_age waits again,
// saying how old the data is.
func TestNeedsStaleQueuesOneETL(t *testing.T) {
	t.Parallel()
	e := newETLEnv(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "orders.yaml"), []byte(etlTestDef), 0o600); err != nil {
		t.Fatal(err)
	}
	// The two reports are queued before any agent runs, and the extract is held, so
	// both find the data stale while the ETL job they queue has not finished.
	e.gate.close()
	r1, r2 := e.submitReport(t), e.submitReport(t)
	cfg := testConfig()
	cfg.HistorySource = "warehouse"
	cfg.ETLDirs = []string{dir}
	cfg.NeedsRecheck = time.Hour
	startAgent(t, e.store, e.open, cfg)
	select {
	case <-e.gate.held:
	case <-time.After(30 * time.Second):
		t.Fatal("the ETL job did not start")
	}
	waitFor(t, "both reports to wait", func() bool {
		return len(e.waitingReasons(t, r1)) > 0 && len(e.waitingReasons(t, r2)) > 0
	})
	for _, id := range []int64{r1, r2} {
		j := e.job(t, id)
		if j.Status.Terminal() || !strings.HasPrefix(j.Error, "waiting for etl orders: never loaded, needs 4h") {
			t.Errorf("report %d while the ETL runs: %s, error %q; want queued or running, waiting for etl orders", id, j.Status, j.Error)
		}
	}
	e.gate.release()
	for _, id := range []int64{r1, r2} {
		waitFor(t, "report to end", func() bool { return e.job(t, id).Status.Terminal() })
	}
	etls := e.etlJobs(t)
	if len(etls) != 1 || etls[0].Kind != queue.KindETL || etls[0].Status != queue.StatusSucceeded || etls[0].Origin != queue.OriginNeeds {
		t.Fatalf("etl jobs %+v; want exactly one, succeeded, origin needs", etls)
	}
	etlDone := eventOf(t, e, etls[0].ID, queue.EventSucceeded)
	for _, id := range []int64{r1, r2} {
		ev, err := e.store.EventList(context.Background(), id, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		kept := ev[:0]
		for _, v := range ev {
			if v.Event != queue.EventProgress { // heartbeats with rows, as timing has it
				names = append(names, v.Event)
				kept = append(kept, v)
			}
		}
		ev = kept
		want := []string{"queued", "running", "waiting", "ready", "running", "succeeded"}
		if strings.Join(names, " ") != strings.Join(want, " ") {
			t.Errorf("report %d events %v, want %v", id, names, want)
		} else if ev[2].Seq > etlDone.Seq || ev[3].Seq < etlDone.Seq {
			t.Errorf("report %d waited at seq %d and was ready at seq %d; the etl job succeeded at seq %d, in between", id, ev[2].Seq, ev[3].Seq, etlDone.Seq)
		}
	}
	for _, id := range []int64{r1, r2} {
		j := e.job(t, id)
		if j.Status != queue.StatusSucceeded || j.Failures != 0 || j.Error != "" {
			t.Fatalf("report %d: %s failures %d error %q; want succeeded, no failure, no error", id, j.Status, j.Failures, j.Error)
		}
		// The proof that it ran after the load is its result: the loaded rows. (Its
		// attempt may have been claimed before the ETL job's completion reached the
		// queue: the data is fresh once the load commits in the warehouse, which comes
		// first.)
		got := readResult(t, e.store, id, j.ResultAttempt)
		if len(got) != 1 || fmt.Sprint(got[0][0]) != "100" || fmt.Sprint(got[0][1]) != "5051.00" {
			t.Errorf("report %d result %v; want 100 rows summing to 5051.00 (the loaded data)", id, got)
		}
	}

	// Fresh: runs at once, no ETL queued, no wait.
	r3 := e.submitReport(t)
	waitFor(t, "fresh report to end", func() bool { return e.job(t, r3).Status.Terminal() })
	if j := e.job(t, r3); j.Status != queue.StatusSucceeded || j.Attempt != 1 || len(e.waitingReasons(t, r3)) != 0 {
		t.Errorf("fresh report: %s attempt %d waits %v; want succeeded at its first attempt without waiting", j.Status, j.Attempt, e.waitingReasons(t, r3))
	}
	if n := len(e.etlJobs(t)); n != 1 {
		t.Errorf("a fresh report queued an ETL: %d etl jobs, want 1", n)
	}
	// Its result says how old the copy was: the orders ETL's last load, as
	// rpt_etl_state had it when the query started (migration 00014).
	states, err := etl.States(context.Background(), e.whDB)
	if err != nil || states["orders"].LastSuccess == nil {
		t.Fatalf("etl state %+v: %v", states, err)
	}
	lastLoad := *states["orders"].LastSuccess
	if j := e.job(t, r3); j.Read == nil || len(j.Read.Loads) != 1 || j.Read.Loads[0].ETL != "orders" || j.Read.Loads[0].At == nil ||
		!j.Read.Loads[0].At.Equal(lastLoad) || j.Read.Loads[0].At.After(j.Read.At) {
		t.Errorf("fresh report's read %+v; want the orders load of %s, before the read", j.Read, lastLoad)
	}

	// Aged past max_age: waits again, saying how old the data is, and a second load runs.
	if _, err := e.whDB.Exec("UPDATE rpt_etl_state SET last_success_at = UTC_TIMESTAMP(6) - INTERVAL 5 HOUR WHERE etl_name = 'orders'"); err != nil {
		t.Fatal(err)
	}
	r4 := e.submitReport(t)
	waitFor(t, "aged report to end", func() bool { return e.job(t, r4).Status.Terminal() })
	reasons := e.waitingReasons(t, r4)
	if j := e.job(t, r4); j.Status != queue.StatusSucceeded || j.Failures != 0 || len(reasons) == 0 ||
		!strings.HasPrefix(reasons[0], "waiting for etl orders: last loaded 5h ago, needs 4h") {
		t.Errorf("aged report: %s failures %d waits %q; want succeeded after waiting for etl orders: last loaded 5h ago, needs 4h", j.Status, j.Failures, reasons)
	}
	if n := len(e.etlJobs(t)); n != 2 {
		t.Errorf("%d etl jobs after the data aged, want 2", n)
	}
}

// TestNeedsGivesUp: a report still stale NeedsGiveUp after its submission fails, not
// retried, saying what it waited for, and queues no ETL; one needing an ETL no
// catalogue has fails naming needs[0].etl.
func TestNeedsGivesUp(t *testing.T) {
	t.Parallel()
	e := newETLEnv(t)
	id := e.submitReport(t)
	cfg := testConfig()
	cfg.HistorySource = "warehouse"
	cfg.NeedsGiveUp = time.Nanosecond
	startAgent(t, e.store, e.open, cfg)
	waitFor(t, "report to end", func() bool { return e.job(t, id).Status.Terminal() })
	j := e.job(t, id)
	if j.Status != queue.StatusFailed || j.Attempt != 1 || !strings.Contains(j.Error, "needs: gave up after 1ns: waiting for etl orders: never loaded, needs 4h") {
		t.Errorf("report: %s attempt %d error %q; want failed at once, having given up waiting for etl orders", j.Status, j.Attempt, j.Error)
	}
	if n := len(e.etlJobs(t)); n != 0 {
		t.Errorf("%d etl jobs queued by a report that gave up, want 0", n)
	}
}

func TestNeedsUnknownETLFails(t *testing.T) {
	t.Parallel()
	e := newETLEnv(t)
	id := e.submitReport(t) // needs orders, which is not shipped, and no ETLDirs given
	cfg := testConfig()
	cfg.HistorySource = "warehouse"
	startAgent(t, e.store, e.open, cfg)
	waitFor(t, "report to end", func() bool { return e.job(t, id).Status.Terminal() })
	if j := e.job(t, id); j.Status != queue.StatusFailed || !strings.Contains(j.Error, "needs[0].etl") || !strings.Contains(j.Error, "orders") {
		t.Errorf("report: %s error %q; want failed naming needs[0].etl", j.Status, j.Error)
	}
}

// eventOf returns job id's last event named name.
func eventOf(t *testing.T, e *etlEnv, id int64, name string) queue.Event {
	t.Helper()
	ev, err := e.store.EventList(context.Background(), id, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(ev) - 1; i >= 0; i-- {
		if ev[i].Event == name {
			return ev[i]
		}
	}
	t.Fatalf("job %d has no %s event", id, name)
	return queue.Event{}
}

// TestNeedsETLCancelEndsTheReport: the ETL job a stale report waits for is cancelled
// (while queued: its ETL is paused, so no agent takes it), and the report ends
// cancelled in the same transaction, naming that job, without running again and
// without a recheck (an hour here).
func TestNeedsETLCancelEndsTheReport(t *testing.T) {
	t.Parallel()
	e := newETLEnv(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "orders.yaml"), []byte(etlTestDef), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PauseSet(context.Background(), queue.PauseReport, "orders", true); err != nil {
		t.Fatal(err)
	}
	id := e.submitReport(t)
	cfg := testConfig()
	cfg.HistorySource = "warehouse"
	cfg.ETLDirs = []string{dir}
	cfg.NeedsRecheck = time.Hour
	startAgent(t, e.store, e.open, cfg)
	waitFor(t, "the report to wait", func() bool { return len(e.waitingReasons(t, id)) > 0 })
	etls := e.etlJobs(t)
	if len(etls) != 1 || etls[0].Status != queue.StatusQueued {
		t.Fatalf("etl jobs %+v; want one, queued (paused)", etls)
	}
	if _, err := e.store.JobCancel(context.Background(), etls[0].ID, "test"); err != nil {
		t.Fatal(err)
	}
	j := e.job(t, id)
	want := fmt.Sprintf("etl orders (job %d) cancelled", etls[0].ID)
	if j.Status != queue.StatusCancelled || j.Attempt != 1 || j.Error != want {
		t.Errorf("report: %s attempt %d error %q; want cancelled after its one attempt, %q", j.Status, j.Attempt, j.Error, want)
	}
	if ended, etlEnded := eventOf(t, e, id, queue.EventCancelled), eventOf(t, e, etls[0].ID, queue.EventCancelled); ended.Seq < etlEnded.Seq {
		t.Errorf("report cancelled at seq %d, before its etl job at %d", ended.Seq, etlEnded.Seq)
	}
}
