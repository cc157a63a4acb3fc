package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"charm.land/bubbles/v2/key"
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

// The title bar's background spans the whole width, in every view and at
// every width: the first line is as wide as the terminal and styled to
// its end.
func TestHeader_titleSpansWidth(t *testing.T) {
	for _, w := range []int{40, 50, 80, 120, 200} {
		for _, keys := range [][]string{nil, {"?"}, {"l"}, {"tab"}, {"down", "down", "enter"}} {
			m := scene(t, w, 24, testOptions())
			for _, k := range keys {
				m = update(t, m, press(k))
			}
			first := strings.Split(m.View().Content, "\n")[0]
			if got := ansi.StringWidth(first); got != w {
				t.Errorf("%d cols, keys %v: title bar is %d columns wide: %q", w, keys, got, ansi.Strip(first))
			}
			if !strings.HasSuffix(first, "\x1b[m") || strings.HasSuffix(ansi.Strip(first), " ") && strings.Contains(first, "\x1b[m ") {
				t.Errorf("%d cols, keys %v: the title bar's end is not styled: %q", w, keys, first)
			}
		}
	}
}

// At 40×10 the help bar still shows how to get help and how to quit; in
// the detail view g and G are top and bottom, not newest and oldest.
func TestHelp_narrowAndPerView(t *testing.T) {
	m := scene(t, 40, 10, testOptions())
	lines := strings.Split(plain(m), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "? help") || !strings.Contains(last, "q quit") {
		t.Errorf("help bar at 40 columns: %q", last)
	}
	for _, k := range [][]string{{"down", "down", "enter", "?"}, {"l", "?"}} {
		m := scene(t, 120, 40, testOptions())
		for _, key := range k {
			m = update(t, m, press(key))
		}
		s := plain(m)
		if !strings.Contains(s, "g/home top") || !strings.Contains(s, "G/end  bottom") || strings.Contains(s, "newest") {
			t.Errorf("keys %v: full help does not call g/G top and bottom:\n%s", k, s)
		}
	}
}

// boxStatuses is n mailboxes, every tenth reconnecting with a long error.
func boxStatuses(n int) []watcher.MailboxStatus {
	st := make([]watcher.MailboxStatus, n)
	for i := range st {
		st[i] = watcher.MailboxStatus{Mailbox: mbox("acct", fmt.Sprintf("box-%04d", i)), State: watcher.StateIdle}
		if i%10 == 3 {
			st[i].State, st[i].NextRetry = watcher.StateReconnecting, testNow.Add(9*time.Second)
			st[i].Err = fmt.Sprintf("connect to imap-%04d.very-long-hostname.example.com:993: connection refused", i)
			st[i].Errors = 2
		}
	}
	return st
}

// Mailboxes without mail can be selected, paused and reconnected from the
// mailbox panel, which shows the full last error of the selected one.
func TestBoxPanel_actsOnMailboxesWithoutMail(t *testing.T) {
	ctrl := newFakeCtrl()
	m := update(t, NewModel(ctrl, testOptions()), sizeMsg(80, 24), statusMsg{at: testNow, st: boxStatuses(5)})
	run := func(keys ...string) {
		for _, k := range keys {
			nm, cmd := m.Update(press(k))
			m = nm.(Model)
			if cmd != nil {
				if msg := cmd(); msg != nil {
					m = update(t, m, msg)
				}
			}
		}
	}
	m = update(t, m, press("p")) // its notice's timer is not run
	if len(ctrl.Calls()) != 0 {
		t.Fatalf("p with no mail selected called %v", ctrl.Calls())
	}
	run("tab", "down", "down", "down", "p", "r")
	want := []string{"pause acct/box-0003", "reconnect acct/box-0003"}
	if got := ctrl.Calls(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	s := plain(m)
	// The whole error, wrapped if need be, nothing cut off.
	joined := strings.Join(strings.Fields(s), " ")
	if !strings.Contains(joined, "connect to imap-0003.very-long-hostname.example.com:993: connection refused") {
		t.Errorf("the panel does not show the full last error:\n%s", s)
	}
	if !strings.Contains(s, "5 mailboxes: 4 idle, 1 reconnecting") {
		t.Errorf("the header does not summarise the mailboxes in the panel:\n%s", s)
	}
	checkFrame(t, m.View().Content, 80, 24)
	run("tab")
	if m.state != stateList {
		t.Errorf("tab did not go back to the mail list")
	}
}

// 1,000 mailboxes at 80×24: a frame fits, costs what a frame of 100 does
// (only visible rows are drawn), and the filter finds one by name or the
// failing ones by state, through the KeyMap's filter keys.
func TestBoxPanel_thousandMailboxes(t *testing.T) {
	frame := func(n int) (Model, float64) {
		m := update(t, NewModel(newFakeCtrl(), testOptions()), sizeMsg(80, 24), statusMsg{at: testNow, st: boxStatuses(n)}, press("tab"))
		allocs := testing.AllocsPerRun(20, func() { m.View() })
		return m, allocs
	}
	_, small := frame(100)
	m, big := frame(1000)
	if big > small*1.2+10 {
		t.Errorf("a frame allocates %.0f times with 1,000 mailboxes, %.0f with 100: rows off screen are drawn", big, small)
	}
	checkFrame(t, m.View().Content, 80, 24)
	if s := plain(m); !strings.Contains(s, "1000 mailboxes: 900 idle, 100 reconnecting") || !strings.Contains(s, " 1/1000") {
		t.Errorf("panel with 1,000 mailboxes:\n%s", s)
	}
	m = update(t, m, press("G"))
	if s := plain(m); !strings.Contains(s, "acct/box-0999") || !strings.Contains(s, " 1000/1000") {
		t.Errorf("G does not reach the last mailbox:\n%s", s)
	}
	for _, k := range []string{"/", "b", "o", "x", "-", "0", "5", "5", "3"} {
		m = update(t, m, press(k))
	}
	if s := plain(m); !strings.Contains(s, "1 of 1000 mailboxes") || !strings.Contains(s, "acct/box-0553") {
		t.Errorf("filter by name:\n%s", s)
	}
	// esc undoes the edit: no filter, and the selection where it was.
	m = update(t, m, press("esc"))
	if s := plain(m); !strings.Contains(s, " 1000/1000") {
		t.Errorf("esc did not restore the selection and filter:\n%s", s)
	}
	for _, k := range []string{"/", "r", "e", "c", "o", "n", "enter"} {
		m = update(t, m, press(k))
	}
	if s := plain(m); !strings.Contains(s, `matching "recon" (of 1000`) || !strings.Contains(s, " 1/100") {
		t.Errorf("filter by state:\n%s", s)
	}
}

// In filter mode the footer lists only what acts there; esc restores the
// selection from before the edit; the filter matches the MAILBOX column;
// the filter keys are the KeyMap's.
func TestFilter_modeKeysAndRestore(t *testing.T) {
	m := scene(t, 80, 24, testOptions())
	m = update(t, m, press("down"), press("down")) // the hostile mail, uid 4
	before := m.list.sel
	m = update(t, m, press("/"), press("b"), press("o"), press("b"))
	lines := strings.Split(plain(m), "\n")
	footer := lines[len(lines)-1]
	for _, want := range []string{"enter apply", "esc cancel"} {
		if !strings.Contains(footer, want) {
			t.Errorf("filter footer lacks %q: %q", want, footer)
		}
	}
	for _, not := range []string{"pause", "reconnect", "quit", "? help"} {
		if strings.Contains(footer, not) {
			t.Errorf("filter footer advertises %q, which types into the filter: %q", not, footer)
		}
	}
	if m.list.sel == before {
		t.Fatal("typing did not move the selection to a match")
	}
	m = update(t, m, press("esc"))
	if m.list.sel != before || m.list.filter != "" {
		t.Errorf("esc left selection %q and filter %q; want the selection from before", m.list.sel.subject, m.list.filter)
	}

	m = update(t, m, press("/"))
	for _, r := range "lists/go" {
		m = update(t, m, press(string(r)))
	}
	m = update(t, m, press("enter"))
	if n := m.list.len(); n != 1 || !strings.Contains(m.list.rowAt(0).subject, "Party tonight") {
		t.Errorf("filter by mailbox found %d rows", n)
	}

	// Rebind cancel: the KeyMap decides, not a hard-coded esc.
	m = scene(t, 80, 24, testOptions())
	m.keys.FilterCancel = key.NewBinding(key.WithKeys("ctrl+g"), key.WithHelp("ctrl+g", "cancel"))
	m = update(t, m, press("/"), press("x"), tea.KeyPressMsg{Code: 'g', Mod: tea.ModCtrl})
	if m.filtering || m.list.filter != "" {
		t.Errorf("the rebound cancel key did not cancel (filtering %v, filter %q)", m.filtering, m.list.filter)
	}
}

// The detail view of a mail that forwards another: the forwarded From,
// Date and Subject and, inline, its text indented; attachments after the
// body under a heading; saved paths absolute like File:, which wraps at 50
// columns instead of being cut.
func TestDetail_forwardedAttachmentsAndPaths(t *testing.T) {
	out := filepath.Join(t.TempDir(), "a-rather-long-output-directory", "for-mail-json")
	dir := filepath.Join(out, "acct", "INBOX")
	saved := "acct/INBOX/1-0000000007/forwarded.eml"
	if err := os.MkdirAll(filepath.Join(out, filepath.Dir(saved)), 0o755); err != nil {
		t.Fatal(err)
	}
	inner := "From: Alice Example <alice@example.com>\r\nDate: Tue, 10 Jun 2025 09:15:00 +0200\r\nSubject: The plan for Q3\r\n" +
		"\r\nThe plan is to ship in July.\r\nSecond line of the plan.\r\n"
	if err := os.WriteFile(filepath.Join(out, saved), []byte(inner), 0o644); err != nil {
		t.Fatal(err)
	}
	pdf := "acct/INBOX/1-0000000007/report.pdf"
	rec := &record.Record{SchemaVersion: 1, ID: "acct/INBOX/1/7", Account: "acct", Mailbox: "INBOX", UIDValidity: 1, UID: 7,
		Subject: "Fwd: The plan for Q3", From: []record.Address{{Name: "Bob", Address: "bob@example.com"}},
		InternalDate: testNow, CapturedAt: testNow, Text: "FYI, see below.\n",
		Attachments: []record.Attachment{
			{Filename: "forwarded.eml", ContentType: "message/rfc822", Disposition: "inline", Size: int64(len(inner)), SavedAs: &saved},
			{Filename: "report.pdf", ContentType: "application/pdf", Disposition: "attachment", Size: 2048, SavedAs: &pdf},
		}}
	rec.Normalize()
	data, err := record.Append(nil, rec, true)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "1-0000000007.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := record.SummaryOf(rec, path)
	m := update(t, NewModel(newFakeCtrl(), testOptions()), sizeMsg(50, 60),
		statusMsg{at: testNow, st: []watcher.MailboxStatus{{Mailbox: mbox("acct", "INBOX"), State: watcher.StateIdle}}},
		eventsMsg{events: []watcher.Event{watcher.Captured{Mailbox: mbox("acct", "INBOX"), Summary: sum, At: testNow}}},
		press("enter"), loadDetail(path)())
	s := plain(m)
	checkFrame(t, m.View().Content, 50, 60)
	for _, want := range []string{"Forwarded message", "From:    Alice Example <alice@example.com>",
		"Subject: The plan for Q3", "    The plan is to ship in July.", "    Second line of the plan.", "Attachments (2):"} {
		if !strings.Contains(s, want) {
			t.Errorf("detail view lacks %q:\n%s", want, s)
		}
	}
	if strings.Index(s, "FYI, see below.") > strings.Index(s, "Attachments (2):") {
		t.Errorf("attachments are listed before the body:\n%s", s)
	}
	flat := strings.Join(strings.Fields(s), "")
	for _, p := range []string{path, filepath.Join(out, pdf)} {
		if !strings.Contains(flat, p) {
			t.Errorf("detail view does not show %s whole (absolute, wrapped):\n%s", p, s)
		}
	}
}
