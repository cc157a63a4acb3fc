package watcher_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"mailtap/internal/testimap"
	"mailtap/watcher"
)

// The same flows against a real Dovecot (skipped when it is not installed,
// unless MAILTAP_REQUIRE_DOVECOT is set, as in CI).

func TestDovecot_backfillIdleAndRestart(t *testing.T) {
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})
	for i := range 3 {
		dc.Deliver(t, "INBOX", msg(fmt.Sprintf("old %d", i), i))
	}
	out := t.TempDir()
	cfg := testConfig(dc, out)
	h := start(t, cfg, nil)
	waitRecords(t, out, 3, 15*time.Second)
	h.waitState(10*time.Second, watcher.StateIdle)

	// IDLE against a real server: Dovecot notifies after its own delay.
	dc.Deliver(t, "INBOX", msg("pushed", 3))
	waitRecords(t, out, 4, 15*time.Second)

	// Pause, deliver, resume.
	h.m.Pause("")
	h.waitState(5*time.Second, watcher.StatePaused)
	dc.Deliver(t, "INBOX", msg("while paused", 4))
	h.m.Resume("")
	waitRecords(t, out, 5, 15*time.Second)

	// Sessions kicked by the server: reconnect, nothing lost.
	h.waitState(10*time.Second, watcher.StateIdle)
	dc.Kick(t)
	dc.Deliver(t, "INBOX", msg("after kick", 5))
	waitRecords(t, out, 6, 15*time.Second)

	// Stopped while mailtap is down, mail delivered meanwhile.
	h.stop()
	dc.Deliver(t, "INBOX", msg("while down", 6))
	start(t, cfg, nil)
	recs := waitRecords(t, out, 7, 15*time.Second)
	if !subjects(recs)["while down"] {
		t.Errorf("missing mail delivered while down: %v", subjects(recs))
	}
}

func TestDovecot_serverRestart(t *testing.T) {
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})
	out := t.TempDir()
	h := start(t, testConfig(dc, out), nil)
	h.waitState(10*time.Second, watcher.StateIdle)
	dc.Stop(t)
	h.waitState(10*time.Second, watcher.StateReconnecting)
	dc.Start(t)
	// doveadm needs the running server; e2e covers mail written to the
	// maildir while Dovecot is down.
	dc.Deliver(t, "INBOX", msg("delivered after server restart", 1))
	waitRecords(t, out, 1, 20*time.Second)
}

func TestDovecot_starttlsAndImplicitTLS(t *testing.T) {
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{TLS: true})
	dc.Deliver(t, "INBOX", msg("over tls", 1))
	for _, mode := range []string{"starttls", "implicit"} {
		t.Run(mode, func(t *testing.T) {
			out := t.TempDir()
			cfg := testConfig(dc, out)
			cfg.Accounts[0].TLS = mode
			cfg.Accounts[0].Host = "localhost"
			if mode == "implicit" {
				cfg.Accounts[0].Port = dc.TLSPort()
			}
			// Self-signed: refused by default, with a hint.
			h := start(t, cfg, nil)
			st := h.waitState(10*time.Second, watcher.StateReconnecting)
			if !strings.Contains(st.Err, "ca_file") {
				t.Errorf("untrusted certificate error does not say how to fix it: %s", st.Err)
			}
			h.stop()

			cfg.Accounts[0].CAFile = dc.CAFile()
			start(t, cfg, nil)
			waitRecords(t, out, 1, 15*time.Second)
		})
	}
}

func TestDovecot_uidvalidityChange(t *testing.T) {
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{Mailboxes: []string{"Lists"}})
	dc.Deliver(t, "Lists", msg("before", 1))
	out := t.TempDir()
	cfg := testConfig(dc, out)
	cfg.Accounts[0].Mailboxes = []string{"Lists"}
	h := start(t, cfg, nil)
	waitRecords(t, out, 1, 15*time.Second)
	old, _ := h.store.State("acct", "Lists")
	h.stop()

	dc.RecreateMailbox(t, "Lists")
	dc.Deliver(t, "Lists", msg("after", 1))
	h = start(t, cfg, nil)
	recs := waitRecords(t, out, 2, 15*time.Second)
	h.waitState(10*time.Second, watcher.StateIdle)
	st, _ := h.store.State("acct", "Lists")
	if st.UIDValidity == old.UIDValidity {
		t.Fatalf("uidvalidity did not change: %d", st.UIDValidity)
	}
	if !strings.Contains(h.logs.String(), "UIDVALIDITY changed") {
		t.Errorf("no warning logged")
	}
	if s := subjects(recs); !s["before"] || !s["after"] {
		t.Errorf("subjects %v", s)
	}
	for _, r := range recs {
		if r.Subject == "after" && r.UIDValidity != st.UIDValidity {
			t.Errorf("new mail recorded under old uidvalidity %d", r.UIDValidity)
		}
	}
}
