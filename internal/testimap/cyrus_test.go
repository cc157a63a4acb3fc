package testimap

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func TestCyrus_loginAndGreeting(t *testing.T) {
	c := StartCyrus(t, CyrusOptions{})
	line, err := greeting(c.Addr())
	if err != nil || !strings.Contains(line, "Cyrus IMAP") {
		t.Fatalf("greeting %q, %v", line, err)
	}
	cl := dial(t, c.Addr(), c.Username(), c.Password(), nil)
	if !cl.Caps().Has(imap.CapIdle) || !cl.Caps().Has(imap.CapUIDPlus) {
		t.Errorf("capabilities lack IDLE or UIDPLUS: %v", cl.Caps())
	}
	bad, err := imapclient.DialInsecure(c.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Login(c.Username(), "wrong").Wait(); err == nil {
		t.Error("login with a wrong password succeeded")
	}
	// Cyrus's syslog reaches the helper through its private /dev/log.
	if log := c.Log(); !strings.Contains(log, "User logged in") {
		t.Errorf("log lacks the login:\n%s", log)
	}
	if _, err := os.Lstat("/dev/log"); err == nil {
		// Not ours: the namespace must not leak, but a host syslog may exist.
		t.Log("/dev/log exists outside the namespace (a host syslog?)")
	}
}

// TestCyrus_separators: LIST shows the configured delimiter and the names
// in the matching namespace.
func TestCyrus_separators(t *testing.T) {
	for _, tt := range []struct {
		unix  bool
		delim rune
		boxes []string
	}{
		{false, '.', []string{"INBOX.Lists", "INBOX.Lists.golang"}},
		{true, '/', []string{"Lists", "Lists/golang"}},
	} {
		t.Run(string(tt.delim), func(t *testing.T) {
			c := StartCyrus(t, CyrusOptions{UnixHierarchySep: tt.unix, Mailboxes: tt.boxes[1:]})
			if c.Separator() != tt.delim {
				t.Errorf("Separator() = %q", c.Separator())
			}
			cl := dial(t, c.Addr(), c.Username(), c.Password(), nil)
			list, err := cl.List("", "*", nil).Collect()
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, l := range list {
				names = append(names, l.Mailbox)
				if l.Delim != tt.delim {
					t.Errorf("LIST %q: delimiter %q, want %q", l.Mailbox, l.Delim, tt.delim)
				}
			}
			slices.Sort(names)
			want := append([]string{"INBOX"}, tt.boxes...)
			if !slices.Equal(names, want) {
				t.Errorf("LIST names %q, want %q", names, want)
			}
			uid := c.Deliver(t, tt.boxes[1], Msg("nested", 1))
			if st := c.Status(t, tt.boxes[1]); st.Messages != 1 || st.UIDNext != uid+1 {
				t.Errorf("status of %q after delivery: %+v (uid %d)", tt.boxes[1], st, uid)
			}
		})
	}
}

func TestCyrus_deliverIsVisible(t *testing.T) {
	c := StartCyrus(t, CyrusOptions{})
	uids := c.DeliverN(t, "INBOX", 2)
	uid := c.Deliver(t, "INBOX", Msg("hello cyrus", 3))
	if !slices.Equal(uids, []uint32{1, 2}) || uid != 3 {
		t.Fatalf("UIDs %v then %d, want [1 2] then 3", uids, uid)
	}
	cl := dial(t, c.Addr(), c.Username(), c.Password(), nil)
	if _, err := cl.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := cl.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{UID: true, Envelope: true, Flags: true}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch UID %d: %v, %d messages", uid, err, len(msgs))
	}
	if got := msgs[0].Envelope.Subject; got != "hello cyrus" {
		t.Errorf("subject %q", got)
	}
	t.Logf("flags of a delivered message at the first SELECT: %v", msgs[0].Flags)
}

// TestCyrus_idle: with idled, IDLE announces new mail at once (observed:
// 1–5 ms after the APPEND completes); without it imapd looks every
// imapidlepoll seconds (observed with 1 s: 0–1 s later), and with the
// default of 60 s a test sees nothing until it leaves IDLE.
func TestCyrus_idle(t *testing.T) {
	for _, tt := range []struct {
		name     string
		opts     CyrusOptions
		announce bool
	}{
		{"idled", CyrusOptions{Idled: true}, true},
		{"poll1s", CyrusOptions{ExtraConfig: "imapidlepoll: 1"}, true},
		{"poll60s", CyrusOptions{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := StartCyrus(t, tt.opts)
			w := make(existsWatcher, 10)
			cl := dial(t, c.Addr(), c.Username(), c.Password(), w.options())
			if _, err := cl.Select("INBOX", nil).Wait(); err != nil {
				t.Fatal(err)
			}
			idle, err := cl.Idle()
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // into IDLE proper
			c.Deliver(t, "INBOX", Msg("pushed", 1))
			delivered := time.Now()
			if tt.announce {
				w.waitExists(t, 1)
				t.Logf("%s: EXISTS %v after the APPEND completed", tt.name, time.Since(delivered))
			} else {
				select {
				case n := <-w:
					t.Fatalf("EXISTS %d during IDLE with a 60 s poll and no idled", n)
				case <-time.After(1500 * time.Millisecond):
				}
			}
			if err := idle.Close(); err != nil {
				t.Fatal(err)
			}
			if err := idle.Wait(); err != nil {
				t.Fatal(err)
			}
			if !tt.announce {
				if err := cl.Noop().Wait(); err != nil {
					t.Fatal(err)
				}
				w.waitExists(t, 1)
			}
			if tt.opts.Idled && strings.Contains(c.Log(), "Falling back to polling") {
				t.Error("imapd did not reach idled")
			}
		})
	}
}

func TestCyrus_restartKeepsMail(t *testing.T) {
	c := StartCyrus(t, CyrusOptions{Idled: true})
	c.DeliverN(t, "INBOX", 2)
	addr, before := c.Addr(), c.Status(t, "INBOX")
	cl := dial(t, addr, c.Username(), c.Password(), nil)
	examine(t, cl, "INBOX")

	c.Stop(t)
	select {
	case <-cl.Closed():
	case <-time.After(waitFor):
		t.Fatal("client not disconnected by Stop")
	}
	if conn, err := net.DialTimeout("tcp", addr, waitFor); err == nil {
		conn.Close()
		t.Fatal("stopped server still accepts connections")
	}
	c.Start(t)
	if c.Addr() != addr {
		t.Fatalf("address changed across restart: %s → %s", addr, c.Addr())
	}
	if after := c.Status(t, "INBOX"); after != before {
		t.Fatalf("INBOX after restart %+v, before %+v", after, before)
	}
	c.Restart(t)
	cl = dial(t, addr, c.Username(), c.Password(), nil)
	if data := examine(t, cl, "INBOX"); data.NumMessages != 2 {
		t.Fatalf("%d messages after the second restart", data.NumMessages)
	}
	if strings.Contains(c.Log(), "DBERROR") {
		t.Errorf("database errors in the log:\n%s", c.Log())
	}
}

func TestCyrus_kick(t *testing.T) {
	c := StartCyrus(t, CyrusOptions{})
	cl := dial(t, c.Addr(), c.Username(), c.Password(), nil)
	examine(t, cl, "INBOX")
	c.Kick(t)
	select {
	case <-cl.Closed():
	case <-time.After(waitFor):
		t.Fatal("client not disconnected by Kick")
	}
	cl = dial(t, c.Addr(), c.Username(), c.Password(), nil)
	examine(t, cl, "INBOX")
}

func TestCyrus_setPassword(t *testing.T) {
	c := StartCyrus(t, CyrusOptions{})
	old := dial(t, c.Addr(), c.Username(), c.Password(), nil)
	c.SetPassword(t, "new secret")
	dial(t, c.Addr(), c.Username(), "new secret", nil)
	bad, err := imapclient.DialInsecure(c.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Login(c.Username(), DefaultPassword).Wait(); err == nil {
		t.Error("old password still accepted")
	}
	if err := old.Noop().Wait(); err != nil {
		t.Errorf("logged-in session dropped by SetPassword: %v", err)
	}
}

func TestCyrus_freezeAndThaw(t *testing.T) {
	c := StartCyrus(t, CyrusOptions{})
	cl := dial(t, c.Addr(), c.Username(), c.Password(), nil)
	c.Freeze(t)
	done := make(chan error, 1)
	go func() { done <- cl.Noop().Wait() }()
	select {
	case err := <-done:
		t.Fatalf("NOOP answered while frozen: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	c.Thaw(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitFor):
		t.Fatal("no answer after Thaw")
	}
}

func TestCyrus_unavailable(t *testing.T) {
	t.Setenv(CyrusDirEnv, filepath.Join(t.TempDir(), "nothing"))
	for _, tt := range []struct {
		env      string
		wantSkip bool
	}{{"", true}, {"1", false}} {
		t.Setenv(RequireCyrusEnv, tt.env)
		r := &recordTB{TB: t}
		if _, err := findCyrus(); err == nil {
			t.Fatal("findCyrus found binaries in an empty directory")
		} else {
			skipOrFail(r, RequireCyrusEnv, err.Error())
		}
		if (r.skipped != "") != tt.wantSkip || (r.failed != "") == tt.wantSkip {
			t.Errorf("%s=%q: skipped %q, failed %q", RequireCyrusEnv, tt.env, r.skipped, r.failed)
		}
	}
}

func TestSyslogLine(t *testing.T) {
	got := syslogLine([]byte("<19>Dec  1 22:32:39 mailtap-cyrus/imap[42]: DBERROR: x\x00"))
	if want := "Dec  1 22:32:39 mailtap-cyrus/imap[42]: err: DBERROR: x"; got != want {
		t.Errorf("syslogLine = %q, want %q", got, want)
	}
	if got := syslogLine([]byte("no header")); got != "no header" {
		t.Errorf("syslogLine = %q", got)
	}
}

// rawSession is a hand-driven IMAP connection that keeps every line the
// server sends, to see exactly what Cyrus says.
type rawSession struct {
	t     *testing.T
	conn  net.Conn
	lines chan string
}

func dialRaw(t *testing.T, c *Cyrus) *rawSession {
	t.Helper()
	conn, err := net.DialTimeout("tcp", c.Addr(), waitFor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &rawSession{t: t, conn: conn, lines: make(chan string, 1000)}
	go func() {
		defer close(s.lines)
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			s.lines <- strings.TrimRight(line, "\r\n")
		}
	}()
	s.until("* OK")
	s.cmd("a", "LOGIN "+quoted(c.Username())+" "+quoted(c.Password()))
	return s
}

func (s *rawSession) send(line string) {
	s.t.Helper()
	if _, err := fmt.Fprintf(s.conn, "%s\r\n", line); err != nil {
		s.t.Fatal(err)
	}
}

// until returns the lines up to and including the first starting with
// prefix.
func (s *rawSession) until(prefix string) []string {
	s.t.Helper()
	var got []string
	deadline := time.After(waitFor)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				s.t.Fatalf("connection closed waiting for %q; got %q", prefix, got)
			}
			got = append(got, line)
			if strings.HasPrefix(line, prefix) {
				return got
			}
		case <-deadline:
			s.t.Fatalf("no %q within %v; got %q", prefix, waitFor, got)
		}
	}
}

// cmd sends a tagged command and returns the responses, tagged one last.
func (s *rawSession) cmd(tag, command string) []string {
	s.t.Helper()
	s.send(tag + " " + command)
	got := s.until(tag + " ")
	return got
}

// quiet collects what arrives within d.
func (s *rawSession) quiet(d time.Duration) (got []string, closed bool) {
	deadline := time.After(d)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				return got, true
			}
			got = append(got, line)
		case <-deadline:
			return got, false
		}
	}
}

// TestCyrus_deleteRecreateSelected pins down what Cyrus 3.6 tells a
// session that has a mailbox selected while another session deletes it and
// creates it again under the same name (what a user's mail client or an
// admin does; the watcher's tests rely on it). Observed:
//
//   - DELETE: the selected session gets one "* 1 EXPUNGE" per message —
//     at once while in IDLE with idled, at its next command (NOOP) otherwise.
//     No BYE, no NO, the connection stays. With delete_mode: delayed (the
//     default) the mailbox is renamed to DELETED.user.<name>.<hex>.
//   - CREATE of the same name: nothing at all, and mail delivered to the new
//     mailbox is not announced either: the session stays on the deleted one.
//   - After that, NOOP is OK but FETCH/SEARCH answer "NO Mailbox does not
//     exist"; STATUS shows the new mailbox, whose UIDVALIDITY is higher.
//   - Only a new SELECT sees the new UIDVALIDITY (and "* OK [CLOSED]").
func TestCyrus_deleteRecreateSelected(t *testing.T) {
	c := StartCyrus(t, CyrusOptions{Idled: true, Mailboxes: []string{"INBOX.work"}})
	c.DeliverN(t, "INBOX.work", 2)
	old := c.Status(t, "INBOX.work").UIDValidity

	idler, poller := dialRaw(t, c), dialRaw(t, c)
	idler.cmd("s", "SELECT INBOX.work")
	poller.cmd("s", "SELECT INBOX.work")
	idler.send("i IDLE")
	idler.until("+ ")

	c.DeleteMailbox(t, "INBOX.work")
	got, closed := idler.quiet(time.Second)
	if want := []string{"* 1 EXPUNGE", "* 1 EXPUNGE"}; closed || !slices.Equal(got, want) {
		t.Fatalf("idling session after DELETE: %q (closed %v), want %q", got, closed, want)
	}
	c.CreateMailbox(t, "INBOX.work")
	c.Deliver(t, "INBOX.work", Msg("into the new mailbox", 3))
	if got, closed := idler.quiet(time.Second); closed || len(got) != 0 {
		t.Fatalf("idling session after CREATE and delivery: %q (closed %v), want nothing", got, closed)
	}
	uv := c.Status(t, "INBOX.work").UIDValidity
	if uv <= old {
		t.Fatalf("UIDVALIDITY %d after recreate, was %d", uv, old)
	}

	// The session that was not idling learns of the deletion at its next
	// command, and of nothing else.
	got = poller.cmd("n", "NOOP")
	if want := []string{"* 1 EXPUNGE", "* 1 EXPUNGE", "n OK Completed"}; !slices.Equal(got, want) {
		t.Errorf("NOOP after delete and create: %q, want %q", got, want)
	}

	idler.send("DONE")
	idler.until("i OK")
	for _, s := range []*rawSession{idler, poller} {
		if got := s.cmd("f", "UID FETCH 1:* (FLAGS)"); !strings.HasPrefix(got[len(got)-1], "f NO") {
			t.Errorf("UID FETCH on the deleted mailbox: %q, want NO", got)
		}
		got := s.cmd("s2", "SELECT INBOX.work")
		if !slices.Contains(got, fmt.Sprintf("* OK [UIDVALIDITY %d] Ok", uv)) || !slices.Contains(got, "* 1 EXISTS") {
			t.Errorf("new SELECT: %q, want UIDVALIDITY %d and 1 EXISTS", got, uv)
		}
	}
}

// TestCyrus_recent records how Cyrus hands out \Recent: to the session
// that has the mailbox selected read-write when the message arrives (or the
// first to select it after), not to later ones. Mail APPENDed by the user
// (Deliver) gets it too.
func TestCyrus_recent(t *testing.T) {
	c := StartCyrus(t, CyrusOptions{Idled: true})
	first := dialRaw(t, c)
	first.cmd("s", "SELECT INBOX")
	c.Deliver(t, "INBOX", Msg("recent", 1))
	if got := first.cmd("n", "NOOP"); !slices.Contains(got, "* 1 RECENT") {
		t.Errorf("selected session after delivery: %q, want * 1 RECENT", got)
	}
	if got := first.cmd("f", "FETCH 1 (FLAGS)"); got[0] != "* 1 FETCH (FLAGS (\\Recent))" {
		t.Errorf("flags in the first session: %q", got)
	}
	second := dialRaw(t, c)
	if got := second.cmd("s", "SELECT INBOX"); !slices.Contains(got, "* 0 RECENT") {
		t.Errorf("a second session's SELECT: %q, want * 0 RECENT", got)
	}
	if got := second.cmd("f", "FETCH 1 (FLAGS)"); got[0] != "* 1 FETCH (FLAGS ())" {
		t.Errorf("flags in the second session: %q", got)
	}
}

// TestCyrus_startRetriesWhileThePortIsTaken: a master that cannot bind logs
// it and keeps running without IMAP; Start notices, stops it and tries
// again until the port is free.
func TestCyrus_startRetriesWhileThePortIsTaken(t *testing.T) {
	c := StartCyrus(t, CyrusOptions{})
	c.Deliver(t, "INBOX", Msg("kept", 1))
	addr := c.Addr()
	c.Stop(t)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close() // no greeting
		}
	}()
	time.AfterFunc(500*time.Millisecond, func() { ln.Close() })
	c.Start(t)
	if !strings.Contains(c.Log(), "Address already in use") {
		t.Error("Start did not meet the taken port")
	}
	if c.Addr() != addr || c.Status(t, "INBOX").Messages != 1 {
		t.Fatalf("after Start: %s, %+v", c.Addr(), c.Status(t, "INBOX"))
	}
}
