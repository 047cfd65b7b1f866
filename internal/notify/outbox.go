package notify

import "sync"

// message is one publish waiting in the outbox.
type message struct {
	topic    string
	payload  []byte
	retained bool
}

// outbox is the bounded FIFO of publishes not yet acknowledged by the broker. When it
// is full the oldest message is dropped: while the broker is down for long, the newest
// events are the ones worth delivering, and the database has every event anyway.
type outbox struct {
	mu      sync.Mutex
	ring    []message
	head    int // index of the oldest message
	n       int
	dropped uint64
}

func newOutbox(capacity int) *outbox {
	if capacity < 1 {
		capacity = 1
	}
	return &outbox{ring: make([]message, capacity)}
}

// push appends m, dropping the oldest message when full.
func (o *outbox) push(m message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pushBackLocked(m)
}

func (o *outbox) pushBackLocked(m message) {
	if o.n == len(o.ring) {
		o.ring[o.head] = message{}
		o.head = (o.head + 1) % len(o.ring)
		o.n--
		o.dropped++
	}
	o.ring[(o.head+o.n)%len(o.ring)] = m
	o.n++
}

// pushFront puts ms back at the front in their order (a batch the broker did not
// acknowledge). When that overflows, the oldest ones (these) are dropped first.
func (o *outbox) pushFront(ms []message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(ms) - 1; i >= 0; i-- {
		if o.n == len(o.ring) {
			o.dropped += uint64(i + 1)
			return
		}
		o.head = (o.head - 1 + len(o.ring)) % len(o.ring)
		o.ring[o.head] = ms[i]
		o.n++
	}
}

// pop removes and returns up to max messages from the front.
func (o *outbox) pop(max int) []message {
	o.mu.Lock()
	defer o.mu.Unlock()
	if max > o.n {
		max = o.n
	}
	out := make([]message, max)
	for i := range out {
		out[i] = o.ring[o.head]
		o.ring[o.head] = message{}
		o.head = (o.head + 1) % len(o.ring)
	}
	o.n -= max
	return out
}

func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n
}

func (o *outbox) droppedCount() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped
}
