package watcher

import (
	"context"
	"sync"
)

// Hub fans events out to subscribers. Publish never blocks: each subscriber
// has a bounded ring buffer, and when it is full the oldest event is dropped
// and counted, so a frozen UI can never slow the capture path.
type Hub struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: make(map[*Subscription]struct{})} }

// Subscribe registers a subscriber whose buffer holds at most buffer events
// (minimum 1). Call Close when done.
func (h *Hub) Subscribe(buffer int) *Subscription {
	if buffer < 1 {
		buffer = 1
	}
	s := &Subscription{hub: h, buf: make([]Event, buffer), ready: make(chan struct{}, 1), closed: make(chan struct{})}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Publish delivers e to every subscriber without waiting for any of them.
func (h *Hub) Publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.push(e)
	}
}

// Subscription is one subscriber's view of the hub.
type Subscription struct {
	hub *Hub

	mu      sync.Mutex
	buf     []Event // ring
	head, n int
	dropped int

	ready     chan struct{} // 1-slot: "something to read"
	closed    chan struct{}
	closeOnce sync.Once
}

func (s *Subscription) push(e Event) {
	s.mu.Lock()
	if s.n == len(s.buf) {
		s.head = (s.head + 1) % len(s.buf)
		s.n--
		s.dropped++
	}
	s.buf[(s.head+s.n)%len(s.buf)] = e
	s.n++
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// pop returns the next event; a pending Dropped count comes first so the
// subscriber learns of the gap before it sees what followed it.
func (s *Subscription) pop() (Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped > 0 {
		d := Dropped{N: s.dropped}
		s.dropped = 0
		return d, true
	}
	if s.n == 0 {
		return nil, false
	}
	e := s.buf[s.head]
	s.buf[s.head] = nil
	s.head = (s.head + 1) % len(s.buf)
	s.n--
	return e, true
}

// Next blocks until an event is available, ctx is done, or the subscription
// is closed; in the latter two cases it returns an error.
func (s *Subscription) Next(ctx context.Context) (Event, error) {
	for {
		if e, ok := s.pop(); ok {
			return e, nil
		}
		select {
		case <-s.ready:
		case <-s.closed:
			return nil, context.Canceled
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close unregisters the subscription and wakes a blocked Next.
func (s *Subscription) Close() {
	s.closeOnce.Do(func() {
		s.hub.mu.Lock()
		delete(s.hub.subs, s)
		s.hub.mu.Unlock()
		close(s.closed)
	})
}
