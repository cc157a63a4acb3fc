// Package memimap owns what makes an IMAP server built on go-imap's
// in-memory backend (imapserver + imapmemserver) never miss a change in
// IDLE: Changes, a broadcast fired by every change of the store, and
// Session, an imapmemserver.UserSession whose Idle waits on it. The demo
// server (package demo) and the test server (testimap.Mem) both embed
// Session in their own session type, which adds Login.
//
// It exists because of go-imap v2.0.0-beta.8: imapmemserver's Idle is
// imapserver.SessionTracker.Idle, which only writes updates queued after
// its goroutine has registered for them, while imapserver sends
// "+ idling" before it starts that goroutine. Mail delivered right after
// the client saw "+ idling" is then announced only with the next change,
// which may never come: a lost wake-up, seen as a flaky test or a demo
// that stalls.
package memimap

import (
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// Changes wakes every idling Session once per change of the store. The
// mailbox-changing commands of Session fire it themselves; whoever changes
// the store behind the sessions' back (an imapmemserver.User.Append that
// delivers mail) calls Notify afterwards.
//
// The zero value is ready to use. Its methods are safe for concurrent use;
// it must not be copied after first use.
type Changes struct {
	mu sync.Mutex
	ch chan struct{} // closed by the next Notify; nil while nobody waits
}

// next returns a channel that the next Notify closes.
func (c *Changes) next() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

// Notify wakes every Session idling now. It never blocks.
func (c *Changes) Notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
}

// Session is imapmemserver's UserSession with an Idle that cannot miss a
// change, and with the commands that change a mailbox (APPEND, EXPUNGE,
// FETCH, STORE, COPY, MOVE) firing Changes, so that other sessions' IDLE
// hears of them too.
//
// imapserver.Session also needs Login, which Session leaves to the type
// that embeds it (by value): on success, that Login sets UserSession.
type Session struct {
	// UserSession is nil until login. Before it, imapserver calls only
	// Login, Authenticate and Close, and UserSession.Close is nil-safe.
	*imapmemserver.UserSession

	changes *Changes
}

// NewSession returns a Session that is not logged in yet and reports to,
// and idles on, changes, which must not be nil.
func NewSession(changes *Changes) Session {
	return Session{changes: changes}
}

// Idle replaces UserSession.Idle (see the package doc). It takes the
// broadcast channel before each Poll, so a change made at any moment, even
// before this goroutine started, either is seen by that Poll or closes the
// channel and causes another one.
func (s *Session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	for {
		changed := s.changes.next()
		if err := s.UserSession.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-stop:
			return nil
		}
	}
}

// The commands that change a mailbox wake the idling sessions, whose Idle
// no longer listens to imapmemserver's own notifications.

func (s *Session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	defer s.changes.Notify()
	return s.UserSession.Append(mailbox, r, options)
}

func (s *Session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	defer s.changes.Notify()
	return s.UserSession.Expunge(w, uids)
}

func (s *Session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	defer s.changes.Notify() // a non-PEEK body fetch sets \Seen
	return s.UserSession.Fetch(w, numSet, options)
}

func (s *Session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	defer s.changes.Notify()
	return s.UserSession.Store(w, numSet, flags, options)
}

func (s *Session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	defer s.changes.Notify()
	return s.UserSession.Copy(numSet, dest)
}

func (s *Session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	defer s.changes.Notify()
	return s.UserSession.Move(w, numSet, dest)
}
