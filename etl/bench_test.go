package etl_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"rpt/etl"
	"rpt/internal/demo"
)

// The engine's benchmarks, against the MariaDB of RPT_TEST_MYSQL_DSN (skipped without
// it). bench/etl/run.sh measures the rpt binary next to mariadb-dump | mariadb; these
// are for profiles (-cpuprofile, -memprofile) of the engine alone and for the
// no-change incremental run.

const benchDDL = `(id BIGINT NOT NULL PRIMARY KEY, pcn INT NOT NULL, account_no VARCHAR(20) NOT NULL, period INT NOT NULL,
  debit DECIMAL(19,2) NOT NULL, credit DECIMAL(19,2) NOT NULL, note VARCHAR(64) NULL, updated DATETIME(6) NOT NULL)
  ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`

// BenchmarkFullLoad is one full load of RPT_BENCH_ETL_ROWS rows (default 100,000) of
// bench/etl/run.sh's table into an empty target (the target is dropped between
// iterations, outside the timer) and, as replace, over the previous load's rows.
func BenchmarkFullLoad(b *testing.B) {
	n := 100000
	if s := os.Getenv("RPT_BENCH_ETL_ROWS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("RPT_BENCH_ETL_ROWS=%q: want a positive number of rows", s)
		}
		n = v
	}
	e := newEnv(b)
	e.plexExec(b, "CREATE TABLE big "+benchDDL)
	e.plexExec(b, fmt.Sprintf(`INSERT INTO big SELECT seq, 123681 + seq %% 8, CONCAT(LPAD(seq %% 46000, 5, '0'), '-000-0000'), 202401 + seq %% 12,
		(seq %% 100000) / 100, (seq %% 7919) / 100, IF(seq %% 10 = 0, NULL, CONCAT('row ', seq, '\ttab')),
		TIMESTAMP('2026-01-01') + INTERVAL seq SECOND FROM seq_1_to_%d`, n))
	def, err := etl.Parse("big.yaml", []byte("name: big\nsource: plex\nextract: {table: big}\nmode: full\n"+
		"target: {table: big, max_shrink: 1, create: \"CREATE TABLE big "+benchDDL+"\"}\n"))
	if err != nil {
		b.Fatal(err)
	}
	for _, replace := range []bool{false, true} {
		name := "empty"
		if replace {
			name = "replace"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if !replace {
					b.StopTimer()
					if _, err := e.whDB.Exec("DROP TABLE IF EXISTS big"); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				st, err := etl.Run(context.Background(), def, e.plex, e.whDB, etl.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if st.Written != int64(n) {
					b.Fatalf("wrote %d rows, want %d", st.Written, n)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkIncrementalNoChange is a no-change run of each shipped incremental ETL over
// the demo data at the default scale (demo load --shape plex: scale 1, the default
// periods, PCNs, plants and log days), after a first run that loaded everything: what
// an hourly run costs when nothing moved. The aim is under a second.
func BenchmarkIncrementalNoChange(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	opts := demo.Options{Scale: 1, End: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), Seed: 7, Shape: demo.ShapePlex}
	if _, err := demo.Load(ctx, e.plexDSN, opts); err != nil {
		b.Fatal(err)
	}
	cat, err := etl.LoadCatalog()
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range cat.List() {
		if d.Mode != etl.ModeIncremental {
			continue
		}
		first := e.run(b, d, etl.Options{})
		b.Run(d.Name, func(b *testing.B) {
			var st etl.Stats
			for b.Loop() {
				st = e.run(b, d, etl.Options{})
			}
			if st.Watermark != first.Watermark {
				b.Fatalf("no-change run moved the watermark from %q to %q", first.Watermark, st.Watermark)
			}
			b.ReportMetric(float64(first.Read), "rows-first")
			b.ReportMetric(float64(st.Read), "rows-read")
		})
	}
}
