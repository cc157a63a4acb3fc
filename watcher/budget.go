package watcher

import (
	"context"
	"sync"
	"time"
)

// An account's connections are counted against its budget
// (max_connections): a connection holds a slot from before it dials until
// after it is closed, so the count is never exceeded, not even while a
// dropped connection is being replaced. A server that refuses a login
// because the user has too many connections (ErrServerBusy) shrinks the
// budget to what it evidently allows; the account then watches more of
// its mailboxes by polling on the shared connection. After regrowAfter
// without a refusal the budget grows back by one, up to max_connections,
// so connections freed elsewhere (the user's phone went to sleep) are used
// again; a refusal doubles the wait before the next try.
type connBudget struct {
	mu      sync.Mutex
	max     int
	limit   int
	inUse   int
	changed chan struct{} // closed and replaced whenever limit or inUse changes

	regrowWait time.Duration
	regrowAt   time.Time // zero: not shrunk
}

const (
	regrowAfter    = 10 * time.Minute
	regrowAfterMax = 2 * time.Hour
)

func newConnBudget(max int) *connBudget {
	if max < 1 {
		max = 1
	}
	return &connBudget{max: max, limit: max, changed: make(chan struct{}), regrowWait: regrowAfter}
}

func (b *connBudget) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// acquire waits for a free slot. The returned release gives it back; call
// it once the connection is closed.
// beat is called while waiting, so /healthz sees the loop alive.
func (b *connBudget) acquire(ctx context.Context, beat func()) (release func(), err error) {
	var hb *time.Ticker
	defer func() {
		if hb != nil {
			hb.Stop()
		}
	}()
	for {
		b.mu.Lock()
		if b.inUse < b.limit {
			b.inUse++
			b.notifyLocked()
			b.mu.Unlock()
			var once sync.Once
			return func() {
				once.Do(func() {
					b.mu.Lock()
					b.inUse--
					b.notifyLocked()
					b.mu.Unlock()
				})
			}, nil
		}
		ch := b.changed
		b.mu.Unlock()
		if hb == nil {
			hb = time.NewTicker(heartbeatEvery)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		case <-hb.C:
			beat()
		}
	}
}

// refused records a login refused for too many connections, made while
// holding one slot: the server allows fewer than are in use, so the limit
// drops to one below that (never below one).
func (b *connBudget) refused(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	limit := max(1, min(b.limit, b.inUse)-1)
	if !b.regrowAt.IsZero() {
		// Refused again after growing back: wait longer next time.
		b.regrowWait = min(2*b.regrowWait, regrowAfterMax)
	}
	b.regrowAt = now.Add(b.regrowWait)
	if limit != b.limit {
		b.limit = limit
		b.notifyLocked()
	}
}

// regrow raises the limit by one when its time has come; it reports
// whether it did.
func (b *connBudget) regrow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.regrowAt.IsZero() || now.Before(b.regrowAt) || b.limit >= b.max {
		return false
	}
	b.limit++
	if b.limit >= b.max {
		b.regrowAt = time.Time{}
		b.regrowWait = regrowAfter
	} else {
		b.regrowAt = now.Add(b.regrowWait)
	}
	b.notifyLocked()
	return true
}

// snapshot returns the limit, the slots in use, and a channel closed at
// the next change.
func (b *connBudget) snapshot() (limit, inUse int, changed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit, b.inUse, b.changed
}

// nextRegrow is when regrow may next raise the limit; zero if never.
func (b *connBudget) nextRegrow() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.regrowAt
}
