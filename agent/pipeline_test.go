package agent

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"rpt/etl"
	"rpt/internal/demo"
	"rpt/internal/queue"
	"rpt/internal/queue/sqlite"
	"rpt/internal/source"
	"rpt/internal/testenv"
	"rpt/reportdefs"
)

// TestShippedPipelineAsJobs: the shipped accounting-ytd ETL submitted as a pipeline
// (what `rpt etl submit accounting-ytd --pipeline` queues: etl.EnqueuePipeline over the
// catalogue's order) into an empty warehouse, run by an agent with two slots. Every job
// starts only after each of its prerequisites' jobs succeeded (by the events' seq, not
// the clock), a second submit of the same pipeline while it runs joins the same jobs,
// and the shipped trial balance over the loaded warehouse sums to zero per PCN and
// period, as does the year-to-date table the last ETL computes.
func TestShippedPipelineAsJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	plexDSN, whDSN := testenv.MariaDB(t), testenv.MariaDB(t)
	opts := demo.Options{Scale: 1, Periods: 4, End: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), PCNs: []int{123681, 300758},
		Seed: 7, Plants: []int{300758}, LogDays: 2, Shape: demo.ShapePlex}
	if _, err := demo.Load(ctx, plexDSN, opts); err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "queue.db"), queue.Options{RetryBase: time.Hour, RetryMax: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	cat, err := etl.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	order, err := cat.Order([]string{"accounting-ytd"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range order {
		names = append(names, d.Name)
	}
	if fmt.Sprint(names) != "[plex-accounts plex-periods plex-balances accounting-ytd]" {
		t.Fatalf("pipeline order %v", names)
	}
	queued, err := etl.EnqueuePipeline(ctx, store, order, etl.JobArgs{}, func(d *etl.Definition, p *queue.JobEnqueueParams) {
		p.Origin = queue.OriginCLI
		p.SubmitToken = "pipeline-test:" + d.Name
	})
	if err != nil {
		t.Fatal(err)
	}
	jobOf := map[string]int64{}
	for _, q := range queued {
		if q.Joined || q.Job.Status != queue.StatusQueued {
			t.Fatalf("%s: joined %v status %s; want a new queued job", q.ETL, q.Joined, q.Job.Status)
		}
		jobOf[q.ETL] = q.Job.ID
	}
	if want := []int64{jobOf["plex-accounts"], jobOf["plex-balances"]}; fmt.Sprint(queued[3].After) != fmt.Sprint(want) {
		t.Fatalf("accounting-ytd waits for %v, want %v", queued[3].After, want)
	}
	// Submitted again before any agent runs: the same jobs, joined by their dedupe key.
	again, err := etl.EnqueuePipeline(ctx, store, order, etl.JobArgs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, q := range again {
		if !q.Joined || q.Job.ID != queued[i].Job.ID {
			t.Errorf("second submit of %s: job %d joined %v; want job %d joined", q.ETL, q.Job.ID, q.Joined, queued[i].Job.ID)
		}
	}

	open := func(ctx context.Context, name string) (source.Source, error) {
		dsn := whDSN
		if name == "plex-odbc" || name == "plex" {
			dsn = plexDSN
		}
		return source.Open(ctx, name, source.Config{Driver: "mysql", DSN: dsn})
	}
	cfg := testConfig()
	cfg.HistorySource = "warehouse"
	cfg.LeaseDuration = time.Minute
	a, _ := startAgent(t, store, open, cfg)
	var wakes atomic.Int64 // what the CLI's agent publishes over MQTT
	a.WakeOthersWith(func() { wakes.Add(1) })
	last := queued[len(queued)-1].Job.ID
	// Loads take their time on a shared machine: a bound on the wait, not a measure.
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if j, err := store.JobGet(ctx, last); err == nil && j.Status.Terminal() {
			break
		}
		if time.Now().After(deadline) {
			// What the ETL was doing, for a hang seen under heavy machine load.
			buf := make([]byte, 4<<20)
			for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
				if strings.Contains(g, "rpt/etl.") {
					t.Logf("%s\n", g)
				}
			}
			t.Fatal("gave up waiting for the pipeline's last job to end")
		}
	}
	for _, q := range queued {
		j, err := store.JobGet(ctx, q.Job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != queue.StatusSucceeded {
			t.Fatalf("%s (job %d): %s %q", q.ETL, j.ID, j.Status, j.Error)
		}
	}
	// The wake-ups other agents get: one per ETL job that succeeded (the first may
	// have succeeded before the hook was set).
	if n := wakes.Load(); n < int64(len(queued)-1) {
		t.Errorf("%d wake-ups published for %d ETL jobs that succeeded", n, len(queued))
	}
	seqOf := func(id int64, event string, first bool) int64 {
		ev, err := store.EventList(ctx, id, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var seq int64
		for _, e := range ev {
			if e.Event == event && (seq == 0 || !first) {
				seq = e.Seq
			}
		}
		if seq == 0 {
			t.Fatalf("job %d has no %s event", id, event)
		}
		return seq
	}
	for _, q := range queued {
		started := seqOf(q.Job.ID, queue.EventRunning, true)
		for _, p := range q.After {
			if done := seqOf(p, queue.EventSucceeded, false); done > started {
				t.Errorf("%s (job %d) started at seq %d, before its prerequisite job %d succeeded at seq %d", q.ETL, q.Job.ID, started, p, done)
			}
		}
		if len(q.After) > 0 {
			if ready := seqOf(q.Job.ID, queue.EventReady, false); ready > started {
				t.Errorf("%s (job %d): ready at seq %d after it started at %d", q.ETL, q.Job.ID, ready, started)
			}
		}
	}

	wh, err := open(ctx, "warehouse")
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	whDB := wh.(interface{ DB() *sql.DB }).DB()
	rcat, err := reportdefs.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	tb, err := rcat.Get("trial-balance")
	if err != nil {
		t.Fatal(err)
	}
	for _, pcn := range opts.PCNs {
		resolved, err := tb.Resolve(map[string]string{"pcn": fmt.Sprint(pcn), "start_period": "202512", "end_period": "202603"}, time.Now(), time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		values, err := tb.BindValues(resolved)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := source.Run(ctx, wh, tb.Request(wh.Driver(), values), tb.Columns)
		if err != nil {
			t.Fatal(err)
		}
		sums := map[string][2]*big.Rat{}
		n := 0
		for rows.Next() {
			v := rows.Values()
			period := fmt.Sprint(v[0])
			s, ok := sums[period]
			if !ok {
				s = [2]*big.Rat{new(big.Rat), new(big.Rat)}
				sums[period] = s
			}
			for i, col := range []int{6, 7} {
				r, ok := new(big.Rat).SetString(fmt.Sprint(v[col]))
				if !ok {
					t.Fatalf("pcn %d row %d: column %d %v is not a number", pcn, n, col, v[col])
				}
				s[i].Add(s[i], r)
			}
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if n == 0 || len(sums) != 4 {
			t.Fatalf("pcn %d: trial balance has %d rows over %d periods, want rows over 4 periods", pcn, n, len(sums))
		}
		for p, s := range sums {
			if s[0].Sign() != 0 || s[1].Sign() != 0 {
				t.Errorf("pcn %d period %s: current sums to %s, ytd to %s; want 0 and 0 (double entry)", pcn, p, s[0].FloatString(2), s[1].FloatString(2))
			}
		}
		var bad int
		if err := whDB.QueryRow(`SELECT COUNT(*) FROM (SELECT period FROM accounting_balance_ytd WHERE pcn = ? GROUP BY period
			HAVING SUM(current_debit_credit) <> 0 OR SUM(ytd_debit_credit) <> 0) x`, pcn).Scan(&bad); err != nil {
			t.Fatal(err)
		}
		if bad != 0 {
			t.Errorf("pcn %d: %d periods of accounting_balance_ytd do not sum to zero", pcn, bad)
		}
	}
}
