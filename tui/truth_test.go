package tui

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"mailtap/jsonstore"
	"mailtap/record"
	"mailtap/watcher"
)

// headerText is the header as plain text.
func headerText(m Model) string {
	var b strings.Builder
	m.renderHeader(&b, m.width)
	return ansi.Strip(b.String())
}

// "captured" and "on disk" move together (both counted from the same
// events while the throttled snapshot is on its way), and mail captured
// with parse_errors is counted as malformed, not hidden under "0 errors".
func TestHeader_countersAgreeAndNameMalformed(t *testing.T) {
	m := NewModel(newFakeCtrl(), testOptions())
	m.opts.Out = "/out"
	st := []watcher.MailboxStatus{{Mailbox: mbox("personal", "INBOX"), State: watcher.StateIdle}}
	inv := &jsonstore.Inventory{Mailboxes: map[string]*jsonstore.MailboxFiles{
		"personal/INBOX": {Account: "personal", Mailbox: "INBOX", Count: 5, MaxUID: map[uint32]uint32{1: 5}},
	}}
	sums := []record.Summary{
		{ID: "personal/INBOX/1/6", Account: "personal", Mailbox: "INBOX", UIDValidity: 1, UID: 6, Subject: "fine"},
		{ID: "personal/INBOX/1/7", Account: "personal", Mailbox: "INBOX", UIDValidity: 1, UID: 7, Subject: "bad", ParseErrors: 2},
	}
	m = update(t, m, sizeMsg(120, 30), statusMsg{at: testNow, st: st}, inventoryMsg{inv: inv}, capturedEvents(sums))
	if h := headerText(m); !strings.Contains(h, "2 captured · 7 on disk · 1 malformed · 0 conn errors") {
		t.Errorf("header before the snapshot:\n%s", h)
	}
	// The snapshot agrees; a connection error is counted apart.
	st[0].Captured, st[0].Malformed, st[0].Errors, st[0].LastCapture = 2, 1, 1, testNow
	m = update(t, m, statusMsg{at: testNow.Add(time.Second), st: st})
	if h := headerText(m); !strings.Contains(h, "2 captured · 7 on disk · 1 malformed · 1 conn error ·") {
		t.Errorf("header after the snapshot:\n%s", h)
	}
	// At 80 columns the short form still names both.
	m = update(t, m, sizeMsg(80, 24))
	if h := headerText(m); !strings.Contains(h, "2 captured · 7 on disk · 1 malformed · 1 conn err") {
		t.Errorf("header at 80 columns:\n%s", h)
	}
}

func sizeMsg(w, h int) tea.WindowSizeMsg { return tea.WindowSizeMsg{Width: w, Height: h} }

// The list is in capture order, and its time column is the capture time,
// labelled so, whatever the Date headers say (a sender's clock, a delayed
// delivery). The status page shows capture time too.
func TestList_timeColumnIsCaptureTime(t *testing.T) {
	m := NewModel(newFakeCtrl(), testOptions())
	var evs []watcher.Event
	// Date headers out of capture order, as in the report.
	dates := []string{"17:02", "20:10", "18:36", "20:57", "19:23"}
	for i, d := range dates {
		hm, _ := time.Parse("15:04", d)
		date := time.Date(2025, 6, 10, hm.Hour(), hm.Minute(), 0, 0, time.UTC)
		s := record.Summary{ID: fmt.Sprintf("a/INBOX/1/%d", i+1), Account: "a", Mailbox: "INBOX", UIDValidity: 1, UID: uint32(i + 1),
			From: "x@example.com", Subject: fmt.Sprintf("mail %d", i+1), Date: date}
		evs = append(evs, watcher.Captured{Mailbox: mbox("a", "INBOX"), Summary: s, At: testNow.Add(time.Duration(i-10) * time.Minute)})
	}
	m = update(t, m, sizeMsg(80, 24), eventsMsg{events: evs})
	var b strings.Builder
	m.renderList(&b, 80)
	lines := strings.Split(ansi.Strip(b.String()), "\n")
	if !strings.HasPrefix(strings.TrimSpace(lines[0]), "CAPTURED") {
		t.Errorf("time column heading = %q, want it to say CAPTURED", lines[0])
	}
	var got []string
	for _, l := range lines[1:6] {
		got = append(got, strings.Fields(strings.TrimLeft(l, "▌ "))[0])
	}
	want := []string{"14:24", "14:23", "14:22", "14:21", "14:20"} // newest first
	if !slices.Equal(got, want) {
		t.Errorf("time column = %v, want the capture times %v", got, want)
	}
}

// The log pane keeps warnings and errors only; it says where the rest is.
func TestLogPane_namesTheLogFile(t *testing.T) {
	opts := testOptions()
	opts.LogPath = "/srv/mail/.mailtap/mailtap.log"
	m := update(t, NewModel(newFakeCtrl(), opts), sizeMsg(80, 24), press("l"))
	if s := plain(m); !strings.Contains(s, "full log: /srv/mail/.mailtap/mailtap.log") {
		t.Errorf("the log pane does not name the log file:\n%s", s)
	}
}
