package watcher

import (
	"math/rand/v2"
	"time"
)

// backoff is capped exponential backoff with jitter in [d/2, d]: reconnect
// storms from many clients spread out, and a single client still comes
// back promptly after a short outage. It only computes delays; the session
// waits them on its Clock, so tests drive both.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
	// jitter returns a number in [0, n]; nil is math/rand.
	jitter func(n int64) int64
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
	j := b.jitter
	if j == nil {
		j = func(n int64) int64 { return rand.N(n + 1) }
	}
	return half + time.Duration(j(int64(half)))
}

// reset is called after a successful session, and on an explicit
// Reconnect, so the next wait starts at the minimum again.
func (b *backoff) reset() { b.cur = 0 }

// Clock is the time source of the waits a session makes between attempts
// (tailscale's logtail/backoff has the same seam): tests pass a fake one
// to see every delay asked for and to end it when they choose.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer a session uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }
