package tui

import (
	"strings"
	"testing"
	"time"

	"mailtap/watcher"
)

// stateEvents is one StateChanged per (mailbox, state), a second apart
// from testNow on.
func stateEvents(id watcher.MailboxID, states ...watcher.State) eventsMsg {
	var evs []watcher.Event
	for i, s := range states {
		evs = append(evs, watcher.StateChanged{Mailbox: id, State: s, At: testNow.Add(time.Duration(i+1) * time.Second)})
	}
	return eventsMsg{events: evs}
}

// R with a mailbox that is no longer watched (stopped): the notice follows
// the mailboxes that do reconnect and says "reconnected" when they are
// back, in any of the watching states (idle, notify, polling), instead of
// waiting for the stopped one until the notice expires.
func TestReconnectNotice_skipsStoppedAndCountsEveryWatchingState(t *testing.T) {
	for _, back := range []watcher.State{watcher.StateIdle, watcher.StateNotify, watcher.StatePolling} {
		t.Run(string(back), func(t *testing.T) {
			live, gone := mbox("acct", "INBOX"), mbox("acct", "Old")
			st := []watcher.MailboxStatus{
				{Mailbox: live, State: back},
				{Mailbox: gone, State: watcher.StateStopped, Err: "not watched: excluded"},
			}
			m := update(t, NewModel(newFakeCtrl(), testOptions()), sizeMsg(80, 24), statusMsg{at: testNow, st: st})
			m = update(t, m, press("R"), controlMsg{verb: "reconnecting"})
			if got := m.statusLine(); !strings.Contains(got, "every mailbox: reconnect requested") {
				t.Fatalf("after R the status line is %q", got)
			}
			for _, ev := range stateEvents(live, watcher.StateReconnecting, watcher.StateConnecting, watcher.StateSyncing, back).events {
				m = update(t, m, eventsMsg{events: []watcher.Event{ev}})
			}
			if got := m.statusLine(); !strings.Contains(got, "every mailbox reconnected") {
				t.Errorf("back in %s beside a stopped mailbox, the status line is %q; want \"every mailbox reconnected\"", back, got)
			}
		})
	}
}

// The bridge batches events: a reconnect that goes down and comes back
// within one batch (a fast local server) is still reported as done.
func TestReconnectNotice_wholeCycleInOneBatch(t *testing.T) {
	id := mbox("acct", "INBOX")
	st := []watcher.MailboxStatus{{Mailbox: id, State: watcher.StateNotify}, {Mailbox: mbox("acct", "Sent"), State: watcher.StatePolling}}
	m := update(t, NewModel(newFakeCtrl(), testOptions()), sizeMsg(80, 24), statusMsg{at: testNow, st: st})
	m.requestReconnect(id.String()) // what r does on a selected INBOX
	m = update(t, m, controlMsg{verb: "reconnecting", target: id.String()})
	m = update(t, m, stateEvents(id, watcher.StateReconnecting, watcher.StateConnecting, watcher.StateSyncing, watcher.StateNotify))
	if got := m.statusLine(); !strings.Contains(got, "acct/INBOX reconnected") {
		t.Errorf("after a whole reconnect in one batch the status line is %q", got)
	}
}
