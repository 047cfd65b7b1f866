package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/results"
	"rpt/internal/source"
)

// benchFixture is a fixture over the embedded default queue (SQLite).
func benchFixture(b *testing.B) *fixture {
	return newFixture(b, openSQLite(b))
}

// BenchmarkJobList: GET /api/v1/jobs (a page of 50) over a queue of 1,000 jobs.
func BenchmarkJobList(b *testing.B) {
	f := benchFixture(b)
	for n := range 1000 {
		f.submit(n)
	}
	view := f.tokens[queue.RoleViewer]
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if r := f.do("GET", "/api/v1/jobs", view, ""); r.status != 200 {
			b.Fatalf("list: %d", r.status)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkSubmit: POST /api/v1/jobs, each a new job.
func BenchmarkSubmit(b *testing.B) {
	f := benchFixture(b)
	sub := f.tokens[queue.RoleSubmitter]
	n := 0
	start := time.Now()
	for b.Loop() {
		n++
		if r := f.do("POST", "/api/v1/jobs", sub, fmt.Sprintf(`{"report":"numbers","params":{"n":%d}}`, n)); r.status != 201 {
			b.Fatalf("submit: %d %s", r.status, r.body)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkCSVFirstByte: the time to the first byte of the CSV download of a
// 1,000,000-row result (streamed, so it does not grow with the result), and the whole
// download's rate.
func BenchmarkCSVFirstByte(b *testing.B) {
	f := benchFixture(b)
	f.submit(1)
	ctx := context.Background()
	cl, err := f.st.JobClaim(ctx, queue.JobClaimParams{Agent: "bench", Limit: 1, LeaseDuration: time.Hour})
	if err != nil || len(cl) != 1 {
		b.Fatalf("claim: %v", err)
	}
	const rows = 1_000_000
	w := results.NewWriter(results.InQueue(f.st), cl[0].Lease(), []source.Column{{Name: "n", Type: source.TypeInt}, {Name: "label", Type: source.TypeString}})
	for i := range rows {
		if err := w.Write(ctx, []any{int64(i), "account 4000-" + fmt.Sprint(i%4600)}); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	if err := f.st.JobComplete(ctx, cl[0].Lease(), queue.Completion{Rows: rows, ResultStore: results.QueueStoreName, ResultChunks: w.Chunks()}); err != nil {
		b.Fatal(err)
	}
	url := fmt.Sprintf("%s/api/v1/jobs/%d/result", f.srv.URL, cl[0].ID)
	var ttfb, total time.Duration
	var size int64
	for b.Loop() {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+f.tokens[queue.RoleViewer])
		start := time.Now()
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		one := make([]byte, 1)
		if _, err := io.ReadFull(res.Body, one); err != nil {
			b.Fatal(err)
		}
		ttfb += time.Since(start)
		n, err := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("download: %d %v", res.StatusCode, err)
		}
		total += time.Since(start)
		size = n + 1
	}
	b.ReportMetric(float64(ttfb.Microseconds())/1000/float64(b.N), "ms-first-byte")
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-whole")
	b.ReportMetric(float64(size)/1e6, "MB")
}
