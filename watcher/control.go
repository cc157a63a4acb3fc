package watcher

import (
	"time"
)

// Controls and state: what other goroutines may call on a session, and
// how its state is published.

func (s *session) beat() { s.heartbeat.Store(time.Now().UnixNano()) }

func (s *session) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *session) setPaused(p bool) {
	s.mu.Lock()
	s.paused = p
	s.mu.Unlock()
	s.poke()
	s.a.poke() // the shared connection, if it serves this mailbox
}

func (s *session) requestReconnect() {
	s.mu.Lock()
	s.reconnect = true
	s.mu.Unlock()
	s.poke()
	s.a.poke()
}

func (s *session) isPaused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused
}

// takeRequest reports a pending pause or reconnect request as an error that
// makes the connection loop return.
func (s *session) takeRequest() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paused {
		return errPauseRequested
	}
	if s.reconnect {
		s.reconnect = false
		return errReconnectRequested
	}
	return nil
}

func (s *session) snapshot() MailboxStatus {
	s.mu.Lock()
	st := s.status
	st.Paused = s.paused
	s.mu.Unlock()
	st.Heartbeat = time.Unix(0, s.heartbeat.Load())
	contact := &s.contact
	if via := s.contactVia.Load(); via != nil {
		contact = via
	}
	if c := contact.Load(); c != 0 {
		st.LastServerContact = time.Unix(0, c)
	}
	return st
}

func (s *session) setState(state State, err error, next time.Time) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	s.mu.Lock()
	changed := s.status.State != state || s.status.Err != msg || !s.status.NextRetry.Equal(next)
	prev := s.status.State
	s.status.State, s.status.Err, s.status.NextRetry = state, msg, next
	if prev != state {
		s.status.Since = time.Now()
	}
	// Once watching, leaving IDLE (or a poll) to fetch new mail and coming
	// back only brackets a capture, which logs its own INFO line: one line
	// per mail, not three. The first arrival in a watching state, and
	// every other change, stay at INFO.
	bracket := watching(s.logged) && (state == StateSyncing || watching(state))
	if !bracket {
		s.logged = state
	}
	s.mu.Unlock()
	if !changed {
		return
	}
	s.m.metrics.setState(s.id, state)
	s.m.hub.Publish(StateChanged{Mailbox: s.id, State: state, Err: msg, NextRetry: next, At: time.Now()})
	attrs := []any{"state", string(state)}
	if msg != "" {
		attrs = append(attrs, "err", msg)
	}
	if !next.IsZero() {
		attrs = append(attrs, "next_retry", time.Until(next).Round(time.Second).String())
	}
	switch {
	case state == StateAuthFailed, state == StateError, state == StateReconnecting && err != nil:
		s.log.Warn("mailbox state", attrs...)
	case bracket:
		s.log.Debug("mailbox state", attrs...)
	default:
		// Including a reconnect the user asked for: no error, no warning.
		s.log.Info("mailbox state", attrs...)
	}
}

// watching reports whether st is a connected, waiting-for-mail state.
func watching(st State) bool {
	return st == StateIdle || st == StatePolling || st == StateNotify
}
