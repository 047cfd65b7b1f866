package results

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"rpt/internal/queue"
)

// TestReadCompleteOrFail: a reader that meets a missing chunk fails, naming it, unless
// the chunk count is unknown and the rest of the result is there (results of agents
// that did not record the count end at the first missing chunk, as before).
func TestReadCompleteOrFail(t *testing.T) {
	t.Parallel()
	rows := make([][]any, 1000)
	for i := range rows {
		rows[i] = []any{int64(i)}
	}
	cols := allCols[:1]
	tests := []struct {
		name     string
		chunks   bool              // the ref carries the chunk count (10)
		damage   func(s *memStore) // applied after 450 rows were read
		wantRows int
		wantIs   error  // nil: no error
		wantMsg  string // in the error
	}{
		{name: "pruned, count known", chunks: true, damage: pruneAll, wantRows: 500, wantIs: ErrPruned,
			wantMsg: "result of job 1 was pruned while it was read (chunk 6 of 10 missing)"},
		{name: "pruned, count unknown", damage: pruneAll, wantRows: 500, wantIs: ErrPruned,
			wantMsg: "result of job 1 was pruned while it was read (chunk 6 of ? missing)"},
		{name: "chunk lost, count known", chunks: true, damage: dropChunk(5), wantRows: 500, wantIs: ErrIncomplete,
			wantMsg: "result of job 1 attempt 1 is incomplete: chunk 6 of 10 missing"},
		{name: "chunk lost, count unknown: the old end", damage: dropChunk(5), wantRows: 500},
		{name: "stray chunk past the count is not read", chunks: true, damage: func(s *memStore) {
			s.chunks[memKey{1, 1, 10}] = s.chunks[memKey{1, 1, 9}]
		}, wantRows: 1000},
		{name: "intact", chunks: true, wantRows: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := newMemStore()
			w := writeAll(t, store, queue.Lease{JobID: 1, Attempt: 1}, cols, rows, func(w *Writer) { w.maxChunkRows = 100 })
			if w.Chunks() != 10 {
				t.Fatalf("Chunks() = %d, want 10", w.Chunks())
			}
			ref := Ref{JobID: 1, Attempt: 1}
			if tt.chunks {
				ref.Chunks = w.Chunks()
			}
			r, err := Open(context.Background(), store, ref)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for r.Next() {
				if n++; n == 450 && tt.damage != nil {
					tt.damage(store)
				}
			}
			err = r.Err()
			if n != tt.wantRows {
				t.Errorf("read %d rows, want %d", n, tt.wantRows)
			}
			switch {
			case tt.wantIs == nil && err != nil:
				t.Errorf("Err = %v, want nil", err)
			case tt.wantIs != nil && !errors.Is(err, tt.wantIs):
				t.Errorf("Err = %v, want %v", err, tt.wantIs)
			case tt.wantIs != nil && !strings.Contains(err.Error(), tt.wantMsg):
				t.Errorf("Err = %q, want it to say %q", err, tt.wantMsg)
			}
			if errors.Is(err, ErrIncomplete) && errors.Is(err, queue.ErrNotFound) {
				t.Errorf("a damaged result reads as not found: %v", err)
			}
		})
	}
}

func pruneAll(s *memStore) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.chunks)
}

func dropChunk(seq int) func(*memStore) {
	return func(s *memStore) {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.chunks, memKey{1, 1, seq})
	}
}

// fakeQueueChunks answers every call with err.
type fakeQueueChunks struct{ err error }

func (f fakeQueueChunks) ResultChunkPut(context.Context, queue.Lease, int, []byte) error {
	return f.err
}
func (f fakeQueueChunks) ResultChunkGet(context.Context, int64, int, int) ([]byte, error) {
	return nil, f.err
}
func (f fakeQueueChunks) ResultChunkDelete(context.Context, int64, int) (int, error) { return 0, f.err }
func (f fakeQueueChunks) Prune(context.Context, queue.PruneParams) (queue.PruneResult, error) {
	return queue.PruneResult{}, f.err
}

// TestInQueueClassesFaults: a fault of the database behind the store (SQLite's
// "database or disk is full", a server gone) is ErrUnavailable, with its cause kept;
// a lost lease, a missing chunk and a cancelled call keep their own meaning.
func TestInQueueClassesFaults(t *testing.T) {
	t.Parallel()
	full := errors.New("put result chunk 3 of job 7: database or disk is full (13)")
	tests := []struct {
		err         error
		unavailable bool
	}{
		{full, true},
		{queue.ErrUnavailable, true},
		{queue.ErrLeaseLost, false},
		{queue.ErrNotFound, false},
		{context.Canceled, false},
	}
	for _, tt := range tests {
		s := InQueue(fakeQueueChunks{tt.err})
		errs := map[string]error{"put": s.ChunkPut(context.Background(), queue.Lease{}, 0, nil)}
		_, errs["get"] = s.ChunkGet(context.Background(), 1, 1, 0)
		_, errs["discard"] = s.Discard(context.Background(), 1, 1)
		_, errs["prune"] = s.Prune(context.Background(), time.Now())
		for op, err := range errs {
			if !errors.Is(err, tt.err) {
				t.Errorf("%s with %q: %v lost its cause", op, tt.err, err)
			}
			if got := errors.Is(err, ErrUnavailable); got != tt.unavailable {
				t.Errorf("%s with %q: ErrUnavailable = %v, want %v", op, tt.err, got, tt.unavailable)
			}
		}
	}
	if s := InQueue(fakeQueueChunks{}); s.Name() != QueueStoreName || s.Close() != nil {
		t.Errorf("InQueue: Name %q, Close %v; want %q, nil", s.Name(), s.Close(), QueueStoreName)
	}
}

func TestStoreOf(t *testing.T) {
	t.Parallel()
	if got := StoreOf(&queue.Job{}); got != QueueStoreName {
		t.Errorf("a job that records no store: %q, want %q", got, QueueStoreName)
	}
	if got := StoreOf(&queue.Job{ResultStore: "archive"}); got != "archive" {
		t.Errorf("StoreOf = %q, want archive", got)
	}
}
