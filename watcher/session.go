package watcher

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"mailtap/config"
)

// Internal reasons for leaving a connection; never shown to users.
var (
	errPauseRequested     = errors.New("pause requested")
	errReconnectRequested = errors.New("reconnect requested")
	errConnectionLost     = errors.New("connection lost")
	// errSecretSource marks a password source that failed at login.
	errSecretSource = errors.New("cannot read the password")
)

// localError marks failures on this machine rather than on the network:
// writing the output dir (disk full, permissions). State "error", retried
// with backoff, checkpoint untouched.
type localError struct{ err error }

func (e localError) Error() string { return e.err.Error() }

func (e localError) Unwrap() error { return e.err }

// heartbeatEvery is how often a waiting session proves it is alive.
// Each wake-up costs the scheduler (at 1,000 mailboxes, 5 s made most of
// the idle CPU), and /healthz allows 2 × response_timeout + 4 beats.
const heartbeatEvery = 15 * time.Second

// authRetryMin is the first delay after a refused login; it doubles up to
// authRetryMax. Far slower than network backoff: a wrong password retried
// quickly gets accounts locked.
var (
	authRetryMin = time.Minute
	authRetryMax = 30 * time.Minute
)

// session watches one mailbox. Its Run goroutine is the only one that
// touches its IMAP client; other goroutines talk to it through the control
// flags and the wake channel.
type session struct {
	id    MailboxID
	acct  *config.Account
	watch *config.Watch
	m     *Manager
	a     *account
	log   *slog.Logger

	wake    chan struct{} // 1-slot: controls changed
	newMail chan struct{} // 1-slot: server reported EXISTS
	emptied chan struct{} // 1-slot: EXPUNGEs left the mailbox empty

	mu        sync.Mutex
	paused    bool
	reconnect bool
	status    MailboxStatus
	notifyAt  time.Time // first unserved EXISTS notification, for latency
	logged    State     // the last state logged above DEBUG

	heartbeat atomic.Int64 // unix nanos
	contact   atomic.Int64 // unix nanos of the last byte from the server; 0 never
	// contactVia, when set, is the shared connection's contact time,
	// which stands for this mailbox's while that connection serves it.
	contactVia atomic.Pointer[atomic.Int64]
	// explainedShared is a UIDNEXT whose gap above the checkpoint is
	// expunged mail, so the shared connection does not EXAMINE again
	// until it moves; the shared connection's goroutine only.
	explainedShared uint32
	exists          atomic.Int64 // messages in the selected mailbox, per EXISTS/EXPUNGE
	idleMiss        int          // refreshes that found mail IDLE never announced; session goroutine only
	idlePush        int          // pushes IDLE did deliver; session goroutine only
}

func newSession(m *Manager, a *account, mailbox string) *session {
	acct := a.cfg
	s := &session{
		id: MailboxID{Account: acct.Name, Mailbox: mailbox}, acct: acct, watch: &m.cfg.Watch, m: m, a: a,
		wake: make(chan struct{}, 1), newMail: make(chan struct{}, 1), emptied: make(chan struct{}, 1),
	}
	s.log = m.log.With("account", acct.Name, "mailbox", mailbox)
	s.status = MailboxStatus{Mailbox: s.id, State: StateStopped, Since: time.Now()}
	if st, ok := m.store.State(acct.Name, mailbox); ok {
		s.status.UIDValidity, s.status.LastUID = st.UIDValidity, st.LastUID
	}
	s.beat()
	return s
}

// run is the session's life: connect, watch, and on failure wait and
// reconnect, until ctx ends. In once mode it returns after one catch-up.
func (s *session) run(ctx context.Context) error {
	net := newBackoff(time.Second, s.watch.MaxBackoff.Duration)
	auth := newBackoff(authRetryMin, authRetryMax)
	busy := newBackoff(busyRetryMin, busyRetryMax)
	for {
		if ctx.Err() != nil {
			s.setState(StateStopped, nil, time.Time{})
			return nil
		}
		if s.isPaused() {
			s.setState(StatePaused, nil, time.Time{})
			if !s.waitResume(ctx) {
				continue
			}
		}
		err := s.connectAndWatch(ctx, func() { net.reset(); auth.reset(); busy.reset() })
		if ctx.Err() != nil {
			s.setState(StateStopped, nil, time.Time{})
			return nil
		}
		if s.m.once {
			if err != nil {
				s.setState(StateError, err, time.Time{})
			} else {
				s.setState(StateStopped, nil, time.Time{})
			}
			return err
		}
		var se localError
		var delay time.Duration
		var state State
		switch {
		case errors.Is(err, errPauseRequested):
			continue
		case errors.Is(err, errMailboxReplaced):
			// Not a failure: EXAMINE again at once and capture the new
			// mailbox. The backoff was reset when the connection came up,
			// so a server that keeps saying so is still not hammered.
			state, delay = StateReconnecting, net.next()
		case errors.Is(err, errReconnectRequested):
			net.reset()
			s.m.metrics.reconnect(s.id)
			s.setState(StateReconnecting, nil, time.Now())
			continue
		case errors.Is(err, ErrServerBusy): // a budget signal, not a wrong password
			s.a.budget.refused(s.m.clock.Now())
			state, delay = StateReconnecting, busy.next()
		case errors.Is(err, ErrAuth), errors.Is(err, errSecretSource):
			s.m.metrics.authFailure(s.id)
			state, delay = StateAuthFailed, auth.next()
		case errors.As(err, &se), errors.Is(err, ErrMailboxNotFound):
			state, delay = StateError, net.next()
		default:
			state, delay = StateReconnecting, net.next()
		}
		s.mu.Lock()
		s.status.Errors++
		s.mu.Unlock()
		next := s.m.clock.Now().Add(delay)
		s.setState(state, err, next)
		switch s.sleep(ctx, delay) {
		case wokeReconnect:
			// Reconnect means now, and a fresh start: the backoff built up
			// by the failures so far must not lengthen the next wait.
			net.reset()
			auth.reset()
			s.setState(StateReconnecting, nil, s.m.clock.Now())
			continue
		case wokePause, wokeCancelled:
			continue
		}
		s.m.metrics.reconnect(s.id)
	}
}

// wakeReason is why a wait between attempts ended.
type wakeReason int

const (
	wokeTimer wakeReason = iota
	wokeReconnect
	wokePause
	wokeCancelled
)

// sleep waits d on the session's clock, ending early if ctx ends or a
// control arrives (a Reconnect skips the remaining backoff, a Pause takes
// effect at once).
func (s *session) sleep(ctx context.Context, d time.Duration) wakeReason {
	t := s.m.clock.NewTimer(d)
	defer t.Stop()
	hb := time.NewTicker(heartbeatEvery)
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			return wokeCancelled
		case <-t.C():
			s.beat()
			return wokeTimer
		case <-hb.C:
			s.beat()
		case <-s.wake:
			s.beat()
			s.mu.Lock()
			reconnect, paused := s.reconnect, s.paused
			s.reconnect = false
			s.mu.Unlock()
			switch {
			case paused:
				return wokePause
			case reconnect:
				return wokeReconnect
			}
		}
	}
}

// waitResume blocks while paused; false if ctx ended.
func (s *session) waitResume(ctx context.Context) bool {
	hb := time.NewTicker(heartbeatEvery)
	defer hb.Stop()
	for s.isPaused() {
		select {
		case <-ctx.Done():
			return false
		case <-hb.C:
			s.beat()
		case <-s.wake:
			s.beat()
		}
	}
	s.mu.Lock()
	s.reconnect = false
	s.mu.Unlock()
	return true
}
