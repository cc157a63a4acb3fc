package testimap

import (
	"bytes"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// servers runs f against each test server, started with the given
// mailboxes and TLS setting. Each server is private to its subtest, so all
// of them run in parallel: most of a Dovecot test is waiting.
func servers(t *testing.T, withTLS bool, mailboxes []string, f func(t *testing.T, s Server)) {
	t.Parallel()
	t.Run("mem", func(t *testing.T) {
		t.Parallel()
		opts := []MemOption{WithMailboxes(mailboxes...)}
		if withTLS {
			opts = append(opts, WithTLS())
		}
		f(t, StartMem(t, opts...))
	})
	t.Run("dovecot", func(t *testing.T) {
		t.Parallel()
		f(t, StartDovecot(t, DovecotOptions{TLS: withTLS, Mailboxes: mailboxes}))
	})
}

func waitClosed(t *testing.T, c *imapclient.Client, why string) {
	t.Helper()
	select {
	case <-c.Closed():
	case <-time.After(waitFor):
		t.Fatalf("client not disconnected by %s", why)
	}
}

func TestServer_deliverAndFetch(t *testing.T) {
	servers(t, false, []string{"Lists/golang"}, func(t *testing.T, s Server) {
		uids := s.DeliverN(t, "INBOX", 3)
		if !equalUIDs(uids, []uint32{1, 2, 3}) {
			t.Fatalf("DeliverN UIDs = %v, want 1..3", uids)
		}
		raw := Msg("Grüße aus Köln", 4)
		if uid := s.Deliver(t, "INBOX", raw); uid != 4 {
			t.Fatalf("Deliver UID = %d, want 4", uid)
		}
		if uid := s.Deliver(t, "Lists/golang", Msg("list mail", 1)); uid != 1 {
			t.Fatalf("Deliver to Lists/golang UID = %d, want 1", uid)
		}
		st := s.Status(t, "INBOX")
		if st.Messages != 4 || st.UIDNext != 5 || st.UIDValidity == 0 {
			t.Fatalf("Status(INBOX) = %+v", st)
		}

		c := dial(t, s.Addr(), s.Username(), s.Password(), nil)
		data := examine(t, c, "INBOX")
		if data.NumMessages != 4 || data.UIDValidity != st.UIDValidity {
			t.Fatalf("EXAMINE INBOX: %d messages, uidvalidity %d; Status said %+v", data.NumMessages, data.UIDValidity, st)
		}
		msgs := fetchAll(t, c)
		if len(msgs) != 4 {
			t.Fatalf("fetched %d messages, want 4", len(msgs))
		}
		last := msgs[3]
		if uint32(last.UID) != 4 || !bytes.Equal(last.BodySection[0].Bytes, raw) || last.Envelope.Subject != "Grüße aus Köln" {
			t.Fatalf("message 4: uid %d subject %q, body equal %v", last.UID, last.Envelope.Subject, bytes.Equal(last.BodySection[0].Bytes, raw))
		}
		if got := examine(t, c, "Lists/golang").NumMessages; got != 1 {
			t.Fatalf("Lists/golang has %d messages, want 1", got)
		}
	})
}

func TestServer_idleGetsExistsOnDeliver(t *testing.T) {
	servers(t, false, nil, func(t *testing.T, s Server) {
		s.Deliver(t, "INBOX", Msg("before", 1))
		w := make(existsWatcher, 16)
		c := dial(t, s.Addr(), s.Username(), s.Password(), w.options())
		examine(t, c, "INBOX")
		if !c.Caps().Has(imap.CapIdle) {
			t.Fatalf("server does not offer IDLE: %v", c.Caps())
		}
		idle, err := c.Idle()
		if err != nil {
			t.Fatalf("idle: %v", err)
		}
		s.Deliver(t, "INBOX", Msg("while idle", 2))
		w.waitExists(t, 2)
		s.DeliverN(t, "INBOX", 2)
		w.waitExists(t, 4)
		if err := idle.Close(); err != nil {
			t.Fatalf("stop idle: %v", err)
		}
		if err := idle.Wait(); err != nil {
			t.Fatalf("idle: %v", err)
		}
	})
}

func TestServer_restartKeepsMailAndPorts(t *testing.T) {
	servers(t, false, nil, func(t *testing.T, s Server) {
		s.DeliverN(t, "INBOX", 2)
		addr, before := s.Addr(), s.Status(t, "INBOX")
		c := dial(t, addr, s.Username(), s.Password(), nil)
		examine(t, c, "INBOX")

		s.Stop(t)
		waitClosed(t, c, "Stop")
		// Not checked: that a dial to addr now fails. While stopped, the
		// port is free for any other test process on the machine to take
		// (seen in CI), and a dial to a free ephemeral port can even
		// connect to itself.
		s.Start(t)
		if s.Addr() != addr {
			t.Fatalf("address changed across restart: %s → %s", addr, s.Addr())
		}
		uid := s.Deliver(t, "INBOX", Msg("after restart", 3))
		c = dial(t, addr, s.Username(), s.Password(), nil)
		data := examine(t, c, "INBOX")
		if data.NumMessages != 3 || data.UIDValidity != before.UIDValidity || uid != 3 {
			t.Fatalf("after restart: %d messages, uidvalidity %d, new uid %d; want 3, %d, 3", data.NumMessages, data.UIDValidity, uid, before.UIDValidity)
		}
		s.Restart(t)
		waitClosed(t, c, "Restart")
	})
}

func TestServer_kick(t *testing.T) {
	servers(t, false, nil, func(t *testing.T, s Server) {
		c := dial(t, s.Addr(), s.Username(), s.Password(), nil)
		examine(t, c, "INBOX")
		s.Kick(t)
		waitClosed(t, c, "Kick")
		s.Kick(t) // nobody left to kick: not an error
		c = dial(t, s.Addr(), s.Username(), s.Password(), nil)
		examine(t, c, "INBOX")
	})
}

func TestServer_recreateMailboxChangesUIDValidity(t *testing.T) {
	servers(t, false, []string{"Archive"}, func(t *testing.T, s Server) {
		for _, name := range []string{"INBOX", "Archive"} {
			s.DeliverN(t, name, 2)
			old := s.Status(t, name)
			uv := s.RecreateMailbox(t, name)
			st := s.Status(t, name)
			if uv == old.UIDValidity || st.UIDValidity != uv || st.Messages != 0 {
				t.Fatalf("%s recreated: %+v (returned %d), before %+v", name, st, uv, old)
			}
			s.Deliver(t, name, Msg("after recreate", 3))
			c := dial(t, s.Addr(), s.Username(), s.Password(), nil)
			if data := examine(t, c, name); data.UIDValidity != uv || data.NumMessages != 1 {
				t.Fatalf("EXAMINE %s after recreate: uidvalidity %d, %d messages", name, data.UIDValidity, data.NumMessages)
			}
		}

		// A session on a mailbox that goes away is told so (Dovecot: at
		// the next command, or at once in IDLE).
		c := dial(t, s.Addr(), s.Username(), s.Password(), nil)
		examine(t, c, "Archive")
		s.DeleteMailbox(t, "Archive")
		if err := c.Noop().Wait(); err == nil {
			t.Fatal("NOOP succeeded on a deleted selected mailbox")
		}
		waitClosed(t, c, "deleting its selected mailbox")
	})
}

func TestServer_TLS(t *testing.T) {
	servers(t, true, nil, func(t *testing.T, s Server) {
		if s.CAFile() == "" || s.TLSAddr() == "" || len(s.Cert()) == 0 {
			t.Fatalf("TLS: CAFile %q, TLSAddr %q", s.CAFile(), s.TLSAddr())
		}
		roots, err := loadCAFile(s.CAFile())
		if err != nil {
			t.Fatal(err)
		}
		cfg := &tls.Config{RootCAs: roots, ServerName: s.Host()}

		c, err := imapclient.DialTLS(s.TLSAddr(), &imapclient.Options{TLSConfig: cfg})
		if err != nil {
			t.Fatalf("implicit TLS with the CA file: %v", err)
		}
		defer c.Close()
		if err := c.Login(s.Username(), s.Password()).Wait(); err != nil {
			t.Fatalf("login over TLS: %v", err)
		}
		examine(t, c, "INBOX")

		st, err := imapclient.DialStartTLS(s.Addr(), &imapclient.Options{TLSConfig: cfg.Clone()})
		if err != nil {
			t.Fatalf("STARTTLS with the CA file: %v", err)
		}
		defer st.Close()
		if err := st.Login(s.Username(), s.Password()).Wait(); err != nil {
			t.Fatalf("login after STARTTLS: %v", err)
		}

		_, err = imapclient.DialTLS(s.TLSAddr(), &imapclient.Options{TLSConfig: &tls.Config{ServerName: s.Host(), RootCAs: CertPool(nil)}})
		var verr *tls.CertificateVerificationError
		if !errors.As(err, &verr) {
			t.Fatalf("TLS without the CA: err = %v, want a verification error", err)
		}
	})
}

func TestServer_freezeAndThaw(t *testing.T) {
	servers(t, false, nil, func(t *testing.T, s Server) {
		c := dial(t, s.Addr(), s.Username(), s.Password(), nil)
		examine(t, c, "INBOX")
		s.Freeze(t)
		done := make(chan error, 1)
		go func() { done <- c.Noop().Wait() }()
		select {
		case err := <-done:
			s.Thaw(t)
			t.Fatalf("NOOP answered while frozen (err %v)", err)
		case <-time.After(300 * time.Millisecond):
		}
		s.Thaw(t)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("NOOP after Thaw: %v", err)
			}
		case <-time.After(waitFor):
			t.Fatal("NOOP not answered after Thaw")
		}

		// Stopping a frozen server must work and leave it startable.
		s.Freeze(t)
		s.Stop(t)
		waitClosed(t, c, "Stop while frozen")
		s.Start(t)
		dial(t, s.Addr(), s.Username(), s.Password(), nil)
	})
}

func TestServer_setPassword(t *testing.T) {
	servers(t, false, nil, func(t *testing.T, s Server) {
		old := s.Password()
		c := dial(t, s.Addr(), s.Username(), old, nil)
		s.SetPassword(t, "rotated")
		if err := c.Noop().Wait(); err != nil {
			t.Fatalf("logged-in session disturbed: %v", err)
		}
		c2, err := imapclient.DialInsecure(s.Addr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		err = c2.Login(s.Username(), old).Wait()
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo {
			t.Fatalf("login with the old password: err = %v, want NO", err)
		}
		if err := c2.Login(s.Username(), "rotated").Wait(); err != nil {
			t.Fatalf("login with the new password: %v", err)
		}
		if s.Password() != "rotated" {
			t.Fatalf("Password() = %q", s.Password())
		}
	})
}

func TestServer_deliverManyInOrder(t *testing.T) {
	const n = 1000
	servers(t, false, nil, func(t *testing.T, s Server) {
		s.Deliver(t, "INBOX", Msg("first", 0))
		msgs := make([][]byte, n)
		for i := range msgs {
			msgs[i] = Msg("bulk", i+1)
		}
		start := time.Now()
		uids := s.DeliverMany(t, "INBOX", msgs)
		t.Logf("DeliverMany: %d messages in %v", n, time.Since(start))
		if len(uids) != n || uids[0] != 2 || uids[n-1] != n+1 {
			t.Fatalf("DeliverMany UIDs: %d of them, %v … %v", len(uids), uids[:1], uids[len(uids)-1:])
		}
		if st := s.Status(t, "INBOX"); st.Messages != n+1 {
			t.Fatalf("INBOX holds %d messages, want %d", st.Messages, n+1)
		}
		// Spot-check order: UID k holds the message with sequence k-1.
		c := dial(t, s.Addr(), s.Username(), s.Password(), nil)
		examine(t, c, "INBOX")
		var set imap.UIDSet
		set.AddNum(2, n/2, imap.UID(n+1))
		got, err := c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range got {
			if want := msgs[m.UID-2]; !bytes.Equal(m.BodySection[0].Bytes, want) {
				t.Fatalf("UID %d does not hold message %d", m.UID, m.UID-1)
			}
		}
	})
}
