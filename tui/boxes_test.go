package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"mailtap/watcher"
)

// panelText is the mailbox panel as plain text, with the selected
// mailbox's details under the list.
func panelText(m Model) string {
	var b strings.Builder
	m.boxes.render(&b)
	return strings.Join(strings.Fields(ansi.Strip(b.String())), " ")
}

// Once a mailbox recovers, the panel still tells its last error and when
// it happened: its CONN ERR counter is not left beside "No error.".
func TestBoxPanel_keepsLastErrorAfterRecovery(t *testing.T) {
	id := mbox("acct", "INBOX")
	st := []watcher.MailboxStatus{{Mailbox: id, State: watcher.StateIdle}}
	m := update(t, NewModel(newFakeCtrl(), testOptions()), sizeMsg(80, 24), statusMsg{at: testNow, st: st}, press("tab"))
	failed := watcher.StateChanged{Mailbox: id, State: watcher.StateReconnecting, At: testNow.Add(4 * time.Second),
		Err: "connect to imap.example.com:993: connection refused", NextRetry: testNow.Add(9 * time.Second)}
	m = update(t, m, eventsMsg{events: []watcher.Event{failed}})
	if s := panelText(m); !strings.Contains(s, "Last error 14:30:04: connect to imap.example.com:993: connection refused") {
		t.Errorf("failing mailbox's panel:\n%s", s)
	}
	back := func(s watcher.State, d time.Duration) watcher.Event {
		return watcher.StateChanged{Mailbox: id, State: s, At: testNow.Add(d * time.Second)}
	}
	m = update(t, m, eventsMsg{events: []watcher.Event{back(watcher.StateConnecting, 5), back(watcher.StateSyncing, 6), back(watcher.StateIdle, 6)}})
	// The snapshot after recovery: no current error, three failed attempts.
	m = update(t, m, statusMsg{at: testNow.Add(7 * time.Second), st: []watcher.MailboxStatus{{Mailbox: id, State: watcher.StateIdle, Errors: 3, Since: testNow.Add(6 * time.Second)}}})
	s := panelText(m)
	if strings.Contains(s, "No error") {
		t.Errorf("a recovered mailbox with 3 conn errors says there was none:\n%s", s)
	}
	if !strings.Contains(s, "Last error 14:30:04, recovered: connect to imap.example.com:993: connection refused") {
		t.Errorf("a recovered mailbox's panel does not keep its last error and its time:\n%s", s)
	}
}

// Errors from before the monitor started (the counter says so, no event
// told which) are not called "No error." either.
func TestBoxPanel_errorsBeforeTheMonitorStarted(t *testing.T) {
	st := []watcher.MailboxStatus{{Mailbox: mbox("acct", "INBOX"), State: watcher.StateIdle, Errors: 2}}
	m := update(t, NewModel(newFakeCtrl(), testOptions()), sizeMsg(80, 24), statusMsg{at: testNow, st: st}, press("tab"))
	s := panelText(m)
	if strings.Contains(s, "No error.") || !strings.Contains(s, "2 failed connection attempts before this monitor started") {
		t.Errorf("panel of a mailbox with earlier errors:\n%s", s)
	}
}

// The panel's filter matches the state as its badge shows it ("auth
// failed", "retry in"), not only the raw state ("auth_failed").
func TestBoxPanel_filterMatchesBadgeText(t *testing.T) {
	st := boxStatuses(20)
	st[7].State, st[7].Err, st[7].NextRetry = watcher.StateAuthFailed, "login: authentication failed", testNow.Add(29*time.Minute)
	m := update(t, NewModel(newFakeCtrl(), testOptions()), sizeMsg(80, 24), statusMsg{at: testNow, st: st}, press("tab"))
	for _, f := range []string{"auth f", "auth_failed", "retry in 29m"} {
		m.boxes.setFilter(f)
		v := m.boxes.view()
		if len(v) != 1 || v[0].id != st[7].Mailbox {
			var names []string
			for _, b := range v {
				names = append(names, b.label)
			}
			t.Errorf("filter %q matches %v; want only %s", f, names, st[7].Mailbox)
		}
	}
}
