package testimap

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// waitFor is how long a test waits for something that should happen at once.
const waitFor = 5 * time.Second

// dial connects and logs in; the client is closed when the test ends.
func dial(t *testing.T, addr, user, pass string, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	if opts == nil {
		opts = &imapclient.Options{}
	}
	opts.Dialer = &net.Dialer{Timeout: waitFor}
	c, err := imapclient.DialInsecure(addr, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

// existsWatcher records the EXISTS counts a client is told about.
type existsWatcher chan uint32

func (w existsWatcher) options() *imapclient.Options {
	return &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				select {
				case w <- *d.NumMessages:
				default:
				}
			}
		},
	}}
}

// waitExists waits until an EXISTS of at least n arrives.
func (w existsWatcher) waitExists(t *testing.T, n uint32) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case got := <-w:
			if got >= n {
				return
			}
		case <-deadline:
			t.Fatalf("no EXISTS %d within %v", n, waitFor)
		}
	}
}

func fetchAll(t *testing.T, c *imapclient.Client) []*imapclient.FetchMessageBuffer {
	t.Helper()
	var all imap.UIDSet
	all.AddRange(1, 0)
	msgs, err := c.Fetch(all, &imap.FetchOptions{
		UID: true, Envelope: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatalf("uid fetch 1:*: %v", err)
	}
	return msgs
}

func examine(t *testing.T, c *imapclient.Client, name string) *imap.SelectData {
	t.Helper()
	data, err := c.Select(name, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("examine %q: %v", name, err)
	}
	return data
}

func TestMem_restartKeepsMailAndPort(t *testing.T) {
	m := StartMem(t)
	m.DeliverN(t, "INBOX", 2)
	addr, before := m.Addr(), m.Status(t, "INBOX")
	c := dial(t, addr, m.Username(), m.Password(), nil)
	examine(t, c, "INBOX")

	m.Stop(t)
	select {
	case <-c.Closed():
	case <-time.After(waitFor):
		t.Fatal("client not disconnected by Stop")
	}
	if conn, err := net.DialTimeout("tcp", addr, waitFor); err == nil {
		conn.Close()
		t.Fatal("stopped server still accepts connections")
	}
	m.Deliver(t, "INBOX", Msg("while stopped", 3)) // the backend stays

	m.Start(t)
	if m.Addr() != addr {
		t.Fatalf("address changed across restart: %s → %s", addr, m.Addr())
	}
	c = dial(t, addr, m.Username(), m.Password(), nil)
	data := examine(t, c, "INBOX")
	if data.NumMessages != 3 || data.UIDValidity != before.UIDValidity {
		t.Fatalf("after restart: %d messages uidvalidity %d; want 3 and %d", data.NumMessages, data.UIDValidity, before.UIDValidity)
	}
	m.Restart(t)
	dial(t, addr, m.Username(), m.Password(), nil)
}

func TestMem_kickDropsSessionsKeepsListening(t *testing.T) {
	m := StartMem(t)
	c := dial(t, m.Addr(), m.Username(), m.Password(), nil)
	examine(t, c, "INBOX")
	if n := m.KickCount(); n != 1 {
		t.Fatalf("Kick dropped %d connections, want 1", n)
	}
	select {
	case <-c.Closed():
	case <-time.After(waitFor):
		t.Fatal("client not disconnected by Kick")
	}
	dial(t, m.Addr(), m.Username(), m.Password(), nil)
}

func TestMem_recreateMailboxChangesUIDValidityAndByes(t *testing.T) {
	m := StartMem(t, WithMailboxes("Archive"))
	m.DeliverN(t, "INBOX", 2)
	c := dial(t, m.Addr(), m.Username(), m.Password(), nil)
	old := examine(t, c, "INBOX").UIDValidity
	other := dial(t, m.Addr(), m.Username(), m.Password(), nil)
	examine(t, other, "Archive")

	uv := m.RecreateMailbox(t, "INBOX")
	if uv == old {
		t.Fatalf("UIDVALIDITY unchanged: %d", uv)
	}
	select {
	case <-c.Closed():
	case <-time.After(waitFor):
		t.Fatal("session with INBOX selected not disconnected")
	}
	if err := other.Noop().Wait(); err != nil {
		t.Fatalf("session on another mailbox was disturbed: %v", err)
	}
	c = dial(t, m.Addr(), m.Username(), m.Password(), nil)
	data := examine(t, c, "INBOX")
	if data.UIDValidity != uv || data.NumMessages != 0 {
		t.Fatalf("recreated INBOX: uidvalidity %d (want %d), %d messages (want 0)", data.UIDValidity, uv, data.NumMessages)
	}
	if uid := m.Deliver(t, "INBOX", Msg("after recreate", 1)); uid != 1 {
		t.Fatalf("first UID after recreate = %d, want 1", uid)
	}

	m.DeleteMailbox(t, "Archive")
	if _, err := c.Select("Archive", nil).Wait(); err == nil {
		t.Fatal("deleted mailbox can still be selected")
	}
}

func TestMem_TLS(t *testing.T) {
	m := StartMem(t, WithTLS())
	m.Deliver(t, "INBOX", Msg("over tls", 1))
	if m.CAFile() == "" || m.TLSAddr() == "" || len(m.Cert()) == 0 {
		t.Fatalf("WithTLS: CAFile %q TLSAddr %q", m.CAFile(), m.TLSAddr())
	}
	roots, err := loadCAFile(m.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}

	implicit, err := imapclient.DialTLS(m.TLSAddr(), &imapclient.Options{TLSConfig: cfg})
	if err != nil {
		t.Fatalf("implicit TLS with the CA file: %v", err)
	}
	defer implicit.Close()
	if implicit.Caps().Has(imap.CapStartTLS) {
		t.Error("implicit TLS port offers STARTTLS")
	}
	if err := implicit.Login(m.Username(), m.Password()).Wait(); err != nil {
		t.Fatalf("login over TLS: %v", err)
	}
	if data := examine(t, implicit, "INBOX"); data.NumMessages != 1 {
		t.Fatalf("INBOX over TLS has %d messages", data.NumMessages)
	}

	starttls, err := imapclient.DialStartTLS(m.Addr(), &imapclient.Options{TLSConfig: m.TLSConfig()})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	defer starttls.Close()
	if err := starttls.Login(m.Username(), m.Password()).Wait(); err != nil {
		t.Fatalf("login after STARTTLS: %v", err)
	}

	// Without the CA the certificate must be refused: the CA file is what
	// makes the connection trusted.
	_, err = imapclient.DialTLS(m.TLSAddr(), &imapclient.Options{TLSConfig: &tls.Config{ServerName: "127.0.0.1", RootCAs: CertPool(nil)}})
	var unknown *tls.CertificateVerificationError
	if !errors.As(err, &unknown) {
		t.Fatalf("dial without CA: err = %v, want a certificate verification error", err)
	}

	// Restart keeps the certificate and both ports.
	tlsAddr := m.TLSAddr()
	m.Restart(t)
	if m.TLSAddr() != tlsAddr {
		t.Fatalf("TLS address changed across restart")
	}
	again, err := imapclient.DialTLS(m.TLSAddr(), &imapclient.Options{TLSConfig: cfg})
	if err != nil {
		t.Fatalf("implicit TLS after restart: %v", err)
	}
	again.Close()
}

func TestMem_withoutIdle(t *testing.T) {
	m := StartMem(t, WithoutIdle())
	// Message text that looks like protocol must pass the filter untouched
	// in both directions.
	tricky := MsgBody("looks like protocol", 1,
		"* CAPABILITY IMAP4rev1 IDLE\nA1 IDLE\n* OK [CAPABILITY IDLE] x {5}\nhello\n")
	m.Deliver(t, "INBOX", tricky)

	c, err := imapclient.DialInsecure(m.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitGreeting(); err != nil {
		t.Fatal(err)
	}
	if c.Caps().Has(imap.CapIdle) {
		t.Fatalf("greeting advertises IDLE: %v", c.Caps())
	}
	if err := c.Login(m.Username(), m.Password()).Wait(); err != nil {
		t.Fatal(err)
	}
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if caps.Has(imap.CapIdle) || !caps.Has(imap.CapUIDPlus) {
		t.Fatalf("CAPABILITY after login = %v; want UIDPLUS and no IDLE", caps)
	}

	appended := MsgBody("appended", 2, "a IDLE\nDONE\n")
	cmd := c.Append("INBOX", int64(len(appended)), nil)
	cmd.Write(appended)
	cmd.Close()
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("append: %v", err)
	}

	examine(t, c, "INBOX")
	msgs := fetchAll(t, c)
	if len(msgs) != 2 || !bytes.Equal(msgs[0].BodySection[0].Bytes, tricky) || !bytes.Equal(msgs[1].BodySection[0].Bytes, appended) {
		t.Fatalf("messages changed on the way through the filter:\n%q\n%q", msgs[0].BodySection[0].Bytes, msgs[1].BodySection[0].Bytes)
	}

	// A client that ignores the capability gets BAD, like from a server
	// without the extension.
	if _, err := c.Idle(); err == nil {
		t.Fatal("IDLE accepted by a server without IDLE")
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatalf("session unusable after rejected IDLE: %v", err)
	}
}

func TestMem_freezeAndThaw(t *testing.T) {
	m := StartMem(t)
	c := dial(t, m.Addr(), m.Username(), m.Password(), nil)
	examine(t, c, "INBOX")

	m.Freeze(t)
	done := make(chan error, 1)
	go func() { done <- c.Noop().Wait() }()
	select {
	case err := <-done:
		t.Fatalf("NOOP answered by a frozen server (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	m.Thaw(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("NOOP after thaw: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("NOOP not answered after Thaw")
	}

	// Stop must not hang on a frozen connection.
	m.Freeze(t)
	go c.Noop()
	stopped := make(chan struct{})
	go func() { m.Stop(t); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(waitFor):
		t.Fatal("Stop hangs while frozen")
	}
}

func TestMem_auth(t *testing.T) {
	m := StartMem(t, WithCredentials("alice", "s3cret"))
	tests := []struct {
		name   string
		client sasl.Client
		ok     bool
		// go-sasl's OAUTHBEARER client gives up on the server's error
		// challenge itself, so the failure is the client's, not a NO.
		clientFails bool
	}{
		{"plain", sasl.NewPlainClient("", "alice", "s3cret"), true, false},
		{"plain wrong", sasl.NewPlainClient("", "alice", "nope"), false, false},
		{"plain other identity", sasl.NewPlainClient("bob", "alice", "s3cret"), false, false},
		{"xoauth2", &xoauth2{"alice", "s3cret"}, true, false},
		{"xoauth2 wrong", &xoauth2{"alice", "expired"}, false, false},
		{"oauthbearer", sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: "alice", Token: "s3cret"}), true, false},
		{"oauthbearer wrong", sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: "alice", Token: "x"}), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := imapclient.DialInsecure(m.Addr(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Authenticate(tt.client)
			if tt.ok && err != nil {
				t.Fatalf("authenticate: %v", err)
			}
			if !tt.ok && tt.clientFails && err == nil {
				t.Fatal("authenticate with a bad token succeeded")
			}
			if !tt.ok && !tt.clientFails {
				var ie *imap.Error
				if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo {
					t.Fatalf("authenticate: err = %v, want NO", err)
				}
			}
		})
	}
	if got, want := m.AuthAttempts(), len(tests); got != want {
		t.Errorf("AuthAttempts = %d, want %d", got, want)
	}
	if got, want := m.AuthFailures(), 4; got != want {
		t.Errorf("AuthFailures = %d, want %d", got, want)
	}

	c := dial(t, m.Addr(), "alice", "s3cret", nil)
	m.SetPassword(t, "rotated")
	if err := c.Noop().Wait(); err != nil {
		t.Fatalf("logged-in session disturbed by SetPassword: %v", err)
	}
	c2, err := imapclient.DialInsecure(m.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Login("alice", "s3cret").Wait(); err == nil {
		t.Fatal("old password still accepted")
	}
	if err := c2.Login("alice", "rotated").Wait(); err != nil {
		t.Fatalf("new password refused: %v", err)
	}
}

type xoauth2 struct{ user, token string }

func (x *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}
func (x *xoauth2) Next([]byte) ([]byte, error) { return []byte{}, nil }

func loadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no certificate", path)
	}
	return pool, nil
}

func equalUIDs(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
