package watcher

import (
	"context"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Connecting: dial, log in, find and EXAMINE the mailbox, hand over to
// catch-up and to the wait for new mail.

// conn is one live IMAP connection of a session.
type conn struct {
	c  *imapclient.Client
	dc *deadlineConn
	uv uint32
	// delim is the mailbox's hierarchy delimiter from LIST (0 if the
	// server has none); the on-disk path nests by it.
	delim rune
	// uidNext is the server's latest UIDNEXT (EXAMINE or STATUS), 0 if
	// unknown; explainedNext a UIDNEXT whose gap above the checkpoint was
	// proved to be expunged mail, so it is not examined again.
	uidNext, explainedNext uint32
	// nextFresh: uidNext was read since the last catch-up.
	nextFresh bool
}

// connectAndWatch runs one connection: dial, login, examine, catch up, then
// IDLE or poll until something ends it. ok is called once the session is
// fully up, to reset backoff.
func (s *session) connectAndWatch(ctx context.Context, ok func()) error {
	s.setState(StateConnecting, nil, time.Time{})
	secret, err := s.acct.Secret(ctx)
	if err != nil {
		// A source that fails at login (a helper that cannot reach its
		// keyring, a variable this environment lacks) stops this account
		// from logging in, as a refused password does: auth_failed, retried
		// with the slow auth backoff. The error names the field and quotes
		// the command's stderr, capped; never the secret.
		return fmt.Errorf("%w: %w", errSecretSource, err)
	}
	opts := &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			// Runs on the client's reader goroutine: only signal.
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					s.exists.Store(int64(*d.NumMessages))
					s.mu.Lock()
					if s.notifyAt.IsZero() {
						s.notifyAt = time.Now()
					}
					s.mu.Unlock()
					select {
					case s.newMail <- struct{}{}:
					default:
					}
				}
			},
			// Cyrus tells a session whose mailbox was deleted (and maybe
			// recreated) nothing but EXPUNGEs: an emptied mailbox is
			// checked at once, not at the next refresh.
			Expunge: func(uint32) {
				if s.exists.Add(-1) == 0 {
					select {
					case s.emptied <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	// The connection holds a slot of the account's budget from before
	// the dial until it is closed.
	release, err := s.a.budget.acquire(ctx, s.beat)
	if err != nil {
		return err
	}
	defer release()
	// Each step below is bounded by response_timeout; a beat between them
	// keeps /healthz from calling a slow but progressing connect wedged.
	s.beat()
	c, dc, err := dial(ctx, s.acct, s.watch, opts, &s.contact)
	if err != nil {
		return err
	}
	s.beat()
	// imapclient has no contexts: cancelling ctx closes the client, which
	// fails whatever command is blocked.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer func() {
		stop()
		select {
		case <-c.Closed(): // dead or cancelled: nobody to say goodbye to
		default:
			sayGoodbye(c, dc)
		}
		c.Close()
	}()
	if err := login(c, s.acct, secret); err != nil {
		return err
	}
	s.beat()
	cn := &conn{c: c, dc: dc}
	if cn.delim, err = s.lookUpMailbox(cn); err != nil {
		return err
	}
	cn.dc.expect(s.watch.ResponseTimeout.Duration)
	sel, err := c.Select(s.id.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return s.examineError(cn, err)
	}
	cn.uv, cn.uidNext, cn.nextFresh = sel.UIDValidity, uint32(sel.UIDNext), true
	s.exists.Store(int64(sel.NumMessages))
	s.setState(StateSyncing, nil, time.Time{})
	if err := s.initCheckpoint(ctx, cn, sel); err != nil {
		return err
	}
	if _, err := s.catchUp(ctx, cn); err != nil {
		return err
	}
	ok()
	if s.m.once {
		return nil
	}
	if s.watch.IDLE && (c.Caps().Has(imap.CapIdle) || c.Caps().Has(imap.CapIMAP4rev2)) {
		return s.idleLoop(ctx, cn)
	}
	return s.pollLoop(ctx, cn)
}

// sayGoodbye sends LOGOUT, waiting at most 2 s: imapclient's reader can be
// stuck handing over an undrained response, and then Wait never returns.
func sayGoodbye(c *imapclient.Client, dc *deadlineConn) {
	dc.expect(2 * time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Logout().Wait()
	}()
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		// Cutting the socket fails the LOGOUT, which ends the goroutine.
		dc.Conn.Close()
	}
}
