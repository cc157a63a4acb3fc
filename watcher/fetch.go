package watcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailtap/jsonstore"
)

// Capture: a first start's backfill, UID FETCH streaming into batches,
// and the committer that makes each batch durable in order.

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
