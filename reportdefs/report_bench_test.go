package reportdefs_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"rpt/internal/demo"
	"rpt/internal/results"
	"rpt/internal/source"
	"rpt/internal/testenv"
)

// The figures of BENCHMARKS.md: each shipped report run the way an agent runs it
// (source query, column retyping, rendering; here as csv to io.Discard instead of
// result chunks), on the demo data set of `rpt demo load`, on SQLite and, when
// RPT_TEST_MYSQL_DSN is set, on MariaDB. RPT_BENCH_SCALE=10 gives the 10x figures
// (the demo load alone then takes half a minute or more per store, and a run of all
// cases several minutes).
//
//	go test -run '^$' -bench BenchmarkReports -benchtime 5x ./reportdefs/
//	RPT_BENCH_SCALE=10 go test -run '^$' -bench BenchmarkReports -benchtime 3x -timeout 60m ./reportdefs/
//	RPT_TEST_MYSQL_DSN=mysql://root@127.0.0.1:3306/ go test -run '^$' -bench 'BenchmarkReports/mariadb' ./reportdefs/

// reportBenchCases are the shipped reports with their default parameters, which is
// what users run most, plus the wider runs accounting and maintenance also make.
func reportBenchCases() []struct {
	name, report string
	params       map[string]string
} {
	return []struct {
		name, report string
		params       map[string]string
	}{
		{"trial-balance", "trial-balance", nil},
		{"trial-balance-12m", "trial-balance", map[string]string{"start_period": "-12m"}},
		// The same numbers from the Plex-side views, with the window over every period
		// up to end_period (the shape trial-balance had before the warehouse tables).
		{"trial-balance-live", "trial-balance-live", nil},
		{"trial-balance-live-12m", "trial-balance-live", map[string]string{"start_period": "-12m"}},
		{"mean-time-to-failure", "mean-time-to-failure", nil},
		{"mean-time-to-failure-all-plants", "mean-time-to-failure", map[string]string{"pcn": allPlants()}},
		{"mean-time-to-repair", "mean-time-to-repair", nil},
		{"mean-time-to-repair-all-plants", "mean-time-to-repair", map[string]string{"pcn": allPlants()}},
		{"daily-production", "daily-production", nil},
	}
}

// BenchmarkReports loads the demo data once per store and runs every report case on
// it: BenchmarkReports/sqlite-x1/trial-balance, .../mariadb-x1/... It reports the rows
// a run returns and the peak heap in use while the runs went on.
func BenchmarkReports(b *testing.B) {
	scale := benchScale(b)
	b.Logf("GOMAXPROCS %d, %s/%s", runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
	b.Run(fmt.Sprintf("sqlite-x%d", scale), func(b *testing.B) {
		d := "sqlite:" + filepath.Join(b.TempDir(), "demo.db")
		benchStore(b, d, source.Config{Driver: "sqlite", DSN: d}, scale)
	})
	// MariaDB only when a server is configured: without one the benchmark would skip
	// as a whole, SQLite figures included.
	if os.Getenv(testenv.EnvMySQLDSN) != "" {
		b.Run(fmt.Sprintf("mariadb-x%d", scale), func(b *testing.B) {
			d := testenv.MariaDB(b)
			benchStore(b, d, source.Config{Driver: "mysql", DSN: d}, scale)
		})
	}
}

// benchScale is RPT_BENCH_SCALE, default 1.
func benchScale(b *testing.B) int {
	b.Helper()
	s := os.Getenv("RPT_BENCH_SCALE")
	if s == "" {
		return 1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > demo.MaxScale {
		b.Fatalf("RPT_BENCH_SCALE=%q: want an integer 1..%d", s, demo.MaxScale)
	}
	return n
}

func benchStore(b *testing.B, dsnStr string, cfg source.Config, scale int) {
	ctx := context.Background()
	st, err := demo.Load(ctx, dsnStr, demo.Options{Scale: scale})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("scale %d: loaded %d accounts (%d balances), %d work centers, %d log entries, %d shift reports in %s",
		scale, st.Accounts, st.Balances, st.WorkCenters, st.LogEntries, st.ShiftReports, st.Elapsed.Round(time.Millisecond))
	src, err := source.Open(ctx, "warehouse", cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { src.Close() })
	for _, c := range reportBenchCases() {
		b.Run(c.name, func(b *testing.B) { benchRender(b, src, c.report, c.params) })
	}
}

// benchRender runs report as the agent does, rendering every row as csv to
// io.Discard, once per iteration.
func benchRender(b *testing.B, src source.Source, report string, params map[string]string) {
	def := shippedDef(b, report)
	resolved, err := def.Resolve(params, time.Now(), time.UTC)
	if err != nil {
		b.Fatal(err)
	}
	values, err := def.BindValues(resolved)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	peak := watchHeap()
	var n int64
	for b.Loop() {
		rows, err := source.Run(ctx, src, def.Request(src.Driver(), values), def.Columns)
		if err != nil {
			b.Fatal(err)
		}
		counted := &countingRows{Rows: rows}
		if err := results.Render(ctx, io.Discard, "csv", counted, results.RenderOptions{}); err != nil {
			b.Fatal(err)
		}
		if err := rows.Close(); err != nil {
			b.Fatal(err)
		}
		n = counted.n
	}
	peakBytes := peak()
	if n == 0 {
		b.Fatalf("%s %v returned no rows", report, params)
	}
	b.ReportMetric(float64(n), "rows/op")
	b.ReportMetric(float64(peakBytes)/(1<<20), "peak-heap-MiB")
}

// countingRows counts the rows read through it.
type countingRows struct {
	source.Rows
	n int64
}

func (r *countingRows) Next() bool {
	if !r.Rows.Next() {
		return false
	}
	r.n++
	return true
}

// watchHeap samples runtime.MemStats.HeapInuse every 10 ms from a GC'd start until
// the returned func is called, which stops the sampling and returns the peak. It is
// the process's heap: the benchmark's runs, the source's driver and the test binary.
func watchHeap() (stop func() uint64) {
	runtime.GC()
	var peak atomic.Uint64
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		for {
			old := peak.Load()
			if ms.HeapInuse <= old || peak.CompareAndSwap(old, ms.HeapInuse) {
				return
			}
		}
	}
	sample()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		sample()
		return peak.Load()
	}
}

// allPlants is the demo's seven plants as a -p list value.
func allPlants() string {
	s := make([]string, 0, 7)
	for _, p := range demo.DefaultPlants() {
		s = append(s, fmt.Sprint(p))
	}
	return strings.Join(s, ",")
}
