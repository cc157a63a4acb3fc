package watcher

import (
	"testing"
	"time"
)

func TestBackoff_doublesToCapWithinJitterBounds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		jitter func(int64) int64
		want   []time.Duration
	}{
		{"lowest", func(int64) int64 { return 0 },
			[]time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"highest", func(n int64) int64 { return n },
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackoff(time.Second, 10*time.Second)
			b.jitter = tc.jitter
			for i, w := range tc.want {
				if got := b.next(); got != w {
					t.Errorf("attempt %d: delay %v, want %v", i+1, got, w)
				}
			}
		})
	}
}

func TestBackoff_realJitterStaysInBounds(t *testing.T) {
	b := newBackoff(time.Second, 8*time.Second)
	base := time.Second
	for i := range 50 {
		d := b.next()
		if d < base/2 || d > base {
			t.Fatalf("attempt %d: delay %v outside [%v, %v]", i+1, d, base/2, base)
		}
		base = min(base*2, 8*time.Second)
	}
}

func TestBackoff_resetStartsAtMinimum(t *testing.T) {
	b := newBackoff(time.Second, time.Minute)
	b.jitter = func(n int64) int64 { return n }
	for range 5 {
		b.next()
	}
	b.reset()
	if got := b.next(); got != time.Second {
		t.Errorf("after reset: %v, want the minimum 1s", got)
	}
}

func TestBackoff_maxBelowMin(t *testing.T) {
	b := newBackoff(time.Minute, time.Second)
	b.jitter = func(n int64) int64 { return n }
	if got := b.next(); got != time.Minute {
		t.Errorf("%v, want the minimum when max < min", got)
	}
	if got := b.next(); got != time.Minute {
		t.Errorf("second: %v, want it capped at the minimum", got)
	}
}
