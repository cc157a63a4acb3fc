// Package sshui serves mailtap's terminal monitor over SSH from the
// running process, the way Charm's own servers do (wish, Bubble Tea
// middleware): `ssh -p 2222 host` gets the same live monitor as the local
// terminal, with its own program, window size and colour profile, while
// capture goes on untouched. It owns the SSH side only: listening, the
// host key (given, or generated once under <out>/.mailtap/), public-key
// authentication from OpenSSH authorized_keys files (reloaded when they
// change; no passwords, no keyboard-interactive), read-only keys, the
// slowing and counting of failed logins, the session cap, commands for
// sessions without a terminal (`status`), and dropping clients that stop
// reading.
//
// Each session is a subscriber like any other: it has its own hub
// subscription (the hub's bounded buffer, tui.EventBuffer events), its own
// tea.Program and a write watchdog. A client that stops reading (a frozen
// terminal, a dead link) leaves unanswered the keepalive sent behind its
// output, and its connection is closed within about 1.25 × WriteTimeout of
// the first output it did not read, however little output that is; a
// write blocked for WriteTimeout (a full SSH window) does the same. Its
// subscription drops old events meanwhile; neither capture nor the other
// sessions wait for it. Closing a session closes only its subscription.
package sshui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	charmlog "charm.land/log/v2"
	"charm.land/ssh"
	"charm.land/wish/v2"
	"charm.land/wish/v2/bubbletea"
	"github.com/prometheus/client_golang/prometheus"
	gossh "golang.org/x/crypto/ssh"

	"mailtap/tui"
	"mailtap/watcher"
)

// Defaults of Options.
const (
	// DefaultMaxSessions caps open sessions (monitor and commands). Each
	// monitor costs a program, a 4096-event subscription and its rows.
	DefaultMaxSessions = 16
	// DefaultWriteTimeout is how long one write to a client may block,
	// and how long output may go unread (a keepalive sent behind it
	// unanswered), before the session is dropped.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultFailureDelay is the delay after an address's second failed
	// attempt; it doubles with each further one, up to 30 s.
	DefaultFailureDelay = time.Second
)

// maxConns caps connections, authenticated or not, so that a flood of
// handshakes cannot exhaust the process.
const maxConns = 64

// Options configure a Server.
type Options struct {
	// Addr is host:port; a port alone (":2222") binds 127.0.0.1.
	Addr string
	// AuthorizedKeys and ReadOnlyKeys are OpenSSH authorized_keys files;
	// at least one is required. A key in both is read-only.
	AuthorizedKeys, ReadOnlyKeys string
	// HostKey is the private key file; empty means StateDir/HostKeyName,
	// generated on first start.
	HostKey  string
	StateDir string

	// Status returns the /api/status JSON for the `status` command.
	Status func() ([]byte, error)
	// TUI is the base of every session's monitor options (Out, Logs,
	// Version …); the session sets its environment, program options and
	// ReadOnly.
	TUI tui.Options

	Registerer prometheus.Registerer // nil: metrics are not registered
	Logger     *slog.Logger          // nil: slog.Default()

	MaxSessions  int           // default DefaultMaxSessions
	WriteTimeout time.Duration // default DefaultWriteTimeout
	FailureDelay time.Duration // default DefaultFailureDelay
}

// Server is the SSH server. New does no I/O; Listen loads the keys and
// binds; Serve serves until its context ends.
type Server struct {
	ctrl    watcher.Controller
	opts    Options
	log     *slog.Logger
	addr    string
	keys    keyring
	limit   *limiter
	metrics *metrics

	sessions chan struct{} // semaphore of open sessions
	conns    chan struct{} // semaphore of open connections
	active   sync.WaitGroup

	monitors sync.Map // ssh.Session → *monitor

	openMu   sync.Mutex
	open     map[*trackedConn]struct{} // closed at shutdown, handshakes included
	shutdown bool                      // no session may enter active any more

	mu          sync.Mutex
	ln          net.Listener
	srv         *ssh.Server
	fingerprint string
	done        chan struct{} // closed when shutdown begins
}

// New checks opts. It fails when Addr is malformed or no key file is given.
func New(ctrl watcher.Controller, opts Options) (*Server, error) {
	if ctrl == nil {
		return nil, errors.New("ssh: no controller")
	}
	addr, err := normalizeAddr(opts.Addr)
	if err != nil {
		return nil, err
	}
	if opts.AuthorizedKeys == "" && opts.ReadOnlyKeys == "" {
		return nil, errors.New("ssh: no key file: set ssh.authorized_keys (MAILTAP_SSH_AUTHORIZED_KEYS) or ssh.read_only_keys")
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.FailureDelay <= 0 {
		opts.FailureDelay = DefaultFailureDelay
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		ctrl: ctrl, opts: opts, log: log, addr: addr,
		limit: newLimiter(opts.FailureDelay), metrics: newMetrics(opts.Registerer),
		sessions: make(chan struct{}, opts.MaxSessions), conns: make(chan struct{}, maxConns),
		done: make(chan struct{}), open: map[*trackedConn]struct{}{},
	}
	if opts.AuthorizedKeys != "" {
		s.keys.full = newKeyFile(opts.AuthorizedKeys, "ssh.authorized_keys", log)
	}
	if opts.ReadOnlyKeys != "" {
		s.keys.readOnly = newKeyFile(opts.ReadOnlyKeys, "ssh.read_only_keys", log)
	}
	return s, nil
}

// enter counts a session in active, unless shutdown has begun (a
// WaitGroup must not grow while Serve waits on it).
func (s *Server) enter() bool {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	if s.shutdown {
		return false
	}
	s.active.Add(1)
	return true
}

// normalizeAddr turns ":2222" into "127.0.0.1:2222", as http.addr does.
func normalizeAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("ssh: address %q: must be host:port or :port, like :2222 or 0.0.0.0:2222", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("ssh: address %q: port must be a number 0..65535", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// Listen loads the key files and the host key (generating it on the first
// start), logs the host key's fingerprint and binds.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	for _, f := range []*keyFile{s.keys.full, s.keys.readOnly} {
		if f != nil {
			if err := f.load(); err != nil {
				return err
			}
		}
	}
	signer, err := loadHostKey(s.opts.HostKey, s.opts.StateDir, s.log)
	if err != nil {
		return err
	}
	srv, err := s.newSSHServer(signer)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("ssh: listen on %s: %w", s.addr, err)
	}
	s.ln, s.srv, s.fingerprint = ln, srv, fingerprint(signer.PublicKey())
	return nil
}

// Addr is the bound address after Listen, else the address to bind.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.addr
}

// HostKeyFingerprint is the host key's SHA256 fingerprint after Listen.
func (s *Server) HostKeyFingerprint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fingerprint
}

// Serve serves until ctx ends (binding first if Listen was not called),
// then closes every connection and returns nil once every session has
// ended. Call it once.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	ln, srv := s.ln, s.srv
	s.mu.Unlock()
	s.log.Info("ssh server listening", "addr", ln.Addr().String(), "host_key", s.fingerprint,
		"authorized_keys", s.opts.AuthorizedKeys, "read_only_keys", s.opts.ReadOnlyKeys, "max_sessions", s.opts.MaxSessions)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var err error
	select {
	case err = <-served:
		err = fmt.Errorf("ssh server: %w", err)
	case <-ctx.Done():
	}
	close(s.done)
	s.openMu.Lock()
	s.shutdown = true
	s.openMu.Unlock()
	// Sessions are views: closing them at once loses nothing. srv.Close
	// closes authenticated connections; the rest (handshakes, delayed
	// failures) are closed here.
	srv.Close()
	s.openMu.Lock()
	for c := range s.open {
		c.Conn.Close()
	}
	s.openMu.Unlock()
	if err == nil {
		<-served
	}
	s.active.Wait()
	return err
}

func (s *Server) newSSHServer(signer gossh.Signer) (*ssh.Server, error) {
	// wish's Bubble Tea middleware logs through charm's log package; send
	// that to our logger instead of the process's stderr, which belongs
	// to the local TUI or to the structured log.
	charmlog.SetDefault(charmlog.NewWithOptions(slogWriter{s.log}, charmlog.Options{}))

	return wish.NewServer(
		wish.WithAddress(s.addr),
		wish.WithVersion("mailtap"),
		func(srv *ssh.Server) error {
			srv.AddHostKey(signer)
			srv.PublicKeyHandler = s.publicKey
			srv.ServerConfigCallback = s.serverConfig
			srv.ConnCallback = s.wrapConn
			srv.HandshakeTimeout = 2 * time.Minute
			// Only sessions: no port forwarding, no agent forwarding, no
			// subsystems (sftp).
			srv.ChannelHandlers = map[string]ssh.ChannelHandler{"session": ssh.DefaultSessionHandler}
			srv.SubsystemHandlers = map[string]ssh.SubsystemHandler{}
			srv.RequestHandlers = map[string]ssh.RequestHandler{}
			return nil
		},
		// The last middleware runs first: sessionMiddleware decides, the
		// Bubble Tea middleware runs the monitor.
		wish.WithMiddleware(
			bubbletea.MiddlewareWithProgramHandler(s.program),
			s.sessionMiddleware,
		),
	)
}

// serverConfig is the per-connection SSH config: it logs every
// authentication attempt and slows the failed ones.
func (s *Server) serverConfig(ctx ssh.Context) *gossh.ServerConfig {
	a := &attempt{}
	ctx.SetValue(attemptKey{}, a)
	return &gossh.ServerConfig{
		MaxAuthTries: 6,
		AuthLogCallback: func(md gossh.ConnMetadata, method string, err error) {
			a.note(md.User(), method, err)
			ip := hostOf(md.RemoteAddr())
			if err == nil {
				s.limit.succeed(ip)
				return
			}
			if method == "none" {
				return // every client asks first which methods there are
			}
			if d := s.limit.fail(ip); d > 0 {
				sleep(ctx, s.done, d)
			}
		},
	}
}

type attemptKey struct{}

// publicKey accepts a key listed in either file.
func (s *Server) publicKey(ctx ssh.Context, key ssh.PublicKey) bool {
	if s.keys.role(key) != roleNone {
		return true
	}
	if a, ok := ctx.Value(attemptKey{}).(*attempt); ok {
		a.refusedKey(fingerprint(key))
	}
	return false
}

// wrapConn caps connections and reports, when a connection closes, a
// failed authentication: one that tried and never got in.
func (s *Server) wrapConn(ctx ssh.Context, c net.Conn) net.Conn {
	select {
	case s.conns <- struct{}{}:
	default:
		s.log.Warn("ssh: too many connections; refusing one", "remote", c.RemoteAddr().String(), "max", maxConns)
		return nil
	}
	tc := &trackedConn{Conn: c}
	s.openMu.Lock()
	s.open[tc] = struct{}{}
	s.openMu.Unlock()
	tc.onClose = func() {
		s.openMu.Lock()
		delete(s.open, tc)
		s.openMu.Unlock()
		<-s.conns
		a, ok := ctx.Value(attemptKey{}).(*attempt)
		if !ok {
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.ok || len(a.methods) == 0 {
			return // authenticated, or never tried (a port scan, a host key mismatch)
		}
		s.metrics.authFailures.Inc()
		ip := hostOf(c.RemoteAddr())
		if !containsOtherThanNone(a.methods) {
			// The client gave up on seeing "publickey" only (a password-only
			// client): a failure too, counted towards the delay.
			s.limit.fail(ip)
		}
		fps := "none offered"
		if len(a.fingerprints) > 0 {
			fps = strings.Join(a.fingerprints, ",")
		}
		s.log.Warn("ssh: authentication failed", "remote", c.RemoteAddr().String(), "user", a.user,
			"methods", strings.Join(a.methods, ","), "keys", fps, "recent_failures", s.limit.failures(ip))
	}
	return tc
}

func containsOtherThanNone(methods []string) bool {
	for _, m := range methods {
		if m != "none" {
			return true
		}
	}
	return false
}

// trackedConn runs onClose once, on the first Close.
type trackedConn struct {
	net.Conn
	once    sync.Once
	onClose func()
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.onClose)
	return err
}

// slogWriter turns charm log lines into debug records.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug("ssh: " + strings.TrimSpace(string(p)))
	return len(p), nil
}

var _ io.Writer = slogWriter{}
