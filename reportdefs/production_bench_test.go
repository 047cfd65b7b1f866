package reportdefs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"rpt/internal/demo"
	"rpt/internal/source"
)

// benchProductionSource loads the default demo data set (what `rpt demo load` and the
// quickstart load: scale 1, the seven plants, DefaultLogDays of logs ending yesterday)
// into a new SQLite file and opens it. RPT_BENCH_SCALE=N loads scale N instead (N x
// the work centers and accounts), for the 10x figures of BENCHMARKS.md.
func benchProductionSource(b *testing.B) source.Source {
	b.Helper()
	ctx := context.Background()
	scale := 1
	if s := os.Getenv("RPT_BENCH_SCALE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("RPT_BENCH_SCALE=%q: want a positive integer", s)
		}
		scale = n
	}
	d := "sqlite:" + filepath.Join(b.TempDir(), "demo.db")
	st, err := demo.Load(ctx, d, demo.Options{Scale: scale})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("scale %d: loaded %d work centers, %d log entries, %d shift reports (with %d balances) in %s",
		scale, st.WorkCenters, st.LogEntries, st.ShiftReports, st.Balances, st.Elapsed.Round(time.Millisecond))
	src, err := source.Open(ctx, "demo", source.Config{Driver: "sqlite", DSN: d})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { src.Close() })
	return src
}

// benchReport runs a shipped report with params on src once per iteration, reading
// every row, and reports the rows it returned.
func benchReport(b *testing.B, src source.Source, name string, params map[string]string) {
	def := shippedDef(b, name)
	resolved, err := def.Resolve(params, time.Now(), time.UTC)
	if err != nil {
		b.Fatal(err)
	}
	values, err := def.BindValues(resolved)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var n int
	for b.Loop() {
		rows, err := src.Query(ctx, def.SQLFor(src.Driver()), values)
		if err != nil {
			b.Fatal(err)
		}
		n = 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		rows.Close()
	}
	if n == 0 {
		b.Fatalf("%s %v returned no rows", name, params)
	}
	b.ReportMetric(float64(n), "rows/op")
}

func allPlants() string {
	s := make([]string, 0, 7)
	for _, p := range demo.DefaultPlants() {
		s = append(s, fmt.Sprint(p))
	}
	return strings.Join(s, ",")
}

// BenchmarkReportMeanTimeToFailure runs mean-time-to-failure with its defaults
// (Albion, the last 12 months) and for all seven plants on the default demo data.
func BenchmarkReportMeanTimeToFailure(b *testing.B) {
	src := benchProductionSource(b)
	b.Run("albion", func(b *testing.B) { benchReport(b, src, "mean-time-to-failure", nil) })
	b.Run("all-plants", func(b *testing.B) {
		benchReport(b, src, "mean-time-to-failure", map[string]string{"pcn": allPlants()})
	})
}

// BenchmarkReportMeanTimeToRepair runs mean-time-to-repair with its defaults and for
// all seven plants on the default demo data.
func BenchmarkReportMeanTimeToRepair(b *testing.B) {
	src := benchProductionSource(b)
	b.Run("albion", func(b *testing.B) { benchReport(b, src, "mean-time-to-repair", nil) })
	b.Run("all-plants", func(b *testing.B) {
		benchReport(b, src, "mean-time-to-repair", map[string]string{"pcn": allPlants()})
	})
}

// BenchmarkReportDailyProduction runs daily-production with its defaults (Albion,
// yesterday) on the default demo data.
func BenchmarkReportDailyProduction(b *testing.B) {
	src := benchProductionSource(b)
	benchReport(b, src, "daily-production", nil)
}
