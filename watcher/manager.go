// Package watcher owns the IMAP side of mailtap: each account's
// connections within its budget (account.go), the mailboxes its config
// selects, and for each mailbox a session (dial, TLS, authenticate,
// EXAMINE, catch up from the checkpoint, IDLE, NOTIFY or poll, detect dead
// connections, back off and reconnect), the Pause/Resume/Reconnect
// controls, and the events published through a Hub.
// It hands message bytes to jsonstore and knows nothing of UIs or the JSON
// layout.
package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"mailtap/config"
	"mailtap/jsonstore"
)

// Options are the optional parts of a Manager; nil means defaults.
type Options struct {
	Logger    *slog.Logger // default: slog.Default()
	Hub       *Hub         // default: a new hub
	Metrics   *Metrics     // default: none
	Once      bool         // catch up every mailbox once, then Run returns
	BatchSize int          // UIDs per FETCH and per group commit; default 200
	Clock     Clock        // times the waits between attempts; default the real clock
}

// Manager runs every account (and through them a session per watched
// mailbox) and is the Controller that UIs use. New does no I/O; Run does the work.
type Manager struct {
	cfg       *config.Config
	store     *jsonstore.Store
	log       *slog.Logger
	hub       *Hub
	metrics   *Metrics
	once      bool
	batchSize int
	started   time.Time
	clock     Clock

	accounts []*account
	mu       sync.RWMutex
	sessions []*session // config order, then mailboxes found by patterns
	byID     map[string]*session
	running  sync.WaitGroup
}

var _ Controller = (*Manager)(nil)

// ErrUnknownMailbox is returned by controls given an id that is not watched.
var ErrUnknownMailbox = errors.New("unknown mailbox")

// New prepares sessions for every (account, mailbox) of cfg.
func New(cfg *config.Config, store *jsonstore.Store, opts *Options) *Manager {
	if opts == nil {
		opts = &Options{}
	}
	m := &Manager{cfg: cfg, store: store, log: opts.Logger, hub: opts.Hub, metrics: opts.Metrics,
		once: opts.Once, batchSize: opts.BatchSize, byID: map[string]*session{}, started: time.Now(), clock: opts.Clock}
	if m.clock == nil {
		m.clock = realClock{}
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.hub == nil {
		m.hub = NewHub()
	}
	if m.batchSize <= 0 {
		m.batchSize = 200
	}
	m.metrics.watchContacts(m.Status)
	for i := range cfg.Accounts {
		a := newAccount(m, &cfg.Accounts[i])
		m.accounts = append(m.accounts, a)
		for _, mb := range a.cfg.Mailboxes {
			for _, s := range a.sessions {
				if s.id.Mailbox == mb {
					m.addSession(s)
				}
			}
		}
	}
	return m
}

// addSession registers a mailbox for the controls and the status.
func (m *Manager) addSession(s *session) {
	m.metrics.init(s.id)
	m.mu.Lock()
	m.sessions = append(m.sessions, s)
	m.byID[s.id.String()] = s
	m.mu.Unlock()
}

func (m *Manager) list() []*session {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.sessions)
}

// accountStagger spreads the start of many accounts over up to
// accountStaggerMax, so a service watching hundreds of accounts does not
// log in to all of them in the same instant.
const (
	accountStaggerStep = 25 * time.Millisecond
	accountStaggerMax  = 10 * time.Second
)

// Run runs every session until ctx is cancelled (then returns nil after each
// has finished its record in flight and written its checkpoint). In once mode
// it returns when every mailbox has caught up, with the errors of those that
// could not.
func (m *Manager) Run(ctx context.Context) error {
	errs := make([]error, len(m.accounts))
	spread := min(time.Duration(len(m.accounts))*accountStaggerStep, accountStaggerMax)
	for i, a := range m.accounts {
		m.running.Add(1)
		go func() {
			defer m.running.Done()
			if i > 0 && spread > 0 && !m.once {
				t := time.NewTimer(rand.N(spread))
				select {
				case <-ctx.Done():
					t.Stop()
				case <-t.C:
				}
			}
			errs[i] = a.run(ctx)
		}()
	}
	m.running.Wait()
	return errors.Join(errs...)
}

// Hub is where events are published.
func (m *Manager) Hub() *Hub { return m.hub }

// Subscribe is Hub().Subscribe.
func (m *Manager) Subscribe(buffer int) *Subscription { return m.hub.Subscribe(buffer) }

func (m *Manager) each(id string, f func(*session)) error {
	if id == "" {
		for _, s := range m.list() {
			f(s)
		}
		return nil
	}
	m.mu.RLock()
	s, ok := m.byID[id]
	m.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownMailbox, id)
	}
	f(s)
	return nil
}

// Pause stops capturing (the connection is closed); mail that arrives
// meanwhile stays on the server and is captured on Resume.
func (m *Manager) Pause(id string) error {
	return m.each(id, func(s *session) { s.setPaused(true) })
}

// Resume undoes Pause.
func (m *Manager) Resume(id string) error {
	return m.each(id, func(s *session) { s.setPaused(false) })
}

// Reconnect drops the connection now and reconnects at once, resetting
// backoff (also cutting short a pending auth retry).
func (m *Manager) Reconnect(id string) error {
	return m.each(id, func(s *session) { s.requestReconnect() })
}

// Status returns a snapshot of every mailbox, in config order.
func (m *Manager) Status() []MailboxStatus {
	ss := m.list()
	out := make([]MailboxStatus, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.snapshot())
	}
	return out
}

// Healthy reports whether every session loop is alive: each proves it
// every few seconds while waiting, and on every message while capturing. A
// loop stuck longer than the allowed silence is wedged.
func (m *Manager) Healthy() (bool, string) {
	limit := 2*m.cfg.Watch.ResponseTimeout.Duration + 4*heartbeatEvery
	now := time.Now()
	for _, s := range m.list() {
		if s.a.exclusion(s) != "" {
			continue // not watched (excluded on this server): no loop to prove
		}
		hb := time.Unix(0, s.heartbeat.Load())
		if now.Sub(hb) > limit {
			return false, fmt.Sprintf("%s: session loop silent for %s", s.id, now.Sub(hb).Round(time.Second))
		}
	}
	return true, "all session loops alive"
}

// Ready reports whether every mailbox is connected (idle, notify, polling
// or syncing) or deliberately paused, and has heard from its server lately:
// a state that says "idle" proves nothing if the server has been silent
// for longer than two refreshes.
func (m *Manager) Ready() (bool, string) {
	now := time.Now()
	for _, s := range m.list() {
		if s.a.exclusion(s) != "" {
			continue
		}
		st := s.snapshot()
		switch st.State {
		case StateIdle, StateNotify, StatePolling, StateSyncing, StatePaused:
		default:
			why := fmt.Sprintf("%s is %s", st.Mailbox, st.State)
			if st.Err != "" {
				why += ": " + st.Err
			}
			return false, why
		}
		if st.State == StatePaused {
			continue
		}
		last := st.LastServerContact
		if last.IsZero() {
			last = m.started
		}
		if limit := s.contactLimit(st.State); now.Sub(last) > limit {
			return false, fmt.Sprintf("%s: no contact with the server for %s (more than %s)", st.Mailbox, now.Sub(last).Round(time.Second), limit)
		}
	}
	return true, "every mailbox connected or paused"
}
