package watcher_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mailtap/config"
	"mailtap/internal/testbin"
	"mailtap/internal/testimap"
	"mailtap/jsonstore"
	"mailtap/record"
	"mailtap/watcher"
)

// Servers' habits that mailtap must not trust (issue 11): each test here
// reproduces one, against a real server or a loopback proxy that gives a
// real server the habit.

// viaProxy points the config's account at the proxy.
func viaProxy(cfg *config.Config, p *testimap.HabitProxy) *config.Config {
	cfg.Accounts[0].Host, cfg.Accounts[0].Port = p.Host(), p.Port()
	return cfg
}

// runOnce is `mailtap --once` on cfg.
func runOnce(t *testing.T, cfg *config.Config) (error, string) {
	t.Helper()
	store, err := jsonstore.Open(cfg.Output.Dir, jsonstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	logs := &testbin.SyncBuffer{}
	m := watcher.New(cfg, store, &watcher.Options{Once: true,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = m.Run(ctx)
	return err, logs.String()
}

// imap4d (GNU Mailutils 3.15) answers UID SEARCH UID n:* with an empty
// result: --once used to write 0 of 3 messages and exit 0.
func TestHabits_imap4dEmptyOpenEndedSearch(t *testing.T) {
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})
	for i := range 3 {
		dc.Deliver(t, "INBOX", msg(fmt.Sprintf("m%d", i), i))
	}
	p := testimap.StartHabitProxy(t, dc.Addr(), testimap.Habits{
		Answer: func(line string) []string {
			if testimap.UIDSearchOpenEnded(line) {
				return []string{"* SEARCH", "$TAG OK SEARCH completed"}
			}
			return nil
		},
	})
	out := t.TempDir()
	if err, logs := runOnce(t, viaProxy(testConfig(dc, out), p)); err != nil {
		t.Fatalf("once: %v\n%s", err, logs)
	}
	if n := len(records(t, out)); n != 3 {
		t.Errorf("--once through an imap4d-like server wrote %d of 3 messages", n)
	}
}

// A server that gets even UID FETCH n:* wrong is caught by the UIDNEXT
// cross-check: the mail is found another way, and the disagreement is
// logged and shown with both numbers.
func TestHabits_catchUpQueryCrossCheckedWithUIDNext(t *testing.T) {
	srv := testimap.StartMem(t)
	for i := range 3 {
		srv.Deliver(t, "INBOX", msg(fmt.Sprintf("m%d", i), i))
	}
	p := testimap.StartHabitProxy(t, srv.Addr(), testimap.Habits{
		Answer: func(line string) []string {
			f := strings.Fields(line)
			if len(f) >= 4 && strings.EqualFold(f[1], "UID") && strings.EqualFold(f[2], "FETCH") && strings.HasSuffix(f[3], ":*") {
				return []string{"$TAG OK FETCH completed"}
			}
			return nil
		},
	})
	out := t.TempDir()
	cfg := viaProxy(testConfig(srv, out), p)
	h := start(t, cfg, nil)
	waitRecords(t, out, 3, 15*time.Second)
	st := h.waitState(10*time.Second, watcher.StateIdle)
	for _, want := range []string{"UIDNEXT is 4", "newest message has UID 3", "UID FETCH 1:*"} {
		if !strings.Contains(st.Warning, want) {
			t.Errorf("status warning %q lacks %q", st.Warning, want)
		}
	}
	if !strings.Contains(h.logs.String(), "answers that query wrongly") {
		t.Errorf("no warning logged")
	}
	// New mail is still captured, through the same fallback.
	srv.Deliver(t, "INBOX", msg("later", 4))
	waitRecords(t, out, 4, 15*time.Second)
}

// A server (imap4d, some providers' middleboxes) that never pushes in
// IDLE costs at most one idle_refresh, and the log says IDLE is unreliable.
func TestHabits_idleThatNeverPushes(t *testing.T) {
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})
	p := testimap.StartHabitProxy(t, dc.Addr(), testimap.Habits{
		Drop: func(line string, idling bool) bool { return idling && testimap.IsExists(line) },
	})
	out := t.TempDir()
	cfg := viaProxy(testConfig(dc, out), p)
	cfg.Watch.IdleRefresh.Duration = 2 * time.Second
	h := start(t, cfg, nil)
	h.waitState(10*time.Second, watcher.StateIdle)
	dc.Deliver(t, "INBOX", msg("never announced", 1))
	waitRecords(t, out, 1, 20*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(h.logs.String(), "IDLE proved unreliable") {
		if time.Now().After(deadline) {
			t.Fatalf("mail IDLE never announced was not reported:\n%s", h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Cyrus and Courier let a mailbox be deleted and recreated under a session
// without a BYE: the session sits on the dead mailbox. The refresh's
// STATUS sees the new UIDVALIDITY; the new mailbox is captured under it.
func TestHabits_mailboxRecreatedWithoutBye(t *testing.T) {
	srv := testimap.StartMem(t, testimap.WithMailboxes("Lists"))
	srv.Deliver(t, "Lists", msg("before", 1))
	out := t.TempDir()
	cfg := testConfig(srv, out)
	cfg.Accounts[0].Mailboxes = []string{"Lists"}
	cfg.Watch.IdleRefresh.Duration = time.Second
	h := start(t, cfg, nil)
	waitRecords(t, out, 1, 10*time.Second)
	h.waitState(10*time.Second, watcher.StateIdle)

	uv := srv.RecreateMailboxQuietly(t, "Lists")
	srv.Deliver(t, "Lists", msg("after", 1))
	recs := waitRecords(t, out, 2, 15*time.Second)
	for _, r := range recs {
		if r.Subject == "after" && r.UIDValidity != uv {
			t.Errorf("new mail recorded under uidvalidity %d, want the new %d", r.UIDValidity, uv)
		}
	}
	if !strings.Contains(h.logs.String(), "UIDVALIDITY changed while connected") {
		t.Errorf("no warning about the replaced mailbox")
	}
}

// Courier keeps a session on a mailbox that was deleted and recreated and
// never tells it the new UIDVALIDITY, then pushes EXISTS for the new
// mailbox's mail: the push is checked too, so that mail is recorded under
// the mailbox's real UIDVALIDITY, not the one the session started with
// (which a restart would then capture a second time).
func TestHabits_pushIntoAMailboxReplacedUnderTheSession(t *testing.T) {
	srv := testimap.StartMem(t, testimap.WithMailboxes("Lists"))
	srv.Deliver(t, "Lists", msg("before", 1))
	real := srv.Status(t, "Lists").UIDValidity
	var old atomic.Bool // the session's EXAMINE sees the old mailbox's number
	old.Store(true)
	from, to := fmt.Sprintf("UIDVALIDITY %d", real), fmt.Sprintf("UIDVALIDITY %d", real+100)
	p := testimap.StartHabitProxy(t, srv.Addr(), testimap.Habits{
		Rewrite: func(line string) string {
			if old.Load() {
				return strings.ReplaceAll(line, from, to)
			}
			return line
		},
	})
	out := t.TempDir()
	cfg := viaProxy(testConfig(srv, out), p)
	cfg.Accounts[0].Mailboxes = []string{"Lists"}
	cfg.Watch.IdleRefresh.Duration = 10 * time.Minute // only the push can tell
	h := start(t, cfg, nil)
	waitRecords(t, out, 1, 10*time.Second)
	h.waitState(10*time.Second, watcher.StateIdle)
	old.Store(false) // replaced: the real UIDVALIDITY from now on
	srv.Deliver(t, "Lists", msg("after", 2))
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, r := range records(t, out) {
			if r.Subject == "after" {
				if r.UIDValidity != real {
					t.Fatalf("mail of the replaced mailbox recorded under uidvalidity %d, the server's is %d", r.UIDValidity, real)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pushed mail was never captured: %v", subjects(records(t, out)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Cyrus tells a session only "* N EXPUNGE" when its mailbox is deleted:
// an emptied mailbox is checked at once, not at the next refresh.
func TestHabits_expungesThatEmptyTheMailboxTriggerACheck(t *testing.T) {
	srv := testimap.StartMem(t, testimap.WithMailboxes("Lists"))
	srv.Deliver(t, "Lists", msg("one", 1))
	srv.Deliver(t, "Lists", msg("two", 2))
	p := testimap.StartHabitProxy(t, srv.Addr(), testimap.Habits{})
	out := t.TempDir()
	cfg := viaProxy(testConfig(srv, out), p)
	cfg.Accounts[0].Mailboxes = []string{"Lists"}
	cfg.Watch.IdleRefresh.Duration = 10 * time.Minute
	h := start(t, cfg, nil)
	waitRecords(t, out, 2, 10*time.Second)
	h.waitState(10*time.Second, watcher.StateIdle)

	srv.RecreateMailboxQuietly(t, "Lists")
	srv.Deliver(t, "Lists", msg("in the new mailbox", 1))
	p.Inject("* 2 EXPUNGE")
	p.Inject("* 1 EXPUNGE")
	recs := waitRecords(t, out, 3, 15*time.Second)
	if !subjects(recs)["in the new mailbox"] {
		t.Errorf("subjects %v", subjects(recs))
	}
}

// A mailbox deleted while connected is an error state that says what
// happened and is retried; once it exists again it is watched again.
func TestHabits_deletedMailboxIsAVisibleRetriedError(t *testing.T) {
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{Mailboxes: []string{"Lists"}})
	out := t.TempDir()
	cfg := testConfig(dc, out)
	cfg.Accounts[0].Mailboxes = []string{"Lists"}
	cfg.Watch.MaxBackoff.Duration = time.Second
	h := start(t, cfg, nil)
	h.waitState(10*time.Second, watcher.StateIdle)

	dc.DeleteMailbox(t, "Lists")
	st := h.waitState(15*time.Second, watcher.StateError)
	if !strings.Contains(st.Err, `no mailbox "Lists"`) {
		t.Errorf("error state says %q", st.Err)
	}
	if st.NextRetry.IsZero() {
		t.Errorf("no retry scheduled")
	}
	dc.CreateMailbox(t, "Lists")
	dc.Deliver(t, "Lists", msg("back again", 1))
	waitRecords(t, out, 1, 20*time.Second)
	h.waitState(10*time.Second, watcher.StateIdle)
}

// The hierarchy delimiter comes from LIST: on a server with "." (Courier,
// Debian's Cyrus) Lists.golang is the folder Lists/golang on disk, and a
// name with the wrong delimiter is refused with the right one suggested.
func TestHabits_dotDelimiter(t *testing.T) {
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{Separator: ".", Mailboxes: []string{"Lists.golang", "Entwürfe"}})
	dc.Deliver(t, "Lists.golang", msg("list mail", 1))
	dc.Deliver(t, "Entwürfe", msg("draft", 2))

	out := t.TempDir()
	cfg := testConfig(dc, out)
	cfg.Accounts[0].Mailboxes = []string{"Lists.golang", "Entwürfe"}
	h := start(t, cfg, nil)
	waitRecords(t, out, 2, 15*time.Second)
	for _, dir := range []string{filepath.Join(out, "acct", "Lists", "golang"), filepath.Join(out, "acct", "Entwürfe")} {
		ents, err := os.ReadDir(dir)
		if err != nil || len(ents) != 1 {
			t.Errorf("%s: %d entries, %v", dir, len(ents), err)
		}
	}
	h.stop()

	cfg.Accounts[0].Mailboxes = []string{"Lists/golang"}
	h = start(t, cfg, nil)
	st := h.waitState(10*time.Second, watcher.StateError)
	if !strings.Contains(st.Err, `did you mean "Lists.golang"`) {
		t.Errorf("error %q does not suggest the name with the server's delimiter", st.Err)
	}
}

// allSubjects reads every record under out, also several with one id.
func allSubjects(t *testing.T, out string) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	eachRecord(t, out, func(_ string, r record.Record) { got[r.Subject] = true })
	return got
}

// A server restored from a backup (or an embedded one that restarts)
// hands out UIDs again under the same UIDVALIDITY: UIDNEXT is below the
// checkpoint. mailtap used to wait for UIDs above the checkpoint, missing
// everything until the server caught up; now it warns and captures the
// mailbox again.
func TestHabits_uidNextWentBackwards(t *testing.T) {
	before := testimap.StartMem(t)
	for i := range 5 {
		before.Deliver(t, "INBOX", msg(fmt.Sprintf("before restore %d", i), i))
	}
	out := t.TempDir()
	if err, logs := runOnce(t, testConfig(before, out)); err != nil {
		t.Fatalf("once: %v\n%s", err, logs)
	}
	before.Close()

	// The "restored" server: same UIDVALIDITY (1), UIDNEXT back at 1.
	after := testimap.StartMem(t)
	if after.Status(t, "INBOX").UIDValidity != before.Status(t, "INBOX").UIDValidity {
		t.Skip("the test servers no longer share a UIDVALIDITY")
	}
	after.Deliver(t, "INBOX", msg("after restore 1", 10))
	after.Deliver(t, "INBOX", msg("after restore 2", 11))
	cfg := testConfig(after, out)
	h := start(t, cfg, nil)
	deadline := time.Now().Add(15 * time.Second)
	for s := allSubjects(t, out); !s["after restore 1"] || !s["after restore 2"]; s = allSubjects(t, out) {
		if time.Now().After(deadline) {
			t.Fatalf("mail after the restore not captured: %v\n%s", s, h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := h.waitState(10*time.Second, watcher.StateIdle)
	if !strings.Contains(st.Warning, "UIDNEXT went backwards") || !strings.Contains(st.Warning, "checkpoint is at UID 5") {
		t.Errorf("status warning %q", st.Warning)
	}
	// Mail arriving later is captured too.
	after.Deliver(t, "INBOX", msg("after restore 3", 12))
	deadline = time.Now().Add(15 * time.Second)
	for !allSubjects(t, out)["after restore 3"] {
		if time.Now().After(deadline) {
			t.Fatalf("later mail not captured\n%s", h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The baseline of backfill "none" comes from SEARCH RETURN (MAX) (ESEARCH)
// or UIDNEXT, never from UID SEARCH ALL, which lists every UID of a large
// mailbox.
func TestHabits_baselineWithoutSearchAll(t *testing.T) {
	for _, esearch := range []bool{true, false} {
		t.Run(fmt.Sprintf("esearch=%v", esearch), func(t *testing.T) {
			srv := testimap.StartMem(t)
			for i := range 4 {
				srv.Deliver(t, "INBOX", msg(fmt.Sprintf("old %d", i), i))
			}
			habits := testimap.Habits{}
			if !esearch {
				habits.Rewrite = func(line string) string {
					return strings.ReplaceAll(line, " ESEARCH", "")
				}
			}
			p := testimap.StartHabitProxy(t, srv.Addr(), habits)
			out := t.TempDir()
			cfg := viaProxy(testConfig(srv, out), p)
			cfg.Accounts[0].Backfill = "none"
			h := start(t, cfg, nil)
			h.waitState(10*time.Second, watcher.StateIdle)
			srv.Deliver(t, "INBOX", msg("new", 9))
			recs := waitRecords(t, out, 1, 10*time.Second)
			if s := subjects(recs); len(s) != 1 || !s["new"] {
				t.Errorf("captured %v, want only the new mail", s)
			}
			h.waitCheckpoint(t, "INBOX", 5)
			for _, c := range p.Commands() {
				up := strings.ToUpper(c)
				if strings.Contains(up, " SEARCH") && !(esearch && strings.Contains(up, "RETURN (MAX)")) {
					t.Errorf("baseline sent %q", c)
				}
			}
		})
	}
}

// Every refresh is a contact with the server, and the status says when it
// was: the proof that an "idle" mailbox is really watched.
func TestWatcher_lastServerContactAdvancesAtRefresh(t *testing.T) {
	srv := testimap.StartMem(t)
	cfg := testConfig(srv, t.TempDir())
	cfg.Watch.IdleRefresh.Duration = time.Second
	h := start(t, cfg, nil)
	first := h.waitState(10*time.Second, watcher.StateIdle).LastServerContact
	if first.IsZero() || time.Since(first) > 10*time.Second {
		t.Fatalf("last_server_contact %v after connecting", first)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !h.m.Status()[0].LastServerContact.After(first.Add(500 * time.Millisecond)) {
		if time.Now().After(deadline) {
			t.Fatalf("last_server_contact stuck at %v", first)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
