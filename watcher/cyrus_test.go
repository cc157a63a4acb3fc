package watcher_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"mailtap/internal/testimap"
	"mailtap/watcher"
)

// The defects of issue 11 against Cyrus IMAP 3.6 (Debian), the second real
// server of the suite: both hierarchy separators ("." with folders below
// INBOX, Debian's default; "/" with altnamespace), with idled (IDLE pushes
// at once) and without it (imapd looks again only every 60 s).
func TestCyrus_serverHabits(t *testing.T) {
	for _, tc := range []struct {
		unix  bool
		idled bool
	}{{false, false}, {false, true}, {true, false}, {true, true}} {
		sep := "."
		if tc.unix {
			sep = "/"
		}
		t.Run(fmt.Sprintf("sep=%s,idled=%v", sep, tc.idled), func(t *testing.T) {
			list, drafts := "INBOX.Lists.golang", "INBOX.Entwürfe"
			listDir := []string{"INBOX", "Lists", "golang"}
			draftsDir := []string{"INBOX", "Entwürfe"}
			wrong := "INBOX/Lists/golang"
			if tc.unix {
				list, drafts = "Lists/golang", "Entwürfe"
				listDir, draftsDir = []string{"Lists", "golang"}, []string{"Entwürfe"}
				wrong = "Lists.golang"
			}
			cy := testimap.StartCyrus(t, testimap.CyrusOptions{UnixHierarchySep: tc.unix, Idled: tc.idled,
				Mailboxes: []string{strings.TrimSuffix(list, sep+"golang"), list, drafts}})
			for i := range 2 {
				cy.Deliver(t, list, msg(fmt.Sprintf("list %d", i), i))
			}
			appendUTF8(t, cy, drafts, msg("draft", 9))

			// 4: names as the user sees them (UTF-8, the server's
			// separator); a wrong one is refused with the right one
			// suggested, by check and by the watcher.
			out := t.TempDir()
			cfg := testConfig(cy, out)
			cfg.Accounts[0].Mailboxes = []string{list, drafts, wrong}
			res := watcher.Check(context.Background(), cfg)
			if res[0].Err != nil || res[0].Found != 2 || res[0].Delimiter != rune(sep[0]) || res[0].Warning != "" {
				t.Errorf("check %s: %+v", list, res[0])
			}
			if res[1].Err != nil || res[1].Found != 1 {
				t.Errorf("check %s: %+v", drafts, res[1])
			}
			if err := res[2].Err; err == nil || !strings.Contains(err.Error(), fmt.Sprintf("did you mean %q", list)) {
				t.Errorf("check %s: %v", wrong, err)
			}

			// 2, 3: the catch-up captures everything, into folders nested
			// by the server's separator.
			cfg.Accounts[0].Mailboxes = []string{list, drafts}
			cfg.Watch.IdleRefresh.Duration = 3 * time.Second
			if tc.idled {
				// With pushes at once, only the emptied mailbox can make
				// the replacement below noticed in time.
				cfg.Watch.IdleRefresh.Duration = 10 * time.Minute
			}
			h := start(t, cfg, nil)
			waitRecords(t, out, 3, 20*time.Second)
			for dir, n := range map[string]int{filepath.Join(append([]string{out, "acct"}, listDir...)...): 2,
				filepath.Join(append([]string{out, "acct"}, draftsDir...)...): 1} {
				if ents, err := os.ReadDir(dir); err != nil || len(ents) != n {
					t.Errorf("%s: %d entries (%v), want %d", dir, len(ents), err, n)
				}
			}
			h.waitState(10*time.Second, watcher.StateIdle)

			// 1: the mailbox is deleted and recreated while mailtap
			// watches it; Cyrus says only "* N EXPUNGE" (with idled at
			// once, else at its next look) and never the new UIDVALIDITY.
			uv := cy.RecreateMailbox(t, list)
			cy.Deliver(t, list, msg("in the recreated mailbox", 1))
			recs := waitRecords(t, out, 4, 30*time.Second)
			found := false
			for _, r := range recs {
				if r.Subject == "in the recreated mailbox" {
					found = true
					if r.UIDValidity != uv {
						t.Errorf("new mail under uidvalidity %d, want %d", r.UIDValidity, uv)
					}
				}
			}
			if !found {
				t.Errorf("mail of the recreated mailbox not captured: %v", subjects(recs))
			}
			cy.Deliver(t, list, msg("later", 2))
			waitRecords(t, out, 5, 30*time.Second)
		})
	}
}

// appendUTF8 appends through go-imap, which encodes a UTF-8 mailbox name as
// modified UTF-7 (the Cyrus helper's Deliver sends names as they are).
func appendUTF8(t *testing.T, srv server, mailbox string, raw []byte) {
	t.Helper()
	c, err := imapclient.DialInsecure(fmt.Sprintf("%s:%d", srv.Host(), srv.Port()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(srv.Username(), srv.Password()).Wait(); err != nil {
		t.Fatal(err)
	}
	cmd := c.Append(mailbox, int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("append to %q: %v", mailbox, err)
	}
	c.Logout().Wait()
}

// TestCyrus_latencyIdleVersusPoll measures (never asserts) the time from
// APPEND to the durable record with IDLE and with polling every 2 s, on
// Cyrus with and without idled, for the README's advice on "idle": false.
// It takes about two minutes, so it runs only with MAILTAP_MEASURE=1.
func TestCyrus_latencyIdleVersusPoll(t *testing.T) {
	if os.Getenv("MAILTAP_MEASURE") != "1" {
		t.Skip("a measurement; set MAILTAP_MEASURE=1 to run it")
	}
	for _, idled := range []bool{false, true} {
		cy := testimap.StartCyrus(t, testimap.CyrusOptions{Idled: idled})
		for _, idle := range []bool{true, false} {
			out := t.TempDir()
			cfg := testConfig(cy, out)
			cfg.Watch.IDLE = idle
			cfg.Watch.PollInterval.Duration = 2 * time.Second
			cfg.Watch.IdleRefresh.Duration = 5 * time.Minute
			h := start(t, cfg, nil)
			h.waitState(10*time.Second, watcher.StateIdle, watcher.StatePolling)
			n := len(records(t, out))
			var worst, sum time.Duration
			const rounds = 3
			for i := range rounds {
				sent := time.Now()
				cy.Deliver(t, "INBOX", msg(fmt.Sprintf("latency %d", i), i))
				n++
				waitRecords(t, out, n, 90*time.Second)
				d := time.Since(sent)
				sum += d
				worst = max(worst, d)
			}
			t.Logf("cyrus idled=%v, idle=%v (poll_interval 2s): mean %v, worst %v over %d messages",
				idled, idle, (sum / rounds).Round(10*time.Millisecond), worst.Round(10*time.Millisecond), rounds)
			h.stop()
		}
	}
}
