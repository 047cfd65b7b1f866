package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"rpt/agent"
	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/results"
	"rpt/internal/source"
	"rpt/internal/testenv"
	"rpt/reportdefs"

	_ "modernc.org/sqlite"
)

// BenchmarkAgentDrain is the real agent (package agent, as `rpt agent` runs it: trust
// check, source, result writer, lease keeper, outcome write) draining b.N one-row jobs
// (`SELECT 1` on a SQLite source file, the cheapest source there is) from a MariaDB
// queue where they were queued first, with `conc` jobs at once. ns/op is per job; jobs/s
// the same inverted. It is the in-process figure that bench/river.sh sets beside
// River's burndown; run it with -cpuprofile to see where an agent's time goes.
func BenchmarkAgentDrain(b *testing.B) {
	for _, conc := range []int{8, 64} {
		b.Run(fmt.Sprintf("mysql/conc=%d", conc), func(b *testing.B) { runAgentDrain(b, conc) })
	}
}

func runAgentDrain(b *testing.B, conc int) {
	dsn := testenv.MariaDB(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := mysql.Open(ctx, dsn, queue.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	if err := sub.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	srcPath := filepath.Join(b.TempDir(), "src.db")
	if err := touchSQLite(srcPath); err != nil {
		b.Fatal(err)
	}
	sources := map[string]source.Config{"db": {Driver: "sqlite", DSN: "sqlite://" + srcPath}}
	def, err := reportdefs.Parse("drain.yaml", []byte("name: drain\nsource: db\nsql: SELECT 1 AS one\n"))
	if err != nil {
		b.Fatal(err)
	}
	resolved, err := def.Resolve(nil, time.Now(), time.UTC)
	if err != nil {
		b.Fatal(err)
	}
	params := def.JobParams(resolved, sources)
	params.Origin = queue.OriginCLI
	if _, _, err := sub.DefinitionPublish(ctx, queue.DefinitionPublishParams{Report: def.Name, Definition: def.Raw}); err != nil {
		b.Fatal(err)
	}
	if err := enqueueN(ctx, sub, params, b.N); err != nil {
		b.Fatal(err)
	}

	agentStore, err := mysql.Open(ctx, dsn, queue.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer agentStore.Close()
	agentStore.SetMaxOpenConns(mysql.ConnBudget(conc))
	a := agent.New(agentStore, results.InQueue(agentStore), func(ctx context.Context, name string) (source.Source, error) {
		return source.Open(ctx, name, sources[name])
	}, agent.Config{Name: "bench-drain", Concurrency: conc, PollInterval: 10 * time.Millisecond, Grace: 5 * time.Second},
		slog.New(slog.DiscardHandler))

	b.ResetTimer()
	start := time.Now()
	agentCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = a.Run(agentCtx) })
	err = waitSucceeded(ctx, sub.DB(), b.N, 10*time.Minute)
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	wg.Wait()
	if err != nil {
		b.Fatal(err)
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		b.Fatalf("agent: %v", runErr)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
	// Completions per transaction: the events of one transaction share its timestamp.
	var commits int
	if err := sub.DB().QueryRowContext(ctx, "SELECT COUNT(DISTINCT at) FROM rpt_job_events WHERE event = 'succeeded'").Scan(&commits); err == nil && commits > 0 {
		b.ReportMetric(float64(b.N)/float64(commits), "jobs/commit")
	}
}

// touchSQLite creates an empty SQLite database file.
func touchSQLite(path string) error {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
	return err
}

// enqueueN queues n copies of p, a thousand per transaction (JobEnqueueBatch).
func enqueueN(ctx context.Context, s queue.Store, p queue.JobEnqueueParams, n int) error {
	be := s.(queue.BatchEnqueuer)
	for left := n; left > 0; left -= 1000 {
		ps := make([]queue.JobEnqueueParams, min(left, 1000))
		for i := range ps {
			ps[i] = p
		}
		if _, err := be.JobEnqueueBatch(ctx, ps); err != nil {
			return err
		}
	}
	return nil
}

// waitSucceeded polls until n jobs have succeeded; a failed job is an error.
func waitSucceeded(ctx context.Context, db *sql.DB, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		var ok, bad int
		if err := db.QueryRowContext(ctx, "SELECT COALESCE(SUM(status = 'succeeded'), 0), COALESCE(SUM(status IN ('failed', 'cancelled')), 0) FROM rpt_jobs").Scan(&ok, &bad); err != nil {
			return err
		}
		if bad > 0 {
			var msg sql.NullString
			_ = db.QueryRowContext(ctx, "SELECT error FROM rpt_jobs WHERE status = 'failed' LIMIT 1").Scan(&msg)
			return fmt.Errorf("%d jobs failed: %s", bad, msg.String)
		}
		if ok >= n {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("jobs not all succeeded within %s", limit)
}
