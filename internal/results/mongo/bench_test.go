package mongo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"rpt/cli"
	"rpt/internal/queue"
	"rpt/internal/queue/mysql"
	"rpt/internal/results"
	"rpt/internal/results/mongo"
	"rpt/internal/results/mongo/mongotest"
	"rpt/internal/source"
	"rpt/internal/testenv"
)

// benchRows is the size of the result BenchmarkGetCSV reads: RPT_BENCH_ROWS, default
// 200,000 (the figure is 1,000,000: RPT_BENCH_ROWS=1000000).
func benchRows(b *testing.B) int {
	if s := os.Getenv("RPT_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("RPT_BENCH_ROWS=%q: want a positive number", s)
		}
		return n
	}
	return 200000
}

// storeResult writes rows rows shaped like a trial balance line (period, account, name,
// two amounts) as job's result in rs and completes the job.
func storeResult(b *testing.B, q queue.Store, rs results.Store, rows int) int64 {
	b.Helper()
	ctx := context.Background()
	if _, err := q.JobEnqueue(ctx, queue.JobEnqueueParams{Kind: queue.KindReport, Report: "big",
		Definition: []byte("name: big\n"), DefinitionSHA256: "x", Params: json.RawMessage(`{}`), Source: "w", MaxAttempts: 1}); err != nil {
		b.Fatal(err)
	}
	jobs, err := q.JobClaim(ctx, queue.JobClaimParams{Agent: "bench", Limit: 1, LeaseDuration: time.Hour})
	if err != nil || len(jobs) != 1 {
		b.Fatalf("claim: %v", err)
	}
	j := jobs[0]
	w := results.NewWriter(rs, j.Lease(), []source.Column{
		{Name: "period_display", Type: source.TypeString}, {Name: "account_no", Type: source.TypeString},
		{Name: "account_name", Type: source.TypeString}, {Name: "debit", Type: source.TypeInt}, {Name: "credit", Type: source.TypeInt},
	})
	for i := range rows {
		if err := w.Write(ctx, []any{fmt.Sprintf("2024-%02d", i%12+1), fmt.Sprintf("%05d-%03d", i%4600, i%7),
			"Account " + strconv.Itoa(i%4600), int64(i * 7 % 100003), int64(i * 13 % 99991)}); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	if err := q.JobComplete(ctx, j.Lease(), queue.Completion{Rows: int64(rows), ResultStore: rs.Name(), ResultChunks: w.Chunks()}); err != nil {
		b.Fatal(err)
	}
	return j.ID
}

// BenchmarkGetCSV runs `rpt get ID --csv` (the command, in-process, output discarded) of
// the same result kept in MongoDB (an embedded FerretDB on SQLite) and in the MariaDB
// queue database, in one run. It reports rows/s and the heap in use after each read
// (flat: a read holds one chunk at a time).
//
//	go test -run '^$' -bench GetCSV -benchtime 3x ./internal/results/mongo
func BenchmarkGetCSV(b *testing.B) {
	rows := benchRows(b)
	queueDSN := testenv.MariaDB(b)
	ctx := context.Background()
	q, err := mysql.Open(ctx, queueDSN, queue.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Close() })
	if err := q.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	srv := mongotest.Start(b)
	mongoURI := srv.URI("bench")
	ms, err := mongo.Open(ctx, mongoURI, q)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ms.Close() })

	start := time.Now()
	inMongo := storeResult(b, q, ms, rows)
	b.Logf("%d rows written to MongoDB (FerretDB) in %s", rows, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	inMaria := storeResult(b, q, results.InQueue(q), rows)
	b.Logf("%d rows written to MariaDB in %s", rows, time.Since(start).Round(time.Millisecond))

	cfg := b.TempDir() + "/rpt.yaml"
	if err := os.WriteFile(cfg, []byte("queue: "+queueDSN+"\nresults: "+mongoURI+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	deps := cli.Deps{
		OpenQueue: func(ctx context.Context, s string, opts queue.Options) (queue.Store, error) {
			return mysql.Open(ctx, s, opts)
		},
		OpenSource: source.Open,
		OpenResults: func(ctx context.Context, uri string, q queue.Store) (results.Store, error) {
			return mongo.Open(ctx, uri, q)
		},
		Stderr: io.Discard,
	}
	for _, tc := range []struct {
		name string
		id   int64
	}{{"mongodb", inMongo}, {"mariadb", inMaria}} {
		b.Run(tc.name, func(b *testing.B) {
			var out countingWriter
			d := deps
			d.Stdout = &out
			var heap uint64
			for b.Loop() {
				out = 0
				if code := cli.Main(ctx, []string{"rpt", "--config", cfg, "get", strconv.FormatInt(tc.id, 10), "--csv"}, d); code != 0 {
					b.Fatalf("rpt get exit %d", code)
				}
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				heap = max(heap, m.HeapInuse)
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(out)/float64(1<<20), "MiB-csv")
			b.ReportMetric(float64(heap)/float64(1<<20), "MiB-heap")
		})
	}
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}
