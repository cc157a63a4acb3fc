package watcher_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailtap/internal/testimap"
	"mailtap/watcher"
)

// TestDovecot_connectionLimitIsNotAuthFailure: six folders of one account
// on a Dovecot that allows the user three connections. Today each folder is
// its own connection, so three are refused ("NO [LIMIT] Maximum number of
// connections from user+IP exceeded"). Those refusals must not be taken for
// a wrong password (no auth_failed, no auth-failure metric), must be
// retried slowly rather than in the network backoff's quick loop, and the
// refused folders must get in once connections free up.
func TestDovecot_connectionLimitIsNotAuthFailure(t *testing.T) {
	const allowed = 3
	boxes := []string{"INBOX", "Box1", "Box2", "Box3", "Box4", "Box5"}
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{
		Mailboxes:   boxes[1:],
		ExtraConfig: fmt.Sprintf("protocol imap {\n  mail_max_userip_connections = %d\n}\n", allowed),
	})
	for i, b := range boxes {
		dc.DeliverMany(t, b, [][]byte{msg("before "+b, i)})
	}
	// Network backoff in testConfig is at most 500 ms; the budget backoff
	// here 2–4 s (10 s – 5 min by default), so the two are told apart.
	const busyMin, busyMax = 2 * time.Second, 4 * time.Second
	defer watcher.SetBusyRetry(busyMin, busyMax)()

	out := t.TempDir()
	cfg := testConfig(dc, out)
	cfg.Accounts[0].Mailboxes = boxes
	reg := prometheus.NewRegistry()
	h := start(t, cfg, &watcher.Options{Metrics: watcher.NewMetrics(reg)})

	// Collect every state change from the start.
	var mu sync.Mutex
	refusals := map[string][]time.Time{}
	var authFailed []string
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			ev, err := h.sub.Next(ctx)
			if err != nil {
				return
			}
			sc, ok := ev.(watcher.StateChanged)
			if !ok {
				continue
			}
			mu.Lock()
			if sc.State == watcher.StateAuthFailed {
				authFailed = append(authFailed, sc.Mailbox.String()+": "+sc.Err)
			}
			if sc.State == watcher.StateReconnecting && strings.Contains(sc.Err, "Maximum number of connections") {
				refusals[sc.Mailbox.Mailbox] = append(refusals[sc.Mailbox.Mailbox], sc.At)
			}
			mu.Unlock()
		}
	}()

	idle := func() (in, out []string) {
		for _, st := range h.m.Status() {
			if st.State == watcher.StateIdle {
				in = append(in, st.Mailbox.Mailbox)
			} else {
				out = append(out, st.Mailbox.Mailbox)
			}
		}
		return in, out
	}
	waitFor := func(what string, timeout time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v; status %+v\nlog:\n%s", what, timeout, h.m.Status(), h.logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Dovecot's count is not atomic with concurrent logins, so now and then
	// one more than allowed gets in; what matters is that some are refused.
	waitFor("every folder idle or refused", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		in, others := idle()
		for _, b := range others {
			if len(refusals[b]) == 0 {
				return false
			}
		}
		return len(in) >= allowed && len(others) > 0
	})
	window := 3 * busyMax
	time.Sleep(window) // the refused folders keep retrying meanwhile
	in, refused := idle()
	// Not exactly allowed: Dovecot counts concurrent logins loosely (seen:
	// two over the limit under -race); the property is that some are
	// refused, as busy, and keep retrying.
	if len(in) < allowed || len(refused) == 0 {
		t.Fatalf("idle %v, others %v: want at least %d idle and some refused", in, refused, allowed)
	}
	mu.Lock()
	for _, b := range refused {
		n := len(refusals[b])
		// Delays are jittered in [d/2, d] from busyMin up: in the first
		// 20 s + window at most a handful; the network backoff (≤ 500 ms)
		// would have made dozens.
		if n < 2 {
			t.Errorf("%s refused %d times: want it to keep retrying", b, n)
		}
		if limit := 2 + int((20*time.Second+window)/(busyMin/2)); n > limit {
			t.Errorf("%s refused %d times: a tight loop (limit %d)", b, n, limit)
		}
		for i := 1; i < len(refusals[b]); i++ {
			if gap := refusals[b][i].Sub(refusals[b][i-1]); gap < busyMin/2-100*time.Millisecond {
				t.Errorf("%s: retry %d after %v, want ≥ %v", b, i, gap, busyMin/2)
			}
		}
	}
	mu.Unlock()
	for _, st := range h.m.Status() {
		if st.State == watcher.StateReconnecting && !strings.Contains(st.Err, "too many connections") {
			t.Errorf("%s: reason %q does not say what happened", st.Mailbox, st.Err)
		}
	}

	// Free connections: pause the folders that got in; the refused ones
	// get in at their next retry.
	for _, b := range in {
		if err := h.m.Pause("acct/" + b); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("paused folders closed", 10*time.Second, func() bool {
		n := 0
		for _, st := range h.m.Status() {
			if st.State == watcher.StatePaused {
				n++
			}
		}
		return n == len(in)
	})
	waitFor("refused folders idle once connections are free", 30*time.Second, func() bool {
		now, _ := idle()
		return fmt.Sprint(now) == fmt.Sprint(refused)
	})
	recs := waitRecords(t, out, len(refused), 15*time.Second)
	for _, b := range refused {
		if !subjects(recs)["before "+b] {
			t.Errorf("%s: its message was not captured: %v", b, subjects(recs))
		}
	}

	// Resume: now the others are refused in turn, again not as auth.
	for _, b := range in {
		h.m.Resume("acct/" + b)
	}
	waitFor("a resumed folder refused as busy", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range in {
			if len(refusals[b]) > 0 {
				return true
			}
		}
		return false
	})

	mu.Lock()
	if len(authFailed) > 0 {
		t.Errorf("connection refusals taken for a wrong password: %v", authFailed)
	}
	mu.Unlock()
	// The series exist (at 0) for every mailbox; none may have moved.
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "mailtap_auth_failures_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if v := m.GetCounter().GetValue(); v != 0 {
				t.Errorf("mailtap_auth_failures_total %v = %v, want 0 (the password is right)", m.GetLabel(), v)
			}
		}
	}

}
