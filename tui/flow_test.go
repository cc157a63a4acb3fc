package tui

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"mailtap/config"
	"mailtap/internal/testbin"
	"mailtap/internal/testimap"
	"mailtap/jsonstore"
	"mailtap/watcher"
)

// Flows: the real watcher over go-imap's in-memory server on loopback TCP,
// a real output dir, and the model in a real Bubble Tea program (teatest).
// Waits poll the drawn frames with teatest.WaitFor; nothing sleeps.

// frameLog records every frame the program draws, as plain text. Bubble
// Tea's renderer writes only the cells that changed, so its byte stream
// cannot be searched for a word reliably; the frames can.
type frameLog struct {
	mu      sync.Mutex
	last    string
	pending bytes.Buffer // frames not yet read by WaitFor
}

const frameSep = "\x00frame\x00"

func (f *frameLog) add(frame string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if frame == f.last {
		return
	}
	f.last = frame
	f.pending.WriteString(frameSep)
	f.pending.WriteString(frame)
}

// Read hands WaitFor the frames drawn since the last read, then io.EOF.
func (f *frameLog) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending.Len() == 0 {
		return 0, io.EOF
	}
	return f.pending.Read(p)
}

// replay queues the current frame again, so a new WaitFor sees the screen
// as it is, not only what changes after.
func (f *frameLog) replay() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending.Reset()
	f.pending.WriteString(frameSep)
	f.pending.WriteString(f.last)
}

func (f *frameLog) Last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// lastFrame is the newest frame in what WaitFor has read so far.
func lastFrame(b []byte) string {
	s := string(b)
	if i := strings.LastIndex(s, frameSep); i >= 0 {
		return s[i+len(frameSep):]
	}
	return s
}

// recorder wraps the model to log each frame it draws.
type recorder struct {
	Model
	frames *frameLog
}

func (r recorder) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m, cmd := r.Model.Update(msg)
	return recorder{m.(Model), r.frames}, cmd
}

func (r recorder) View() tea.View {
	v := r.Model.View()
	r.frames.add(ansi.Strip(v.Content))
	return v
}

type flow struct {
	t      *testing.T
	srv    *testimap.Mem
	out    string
	mgr    *watcher.Manager
	tm     *teatest.TestModel
	frames *frameLog
	events *watcher.Subscription // the test's own view of the watcher
	logs   *LogBuffer
}

func flowConfig(srv *testimap.Mem, out string, mailboxes ...string) *config.Config {
	cfg := config.Defaults()
	cfg.Source = "test"
	cfg.Accounts = []config.Account{{
		Name: "acct", Host: srv.Host(), Port: srv.Port(), TLS: "none",
		Username: srv.Username(), Password: srv.Password(), Auth: "plain",
		Mailboxes: mailboxes, Backfill: "all",
	}}
	cfg.Output.Dir = out
	cfg.Watch.MaxBackoff = config.Duration{Duration: 500 * time.Millisecond}
	cfg.Watch.ResponseTimeout = config.Duration{Duration: 5 * time.Second}
	cfg.Watch.IdleRefresh = config.Duration{Duration: time.Minute}
	cfg.Watch.PollInterval = config.Duration{Duration: time.Second}
	return cfg
}

// startFlow runs a watcher on out over srv and the UI on top of it, both
// stopped at the end of the test.
func startFlow(t *testing.T, srv *testimap.Mem, out string, mailboxes ...string) *flow {
	t.Helper()
	if len(mailboxes) == 0 {
		mailboxes = []string{"INBOX"}
	}
	store, err := jsonstore.Open(out, jsonstore.Options{Pretty: true})
	if err != nil {
		t.Fatal(err)
	}
	f := &flow{t: t, srv: srv, out: out, frames: &frameLog{}}
	f.logs = NewLogBuffer(slog.NewTextHandler(io.Discard, nil), 50)
	f.mgr = watcher.New(flowConfig(srv, out, mailboxes...), store, &watcher.Options{Logger: slog.New(f.logs)})
	f.events = f.mgr.Subscribe(10000)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- f.mgr.Run(ctx) }()

	// As Run does: subscribe first, then start the program, then bridge.
	sub := f.mgr.Subscribe(eventBuffer)
	m := NewModel(f.mgr, Options{Out: out, Logs: f.logs, Version: "test"})
	f.tm = teatest.NewTestModel(t, recorder{m, f.frames}, teatest.WithInitialTermSize(100, 30),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.ANSI)))
	bctx, stopBridge := context.WithCancel(context.Background())
	wait := startBridges(bctx, sub, f.logs, f.tm.Send)

	t.Cleanup(func() {
		_ = f.tm.Quit()
		f.tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
		stopBridge()
		sub.Close()
		wait()
		cancel()
		select {
		case err := <-runDone:
			if err != nil {
				t.Errorf("watcher: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("watcher did not stop")
		}
		f.events.Close()
		store.Close()
		if t.Failed() {
			t.Logf("last frame:\n%s", f.frames.Last())
		}
	})
	return f
}

// waitFrame waits until the newest frame satisfies ok.
func (f *flow) waitFrame(ok func(frame string) bool) string {
	f.t.Helper()
	var got string
	f.frames.replay()
	teatest.WaitFor(f.t, f.frames, func(b []byte) bool {
		got = lastFrame(b)
		return ok(got)
	}, teatest.WithDuration(20*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
	return got
}

func (f *flow) waitText(s string) string {
	f.t.Helper()
	return f.waitFrame(func(fr string) bool { return strings.Contains(fr, s) })
}

// headerLine is the frame's line for a mailbox.
func headerLine(frame, mailbox string) string {
	for _, l := range strings.Split(frame, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), mailbox+" ") {
			return l
		}
	}
	return ""
}

func (f *flow) waitBadge(mailbox, badge string) {
	f.t.Helper()
	f.waitFrame(func(fr string) bool {
		return strings.Contains(headerLine(fr, mailbox), " "+badge+" ")
	})
}

// waitState waits for the watcher (not the UI) to report a state.
func (f *flow) waitState(st watcher.State) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		ev, err := f.events.Next(ctx)
		if err != nil {
			f.t.Fatalf("watcher never reached %s", st)
		}
		if sc, ok := ev.(watcher.StateChanged); ok && sc.State == st {
			return
		}
	}
}

func (f *flow) press(k string) { f.tm.Send(press(k)) }

func TestFlow_deliveredMessageAppears(t *testing.T) {
	srv := testimap.StartMem(t)
	f := startFlow(t, srv, t.TempDir())
	f.waitBadge("acct/INBOX", "idle")
	srv.Deliver(t, "INBOX", testimap.Msg("Hello from the flow test", 1))
	fr := f.waitText("Hello from the flow test")
	if !strings.Contains(headerLine(fr, "acct/INBOX"), "1 captured") {
		f.waitFrame(func(fr string) bool { return strings.Contains(headerLine(fr, "acct/INBOX"), "1 captured") })
	}
	// Hostile and wide subjects arrive through the real parser and store.
	srv.Deliver(t, "INBOX", testimap.Msg("会議の議事録 🎉 \x1b]0;pwned\x07\x1b[2Jclean\u202Efdp.exe", 2))
	fr = f.waitText("会議の議事録 🎉 cleanfdp.exe")
	checkFrame(t, fr, 100, 30)
}

func TestFlow_pauseAndResume(t *testing.T) {
	srv := testimap.StartMem(t)
	out := t.TempDir()
	f := startFlow(t, srv, out)
	f.waitBadge("acct/INBOX", "idle")

	f.press("p")
	f.waitBadge("acct/INBOX", "paused")
	f.waitText("acct/INBOX paused") // the notice
	f.waitState(watcher.StatePaused)

	srv.Deliver(t, "INBOX", testimap.Msg("Sent while paused", 7))
	if recs := countRecords(t, out); recs != 0 {
		t.Fatalf("%d records written while paused", recs)
	}
	f.press("p")
	f.waitText("Sent while paused")
	f.waitBadge("acct/INBOX", "idle")
}

func TestFlow_reconnect(t *testing.T) {
	srv := testimap.StartMem(t)
	f := startFlow(t, srv, t.TempDir())
	f.waitBadge("acct/INBOX", "idle")
	f.waitState(watcher.StateIdle)

	f.press("r")
	f.waitState(watcher.StateReconnecting) // the watcher dropped the connection
	f.waitState(watcher.StateIdle)
	f.waitBadge("acct/INBOX", "idle")
	// The status line follows the state: it says the reconnect is done,
	// never "reconnecting" above an idle badge.
	f.waitText("acct/INBOX reconnected")
	if fr := f.frames.Last(); strings.Contains(fr, "reconnect requested") || strings.Contains(fr, "INBOX reconnecting") {
		t.Errorf("the status line still says the reconnect is under way:\n%s", fr)
	}

	// With the server gone the badge counts down to the next attempt, and
	// a message delivered meanwhile is captured once it is back.
	srv.Stop(t)
	f.waitFrame(func(fr string) bool {
		return strings.Contains(headerLine(fr, "acct/INBOX"), "reconnecting in ")
	})
	f.waitText("warning") // the title bar counts warnings not yet seen in the log pane
	srv.Start(t)
	srv.Deliver(t, "INBOX", testimap.Msg("After the outage", 3))
	f.press("r") // skip the rest of the backoff
	f.waitText("After the outage")
}

func TestFlow_openAndCloseDetail(t *testing.T) {
	srv := testimap.StartMem(t)
	f := startFlow(t, srv, t.TempDir())
	f.waitBadge("acct/INBOX", "idle")
	srv.Deliver(t, "INBOX", testimap.MsgBody("Quarterly report", 5, "Line one of the body.\n\tTabbed line.\n"))
	f.waitText("Quarterly report")

	f.press("enter")
	fr := f.waitText("Line one of the body.")
	for _, want := range []string{"From:", "Test Sender <sender@example.com>", "Message-ID:", "@testimap.example",
		"File:", filepath.Join("acct", "INBOX"), "        Tabbed line."} {
		if !strings.Contains(fr, want) {
			t.Errorf("detail lacks %q:\n%s", want, fr)
		}
	}
	f.press("o")
	f.waitText(`"schema_version": 1`)
	f.press("esc")
	f.waitFrame(func(fr string) bool {
		return strings.Contains(fr, "SUBJECT") && !strings.Contains(fr, "Message-ID:")
	})
}

// Records from an earlier run are listed at start, and counted on disk.
func TestFlow_recordsOnDiskAtStart(t *testing.T) {
	srv := testimap.StartMem(t)
	out := t.TempDir()
	srv.Deliver(t, "INBOX", testimap.Msg("Captured by an earlier run", 1))
	srv.Deliver(t, "INBOX", testimap.Msg("Also earlier", 2))
	writeEarlierRun(t, srv, out, 2)

	srv.Deliver(t, "INBOX", testimap.Msg("New in this run", 3))
	f := startFlow(t, srv, out)
	fr := f.waitText("New in this run")
	fr = f.waitFrame(func(fr string) bool {
		h := headerLine(fr, "acct/INBOX")
		return strings.Contains(h, "1 captured") && strings.Contains(h, "3 on disk")
	})
	for _, want := range []string{"Captured by an earlier run", "Also earlier"} {
		if !strings.Contains(fr, want) {
			t.Errorf("frame lacks %q:\n%s", want, fr)
		}
	}
}

// writeEarlierRun captures what srv holds into out with a watcher of its
// own, as a previous mailtap run would have.
func writeEarlierRun(t *testing.T, srv *testimap.Mem, out string, n int) {
	t.Helper()
	store, err := jsonstore.Open(out, jsonstore.Options{Pretty: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m := watcher.New(flowConfig(srv, out, "INBOX"), store, &watcher.Options{Once: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("earlier run: %v", err)
	}
	if got := countRecords(t, out); got != n {
		t.Fatalf("earlier run wrote %d records, want %d", got, n)
	}
}

func countRecords(t *testing.T, out string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".mailtap" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".json") {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A UI that never reads its events does not slow capture: with a tiny
// buffer left unread, 1,000 messages are all written, and the subscriber
// then learns how many events it missed.
func TestFlow_unreadSubscriberDoesNotSlowCapture(t *testing.T) {
	srv := testimap.StartMem(t)
	out := t.TempDir()
	store, err := jsonstore.Open(out, jsonstore.Options{Pretty: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m := watcher.New(flowConfig(srv, out, "INBOX"), store, &watcher.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	frozen := m.Subscribe(8) // never read until the end
	defer frozen.Close()
	watch := m.Subscribe(100000)
	defer watch.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watcher: %v", err)
		}
	}()
	waitEvent(t, watch, func(ev watcher.Event) bool {
		sc, ok := ev.(watcher.StateChanged)
		return ok && sc.State == watcher.StateIdle
	})

	const n = 1000
	start := time.Now()
	srv.DeliverN(t, "INBOX", n)
	captured := 0
	waitEvent(t, watch, func(ev watcher.Event) bool {
		if _, ok := ev.(watcher.Captured); ok {
			captured++
		}
		return captured == n
	})
	elapsed := time.Since(start)
	if got := countRecords(t, out); got != n {
		t.Fatalf("%d records on disk, want %d", got, n)
	}
	t.Logf("%d messages delivered and captured in %s with a frozen subscriber", n, elapsed.Round(time.Millisecond))

	ev, err := frozen.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d, ok := ev.(watcher.Dropped)
	if !ok || d.N <= 0 {
		t.Fatalf("frozen subscriber's first event is %#v, want Dropped{N>0}", ev)
	}
	t.Logf("frozen subscriber: %d events dropped", d.N)
}

func waitEvent(t *testing.T, sub *watcher.Subscription, ok func(watcher.Event) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for an event: %v", err)
		}
		if ok(ev) {
			return
		}
	}
}

// Run itself: a real program on a pipe, quit with q, and a second run ended
// by its context.
func TestRun_quitAndContext(t *testing.T) {
	ctrl := newFakeCtrl(watcher.MailboxStatus{Mailbox: mbox("a", "INBOX"), State: watcher.StateIdle})
	for _, how := range []string{"q", "ctrl+c", "ctx"} {
		t.Run(how, func(t *testing.T) {
			inR, inW := io.Pipe()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out := &testbin.SyncBuffer{}
			done := make(chan error, 1)
			go func() {
				done <- Run(ctx, ctrl, Options{ProgramOptions: []tea.ProgramOption{
					tea.WithInput(inR), tea.WithOutput(out), tea.WithWindowSize(80, 24), tea.WithoutSignalHandler()}})
			}()
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(ansi.Strip(out.String()), "a/INBOX") {
				if time.Now().After(deadline) {
					t.Fatalf("no frame:\n%q", out.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			// An event published now reaches the UI through the bridge.
			ctrl.hub.Publish(watcher.StateChanged{Mailbox: mbox("a", "INBOX"), State: watcher.StateSyncing, At: time.Now()})
			for !strings.Contains(ansi.Strip(out.String()), "syncing") {
				if time.Now().After(deadline) {
					t.Fatalf("event not drawn:\n%q", out.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			switch how {
			case "q":
				fmt.Fprint(inW, "q")
			case "ctrl+c":
				fmt.Fprint(inW, "\x03")
			case "ctx":
				cancel()
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run = %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return")
			}
			inW.Close()
		})
	}
}
