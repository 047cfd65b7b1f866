package results

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"rpt/internal/queue"
	"rpt/internal/source"
)

// memStore is an in-memory chunk store. A put under a token other than the job's
// current one is fenced out, as the queue stores do.
type memStore struct {
	mu     sync.Mutex
	chunks map[memKey][]byte
	token  map[int64]string // job -> current lease token; absent: any token is accepted
	puts   int
}

type memKey struct {
	job     int64
	attempt int
	seq     int
}

func newMemStore() *memStore {
	return &memStore{chunks: map[memKey][]byte{}, token: map[int64]string{}}
}

func (s *memStore) ChunkPut(_ context.Context, l queue.Lease, seq int, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok, ok := s.token[l.JobID]; ok && tok != l.Token {
		return queue.ErrLeaseLost
	}
	s.chunks[memKey{l.JobID, l.Attempt, seq}] = bytes.Clone(data) // the writer reuses data
	s.puts++
	return nil
}

func (s *memStore) ChunkGet(_ context.Context, jobID int64, attempt int, seq int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, ok := s.chunks[memKey{jobID, attempt, seq}]
	if !ok {
		return nil, queue.ErrNotFound
	}
	return data, nil
}

func (s *memStore) chunkCount(jobID int64, attempt int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.chunks {
		if k.job == jobID && k.attempt == attempt {
			n++
		}
	}
	return n
}

// sliceRows is a source.Rows over rows held in memory.
type sliceRows struct {
	cols []source.Column
	rows [][]any
	i    int
	err  error // returned by Err after the rows
}

func (r *sliceRows) Columns() []source.Column { return r.cols }
func (r *sliceRows) Next() bool {
	if r.i >= len(r.rows) {
		return false
	}
	r.i++
	return true
}
func (r *sliceRows) Values() []any { return r.rows[r.i-1] }
func (r *sliceRows) Err() error {
	if r.i >= len(r.rows) {
		return r.err
	}
	return nil
}
func (r *sliceRows) Close() error { return nil }

var allCols = []source.Column{
	{Name: "id", Type: source.TypeInt},
	{Name: "amount", Type: source.TypeDecimal},
	{Name: "ratio", Type: source.TypeFloat},
	{Name: "name", Type: source.TypeString},
	{Name: "active", Type: source.TypeBool},
	{Name: "day", Type: source.TypeDate},
	{Name: "at", Type: source.TypeDateTime},
	{Name: "blob", Type: source.TypeBytes},
}

// allRows holds every column type with edge values, in canonical form.
var allRows = [][]any{
	{int64(1), "1234.50", 0.25, "Cash", true, "2024-01-31", "2024-01-31T23:59:59Z", []byte{0xde, 0xad}},
	{int64(-2), "-12345678901234567.89", -1.5e-9, "Müller & Söhne, \"Zürich\"\n日本語 🙂", false, "1999-12-31", "2024-06-01T12:00:00.123456Z", []byte{}},
	{nil, nil, nil, nil, nil, nil, nil, nil},
	{int64(math.MaxInt64), "0.00", 1e300, "", true, "2000-02-29", "2024-03-10T02:30:00+01:00", []byte("x")},
	{int64(math.MinInt64), "-0.01", math.Inf(-1), "yes", false, "2024-12-01", "2024-12-01T00:00:00Z", nil},
}

func writeAll(t testing.TB, store *memStore, lease queue.Lease, cols []source.Column, rows [][]any, tune func(*Writer)) *Writer {
	t.Helper()
	ctx := context.Background()
	w := NewWriter(store, lease, cols)
	if tune != nil {
		tune(w)
	}
	for _, r := range rows {
		if err := w.Write(ctx, r); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return w
}

func readAll(t testing.TB, store *memStore, jobID int64, attempt int) ([]source.Column, [][]any) {
	t.Helper()
	rows, err := Open(context.Background(), store, Ref{JobID: jobID, Attempt: attempt})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer rows.Close()
	var got [][]any
	for rows.Next() {
		got = append(got, append([]any(nil), rows.Values()...))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("rows.Err: %v", err)
	}
	return rows.Columns(), got
}

// sameRows compares rows, treating floats by their bits so NaN and -0 compare exactly.
func sameRows(t *testing.T, got, want [][]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		for j := range want[i] {
			g, w := got[i][j], want[i][j]
			if gf, ok := g.(float64); ok {
				if wf, ok := w.(float64); ok && math.Float64bits(gf) == math.Float64bits(wf) {
					continue
				}
			} else if reflect.DeepEqual(g, w) {
				continue
			}
			t.Errorf("row %d col %d: got %#v (%T), want %#v (%T)", i, j, g, g, w, w)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	many := make([][]any, 0, 1000)
	for i := range 1000 {
		many = append(many, allRows[i%len(allRows)])
	}
	tests := []struct {
		name       string
		rows       [][]any
		tune       func(*Writer)
		wantChunks int
	}{
		{name: "every type", rows: allRows, wantChunks: 1},
		{name: "empty", rows: nil, wantChunks: 1},
		{name: "row limit splits chunks", rows: many, tune: func(w *Writer) { w.maxChunkRows = 100 }, wantChunks: 10},
		{name: "row limit not quite reached", rows: many[:99], tune: func(w *Writer) { w.maxChunkRows = 100 }, wantChunks: 1},
		{name: "exact multiple adds no empty chunk", rows: many[:300], tune: func(w *Writer) { w.maxChunkRows = 100 }, wantChunks: 3},
		{name: "byte limit splits chunks", rows: many, tune: func(w *Writer) { w.maxChunkBytes = 1000 }, wantChunks: -1},
		{name: "one row per chunk", rows: allRows, tune: func(w *Writer) { w.maxChunkRows = 1 }, wantChunks: len(allRows)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := newMemStore()
			lease := queue.Lease{JobID: int64(i + 1), Token: "tok", Attempt: 2}
			w := writeAll(t, store, lease, allCols, tt.rows, tt.tune)
			if w.Rows() != int64(len(tt.rows)) {
				t.Errorf("Rows() = %d, want %d", w.Rows(), len(tt.rows))
			}
			n := store.chunkCount(lease.JobID, lease.Attempt)
			switch {
			case tt.wantChunks > 0 && n != tt.wantChunks:
				t.Errorf("chunks = %d, want %d", n, tt.wantChunks)
			case tt.wantChunks < 0 && n < 2:
				t.Errorf("chunks = %d, want several", n)
			}
			cols, got := readAll(t, store, lease.JobID, lease.Attempt)
			if !reflect.DeepEqual(cols, allCols) {
				t.Errorf("columns = %v, want %v", cols, allCols)
			}
			sameRows(t, got, tt.rows)
		})
	}
}

func TestRoundTripNoColumns(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	lease := queue.Lease{JobID: 1, Token: "t", Attempt: 1}
	writeAll(t, store, lease, nil, nil, nil)
	cols, rows := readAll(t, store, 1, 1)
	if len(cols) != 0 || len(rows) != 0 {
		t.Errorf("got %v, %v; want no columns, no rows", cols, rows)
	}
}

func TestWriteConvertsDriverValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ  source.Type
		in   any
		want any
	}{
		{source.TypeInt, 7, int64(7)},
		{source.TypeInt, int32(-7), int64(-7)},
		{source.TypeInt, uint8(255), int64(255)},
		{source.TypeInt, []byte("42"), int64(42)},
		{source.TypeDecimal, []byte("-0.50"), "-0.50"},
		{source.TypeDecimal, int64(12), "12"},
		{source.TypeDecimal, 0.1, "0.1"},
		{source.TypeDecimal, "1.5E+3", "1.5E+3"},
		{source.TypeFloat, int64(3), 3.0},
		{source.TypeFloat, float32(0.5), 0.5},
		{source.TypeString, []byte("abc"), "abc"},
		{source.TypeBool, int64(1), true},
		{source.TypeBool, int64(0), false},
		{source.TypeDate, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "2024-02-29"},
		{source.TypeDate, []byte("2024-02-29"), "2024-02-29"},
		{source.TypeDateTime, time.Date(2024, 2, 29, 13, 4, 5, 0, time.FixedZone("x", 3600)), "2024-02-29T12:04:05Z"},
		{source.TypeBytes, "ab", []byte("ab")},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s/%T", tt.typ, tt.in), func(t *testing.T) {
			t.Parallel()
			store := newMemStore()
			cols := []source.Column{{Name: "c", Type: tt.typ}}
			writeAll(t, store, queue.Lease{JobID: int64(i), Attempt: 1}, cols, [][]any{{tt.in}}, nil)
			_, got := readAll(t, store, int64(i), 1)
			if len(got) != 1 || !reflect.DeepEqual(got[0][0], tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestWriteRejectsBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ     source.Type
		in      any
		wantErr string
	}{
		{source.TypeInt, "12", `column "c" (int): value of Go type string`},
		{source.TypeInt, uint64(math.MaxUint64), "overflows"},
		{source.TypeDecimal, "12,50", `"12,50" is not a decimal`},
		{source.TypeDecimal, "1.", "not a decimal"},
		{source.TypeDecimal, ".5", "not a decimal"},
		{source.TypeDecimal, "+1", "not a decimal"},
		{source.TypeDecimal, "", "not a decimal"},
		{source.TypeDecimal, math.NaN(), "not a decimal"},
		{source.TypeDate, "2024-02-30", "not a date"},
		{source.TypeDate, "2024-2-3", "not a date"},
		{source.TypeDateTime, "2024-02-03 10:00:00", "not an RFC 3339"},
		{source.TypeBool, int64(2), "not a boolean"},
		{source.TypeBytes, 12, "does not fit"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v", tt.typ, tt.in), func(t *testing.T) {
			t.Parallel()
			store := newMemStore()
			ctx := context.Background()
			w := NewWriter(store, queue.Lease{JobID: 1, Attempt: 1}, []source.Column{{Name: "c", Type: tt.typ}})
			err := w.Write(ctx, []any{tt.in})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "row 1") {
				t.Fatalf("Write error = %v, want one naming row 1 and containing %q", err, tt.wantErr)
			}
			// The bad row is not written, and the writer goes on.
			if err := w.Write(ctx, []any{nil}); err != nil {
				t.Fatalf("Write after a bad value: %v", err)
			}
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if _, rows := readAll(t, store, 1, 1); len(rows) != 1 || rows[0][0] != nil {
				t.Errorf("rows = %v, want one NULL row", rows)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("wrong value count", func(t *testing.T) {
		t.Parallel()
		w := NewWriter(newMemStore(), queue.Lease{JobID: 1}, allCols[:2])
		if err := w.Write(ctx, []any{int64(1)}); err == nil || !strings.Contains(err.Error(), "1 values for 2 columns") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("unknown column type", func(t *testing.T) {
		t.Parallel()
		w := NewWriter(newMemStore(), queue.Lease{JobID: 1}, []source.Column{{Name: "x", Type: "money"}})
		if err := w.Write(ctx, []any{nil}); err == nil || !strings.Contains(err.Error(), `column "x": unknown type "money"`) {
			t.Errorf("Write err = %v", err)
		}
		if err := w.Close(ctx); err == nil {
			t.Error("Close succeeded with an unknown column type")
		}
	})
	t.Run("write after close", func(t *testing.T) {
		t.Parallel()
		w := NewWriter(newMemStore(), queue.Lease{JobID: 1}, allCols[:1])
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(ctx); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := w.Write(ctx, []any{int64(1)}); err == nil {
			t.Error("Write after Close succeeded")
		}
	})
}

// gatedStore is a memStore whose puts wait for a release, to hold a put in flight.
type gatedStore struct {
	*memStore
	started chan int      // the seq of each put, when it starts
	release chan struct{} // one receive lets one put finish
}

func (g *gatedStore) ChunkPut(ctx context.Context, l queue.Lease, seq int, data []byte) error {
	g.started <- seq
	<-g.release
	return g.memStore.ChunkPut(ctx, l, seq, data)
}

// A full chunk is put in the background: rows keep going into the next chunk while the
// put waits, puts go one at a time in seq order, and Chunks waits for the one in flight
// (what the agent relies on before it discards or records a result's chunks).
func TestWriterPutsInBackground(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := &gatedStore{memStore: newMemStore(), started: make(chan int, 10), release: make(chan struct{})}
	lease := queue.Lease{JobID: 3, Token: "tok", Attempt: 1}
	w := NewWriter(g, lease, allCols[:1])
	w.maxChunkRows = 2
	for i := 1; i <= 3; i++ { // row 2 fills chunk 0; row 3 starts chunk 1
		if err := w.Write(ctx, []any{int64(i)}); err != nil {
			t.Fatalf("Write %d: %v", i, err)
		}
	}
	if seq := <-g.started; seq != 0 {
		t.Fatalf("first put is chunk %d, want 0", seq)
	}
	// Chunk 0 is still being put; the Write that fills chunk 1 must wait for it.
	filled := make(chan error, 1)
	go func() { filled <- w.Write(ctx, []any{int64(4)}) }()
	select {
	case err := <-filled:
		t.Fatalf("Write filling chunk 1 returned (%v) while chunk 0 was still being put", err)
	case seq := <-g.started:
		t.Fatalf("chunk %d put while chunk 0 was in flight", seq)
	default:
	}
	g.release <- struct{}{} // chunk 0 stored
	if err := <-filled; err != nil {
		t.Fatalf("Write 4: %v", err)
	}
	if seq := <-g.started; seq != 1 {
		t.Fatalf("second put is chunk %d, want 1", seq)
	}
	go func() { g.release <- struct{}{} }() // chunk 1 stored
	if n := w.Chunks(); n != 2 {
		t.Fatalf("Chunks() = %d after the put in flight, want 2", n)
	}
	if n := g.chunkCount(3, 1); n != 2 {
		t.Fatalf("%d chunks stored when Chunks returned, want 2", n)
	}
	// Rows 3 and 4 went with chunk 1: Close has nothing left to put.
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if w.Chunks() != 2 {
		t.Fatalf("Chunks() = %d after Close, want 2", w.Chunks())
	}
	_, got := readAll(t, g.memStore, 3, 1)
	sameRows(t, got, [][]any{{int64(1)}, {int64(2)}, {int64(3)}, {int64(4)}})
}

func TestFencedPutErrorPropagates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name       string
		rows       int
		chunkRows  int
		failOnRow  int // the Write that reports the failed put; 0: Close puts the chunk
		wantStored int
	}{
		// Chunk 0 fills at row 4 and is put in the background; the Write that fills
		// the next chunk (row 8) waits for that put and reports its error.
		{name: "put on a full chunk", rows: 10, chunkRows: 4, failOnRow: 8},
		{name: "put on close", rows: 3, chunkRows: 4},
		{name: "empty result on close", rows: 0, chunkRows: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := newMemStore()
			store.token[7] = "new-owner" // the job was rescued and claimed again
			w := NewWriter(store, queue.Lease{JobID: 7, Token: "old", Attempt: 1}, allCols[:1])
			w.maxChunkRows = tt.chunkRows
			var err error
			wrote := 0
			for i := 1; i <= tt.rows && err == nil; i++ {
				err = w.Write(ctx, []any{int64(i)})
				wrote = i
			}
			if tt.failOnRow > 0 {
				if !errors.Is(err, queue.ErrLeaseLost) || wrote != tt.failOnRow {
					t.Fatalf("Write %d: err = %v, want ErrLeaseLost at row %d", wrote, err, tt.failOnRow)
				}
				if err := w.Write(ctx, []any{int64(1)}); !errors.Is(err, queue.ErrLeaseLost) {
					t.Errorf("Write after lost lease: %v, want ErrLeaseLost", err)
				}
			} else if err != nil {
				t.Fatalf("Write: %v", err)
			}
			if err := w.Close(ctx); !errors.Is(err, queue.ErrLeaseLost) {
				t.Errorf("Close: %v, want ErrLeaseLost", err)
			}
			if n := store.chunkCount(7, 1); n != 0 {
				t.Errorf("%d chunks stored under a lost lease", n)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gz := func(payload []byte) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(payload)
		zw.Close()
		return b.Bytes()
	}
	good := appendHeader(nil, allCols[:2])
	tests := []struct {
		name    string
		chunk0  []byte // nil: no chunk 0
		chunk1  []byte
		openErr string
		readErr string
		isNF    bool
	}{
		{name: "missing", openErr: "not found", isNF: true},
		{name: "not gzip", chunk0: []byte("hello"), openErr: "corrupt result chunk"},
		{name: "no header", chunk0: gz([]byte("XXXX\x01")), openErr: "no result header"},
		{name: "future version", chunk0: gz([]byte("RPTR\x09\x00")), openErr: "version 9 is not supported"},
		{name: "unknown type", chunk0: gz(appendHeader(nil, []source.Column{{Name: "a", Type: "money"}})), openErr: `column "a": unknown type "money"`},
		{name: "column count too large", chunk0: gz([]byte("RPTR\x01\xff\xff\x03")), openErr: "corrupt"},
		{name: "truncated row", chunk0: gz(append(bytes.Clone(good), 1, 2)), readErr: `column "amount": corrupt`},
		{name: "string past end", chunk0: gz(append(bytes.Clone(good), 1, 2, 1, 50, 'a')), readErr: "corrupt"},
		{name: "bad tag", chunk0: gz(append(bytes.Clone(good), 7)), readErr: "corrupt"},
		{name: "bad later chunk", chunk0: gz(good), chunk1: []byte("junk"), readErr: "chunk 1"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := newMemStore()
			job := int64(i + 1)
			if tt.chunk0 != nil {
				store.chunks[memKey{job, 1, 0}] = tt.chunk0
			}
			if tt.chunk1 != nil {
				store.chunks[memKey{job, 1, 1}] = tt.chunk1
			}
			rows, err := Open(ctx, store, Ref{JobID: job, Attempt: 1})
			if tt.openErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.openErr) {
					t.Fatalf("Open err = %v, want %q", err, tt.openErr)
				}
				if tt.isNF != errors.Is(err, queue.ErrNotFound) {
					t.Errorf("errors.Is(err, ErrNotFound) = %v, want %v", !tt.isNF, tt.isNF)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			for rows.Next() {
			}
			if err := rows.Err(); err == nil || !strings.Contains(err.Error(), tt.readErr) {
				t.Errorf("rows.Err = %v, want %q", err, tt.readErr)
			}
		})
	}
}

func FuzzOpen(f *testing.F) {
	store := newMemStore()
	writeAll(f, store, queue.Lease{JobID: 1, Attempt: 1}, allCols, allRows, nil)
	f.Add(store.chunks[memKey{1, 1, 0}])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, chunk []byte) {
		s := newMemStore()
		s.chunks[memKey{1, 1, 0}] = chunk
		rows, err := Open(context.Background(), s, Ref{JobID: 1, Attempt: 1})
		if err != nil {
			return
		}
		for rows.Next() {
			if len(rows.Values()) != len(rows.Columns()) {
				t.Fatalf("%d values for %d columns", len(rows.Values()), len(rows.Columns()))
			}
		}
	})
}

// FuzzRows feeds arbitrary row payloads after a valid header: decoding must fail
// cleanly, never panic.
func FuzzRows(f *testing.F) {
	f.Add([]byte{1, 2, 1, 4, '1', '.', '5', '0', 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, payload []byte) {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(append(appendHeader(nil, allCols), payload...))
		zw.Close()
		s := newMemStore()
		s.chunks[memKey{1, 1, 0}] = b.Bytes()
		rows, err := Open(context.Background(), s, Ref{JobID: 1, Attempt: 1})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		for rows.Next() {
		}
	})
}

// TestHoldSmall: a result that fits in one small chunk is kept by Close, not put, and
// reads back as written once the caller stores it; a bigger one is put as usual; and
// writers that share the pooled compressors in parallel keep their results apart.
func TestHoldSmall(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	lease := queue.Lease{JobID: 7, Token: "tok", Attempt: 1}
	w := writeAll(t, store, lease, allCols, allRows, func(w *Writer) { w.HoldSmall(64 << 10) })
	if w.Held() == nil || w.Chunks() != 1 {
		t.Fatalf("Held %d bytes, Chunks %d; want a held chunk and 1", len(w.Held()), w.Chunks())
	}
	if n := store.chunkCount(7, 1); n != 0 {
		t.Fatalf("a held result put %d chunks", n)
	}
	if err := store.ChunkPut(context.Background(), lease, 0, w.Held()); err != nil {
		t.Fatal(err)
	}
	_, got := readAll(t, store, 7, 1)
	sameRows(t, got, allRows)

	// Too big for the limit: put, not held.
	big := writeAll(t, store, queue.Lease{JobID: 8, Token: "tok", Attempt: 1}, allCols, allRows, func(w *Writer) { w.HoldSmall(10) })
	if big.Held() != nil || store.chunkCount(8, 1) != 1 {
		t.Errorf("over the limit: held %d bytes, %d chunks put", len(big.Held()), store.chunkCount(8, 1))
	}
	// More than one chunk: every chunk is put.
	multi := writeAll(t, store, queue.Lease{JobID: 9, Token: "tok", Attempt: 1}, allCols, allRows, func(w *Writer) {
		w.HoldSmall(64 << 10)
		w.maxChunkRows = 2
	})
	if multi.Held() != nil || store.chunkCount(9, 1) != 3 {
		t.Errorf("three chunks: held %d bytes, %d chunks put", len(multi.Held()), store.chunkCount(9, 1))
	}

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			rows := make([][]any, 0, 200)
			for r := range 200 {
				rows = append(rows, []any{int64(i*1000 + r), nil, nil, fmt.Sprint("row ", i, r), nil, nil, nil, nil})
			}
			writeAll(t, store, queue.Lease{JobID: int64(100 + i), Token: "tok", Attempt: 1}, allCols, rows, func(w *Writer) { w.maxChunkRows = 7 })
		})
	}
	wg.Wait()
	for i := range 8 {
		_, got := readAll(t, store, int64(100+i), 1)
		if len(got) != 200 || got[199][0] != int64(i*1000+199) || got[0][3] != fmt.Sprint("row ", i, 0) {
			t.Errorf("writer %d: %d rows, last %v", i, len(got), got[len(got)-1])
		}
	}
}
