package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"mailtap/config"
	"mailtap/jsonstore"
)

// Source is the store's side of the journal; *jsonstore.Store implements it.
type Source interface {
	// JournalEnd is the position after the last durable entry.
	JournalEnd() jsonstore.JournalPos
	// JournalNotify wakes the caller after appends without ever blocking
	// the store; stop ends the notifications.
	JournalNotify() (note <-chan struct{}, stop func())
}

// Options tune a Manager; the zero value is fine.
type Options struct {
	Logger  *slog.Logger // nil: slog.Default()
	Metrics *Metrics     // nil: not exported
	Version string       // for the User-Agent
	Clock   Clock        // nil: the real clock
	// BaseBackoff is the wait after a first failure (default 1s).
	BaseBackoff time.Duration
	// Jitter returns a number in [0, 1) (default math/rand).
	Jitter func() float64
}

func (o *Options) withDefaults() *Options {
	r := Options{}
	if o != nil {
		r = *o
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.Metrics == nil {
		r.Metrics = NewMetrics(nil)
	}
	if r.Clock == nil {
		r.Clock = realClock{}
	}
	if r.BaseBackoff <= 0 {
		r.BaseBackoff = baseBackoff
	}
	if r.Jitter == nil {
		r.Jitter = jitter
	}
	return &r
}

// States of a sink.
const (
	StateIdle       = "idle"       // nothing to deliver
	StateDelivering = "delivering" // backlog being worked off
	StateRetrying   = "retrying"   // the last attempt failed; waiting to retry
	StateFailing    = "failing"    // retrying for more than 10 minutes, or dead-lettering until a delivery succeeds
	StateStopped    = "stopped"
)

// Status is a snapshot of one sink for the TUI, the status page and
// `mailtap sinks`. It carries no secret: Target is the URL's scheme and
// host, or the program.
type Status struct {
	Name         string    `json:"name"`
	Type         string    `json:"type"`
	Target       string    `json:"target"`
	State        string    `json:"state"`
	Backlog      int64     `json:"backlog"`
	InFlight     int       `json:"in_flight"`
	Delivered    int64     `json:"delivered"`
	DeadLetters  int       `json:"dead_letters"`
	LastDelivery time.Time `json:"last_delivery,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	NextRetry    time.Time `json:"next_retry,omitzero"`
}

// Failing reports whether the status pages should mark the sink failing at
// now: its state is failing (retrying for longer than ten minutes, or
// dead-lettering what it is given, which no waiting will fix), or a stopped
// sink's snapshot says it had been failing for that long.
func (s Status) Failing(now time.Time) bool {
	if s.State == StateFailing {
		return true
	}
	return !s.FailingSince.IsZero() && now.Sub(s.FailingSince) > failingAfter && s.State != StateIdle
}

// Manager runs every configured sink.
type Manager struct {
	sinks []*sink
}

// New prepares the sinks of cfg for the output dir out: it reads their
// cursors (a new sink's cursor is the journal's end) and their secrets and
// CA files. It starts nothing.
func New(cfgs []config.Sink, out string, src Source, opts *Options) (*Manager, error) {
	o := opts.withDefaults()
	m := &Manager{}
	for _, c := range cfgs {
		d, err := newDeliverer(c, o.Version)
		if err != nil {
			return nil, err
		}
		s, err := newSink(c, out, d, src, o)
		if err != nil {
			d.close()
			return nil, err
		}
		m.sinks = append(m.sinks, s)
	}
	return m, nil
}

func newDeliverer(c config.Sink, version string) (deliverer, error) {
	switch c.Type {
	case config.SinkWebhook:
		return newWebhook(c, version)
	case config.SinkCommand:
		return newCommand(c), nil
	}
	return nil, fmt.Errorf("sink %q: unknown type %q", c.Name, c.Type)
}

// Run delivers until ctx ends, then saves every cursor and returns nil.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range m.sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Status returns a snapshot of every sink, in config order.
func (m *Manager) Status() []Status {
	if m == nil {
		return nil
	}
	out := make([]Status, 0, len(m.sinks))
	for _, s := range m.sinks {
		out = append(out, s.status())
	}
	return out
}

// StatusFunc is m.Status, or nil for a nil Manager (no sinks configured),
// as the UIs' options want it.
func (m *Manager) StatusFunc() func() []Status {
	if m == nil {
		return nil
	}
	return m.Status
}

// Settled reports whether no sink has anything it could deliver now: each
// has delivered its whole backlog, or is waiting to retry a failure.
// `mailtap --once` stops its sinks then.
func (m *Manager) Settled() bool {
	for _, s := range m.sinks {
		s.setEnd(s.src.JournalEnd().Seq) // the reader may not have woken yet
		st := s.status()
		if st.State == StateRetrying || st.State == StateFailing {
			continue
		}
		if st.Backlog > 0 || st.InFlight > 0 {
			return false
		}
	}
	return true
}
