package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"mailtap/record"
	"mailtap/watcher"
)

var listT0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// testRow is mail number i of a mailbox, captured i seconds after listT0.
func testRow(i int, subject string) *row {
	s := record.Summary{ID: fmt.Sprintf("a/INBOX/1/%d", i), Account: "a", Mailbox: "INBOX", UIDValidity: 1,
		UID: uint32(i), From: fmt.Sprintf("Sender %d <s%d@example.com>", i, i), Subject: subject,
		Path: fmt.Sprintf("/out/a/INBOX/1-%010d.json", i)}
	return newRow(s, listT0.Add(time.Duration(i)*time.Second), true)
}

func filledList(n, height int) *mailList {
	l := newMailList(0)
	l.setHeight(height)
	for i := 1; i <= n; i++ {
		l.add(testRow(i, fmt.Sprintf("subject %d", i)))
	}
	return l
}

func uidAt(l *mailList, d int) uint32 { return l.rowAt(d).sum.UID }

func TestMailList_followsNewestUntilMoved(t *testing.T) {
	l := filledList(5, 3)
	if l.sel.sum.UID != 5 {
		t.Fatalf("untouched list selects uid %d, want the newest (5)", l.sel.sum.UID)
	}
	l.add(testRow(6, "six"))
	if l.sel.sum.UID != 6 {
		t.Fatalf("untouched list selects uid %d after a new row, want 6", l.sel.sum.UID)
	}
	l.move(1) // the user picks uid 5
	l.add(testRow(7, "seven"))
	if l.sel.sum.UID != 5 {
		t.Fatalf("after a move, a new row moved the selection to uid %d", l.sel.sum.UID)
	}
}

// At the top of the list new rows show at once and push the rest down; the
// selection stays on its mail and the window follows it when it would fall
// off the bottom.
func TestMailList_newRowsAtTopKeepSelection(t *testing.T) {
	l := filledList(10, 4)
	l.move(2) // uid 8, display 2
	if got := uidAt(l, 2); got != 8 || l.sel.sum.UID != 8 {
		t.Fatalf("selection at uid %d", l.sel.sum.UID)
	}
	l.add(testRow(11, "new"))
	if l.sel.sum.UID != 8 || l.display(l.sel) != 3 || l.offset != 0 {
		t.Fatalf("sel uid %d at %d, offset %d; want uid 8 at 3, offset 0", l.sel.sum.UID, l.display(l.sel), l.offset)
	}
	l.add(testRow(12, "newer"))
	// uid 8 is now display 4, one below the 4-row window: the window follows.
	if l.sel.sum.UID != 8 || l.offset != 1 || l.above != 1 {
		t.Fatalf("sel uid %d, offset %d, above %d; want 8, 1, 1", l.sel.sum.UID, l.offset, l.above)
	}
}

// Scrolled down, new rows never move what is on screen.
func TestMailList_newRowsWhileScrolledKeepWindow(t *testing.T) {
	l := filledList(100, 10)
	l.move(50)
	before := make([]uint32, 10)
	for i := range before {
		before[i] = uidAt(l, l.offset+i)
	}
	for i := 101; i <= 120; i++ {
		l.add(testRow(i, "new"))
	}
	for i := range before {
		if got := uidAt(l, l.offset+i); got != before[i] {
			t.Fatalf("screen line %d shows uid %d, was %d", i, got, before[i])
		}
	}
	if l.above != 20 {
		t.Errorf("above = %d, want 20", l.above)
	}
	l.top()
	if l.offset != 0 || l.above != 0 || l.sel.sum.UID != 120 {
		t.Errorf("top: offset %d above %d sel %d", l.offset, l.above, l.sel.sum.UID)
	}
}

func TestMailList_sortedByCaptureTime(t *testing.T) {
	l := filledList(0, 5)
	for _, i := range []int{5, 1, 3, 4, 2} {
		l.add(testRow(i, "x"))
	}
	var got []string
	for d := range l.len() {
		got = append(got, fmt.Sprint(uidAt(l, d)))
	}
	if strings.Join(got, ",") != "5,4,3,2,1" {
		t.Fatalf("order %v, want newest first", got)
	}
}

func TestMailList_duplicateIDUpdatesInPlace(t *testing.T) {
	l := filledList(3, 5)
	dup := testRow(2, "better subject")
	dup.at = listT0.Add(time.Hour) // a re-capture later: must not move the row
	if l.add(dup) {
		t.Fatal("duplicate reported as new")
	}
	if len(l.rows) != 3 || uidAt(l, 1) != 2 || l.rowAt(1).subject != "better subject" {
		t.Fatalf("rows %d, display 1 = uid %d %q", len(l.rows), uidAt(l, 1), l.rowAt(1).subject)
	}
}

func TestMailList_mergeOlderRecordsFromDisk(t *testing.T) {
	l := newMailList(0)
	l.setHeight(5)
	l.add(testRow(10, "live"))
	l.move(0) // the user has seen it; stop following
	var disk []*row
	for i := 9; i >= 1; i-- {
		disk = append(disk, testRow(i, "disk"))
	}
	disk = append(disk, testRow(10, "duplicate of live"))
	l.merge(disk)
	if len(l.rows) != 10 || uidAt(l, 0) != 10 || uidAt(l, 9) != 1 || l.sel.sum.UID != 10 {
		t.Fatalf("rows %d, first %d, last %d, sel %d", len(l.rows), uidAt(l, 0), uidAt(l, 9), l.sel.sum.UID)
	}
	if l.rowAt(0).subject != "live" {
		t.Errorf("merge replaced the live row")
	}
}

func TestMailList_filter(t *testing.T) {
	l := newMailList(0)
	l.setHeight(5)
	subjects := []string{"Invoice 1", "lunch", "INVOICE 2", "party", "invoice 3"}
	for i, s := range subjects {
		l.add(testRow(i+1, s))
	}
	l.move(1) // display 1: uid 4, "party"
	if l.sel.subject != "party" {
		t.Fatalf("sel %q", l.sel.subject)
	}
	// "party" does not match: the selection moves to the next newer match.
	l.setFilter("invoice")
	if l.len() != 3 || l.sel.subject != "invoice 3" {
		t.Fatalf("filter: %d rows, sel %q", l.len(), l.sel.subject)
	}
	l.add(testRow(6, "lunch again"))
	l.add(testRow(7, "one more invoice"))
	if l.len() != 4 || uidAt(l, 0) != 7 {
		t.Fatalf("after adds: %d matches, newest uid %d", l.len(), uidAt(l, 0))
	}
	// Matches the sender's address too.
	l.setFilter("s6@example")
	if l.len() != 1 || l.sel.sum.UID != 6 {
		t.Fatalf("address filter: %d rows, sel %d", l.len(), l.sel.sum.UID)
	}
	l.setFilter("nothing like this")
	if l.len() != 0 || l.selectedRow() != nil {
		t.Fatalf("no-match filter: %d rows, selected %v", l.len(), l.selectedRow())
	}
	l.setFilter("")
	if l.len() != 7 || l.selectedRow() == nil {
		t.Fatalf("cleared: %d rows, selected %v", l.len(), l.selectedRow())
	}
}

func TestMailList_trimKeepsNewest(t *testing.T) {
	l := newMailList(100)
	l.setHeight(10)
	for i := 1; i <= 150; i++ {
		l.add(testRow(i, "x"))
	}
	if len(l.rows) > 100 || len(l.byID) != len(l.rows) || uidAt(l, 0) != 150 {
		t.Fatalf("rows %d, byID %d, newest %d", len(l.rows), len(l.byID), uidAt(l, 0))
	}
	l.bottom()
	if l.sel != l.rowAt(l.len()-1) || l.display(l.sel) < 0 {
		t.Fatalf("selection lost after trim")
	}
}

// The model's keys move the selection; p targets the selected mail's
// mailbox, P all, r reconnects.
func TestModel_keysAndControls(t *testing.T) {
	ctrl := newFakeCtrl()
	m := NewModel(ctrl, testOptions())
	st := []watcher.MailboxStatus{
		{Mailbox: mbox("personal", "INBOX"), State: watcher.StateIdle},
		{Mailbox: mbox("work", "INBOX"), State: watcher.StateIdle},
		{Mailbox: mbox("work", "Lists/Go"), State: watcher.StateIdle},
	}
	m = update(t, m, tea.WindowSizeMsg{Width: 80, Height: 24}, statusMsg{at: testNow, st: st}, capturedEvents(sampleSummaries()))
	run := func(k string) {
		t.Helper()
		nm, cmd := m.Update(press(k))
		m = nm.(Model)
		if cmd != nil {
			m = update(t, m, cmd())
		}
	}
	run("j") // Party Bot, work/Lists/Go
	if m.list.sel.sum.From != sampleSummaries()[4].From {
		t.Fatalf("j selected %q", m.list.sel.sum.From)
	}
	run("p")
	run("p")
	run("r")
	run("P")
	run("G") // oldest: Alice, personal/INBOX, paused by P
	run("p")
	want := []string{"pause work/Lists/Go", "resume work/Lists/Go", "reconnect work/Lists/Go", "pause ", "resume personal/INBOX"}
	if got := ctrl.Calls(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("controller calls %q, want %q", got, want)
	}
	if !strings.Contains(plain(m), "personal/INBOX resumed") {
		t.Errorf("no notice for the pause:\n%s", plain(m))
	}
}

// With no mail selected and several mailboxes, p says what to do rather
// than guessing a mailbox.
func TestModel_pauseNeedsTarget(t *testing.T) {
	ctrl := newFakeCtrl()
	m := NewModel(ctrl, testOptions())
	m = update(t, m, tea.WindowSizeMsg{Width: 80, Height: 24}, statusMsg{at: testNow, st: []watcher.MailboxStatus{
		{Mailbox: mbox("a", "INBOX"), State: watcher.StateIdle}, {Mailbox: mbox("b", "INBOX"), State: watcher.StateIdle}}})
	nm, _ := m.Update(press("p"))
	m = nm.(Model)
	if len(ctrl.Calls()) != 0 || !strings.Contains(plain(m), "P pauses all") {
		t.Fatalf("calls %v, frame:\n%s", ctrl.Calls(), plain(m))
	}
}

// A snapshot taken before an event that the UI has already applied must
// not roll the state back; an event older than the snapshot is ignored.
func TestHeader_snapshotAndEventOrdering(t *testing.T) {
	h := newHeader()
	id := mbox("a", "INBOX")
	t0 := time.Now()
	h.box(id).applyEvent(watcher.StateChanged{Mailbox: id, State: watcher.StateIdle, At: t0.Add(2 * time.Millisecond)})
	h.applyStatus([]watcher.MailboxStatus{{Mailbox: id, State: watcher.StateConnecting, Captured: 7}}, t0.Add(time.Millisecond))
	b := h.byID[id.String()]
	if b.state != watcher.StateIdle || b.captured != 7 {
		t.Fatalf("state %s captured %d: the older snapshot rolled the state back or lost its counters", b.state, b.captured)
	}
	h.applyStatus([]watcher.MailboxStatus{{Mailbox: id, State: watcher.StatePaused}}, t0.Add(3*time.Millisecond))
	b.applyEvent(watcher.StateChanged{Mailbox: id, State: watcher.StateIdle, At: t0.Add(2500 * time.Microsecond)})
	if b.state != watcher.StatePaused {
		t.Fatalf("state %s: an event older than the snapshot was applied", b.state)
	}
}

func TestHeader_badges(t *testing.T) {
	now := testNow
	for _, tt := range []struct {
		b    boxState
		want string
	}{
		{boxState{state: watcher.StateIdle}, "idle"},
		{boxState{state: watcher.StateIdle, paused: true}, "pausing"},
		{boxState{state: watcher.StatePaused, paused: true}, "paused"},
		{boxState{state: watcher.StatePaused}, "resuming"},
		{boxState{state: watcher.StateReconnecting, next: now.Add(1500 * time.Millisecond)}, "reconnecting in 2s"},
		{boxState{state: watcher.StateReconnecting, next: now.Add(-time.Second)}, "reconnecting"},
		{boxState{state: watcher.StateAuthFailed, next: now.Add(90 * time.Second)}, "auth failed, retry in 1m30s"},
		{boxState{state: watcher.StateError, next: now.Add(2 * time.Hour)}, "error, retry in 2h00m"},
		{boxState{state: watcher.StateConnecting}, "connecting"},
	} {
		if got := tt.b.badge(now); got != tt.want {
			t.Errorf("badge(%s) = %q, want %q", tt.b.state, got, tt.want)
		}
	}
}

// The countdown tick runs only while a countdown shows.
func TestModel_tickOnlyWhileCountingDown(t *testing.T) {
	now := testNow
	opts := testOptions()
	opts.Now = func() time.Time { return now }
	m := NewModel(newFakeCtrl(), opts)
	id := mbox("a", "INBOX")
	nm, cmd := m.Update(statusMsg{at: now, st: []watcher.MailboxStatus{{Mailbox: id, State: watcher.StateIdle}}})
	m = nm.(Model)
	if cmd != nil {
		t.Fatal("idle mailbox started a timer")
	}
	nm, cmd = m.Update(eventsMsg{events: []watcher.Event{watcher.StateChanged{Mailbox: id, State: watcher.StateReconnecting,
		NextRetry: now.Add(3 * time.Second), At: time.Now()}}})
	m = nm.(Model)
	if cmd == nil || !m.tickPending {
		t.Fatal("countdown did not start the tick")
	}
	now = now.Add(4 * time.Second)
	nm, cmd = m.Update(tickMsg{})
	m = nm.(Model)
	if cmd != nil || m.tickPending {
		t.Fatal("tick continued after the countdown ended")
	}
}

func TestModel_droppedShowsNoticeAndReconciles(t *testing.T) {
	m := NewModel(newFakeCtrl(), testOptions())
	m.opts.Out = t.TempDir()
	m = update(t, m, tea.WindowSizeMsg{Width: 80, Height: 24})
	nm, cmd := m.Update(eventsMsg{events: []watcher.Event{watcher.Dropped{N: 42}}})
	m = nm.(Model)
	if !strings.Contains(plain(m), "42 events skipped while the UI was busy") {
		t.Fatalf("no notice:\n%s", plain(m))
	}
	if cmd == nil {
		t.Fatal("no reconciliation command")
	}
}
