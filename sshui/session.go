package sshui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"
	"charm.land/wish/v2/bubbletea"
	gossh "golang.org/x/crypto/ssh"

	"mailtap/tui"
	"mailtap/watcher"
)

// Exit statuses of sessions.
const (
	exitOK    = 0
	exitError = 1 // refused: too many sessions, key no longer listed
	exitUsage = 2 // unknown command, no terminal
)

// commands are what a session without the monitor may run.
const commandList = "status"

// monitor is one session's monitor: what the Bubble Tea middleware's
// program handler needs, kept by the session middleware (in
// Server.monitors: an SSH context belongs to the connection, which may
// carry several sessions), which also cleans it up.
type monitor struct {
	ctx    context.Context
	cancel context.CancelFunc
	ctrl   watcher.Controller
	sub    *watcher.Subscription
	opts   tui.Options
	wait   func() // the program's feed goroutines; nil until the program exists
}

// sessionMiddleware runs first for every session: it checks the key
// (again: the file may have changed since login) and the session cap,
// runs commands, and for a terminal sets up the monitor that the Bubble
// Tea middleware (next) runs, then tears it down.
func (s *Server) sessionMiddleware(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		if !s.enter() {
			return // shutting down
		}
		defer s.active.Done()
		remote := sess.RemoteAddr().String()
		r := s.keys.role(sess.PublicKey())
		if r == roleNone {
			s.log.Warn("ssh: session refused: key no longer listed", "remote", remote, "key", fingerprint(sess.PublicKey()))
			fmt.Fprintln(sess.Stderr(), "mailtap: this key is no longer authorized")
			sess.Exit(exitError)
			return
		}
		select {
		case s.sessions <- struct{}{}:
			defer func() { <-s.sessions }()
		default:
			s.log.Warn("ssh: session refused: too many sessions", "remote", remote, "max", s.opts.MaxSessions)
			fmt.Fprintf(sess.Stderr(), "mailtap: too many SSH sessions (%d open); try again later\n", s.opts.MaxSessions)
			sess.Exit(exitError)
			return
		}
		s.metrics.sessions.Inc()
		defer s.metrics.sessions.Dec()
		log := s.log.With("remote", remote, "user", sess.User(), "key", fingerprint(sess.PublicKey()), "access", r.String())

		if cmd := sess.Command(); len(cmd) > 0 {
			code := s.command(sess, cmd)
			log.Info("ssh: command", "command", strings.Join(cmd, " "), "exit", code)
			sess.Exit(code)
			return
		}
		pty, winch, isPty := sess.Pty()
		if !isPty {
			fmt.Fprintf(sess.Stderr(), "mailtap: no terminal: use ssh -t for the monitor, or run a command (%s)\n", commandList)
			sess.Exit(exitUsage)
			return
		}

		ctx, cancel := context.WithCancel(sess.Context())
		defer cancel()
		ctrl := s.ctrl
		if r == roleReadOnly {
			ctrl = readOnlyController{Controller: s.ctrl, refused: func(verb, id string) {
				log.Warn("ssh: control refused to a read-only key", "action", verb, "mailbox", id)
			}}
		}
		// Subscribed before the program asks for its first snapshot.
		sub := s.ctrl.Subscribe(tui.EventBuffer)
		defer sub.Close()

		conn, _ := sess.Context().Value(ssh.ContextKeyConn).(*gossh.ServerConn)
		var probe func() error
		if conn != nil {
			probe = func() error { return keepalive(conn) }
		}
		out := newWatchdogWriter(sess, s.opts.WriteTimeout, probe, func() {
			s.metrics.dropped.Inc()
			log.Warn("ssh: session dropped: the client stopped reading", "write_timeout", s.opts.WriteTimeout)
			cancel()
			// The stuck write only returns when the connection goes.
			if conn != nil {
				conn.Close()
			}
		})
		defer out.Close()
		defer cancel()

		opts := s.opts.TUI
		opts.ReadOnly = r == roleReadOnly
		opts.ApplyEnv(sessionEnv(sess))
		// wish's options: input from the session, its window size, the
		// colour profile from its TERM and COLORTERM; then ours: output
		// through the watchdog, and no signal handling (the process's
		// signals are not this session's).
		opts.ProgramOptions = append(bubbletea.MakeOptions(sess), tea.WithOutput(out), tea.WithoutSignalHandler())
		if pty.Window.Width <= 0 || pty.Window.Height <= 0 {
			// RFC 4254 says to ignore zero dimensions (ssh -tt from a
			// pipe sends them): assume the classic terminal until the
			// client tells us better.
			opts.ProgramOptions = append(opts.ProgramOptions, tea.WithWindowSize(80, 24))
		}
		m := &monitor{ctx: ctx, cancel: cancel, ctrl: ctrl, sub: sub, opts: opts}
		s.monitors.Store(sess, m)
		defer s.monitors.Delete(sess)

		log.Info("ssh: session opened", "term", pty.Term, "width", pty.Window.Width, "height", pty.Window.Height)
		start := time.Now()
		next(sess)
		// wish's resize goroutine has ended with the program. Window
		// changes the client still sends must be taken, or the SSH
		// library's loop for this connection blocks delivering them, and
		// with it the close that ends a stuck write (see watchdogWriter).
		drained := make(chan struct{})
		var draining sync.WaitGroup
		draining.Go(func() {
			for {
				select {
				case <-winch:
				case <-drained:
					return
				}
			}
		})
		cancel()
		sub.Close()
		if m.wait != nil {
			m.wait()
		}
		out.Close()
		close(drained)
		draining.Wait()
		log.Info("ssh: session closed", "duration", time.Since(start).Round(time.Millisecond))
	}
}

// program is the Bubble Tea middleware's program handler: the monitor
// prepared by sessionMiddleware, on this session's subscription.
func (s *Server) program(sess ssh.Session) *tea.Program {
	v, ok := s.monitors.Load(sess)
	if !ok {
		return nil
	}
	m := v.(*monitor)
	p, wait := tui.NewProgram(m.ctx, m.ctrl, m.sub, m.opts)
	m.wait = wait
	return p
}

// command runs a session's command and returns its exit status.
func (s *Server) command(sess ssh.Session, cmd []string) int {
	switch {
	case len(cmd) == 1 && cmd[0] == "status":
		if s.opts.Status == nil {
			fmt.Fprintln(sess.Stderr(), "mailtap: status is not available")
			return exitError
		}
		b, err := s.opts.Status()
		if err != nil {
			fmt.Fprintln(sess.Stderr(), "mailtap: status:", err)
			return exitError
		}
		if _, err := sess.Write(b); err != nil {
			return exitError
		}
		return exitOK
	default:
		fmt.Fprintf(sess.Stderr(), "mailtap: unknown command %q (commands: %s; no command for the monitor)\n",
			strings.Join(cmd, " "), commandList)
		return exitUsage
	}
}

// sessionEnv looks variables up in the environment the client sent
// (OpenSSH sends LANG and LC_* with Debian's default SendEnv). A client
// that sent no locale is taken to be UTF-8, as nearly every terminal
// that runs ssh today is; LANG=C still selects ASCII.
func sessionEnv(sess ssh.Session) func(string) string {
	env := map[string]string{}
	for _, kv := range sess.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	if env["LC_ALL"] == "" && env["LC_CTYPE"] == "" && env["LANG"] == "" {
		env["LANG"] = "C.UTF-8"
	}
	return func(k string) string { return env[k] }
}

// ErrReadOnly is what a read-only session's controller answers.
var ErrReadOnly = errors.New("read-only session: pause, resume and reconnect are disabled")

// readOnlyController is a read-only session's controller: it reads
// through, and refuses every control without passing it on.
type readOnlyController struct {
	watcher.Controller
	refused func(verb, id string)
}

func (c readOnlyController) Pause(id string) error  { c.refused("pause", id); return ErrReadOnly }
func (c readOnlyController) Resume(id string) error { c.refused("resume", id); return ErrReadOnly }
func (c readOnlyController) Reconnect(id string) error {
	c.refused("reconnect", id)
	return ErrReadOnly
}

// keepalive asks the client for a reply (OpenSSH's own keepalive, which
// every client answers, if only with a failure: RFC 4254 section 4) and
// waits for it. The reply comes once the client has read everything sent
// before the request.
func keepalive(c *gossh.ServerConn) error {
	_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
	return err
}

// watchdogWriter is a session's output, and the judge of whether its
// client still reads. Two things drop a session, both after the timeout:
//
//   - A write that has not finished. The writes themselves happen on a
//     pump goroutine, so that Write can give up: a write that has not
//     finished within the timeout fails, as does every later one, and
//     stall runs once. That matters beyond this session: while the
//     program's renderer is stuck in a write it holds a lock its event
//     loop needs, the event loop then stops taking window-change
//     messages, and the SSH library's connection loop, which delivers
//     those, stops reading the connection, so that even closing it would
//     not end the write. A write that fails frees that chain; closing the
//     connection then ends the pump.
//   - Output the client has not read. A write only blocks once the
//     client's SSH window (2 MB for OpenSSH and Go) and the TCP buffers
//     are full, which a quiet monitor takes minutes to fill, and a client
//     that reads slowly may never; so after output, a probe (keepalive)
//     goes out behind it, at most one per timeout/4, and a probe not
//     answered within the timeout is a client that stopped reading. A
//     frozen client or a dead link is therefore dropped within about
//     1.25 × the timeout of the first output it did not read, however
//     little output there is.
type watchdogWriter struct {
	w       io.Writer
	timeout time.Duration
	probe   func() error // nil: writes alone are watched
	stall   func()

	in        chan []byte
	out       chan writeResult
	wrote     chan struct{} // 1 slot: output since the last probe
	dead      chan struct{} // closed on a stall or Close
	closeOnce sync.Once
	wg        sync.WaitGroup
}

type writeResult struct {
	n   int
	err error
}

// errStalled is returned by writes after the client stopped reading.
var errStalled = errors.New("ssh: the client stopped reading")

func newWatchdogWriter(w io.Writer, timeout time.Duration, probe func() error, stall func()) *watchdogWriter {
	ww := &watchdogWriter{w: w, timeout: timeout, probe: probe, stall: stall,
		in: make(chan []byte), out: make(chan writeResult), wrote: make(chan struct{}, 1), dead: make(chan struct{})}
	ww.wg.Go(ww.pump)
	if probe != nil {
		ww.wg.Go(ww.prober)
	}
	return ww
}

func (w *watchdogWriter) pump() {
	for {
		select {
		case p := <-w.in:
			n, err := w.w.Write(p)
			if n > 0 {
				select {
				case w.wrote <- struct{}{}:
				default: // a probe is due already
				}
			}
			select {
			case w.out <- writeResult{n, err}:
			case <-w.dead:
				return
			}
		case <-w.dead:
			return
		}
	}
}

// prober sends a probe after output, waits for its answer at most the
// timeout, and paces the next one.
func (w *watchdogWriter) prober() {
	pace := w.timeout / 4
	for {
		select {
		case <-w.wrote:
		case <-w.dead:
			return
		}
		// The SSH library's request cannot be cancelled or given a
		// deadline; it returns when the answer comes or the connection
		// ends (which a stall brings about), so it runs on its own and
		// may outlive this writer by that long.
		answered := make(chan error, 1)
		go func() { answered <- w.probe() }()
		t := time.NewTimer(w.timeout)
		select {
		case err := <-answered:
			t.Stop()
			if err != nil {
				return // the connection is gone; writes fail on their own
			}
		case <-t.C:
			w.fail(true)
			return
		case <-w.dead:
			t.Stop()
			return
		}
		t = time.NewTimer(pace)
		select {
		case <-t.C:
		case <-w.dead:
			t.Stop()
			return
		}
	}
}
func (w *watchdogWriter) Write(p []byte) (int, error) {
	select {
	case <-w.dead:
		return 0, errStalled
	default:
	}
	t := time.NewTimer(w.timeout)
	defer t.Stop()
	// A copy: after a timeout the pump may still hold it, and Write must
	// not keep the caller's buffer.
	buf := append([]byte(nil), p...)
	select {
	case w.in <- buf:
	case <-t.C:
		w.fail(true)
		return 0, errStalled
	case <-w.dead:
		return 0, errStalled
	}
	select {
	case r := <-w.out:
		return r.n, r.err
	case <-t.C:
		w.fail(true)
		return 0, errStalled
	case <-w.dead:
		return 0, errStalled
	}
}

func (w *watchdogWriter) fail(stalled bool) {
	w.closeOnce.Do(func() {
		close(w.dead)
		if stalled && w.stall != nil {
			w.stall()
		}
	})
}

// Close fails later writes and waits for the pump, which a write stuck in
// the SSH library holds until the connection ends, and for the prober.
func (w *watchdogWriter) Close() error {
	w.fail(false)
	w.wg.Wait()
	return nil
}
