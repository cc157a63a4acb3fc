package watcher

import (
	"math/rand/v2"
	"time"
)

// backoff is capped exponential backoff with full jitter in [d/2, d]:
// reconnect storms from many clients spread out, and a single client still
// comes back promptly after a short outage.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

func newBackoff(min, max time.Duration) *backoff {
	if max < min {
		max = min
	}
	return &backoff{min: min, max: max}
}

// next returns the delay before the next attempt and doubles the base.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur *= 2
		if b.cur > b.max {
			b.cur = b.max
		}
	}
	half := b.cur / 2
	return half + rand.N(half+1)
}

// reset is called after a successful session so the next outage starts small.
func (b *backoff) reset() { b.cur = 0 }
