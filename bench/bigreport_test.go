package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"rpt/agent"
	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/queue/sqlite"
	"rpt/internal/results"
	"rpt/internal/source"
	"rpt/internal/testenv"
	"rpt/reportdefs"
)

// bigReportRows is how many rows BenchmarkBigReport's report returns: RPT_BENCH_ROWS,
// else 1,000,000 (the "1,000,000-row report").
func bigReportRows(b *testing.B) int {
	if s := os.Getenv("RPT_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 5000000 {
			b.Fatalf("RPT_BENCH_ROWS=%q: want 1..5000000", s)
		}
		return n
	}
	return 1000000
}

// BenchmarkBigReport is one agent (package agent, as `rpt agent` runs it) running b.N
// jobs of the bench-rows report (bench/reports/bench-rows.yaml: five columns, an
// integer, two strings, an exact decimal and a date, from MariaDB's sequence table)
// one after another, each bigReportRows rows, from query to the last result chunk
// stored and the job completed; queue and results store in MariaDB or in a SQLite
// file. ns/op is one whole report; rows/s its rate. Run it with -cpuprofile to see
// where the agent's time goes on the rows -> chunks -> results store path.
func BenchmarkBigReport(b *testing.B) {
	b.Run("queue=mysql", func(b *testing.B) {
		dsn := testenv.MariaDB(b)
		runBigReport(b, dsn, func(ctx context.Context) (queue.Store, error) {
			s, err := mysql.Open(ctx, dsn, queue.Options{})
			if err != nil {
				return nil, err
			}
			s.SetMaxOpenConns(mysql.ConnBudget(1))
			return s, nil
		})
	})
	// The floor under both: the same query read through the source (binary protocol,
	// values converted) and thrown away, nothing encoded or stored.
	b.Run("source-only", func(b *testing.B) {
		dsn := testenv.MariaDB(b)
		rows := bigReportRows(b)
		ctx := context.Background()
		def := benchRowsDef(b)
		src, err := source.Open(ctx, "benchdb", source.Config{Driver: "mysql", DSN: dsn})
		if err != nil {
			b.Fatal(err)
		}
		defer src.Close()
		resolved, err := def.Resolve(map[string]string{"rows": strconv.Itoa(rows)}, time.Now(), time.UTC)
		if err != nil {
			b.Fatal(err)
		}
		values, err := def.BindValues(resolved)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			typed, err := source.Run(ctx, src, def.Request(src.Driver(), values), def.Columns)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for typed.Next() {
				n++
			}
			if err := typed.Err(); err != nil {
				b.Fatal(err)
			}
			typed.Close()
			if n != rows {
				b.Fatalf("%d rows, want %d", n, rows)
			}
		}
		b.ReportMetric(float64(rows)*float64(b.N)/time.Since(start).Seconds(), "rows/s")
	})
	b.Run("queue=sqlite", func(b *testing.B) {
		dsn := testenv.MariaDB(b)
		path := filepath.Join(b.TempDir(), "queue.db")
		runBigReport(b, dsn, func(ctx context.Context) (queue.Store, error) {
			return sqlite.Open(ctx, path, queue.Options{})
		})
	})
}

func runBigReport(b *testing.B, srcDSN string, open func(ctx context.Context) (queue.Store, error)) {
	rows := bigReportRows(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := open(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	def := benchRowsDef(b)
	sources := map[string]source.Config{"benchdb": {Driver: "mysql", DSN: srcDSN}}
	resolved, err := def.Resolve(map[string]string{"rows": strconv.Itoa(rows)}, time.Now(), time.UTC)
	if err != nil {
		b.Fatal(err)
	}
	params := def.JobParams(resolved, sources)
	params.Origin = queue.OriginCLI
	if _, _, err := store.DefinitionPublish(ctx, queue.DefinitionPublishParams{Report: def.Name, Definition: def.Raw}); err != nil {
		b.Fatal(err)
	}
	a := agent.New(store, results.InQueue(store), func(ctx context.Context, name string) (source.Source, error) {
		return source.Open(ctx, name, sources[name])
	}, agent.Config{Name: "bench-big", Concurrency: 1, PollInterval: 5 * time.Millisecond, Grace: 5 * time.Second},
		slog.New(slog.DiscardHandler))
	agentCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = a.Run(agentCtx) })

	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		j, err := store.JobEnqueue(ctx, params)
		if err != nil {
			b.Fatal(err)
		}
		if err := waitJob(ctx, store, j.Job.ID, int64(rows), 30*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	wg.Wait()
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		b.Fatalf("agent: %v", runErr)
	}
	b.ReportMetric(float64(rows)*float64(b.N)/elapsed.Seconds(), "rows/s")
}

// benchRowsDef is bench/reports/bench-rows.yaml.
func benchRowsDef(b *testing.B) *reportdefs.Definition {
	raw, err := os.ReadFile("reports/bench-rows.yaml")
	if err != nil {
		b.Fatal(err)
	}
	def, err := reportdefs.Parse("bench-rows.yaml", raw)
	if err != nil {
		b.Fatal(err)
	}
	return def
}

// waitJob polls until job id has succeeded with rows rows; a job that ended otherwise
// is an error.
func waitJob(ctx context.Context, s queue.Store, id, rows int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		j, err := s.JobGet(ctx, id)
		if err != nil {
			return err
		}
		switch j.Status {
		case queue.StatusSucceeded:
			if j.Rows != rows {
				return fmt.Errorf("job %d succeeded with %d rows, want %d", id, j.Rows, rows)
			}
			return nil
		case queue.StatusFailed, queue.StatusCancelled:
			return fmt.Errorf("job %d %s: %s", id, j.Status, j.Error)
		}
		// Often enough to add little to a report of seconds, seldom enough not to load
		// the store the agent is writing to.
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("job did not finish in time")
}
