package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailtap/internal/testimap"
)

// The user's report of issue 11, with the real binary: through a server
// that answers UID SEARCH UID n:* with nothing (GNU Mailutils imap4d),
// `--once` wrote 0 of 3 messages and exited 0, and `check` said ok. Now
// `--once` captures all three and `check` reports what the catch-up
// query finds; a mailbox name with the wrong delimiter is refused with
// the right one suggested.
func TestHabits_imap4dOnceAndCheck(t *testing.T) {
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{Mailboxes: []string{"Lists/golang"}})
	for i := range 3 {
		dc.Deliver(t, "INBOX", testimap.Msg(fmt.Sprintf("imap4d %d", i), i))
	}
	p := testimap.StartHabitProxy(t, dc.Addr(), testimap.Habits{
		Answer: func(line string) []string {
			if testimap.UIDSearchOpenEnded(line) {
				return []string{"* SEARCH", "$TAG OK SEARCH completed"}
			}
			return nil
		},
	})
	out := filepath.Join(t.TempDir(), "out")
	cfg := baseConfig(dc, out)
	cfg.Accounts[0].Host, cfg.Accounts[0].Port = p.Host(), p.Port()
	path := cfg.Write(t)

	check := startMailtap(t, runOpts{args: []string{"check", "-c", path}})
	if code := check.exitCode(20 * time.Second); code != 0 {
		t.Fatalf("check exited %d:\n%s", code, check.output())
	}
	if !strings.Contains(check.output(), "catch-up: 3 message(s) above UID 0 to capture; newest UID 3, UIDNEXT 4") {
		t.Errorf("check does not report the catch-up:\n%s", check.output())
	}

	once := startMailtap(t, runOpts{args: []string{"--once", "--log-format", "json", "-c", path}})
	if code := once.exitCode(30 * time.Second); code != 0 {
		t.Fatalf("--once exited %d", code)
	}
	if n := countRecords(out); n != 3 {
		t.Errorf("--once wrote %d of 3 messages", n)
	}

	cfg.Accounts[0].Mailboxes = []string{"Lists.golang"}
	check = startMailtap(t, runOpts{args: []string{"check", "-c", cfg.Write(t)}})
	if code := check.exitCode(20 * time.Second); code != 1 {
		t.Errorf("check of a missing mailbox exited %d, want 1", code)
	}
	if !strings.Contains(check.output(), `did you mean "Lists/golang"?`) {
		t.Errorf("check does not suggest the existing name:\n%s", check.output())
	}
}

// demoUIDValidities maps each uidvalidity of the demo's INBOX records to
// how many records carry it.
func demoUIDValidities(out string) map[string]int {
	names, _ := filepath.Glob(filepath.Join(out, "demo", "INBOX", "*.json"))
	m := map[string]int{}
	for _, n := range names {
		if uv, _, ok := strings.Cut(filepath.Base(n), "-"); ok {
			m[uv]++
		}
	}
	return m
}

// A second `mailtap --demo` on the same output dir captures again: the
// embedded server used to restart at UIDVALIDITY 1 with UIDNEXT below the
// first run's checkpoint, and the second run captured nothing for minutes.
func TestHabits_secondDemoRunCaptures(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"--demo", "--headless", "--log-format", "json", "--out", out}
	waitUVs := func(p *proc, n int) map[string]int {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			uvs := demoUIDValidities(out)
			if len(uvs) >= n {
				return uvs
			}
			if time.Now().After(deadline) {
				t.Fatalf("demo records under %d uidvalidities, want %d: %v", len(uvs), n, uvs)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	first := startMailtap(t, runOpts{args: args})
	waitUVs(first, 1)
	first.stop()
	second := startMailtap(t, runOpts{args: args})
	uvs := waitUVs(second, 2)
	second.stop()
	t.Logf("records per uidvalidity: %v", uvs)
}
