package sinks

import (
	"math/rand/v2"
	"time"
)

// Clock is the time a sink sees; tests drive it.
type Clock interface {
	Now() time.Time
	// After is time.After: a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// baseBackoff is the wait after the first failure; each further failure
// doubles it, up to the sink's max_backoff.
const baseBackoff = time.Second

// maxRetryAfter bounds a receiver's Retry-After, so a typo on its side
// cannot park a sink for days.
const maxRetryAfter = time.Hour

// backoff is the wait before attempt n+1 after n failures: exponential,
// capped, with jitter over its upper half so that the workers of a sink
// (and sinks of several mailtaps) do not retry in lockstep.
func backoff(failures int, base, max time.Duration, rnd func() float64) time.Duration {
	d := base
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + time.Duration(rnd()*float64(d/2))
}

func jitter() float64 { return rand.Float64() }
