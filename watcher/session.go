package watcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailtap/config"
	"mailtap/jsonstore"
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
const heartbeatEvery = 5 * time.Second

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
	exists    atomic.Int64 // messages in the selected mailbox, per EXISTS/EXPUNGE
	idleMiss  int          // refreshes that found mail IDLE never announced; session goroutine only
	idlePush  int          // pushes IDLE did deliver; session goroutine only
}

func newSession(m *Manager, acct *config.Account, mailbox string) *session {
	s := &session{
		id: MailboxID{Account: acct.Name, Mailbox: mailbox}, acct: acct, watch: &m.cfg.Watch, m: m,
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
}

func (s *session) requestReconnect() {
	s.mu.Lock()
	s.reconnect = true
	s.mu.Unlock()
	s.poke()
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
	if c := s.contact.Load(); c != 0 {
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
	return st == StateIdle || st == StatePolling
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

// initCheckpoint handles a mailbox seen for the first time (backfill) and a
// UIDVALIDITY change (capture again under the new value).
func (s *session) initCheckpoint(ctx context.Context, cn *conn, sel *imap.SelectData) error {
	st, known := s.m.store.State(s.id.Account, s.id.Mailbox)
	if known && st.UIDValidity == sel.UIDValidity {
		return s.checkUIDNext(cn, uint32(sel.UIDNext))
	}
	store := func(last uint32) error {
		if err := s.m.store.SetState(s.id.Account, s.id.Mailbox, sel.UIDValidity, last); err != nil {
			return localError{err}
		}
		s.mu.Lock()
		s.status.UIDValidity, s.status.LastUID = sel.UIDValidity, last
		s.mu.Unlock()
		return nil
	}
	if known {
		s.log.Warn("UIDVALIDITY changed: capturing the mailbox again under the new value; old files are kept",
			"old_uidvalidity", st.UIDValidity, "new_uidvalidity", sel.UIDValidity)
		return store(0)
	}
	mode, since := s.acct.BackfillSince()
	baseline, err := s.highestUID(cn, sel)
	if err != nil {
		return err
	}
	switch mode {
	case "all":
		return store(0)
	case "unseen", "since":
		crit := &imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}
		if mode == "since" {
			crit = &imap.SearchCriteria{Since: since}
		}
		if baseline > 0 {
			crit.UID = []imap.UIDSet{{imap.UIDRange{Start: 1, Stop: imap.UID(baseline)}}}
		}
		uids, err := s.search(cn, crit)
		if err != nil {
			return err
		}
		s.log.Info("first start: backfilling", "mode", mode, "messages", len(uids))
		// Not contiguous, so the checkpoint cannot move per batch; a crash
		// repeats this backfill, and deterministic names keep it idempotent.
		if err := s.fetchAll(ctx, cn, uids, false); err != nil {
			return err
		}
		return store(baseline)
	default: // none
		s.log.Info("first start: capturing mail that arrives from now on", "skipped_up_to_uid", baseline)
		return store(baseline)
	}
}

// inMemoryMax is the largest body read into memory and parsed on a worker;
// larger ones are parsed as they stream, in bounded memory.
const inMemoryMax = 1 << 20

// fetchChunk is how many UIDs one UID FETCH asks for.
const fetchChunk = 2000

// fetchAll captures uids (sorted). Bodies stream in through UID FETCH and
// are parsed on this goroutine; every batchSize messages the batch goes to a
// committer goroutine that writes and syncs it while the next batch
// streams in (pipelining + group commit). The checkpoint (if advance) moves
// only over a contiguous prefix of uids whose records are durable.
func (s *session) fetchAll(ctx context.Context, cn *conn, uids []imap.UID, advance bool) error {
	s.mu.Lock()
	notified := s.notifyAt
	s.notifyAt = time.Time{}
	s.mu.Unlock()

	cm := newCommitter(s, notified)
	got := make(map[uint32]bool, len(uids))
	prefix := 0 // uids[:prefix] are all in a batch
	var handed uint32
	handOff := func(b *jsonstore.Batch) {
		for prefix < len(uids) && got[uint32(uids[prefix])] {
			prefix++
		}
		var to uint32
		if advance && prefix > 0 && uint32(uids[prefix-1]) > handed {
			to = uint32(uids[prefix-1])
			handed = to
		}
		if b.Len() > 0 || to > 0 {
			cm.submit(b, to)
		}
	}

	var streamErr error
	for start := 0; start < len(uids) && streamErr == nil; start += fetchChunk {
		chunk := uids[start:min(start+fetchChunk, len(uids))]
		streamErr = s.stream(ctx, cn, chunk, got, cm, handOff)
	}
	if streamErr == nil {
		// UIDs asked for but not received were expunged meanwhile, or the
		// server failed to send them: only the former may be skipped.
		var missing []imap.UID
		for _, u := range uids {
			if !got[uint32(u)] {
				missing = append(missing, u)
			}
		}
		if len(missing) > 0 {
			still, err := s.search(cn, &imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(missing...)}})
			switch {
			case err != nil:
				streamErr = err
			case len(still) > 0:
				streamErr = fmt.Errorf("fetch from %q: server did not return %d existing message(s), e.g. UID %d", s.id.Mailbox, len(still), still[0])
			default:
				s.log.Info("messages expunged before they could be fetched", "count", len(missing))
				for _, u := range missing {
					got[uint32(u)] = true
				}
				handOff(s.m.store.NewBatch(s.id.Account, s.id.Mailbox, cn.uv, cn.delim))
			}
		}
	}
	commitErr := cm.close()
	if streamErr != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if commitErr != nil {
		return commitErr // disk trouble explains a stream we cut short
	}
	return streamErr
}

// stream runs one UID FETCH over chunk, filling batches and handing each
// full one (and the last) to handOff.
func (s *session) stream(ctx context.Context, cn *conn, chunk []imap.UID, got map[uint32]bool, cm *committer, handOff func(*jsonstore.Batch)) error {
	var set imap.UIDSet
	set.AddNum(chunk...)
	want := make(map[uint32]bool, len(chunk))
	for _, u := range chunk {
		want[uint32(u)] = true
	}
	newBatch := func() *jsonstore.Batch {
		return s.m.store.NewBatch(s.id.Account, s.id.Mailbox, cn.uv, cn.delim)
	}
	batch := newBatch()

	cn.dc.expect(s.watch.ResponseTimeout.Duration)
	cmd := cn.c.Fetch(set, &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	var stop error
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		if stop != nil {
			continue // drain what is already buffered
		}
		uid, err := s.readMessage(batch, msg)
		if err == nil {
			if uid != 0 && want[uid] {
				got[uid] = true
			}
			s.beat()
			if batch.Len() >= s.m.batchSize {
				handOff(batch)
				batch = newBatch()
			}
			if err = cm.failed(); err == nil {
				err = s.takeRequest()
			}
			if err == nil {
				err = ctx.Err()
			}
		}
		if err != nil {
			stop = err
			// Cutting the socket ends the stream instead of reading
			// megabytes we would throw away; the connection is being
			// dropped anyway. Not c.Close(): it waits for the reader
			// goroutine, which may be waiting for us to finish this
			// message's literal — a deadlock.
			cn.dc.Conn.Close()
		}
	}
	cerr := cmd.Close()
	// Whatever is complete is kept, even when the stream broke.
	handOff(batch)
	if stop != nil {
		return stop
	}
	if cerr != nil {
		return fmt.Errorf("fetch from %q: %w", s.id.Mailbox, cerr)
	}
	return nil
}

// committer makes batches durable in order on its own goroutine.
type committer struct {
	s        *session
	notified time.Time
	jobs     chan commitJob
	done     chan struct{}

	mu  sync.Mutex
	err error
}

type commitJob struct {
	batch     *jsonstore.Batch
	advanceTo uint32
}

func newCommitter(s *session, notified time.Time) *committer {
	cm := &committer{s: s, notified: notified, jobs: make(chan commitJob, 1), done: make(chan struct{})}
	go cm.run()
	return cm
}

func (cm *committer) run() {
	defer close(cm.done)
	for job := range cm.jobs {
		if cm.failed() != nil {
			job.batch.Discard()
			continue
		}
		if err := cm.s.commit(job.batch, job.advanceTo, cm.notified); err != nil {
			cm.mu.Lock()
			cm.err = err
			cm.mu.Unlock()
		}
	}
}

// submit queues a batch; it blocks while the previous one is still being
// committed, which bounds memory to about two batches.
func (cm *committer) submit(b *jsonstore.Batch, advanceTo uint32) {
	cm.jobs <- commitJob{b, advanceTo}
}

func (cm *committer) failed() error {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	return cm.err
}

// close waits for every queued batch and returns the first commit error.
func (cm *committer) close() error {
	close(cm.jobs)
	<-cm.done
	return cm.failed()
}

// commit makes the batch durable, advances the checkpoint to advanceTo
// (0: leave it) and publishes Captured events.
func (s *session) commit(batch *jsonstore.Batch, advanceTo uint32, notified time.Time) error {
	res, err := batch.Commit(advanceTo)
	now := time.Now()
	for _, sum := range res.Summaries {
		s.m.metrics.captured(s.id, sum, notified, now)
		s.m.hub.Publish(Captured{Mailbox: s.id, Summary: sum, At: now})
		s.log.Debug("captured", "uid", sum.UID, "size", sum.Size, "path", sum.Path)
	}
	if n := len(res.Summaries); n > 0 {
		s.log.Info("captured", "records", n, "last_uid", res.Summaries[n-1].UID)
	}
	for _, c := range res.Collisions {
		// The server reused a UID for another message: both records kept.
		s.log.Warn("record name held by another message; kept both", "uid", c.UID,
			"message_id", c.MessageID, "existing_message_id", c.ExistingMessageID,
			"path", c.Path, "existing", c.Existing, "existing_err", c.ExistingErr)
	}
	s.m.metrics.bytes(s.id, res.Bytes)
	s.mu.Lock()
	s.status.Captured += int64(len(res.Summaries))
	for _, sum := range res.Summaries {
		if sum.ParseErrors > 0 {
			s.status.Malformed++
		}
	}
	if len(res.Summaries) > 0 {
		s.status.LastCapture = now
	}
	if err == nil && advanceTo > 0 {
		s.status.LastUID = advanceTo
	}
	s.mu.Unlock()
	if err != nil {
		return localError{fmt.Errorf("write records for %s: %w", s.id, err)}
	}
	return nil
}

// readMessage consumes one FETCH response. The body usually follows UID
// (go-imap asks for UID first) but FLAGS, INTERNALDATE and RFC822.SIZE may
// come after it, so the record is finished only at the end.
func (s *session) readMessage(batch *jsonstore.Batch, msg *imapclient.FetchMessageData) (uint32, error) {
	var meta jsonstore.Meta
	var pending *jsonstore.Pending
	var raw []byte     // a small body, read whole
	var spill *os.File // body that arrived before its UID
	defer func() {
		if spill != nil {
			spill.Close()
			os.Remove(spill.Name())
		}
	}()
	for item := msg.Next(); item != nil; item = msg.Next() {
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			meta.UID = uint32(it.UID)
		case imapclient.FetchItemDataFlags:
			for _, f := range it.Flags {
				meta.Flags = append(meta.Flags, string(f))
			}
		case imapclient.FetchItemDataInternalDate:
			meta.InternalDate = it.Time
		case imapclient.FetchItemDataRFC822Size:
			meta.Size = it.Size
		case imapclient.FetchItemDataBodySection:
			if it.Literal == nil {
				raw = []byte{} // NIL body: an empty message
				continue
			}
			body := &literalReader{r: it.Literal, left: it.Literal.Size(), s: s}
			if it.Literal.Size() <= inMemoryMax {
				// Small body: read it now and parse it on a worker, so
				// parsing runs in parallel with the stream.
				raw = make([]byte, it.Literal.Size())
				if _, err := io.ReadFull(body, raw); err != nil {
					return 0, fmt.Errorf("read body: %w", err)
				}
				continue
			}
			if meta.UID == 0 {
				f, err := os.CreateTemp(s.m.store.TempDir(), "spill-*")
				if err != nil {
					return 0, localError{fmt.Errorf("spill body: %w", err)}
				}
				spill = f
				if _, err := io.Copy(f, body); err != nil {
					return 0, fmt.Errorf("read body: %w", err)
				}
				continue
			}
			p, err := batch.Parse(meta.UID, body)
			if err != nil {
				return 0, classify(err)
			}
			pending = p
		}
	}
	if meta.UID == 0 {
		return 0, nil // an unsolicited FETCH (flag change); nothing to store
	}
	if raw != nil {
		batch.AddBytes(meta.UID, raw, meta)
		return meta.UID, nil
	}
	if spill != nil && pending == nil {
		if _, err := spill.Seek(0, io.SeekStart); err != nil {
			return 0, localError{err}
		}
		p, err := batch.Parse(meta.UID, spill)
		if err != nil {
			return 0, classify(err)
		}
		pending = p
	}
	if pending == nil {
		return 0, fmt.Errorf("uid %d: server sent no body", meta.UID)
	}
	if err := batch.Finish(pending, meta); err != nil {
		return 0, localError{err}
	}
	return meta.UID, nil
}

// classify tells disk errors (state error) from stream errors (reconnect).
func classify(err error) error {
	var pe *os.PathError
	var le *os.LinkError
	if errors.As(err, &pe) || errors.As(err, &le) {
		return localError{err}
	}
	return err
}

// literalReader reads one message body. A connection that ends cleanly in
// the middle of a literal makes go-imap's reader return io.EOF early; that
// must fail the message, never yield a record of its first megabyte. It
// also keeps the heartbeat fresh while a large body streams.
type literalReader struct {
	r    io.Reader
	left int64
	s    *session
}

func (l *literalReader) Read(p []byte) (int, error) {
	l.s.beat()
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if err == io.EOF && l.left > 0 {
		err = fmt.Errorf("body cut short with %d bytes missing: %w", l.left, io.ErrUnexpectedEOF)
	}
	return n, err
}

// idleLoop waits in IDLE for new mail, leaving it every idle_refresh for a
// NOOP so a dead peer is found even when no mail comes.
func (s *session) idleLoop(ctx context.Context, cn *conn) error {
	refresh := s.watch.IdleRefresh.Duration
	timeout := s.watch.ResponseTimeout.Duration
	for {
		if err := s.takeRequest(); err != nil {
			return err
		}
		cn.dc.expect(timeout)
		idle, err := cn.c.Idle()
		if err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		s.setState(StateIdle, nil, time.Time{})
		// Silence is normal now, until our own refresh.
		cn.dc.expect(refresh + timeout)
		reason, werr := s.waitIdle(ctx, cn, refresh)
		cn.dc.expect(timeout)
		cerr := idle.Close()
		if cerr == nil {
			cerr = idle.Wait()
		}
		if werr != nil {
			return werr
		}
		if cerr != nil {
			return fmt.Errorf("leave idle: %w (%w)", cerr, errConnectionLost)
		}
		if reason == "refresh" {
			if err := cn.c.Noop().Wait(); err != nil {
				return fmt.Errorf("noop: %w", err)
			}
		}
		if err := s.takeRequest(); err != nil {
			return err
		}
		if reason != "mail" {
			// The server's word is checked, not trusted: a mailbox
			// replaced under us, or mail IDLE never announced, costs at
			// most one refresh.
			if err := s.verifyMailbox(cn); err != nil {
				return err
			}
		}
		s.setState(StateSyncing, nil, time.Time{})
		n, err := s.catchUp(ctx, cn)
		if err != nil {
			return err
		}
		switch {
		case reason == "mail":
			s.idlePush++
		case n > 0:
			s.idleUnreliable(n, reason)
		}
	}
}

func (s *session) waitIdle(ctx context.Context, cn *conn, refresh time.Duration) (string, error) {
	t := time.NewTimer(refresh)
	defer t.Stop()
	hb := time.NewTicker(heartbeatEvery)
	defer hb.Stop()
	for {
		s.beat()
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-cn.c.Closed():
			return "", errConnectionLost
		case <-s.newMail:
			return "mail", nil
		case <-s.emptied:
			return "emptied", nil
		case <-t.C:
			return "refresh", nil
		case <-s.wake:
			if err := s.takeRequest(); err != nil {
				return "", err
			}
		case <-hb.C:
		}
	}
}

// pollLoop is for servers without IDLE (or watch.idle false): NOOP and
// search every poll_interval.
func (s *session) pollLoop(ctx context.Context, cn *conn) error {
	interval := s.watch.PollInterval.Duration
	timeout := s.watch.ResponseTimeout.Duration
	hb := time.NewTicker(heartbeatEvery)
	defer hb.Stop()
	for {
		s.setState(StatePolling, nil, time.Time{})
		cn.dc.expect(interval + timeout)
		t := time.NewTimer(interval)
	wait:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-cn.c.Closed():
				t.Stop()
				return errConnectionLost
			case <-s.wake:
				if err := s.takeRequest(); err != nil {
					t.Stop()
					return err
				}
			case <-s.newMail:
				t.Stop()
				break wait
			case <-s.emptied:
				t.Stop()
				break wait
			case <-t.C:
				break wait
			case <-hb.C:
				s.beat()
			}
		}
		s.beat()
		cn.dc.expect(timeout)
		if err := cn.c.Noop().Wait(); err != nil {
			return fmt.Errorf("noop: %w", err)
		}
		if err := s.verifyMailbox(cn); err != nil {
			return err
		}
		if _, err := s.catchUp(ctx, cn); err != nil {
			return err
		}
	}
}
