package results

import (
	"context"
	"io"
	"strconv"
	"testing"

	"rpt/internal/queue"
	"rpt/internal/source"
)

// discardStore keeps nothing, so a benchmark measures the writer alone.
type discardStore struct{ bytes int64 }

func (s *discardStore) ChunkPut(_ context.Context, _ queue.Lease, _ int, data []byte) error {
	s.bytes += int64(len(data))
	return nil
}

func (s *discardStore) ChunkGet(context.Context, int64, int, int) ([]byte, error) {
	return nil, queue.ErrNotFound
}

// benchCols is a trial-balance row.
var benchCols = []source.Column{
	{Name: "period_display", Type: source.TypeString},
	{Name: "category_type", Type: source.TypeString},
	{Name: "category_name", Type: source.TypeString},
	{Name: "account_no", Type: source.TypeString},
	{Name: "account_name", Type: source.TypeString},
	{Name: "period", Type: source.TypeInt},
	{Name: "current_debit_credit", Type: source.TypeDecimal},
	{Name: "ytd_debit_credit", Type: source.TypeDecimal},
	{Name: "end_date", Type: source.TypeDate},
}

func benchRow(i int) []any {
	return []any{"2024-01", "Asset", "Current Assets", "1000-" + strconv.Itoa(i%500), "Cash in bank " + strconv.Itoa(i%500),
		int64(202401 + i%12), strconv.Itoa(i%100000) + ".25", "-" + strconv.Itoa(i) + ".10", "2024-01-31"}
}

func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	rows := make([][]any, 1000)
	for i := range rows {
		rows[i] = benchRow(i)
	}
	store := &discardStore{}
	b.ReportAllocs()
	w := NewWriter(store, queue.Lease{JobID: 1, Attempt: 1}, benchCols)
	for i := 0; b.Loop(); i++ {
		if err := w.Write(ctx, rows[i%len(rows)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(w.Rows())/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(store.bytes)/float64(w.Rows()), "stored-bytes/row")
}

func BenchmarkReadCSV(b *testing.B) {
	ctx := context.Background()
	const n = 100_000
	store := newMemStore()
	w := NewWriter(store, queue.Lease{JobID: 1, Attempt: 1}, benchCols)
	for i := range n {
		if err := w.Write(ctx, benchRow(i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	runs := 0
	for b.Loop() {
		rows, err := Open(ctx, store, Ref{JobID: 1, Attempt: 1})
		if err != nil {
			b.Fatal(err)
		}
		if err := Render(ctx, io.Discard, "csv", rows, RenderOptions{}); err != nil {
			b.Fatal(err)
		}
		rows.Close()
		runs++
	}
	b.ReportMetric(float64(runs*n)/b.Elapsed().Seconds(), "rows/s")
}
