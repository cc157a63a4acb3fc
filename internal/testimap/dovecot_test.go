package testimap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recordTB records Skipf/Fatalf instead of ending the test.
type recordTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordTB) Skipf(format string, args ...any)  { r.skipped = format }
func (r *recordTB) Fatalf(format string, args ...any) { r.failed = format }

func TestUnavailable_skipsUnlessRequired(t *testing.T) {
	for _, tt := range []struct {
		env      string
		wantSkip bool
	}{{"", true}, {"0", true}, {"1", false}, {"yes", false}} {
		t.Setenv(RequireDovecotEnv, tt.env)
		r := &recordTB{TB: t}
		unavailable(r, "dovecot not installed")
		if skipped := r.skipped != ""; skipped != tt.wantSkip || (r.failed != "") == tt.wantSkip {
			t.Errorf("%s=%q: skipped %q, failed %q", RequireDovecotEnv, tt.env, r.skipped, r.failed)
		}
	}
}

// dovecot without its IMAP service (Debian's dovecot-core without
// dovecot-imapd) is "unavailable", with the reason, not a start that
// fails every test later.
func TestFindDovecot_needsTheIMAPService(t *testing.T) {
	bin, lib := t.TempDir(), t.TempDir()
	exe := func(dir, name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe(bin, "dovecot")
	exe(bin, "doveadm")
	find := func(name string) string {
		if p := filepath.Join(bin, name); isExecutable(p) {
			return p
		}
		return ""
	}
	_, _, err := findDovecot(find, []string{lib})
	if err == nil || !strings.Contains(err.Error(), "IMAP service is not") || !strings.Contains(err.Error(), lib) {
		t.Fatalf("without imap: err = %v", err)
	}
	exe(lib, "imap")
	exe(lib, "imap-login")
	if d, a, err := findDovecot(find, []string{lib}); err != nil || d != filepath.Join(bin, "dovecot") || a != filepath.Join(bin, "doveadm") {
		t.Fatalf("with imap: %q %q %v", d, a, err)
	}
	if _, _, err := findDovecot(func(string) string { return "" }, []string{lib}); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Fatalf("without dovecot: err = %v", err)
	}
}

func TestTraversableTempBase(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // 0700: nobody cannot enter
	if got := traversableTempBase(); got != "/tmp" {
		t.Fatalf("traversableTempBase with a private TMPDIR = %q, want /tmp", got)
	}
	t.Setenv("TMPDIR", "/tmp")
	if got := traversableTempBase(); got != "/tmp" {
		t.Fatalf("traversableTempBase = %q", got)
	}
}

func TestDovecot_extraUsers(t *testing.T) {
	d := StartDovecot(t, DovecotOptions{ExtraUsers: []string{"u1", "u2"}, Mailboxes: []string{"Box"}})
	if got := d.Users(); len(got) != 3 || got[2] != "u2" {
		t.Fatalf("Users() = %v", got)
	}
	uids, err := d.DeliverManyAs("u2", "Box", [][]byte{Msg("to u2", 1)})
	if err != nil || len(uids) != 1 {
		t.Fatalf("DeliverManyAs = %v, %v", uids, err)
	}
	if _, err := d.DeliverManyAs("nobody-here", "Box", [][]byte{Msg("x", 1)}); err == nil {
		t.Fatal("delivery as an unknown user succeeded")
	}
	// A Maildir drop works with the server down.
	d.Stop(t)
	if err := d.DropAs("u1", "Box", Msg("while down", 2)); err != nil {
		t.Fatalf("DropAs while stopped: %v", err)
	}
	d.Start(t)
	if _, err := d.DeliverManyAs("u1", "Box", [][]byte{Msg("after", 3)}); err != nil {
		t.Fatal(err)
	}
	out, err := d.doveadm(nil, "-f", "tab", "mailbox", "status", "-u", "u1", "messages", "Box")
	if err != nil || !strings.Contains(out, "2") {
		t.Fatalf("u1/Box status %q, %v; want 2 messages", out, err)
	}
	if d.Status(t, "Box").Messages != 0 {
		t.Fatal("the default user's Box got mail meant for others")
	}
}
