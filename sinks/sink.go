package sinks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"mailtap/config"
	"mailtap/jsonstore"
)

// failingAfter is how long a sink may keep failing before status pages
// mark it failing rather than retrying.
const failingAfter = 10 * time.Minute

// maxWindow bounds how far a sink with concurrency > 1 reads ahead of its
// oldest unfinished record; the cursor file lists the finished ones among
// them (Ahead), so the window costs memory, not re-deliveries.
const maxWindow = 1024

// pollInterval is the fallback when no notification arrives (a missed
// wake-up, another writer): the journal end is looked at this often.
const pollInterval = 2 * time.Second

// sink runs one configured sink: a reader that walks the journal from the
// cursor and hands entries to concurrency workers, and a tracker that moves
// the cursor past the oldest entries once they are delivered.
type sink struct {
	cfg      config.Sink
	out      string
	dir      string
	patterns []config.MailboxPattern
	d        deliverer
	src      Source
	clock    Clock
	log      *slog.Logger
	m        *Metrics
	window   int
	skip     map[uint64]bool // Ahead of the loaded cursor: done before a restart
	tries    map[uint64]int  // Attempts of the loaded cursor: not reached yet
	base     time.Duration
	rnd      func() float64

	mu       sync.Mutex
	cur      cursorFile    // in memory; persisted by persist
	dirty    bool          // cur changed since the last save
	pending  []*slot       // dispatched, in journal order, not yet passed
	end      uint64        // journal end seen (next seq)
	inflight int           // attempts running
	retrying int           // workers waiting to retry
	next     time.Time     // earliest retry
	saved    chan struct{} // wakes the persister
	freed    chan struct{} // a window slot came free
	stopped  bool

	deadMu sync.Mutex // guards the dead-letter count, apart from mu: it does I/O
	deadFI os.FileInfo
	dead   int // lines in dead.jsonl when deadFI was taken
}

type slot struct {
	e    jsonstore.JournalEntry
	next jsonstore.JournalPos // position after e
	done bool
	// attempts is written by whoever holds the slot (a worker or its
	// timer) with s.mu held, and read by flush to save it.
	attempts int
}

func newSink(cfg config.Sink, out string, d deliverer, src Source, o *Options) (*sink, error) {
	s := &sink{cfg: cfg, out: out, dir: StateDir(out, cfg.Name), d: d, src: src, clock: o.Clock, log: o.Logger.With("sink", cfg.Name),
		m: o.Metrics, base: o.BaseBackoff, rnd: o.Jitter, saved: make(chan struct{}, 1), freed: make(chan struct{}, 1)}
	// With concurrency 1, one record at a time: strict journal order.
	// With more, deliveries may run up to maxWindow entries ahead of the
	// oldest unfinished one (one being retried), so that a record that
	// fails does not hold the others back.
	s.window = 1
	if cfg.Concurrency > 1 {
		s.window = maxWindow
	}
	for _, p := range cfg.Mailboxes {
		mp, err := config.CompileMailboxPattern(p)
		if err != nil {
			return nil, fmt.Errorf("sink %q: mailboxes: %w", cfg.Name, err)
		}
		s.patterns = append(s.patterns, mp)
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("sink %q: %w", cfg.Name, err)
	}
	cur, ok, err := loadCursor(s.dir)
	if err != nil {
		return nil, fmt.Errorf("sink %q: %w", cfg.Name, err)
	}
	if !ok {
		// A new sink starts at the end of the journal: mail captured from
		// now on (replay --since delivers older mail). On a new output
		// dir that is the beginning.
		cur = cursorFile{Pos: src.JournalEnd()}
		if err := saveCursor(s.dir, cur); err != nil {
			return nil, fmt.Errorf("sink %q: %w", cfg.Name, err)
		}
		s.log.Info("sink starts at the end of the journal", "seq", cur.Pos.Seq)
	}
	s.cur = cur
	s.skip = map[uint64]bool{}
	for _, q := range cur.Ahead {
		s.skip[q] = true
	}
	s.tries = map[uint64]int{}
	for q, n := range cur.Attempts {
		s.tries[q] = n
	}
	s.cur.Attempts = nil // flush lists them again from tries and pending
	s.end = src.JournalEnd().Seq
	if n, _ := s.deadLetters(); n == 0 && s.cur.DeadLettering {
		// Its dead letters were replayed (or removed) while it was not
		// running: nothing is left to show it failing for.
		s.cur.DeadLettering, s.cur.FailingSince = false, time.Time{}
	}
	s.m.init(cfg.Name, s.backlogLocked())
	return s, nil
}

// deadLetters is the number of dead letters on file. It costs one stat
// while the file is unchanged, so every status poll may call it; it
// recounts after a change, ours or that of `mailtap replay --dead` in
// another process. dropped reports that the count went down since the
// last call: a replay delivered some.
func (s *sink) deadLetters() (n int, dropped bool) {
	s.deadMu.Lock()
	defer s.deadMu.Unlock()
	f, err := os.Open(deadPath(s.dir))
	if err != nil {
		// None yet, or all replayed and the file gone.
		dropped = s.deadFI != nil && s.dead > 0
		s.deadFI, s.dead = nil, 0
		return 0, dropped
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return s.dead, false
	}
	if old := s.deadFI; old != nil && os.SameFile(old, fi) && old.Size() == fi.Size() && old.ModTime().Equal(fi.ModTime()) {
		return s.dead, false
	}
	n = countLines(f)
	dropped = s.deadFI != nil && n < s.dead
	s.deadFI, s.dead = fi, n
	return n, dropped
}

func (s *sink) matches(e jsonstore.JournalEntry) bool {
	if len(s.patterns) == 0 {
		return true
	}
	name := e.Account + "/" + e.Mailbox
	for _, p := range s.patterns {
		if p.Match(name) {
			return true
		}
	}
	return false
}

// run delivers until ctx ends; the cursor is saved before it returns.
func (s *sink) run(ctx context.Context) {
	jobs := make(chan *slot)
	// A record waiting for its retry does not hold a worker: a timer
	// goroutine (one per waiting record, at most the window) hands it
	// back through retries when its backoff is over.
	retries := make(chan *slot)
	var wg, waiters sync.WaitGroup
	for range s.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var sl *slot
				select {
				case sl = <-retries:
				case j, ok := <-jobs:
					if !ok {
						return
					}
					sl = j
				}
				if wait, again := s.work(ctx, sl); again {
					waiters.Add(1)
					go func() {
						defer waiters.Done()
						s.waitRetry(ctx, sl, wait, retries)
					}()
				}
			}
		}()
	}
	persistDone := make(chan struct{})
	go func() {
		defer close(persistDone)
		s.persistLoop(ctx)
	}()
	s.read(ctx, jobs)
	close(jobs)
	wg.Wait()
	waiters.Wait()
	<-persistDone
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.flush()
	s.d.close()
}

// read walks the journal and dispatches entries, at most window beyond the
// oldest unfinished one.
func (s *sink) read(ctx context.Context, jobs chan<- *slot) {
	note, stop := s.src.JournalNotify()
	defer stop()
	s.mu.Lock()
	r := jsonstore.NewJournalReader(s.out, s.cur.Pos)
	s.mu.Unlock()
	defer r.Close()
	// The end is asked for again only when the reader reaches it: the
	// store holds the journal's lock while it syncs an append.
	end := s.src.JournalEnd()
	s.setEnd(end.Seq)
	for ctx.Err() == nil {
		e, err := r.Next(end)
		if errors.Is(err, io.EOF) {
			if now := s.src.JournalEnd(); now != end {
				end = now
				s.setEnd(end.Seq)
				continue
			}
			// The poll is on real time, not s.clock: a test clock drives
			// retries, and must not make an idle reader spin.
			t := time.NewTimer(pollInterval)
			select {
			case <-ctx.Done():
			case <-note:
			case <-t.C:
			}
			t.Stop()
			end = s.src.JournalEnd()
			s.setEnd(end.Seq)
			continue
		}
		if err != nil {
			s.setError(fmt.Errorf("read journal: %w", err))
			s.log.Error("read journal", "err", err)
			t := time.NewTimer(pollInterval)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			r.Close()
			s.mu.Lock()
			r = jsonstore.NewJournalReader(s.out, s.lastDispatched())
			s.mu.Unlock()
			continue
		}
		sl := &slot{e: e, next: r.Pos()}
		// Wait for room in the window.
		for {
			s.mu.Lock()
			room := len(s.pending) < s.window
			if room {
				s.pending = append(s.pending, sl)
			}
			s.mu.Unlock()
			if room {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-s.freed:
			}
		}
		s.mu.Lock()
		done := s.skip[e.Seq]
		delete(s.skip, e.Seq)
		sl.attempts = s.tries[e.Seq]
		delete(s.tries, e.Seq)
		s.mu.Unlock()
		if done || !s.matches(e) {
			s.finish(sl)
			continue
		}
		select {
		case jobs <- sl:
		case <-ctx.Done():
			return
		}
	}
}

// lastDispatched is where reading resumes after an error: after the newest
// slot dispatched, or the cursor. Called with s.mu held.
func (s *sink) lastDispatched() jsonstore.JournalPos {
	if n := len(s.pending); n > 0 {
		return s.pending[n-1].next
	}
	return s.cur.Pos
}

// work makes one attempt at a record: it is then delivered, dead-lettered,
// or (again) to be retried after wait.
func (s *sink) work(ctx context.Context, sl *slot) (wait time.Duration, again bool) {
	e := sl.e
	s.mu.Lock()
	sl.attempts++
	s.mu.Unlock()
	res := s.attempt(ctx, e, filepath.Join(s.out, filepath.FromSlash(e.Path)), sl.attempts)
	if ctx.Err() != nil {
		// Shutting down: the cursor stays before it, and an attempt we
		// cut short does not count against max_attempts.
		s.mu.Lock()
		sl.attempts--
		s.mu.Unlock()
		return 0, false
	}
	if res.err == nil {
		s.m.deliveries.WithLabelValues(s.cfg.Name, resultDelivered).Inc()
		s.delivered(sl)
		return 0, false
	}
	if res.permanent || (s.cfg.MaxAttempts > 0 && sl.attempts >= s.cfg.MaxAttempts) {
		s.m.deliveries.WithLabelValues(s.cfg.Name, resultDead).Inc()
		s.deadLetter(ctx, sl, res, sl.attempts)
		return 0, false
	}
	s.m.deliveries.WithLabelValues(s.cfg.Name, resultRetry).Inc()
	wait = backoff(sl.attempts, s.base, s.cfg.MaxBackoff.Duration, s.rnd)
	if res.retryAfter > 0 {
		wait = res.retryAfter
	}
	s.failed(res.err, wait)
	s.log.Warn("delivery failed; will retry", "id", e.ID, "attempt", sl.attempts, "status", res.status, "retry_in", wait.Round(time.Millisecond), "err", res.err)
	return wait, true
}

// waitRetry hands sl back to the workers once wait has passed.
func (s *sink) waitRetry(ctx context.Context, sl *slot, wait time.Duration, retries chan<- *slot) {
	defer func() {
		s.mu.Lock()
		s.retrying--
		s.mu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return
	case <-s.clock.After(wait):
	}
	select {
	case <-ctx.Done():
	case retries <- sl:
	}
}

// attempt builds the envelope from disk and delivers it once.
func (s *sink) attempt(ctx context.Context, e jsonstore.JournalEntry, abs string, n int) result {
	body, err := buildEnvelope(s.out, e, s.cfg.MaxBodyBytes)
	if err != nil {
		// A record file that is gone will not come back by retrying.
		return result{err: err, permanent: errors.Is(err, os.ErrNotExist)}
	}
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
	start := s.clock.Now()
	res := s.d.deliver(ctx, &delivery{id: e.ID, absPath: abs, body: body, attempt: n})
	s.m.seconds.WithLabelValues(s.cfg.Name).Observe(s.clock.Now().Sub(start).Seconds())
	s.mu.Lock()
	s.inflight--
	s.mu.Unlock()
	return res
}

func (s *sink) delivered(sl *slot) {
	s.mu.Lock()
	now := s.clock.Now()
	s.cur.Delivered++
	s.cur.LastDelivery = now
	s.cur.LastDeliveredID = sl.e.ID
	s.cur.FailingSince = time.Time{}
	s.cur.DeadLettering = false
	s.mu.Unlock()
	s.finish(sl)
}

func (s *sink) deadLetter(ctx context.Context, sl *slot, res result, attempts int) {
	e := sl.e
	d := DeadLetter{Entry: e, Error: res.err.Error(), Status: res.status, Attempts: attempts, At: s.clock.Now().UTC()}
	// The dead letter must be on disk before the cursor passes the
	// record; if even that fails (a full disk), keep trying.
	for wait := s.base; ; wait = min(2*wait, s.cfg.MaxBackoff.Duration) {
		err := appendDead(s.dir, d)
		if err == nil {
			break
		}
		s.log.Error("cannot write dead letter; will retry", "id", e.ID, "err", err)
		s.setError(err)
		select {
		case <-ctx.Done():
			return
		case <-s.clock.After(wait):
		}
	}
	// The status counts the file, so it shows the dead letter from now:
	// the state follows at once. The sink is failing from now until a
	// delivery succeeds: a receiver that refuses everything is never
	// retried, so this is the only place that can say so.
	s.mu.Lock()
	now := s.clock.Now()
	if s.cur.FailingSince.IsZero() {
		s.cur.FailingSince = now
	}
	s.cur.DeadLettering = true
	s.cur.LastError, s.cur.LastErrorAt = res.err.Error(), now
	s.mu.Unlock()
	s.m.dead.WithLabelValues(s.cfg.Name).Inc()
	s.log.Error("delivery given up: record dead-lettered (mailtap replay --sink "+s.cfg.Name+" --dead re-delivers)",
		"id", e.ID, "attempts", attempts, "status", res.status, "err", res.err)
	s.finish(sl)
}

// finish marks a slot done and moves the cursor past every finished slot
// at the front.
func (s *sink) finish(sl *slot) {
	s.mu.Lock()
	sl.done = true
	moved := false
	for len(s.pending) > 0 && s.pending[0].done {
		s.cur.Pos = s.pending[0].next
		s.pending[0] = nil
		s.pending = s.pending[1:]
		moved = true
	}
	s.dirty = true
	if moved {
		s.m.backlog.WithLabelValues(s.cfg.Name).Set(float64(s.backlogLocked()))
	}
	s.mu.Unlock()
	nudge(s.saved)
	if moved {
		nudge(s.freed)
	}
}

func nudge(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (s *sink) failed(err error, wait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.retrying++
	if s.cur.FailingSince.IsZero() {
		s.cur.FailingSince = now
	}
	s.cur.LastError, s.cur.LastErrorAt = err.Error(), now
	if at := now.Add(wait); s.next.IsZero() || at.Before(s.next) || s.next.Before(now) {
		s.next = at
	}
	s.dirty = true
	nudge(s.saved)
}

func (s *sink) setError(err error) {
	s.mu.Lock()
	s.cur.LastError, s.cur.LastErrorAt = err.Error(), s.clock.Now()
	s.mu.Unlock()
}

func (s *sink) setEnd(seq uint64) {
	s.mu.Lock()
	if seq > s.end {
		s.end = seq
	}
	s.m.backlog.WithLabelValues(s.cfg.Name).Set(float64(s.backlogLocked()))
	s.mu.Unlock()
}

func (s *sink) backlogLocked() int64 {
	if s.end <= s.cur.Pos.Seq {
		return 0
	}
	return int64(s.end - s.cur.Pos.Seq)
}

// persistLoop saves the cursor whenever it moved: one write covers every
// delivery finished while the previous one was being written (group
// commit), which bounds the re-deliveries after a crash to the window.
func (s *sink) persistLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.saved:
		}
		s.flush()
	}
}

func (s *sink) flush() {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return
	}
	c := s.cur
	c.Ahead, c.Attempts = nil, nil
	for _, sl := range s.pending {
		switch {
		case sl.done:
			c.Ahead = append(c.Ahead, sl.e.Seq)
		case sl.attempts > 0:
			if c.Attempts == nil {
				c.Attempts = map[uint64]int{}
			}
			c.Attempts[sl.e.Seq] = sl.attempts
		}
	}
	// Entries loaded at start but not reached yet stay listed.
	for q := range s.skip {
		c.Ahead = append(c.Ahead, q)
	}
	for q, n := range s.tries {
		if c.Attempts == nil {
			c.Attempts = map[uint64]int{}
		}
		c.Attempts[q] = n
	}
	c.UpdatedAt = s.clock.Now().UTC()
	s.dirty = false
	s.mu.Unlock()
	if err := saveCursor(s.dir, c); err != nil {
		// The next delivery tries again; meanwhile a crash would only
		// re-deliver.
		s.log.Error("save sink cursor", "err", err)
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
	}
}

// status is the sink's snapshot for UIs.
func (s *sink) status() Status {
	dead, dropped := s.deadLetters()
	s.mu.Lock()
	defer s.mu.Unlock()
	if dropped && s.cur.DeadLettering {
		// A replay delivered dead letters: the receiver takes them again.
		s.cur.DeadLettering = false
		if s.retrying == 0 {
			s.cur.FailingSince = time.Time{}
		}
		s.dirty = true
		nudge(s.saved)
	}
	now := s.clock.Now()
	st := Status{Name: s.cfg.Name, Type: s.cfg.Type, Target: s.cfg.Target(), Backlog: s.backlogLocked(),
		Delivered: s.cur.Delivered, LastDelivery: s.cur.LastDelivery, LastError: s.cur.LastError, LastErrorAt: s.cur.LastErrorAt,
		FailingSince: s.cur.FailingSince, DeadLetters: dead, InFlight: s.inflight}
	switch {
	case s.stopped:
		st.State = StateStopped
	case s.cur.DeadLettering:
		st.State = StateFailing
		if s.retrying > 0 {
			st.NextRetry = s.next
		}
	case s.retrying > 0 && !s.cur.FailingSince.IsZero() && now.Sub(s.cur.FailingSince) > failingAfter:
		st.State, st.NextRetry = StateFailing, s.next
	case s.retrying > 0:
		st.State, st.NextRetry = StateRetrying, s.next
	case st.Backlog > 0 || s.inflight > 0:
		st.State = StateDelivering
	default:
		st.State = StateIdle
	}
	return st
}
