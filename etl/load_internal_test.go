package etl

import (
	"bytes"
	"io"
	"testing"
	"time"

	"rpt/internal/source"
)

// sliceRows is an extract held in memory.
type sliceRows struct {
	cols []source.Column
	rows [][]any
	i    int
}

func (r *sliceRows) Columns() []source.Column { return r.cols }
func (r *sliceRows) Next() bool               { r.i++; return r.i <= len(r.rows) }
func (r *sliceRows) Values() []any            { return r.rows[r.i-1] }
func (r *sliceRows) Err() error               { return nil }
func (r *sliceRows) Close() error             { return nil }

// TestTSVReaderFillsPackets: every Read but the last fills the driver's packet, so a
// load is one write per packet, not one per row; the bytes are the rows' text in order.
func TestTSVReaderFillsPackets(t *testing.T) {
	cols := []source.Column{{Name: "id", Type: source.TypeInt}, {Name: "note", Type: source.TypeString}}
	src := &sliceRows{cols: cols}
	var want bytes.Buffer
	for i := range 5000 {
		src.rows = append(src.rows, []any{int64(i), "a\tb"})
		want.WriteString(itoa(i) + "\ta\\tb\n")
	}
	l := &loader{cols: cols, wmIdx: -1}
	r := &tsvReader{l: l, rows: src, limit: 1 << 40, st: &Stats{}}
	p := make([]byte, 16*1024)
	var got bytes.Buffer
	var sizes []int
	for {
		n, err := r.Read(p)
		got.Write(p[:n])
		if n > 0 {
			sizes = append(sizes, n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got.String() != want.String() {
		t.Fatalf("the stream differs from the rows' text (%d bytes, want %d)", got.Len(), want.Len())
	}
	for i, n := range sizes[:len(sizes)-1] {
		if n != len(p) {
			t.Fatalf("read %d of %d gave %d bytes, want a full packet of %d", i+1, len(sizes), n, len(p))
		}
	}
	if r.n != 5000 || r.st.Read != 5000 {
		t.Errorf("counted %d rows (%d read), want 5000", r.n, r.st.Read)
	}
}

func itoa(i int) string {
	b, _ := appendTSV(nil, int64(i), source.Column{Type: source.TypeInt})
	return string(b)
}

// TestMySQLFromRFC3339UTC: the fast path gives what time.Parse then Format gives, and
// leaves every other shape to them.
func TestMySQLFromRFC3339UTC(t *testing.T) {
	for _, s := range []string{
		"2026-01-01T00:00:01Z", "2026-12-31T23:59:59.5Z", "2026-02-28T12:34:56.123456Z", "0001-01-01T00:00:00Z",
		"9999-12-31T23:59:59.999999Z", "2026-01-01T00:00:00.000001Z",
	} {
		got, ok := mysqlFromRFC3339UTC(s)
		tm, err := time.Parse(time.RFC3339Nano, s)
		if !ok || err != nil || got != tm.UTC().Format(mysqlDateTime) {
			t.Errorf("%s: fast %q %v, parsed %q %v", s, got, ok, tm.UTC().Format(mysqlDateTime), err)
		}
	}
	for _, s := range []string{
		"2026-01-01T00:00:01+02:00", "2026-01-01T00:00:01.1234567Z", "2026-01-01 00:00:01Z", "2026-13-01T00:00:01Z",
		"2026-01-01T00:00:01.Z", "2026-01-01T00:00:01.10Z", "2026-01-01T24:00:00Z", "2026-01-0xT00:00:01Z", "2026-01-01",
	} {
		if got, ok := mysqlFromRFC3339UTC(s); ok {
			t.Errorf("%s: fast path took it as %q", s, got)
		}
	}
}
