package queue

import (
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"time"
)

// Options tune a Store. Zero values take the defaults.
type Options struct {
	// RetryBase is the first retry delay; each further failure doubles it up to RetryMax,
	// and a random jitter of up to half the delay is added so retries don't stampede.
	RetryBase time.Duration
	RetryMax  time.Duration
}

// Defaults for Options.
const (
	DefaultRetryBase   = 10 * time.Second
	DefaultRetryMax    = 10 * time.Minute
	DefaultMaxAttempts = 3
)

// WithDefaults fills zero fields.
func (o Options) WithDefaults() Options {
	if o.RetryBase <= 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.RetryMax <= 0 {
		o.RetryMax = DefaultRetryMax
	}
	return o
}

// RetryDelay is the backoff before the next attempt after `failures` failures (1, 2, ...):
// base * 2^(failures-1), capped at max, plus up to 50% random jitter.
func (o Options) RetryDelay(failures int) time.Duration {
	o = o.WithDefaults()
	d := o.RetryBase
	for i := 1; i < failures && d < o.RetryMax; i++ {
		d *= 2
	}
	if d > o.RetryMax {
		d = o.RetryMax
	}
	if half := int64(d / 2); half > 0 {
		j, err := rand.Int(rand.Reader, big.NewInt(half))
		if err == nil {
			d += time.Duration(j.Int64())
		}
	}
	return d
}

// NewLeaseToken returns a random 128-bit token, hex encoded (32 characters).
func NewLeaseToken() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// RouteSatisfied reports whether an agent with labels may run a job with route.
func RouteSatisfied(route, labels map[string]string) bool {
	for k, v := range route {
		if labels[k] != v {
			return false
		}
	}
	return true
}
