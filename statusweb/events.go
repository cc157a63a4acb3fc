package statusweb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"mailtap/record"
	"mailtap/watcher"
)

const (
	// streamBuffer is each SSE client's hub buffer. A client that falls
	// further behind loses events and gets a fresh full status instead.
	streamBuffer = 256
	// streamBatch caps how many queued events one update folds together.
	streamBatch = 512
	// streamThrottle spaces updates, so a backfill of thousands of mails
	// becomes a few updates a second rather than thousands of repaints.
	streamThrottle = 150 * time.Millisecond
	// streamKeepalive is the longest a stream stays silent: after that
	// long without an event it sends a "ping", so proxies keep it open, a
	// vanished client is noticed, and the page can tell a stream that went
	// dead without closing (it gives up after 2.5 intervals).
	streamKeepalive = 20 * time.Second
	// streamWriteTimeout bounds each write to a client that stopped reading.
	streamWriteTimeout = 10 * time.Second
)

// capturedJSON is the "captured" event: new mail (newest first) and the
// mailboxes, whose counters changed with it.
type capturedJSON struct {
	Items     []recentItem  `json:"items"`
	Mailboxes []mailboxJSON `json:"mailboxes"`
}

// pingJSON is the "ping" event: the stream is alive. It also carries what
// changes without an event (server contact, warnings), so a quiet page
// does not show a contact ever older than the real one.
type pingJSON struct {
	// IntervalMS is the longest silence between events: the page
	// watchdog's unit.
	IntervalMS int64         `json:"interval_ms"`
	Now        string        `json:"now"`
	Mailboxes  []contactJSON `json:"mailboxes"`
}

// contactJSON is the part of mailboxJSON that a ping refreshes.
type contactJSON struct {
	ID                string   `json:"id"`
	LastServerContact *apiTime `json:"last_server_contact"`
	Warning           string   `json:"warning"`
	WarningAt         *apiTime `json:"warning_at"`
}

func (s *Server) ping() pingJSON {
	mbs := s.mailboxes()
	p := pingJSON{IntervalMS: s.keepalive.Milliseconds(), Now: record.FormatTime(time.Now()), Mailboxes: make([]contactJSON, len(mbs))}
	for i, mb := range mbs {
		p.Mailboxes[i] = contactJSON{ID: mb.ID, LastServerContact: mb.LastServerContact, Warning: mb.Warning, WarningAt: mb.WarningAt}
	}
	return p
}

// handleEvents serves GET /api/events as Server-Sent Events:
//
//	event: status    the full statusJSON (on connect, on state changes, and
//	                 after this client lost events)
//	event: captured  capturedJSON
//	event: ping      pingJSON, on connect and after every keepalive
//	                 interval without another event
//
// The request's own goroutine reads a hub subscription until the client
// goes away or the server shuts down.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		return
	}
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		// The page falls back to polling /api/status.
		writeError(w, http.StatusServiceUnavailable, "too many event streams open")
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.closing, cancel)
	defer stop()

	// Subscribe before the first snapshot, so nothing falls between them;
	// the page drops items it already has by id.
	sub := s.w.Subscribe(streamBuffer)
	defer sub.Close()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	var lastSent time.Time
	send := func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return err
		}
		lastSent = time.Now()
		return rc.Flush()
	}
	rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	// retry: how long the browser waits before reconnecting a broken stream.
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	if err := send("status", s.status()); err != nil {
		return
	}
	// The first ping tells the page the interval before it needs it.
	if err := send("ping", s.ping()); err != nil {
		return
	}

	drained, drainedCancel := context.WithCancel(ctx)
	drainedCancel() // Next on a done context only returns what is queued
	throttle := time.NewTimer(streamThrottle)
	throttle.Stop()
	defer throttle.Stop()
	for {
		// The ping is due one interval after the last write of any kind,
		// so events that send nothing cannot hold it back.
		e, err := nextWithin(ctx, sub, time.Until(lastSent.Add(s.keepalive)))
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, context.DeadlineExceeded) {
			if err := send("ping", s.ping()); err != nil {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		full := false
		var items []recentItem
		for n := 0; e != nil && n < streamBatch; n++ {
			switch e := e.(type) {
			case watcher.Captured:
				items = append(items, itemOf(e))
			case watcher.StateChanged, watcher.Dropped:
				full = true
			}
			e, _ = sub.Next(drained)
		}
		if e != nil {
			// The batch limit cut a burst short: a full snapshot covers the
			// rest, and the event in hand is recent enough to show.
			full = true
			if c, ok := e.(watcher.Captured); ok {
				items = append(items, itemOf(c))
			}
		}
		if full {
			if err := send("status", s.status()); err != nil {
				return
			}
		}
		if len(items) > 0 {
			// The feeder may not have put these in the ring yet, so they go
			// out even after a full status.
			for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
				items[i], items[j] = items[j], items[i]
			}
			if len(items) > recentSize {
				items = items[:recentSize]
			}
			if err := send("captured", capturedJSON{Items: items, Mailboxes: s.mailboxes()}); err != nil {
				return
			}
		}
		throttle.Reset(streamThrottle)
		select {
		case <-ctx.Done():
			return
		case <-throttle.C:
		}
	}
}

// nextWithin waits up to d for the next event, or returns
// context.DeadlineExceeded.
func nextWithin(ctx context.Context, sub *watcher.Subscription, d time.Duration) (watcher.Event, error) {
	if d <= 0 {
		return nil, context.DeadlineExceeded
	}
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return sub.Next(wctx)
}
