package watcher

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Proof of liveness: a push the server never sent must cost at most one
// idle_refresh (or poll_interval). At each of them, and when EXPUNGEs
// empty the mailbox, the session asks the server for the mailbox's
// UIDVALIDITY and UIDNEXT (verifyMailbox) and compares them with what it
// has: a mailbox deleted and recreated under the session, UIDNEXT that
// went backwards, or UIDs handed out that the catch-up must find.

// errMailboxReplaced ends a connection whose mailbox got a new
// UIDVALIDITY while selected (deleted and recreated, as Cyrus and Courier
// allow without telling the session); the next EXAMINE captures it anew.
var errMailboxReplaced = errors.New("mailbox replaced on the server (new UIDVALIDITY)")

// verifyMailbox runs STATUS (UIDVALIDITY UIDNEXT MESSAGES) on the selected
// mailbox; a server that refuses STATUS on it is asked with EXAMINE again,
// which reports the same values.
func (s *session) verifyMailbox(cn *conn) error {
	cn.dc.expect(s.watch.ResponseTimeout.Duration)
	var uv, next uint32
	data, err := cn.c.Status(s.id.Mailbox, &imap.StatusOptions{UIDValidity: true, UIDNext: true}).Wait()
	if err == nil && data.UIDValidity != 0 {
		uv, next = data.UIDValidity, uint32(data.UIDNext)
	} else {
		if isClosed(cn.c) {
			return fmt.Errorf("status %q: %w (%w)", s.id.Mailbox, err, errConnectionLost)
		}
		cn.dc.expect(s.watch.ResponseTimeout.Duration)
		sel, serr := cn.c.Select(s.id.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if serr != nil {
			if isNo(serr) {
				s.log.Warn("the mailbox no longer exists on the server (deleted or renamed while mailtap was connected)")
			}
			return s.examineError(cn, serr)
		}
		uv, next = sel.UIDValidity, uint32(sel.UIDNext)
		s.exists.Store(int64(sel.NumMessages))
	}
	if uv != cn.uv {
		s.log.Warn("UIDVALIDITY changed while connected: the mailbox was replaced on the server; examining it again",
			"old_uidvalidity", cn.uv, "new_uidvalidity", uv)
		return errMailboxReplaced
	}
	if next != 0 {
		cn.uidNext, cn.nextFresh = next, true
	}
	return s.checkUIDNext(cn, next)
}

// checkUIDNext detects UIDNEXT at or below the checkpoint with an
// unchanged UIDVALIDITY: the server forgot UIDs it had handed out
// (restored from a backup, or an embedded server that restarted) and will
// hand them out again to new mail. The newest message's UID confirms it
// (a UIDNEXT lower than an existing UID is a server bug, not a restore).
// Which of the reused UIDs are new is unknowable, so the whole mailbox is
// captured again: the same message under the same name is rewritten
// identically, a different one is kept beside it by the store.
func (s *session) checkUIDNext(cn *conn, next uint32) error {
	st, ok := s.m.store.State(s.id.Account, s.id.Mailbox)
	if !ok || next == 0 || next > st.LastUID || st.UIDValidity != cn.uv {
		return nil
	}
	cn.dc.expect(s.watch.ResponseTimeout.Duration)
	newest, err := newestUID(cn.c, uint32(max(s.exists.Load(), 0)))
	if err != nil {
		return fmt.Errorf("check UIDNEXT of %q: %w", s.id.Mailbox, err)
	}
	if newest >= next {
		s.warn(fmt.Sprintf("the server reports UIDNEXT %d but holds UID %d: its UIDNEXT cannot be trusted", next, newest),
			"uidnext", next, "newest_uid", newest, "uidvalidity", cn.uv)
		return nil
	}
	s.warn(fmt.Sprintf("UIDNEXT went backwards with UIDVALIDITY %d unchanged: the checkpoint is at UID %d but the server's UIDNEXT is %d "+
		"(restored from a backup, or reset). The server will reuse those UIDs for new mail, so the whole mailbox is captured again; "+
		"records of other messages under the same names are kept", cn.uv, st.LastUID, next),
		"uidvalidity", cn.uv, "last_uid", st.LastUID, "uidnext", next)
	if err := s.m.store.RewindState(s.id.Account, s.id.Mailbox, cn.uv, 0); err != nil {
		return localError{err}
	}
	s.mu.Lock()
	s.status.LastUID = 0
	s.mu.Unlock()
	cn.explainedNext = 0
	return nil
}

// idleUnreliable logs mail that a refresh found but IDLE never announced.
// A server that has pushed before may just have been a moment late (mail
// that arrived right before the refresh), so it takes two such refreshes
// to call IDLE unreliable; one that never pushed is called so at once.
// After the warning, misses are logged at debug level, so a server that
// never pushes does not flood the log.
func (s *session) idleUnreliable(n int, reason string) {
	s.idleMiss++
	attrs := []any{"messages", n, "found_by", reason, "misses", s.idleMiss, "pushes", s.idlePush}
	switch {
	case s.idleMiss == 1 && s.idlePush > 0:
		s.log.Info("the refresh found mail that IDLE had not announced (yet)", attrs...)
	case s.idleMiss == 1 || (s.idleMiss == 2 && s.idlePush > 0):
		s.log.Warn("IDLE proved unreliable: the refresh found mail the server never announced; "+
			"mail can take up to idle_refresh to arrive; consider \"idle\": false with a short poll_interval for this server", attrs...)
	default:
		s.log.Debug("IDLE missed mail again", attrs...)
	}
}

// notifyMissed is idleUnreliable for a mailbox watched by NOTIFY: the
// sweep found mail the server never announced. Dovecot does not announce
// mail another program put straight into its Maildir (measured), so the
// words name that cause and the bound.
func (s *session) notifyMissed(n int) {
	s.idleMiss++
	attrs := []any{"messages", n, "misses", s.idleMiss, "announced", s.idlePush}
	switch {
	case s.idleMiss == 1 && s.idlePush > 0:
		s.log.Info("the sweep found mail that NOTIFY had not announced (yet)", attrs...)
	case s.idleMiss == 1 || (s.idleMiss == 2 && s.idlePush > 0):
		s.log.Warn("NOTIFY proved unreliable: the sweep found mail the server never announced "+
			"(mail put into the mailbox files by another program is not announced by Dovecot); "+
			"such mail takes up to the sweep interval, min(poll_interval, idle_refresh), to arrive", attrs...)
	default:
		s.log.Debug("NOTIFY missed mail again", attrs...)
	}
}

// contactLimit is how long a connected mailbox may go without a byte from
// the server before /readyz fails: twice the longest silence a healthy
// session allows (one refresh or poll plus one response timeout).
func (s *session) contactLimit(st State) time.Duration {
	interval := s.watch.IdleRefresh.Duration
	if st == StatePolling || !s.watch.IDLE {
		interval = max(interval, s.watch.PollInterval.Duration)
	}
	return 2 * (interval + s.watch.ResponseTimeout.Duration)
}

// contactCollector exports mailtap_last_server_contact_timestamp_seconds
// from the sessions at scrape time: the contact time changes with every
// read, too often to set a gauge each time.
type contactCollector struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	src  func() []MailboxStatus
}

func newContactCollector() *contactCollector {
	return &contactCollector{desc: prometheus.NewDesc("mailtap_last_server_contact_timestamp_seconds",
		"Unix time the server last sent anything on the mailbox's connection.", []string{"account", "mailbox"}, nil)}
}

func (c *contactCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *contactCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	src := c.src
	c.mu.Unlock()
	if src == nil {
		return
	}
	for _, st := range src() {
		v := 0.0 // like every series, present from the start (README)
		if !st.LastServerContact.IsZero() {
			v = float64(st.LastServerContact.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, st.Mailbox.Account, st.Mailbox.Mailbox)
	}
}

// watchContacts makes the collector read src (the Manager's Status).
func (m *Metrics) watchContacts(src func() []MailboxStatus) {
	if m == nil || m.contact == nil {
		return
	}
	m.contact.mu.Lock()
	m.contact.src = src
	m.contact.mu.Unlock()
}
