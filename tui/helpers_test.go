package tui

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"mailtap/record"
	"mailtap/watcher"
)

// fakeCtrl is a Controller over a real watcher.Hub with a scripted status,
// for component and golden tests that need no IMAP server.
type fakeCtrl struct {
	hub *watcher.Hub

	mu     sync.Mutex
	status []watcher.MailboxStatus
	calls  []string
}

func newFakeCtrl(st ...watcher.MailboxStatus) *fakeCtrl {
	return &fakeCtrl{hub: watcher.NewHub(), status: st}
}

func (f *fakeCtrl) record(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
	return nil
}

func (f *fakeCtrl) Pause(id string) error     { return f.record("pause " + id) }
func (f *fakeCtrl) Resume(id string) error    { return f.record("resume " + id) }
func (f *fakeCtrl) Reconnect(id string) error { return f.record("reconnect " + id) }
func (f *fakeCtrl) Status() []watcher.MailboxStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]watcher.MailboxStatus(nil), f.status...)
}
func (f *fakeCtrl) Subscribe(n int) *watcher.Subscription { return f.hub.Subscribe(n) }

func (f *fakeCtrl) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// testNow is the fixed clock of golden tests.
var testNow = time.Date(2025, 6, 10, 14, 30, 0, 0, time.UTC)

func testOptions() Options {
	return Options{Version: "v1.0.0-test", Now: func() time.Time { return testNow }, Location: time.UTC}
}

func mbox(acct, mb string) watcher.MailboxID { return watcher.MailboxID{Account: acct, Mailbox: mb} }

// hostileSubject tries every trick a subject can carry: a window-title OSC
// ended by BEL, a screen clear, a carriage return that would overwrite the
// row, backspaces, a bidi override, NUL, a C1 CSI and an unterminated OSC.
const hostileSubject = "\x1b]0;pwned\x07\x1b[2JURGENT\rinvoice\b\b\u202Egpj.exe\x00 \u009b31mred\x1b]52;c;Zm9v"

// sampleSummaries are mail of every kind the list must draw, oldest first.
func sampleSummaries() []record.Summary {
	mk := func(i int, acct, mb, from, subj string, att int) record.Summary {
		return record.Summary{
			ID: fmt.Sprintf("%s/%s/1/%d", acct, mb, i), Account: acct, Mailbox: mb, UIDValidity: 1, UID: uint32(i),
			From: from, Subject: subj, Date: testNow.Add(-time.Duration(20-i) * 7 * time.Minute),
			Attachments: att, Path: fmt.Sprintf("/out/%s/%s/1-%010d.json", acct, mb, i),
		}
	}
	return []record.Summary{
		mk(1, "personal", "INBOX", "Alice Example <alice@example.com>", "Lunch on Friday?", 0),
		mk(2, "personal", "INBOX", "billing@shop.example", "Your invoice #4711", 1),
		mk(3, "work", "INBOX", "山田太郎 <yamada@example.jp>", "会議の議事録：第3四半期の売上報告と来期の計画について（確認をお願いします）", 2),
		mk(4, "personal", "INBOX", "\x1b[31mEvil\x1b[0m <evil@example.com>", hostileSubject, 1),
		mk(5, "work", "Lists/Go", "Party Bot 🎉 <bot@example.com>", "🎉 Party tonight 👨‍👩‍👧 ❤️ 👍🏽 bring 🍕 and 🍺 — everyone welcome!!", 0),
		mk(6, "personal", "INBOX", "Bob <bob@example.org>", "A rather long subject line that keeps going well past the width of any reasonable terminal window, really", 0),
	}
}

// update applies msgs in order and ignores the returned commands, so a
// frame depends only on the messages (no timers, no I/O).
func update(t testing.TB, m Model, msgs ...tea.Msg) Model {
	t.Helper()
	for _, msg := range msgs {
		nm, _ := m.Update(msg)
		m = nm.(Model)
	}
	return m
}

func capturedEvents(sums []record.Summary) eventsMsg {
	var evs []watcher.Event
	for i, s := range sums {
		evs = append(evs, watcher.Captured{Mailbox: mbox(s.Account, s.Mailbox), Summary: s,
			At: testNow.Add(-time.Duration(len(sums)-i) * time.Minute)})
	}
	return eventsMsg{events: evs}
}

func press(s string) tea.KeyPressMsg {
	switch s {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	}
	r := []rune(s)[0]
	return tea.KeyPressMsg{Code: r, Text: s}
}

// plain is a frame without styling.
func plain(m Model) string { return ansi.Strip(m.View().Content) }

// checkFrame asserts the frame is exactly h lines of at most w columns and
// carries no control character other than SGR styling and newlines.
func checkFrame(t testing.TB, frame string, w, h int) {
	t.Helper()
	lines := strings.Split(frame, "\n")
	if len(lines) != h {
		t.Errorf("frame has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if got := ansi.StringWidth(l); got > w {
			t.Errorf("line %d is %d columns wide, more than %d: %q", i, got, w, ansi.Strip(l))
		}
		if got := ansi.StringWidthWc(l); got > w {
			t.Errorf("line %d is %d columns wide by wcwidth, more than %d: %q", i, got, w, ansi.Strip(l))
		}
		if bad := unsafeRunes(ansi.Strip(l)); bad != "" {
			t.Errorf("line %d carries %s: %q", i, bad, l)
		}
	}
}

// unsafeRunes names a control or invisible formatting character left in s.
func unsafeRunes(s string) string {
	for _, r := range s {
		switch {
		case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
			return fmt.Sprintf("control %U", r)
		case dropFormat(r):
			return fmt.Sprintf("format character %U", r)
		}
	}
	return ""
}
