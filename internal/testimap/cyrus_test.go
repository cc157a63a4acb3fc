package testimap

import (
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

func TestCyrus_idle(t *testing.T) {
	for _, tt := range []struct {
		name   string
		opts   CyrusOptions
		within time.Duration
	}{
		{"idled", CyrusOptions{Idled: true}, waitFor},
		{"poll", CyrusOptions{ExtraConfig: "imapidlepoll: 1"}, waitFor},
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
			start := time.Now()
			c.Deliver(t, "INBOX", Msg("pushed", 1))
			delivered := time.Since(start)
			w.waitExists(t, 1)
			t.Logf("%s: EXISTS %v after APPEND started (APPEND took %v)", tt.name, time.Since(start), delivered)
			if err := idle.Close(); err != nil {
				t.Fatal(err)
			}
			if err := idle.Wait(); err != nil {
				t.Fatal(err)
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
