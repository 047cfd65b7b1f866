package notify

import "time"

// seqWindow remembers which event seqs were handled, so a reader can re-read a recent
// window of the events table on every pass and still handle each event once.
//
// Why a window: seq is an AUTO_INCREMENT (MySQL) taken at insert, but transactions
// commit in any order, so after reading up to seq 12 a reader can later find seq 11
// committed. Reading "after the highest seq seen" would miss it. Instead every pass
// reads after low, where low only moves to the highest seq a successful read returned
// at least settle ago; an event that commits more than settle after a later seq was read
// is the only one that can be missed (store transactions last milliseconds).
type seqWindow struct {
	settle time.Duration
	low    int64              // every seq <= low is handled
	seen   map[int64]struct{} // handled seqs > low
	max    int64              // highest seq any read returned
	marks  []readMark         // successful full reads, oldest first
}

type readMark struct {
	at  time.Time
	max int64
}

func newSeqWindow(after int64, settle time.Duration) *seqWindow {
	return &seqWindow{settle: settle, low: after, max: after, seen: map[int64]struct{}{}}
}

// has reports whether seq was handled.
func (w *seqWindow) has(seq int64) bool {
	if seq <= w.low {
		return true
	}
	_, ok := w.seen[seq]
	return ok
}

func (w *seqWindow) add(seq int64) {
	if seq > w.low {
		w.seen[seq] = struct{}{}
	}
}

// noteRead records that a read returned seq.
func (w *seqWindow) noteRead(seq int64) {
	if seq > w.max {
		w.max = seq
	}
}

// readDone records a successful read that went to the end of the table.
func (w *seqWindow) readDone(at time.Time) {
	w.marks = append(w.marks, readMark{at: at, max: w.max})
}

// advance moves low as far as settled reads allow, but never to or past limit (the
// lowest seq still waiting to be handled; 0: none), and forgets seqs below it.
func (w *seqWindow) advance(now time.Time, limit int64) {
	cut := now.Add(-w.settle)
	newLow := w.low
	i := 0
	for ; i < len(w.marks) && !w.marks[i].at.After(cut); i++ {
		if w.marks[i].max > newLow {
			newLow = w.marks[i].max
		}
	}
	w.marks = w.marks[i:]
	if limit > 0 && newLow >= limit {
		newLow = limit - 1
	}
	if newLow <= w.low {
		return
	}
	w.low = newLow
	for s := range w.seen {
		if s <= w.low {
			delete(w.seen, s)
		}
	}
}

// skipTo marks everything up to seq handled without recording each seq (history a relay
// does not republish at start); once later seqs were handled, only seq itself.
func (w *seqWindow) skipTo(seq int64) {
	if seq > w.low && len(w.seen) == 0 {
		w.low = seq
	} else {
		w.add(seq)
	}
	w.noteRead(seq)
}
