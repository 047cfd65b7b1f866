package etl_test

import (
	"context"
	"fmt"
	"testing"

	"rpt/etl"
)

// BenchmarkReconcile is what a source-delete sweep costs: a no-change incremental run
// of a 100,000-row table with and without `--reconcile` (every key read from the
// source into the load's temporary key table and compared with the target's).
func BenchmarkReconcile(b *testing.B) {
	const n = 100000
	e := newEnv(b)
	e.plexExec(b, "CREATE TABLE big "+benchDDL)
	e.plexExec(b, fmt.Sprintf(`INSERT INTO big SELECT seq, 123681 + seq %% 8, CONCAT(LPAD(seq %% 46000, 5, '0'), '-000-0000'), 202401 + seq %% 12,
		(seq %% 100000) / 100, (seq %% 7919) / 100, NULL, TIMESTAMP('2026-01-01') FROM seq_1_to_%d`, n))
	def, err := etl.Parse("big.yaml", []byte("name: big\nsource: plex\nextract: {table: big}\nmode: incremental\nincremental: {column: updated, nulls: skip}\n"+
		"target: {table: big, key: [id], create: \"CREATE TABLE big "+benchDDL+"\"}\n"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := etl.Run(context.Background(), def, e.plex, e.whDB, etl.Options{}); err != nil {
		b.Fatal(err)
	}
	// The no-change run re-reads the rows at the watermark's time: stamp one row later.
	e.plexExec(b, "UPDATE big SET updated = TIMESTAMP('2026-01-02') WHERE id = 1")
	for _, sweep := range []bool{false, true} {
		name := "plain"
		if sweep {
			name = "reconcile"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				st, err := etl.Run(context.Background(), def, e.plex, e.whDB, etl.Options{Reconcile: sweep})
				if err != nil {
					b.Fatal(err)
				}
				if sweep && (st.Compared != n || st.Reconciled != 0) {
					b.Fatalf("compared %d, deleted %d; want %d and 0", st.Compared, st.Reconciled, n)
				}
			}
			if sweep {
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
			}
		})
	}
}
