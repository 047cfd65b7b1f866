package deliver

import (
	"context"
	"fmt"
	"testing"
	"time"

	"rpt/internal/config"
	"rpt/internal/source"
)

// tbRows is a trial-balance-shaped result: n rows of the eight columns.
type tbRows struct {
	n, i int
	vals []any
}

func (r *tbRows) Columns() []source.Column {
	out := []source.Column{}
	for _, c := range []struct {
		n string
		t source.Type
	}{{"period_display", source.TypeString}, {"category_type", source.TypeString}, {"category_name", source.TypeString},
		{"sub_category_name", source.TypeString}, {"account_no", source.TypeString}, {"account_name", source.TypeString},
		{"current_debit_credit", source.TypeDecimal}, {"ytd_debit_credit", source.TypeDecimal}} {
		out = append(out, source.Column{Name: c.n, Type: c.t})
	}
	return out
}
func (r *tbRows) Next() bool {
	if r.i >= r.n {
		return false
	}
	r.i++
	r.vals = []any{fmt.Sprintf("2027-%02d", r.i%13+1), "Asset", "Current Assets", "Cash", fmt.Sprintf("%05d-000", r.i%4600),
		"Cash - Operating Account", fmt.Sprintf("%d.%02d", r.i*37%100000, r.i%100), fmt.Sprintf("-%d.%02d", r.i*91%1000000, r.i%100)}
	return true
}
func (r *tbRows) Values() []any { return r.vals }
func (r *tbRows) Err() error    { return nil }
func (r *tbRows) Close() error  { return nil }

// BenchmarkMailTrialBalance builds the weekly mail of a 13-month trial balance (about
// 60,000 rows): the .xlsx render is the cost of a delivery before the hand-over.
func BenchmarkMailTrialBalance(b *testing.B) {
	s := &Sender{Deliver: config.Deliver{EmailDomains: []string{"example.com"}, MaxAttachment: 64 << 20},
		SMTP: &config.SMTP{Host: "h.example.com", From: "reports@example.com"}}
	t, _ := Parse("mailto:accounting@example.com")
	r := Result{JobID: 1, Report: "trial-balance", Rows: 60000, Finished: time.Now(), Filename: "tb",
		Open: func(context.Context) (source.Rows, error) { return &tbRows{n: 60000}, nil }}
	var size int
	for b.Loop() {
		m, err := s.Mail(context.Background(), t, 1, r)
		if err != nil {
			b.Fatal(err)
		}
		size = len(m.Data)
	}
	b.ReportMetric(float64(size), "attachment-bytes")
}
