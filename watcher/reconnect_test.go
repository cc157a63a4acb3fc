package watcher_test

import (
	"sync"
	"testing"
	"time"

	"mailtap/internal/testimap"
	"mailtap/watcher"
)

// fakeClock hands every timer a session asks for to the test, which sees
// the delay and decides when it fires.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers chan *fakeTimer
}

type fakeTimer struct {
	d  time.Duration
	c  chan time.Time
	mu sync.Mutex
	ok bool // not stopped
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Now(), timers: make(chan *fakeTimer, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) watcher.Timer {
	t := &fakeTimer{d: d, c: make(chan time.Time, 1), ok: true}
	c.timers <- t
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	was := t.ok
	t.ok = false
	return was
}

func (t *fakeTimer) fire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ok {
		t.ok = false
		t.c <- time.Now()
	}
}

func (c *fakeClock) nextTimer(t *testing.T) *fakeTimer {
	t.Helper()
	select {
	case tm := <-c.timers:
		return tm
	case <-time.After(20 * time.Second):
		t.Fatal("the session asked for no wait")
		return nil
	}
}

// Pressing r (or POST /api/reconnect) while waiting must reconnect now and
// start the backoff over; it used to make the next wait longer.
func TestWatcher_reconnectResetsBackoff(t *testing.T) {
	srv := testimap.StartMem(t)
	cfg := testConfig(srv, t.TempDir())
	cfg.Accounts[0].Port = closedPort(t)
	cfg.Watch.MaxBackoff.Duration = 5 * time.Minute
	clock := newFakeClock()
	h := start(t, cfg, &watcher.Options{Clock: clock})

	var last time.Duration
	for i := range 5 {
		tm := clock.nextTimer(t)
		if i > 0 && tm.d < last {
			t.Fatalf("wait %d is %v, shorter than the one before (%v): backoff is not growing", i+1, tm.d, last)
		}
		last = tm.d
		tm.fire()
	}
	// The sixth wait is the one a user cuts short.
	tm := clock.nextTimer(t)
	if tm.d < 8*time.Second {
		t.Fatalf("sixth wait %v: backoff did not grow as expected", tm.d)
	}
	start := time.Now()
	if err := h.m.Reconnect(""); err != nil {
		t.Fatal(err)
	}
	next := clock.nextTimer(t)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("reconnect attempt came %v after the request", took)
	}
	if next.d > time.Second {
		t.Errorf("wait after Reconnect is %v, want at most the 1s minimum (was %v before)", next.d, tm.d)
	}
	if st := h.m.Status()[0]; st.State != watcher.StateReconnecting || st.NextRetry.Sub(clock.Now()) > time.Second {
		t.Errorf("status after Reconnect: %s, next retry in %v", st.State, st.NextRetry.Sub(clock.Now()))
	}
}
