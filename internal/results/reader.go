package results

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"

	"rpt/internal/queue"
	"rpt/internal/source"
)

// Open reads the result set of (job, attempt) back as rows. It fetches chunk 0 at once
// (an error wrapping queue.ErrNotFound when there is no result) and later chunks as
// Next reaches them, with ctx: the returned Rows must not outlive ctx.
func Open(ctx context.Context, store ChunkStore, jobID int64, attempt int) (source.Rows, error) {
	r := &reader{ctx: ctx, store: store, jobID: jobID, attempt: attempt}
	if err := r.load(0); err != nil {
		return nil, fmt.Errorf("open result of job %d attempt %d: %w", jobID, attempt, err)
	}
	cols, kinds, err := r.dec.header()
	if err != nil {
		return nil, fmt.Errorf("open result of job %d attempt %d: %w", jobID, attempt, err)
	}
	r.cols, r.kinds = cols, kinds
	r.vals = make([]any, len(cols))
	return r, nil
}

// reader holds one decompressed chunk at a time.
type reader struct {
	ctx     context.Context
	store   ChunkStore
	jobID   int64
	attempt int

	cols  []source.Column
	kinds []kind
	vals  []any

	seq  int
	zr   *gzip.Reader
	out  bytes.Buffer
	dec  decoder
	err  error
	done bool
}

func (r *reader) Columns() []source.Column { return r.cols }
func (r *reader) Values() []any            { return r.vals }
func (r *reader) Err() error               { return r.err }

func (r *reader) Close() error {
	r.done = true
	r.dec.buf = nil
	return nil
}

func (r *reader) Next() bool {
	if r.err != nil || r.done {
		return false
	}
	for !r.dec.more() {
		err := r.load(r.seq + 1)
		if errors.Is(err, queue.ErrNotFound) {
			r.done = true
			return false
		}
		if err != nil {
			r.err = fmt.Errorf("read result of job %d attempt %d: %w", r.jobID, r.attempt, err)
			return false
		}
	}
	// A row with no columns takes no bytes; such a result can only be empty.
	if len(r.kinds) == 0 {
		r.err = fmt.Errorf("read result of job %d attempt %d: %w: row data without columns", r.jobID, r.attempt, errCorrupt)
		return false
	}
	for i, k := range r.kinds {
		v, err := r.dec.value(k)
		if err != nil {
			r.err = fmt.Errorf("read result of job %d attempt %d: chunk %d: column %q: %w", r.jobID, r.attempt, r.seq, r.cols[i].Name, err)
			return false
		}
		r.vals[i] = v
	}
	return true
}

// load fetches and decompresses chunk seq into the decoder.
func (r *reader) load(seq int) error {
	data, err := r.store.ResultChunkGet(r.ctx, r.jobID, r.attempt, seq)
	if err != nil {
		return fmt.Errorf("get chunk %d: %w", seq, err)
	}
	if r.zr == nil {
		r.zr, err = gzip.NewReader(bytes.NewReader(data))
	} else {
		err = r.zr.Reset(bytes.NewReader(data))
	}
	if err != nil {
		return fmt.Errorf("chunk %d: %w: %w", seq, errCorrupt, err)
	}
	r.out.Reset()
	if _, err := r.out.ReadFrom(r.zr); err != nil {
		return fmt.Errorf("chunk %d: %w: %w", seq, errCorrupt, err)
	}
	r.seq = seq
	r.dec = decoder{buf: r.out.Bytes()}
	return nil
}
