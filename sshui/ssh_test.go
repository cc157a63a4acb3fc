package sshui

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailtap/internal/testimap"
)

// The monitor over a real OpenSSH client in a real terminal (tmux): live
// mail appears, p pauses and resumes, r reconnects, a resize redraws to
// the new size, q ends the session (exit 0) and capture goes on.
func TestSSH_monitorUnderTmux(t *testing.T) {
	r := startRig(t, rigOptions{})
	tm := newTmux(t)
	status := filepath.Join(r.dir, "client-status")
	tm.start("mon", 100, 30, status, append([]string{"ssh", "-t"}, r.sshArgs(r.fullKey, nil)...)...)

	tm.waitPane("mon", "the monitor", func(s string) bool { return strings.Contains(s, "test/INBOX") && strings.Contains(s, "idle") })
	r.imap.Deliver(t, "INBOX", testimap.Msg("live over ssh 1", 1))
	screen := tm.waitPane("mon", "the new mail", func(s string) bool { return strings.Contains(s, "live over ssh 1") })
	checkScreen(t, screen, 100, 30)
	t.Logf("screen over ssh:\n%s", screen)

	tm.keys("mon", "p")
	tm.waitPane("mon", "a paused mailbox", func(s string) bool { return headerHas(s, "test/INBOX", "paused") })
	r.waitFor("the watcher paused", func() bool { return r.mgr.Status()[0].Paused })
	tm.keys("mon", "p")
	r.waitFor("the watcher resumed", func() bool { return !r.mgr.Status()[0].Paused })
	tm.waitPane("mon", "the mailbox back", func(s string) bool { return headerHas(s, "test/INBOX", "idle") })
	tm.keys("mon", "r")
	r.waitFor("a reconnect", func() bool { return contains(r.ctrl.Calls(), "reconnect test/INBOX") })
	tm.waitPane("mon", "the reconnect notice", func(s string) bool {
		return strings.Contains(s, "reconnect requested") || strings.Contains(s, "reconnected")
	})
	if got := r.ctrl.Calls(); len(got) != 3 || got[0] != "pause test/INBOX" || got[1] != "resume test/INBOX" {
		t.Errorf("controller calls = %q", got)
	}

	tm.must("resize-window", "-t", "mon", "-x", "80", "-y", "24")
	screen = tm.waitPane("mon", "a redraw at 80×24", func(s string) bool {
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		return len(lines) <= 24 && strings.Contains(s, "live over ssh 1") && strings.Contains(lines[len(lines)-1], "quit")
	})
	checkScreen(t, screen, 80, 24)
	t.Logf("screen after the resize:\n%s", screen)

	tm.keys("mon", "q")
	if st := waitExit(t, status); st != "0" {
		t.Errorf("ssh exited %s after q; screen:\n%s", st, tm.capture("mon"))
	}
	r.waitFor("the session's end logged", func() bool { return strings.Contains(r.logs.String(), "ssh: session closed") })
	before := r.captured()
	r.imap.Deliver(t, "INBOX", testimap.Msg("after the session", 2))
	r.waitFor("capture after the session", func() bool { return r.captured() > before })
}

// A read-only key sees the monitor, is told its controls are disabled,
// and the controller is never called.
func TestSSH_readOnlyKeyCannotPause(t *testing.T) {
	r := startRig(t, rigOptions{})
	tm := newTmux(t)
	status := filepath.Join(r.dir, "client-status")
	tm.start("ro", 100, 30, status, append([]string{"ssh", "-t"}, r.sshArgs(r.roKey, nil)...)...)
	screen := tm.waitPane("ro", "the read-only monitor", func(s string) bool { return strings.Contains(s, "test/INBOX") && strings.Contains(s, "read-only") })
	if strings.Contains(screen, "pause/resume") {
		t.Errorf("a read-only footer offers pause:\n%s", screen)
	}
	r.imap.Deliver(t, "INBOX", testimap.Msg("seen read-only", 1))
	tm.waitPane("ro", "the new mail", func(s string) bool { return strings.Contains(s, "seen read-only") })
	for _, k := range []string{"p", "P", "r", "R"} {
		tm.keys("ro", k)
	}
	screen = tm.waitPane("ro", "the read-only notice", func(s string) bool { return strings.Contains(s, "read-only session") })
	t.Logf("read-only screen:\n%s", screen)
	tm.keys("ro", "q")
	if st := waitExit(t, status); st != "0" {
		t.Errorf("ssh exited %s", st)
	}
	if calls := r.ctrl.Calls(); len(calls) != 0 {
		t.Errorf("a read-only session reached the controller: %q", calls)
	}
	if r.mgr.Status()[0].Paused {
		t.Error("the mailbox is paused")
	}
}

// Wrong keys and passwords are refused, counted, logged with the address
// and fingerprint, and slowed per address.
func TestSSH_refusedAndSlowed(t *testing.T) {
	const delay = 400 * time.Millisecond
	r := startRig(t, rigOptions{failureDelay: delay})

	_, stderr, code := r.ssh(r.wrongKey, nil, "status")
	if code != 255 || !strings.Contains(stderr, "Permission denied (publickey)") {
		t.Fatalf("wrong key: exit %d, stderr %q", code, stderr)
	}
	fp := keyFingerprint(t, r.wrongKey)
	r.waitFor("the failure counted", func() bool { return r.authFailures() == 1 })
	log := r.logs.String()
	if !strings.Contains(log, "ssh: authentication failed") || !strings.Contains(log, "remote=127.0.0.1:") || !strings.Contains(log, fp) {
		t.Errorf("failure log lacks the address or fingerprint %s:\n%s", fp, log)
	}

	// OpenSSH asked for a password: the server offers none.
	_, stderr, code = r.ssh("", []string{"-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive"}, "status")
	if code != 255 || !strings.Contains(stderr, "Permission denied (publickey)") {
		t.Fatalf("password: exit %d, stderr %q", code, stderr)
	}
	r.waitFor("the password client counted", func() bool { return r.authFailures() == 2 })

	// The next wrong key is answered only after the delay, which has
	// doubled by now (two failures from this address).
	start := time.Now()
	_, _, code = r.ssh(r.wrongKey, nil, "status")
	took := time.Since(start)
	if code != 255 {
		t.Fatalf("wrong key again: exit %d", code)
	}
	if took < 2*delay {
		t.Errorf("the third failure was answered after %s; want at least %s", took, 2*delay)
	}
	r.waitFor("the third failure counted", func() bool { return r.authFailures() == 3 })
	if !strings.Contains(r.logs.String(), "methods=none keys=\"none offered\"") {
		t.Errorf("the password-only client is not logged:\n%s", r.logs.String())
	}

	// The right key still gets in, and resets the address.
	out, stderr, code := r.ssh(r.fullKey, nil, "status")
	if code != 0 || !json.Valid([]byte(out)) {
		t.Fatalf("status after failures: exit %d, %q, %q", code, out, stderr)
	}
	if n := r.srv.limit.failures("127.0.0.1"); n != 0 {
		t.Errorf("failures after a login = %d, want 0", n)
	}
}

// `ssh host status` prints /api/status and exits 0; anything else is a
// one-line error and exit 2, and so is a session with neither a terminal
// nor a command.
func TestSSH_commands(t *testing.T) {
	r := startRig(t, rigOptions{})
	r.imap.Deliver(t, "INBOX", testimap.Msg("for the status", 1))
	r.waitFor("the capture", func() bool { return r.captured() == 1 })

	out, stderr, code := r.ssh(r.roKey, nil, "status")
	if code != 0 {
		t.Fatalf("status: exit %d, stderr %q", code, stderr)
	}
	var st struct {
		Version   string `json:"version"`
		Mailboxes []struct {
			ID, State string
			Captured  int64
		} `json:"mailboxes"`
		Recent []struct{ Subject string } `json:"recent"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status is not JSON: %v\n%s", err, out)
	}
	if st.Version != "v0-test" || len(st.Mailboxes) != 1 || st.Mailboxes[0].ID != "test/INBOX" || st.Mailboxes[0].Captured != 1 ||
		len(st.Recent) != 1 || st.Recent[0].Subject != "for the status" {
		t.Errorf("status = %s", out)
	}

	_, stderr, code = r.ssh(r.fullKey, nil, "rm", "-rf", "/")
	if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, `unknown command "rm -rf /"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = r.ssh(r.fullKey, []string{"-T"})
	if code != 2 || !strings.Contains(stderr, "no terminal") {
		t.Errorf("no terminal: exit %d, stderr %q", code, stderr)
	}
}

// The host key fingerprint logged at start is what `ssh-keygen -lf`
// prints for the key the client checked (known_hosts, strictly), so an
// operator can compare the two on first connect.
func TestSSH_hostKeyFingerprintLogged(t *testing.T) {
	r := startRig(t, rigOptions{})
	if _, stderr, code := r.ssh(r.roKey, nil, "status"); code != 0 {
		t.Fatalf("status: exit %d, stderr %q", code, stderr)
	}
	pub := filepath.Join(r.dir, "host_key.pub")
	writeFile(t, pub, hostPublicKey(t, filepath.Join(r.srv.opts.StateDir, HostKeyName)))
	o, err := exec.Command("ssh-keygen", "-lf", pub).Output()
	if err != nil {
		t.Fatalf("ssh-keygen -lf: %v", err)
	}
	fields := strings.Fields(string(o)) // "256 SHA256:… comment (ED25519)"
	if len(fields) < 2 || !strings.HasPrefix(fields[1], "SHA256:") {
		t.Fatalf("ssh-keygen -lf printed %q", o)
	}
	m := regexp.MustCompile(`msg="ssh server listening".* host_key=(\S+)`).FindStringSubmatch(r.logs.String())
	if m == nil || m[1] != fields[1] {
		t.Errorf("logged host key %q; ssh-keygen -lf says %s", m, strings.TrimSpace(string(o)))
	}
	if r.srv.HostKeyFingerprint() != fields[1] {
		t.Errorf("HostKeyFingerprint() = %q; ssh-keygen -lf says %s", r.srv.HostKeyFingerprint(), fields[1])
	}
}

// authorized_keys is reread when it changes: a removed key is refused at
// its next login, a key with options is skipped, a restored one works.
func TestSSH_keysReloaded(t *testing.T) {
	r := startRig(t, rigOptions{})
	authorized := filepath.Join(r.dir, "authorized_keys")
	orig, err := os.ReadFile(authorized)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, code := r.ssh(r.fullKey, nil, "status"); code != 0 {
		t.Fatalf("status: exit %d", code)
	}
	// Replaced by rename, as editors and config management do.
	replace := func(s string) {
		tmp := authorized + ".new"
		writeFile(t, tmp, s)
		if err := os.Rename(tmp, authorized); err != nil {
			t.Fatal(err)
		}
	}
	replace(strings.ReplaceAll(string(orig), "ssh-ed25519 ", `from="10.0.0.0/8" ssh-ed25519 `))
	if _, stderr, code := r.ssh(r.fullKey, nil, "status"); code != 255 {
		t.Fatalf("a key with options got in: exit %d, %q", code, stderr)
	}
	if !strings.Contains(r.logs.String(), "key options are not supported") {
		t.Errorf("the skipped line is not logged")
	}
	replace(string(orig))
	if _, stderr, code := r.ssh(r.fullKey, nil, "status"); code != 0 {
		t.Fatalf("restored key: exit %d, %q", code, stderr)
	}
}

// At most MaxSessions at once; the next is told why.
func TestSSH_sessionCap(t *testing.T) {
	r := startRig(t, rigOptions{maxSessions: 1})
	tm := newTmux(t)
	status := filepath.Join(r.dir, "client-status")
	tm.start("one", 100, 30, status, append([]string{"ssh", "-t"}, r.sshArgs(r.fullKey, nil)...)...)
	tm.waitPane("one", "the monitor", func(s string) bool { return strings.Contains(s, "test/INBOX") })
	_, stderr, code := r.ssh(r.fullKey, nil, "status")
	if code != 1 || !strings.Contains(stderr, "too many SSH sessions (1 open)") {
		t.Errorf("over the cap: exit %d, stderr %q", code, stderr)
	}
	tm.keys("one", "q")
	waitExit(t, status)
	r.waitFor("the slot freed", func() bool {
		_, _, code := r.ssh(r.fullKey, nil, "status")
		return code == 0
	})
}

func keyFingerprint(t *testing.T, key string) string {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", key+".pub").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		t.Fatalf("ssh-keygen -l: %q", out)
	}
	return f[1]
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// headerHas reports whether the header line of mailbox shows state.
func headerHas(screen, mailbox, state string) bool {
	for _, l := range strings.Split(screen, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), mailbox) && strings.Contains(l, " "+state+" ") {
			return true
		}
	}
	return false
}

var ansiLeak = regexp.MustCompile(`\x1b|level=|msg=`)

func checkScreen(t *testing.T, screen string, w, h int) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(screen, "\n"), "\n")
	if len(lines) > h {
		t.Errorf("%d lines on a %d-line terminal", len(lines), h)
	}
	for i, l := range lines {
		if n := len([]rune(l)); n > w {
			t.Errorf("line %d has %d characters on a %d-column terminal: %q", i, n, w, l)
		}
	}
	if ansiLeak.MatchString(screen) {
		t.Errorf("escape sequences or log lines on the screen:\n%s", screen)
	}
}
