package watcher_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"mailtap/config"
	"mailtap/internal/testbin"
	"mailtap/internal/testimap"
	"mailtap/jsonstore"
	"mailtap/record"
	"mailtap/watcher"
)

// server is what the flows need from either test server.
type server interface {
	Host() string
	Port() int
	Username() string
	Password() string
	Deliver(t testing.TB, mailbox string, raw []byte) uint32
}

func testConfig(srv server, out string) *config.Config {
	cfg := config.Defaults()
	cfg.Source = "test"
	cfg.Accounts = []config.Account{{
		Name: "acct", Host: srv.Host(), Port: srv.Port(), TLS: "none",
		Username: srv.Username(), Password: srv.Password(), Auth: "plain",
		Mailboxes: []string{"INBOX"}, Backfill: "all",
	}}
	cfg.Output.Dir = out
	cfg.Watch.MaxBackoff = config.Duration{Duration: 500 * time.Millisecond}
	cfg.Watch.ResponseTimeout = config.Duration{Duration: 5 * time.Second}
	cfg.Watch.IdleRefresh = config.Duration{Duration: time.Minute}
	cfg.Watch.PollInterval = config.Duration{Duration: time.Second}
	return cfg
}

// harness runs a Manager over a store until the test ends.
type harness struct {
	t      *testing.T
	cfg    *config.Config
	store  *jsonstore.Store
	m      *watcher.Manager
	sub    *watcher.Subscription
	cancel context.CancelFunc
	done   chan error
	logs   *testbin.SyncBuffer
}

func start(t *testing.T, cfg *config.Config, opts *watcher.Options) *harness {
	t.Helper()
	store, err := jsonstore.Open(cfg.Output.Dir, jsonstore.Options{Pretty: true, MaxBodyBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cfg: cfg, store: store, done: make(chan error, 1), logs: &testbin.SyncBuffer{}}
	if opts == nil {
		opts = &watcher.Options{}
	}
	opts.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(h.logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.m = watcher.New(cfg, store, opts)
	h.sub = h.m.Subscribe(10000)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.m.Run(ctx) }()
	t.Cleanup(func() { h.stop() })
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		h.t.Errorf("Run did not return after cancel")
	}
	h.sub.Close()
	h.store.Close()
	if h.t.Failed() {
		h.t.Logf("watcher log:\n%s", h.logs.String())
	}
}

// waitState waits for the mailbox to enter one of states.
func (h *harness) waitState(timeout time.Duration, states ...watcher.State) watcher.MailboxStatus {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		st := h.m.Status()[0]
		for _, s := range states {
			if st.State == s {
				return st
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("state %v not reached; status %+v\nlog:\n%s", states, h.m.Status()[0], h.logs.String())
	return watcher.MailboxStatus{}
}

// eachRecord decodes every record file under out (outside .mailtap),
// suffixed ones (~N) included, and hands it to fn.
// waitCheckpoint waits for mailbox's checkpoint to reach uid: a record is
// visible a moment before the checkpoint that makes it durable commits.
func (h *harness) waitCheckpoint(t *testing.T, mailbox string, uid uint32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := h.store.State("acct", mailbox)
		if st.LastUID == uid {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint of %s: last_uid %d, want %d", mailbox, st.LastUID, uid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func eachRecord(t *testing.T, out string, fn func(path string, r record.Record)) {
	t.Helper()
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".mailtap" {
			return filepath.SkipDir
		}
		if strings.HasSuffix(p, ".json") {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var r record.Record
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			fn(p, r)
		}
		return nil
	})
}

// records returns id → record of every JSON file under out; an id written
// twice fails the test.
func records(t *testing.T, out string) map[string]record.Record {
	t.Helper()
	got := map[string]record.Record{}
	eachRecord(t, out, func(_ string, r record.Record) {
		if _, dup := got[r.ID]; dup {
			t.Fatalf("%s written twice", r.ID)
		}
		got[r.ID] = r
	})
	return got
}

func waitRecords(t *testing.T, out string, n int, timeout time.Duration) map[string]record.Record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := records(t, out)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			ids := make([]string, 0, len(got))
			for id := range got {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			t.Fatalf("want %d records, have %d: %v", n, len(got), ids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func subjects(recs map[string]record.Record) map[string]bool {
	s := map[string]bool{}
	for _, r := range recs {
		s[r.Subject] = true
	}
	return s
}

func msg(subject string, n int) []byte { return testimap.Msg(subject, n) }

func TestWatcher_backfillThenIdle(t *testing.T) {
	srv := testimap.StartMem(t)
	for i := range 3 {
		srv.Deliver(t, "INBOX", msg(fmt.Sprintf("old %d", i), i))
	}
	out := t.TempDir()
	h := start(t, testConfig(srv, out), nil)
	waitRecords(t, out, 3, 10*time.Second)
	h.waitState(5*time.Second, watcher.StateIdle)

	srv.Deliver(t, "INBOX", msg("new while idle", 10))
	recs := waitRecords(t, out, 4, 10*time.Second)
	if !subjects(recs)["new while idle"] {
		t.Errorf("new mail not captured: %v", subjects(recs))
	}
	h.waitCheckpoint(t, "INBOX", 4)
	// A Captured event was published for each.
	seen := 0
	for seen < 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		e, err := h.sub.Next(ctx)
		cancel()
		if err != nil {
			t.Fatalf("captured events: %d, then %v", seen, err)
		}
		if c, ok := e.(watcher.Captured); ok {
			seen++
			if c.Summary.Path == "" || c.Summary.UID == 0 {
				t.Errorf("bad summary %+v", c.Summary)
			}
		}
	}
}

func TestWatcher_backfillNoneSkipsOldMail(t *testing.T) {
	srv := testimap.StartMem(t)
	srv.Deliver(t, "INBOX", msg("old", 1))
	out := t.TempDir()
	cfg := testConfig(srv, out)
	cfg.Accounts[0].Backfill = "none"
	h := start(t, cfg, nil)
	h.waitState(5*time.Second, watcher.StateIdle)
	srv.Deliver(t, "INBOX", msg("fresh", 2))
	recs := waitRecords(t, out, 1, 10*time.Second)
	if s := subjects(recs); !s["fresh"] || s["old"] {
		t.Errorf("subjects %v", s)
	}
}

func TestWatcher_catchUpAfterRestart(t *testing.T) {
	srv := testimap.StartMem(t)
	srv.Deliver(t, "INBOX", msg("one", 1))
	out := t.TempDir()
	cfg := testConfig(srv, out)
	h := start(t, cfg, nil)
	waitRecords(t, out, 1, 10*time.Second)
	h.stop()

	// Mail arrives while mailtap is down.
	srv.Deliver(t, "INBOX", msg("two", 2))
	srv.Deliver(t, "INBOX", msg("three", 3))
	start(t, cfg, nil)
	recs := waitRecords(t, out, 3, 10*time.Second)
	if len(recs) != 3 {
		t.Errorf("got %d records", len(recs))
	}
}

func TestWatcher_pauseResume(t *testing.T) {
	srv := testimap.StartMem(t)
	out := t.TempDir()
	h := start(t, testConfig(srv, out), nil)
	h.waitState(5*time.Second, watcher.StateIdle)
	if err := h.m.Pause(""); err != nil {
		t.Fatal(err)
	}
	h.waitState(5*time.Second, watcher.StatePaused)
	srv.Deliver(t, "INBOX", msg("while paused", 1))
	// Paused means nothing is captured; give a live session time to have
	// captured it if pause were broken.
	time.Sleep(300 * time.Millisecond)
	if n := len(records(t, out)); n != 0 {
		t.Fatalf("captured %d while paused", n)
	}
	if err := h.m.Resume("acct/INBOX"); err != nil {
		t.Fatal(err)
	}
	waitRecords(t, out, 1, 10*time.Second)
	if err := h.m.Pause("nope/INBOX"); err == nil {
		t.Error("unknown mailbox accepted")
	}
}

func TestWatcher_reconnectRequest(t *testing.T) {
	srv := testimap.StartMem(t)
	out := t.TempDir()
	h := start(t, testConfig(srv, out), nil)
	h.waitState(5*time.Second, watcher.StateIdle)
	h.m.Reconnect("")
	// The session goes through reconnecting (seen as an event) and is back.
	deadline := time.After(10 * time.Second)
	sawReconnecting := false
	for !sawReconnecting {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		e, err := h.sub.Next(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if sc, ok := e.(watcher.StateChanged); ok && sc.State == watcher.StateReconnecting {
			sawReconnecting = true
		}
		select {
		case <-deadline:
			t.Fatal("no reconnecting state")
		default:
		}
	}
	h.waitState(5*time.Second, watcher.StateIdle)
	srv.Deliver(t, "INBOX", msg("after reconnect", 1))
	waitRecords(t, out, 1, 10*time.Second)
}

func TestWatcher_serverDropsConnection(t *testing.T) {
	srv := testimap.StartMem(t)
	out := t.TempDir()
	h := start(t, testConfig(srv, out), nil)
	h.waitState(5*time.Second, watcher.StateIdle)
	srv.Stop(t)
	h.waitState(5*time.Second, watcher.StateReconnecting)
	srv.Deliver(t, "INBOX", msg("while down", 1))
	srv.Start(t)
	waitRecords(t, out, 1, 15*time.Second)
	h.waitState(10*time.Second, watcher.StateIdle)
}

func TestWatcher_frozenServerDetected(t *testing.T) {
	srv := testimap.StartMem(t)
	out := t.TempDir()
	cfg := testConfig(srv, out)
	cfg.Watch.IdleRefresh = config.Duration{Duration: 300 * time.Millisecond}
	cfg.Watch.ResponseTimeout = config.Duration{Duration: 300 * time.Millisecond}
	h := start(t, cfg, nil)
	h.waitState(5*time.Second, watcher.StateIdle)
	srv.Freeze(t)
	began := time.Now()
	h.waitState(5*time.Second, watcher.StateReconnecting)
	t.Logf("frozen peer detected after %s", time.Since(began).Round(time.Millisecond))
	srv.Deliver(t, "INBOX", msg("after thaw", 1))
	srv.Thaw(t)
	waitRecords(t, out, 1, 15*time.Second)
}

func TestWatcher_lastUIDTrap(t *testing.T) {
	// With only old mail captured, "UID SEARCH UID last+1:*" returns the last
	// message again; it must not be written twice or trip the checkpoint.
	srv := testimap.StartMem(t)
	srv.Deliver(t, "INBOX", msg("only", 1))
	out := t.TempDir()
	cfg := testConfig(srv, out)
	cfg.Watch.IDLE = false
	cfg.Watch.PollInterval = config.Duration{Duration: 50 * time.Millisecond}
	h := start(t, cfg, nil)
	waitRecords(t, out, 1, 10*time.Second)
	h.waitState(5*time.Second, watcher.StatePolling)
	path := filepath.Join(out, "acct", "INBOX")
	ents, _ := os.ReadDir(path)
	first, _ := os.Stat(filepath.Join(path, ents[0].Name()))
	// Several poll rounds.
	time.Sleep(400 * time.Millisecond)
	again, _ := os.Stat(filepath.Join(path, ents[0].Name()))
	if !again.ModTime().Equal(first.ModTime()) {
		t.Errorf("record rewritten by a poll round")
	}
	if st := h.m.Status()[0]; st.Captured != 1 {
		t.Errorf("captured %d, want 1", st.Captured)
	}
}

func TestWatcher_pollWithoutIdleCapability(t *testing.T) {
	srv := testimap.StartMem(t, testimap.WithoutIdle())
	out := t.TempDir()
	cfg := testConfig(srv, out)
	cfg.Watch.PollInterval = config.Duration{Duration: 100 * time.Millisecond}
	h := start(t, cfg, nil)
	h.waitState(5*time.Second, watcher.StatePolling)
	srv.Deliver(t, "INBOX", msg("polled", 1))
	waitRecords(t, out, 1, 10*time.Second)
}

func TestWatcher_authFailure(t *testing.T) {
	srv := testimap.StartMem(t)
	out := t.TempDir()
	cfg := testConfig(srv, out)
	cfg.Accounts[0].Password = "wrong-secret-123"
	h := start(t, cfg, nil)
	st := h.waitState(5*time.Second, watcher.StateAuthFailed)
	if time.Until(st.NextRetry) < 20*time.Second {
		t.Errorf("auth retry in %s: too soon, would hammer the account", time.Until(st.NextRetry))
	}
	if strings.Contains(h.logs.String(), "wrong-secret-123") || strings.Contains(st.Err, "wrong-secret-123") {
		t.Errorf("password leaked")
	}
}

func TestWatcher_onceMode(t *testing.T) {
	srv := testimap.StartMem(t)
	for i := range 5 {
		srv.Deliver(t, "INBOX", msg(fmt.Sprintf("m%d", i), i))
	}
	out := t.TempDir()
	cfg := testConfig(srv, out)
	store, err := jsonstore.Open(out, jsonstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m := watcher.New(cfg, store, &watcher.Options{Once: true, BatchSize: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(records(t, out)); n != 5 {
		t.Errorf("once captured %d of 5", n)
	}
	if st, _ := store.State("acct", "INBOX"); st.LastUID != 5 {
		t.Errorf("checkpoint %d", st.LastUID)
	}
}

func TestWatcher_authFailureSASL(t *testing.T) {
	for _, mech := range []string{"login", "xoauth2", "oauthbearer"} {
		t.Run(mech, func(t *testing.T) {
			srv := testimap.StartMem(t)
			out := t.TempDir()
			cfg := testConfig(srv, out)
			cfg.Accounts[0].Auth = mech
			cfg.Accounts[0].Password = "bad-token"
			h := start(t, cfg, nil)
			h.waitState(5*time.Second, watcher.StateAuthFailed)
			h.stop()

			cfg.Accounts[0].Password = srv.Password()
			start(t, cfg, nil)
			srv.Deliver(t, "INBOX", msg("authenticated with "+mech, 1))
			waitRecords(t, out, 1, 10*time.Second)
		})
	}
}
