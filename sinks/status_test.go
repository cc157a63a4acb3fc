package sinks

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A receiver that refuses everything is never retried, yet the sink is
// failing: the status says so (since when, the last error) until a
// delivery succeeds, and across a restart.
func TestStatus_deadLetteringIsFailing(t *testing.T) {
	e := newEnv(t)
	var fixed atomic.Bool
	rc := newReceiver(t, func(int, *http.Request) (int, http.Header) {
		if fixed.Load() {
			return 200, nil
		}
		return 400, nil
	})
	cfg := webhookCfg(rc.srv.URL)
	m, stop := e.start(cfg)
	e.commit("INBOX", 2)
	waitFor(t, "2 dead letters", func() bool { st := statusOf(m); return st.DeadLetters == 2 && st.Backlog == 0 })
	st := statusOf(m)
	if st.State != StateFailing || st.FailingSince.IsZero() || !strings.Contains(st.LastError, "400") || !st.Failing(time.Now()) {
		t.Errorf("status of a sink that dead-letters everything: %+v", st)
	}
	since := st.FailingSince
	stop()

	m, _ = e.start(cfg)
	if st := statusOf(m); st.State != StateFailing || !st.FailingSince.Equal(since) {
		t.Errorf("after a restart: %+v, want failing since %s", st, since)
	}
	fixed.Store(true)
	e.commit("INBOX", 1)
	waitFor(t, "a delivery", func() bool { return statusOf(m).Delivered == 1 })
	if st := statusOf(m); st.State != StateIdle || !st.FailingSince.IsZero() || st.Failing(time.Now()) || st.DeadLetters != 2 {
		t.Errorf("after a delivery succeeded: %+v", st)
	}
}

// mailtap replay --dead runs in another process: the live status follows
// the dead-letter file, not a count kept since the start.
func TestStatus_deadLettersFollowReplay(t *testing.T) {
	e := newEnv(t)
	var fixed atomic.Bool
	rc := newReceiver(t, func(int, *http.Request) (int, http.Header) {
		if fixed.Load() {
			return 200, nil
		}
		return 422, nil
	})
	cfg := webhookCfg(rc.srv.URL)
	m, _ := e.start(cfg)
	e.commit("INBOX", 3)
	waitFor(t, "3 dead letters", func() bool { st := statusOf(m); return st.DeadLetters == 3 && st.Backlog == 0 })

	fixed.Store(true)
	ok, failed, err := Replay(t.Context(), cfg, e.out, Selection{Dead: true}, e.opts(), func(ReplayResult) {})
	if err != nil || ok != 3 || failed != 0 {
		t.Fatalf("replay: %d ok, %d failed, %v", ok, failed, err)
	}
	st := statusOf(m)
	if st.DeadLetters != 0 {
		t.Errorf("status after replay --dead: %d dead letters, want 0", st.DeadLetters)
	}
	// The replay delivered through the same receiver: no longer failing.
	if st.State == StateFailing || !st.FailingSince.IsZero() {
		t.Errorf("still failing after the replay delivered every dead letter: %+v", st)
	}
	// And a new dead letter is counted again.
	fixed.Store(false)
	e.commit("INBOX", 1)
	waitFor(t, "a new dead letter", func() bool { return statusOf(m).DeadLetters == 1 })
}
