// Package demo is the embedded IMAP server behind `mailtap --demo`: go-imap's
// in-memory server on loopback with one account ("demo" and a password made
// up per run) and two mailboxes, fed by a generator that delivers a
// realistic, sometimes malformed, message every few seconds. It lets a new
// user see mailtap work without an account, and gives every screen real
// data to draw.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"mailtap/internal/memimap"
)

// Username is the demo account's login.
const Username = "demo"

// Mailboxes the demo server offers; list mail goes to the second.
var mailboxes = []string{"INBOX", "Lists/golang"}

// Options configures Start. The zero value is a good demo.
type Options struct {
	// Addr to listen on; default "127.0.0.1:0" (a free loopback port).
	Addr string
	// Interval is the mean time between new messages (default 3s); each
	// wait is jittered to between half and one and a half of it.
	Interval time.Duration
	// Seed makes the messages and their timing reproducible; 0 picks a
	// random seed.
	Seed uint64
	// Initial is how many messages are in the mailboxes at start,
	// back-dated over the last hours (default 5; negative for none).
	Initial int
	// Logger receives the IMAP server's errors (at debug level: they are
	// mostly clients going away); nil discards them. The server never
	// writes to stderr, which belongs to the TUI.
	Logger *slog.Logger
	// Now is the clock for Date headers; nil is time.Now.
	Now func() time.Time
}

// Server is a running demo server. Its methods are safe for concurrent use.
type Server struct {
	addr      *net.TCPAddr
	password  string
	user      *imapmemserver.User
	srv       *imapserver.Server
	changes   memimap.Changes
	delivered atomic.Int64
	logger    *slog.Logger

	// uvBase is added to every UIDVALIDITY the server reports, so each
	// start has fresh ones (see uidvalidity.go).
	uvBase uint32

	cancel    context.CancelFunc
	genDone   chan struct{}
	serveDone chan struct{}
	closeOnce sync.Once
}

// Start listens, seeds the mailboxes and starts the generator, which runs
// until ctx is cancelled or Close is called. The IMAP server itself keeps
// serving until Close, so clients shutting down with ctx see no errors.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Interval <= 0 {
		opts.Interval = 3 * time.Second
	}
	if opts.Initial == 0 {
		opts.Initial = 5
	}
	if opts.Seed == 0 {
		opts.Seed = mrand.Uint64() | 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	password, err := newPassword()
	if err != nil {
		return nil, err
	}
	s := &Server{
		password:  password,
		logger:    logger,
		user:      imapmemserver.NewUser(Username, password),
		uvBase:    freshUIDValidityBase(),
		genDone:   make(chan struct{}),
		serveDone: make(chan struct{}),
	}
	for _, name := range mailboxes {
		if err := s.user.Create(name, nil); err != nil {
			return nil, fmt.Errorf("create mailbox %q: %w", name, err)
		}
	}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("demo server: listen on %s: %w", opts.Addr, err)
	}
	s.addr = ln.Addr().(*net.TCPAddr)
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &session{Session: memimap.NewSession(&s.changes), s: s}, nil, nil
		},
		Caps: imap.CapSet{
			imap.CapIMAP4rev1: {}, imap.CapNamespace: {}, imap.CapUIDPlus: {},
			// No MOVE and no LIST-STATUS: their UIDVALIDITYs are written
			// where the session cannot add uvBase (uidvalidity.go).
			imap.CapESearch: {}, imap.CapLiteralPlus: {},
			imap.CapStatusSize: {},
		},
		Logger: slogPrintf{logger},
		// Plain IMAP, on loopback unless opts.Addr says otherwise, with a
		// throwaway account holding generated mail.
		InsecureAuth: true,
	})
	go func() {
		defer close(s.serveDone)
		if err := s.srv.Serve(ln); err != nil {
			logger.Debug("demo imap server stopped", "err", err)
		}
	}()

	gen := NewGenerator(opts.Seed)
	now := opts.Now()
	// Seed the mailboxes with mail from the last few hours, oldest first.
	for i := opts.Initial; i > 0; i-- {
		s.deliver(gen.Next(now.Add(-time.Duration(i) * 47 * time.Minute)))
	}

	genCtx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	jitter := mrand.New(mrand.NewPCG(opts.Seed, 1))
	go func() {
		defer close(s.genDone)
		timer := time.NewTimer(jittered(jitter, opts.Interval))
		defer timer.Stop()
		for {
			select {
			case <-genCtx.Done():
				return
			case <-timer.C:
				s.deliver(gen.Next(opts.Now()))
				timer.Reset(jittered(jitter, opts.Interval))
			}
		}
	}()
	return s, nil
}

func jittered(rng *mrand.Rand, d time.Duration) time.Duration {
	return d/2 + time.Duration(rng.Int64N(int64(d)+1))
}

func newPassword() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate demo password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// deliver appends m through the backend (no IMAP connection) and wakes
// IDLE sessions.
func (s *Server) deliver(m Message) {
	_, err := s.user.Append(m.Mailbox, bytes.NewReader(m.Raw), &imap.AppendOptions{Time: m.Date})
	if err != nil {
		// Only a missing mailbox fails, and ours are fixed.
		s.logger.Error("demo: deliver", "mailbox", m.Mailbox, "err", err)
		return
	}
	s.delivered.Add(1)
	s.changes.Notify()
}

// Addr is the listening address, e.g. "127.0.0.1:41234".
func (s *Server) Addr() string { return s.addr.String() }

// Host is the listening IP.
func (s *Server) Host() string { return s.addr.IP.String() }

// Port is the listening port.
func (s *Server) Port() int { return s.addr.Port }

// Username is "demo".
func (s *Server) Username() string { return Username }

// Password is this run's password.
func (s *Server) Password() string { return s.password }

// Mailboxes are the mailboxes that receive mail: INBOX and Lists/golang.
func (s *Server) Mailboxes() []string { return append([]string(nil), mailboxes...) }

// Delivered counts the messages delivered so far, seeds included.
func (s *Server) Delivered() int { return int(s.delivered.Load()) }

// Close stops the generator, closes the listener and every connection, and
// waits for the server's goroutines. It is safe to call more than once.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.cancel()
		<-s.genDone
		if cerr := s.srv.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = fmt.Errorf("close demo server: %w", cerr)
		}
		<-s.serveDone
	})
	return err
}

// session is memimap's session (an IDLE that cannot miss a delivery) with
// the demo login.
type session struct {
	memimap.Session
	s *Server
}

func (sess *session) Login(username, password string) error {
	if username != Username || subtle.ConstantTimeCompare([]byte(password), []byte(sess.s.password)) != 1 {
		return imapserver.ErrAuthFailed
	}
	sess.UserSession = imapmemserver.NewUserSession(sess.s.user)
	return nil
}

// slogPrintf adapts imapserver's Printf logger to slog.
type slogPrintf struct{ l *slog.Logger }

func (p slogPrintf) Printf(format string, args ...any) {
	p.l.Debug("demo imap server: " + fmt.Sprintf(format, args...))
}
