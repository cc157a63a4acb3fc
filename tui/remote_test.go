package tui

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"mailtap/internal/testbin"
	"mailtap/watcher"
)

// A read-only model answers every control key with a notice, shows
// read-only in its footer and never calls the controller.
func TestModel_readOnly(t *testing.T) {
	ctrl := newFakeCtrl(watcher.MailboxStatus{Mailbox: mbox("personal", "INBOX"), State: watcher.StateIdle})
	opts := testOptions()
	opts.ReadOnly = true
	m := NewModel(ctrl, opts)
	m = update(t, m, statusMsg{at: testNow, st: ctrl.Status()}, capturedEvents(sampleSummaries()), tea.WindowSizeMsg{Width: 80, Height: 24})
	frame := plain(m)
	if !strings.Contains(lastLine(frame), "read-only") {
		t.Errorf("footer lacks read-only:\n%s", frame)
	}
	for _, k := range []string{"p", "P", "r", "R"} {
		if strings.Contains(lastLine(frame), k+" pause") || strings.Contains(lastLine(frame), k+" reconnect") {
			t.Errorf("footer offers %s:\n%s", k, frame)
		}
		nm, cmd := m.Update(press(k))
		m = nm.(Model)
		runCmd(cmd)
		if !strings.Contains(plain(m), readOnlyNotice) {
			t.Errorf("%s: no read-only notice:\n%s", k, plain(m))
		}
	}
	if calls := ctrl.Calls(); len(calls) != 0 {
		t.Errorf("the controller was called: %q", calls)
	}
	checkFrame(t, m.View().Content, 80, 24)

	// The same keys act in a normal session: the check above can fail.
	m = NewModel(ctrl, testOptions())
	m = update(t, m, tea.WindowSizeMsg{Width: 80, Height: 24}, statusMsg{at: testNow, st: ctrl.Status()})
	if strings.Contains(lastLine(plain(m)), "read-only") {
		t.Errorf("a normal footer says read-only")
	}
	_, cmd := m.Update(press("p"))
	runCmd(cmd)
	if calls := ctrl.Calls(); len(calls) != 1 || calls[0] != "pause personal/INBOX" {
		t.Errorf("calls = %q", calls)
	}
}

func lastLine(frame string) string {
	lines := strings.Split(strings.TrimRight(frame, "\n"), "\n")
	return lines[len(lines)-1]
}

// runCmd runs a command and the batches it returns, skipping timers.
func runCmd(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	select {
	case msg := <-done:
		if b, ok := msg.(tea.BatchMsg); ok {
			for _, c := range b {
				runCmd(c)
			}
		}
	case <-time.After(100 * time.Millisecond): // a tick
	}
}

// NewProgram runs on a subscription the caller owns; closing it ends only
// this program's feed, and two programs share one controller.
func TestNewProgram_ownSubscription(t *testing.T) {
	ctrl := newFakeCtrl(watcher.MailboxStatus{Mailbox: mbox("a", "INBOX"), State: watcher.StateIdle})
	type prog struct {
		in   *io.PipeWriter
		out  *testbin.SyncBuffer
		sub  *watcher.Subscription
		done chan struct{}
		wait func()
		stop context.CancelFunc
	}
	start := func() *prog {
		inR, inW := io.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		pr := &prog{in: inW, out: &testbin.SyncBuffer{}, sub: ctrl.Subscribe(EventBuffer), done: make(chan struct{}), stop: cancel}
		p, wait := NewProgram(ctx, ctrl, pr.sub, Options{ProgramOptions: []tea.ProgramOption{
			tea.WithInput(inR), tea.WithOutput(pr.out), tea.WithWindowSize(80, 24), tea.WithoutSignalHandler()}})
		pr.wait = wait
		go func() { defer close(pr.done); p.Run() }()
		return pr
	}
	waitFor := func(pr *prog, s string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(ansi.Strip(pr.out.String()), s) {
			if time.Now().After(deadline) {
				t.Fatalf("%q not drawn:\n%q", s, pr.out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	a, b := start(), start()
	waitFor(a, "a/INBOX")
	waitFor(b, "a/INBOX")

	fmt.Fprint(a.in, "q")
	<-a.done
	a.stop()
	a.sub.Close()
	a.wait()

	ctrl.hub.Publish(watcher.StateChanged{Mailbox: mbox("a", "INBOX"), State: watcher.StateSyncing, At: time.Now()})
	waitFor(b, "syncing")
	b.stop()
	<-b.done
	b.sub.Close()
	b.wait()
	a.in.Close()
	b.in.Close()
}
