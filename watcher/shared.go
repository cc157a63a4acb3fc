package watcher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// The shared connection of an account: it serves every mailbox that has
// no connection of its own, one at a time. For each it asks STATUS
// (UIDVALIDITY UIDNEXT) and EXAMINEs and catches up only where the answer
// differs from the checkpoint; then it waits, in IDLE with NOTIFY set
// where the server has it, else for poll_interval.

type sharedLane struct {
	a       *account
	contact atomic.Int64
	cur     atomic.Pointer[session] // the selected mailbox, for EXISTS/EXPUNGE
	dirty   chan struct{}           // 1-slot: something was announced

	mu      sync.Mutex
	pending map[string]statusNews // mailboxes announced since the last round
	all     bool                  // an announcement named no mailbox we could read

	// The lane's goroutine only:
	served   []*session
	delims   map[string]rune // LIST: server name → delimiter
	names    []string        // LIST: every selectable name, for suggestions
	notify   bool
	planned  int               // the budget limit the plan was made for
	listedAt time.Time         // the last LIST
	missing  map[*session]bool // mailboxes the server does not have now
}

// allPaused reports whether no served mailbox needs a check.
func (l *sharedLane) allPaused() bool {
	for _, s := range l.served {
		if !s.isPaused() {
			return false
		}
	}
	return true
}

// mark asks for a check of mailbox ("" = every mailbox) with nothing
// known of its numbers.
func (l *sharedLane) mark(mailbox string) {
	l.announce(statusNews{mailbox: mailbox})
}

// announce records a STATUS line, or a reason to check. It runs on
// imapclient's reader goroutine: it only records and signals. Two lines
// for one mailbox keep the higher UIDNEXT, or none (ask STATUS) when
// either lacked it or they name different UIDVALIDITYs.
func (l *sharedLane) announce(n statusNews) {
	l.mu.Lock()
	if n.mailbox == "" {
		l.all = true
	} else if old, ok := l.pending[n.mailbox]; ok {
		switch {
		case old.uidNext == 0 || n.uidNext == 0,
			old.uidValidity != 0 && n.uidValidity != 0 && old.uidValidity != n.uidValidity:
			n.uidNext, n.uidValidity = 0, 0
		default:
			n.uidNext = max(n.uidNext, old.uidNext)
			n.uidValidity = max(n.uidValidity, old.uidValidity) // 0 is "not said"
		}
		l.pending[n.mailbox] = n
	} else {
		l.pending[n.mailbox] = n
	}
	l.mu.Unlock()
	select {
	case l.dirty <- struct{}{}:
	default:
	}
}

// take returns what was announced and clears it.
func (l *sharedLane) take() (pending map[string]statusNews, all bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pending, all = l.pending, l.all
	l.pending, l.all = map[string]statusNews{}, false
	return pending, all
}

func (l *sharedLane) beatAll() {
	for _, s := range l.served {
		s.beat()
	}
}

// setAll sets the state of every served mailbox that is not paused.
func (l *sharedLane) setAll(state State, err error, next time.Time) {
	for _, s := range l.served {
		if s.isPaused() && state != StateStopped {
			s.setState(StatePaused, nil, time.Time{})
			continue
		}
		s.setState(state, err, next)
	}
}

func (a *account) runShared(ctx context.Context) {
	l := &sharedLane{a: a, dirty: make(chan struct{}, 1), pending: map[string]statusNews{}, missing: map[*session]bool{}}
	l.served = a.list() // until the first plan, every mailbox waits on it
	w := &a.m.cfg.Watch
	net := newBackoff(time.Second, w.MaxBackoff.Duration)
	auth := newBackoff(authRetryMin, authRetryMax)
	busy := newBackoff(busyRetryMin, busyRetryMax)
	defer func() {
		for _, s := range l.served {
			s.contactVia.Store(nil)
		}
	}()
	for {
		if ctx.Err() != nil {
			l.setAll(StateStopped, nil, time.Time{})
			return
		}
		err := l.serve(ctx, func() { net.reset(); auth.reset(); busy.reset() })
		if ctx.Err() != nil {
			l.setAll(StateStopped, nil, time.Time{})
			return
		}
		var state State
		var delay time.Duration
		var se localError
		switch {
		case errors.Is(err, errNothingToServe):
			l.waitLimitChange(ctx)
			continue
		case errors.Is(err, errPauseRequested), errors.Is(err, errMailboxReplaced):
			continue
		case errors.Is(err, errReconnectRequested):
			net.reset()
			for _, s := range l.served {
				a.m.metrics.reconnect(s.id)
			}
			l.setAll(StateReconnecting, nil, time.Now())
			continue
		case errors.Is(err, ErrServerBusy):
			a.budget.refused(a.m.clock.Now())
			state, delay = StateReconnecting, busy.next()
		case errors.Is(err, ErrAuth), errors.Is(err, errSecretSource):
			for _, s := range l.served {
				a.m.metrics.authFailure(s.id)
			}
			state, delay = StateAuthFailed, auth.next()
		case errors.As(err, &se):
			state, delay = StateError, net.next()
		default:
			state, delay = StateReconnecting, net.next()
		}
		for _, s := range l.served {
			s.mu.Lock()
			s.status.Errors++
			s.mu.Unlock()
		}
		l.setAll(state, err, a.m.clock.Now().Add(delay))
		if !l.sleep(ctx, delay) {
			net.reset()
			auth.reset()
			l.setAll(StateReconnecting, nil, a.m.clock.Now())
			continue
		}
		for _, s := range l.served {
			a.m.metrics.reconnect(s.id)
		}
	}
}

// sleep waits d; false if a Reconnect of a served mailbox cut it short.
func (l *sharedLane) sleep(ctx context.Context, d time.Duration) bool {
	t := l.a.m.clock.NewTimer(d)
	defer t.Stop()
	hb := time.NewTicker(heartbeatEvery)
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			return true
		case <-t.C():
			l.beatAll()
			return true
		case <-hb.C:
			l.beatAll()
		case <-l.a.wake:
			l.beatAll()
			if l.takeReconnect() {
				return false
			}
			l.setAll(StateReconnecting, nil, time.Now().Add(d))
		}
	}
}

// takeReconnect consumes the Reconnect requests of served mailboxes.
func (l *sharedLane) takeReconnect() bool {
	asked := false
	for _, s := range l.served {
		s.mu.Lock()
		if s.reconnect {
			s.reconnect, asked = false, true
		}
		s.mu.Unlock()
	}
	return asked
}

// sharedConn is the live shared connection.
type sharedConn struct {
	c   *imapclient.Client
	dc  *deadlineConn
	tap *tapConn
}

// serve runs one shared connection: plan, NOTIFY, then rounds of checks
// and waits until something ends it.
func (l *sharedLane) serve(ctx context.Context, ok func()) error {
	a := l.a
	w := &a.m.cfg.Watch
	for _, s := range l.served {
		s.contactVia.Store(&l.contact)
	}
	l.setAll(StateConnecting, nil, time.Time{})
	release, err := a.budget.acquire(ctx, l.beatAll)
	if err != nil {
		return err
	}
	defer release()
	secret, err := a.cfg.Secret(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", errSecretSource, err)
	}
	opts := &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if s := l.cur.Load(); s != nil && d.NumMessages != nil {
				s.exists.Store(int64(*d.NumMessages))
				l.mark(s.id.Mailbox)
			}
		},
		Expunge: func(uint32) {
			if s := l.cur.Load(); s != nil && s.exists.Add(-1) == 0 {
				l.mark(s.id.Mailbox)
			}
		},
	}}
	l.beatAll()
	c, dc, tap, err := dialTapped(ctx, a.cfg, w, opts, &l.contact, l.announce)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer func() {
		stop()
		l.cur.Store(nil)
		select {
		case <-c.Closed():
		default:
			sayGoodbye(c, dc)
		}
		c.Close()
	}()
	if err := login(c, a.cfg, secret); err != nil {
		return err
	}
	l.beatAll()
	cx := &sharedConn{c: c, dc: dc, tap: tap}
	if _, err := l.list(cx); err != nil {
		return err
	}
	l.notify = w.IDLE && w.Notify && c.Caps().Has(imap.Cap("NOTIFY"))
	if err := l.setNotify(cx); err != nil {
		return err
	}
	if l.replan(ctx) {
		return errNothingToServe
	}
	first := true
	for {
		pending, all := l.take()
		for _, s := range l.served {
			news, announced := announcedFor(pending, s.id.Mailbox)
			if announced && l.explained(s, news) {
				// Our own STATUS answer, or an expunge or flag change:
				// nothing above the checkpoint.
				announced, news = false, statusNews{}
			}
			if !all && !announced {
				continue
			}
			if err := l.check(ctx, cx, s, news, announced); err != nil {
				return err
			}
		}
		if first {
			ok()
			first = false
		}
		reason, err := l.wait(ctx, cx)
		if err != nil {
			return err
		}
		if reason == "replan" && l.replan(ctx) {
			return errNothingToServe
		}
		// A refresh asks every mailbox's STATUS (the round after this),
		// which proves the connection alive too. LIST, to find folders
		// that appeared, runs at every refresh when patterns select the
		// mailboxes and every idle_refresh otherwise; NOOP only when
		// nothing else would be said.
		if reason == "refresh" {
			// While a mailbox is missing, LIST at every refresh: it is
			// found again within one refresh of coming back.
			listDue := a.patterns || len(l.missing) > 0 || time.Since(l.listedAt) >= w.IdleRefresh.Duration
			if !listDue && l.allPaused() {
				dc.expect(w.ResponseTimeout.Duration)
				if err := c.Noop().Wait(); err != nil {
					return fmt.Errorf("noop: %w", err)
				}
			}
			added := false
			if listDue {
				var err error
				if added, err = l.list(cx); err != nil {
					return err
				}
			}
			if added {
				// A folder appeared: it may get a connection of its own,
				// and NOTIFY must name it.
				if err := l.setNotify(cx); err != nil {
					return err
				}
				if l.replan(ctx) {
					return errNothingToServe
				}
			}
			l.mark("")
		}
	}
}

// setNotify (re)sends NOTIFY SET naming every mailbox of the account that
// exists; a server that refuses it is watched by STATUS polling instead.
func (l *sharedLane) setNotify(cx *sharedConn) error {
	if !l.notify {
		return nil
	}
	var names []string
	for _, s := range l.a.list() {
		if name, found := l.serverName(s.id.Mailbox); found {
			names = append(names, name)
		}
	}
	cx.dc.expect(l.a.m.cfg.Watch.ResponseTimeout.Duration)
	if err := sendNotify(cx.c, cx.tap, names); err != nil {
		if isClosed(cx.c) {
			return err
		}
		l.a.log.Info("the server advertises NOTIFY but refused it; watching with IDLE and STATUS polling instead", "err", err)
		l.notify = false
	}
	return nil
}

// replan makes the plan again (the budget changed) and marks every served
// mailbox for a check; it reports whether the shared connection serves
// nothing now.
func (l *sharedLane) replan(ctx context.Context) (idle bool) {
	prev := l.served
	l.planned, _, _ = l.a.budget.snapshot()
	l.served = l.a.plan(ctx, l.notify)
	for _, s := range prev {
		if !slices.Contains(l.served, s) {
			s.contactVia.Store(nil)
		}
	}
	for _, s := range l.served {
		s.contactVia.Store(&l.contact)
	}
	for s := range l.missing {
		if !slices.Contains(l.served, s) {
			delete(l.missing, s)
		}
	}
	l.mark("")
	return len(l.served) == 0
}

// announcedFor finds mailbox's announcement, matching names as the
// server compares them (INBOX in any case).
func announcedFor(pending map[string]statusNews, mailbox string) (statusNews, bool) {
	if n, ok := pending[mailbox]; ok {
		return n, true
	}
	for name, n := range pending {
		if sameMailbox(name, mailbox) {
			return n, true
		}
	}
	return statusNews{}, false
}

// explained reports whether an announcement's UIDNEXT says nothing the
// checkpoint does not already hold: the UID below it is the last one
// captured, or the gap above that was found expunged. Comparing numbers,
// not guessing which STATUS line answers which command, is what keeps a
// notification that crosses our own STATUS from being taken for its
// answer (the lost-tail bug of the first NOTIFY version).
func (l *sharedLane) explained(s *session, n statusNews) bool {
	if n.uidNext == 0 {
		return false
	}
	st, known := l.a.m.store.State(s.id.Account, s.id.Mailbox)
	if !known || (n.uidValidity != 0 && n.uidValidity != st.UIDValidity) {
		return false
	}
	return n.uidNext-1 == st.LastUID || n.uidNext == s.explainedShared
}

// errNothingToServe: every mailbox has a connection of its own, so the
// shared one is closed until the budget limit changes.
var errNothingToServe = errors.New("nothing to serve on the shared connection")

// waitLimitChange holds no connection and returns when the budget's limit
// differs from the one planned for (or ctx ends).
func (l *sharedLane) waitLimitChange(ctx context.Context) {
	for {
		limit, _, changed := l.a.budget.snapshot()
		if limit != l.planned {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// list reads the account's mailboxes (LIST "" "*") and applies the
// config's selection; added reports mailboxes new to the account.
func (l *sharedLane) list(cx *sharedConn) (added bool, err error) {
	cx.dc.expect(l.a.m.cfg.Watch.ResponseTimeout.Duration)
	items, err := listAll(cx.c)
	if err != nil {
		return false, err
	}
	l.listedAt = time.Now()
	added = l.a.adopt(selectMailboxes(items, l.a.cfg.Mailboxes, l.a.cfg.Exclude))
	l.delims = map[string]rune{}
	l.names = l.names[:0]
	for _, it := range items {
		if slices.Contains(it.Attrs, imap.MailboxAttrNoSelect) || slices.Contains(it.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		l.delims[it.Mailbox] = it.Delim
		l.names = append(l.names, it.Mailbox)
	}
	return added, nil
}

// serverName finds a configured mailbox in the LIST result.
func (l *sharedLane) serverName(mailbox string) (string, bool) {
	if _, ok := l.delims[mailbox]; ok {
		return mailbox, true
	}
	for n := range l.delims {
		if sameMailbox(n, mailbox) {
			return n, true
		}
	}
	return "", false
}

// check brings one mailbox up to date on the shared connection. Errors of
// that mailbox alone (not found, disk) become its state; an error of the
// connection is returned. news is an announcement not explained by the
// checkpoint: it already says there is new mail, so no STATUS is asked.
// announced tells a check the server asked for from one of the sweep.
func (l *sharedLane) check(ctx context.Context, cx *sharedConn, s *session, news statusNews, announced bool) error {
	w := &l.a.m.cfg.Watch
	mode := StatePolling
	if l.notify {
		mode = StateNotify
	}
	s.beat()
	if s.isPaused() {
		s.setState(StatePaused, nil, time.Time{})
		return nil
	}
	if err := s.takeRequest(); err != nil {
		return err
	}
	if _, found := l.serverName(s.id.Mailbox); !found {
		l.notFound(s, nil)
		return nil
	}
	if news.uidNext == 0 {
		st, known := l.a.m.store.State(s.id.Account, s.id.Mailbox)
		cx.dc.expect(w.ResponseTimeout.Duration)
		data, err := cx.c.Status(s.id.Mailbox, &imap.StatusOptions{UIDValidity: true, UIDNext: true}).Wait()
		if err != nil {
			if isClosed(cx.c) {
				return fmt.Errorf("status %q: %w (%w)", s.id.Mailbox, err, errConnectionLost)
			}
			if isNo(err) {
				l.notFound(s, err)
				return nil
			}
			return fmt.Errorf("status %q: %w", s.id.Mailbox, err)
		}
		next := uint32(data.UIDNext)
		current := known && data.UIDValidity == st.UIDValidity && next != 0 && next > st.LastUID &&
			(next-1 == st.LastUID || next == s.explainedShared)
		if current {
			s.setState(mode, nil, time.Time{})
			return nil
		}
	}
	l.cur.Store(s)
	cx.dc.expect(w.ResponseTimeout.Duration)
	sel, err := cx.c.Select(s.id.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		if isClosed(cx.c) {
			return fmt.Errorf("examine %q: %w (%w)", s.id.Mailbox, err, errConnectionLost)
		}
		cn := &conn{c: cx.c, dc: cx.dc}
		return l.mailboxError(cx, s, s.examineError(cn, err))
	}
	delim, _ := l.serverName(s.id.Mailbox)
	cn := &conn{c: cx.c, dc: cx.dc, uv: sel.UIDValidity, delim: l.delims[delim], uidNext: uint32(sel.UIDNext), nextFresh: true}
	s.exists.Store(int64(sel.NumMessages))
	s.setState(StateSyncing, nil, time.Time{})
	if err := s.initCheckpoint(ctx, cn, sel); err != nil {
		return l.mailboxError(cx, s, err)
	}
	n, err := s.catchUp(ctx, cn)
	if err != nil {
		return l.mailboxError(cx, s, err)
	}
	switch {
	case !l.notify:
	case announced:
		s.idlePush++
	case n > 0:
		s.notifyMissed(n)
	}
	if now, _ := l.a.m.store.State(s.id.Account, s.id.Mailbox); cn.uidNext > 0 && now.LastUID < cn.uidNext-1 {
		// The gap above the checkpoint is expunged mail (catchUp's cross-
		// check said so): no need to EXAMINE again until UIDNEXT moves.
		s.explainedShared = cn.uidNext
	}
	if l.notify {
		// Leave no mailbox selected: Dovecot announces new mail in the
		// selected mailbox neither as STATUS nor (under NOTIFY, measured)
		// as EXISTS during IDLE. CLOSE after EXAMINE removes nothing
		// (RFC 3501 §6.4.2), so it stands in where UNSELECT is missing.
		cx.dc.expect(w.ResponseTimeout.Duration)
		unselect := cx.c.UnselectAndExpunge
		if caps := cx.c.Caps(); caps.Has(imap.CapUnselect) || caps.Has(imap.CapIMAP4rev2) {
			unselect = cx.c.Unselect
		}
		if err := unselect().Wait(); err != nil {
			return fmt.Errorf("unselect %q: %w", s.id.Mailbox, err)
		}
		l.cur.Store(nil)
	}
	delete(l.missing, s)
	s.setState(mode, nil, time.Time{})
	return nil
}

// refreshEvery is how often every served mailbox is checked without an
// announcement: poll_interval, and with NOTIFY at most idle_refresh.
func (l *sharedLane) refreshEvery() time.Duration {
	w := &l.a.m.cfg.Watch
	if l.notify {
		return min(w.PollInterval.Duration, w.IdleRefresh.Duration)
	}
	return w.PollInterval.Duration
}

// notFound makes a mailbox the server does not have a visible error,
// retried (LIST, then STATUS) at every refresh.
func (l *sharedLane) notFound(s *session, cause error) {
	l.missing[s] = true
	s.setState(StateError, mailboxNotFound(s.id.Mailbox, closeMatches(s.id.Mailbox, l.names), cause), time.Now().Add(l.refreshEvery()))
}

// mailboxError keeps an error of one mailbox from ending the connection
// that serves the others, unless the connection itself is gone.
func (l *sharedLane) mailboxError(cx *sharedConn, s *session, err error) error {
	if isClosed(cx.c) || ctxDone(err) {
		return err
	}
	var se localError
	switch {
	case errors.Is(err, errMailboxReplaced):
		l.mark(s.id.Mailbox) // EXAMINE again next round
		return nil
	case errors.Is(err, ErrMailboxNotFound):
		s.mu.Lock()
		s.status.Errors++
		s.mu.Unlock()
		l.missing[s] = true
		s.setState(StateError, err, time.Now().Add(l.refreshEvery()))
		return nil
	case errors.As(err, &se):
		s.mu.Lock()
		s.status.Errors++
		s.mu.Unlock()
		s.setState(StateError, err, time.Time{})
		return nil
	}
	return err
}

func ctxDone(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// wait waits for the next reason to check: an announcement (NOTIFY, or
// EXISTS of the selected mailbox), the refresh or poll timer, a control,
// or a budget change (which ends the connection to plan again).
func (l *sharedLane) wait(ctx context.Context, cx *sharedConn) (string, error) {
	w := &l.a.m.cfg.Watch
	timeout := w.ResponseTimeout.Duration
	// With NOTIFY too: a server announces only what it saw happen.
	// Dovecot tells nothing of mail another program dropped into a
	// Maildir (measured: TestBenchScale's drops), so each mailbox's STATUS
	// is still asked every poll_interval; NOTIFY makes the common case
	// immediate, the sweep bounds the rest.
	refresh := l.refreshEvery()
	var idle *imapclient.IdleCommand
	if l.notify {
		cx.dc.expect(timeout)
		var err error
		if idle, err = cx.c.Idle(); err != nil {
			return "", fmt.Errorf("idle: %w", err)
		}
	}
	cx.dc.expect(refresh + timeout)
	reason, err := l.waitFor(ctx, cx, refresh)
	if idle != nil {
		cx.dc.expect(timeout)
		cerr := idle.Close()
		if cerr == nil {
			cerr = idle.Wait()
		}
		if err == nil && cerr != nil {
			err = fmt.Errorf("leave idle: %w (%w)", cerr, errConnectionLost)
		}
	}
	return reason, err
}

func (l *sharedLane) waitFor(ctx context.Context, cx *sharedConn, refresh time.Duration) (string, error) {
	t := time.NewTimer(refresh)
	defer t.Stop()
	hb := time.NewTicker(heartbeatEvery)
	defer hb.Stop()
	_, _, changed := l.a.budget.snapshot()
	var regrow <-chan time.Time
	if at := l.a.budget.nextRegrow(); !at.IsZero() && !l.notify {
		rt := time.NewTimer(time.Until(at))
		defer rt.Stop()
		regrow = rt.C
	}
	l.beatAll()
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-cx.c.Closed():
			return "", errConnectionLost
		case <-l.dirty:
			return "mail", nil
		case <-t.C:
			return "refresh", nil
		case <-changed:
			if limit, _, ch := l.a.budget.snapshot(); limit != l.planned {
				return "replan", nil
			} else {
				changed = ch // only the count in use moved
			}
		case <-regrow:
			if l.a.budget.regrow(time.Now()) {
				return "replan", nil
			}
			regrow = nil
		case <-l.a.wake:
			if l.takeReconnect() {
				return "", errReconnectRequested
			}
			// Pause or resume: the next round applies it.
			l.mark("")
			return "control", nil
		case <-hb.C:
			l.beatAll()
		}
	}
}
