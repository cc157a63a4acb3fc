package watcher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"mailtap/config"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// An account owns its connections (at most max_connections, see
// connBudget) and serves all its mailboxes over them:
//
//   - one mailbox: one connection of its own in IDLE, as ever;
//   - several, on a server with NOTIFY (RFC 5465): one shared connection
//     hears of new mail in all of them (state "notify");
//   - several, without NOTIFY: the first max_connections − 1 by priority
//     (INBOX first, then config order) get a connection of their own in
//     IDLE, and the shared connection checks the rest with STATUS every
//     poll_interval, fetching only where UIDNEXT moved (state "polling").
//     When they all fit in the budget, each gets its own connection and
//     the shared one closes.
//
// The shared connection also learns the server's capabilities and its
// mailbox list, so the plan is made, and remade, on it: when the budget
// shrinks (a refused login) or grows back.

// laneStagger spaces the first connections of an account, so that a
// start (or a server restart) never sends every login at once.
const laneStagger = 150 * time.Millisecond

type account struct {
	m      *Manager
	cfg    *config.Account
	log    *slog.Logger
	budget *connBudget
	wake   chan struct{} // 1-slot: a control for one of its mailboxes

	// patterns: the config selects mailboxes by pattern or special-use
	// name, so the set is known only from the server's LIST.
	patterns bool

	mu        sync.Mutex
	sessions  []*session // priority order
	dedicated map[*session]*lane
	excluded  map[*session]string // literal names exclude removed on this server: why
}

// lane is a dedicated connection's goroutine.
type lane struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func newAccount(m *Manager, cfg *config.Account) *account {
	a := &account{m: m, cfg: cfg, log: m.log.With("account", cfg.Name), budget: newConnBudget(cmp.Or(cfg.MaxConnections, config.DefaultMaxConnections)),
		wake: make(chan struct{}, 1), dedicated: map[*session]*lane{}, excluded: map[*session]string{}}
	for _, mb := range cfg.Mailboxes {
		if config.EntryKindOf(mb) != config.EntryLiteral {
			a.patterns = true
			continue
		}
		a.sessions = append(a.sessions, newSession(m, a, mb))
	}
	a.sessions = byPriority(a.sessions)
	return a
}

// adopt applies a LIST's selection: a session for every mailbox a pattern
// found that has none yet (published to the Manager, so UIs and controls
// see it), the priority order of the selection, and the literal names
// exclude removed. Mailboxes that went away keep their session; checking
// them shows the error. It reports whether a mailbox was added.
func (a *account) adopt(sel selection) (added bool) {
	a.mu.Lock()
	var fresh []*session
	order := make([]*session, 0, len(sel.Mailboxes))
	taken := map[*session]bool{}
	for _, mb := range sel.Mailboxes {
		var s *session
		for _, cand := range a.sessions {
			if !taken[cand] && sameMailbox(cand.id.Mailbox, mb.Name) {
				s = cand
				break
			}
		}
		if s == nil {
			s = newSession(a.m, a, mb.Name)
			a.sessions = append(a.sessions, s)
			fresh = append(fresh, s)
		}
		taken[s] = true
		order = append(order, s)
	}
	for _, s := range a.sessions {
		if !taken[s] {
			order = append(order, s) // missing or gone: last
		}
	}
	a.sessions = order
	clear(a.excluded)
	for _, ex := range sel.Excluded {
		for _, s := range a.sessions {
			if sameMailbox(s.id.Mailbox, ex.Name) {
				a.excluded[s] = ex.String()
			}
		}
	}
	a.mu.Unlock()
	for _, s := range fresh {
		a.m.addSession(s)
		a.log.Info("watching a mailbox the config's patterns select", "mailbox", s.id.Mailbox)
	}
	for _, entry := range sel.Unmatched {
		a.log.Debug("a mailboxes entry matches no mailbox on the server", "entry", entry)
	}
	return len(fresh) > 0
}

// exclusion says why s is not watched, "" if it is.
func (a *account) exclusion(s *session) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.excluded[s]
}

// byPriority puts INBOX first and keeps the config order otherwise: the
// mailboxes people watch most get push first.
func byPriority(ss []*session) []*session {
	out := slices.Clone(ss)
	slices.SortStableFunc(out, func(x, y *session) int { return inboxFirst(x.id.Mailbox, y.id.Mailbox) })
	return out
}

func inboxFirst(x, y string) int {
	xi, yi := strings.EqualFold(x, "INBOX"), strings.EqualFold(y, "INBOX")
	switch {
	case xi && !yi:
		return -1
	case yi && !xi:
		return 1
	}
	return 0
}

func (a *account) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *account) list() []*session {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.sessions)
}

// run serves the account until ctx ends; in once mode until every mailbox
// has caught up once.
func (a *account) run(ctx context.Context) error {
	if a.m.once {
		return a.runOnce(ctx)
	}
	ss := a.list()
	if len(ss) == 1 && !a.patterns {
		return ss[0].run(ctx)
	}
	defer a.setDedicated(ctx, nil)
	a.runShared(ctx)
	return nil
}

// runOnce catches up every mailbox, as many at a time as the budget allows.
func (a *account) runOnce(ctx context.Context) error {
	if a.patterns {
		if err := a.discover(ctx); err != nil {
			return fmt.Errorf("%s: %w", a.cfg.Name, err)
		}
	}
	ss := a.list()
	errs := make([]error, len(ss))
	var wg sync.WaitGroup
	for i, s := range ss {
		wg.Go(func() {
			if err := s.run(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", s.id, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// discover lists the server's mailboxes once, for --once with patterns.
func (a *account) discover(ctx context.Context) error {
	secret, err := a.cfg.Secret(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", errSecretSource, err)
	}
	release, err := a.budget.acquire(ctx, func() {})
	if err != nil {
		return err
	}
	defer release()
	c, dc, err := dial(ctx, a.cfg, &a.m.cfg.Watch, &imapclient.Options{}, nil)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer func() {
		stop()
		sayGoodbye(c, dc)
		c.Close()
	}()
	if err := login(c, a.cfg, secret); err != nil {
		return err
	}
	dc.expect(a.m.cfg.Watch.ResponseTimeout.Duration)
	list, err := listAll(c)
	if err != nil {
		return err
	}
	a.adopt(selectMailboxes(list, a.cfg.Mailboxes, a.cfg.Exclude))
	return nil
}

// plan decides which mailboxes get a connection of their own, starts and
// stops their lanes, and returns the rest: those the shared connection
// serves. It is called on the shared connection's goroutine only.
func (a *account) plan(ctx context.Context, notify bool) (shared []*session) {
	var ss []*session
	for _, s := range a.list() {
		if why := a.exclusion(s); why != "" {
			s.setState(StateStopped, fmt.Errorf("not watched: %s", why), time.Time{})
			continue
		}
		ss = append(ss, s)
	}
	limit, _, _ := a.budget.snapshot()
	n := ownConnections(len(ss), limit, notify, a.patterns)
	a.setDedicated(ctx, ss[:n])
	return ss[n:]
}

// ownConnections says how many of n mailboxes, in priority order, get a
// connection of their own within limit connections; the rest share one.
// With NOTIFY the shared connection hears of every mailbox, so none needs
// its own; with patterns the shared one stays, to see new folders.
func ownConnections(n, limit int, notify, patterns bool) int {
	switch {
	case notify:
		return 0
	case n <= limit && !patterns:
		return n
	default:
		return min(max(limit-1, 0), n)
	}
}

// plannedStates is how each of names (the account's mailboxes, in the
// config's order) will be watched on a server with caps: the state the
// running watcher shows once caught up. It is plan's rule, for `mailtap
// check`, at the full budget (a server's refusals shrink it at run time).
func plannedStates(acct *config.Account, w *config.Watch, caps imap.CapSet, names []string) []State {
	patterns := false
	for _, mb := range acct.Mailboxes {
		if config.EntryKindOf(mb) != config.EntryLiteral {
			patterns = true
		}
	}
	idle := w.IDLE && (caps.Has(imap.CapIdle) || caps.Has(imap.CapIMAP4rev2))
	own := StatePolling
	if idle {
		own = StateIdle
	}
	out := make([]State, len(names))
	if len(names) == 1 && !patterns {
		out[0] = own // the one mailbox runs on a connection of its own
		return out
	}
	notify := w.IDLE && w.Notify && caps.Has(imap.Cap("NOTIFY"))
	order := make([]int, len(names))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int { return inboxFirst(names[x], names[y]) }) // byPriority's order
	k := ownConnections(len(names), cmp.Or(acct.MaxConnections, config.DefaultMaxConnections), notify, patterns)
	for rank, i := range order {
		switch {
		case rank < k:
			out[i] = own
		case notify:
			out[i] = StateNotify
		default:
			out[i] = StatePolling
		}
	}
	return out
}

// setDedicated makes exactly want run on connections of their own. A lane
// that is no longer wanted is stopped and waited for before its mailbox is
// served elsewhere, so no mailbox is ever served twice.
func (a *account) setDedicated(ctx context.Context, want []*session) {
	a.mu.Lock()
	var stop []*lane
	for s, l := range a.dedicated {
		if !slices.Contains(want, s) {
			stop = append(stop, l)
			delete(a.dedicated, s)
		}
	}
	a.mu.Unlock()
	for _, l := range stop {
		l.cancel()
		<-l.done
	}
	if ctx.Err() != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	started := 0
	for _, s := range want {
		if _, ok := a.dedicated[s]; ok {
			continue
		}
		lctx, cancel := context.WithCancel(ctx)
		l := &lane{cancel: cancel, done: make(chan struct{})}
		a.dedicated[s] = l
		delay := time.Duration(started)*laneStagger + rand.N(laneStagger)
		started++
		go func() {
			defer close(l.done)
			defer cancel()
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-lctx.Done():
				return
			case <-t.C:
			}
			s.run(lctx)
		}()
	}
}

// isDedicated reports whether s runs on a connection of its own.
func (a *account) isDedicated(s *session) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.dedicated[s]
	return ok
}
