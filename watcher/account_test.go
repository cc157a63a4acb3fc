package watcher_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailtap/internal/testimap"
	"mailtap/watcher"
)

// states returns each mailbox's state by name.
func states(m *watcher.Manager) map[string]watcher.State {
	out := map[string]watcher.State{}
	for _, st := range m.Status() {
		out[st.Mailbox.Mailbox] = st.State
	}
	return out
}

func waitUntil(t *testing.T, h *harness, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; status %+v\nlog:\n%s", what, timeout, h.m.Status(), h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitAllIn waits until every mailbox is in state.
func waitAllIn(t *testing.T, h *harness, state watcher.State) {
	t.Helper()
	waitUntil(t, h, "every mailbox "+string(state), 15*time.Second, func() bool {
		for _, st := range states(h.m) {
			if st != state {
				return false
			}
		}
		return true
	})
}

// waitNotFound waits until mailbox shows the error of a mailbox the
// server no longer has.
func waitNotFound(t *testing.T, h *harness, mailbox string) {
	t.Helper()
	waitUntil(t, h, mailbox+" shown as not found", 10*time.Second, func() bool {
		for _, st := range h.m.Status() {
			if st.Mailbox.Mailbox == mailbox {
				return st.State == watcher.StateError && strings.Contains(st.Err, "no mailbox")
			}
		}
		return false
	})
}

// TestAccount_budgetSharedPolling: five mailboxes, a budget of two, a
// server without NOTIFY (the in-memory one). INBOX gets the one IDLE
// connection; the other four are checked with STATUS on the shared one.
// The server never sees more than two connections, mail in every mailbox
// is captured once, and a mailbox deleted while running becomes a visible
// error of its own while the others go on.
func TestAccount_budgetSharedPolling(t *testing.T) {
	boxes := []string{"A", "B", "INBOX", "C", "D"}
	srv := testimap.StartMem(t, testimap.WithMailboxes("A", "B", "C", "D"))
	for i, b := range boxes {
		srv.Deliver(t, b, msg("before "+b, i))
	}
	out := t.TempDir()
	cfg := testConfig(srv, out)
	cfg.Accounts[0].Mailboxes = boxes
	cfg.Accounts[0].MaxConnections = 2
	cfg.Watch.IdleRefresh.Duration = time.Hour // a missing mailbox must not wait for it
	h := start(t, cfg, nil)

	want := map[string]watcher.State{"INBOX": watcher.StateIdle, "A": watcher.StatePolling, "B": watcher.StatePolling,
		"C": watcher.StatePolling, "D": watcher.StatePolling}
	waitUntil(t, h, "INBOX idle, the rest polling", 10*time.Second, func() bool {
		return fmt.Sprint(states(h.m)) == fmt.Sprint(want)
	})
	waitRecords(t, out, len(boxes), 10*time.Second)

	for i, b := range boxes {
		srv.Deliver(t, b, msg("after "+b, 10+i))
	}
	recs := waitRecords(t, out, 2*len(boxes), 10*time.Second)
	for _, b := range boxes {
		if !subjects(recs)["after "+b] {
			t.Errorf("%s: new mail not captured", b)
		}
	}

	srv.DeleteMailbox(t, "C")
	waitNotFound(t, h, "C")
	for _, st := range h.m.Status() {
		if st.Mailbox.Mailbox == "C" && st.NextRetry.IsZero() {
			t.Error("the missing mailbox shows no next retry")
		}
	}
	srv.Deliver(t, "D", msg("after C went", 30))
	waitUntil(t, h, "the others go on", 10*time.Second, func() bool {
		return subjects(records(t, out))["after C went"]
	})
	srv.CreateMailbox(t, "C")
	srv.Deliver(t, "C", msg("C is back", 31))
	waitUntil(t, h, "the recreated mailbox captured", 10*time.Second, func() bool {
		return subjects(records(t, out))["C is back"] && states(h.m)["C"] == watcher.StatePolling
	})
	if _, peak := srv.Conns(); peak > 2 {
		t.Errorf("the server saw %d connections at once; the budget is 2", peak)
	}
	if n := len(records(t, out)); n != 2*len(boxes)+2 {
		t.Errorf("%d records, want %d (each message once)", n, 2*len(boxes)+2)
	}

	// Pause and resume work per mailbox on the shared connection too.
	if err := h.m.Pause("acct/A"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, h, "A paused", 10*time.Second, func() bool { return states(h.m)["A"] == watcher.StatePaused })
	srv.Deliver(t, "A", msg("while A paused", 40))
	time.Sleep(3 * cfg.Watch.PollInterval.Duration)
	if subjects(records(t, out))["while A paused"] {
		t.Fatal("a paused mailbox was captured")
	}
	h.m.Resume("acct/A")
	waitUntil(t, h, "A caught up after resume", 10*time.Second, func() bool {
		return subjects(records(t, out))["while A paused"]
	})
}

// TestAccount_allFitInTheBudget: with as many mailboxes as the budget,
// each gets a connection of its own (IDLE) and the shared one closes.
func TestAccount_allFitInTheBudget(t *testing.T) {
	srv := testimap.StartMem(t, testimap.WithMailboxes("A", "B"))
	out := t.TempDir()
	cfg := testConfig(srv, out)
	cfg.Accounts[0].Mailboxes = []string{"INBOX", "A", "B"}
	cfg.Accounts[0].MaxConnections = 3
	h := start(t, cfg, nil)
	waitAllIn(t, h, watcher.StateIdle)
	waitUntil(t, h, "three connections, one each", 10*time.Second, func() bool {
		now, _ := srv.Conns()
		return now == 3
	})
	if _, peak := srv.Conns(); peak > 3 {
		t.Errorf("peak %d connections, budget 3", peak)
	}
}

// TestDovecot_notifyWatchesEveryMailboxOnOneConnection: Dovecot has
// NOTIFY, so five mailboxes are watched on one connection, and new mail in
// any of them is pushed (idle_refresh is a minute here: a capture within
// seconds is a push, not a refresh).
func TestDovecot_notifyWatchesEveryMailboxOnOneConnection(t *testing.T) {
	boxes := []string{"INBOX", "Lists/golang", "Box2", "Entwürfe", "Box4"}
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{Mailboxes: boxes[1:]})
	out := t.TempDir()
	cfg := testConfig(dc, out)
	cfg.Accounts[0].Mailboxes = boxes
	h := start(t, cfg, nil)
	waitAllIn(t, h, watcher.StateNotify)
	for round := range 2 {
		for i, b := range boxes {
			subj := fmt.Sprintf("round %d %s", round, b)
			dc.Deliver(t, b, msg(subj, 10*round+i))
			waitUntil(t, h, "pushed: "+subj, 10*time.Second, func() bool { return subjects(records(t, out))[subj] })
		}
	}
	if n := len(records(t, out)); n != 2*len(boxes) {
		t.Errorf("%d records, want %d", n, 2*len(boxes))
	}
	logs, err := os.ReadFile(dc.LogFile())
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(logs), "imap-login: Info: Login:"); n != 1 {
		t.Errorf("%d logins for 5 mailboxes with NOTIFY, want 1", n)
	}
}

// TestAccount_patternsFollowTheServer: "Lists/*" with an exclude, on a
// server without NOTIFY. The folders the pattern selects are watched (the
// excluded one never is), a folder created while running is picked up at
// the next refresh and its mail captured, and one deleted becomes a
// visible error.
func TestAccount_patternsFollowTheServer(t *testing.T) {
	srv := testimap.StartMem(t, testimap.WithMailboxes("Lists/a", "Lists/b", "Lists/spam", "Other"))
	for i, b := range []string{"INBOX", "Lists/a", "Lists/b", "Lists/spam", "Other"} {
		srv.Deliver(t, b, msg("before "+b, i))
	}
	out := t.TempDir()
	cfg := testConfig(srv, out)
	cfg.Accounts[0].Mailboxes = []string{"INBOX", "Lists/*"}
	cfg.Accounts[0].Exclude = []string{"Lists/spam"}
	cfg.Accounts[0].MaxConnections = 2
	h := start(t, cfg, nil)
	watchedNow := func() map[string]watcher.State {
		got := states(h.m)
		for name, st := range got {
			if st != watcher.StateIdle && st != watcher.StatePolling {
				delete(got, name)
			}
		}
		return got
	}
	waitUntil(t, h, "INBOX, Lists/a and Lists/b watched", 10*time.Second, func() bool {
		return len(watchedNow()) == 3 && watchedNow()["Lists/a"] != "" && watchedNow()["Lists/b"] != ""
	})
	recs := waitRecords(t, out, 3, 10*time.Second)
	if s := subjects(recs); s["before Lists/spam"] || s["before Other"] {
		t.Fatalf("captured mail of a folder not selected: %v", s)
	}
	if _, ok := states(h.m)["Lists/spam"]; ok {
		t.Error("the excluded folder has a status entry")
	}

	srv.CreateMailbox(t, "Lists/c")
	srv.Deliver(t, "Lists/c", msg("in the new folder", 10))
	waitUntil(t, h, "the new folder captured", 10*time.Second, func() bool {
		return subjects(records(t, out))["in the new folder"] && watchedNow()["Lists/c"] != ""
	})

	srv.DeleteMailbox(t, "Lists/a")
	waitNotFound(t, h, "Lists/a")
	if _, peak := srv.Conns(); peak > 2 {
		t.Errorf("peak %d connections, budget 2", peak)
	}
	if err := h.m.Pause("acct/Lists/c"); err != nil {
		t.Errorf("a mailbox found by a pattern cannot be controlled: %v", err)
	}
}

// TestAccount_oncePatternsAndBudget: --once resolves the patterns first,
// then catches up every selected folder, never more connections at once
// than the budget.
func TestAccount_oncePatternsAndBudget(t *testing.T) {
	boxes := []string{"Lists/a", "Lists/b", "Lists/c", "Lists/d", "Other"}
	srv := testimap.StartMem(t, testimap.WithMailboxes(boxes...))
	for i, b := range boxes {
		srv.Deliver(t, b, msg("once "+b, i))
	}
	out := t.TempDir()
	cfg := testConfig(srv, out)
	cfg.Accounts[0].Mailboxes = []string{"Lists/%"}
	cfg.Accounts[0].MaxConnections = 2
	if err, logs := runOnce(t, cfg); err != nil {
		t.Fatalf("once: %v\n%s", err, logs)
	}
	got := subjects(records(t, out))
	for _, b := range boxes[:4] {
		if !got["once "+b] {
			t.Errorf("%s not captured: %v", b, got)
		}
	}
	if got["once Other"] {
		t.Error("a folder the pattern does not select was captured")
	}
	if _, peak := srv.Conns(); peak > 2 {
		t.Errorf("peak %d connections, budget 2", peak)
	}
}

// TestDovecot_notifyBurst: new mail in every mailbox at once, through
// Dovecot (as its LDA or LMTP delivers): every one is pushed, none left
// for the poll_interval sweep.
func TestDovecot_notifyBurst(t *testing.T) {
	boxes := []string{"INBOX", "B1", "B2", "B3", "B4", "B5", "B6", "B7"}
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{Mailboxes: boxes[1:]})
	out := t.TempDir()
	cfg := testConfig(dc, out)
	cfg.Accounts[0].Mailboxes = boxes
	cfg.Watch.PollInterval.Duration = time.Hour // no sweep: only pushes count
	cfg.Watch.IdleRefresh.Duration = time.Hour
	h := start(t, cfg, nil)
	waitAllIn(t, h, watcher.StateNotify)
	// One delivery agent per mailbox, all at once: Dovecot changes
	// several mailboxes of the user concurrently.
	aps := make([]*testimap.Appender, len(boxes))
	for i := range aps {
		ap, err := testimap.NewAppender(dc.Addr(), dc.Username(), dc.Password())
		if err != nil {
			t.Fatal(err)
		}
		defer ap.Close()
		aps[i] = ap
	}
	for round := range 5 {
		var wg sync.WaitGroup
		for i, b := range boxes {
			wg.Go(func() {
				if err := aps[i].Append(b, msg(fmt.Sprintf("burst %d %s", round, b), 100*round+i)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		waitRecords(t, out, (round+1)*len(boxes), 10*time.Second)
	}
}

// TestAccount_notifyCrossingOurStatus: a server may announce new mail in a
// mailbox while our own STATUS of it is under way, with the answer computed
// just before the mail came. The first NOTIFY version took every STATUS
// line for that mailbox during the command as the answer: the
// announcement was dropped, the stale answer said "nothing new", and the
// mail waited for the poll_interval sweep (the 1% tail of the 1,000-
// mailbox burst). The in-memory server plays a NOTIFY server through a
// proxy, so the order of the lines is exact: stale answer, tagged OK,
// announcement, all in one read.
func TestAccount_notifyCrossingOurStatus(t *testing.T) {
	srv := testimap.StartMem(t, testimap.WithMailboxes("B1"))
	srv.Deliver(t, "B1", msg("first", 1))
	var armed atomic.Bool
	var uv atomic.Uint32
	p := testimap.StartHabitProxy(t, srv.Addr(), notifyHabits(func(line string) []string {
		f := strings.Fields(line)
		switch {
		case len(f) > 2 && strings.EqualFold(f[1], "STATUS") && strings.Trim(f[2], `"`) == "B1" && armed.CompareAndSwap(true, false):
			// One write: the announcement is read with the answer,
			// before imapclient has seen the command complete.
			return []string{
				fmt.Sprintf("* STATUS B1 (UIDNEXT 2 UIDVALIDITY %d)", uv.Load()), // computed before the mail
				"$TAG OK STATUS completed",
				"* STATUS B1 (MESSAGES 2 UIDNEXT 3)", // the mail's announcement
			}
		}
		return nil
	}))
	out := t.TempDir()
	cfg := viaProxy(testConfig(srv, out), p)
	cfg.Accounts[0].Mailboxes = []string{"INBOX", "B1"}
	cfg.Watch.PollInterval.Duration = time.Hour // no sweep: only announcements count
	cfg.Watch.IdleRefresh.Duration = time.Hour
	h := start(t, cfg, nil)
	for _, r := range waitRecords(t, out, 1, 10*time.Second) {
		uv.Store(r.UIDValidity)
	}
	waitAllIn(t, h, watcher.StateNotify)

	srv.Deliver(t, "B1", msg("second", 2)) // UID 2; the server says nothing of it yet
	armed.Store(true)
	p.Inject("* STATUS B1 (MESSAGES 2)") // a line without UIDNEXT: we must ask
	recs := waitRecords(t, out, 2, 10*time.Second)
	if !subjects(recs)["second"] {
		t.Fatalf("the announced mail was not captured: %v", subjects(recs))
	}
	if armed.Load() {
		t.Fatalf("the lane never asked STATUS B1: the test did not test the crossing; commands: %q", p.Commands())
	}
}

// notifyHabits make a server without NOTIFY (the in-memory one) look like
// one with it: the capability is added and NOTIFY SET accepted; the
// announcements are the test's to make (Inject, or answer, which sees
// every other command first; nil forwards it).
func notifyHabits(answer func(line string) []string) testimap.Habits {
	return testimap.Habits{
		Rewrite: func(line string) string {
			if strings.HasPrefix(line, "* CAPABILITY ") || strings.Contains(line, "[CAPABILITY ") {
				return strings.Replace(line, "CAPABILITY ", "CAPABILITY NOTIFY ", 1)
			}
			return line
		},
		Answer: func(line string) []string {
			if f := strings.Fields(line); len(f) > 1 && strings.EqualFold(f[1], "NOTIFY") {
				return []string{"$TAG OK NOTIFY completed"}
			}
			if answer != nil {
				return answer(line)
			}
			return nil
		},
	}
}
