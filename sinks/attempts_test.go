package sinks

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"mailtap/config"
)

// stuckClock never lets a backoff end: each run of a sink makes exactly
// one attempt at a failing record.
type stuckClock struct{}

func (stuckClock) Now() time.Time                       { return time.Now() }
func (stuckClock) After(time.Duration) <-chan time.Time { return nil }

// max_attempts counts over restarts: the attempts are saved with the
// cursor, so a record failing across three runs is dead-lettered on the
// third attempt, and Mailtap-Attempt goes on counting.
func TestSink_attemptsSurviveRestart(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(int, *http.Request) (int, http.Header) { return 503, nil })
	cfg := webhookCfg(rc.srv.URL)
	cfg.MaxAttempts = 3
	o := &Options{Logger: slog.New(slog.NewTextHandler(e.logs, nil)), Clock: stuckClock{}}
	run := func(until func(Status) bool) {
		t.Helper()
		m, err := New([]config.Sink{cfg}, e.out, e.store, o)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); m.Run(ctx) }()
		if len(rc.requests()) == 0 {
			e.commit("INBOX", 1) // a new sink starts at the journal's end
		}
		waitFor(t, "the attempt", func() bool { return until(statusOf(m)) })
		cancel()
		<-done
	}
	for i := 1; i <= 2; i++ {
		run(func(st Status) bool { return len(rc.requests()) == i && st.State == StateRetrying })
	}
	run(func(st Status) bool { return st.DeadLetters == 1 })
	got := rc.requests()
	if len(got) != 3 {
		t.Fatalf("%d attempts over three runs, want 3", len(got))
	}
	for i, r := range got {
		if a := r.header.Get("Mailtap-Attempt"); a != fmt.Sprint(i+1) {
			t.Errorf("request %d: Mailtap-Attempt %s", i+1, a)
		}
	}
	dead, err := ReadDeadLetters(e.out, "hook")
	if err != nil || len(dead) != 1 || dead[0].Attempts != 3 {
		t.Errorf("dead letters %+v, %v", dead, err)
	}
	if c, _, _ := loadCursor(StateDir(e.out, "hook")); len(c.Attempts) != 0 || c.Pos.Seq != 2 {
		t.Errorf("cursor after the dead letter: %+v", c)
	}
}
