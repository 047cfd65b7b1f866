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

// ChunkReader is what a reader needs of a Store.
type ChunkReader interface {
	ChunkGet(ctx context.Context, jobID int64, attempt int, seq int) ([]byte, error)
}

// Open reads the result set ref back as rows. It fetches chunk 0 at once (an error
// wrapping queue.ErrNotFound when there is no result) and later chunks as Next reaches
// them, with ctx: the returned Rows must not outlive ctx.
//
// A read is complete or fails: when ref.Chunks is known, a chunk missing before the
// last one ends the rows with a *ReadError (ErrPruned when the result was pruned under
// the reader, ErrIncomplete otherwise), never with a short, clean end. When it is not
// known (results of older agents), the first missing chunk is the end, unless chunk 0
// is gone too: then the result was pruned while it was read.
func Open(ctx context.Context, store ChunkReader, ref Ref) (source.Rows, error) {
	r := &reader{ctx: ctx, store: store, ref: ref}
	if err := r.load(0); err != nil {
		return nil, fmt.Errorf("open result of job %d attempt %d: %w", ref.JobID, ref.Attempt, err)
	}
	cols, kinds, err := r.dec.header()
	if err != nil {
		return nil, fmt.Errorf("open result of job %d attempt %d: %w", ref.JobID, ref.Attempt, err)
	}
	r.cols, r.kinds = cols, kinds
	r.vals = make([]any, len(cols))
	return r, nil
}

// ReadError is a result found short while it was read: chunk Seq (0-based) of Chunks
// (0: not recorded) is missing.
type ReadError struct {
	JobID   int64
	Attempt int
	Seq     int
	Chunks  int
	Pruned  bool // chunk 0 is gone too: retention deleted the result under the reader
}

func (e *ReadError) Error() string {
	of := "?"
	if e.Chunks > 0 {
		of = fmt.Sprint(e.Chunks)
	}
	if e.Pruned {
		return fmt.Sprintf("result of job %d was pruned while it was read (chunk %d of %s missing)", e.JobID, e.Seq+1, of)
	}
	return fmt.Sprintf("result of job %d attempt %d is incomplete: chunk %d of %s missing", e.JobID, e.Attempt, e.Seq+1, of)
}

// Is makes a pruned result match ErrPruned (and so queue.ErrNotFound: the result is
// gone) and any other gap match ErrIncomplete.
func (e *ReadError) Is(target error) bool {
	if e.Pruned {
		return target == ErrPruned || target == queue.ErrNotFound
	}
	return target == ErrIncomplete
}

// reader holds one decompressed chunk at a time.
type reader struct {
	ctx   context.Context
	store ChunkReader
	ref   Ref

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
		next := r.seq + 1
		if r.ref.Chunks > 0 && next >= r.ref.Chunks {
			r.done = true
			return false
		}
		err := r.load(next)
		if errors.Is(err, queue.ErrNotFound) {
			r.err = r.missing(next)
			r.done = r.err == nil
			return false
		}
		if err != nil {
			r.err = fmt.Errorf("read result of job %d attempt %d: %w", r.ref.JobID, r.ref.Attempt, err)
			return false
		}
	}
	// A row with no columns takes no bytes; such a result can only be empty.
	if len(r.kinds) == 0 {
		r.err = fmt.Errorf("read result of job %d attempt %d: %w: row data without columns", r.ref.JobID, r.ref.Attempt, errCorrupt)
		return false
	}
	for i, k := range r.kinds {
		v, err := r.dec.value(k)
		if err != nil {
			r.err = fmt.Errorf("read result of job %d attempt %d: chunk %d: column %q: %w", r.ref.JobID, r.ref.Attempt, r.seq, r.cols[i].Name, err)
			return false
		}
		r.vals[i] = v
	}
	return true
}

// load fetches and decompresses chunk seq into the decoder.
func (r *reader) load(seq int) error {
	data, err := r.store.ChunkGet(r.ctx, r.ref.JobID, r.ref.Attempt, seq)
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

// missing decides what a missing chunk seq means: the end of a result whose chunk
// count is not recorded (nil), or a *ReadError. Chunk 0 tells the two kinds of gap
// apart: stores delete it first when they prune.
func (r *reader) missing(seq int) error {
	_, err := r.store.ChunkGet(r.ctx, r.ref.JobID, r.ref.Attempt, 0)
	switch {
	case errors.Is(err, queue.ErrNotFound):
		return &ReadError{JobID: r.ref.JobID, Attempt: r.ref.Attempt, Seq: seq, Chunks: r.ref.Chunks, Pruned: true}
	case err != nil:
		return fmt.Errorf("read result of job %d attempt %d: chunk %d missing; chunk 0: %w", r.ref.JobID, r.ref.Attempt, seq, err)
	case r.ref.Chunks == 0:
		return nil
	}
	return &ReadError{JobID: r.ref.JobID, Attempt: r.ref.Attempt, Seq: seq, Chunks: r.ref.Chunks}
}
