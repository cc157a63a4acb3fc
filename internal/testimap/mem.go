package testimap

import (
	"bytes"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"

	"mailtap/internal/memimap"
)

// Default credentials of both test servers.
const (
	DefaultUsername = "user"
	DefaultPassword = "pass"
)

// memCaps is what Mem advertises besides what imapserver adds itself
// (IDLE, UNSELECT, ENABLE, SASL-IR, …). IMAP4rev1 only, like Dovecot 2.3
// and most servers in the wild: advertising IMAP4rev2 would imply IDLE and
// make WithoutIdle impossible.
var memCaps = imap.CapSet{
	imap.CapIMAP4rev1:    {},
	imap.CapNamespace:    {},
	imap.CapUIDPlus:      {},
	imap.CapESearch:      {},
	imap.CapSearchRes:    {},
	imap.CapListStatus:   {},
	imap.CapMove:         {},
	imap.CapStatusSize:   {},
	imap.CapLiteralPlus:  {},
	imap.CapBinary:       {},
	imap.CapListExtended: {},
}

// MemOption configures StartMem.
type MemOption func(*memConfig)

type memConfig struct {
	username, password string
	mailboxes          []string
	noIdle             bool
	tls                bool
	trace              io.Writer
}

// WithCredentials sets the one account's username and password (default
// DefaultUsername / DefaultPassword).
func WithCredentials(username, password string) MemOption {
	return func(c *memConfig) { c.username, c.password = username, password }
}

// WithMailboxes creates these mailboxes besides INBOX ("/" is the
// hierarchy separator, e.g. "Lists/golang").
func WithMailboxes(names ...string) MemOption {
	return func(c *memConfig) { c.mailboxes = append(c.mailboxes, names...) }
}

// WithoutIdle makes a server without the IDLE extension: IDLE is left out of
// every CAPABILITY list and the IDLE command is answered with BAD, so the
// client's polling path runs. It cannot be combined with WithTLS.
func WithoutIdle() MemOption {
	return func(c *memConfig) { c.noIdle = true }
}

// WithTLS adds TLS with a generated self-signed certificate: the plain port
// (Addr) offers STARTTLS and a second port (TLSAddr) speaks implicit TLS.
// CAFile names a PEM file that trusts it.
func WithTLS() MemOption {
	return func(c *memConfig) { c.tls = true }
}

// WithTrace copies the raw protocol of every connection to w (credentials
// included, so only for debugging); w must be safe for concurrent use.
func WithTrace(w io.Writer) MemOption {
	return func(c *memConfig) { c.trace = w }
}

// Mem is go-imap's in-memory IMAP server (imapserver + imapmemserver) on
// loopback TCP, with one account that logs in with LOGIN or AUTHENTICATE
// PLAIN, XOAUTH2 or OAUTHBEARER (the password is the token). Mail delivered
// with Deliver goes through the backend directly, not through IMAP, and
// reaches IDLE sessions as EXISTS at once. Stop/Start keep the mail and the
// ports, like a server restart; Kick, Freeze, SetPassword and the mailbox
// methods make the failures a client must survive.
//
// All methods are safe for concurrent use.
type Mem struct {
	tb      testing.TB
	cfg     memConfig
	backend *imapmemserver.User
	cert    *selfSigned
	caFile  string
	gate    gate
	changes memimap.Changes // fired by every change, for IDLE

	authAttempts atomic.Int64
	authFailures atomic.Int64

	mu       sync.Mutex
	password string
	host     string
	port     int
	tlsPort  int
	srv      *imapserver.Server
	lns      []net.Listener
	conns    map[*trackedConn]struct{}
	peak     int // most connections open at once
	sessions map[*memSession]struct{}
	running  bool
	closed   bool
	logOff   bool // set once the test is over: t.Logf would panic
	serveWG  sync.WaitGroup
}

// StartMem starts a Mem on 127.0.0.1 with INBOX and the WithMailboxes
// mailboxes. It is closed when the test ends.
func StartMem(t testing.TB, opts ...MemOption) *Mem {
	t.Helper()
	cfg := memConfig{username: DefaultUsername, password: DefaultPassword}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.noIdle && cfg.tls {
		t.Fatal("testimap: WithoutIdle cannot be combined with WithTLS")
	}
	m := &Mem{
		tb:       t,
		cfg:      cfg,
		backend:  imapmemserver.NewUser(cfg.username, cfg.password),
		password: cfg.password,
		host:     "127.0.0.1",
		conns:    make(map[*trackedConn]struct{}),
		sessions: make(map[*memSession]struct{}),
	}
	for _, name := range append([]string{"INBOX"}, cfg.mailboxes...) {
		if err := m.backend.Create(name, nil); err != nil {
			t.Fatalf("testimap: create mailbox %q: %v", name, err)
		}
	}
	if cfg.tls {
		cert, err := newSelfSigned()
		if err != nil {
			t.Fatalf("testimap: %v", err)
		}
		dir := t.TempDir()
		certFile, _, err := cert.writeFiles(dir)
		if err != nil {
			t.Fatalf("testimap: %v", err)
		}
		m.cert, m.caFile = cert, certFile
	}
	t.Cleanup(m.Close)
	m.Start(t)
	return m
}

// Addr is the plain (STARTTLS when WithTLS) listener, "127.0.0.1:port".
func (m *Mem) Addr() string { return net.JoinHostPort(m.host, strconv.Itoa(m.Port())) }

// Host is "127.0.0.1".
func (m *Mem) Host() string { return m.host }

// Port is the plain listener's port; it stays the same across Stop/Start.
func (m *Mem) Port() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.port
}

// TLSAddr is the implicit-TLS listener, or "" without WithTLS.
func (m *Mem) TLSAddr() string {
	if p := m.TLSPort(); p != 0 {
		return net.JoinHostPort(m.host, strconv.Itoa(p))
	}
	return ""
}

// TLSPort is the implicit-TLS listener's port, or 0 without WithTLS.
func (m *Mem) TLSPort() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tlsPort
}

// Username is the account's username.
func (m *Mem) Username() string { return m.cfg.username }

// Password is the account's current password (see SetPassword).
func (m *Mem) Password() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.password
}

// SetPassword changes the password from the next login on; sessions already
// logged in stay. XOAUTH2 and OAUTHBEARER accept the password as token.
func (m *Mem) SetPassword(t testing.TB, password string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.password = password
}

// AuthAttempts counts logins tried (LOGIN and AUTHENTICATE), successful or
// not, since start: a client that hammers a wrong password shows here.
func (m *Mem) AuthAttempts() int { return int(m.authAttempts.Load()) }

// AuthFailures counts refused logins since start.
func (m *Mem) AuthFailures() int { return int(m.authFailures.Load()) }

// Cert is the server certificate in PEM (its own CA), or nil without WithTLS.
func (m *Mem) Cert() []byte {
	if m.cert == nil {
		return nil
	}
	return m.cert.CertPEM
}

// CAFile is a PEM file trusting the server certificate (a config's
// ca_file), or "" without WithTLS.
func (m *Mem) CAFile() string { return m.caFile }

// TLSConfig is a client config that trusts only this server, or nil
// without WithTLS.
func (m *Mem) TLSConfig() *tls.Config {
	if m.cert == nil {
		return nil
	}
	return &tls.Config{RootCAs: CertPool(m.cert.CertPEM), ServerName: m.host}
}

// Start (re)starts listening on the same ports after Stop, with the same
// mail. StartMem calls it; calling it while running is a no-op.
func (m *Mem) Start(t testing.TB) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		t.Fatal("testimap: Start on a closed Mem")
	}
	if m.running {
		return
	}
	var tlsConfig *tls.Config
	if m.cert != nil {
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{m.cert.TLS}}
	}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			s := &memSession{Session: memimap.NewSession(&m.changes), m: m, conn: c}
			m.mu.Lock()
			m.sessions[s] = struct{}{}
			m.mu.Unlock()
			return s, nil, nil
		},
		Caps:         memCaps,
		Logger:       memLogger{m},
		TLSConfig:    tlsConfig,
		InsecureAuth: true, // loopback; clients refuse plaintext elsewhere
		DebugWriter:  m.cfg.trace,
	})

	plain, err := m.listen(m.port)
	if err != nil {
		t.Fatalf("testimap: %v", err)
	}
	m.port = plain.Addr().(*net.TCPAddr).Port
	lns := []net.Listener{plain}
	var wrap func(net.Conn) net.Conn
	if m.cfg.noIdle {
		wrap = func(c net.Conn) net.Conn { return newNoIdleConn(c) }
	}
	serve := []net.Listener{m.tracking(plain, wrap)}
	if tlsConfig != nil {
		ln, err := m.listen(m.tlsPort)
		if err != nil {
			plain.Close()
			t.Fatalf("testimap: %v", err)
		}
		m.tlsPort = ln.Addr().(*net.TCPAddr).Port
		lns = append(lns, ln)
		// TLS above the tracked conn, so imapserver sees a *tls.Conn (no
		// STARTTLS offered on it) and Freeze/Kick still reach the socket.
		serve = append(serve, tls.NewListener(m.tracking(ln, nil), tlsConfig))
	}
	m.srv, m.lns, m.running = srv, lns, true
	for _, ln := range serve {
		m.serveWG.Add(1)
		go func() {
			defer m.serveWG.Done()
			if err := srv.Serve(ln); err != nil {
				memLogger{m}.Printf("serve %s: %v", ln.Addr(), err)
			}
		}()
	}
}

// listen binds port on the loopback address (0: any). A port just released
// by Stop can be re-bound at once (Go sets SO_REUSEADDR), but give another
// process's short-lived use of it a moment before failing.
func (m *Mem) listen(port int) (net.Listener, error) {
	addr := net.JoinHostPort(m.host, strconv.Itoa(port))
	deadline := time.Now().Add(3 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || port == 0 || time.Now().After(deadline) {
			if err != nil {
				return nil, fmt.Errorf("listen on %s: %w", addr, err)
			}
			return ln, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (m *Mem) tracking(ln net.Listener, wrap func(net.Conn) net.Conn) net.Listener {
	return &trackingListener{Listener: ln, accepted: func(c net.Conn) net.Conn {
		tc := &trackedConn{Conn: c, gate: &m.gate, done: make(chan struct{}), onClose: m.untrack}
		m.mu.Lock()
		running := m.running
		if running {
			m.conns[tc] = struct{}{}
			m.peak = max(m.peak, len(m.conns))
		}
		m.mu.Unlock()
		if !running {
			tc.Close() // accepted in the instant Stop ran
		}
		if wrap != nil {
			return wrap(tc)
		}
		return tc
	}}
}

// Conns returns how many client connections are open now, and the most
// that were open at once since the server was created.
func (m *Mem) Conns() (now, peak int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.conns), m.peak
}

func (m *Mem) untrack(c *trackedConn) {
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
}

// Stop closes the listeners and drops every connection (the client sees the
// server go away mid-session); mail and ports are kept for Start.
func (m *Mem) Stop(t testing.TB) {
	m.stop()
}

func (m *Mem) stop() {
	m.mu.Lock()
	if !m.running {
		m.mu.Unlock()
		return
	}
	m.running = false
	srv, lns := m.srv, m.lns
	conns := m.connList()
	m.mu.Unlock()

	for _, ln := range lns {
		ln.Close()
	}
	// Our conns first: a frozen conn blocks imapserver's writer, which holds
	// the lock Server.Close needs.
	for _, c := range conns {
		c.Close()
	}
	srv.Close()
	m.serveWG.Wait()
	// Like a process restart, Start brings back a live server.
	m.gate.thaw()
}

func (m *Mem) connList() []*trackedConn {
	l := make([]*trackedConn, 0, len(m.conns))
	for c := range m.conns {
		l = append(l, c)
	}
	return l
}

// Restart is Stop then Start.
func (m *Mem) Restart(t testing.TB) {
	t.Helper()
	m.Stop(t)
	m.Start(t)
}

// Kick drops every open connection without a BYE (like a NAT timeout or a
// server-side kill) and keeps listening.
func (m *Mem) Kick(t testing.TB) { m.KickCount() }

// KickCount is Kick, returning how many connections it dropped.
func (m *Mem) KickCount() int {
	m.mu.Lock()
	conns := m.connList()
	m.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return len(conns)
}

// Freeze makes the server go silent without closing anything: open and new
// connections are neither read nor written until Thaw (TCP still ACKs, so
// only an application-level timeout notices). Stop, Kick and Close still
// work while frozen; Stop also thaws.
func (m *Mem) Freeze(t testing.TB) { m.gate.freeze() }

// Thaw ends Freeze; the server answers what it was sent meanwhile.
func (m *Mem) Thaw(t testing.TB) { m.gate.thaw() }

// Close stops the server for good. It is registered with t.Cleanup.
func (m *Mem) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	m.mu.Unlock()
	m.gate.thaw()
	m.stop()
	m.mu.Lock()
	m.logOff = true
	m.mu.Unlock()
}

// Deliver appends raw to mailbox through the backend (no IMAP connection)
// and returns its UID. Selected and IDLE sessions get EXISTS.
func (m *Mem) Deliver(t testing.TB, mailbox string, raw []byte) uint32 {
	t.Helper()
	data, err := m.backend.Append(mailbox, bytes.NewReader(raw), &imap.AppendOptions{})
	if err != nil {
		t.Fatalf("testimap: deliver to %q: %v", mailbox, err)
	}
	m.changes.Notify()
	return uint32(data.UID)
}

// DeliverMany delivers msgs in order and returns their UIDs.
func (m *Mem) DeliverMany(t testing.TB, mailbox string, msgs [][]byte) []uint32 {
	t.Helper()
	uids := make([]uint32, len(msgs))
	for i, raw := range msgs {
		uids[i] = m.Deliver(t, mailbox, raw)
	}
	return uids
}

// DeliverN delivers n messages built by Msg with subjects "test message 1"
// … "test message n" and returns their UIDs.
func (m *Mem) DeliverN(t testing.TB, mailbox string, n int) []uint32 {
	t.Helper()
	return m.DeliverMany(t, mailbox, testMsgs(n))
}

// CreateMailbox creates an empty mailbox.
func (m *Mem) CreateMailbox(t testing.TB, name string) {
	t.Helper()
	if err := m.backend.Create(name, nil); err != nil {
		t.Fatalf("testimap: create mailbox %q: %v", name, err)
	}
}

// DeleteMailbox deletes a mailbox and its mail. Sessions that have it
// selected get "* BYE" and are disconnected, as Dovecot does.
func (m *Mem) DeleteMailbox(t testing.TB, name string) {
	t.Helper()
	if err := m.backend.Delete(name); err != nil {
		t.Fatalf("testimap: delete mailbox %q: %v", name, err)
	}
	m.byeSelected(name)
}

// RecreateMailbox deletes and re-creates a mailbox: it is empty afterwards
// and has a new UIDVALIDITY, which it returns. Sessions that have it
// selected get "* BYE" and are disconnected, as Dovecot does.
func (m *Mem) RecreateMailbox(t testing.TB, name string) uint32 {
	t.Helper()
	old := m.Status(t, name).UIDValidity
	m.DeleteMailbox(t, name)
	m.CreateMailbox(t, name)
	st := m.Status(t, name)
	if st.UIDValidity == old {
		t.Fatalf("testimap: recreated %q kept UIDVALIDITY %d", name, old)
	}
	return st.UIDValidity
}

// RecreateMailboxQuietly deletes and re-creates a mailbox without telling
// the sessions that have it selected, the way Cyrus (which at most sends
// EXPUNGEs) and Courier do: they stay on the dead mailbox, see none of the
// new one's mail, and only STATUS or a new EXAMINE shows its new
// UIDVALIDITY, which it returns.
func (m *Mem) RecreateMailboxQuietly(t testing.TB, name string) uint32 {
	t.Helper()
	old := m.Status(t, name).UIDValidity
	if err := m.backend.Delete(name); err != nil {
		t.Fatalf("testimap: delete mailbox %q: %v", name, err)
	}
	m.CreateMailbox(t, name)
	st := m.Status(t, name)
	if st.UIDValidity == old {
		t.Fatalf("testimap: recreated %q kept UIDVALIDITY %d", name, old)
	}
	return st.UIDValidity
}

// Status reports a mailbox's message count, UIDNEXT and UIDVALIDITY.
func (m *Mem) Status(t testing.TB, name string) MailboxStatus {
	t.Helper()
	data, err := m.backend.Status(name, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true})
	if err != nil {
		t.Fatalf("testimap: status of %q: %v", name, err)
	}
	return MailboxStatus{Messages: *data.NumMessages, UIDNext: uint32(data.UIDNext), UIDValidity: data.UIDValidity}
}

func (m *Mem) byeSelected(name string) {
	m.mu.Lock()
	var victims []*imapserver.Conn
	for s := range m.sessions {
		if s.selected() == name {
			victims = append(victims, s.conn)
		}
	}
	m.mu.Unlock()
	// Bye writes under the connection's lock, which a frozen or stuck
	// connection holds: wait for the BYEs (so the caller's next step sees
	// them) but not forever.
	var wg sync.WaitGroup
	for _, c := range victims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Bye("IMAP session state is inconsistent, please relogin.")
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

func (m *Mem) checkLogin(username, password string) error {
	m.authAttempts.Add(1)
	m.mu.Lock()
	want := m.password
	m.mu.Unlock()
	if username != m.cfg.username || subtle.ConstantTimeCompare([]byte(password), []byte(want)) != 1 {
		m.authFailures.Add(1)
		return imapserver.ErrAuthFailed
	}
	return nil
}

// memLogger sends imapserver's log lines to the test log while the test
// runs; afterwards (connections still winding down) they are dropped.
type memLogger struct{ m *Mem }

func (l memLogger) Printf(format string, args ...any) {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	if l.m.logOff {
		return
	}
	l.m.tb.Logf("testimap mem: "+format, args...)
}

// memSession is memimap's session (an IDLE that cannot miss a change) with
// our own authentication (changeable password, attempt counters,
// XOAUTH2/OAUTHBEARER) and a record of the selected mailbox for
// DeleteMailbox.
type memSession struct {
	memimap.Session

	m    *Mem
	conn *imapserver.Conn

	mu  sync.Mutex
	sel string
}

var _ imapserver.SessionSASL = (*memSession)(nil)

func (s *memSession) Login(username, password string) error {
	if err := s.m.checkLogin(username, password); err != nil {
		return err
	}
	s.UserSession = imapmemserver.NewUserSession(s.m.backend)
	return nil
}

func (s *memSession) AuthenticateMechanisms() []string {
	return []string{sasl.Plain, "XOAUTH2", sasl.OAuthBearer}
}

func (s *memSession) Authenticate(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				s.m.authAttempts.Add(1)
				s.m.authFailures.Add(1)
				return imapserver.ErrAuthFailed
			}
			return s.Login(username, password)
		}), nil
	case "XOAUTH2", sasl.OAuthBearer:
		return &bearerServer{login: s.Login}, nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported"}
}

func (s *memSession) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	data, err := s.UserSession.Select(name, options)
	s.mu.Lock()
	if err == nil {
		s.sel = name
	} else {
		s.sel = ""
	}
	s.mu.Unlock()
	return data, err
}

func (s *memSession) Unselect() error {
	s.mu.Lock()
	s.sel = ""
	s.mu.Unlock()
	return s.UserSession.Unselect()
}

func (s *memSession) Close() error {
	s.m.mu.Lock()
	delete(s.m.sessions, s)
	s.m.mu.Unlock()
	return s.UserSession.Close()
}

func (s *memSession) selected() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sel
}

// bearerServer is the server side of XOAUTH2 and OAUTHBEARER (RFC 7628):
// both carry "auth=Bearer <token>" in \x01-separated fields, the user in
// "user=" (XOAUTH2) or the GS2 header's "a=" (OAUTHBEARER). On a bad token
// the server sends a JSON error challenge, the client answers it, and only
// then does the server say NO.
type bearerServer struct {
	login  func(username, password string) error
	failed error
}

func (b *bearerServer) Next(resp []byte) ([]byte, bool, error) {
	if b.failed != nil {
		return nil, true, b.failed
	}
	if resp == nil {
		return []byte{}, false, nil // ask for the initial response
	}
	user, token := parseBearer(resp)
	if err := b.login(user, token); err != nil {
		b.failed = err
		return []byte(`{"status":"401","schemes":"bearer","scope":"mail"}`), false, nil
	}
	return nil, true, nil
}

func parseBearer(resp []byte) (user, token string) {
	for i, field := range bytes.Split(resp, []byte{1}) {
		f := string(field)
		switch {
		case i == 0 && len(f) > 2 && f[:2] == "n,":
			// GS2 header "n,a=user," (OAUTHBEARER)
			for _, part := range bytes.Split(field, []byte{','}) {
				if bytes.HasPrefix(part, []byte("a=")) {
					user = string(part[2:])
				}
			}
		case len(f) > 5 && f[:5] == "user=":
			user = f[5:]
		case len(f) > 5 && f[:5] == "auth=":
			v := f[5:]
			if len(v) > 7 && (v[:7] == "Bearer " || v[:7] == "bearer ") {
				token = v[7:]
			}
		}
	}
	return user, token
}

// MailboxStatus is what Status reports about a mailbox.
type MailboxStatus struct {
	Messages    uint32
	UIDNext     uint32
	UIDValidity uint32
}
