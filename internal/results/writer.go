package results

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"sync"

	"rpt/internal/queue"
	"rpt/internal/source"
)

// ChunkWriter is what a Writer needs of a Store.
type ChunkWriter interface {
	ChunkPut(ctx context.Context, l queue.Lease, seq int, data []byte) error
}

// Chunk limits: a chunk is put when its encoded rows reach about chunkBytes or it holds
// chunkRows rows, whichever comes first. The row limit keeps progress moving for
// narrow rows; the byte limit bounds memory and the size of one database row.
const (
	chunkBytes = 1 << 20
	chunkRows  = 10000
)

// gzipWriters are the compressors of every Writer in the process. A gzip.Writer
// allocates about a megabyte of compressor state on its first Write; taking one from
// the pool per chunk means a one-row result no longer pays for a new one (a quarter of
// an agent's CPU on short jobs, before the pool).
var gzipWriters = sync.Pool{New: func() any {
	// BestSpeed: results are written while the report runs; the level only fails for
	// an invalid level constant.
	zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return zw
}}

// Writer streams rows into a result set, one chunk at a time. It is not safe for
// concurrent use.
type Writer struct {
	store ChunkWriter
	lease queue.Lease
	cols  []source.Column
	kinds []kind
	err   error // sticky: a failed put or bad columns end the result set

	raw         []byte // encoded rows of the chunk being filled
	zbuf        bytes.Buffer
	seq         int // chunks put (stored) so far
	next        int // seq of the next chunk to fill
	rowsInChunk int
	rows        int64
	closed      bool

	// One chunk at a time is compressed and put by a goroutine of its own while the
	// next one fills (the source keeps sending rows instead of waiting for the store's
	// commit): flying is its encoded rows, done says when it is stored. At most two
	// chunks of raw rows and one compressed chunk are held.
	flying []byte
	done   chan error
	spare  []byte

	holdMax int    // HoldSmall: keep a one-chunk result of at most this many bytes
	held    []byte // the kept chunk 0 (Held)

	// Unexported knobs so tests can force many small chunks.
	maxChunkBytes int
	maxChunkRows  int
}

// NewWriter starts the result set of the lease's attempt with the given columns.
// Nothing is stored until the first chunk fills or Close is called.
func NewWriter(store ChunkWriter, lease queue.Lease, cols []source.Column) *Writer {
	w := &Writer{
		store:         store,
		lease:         lease,
		cols:          append([]source.Column(nil), cols...),
		maxChunkBytes: chunkBytes,
		maxChunkRows:  chunkRows,
	}
	w.kinds, w.err = kindsOf(cols)
	if w.err != nil {
		w.err = fmt.Errorf("result columns: %w", w.err)
	}
	// Small to start with: most results of short jobs are a few rows, and append grows
	// the buffer to the chunk size for big ones.
	w.raw = appendHeader(make([]byte, 0, 4096), cols)
	return w
}

// HoldSmall makes Close keep, instead of putting, a result that fits in one chunk of at
// most max bytes (compressed): Held returns it, for the caller to store with the job's
// completion (queue.Completion.Chunk), which saves a small result its own write and
// commit. Call it before Close; a result of more chunks is put as usual.
func (w *Writer) HoldSmall(max int) { w.holdMax = max }

// Held is chunk 0 of the result when Close kept it (HoldSmall), else nil. It is still
// to be stored: until then the result is not in the store.
func (w *Writer) Held() []byte { return w.held }

// Columns returns the result set's columns.
func (w *Writer) Columns() []source.Column { return w.cols }

// Rows returns the number of rows written so far.
func (w *Writer) Rows() int64 { return w.rows }

// Chunks returns the number of chunks put so far, after waiting for a put in flight;
// after Close, the result's chunk count, which the job records at completion
// (queue.Completion.ResultChunks) so that readers can tell a complete result from a cut
// one. Once it returns, the Writer puts nothing more until the next Write: a caller that
// gives up on a result (and discards its chunks) calls it first.
func (w *Writer) Chunks() int {
	w.wait()
	return w.seq
}

// Write appends one row: one value per column, of the Go type the column's type
// carries (see source.Type), nil for NULL. A value that does not fit its column is an
// error naming the row and column; the row is not written. A failed put (for example
// queue.ErrLeaseLost) ends the result set: every later call returns that error. Chunks
// are put in the background while the next one fills, so a failed put is returned by
// the Write that fills the next chunk, or by Close.
func (w *Writer) Write(ctx context.Context, values []any) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("write result row: writer is closed")
	}
	row := w.rows + 1
	if len(values) != len(w.cols) {
		return fmt.Errorf("write result row %d: %d values for %d columns", row, len(values), len(w.cols))
	}
	start := len(w.raw)
	for i, v := range values {
		cv, err := canonical(w.kinds[i], v)
		if err != nil {
			w.raw = w.raw[:start]
			return fmt.Errorf("write result row %d: column %q (%s): %w", row, w.cols[i].Name, w.cols[i].Type, err)
		}
		w.raw = appendValue(w.raw, w.kinds[i], cv)
	}
	w.rows++
	w.rowsInChunk++
	if len(w.raw) >= w.maxChunkBytes || w.rowsInChunk >= w.maxChunkRows {
		return w.flushAsync(ctx)
	}
	return nil
}

// Close puts the last chunk, after the one in flight. An empty result set still gets
// chunk 0, with the header, so readers see its columns. Close after Close returns nil.
func (w *Writer) Close(ctx context.Context) error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if err := w.wait(); err != nil {
		return err
	}
	if w.rowsInChunk > 0 || w.next == 0 {
		if err := w.put(ctx, w.next, w.raw, true); err != nil {
			w.err = err
			return err
		}
		w.next++
		w.seq++
		w.rowsInChunk = 0
		w.raw = w.raw[:0]
	}
	return nil
}

// flushAsync hands the filled chunk to a goroutine that compresses and puts it, after
// the previous one is stored, and starts the next chunk in the spare buffer.
func (w *Writer) flushAsync(ctx context.Context) error {
	if err := w.wait(); err != nil {
		return err
	}
	w.flying = w.raw
	w.raw = w.spare[:0]
	w.spare = nil
	seq := w.next
	w.next++
	w.rowsInChunk = 0
	if w.done == nil {
		w.done = make(chan error, 1)
	}
	go func(data []byte) { w.done <- w.put(ctx, seq, data, false) }(w.flying)
	return nil
}

// wait waits for the chunk in flight, if any, and returns the Writer's error.
func (w *Writer) wait() error {
	if w.flying != nil {
		err := <-w.done
		w.spare = w.flying[:0]
		w.flying = nil
		if err != nil && w.err == nil {
			w.err = err
		}
		if err == nil {
			w.seq++
		}
	}
	return w.err
}

// put compresses raw as chunk seq and stores it; last is the Close of the result, which
// keeps (HoldSmall) instead of storing a small one-chunk result. It touches only zbuf
// and held of the Writer, which no one else uses while it runs.
func (w *Writer) put(ctx context.Context, seq int, raw []byte, last bool) error {
	w.zbuf.Reset()
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&w.zbuf)
	_, err := zw.Write(raw)
	if err == nil {
		err = zw.Close()
	}
	gzipWriters.Put(zw)
	if err != nil {
		return fmt.Errorf("compress result chunk %d: %w", seq, err)
	}
	if last && seq == 0 && w.holdMax > 0 && w.zbuf.Len() <= w.holdMax {
		w.held = bytes.Clone(w.zbuf.Bytes())
		return nil
	}
	if err := w.store.ChunkPut(ctx, w.lease, seq, w.zbuf.Bytes()); err != nil {
		return fmt.Errorf("put result chunk %d of job %d attempt %d: %w", seq, w.lease.JobID, w.lease.Attempt, err)
	}
	return nil
}
