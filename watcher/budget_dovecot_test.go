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

// TestDovecot_connectionLimitIsNotAuthFailure: eight folders of one
// account, max_connections 5 (the default), on a Dovecot that allows the
// user three connections, NOTIFY off (so the account needs more than one
// connection). The refused logins ("NO [LIMIT] Maximum number of
// connections from user+IP exceeded") are a budget signal: never
// auth_failed, never the auth-failure metric, retried slowly; the budget
// shrinks to what the server allows, the mailboxes that lost their
// connection are polled on the shared one, and after that nothing is
// refused any more. Every folder's mail is captured, old and new.
func TestDovecot_connectionLimitIsNotAuthFailure(t *testing.T) {
	const allowed = 3
	boxes := []string{"INBOX", "Box1", "Box2", "Box3", "Box4", "Box5", "Box6", "Box7"}
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{
		Mailboxes:   boxes[1:],
		ExtraConfig: fmt.Sprintf("protocol imap {\n  mail_max_userip_connections = %d\n}\n", allowed),
	})
	for i, b := range boxes {
		dc.DeliverMany(t, b, [][]byte{msg("before "+b, i)})
	}
	const busyMin, busyMax = 2 * time.Second, 4 * time.Second
	defer watcher.SetBusyRetry(busyMin, busyMax)()

	out := t.TempDir()
	cfg := testConfig(dc, out)
	cfg.Accounts[0].Mailboxes = boxes
	cfg.Watch.Notify = false
	reg := prometheus.NewRegistry()
	h := start(t, cfg, &watcher.Options{Metrics: watcher.NewMetrics(reg)})

	var mu sync.Mutex
	var refusals []time.Time
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
				refusals = append(refusals, sc.At)
				if !strings.Contains(sc.Err, "too many connections") {
					t.Errorf("%s: reason %q does not say what happened", sc.Mailbox, sc.Err)
				}
			}
			mu.Unlock()
		}
	}()
	watched := func() bool {
		for _, st := range h.m.Status() {
			if st.State != watcher.StateIdle && st.State != watcher.StatePolling {
				return false
			}
		}
		return true
	}
	waitUntil(t, h, "every folder watched", 60*time.Second, watched)
	recs := waitRecords(t, out, len(boxes), 15*time.Second)
	for _, b := range boxes {
		if !subjects(recs)["before "+b] {
			t.Errorf("%s: its message was not captured", b)
		}
	}
	mu.Lock()
	if len(refusals) == 0 {
		t.Error("no login was refused: the test did not exceed the server's limit")
	}
	mu.Unlock()

	// Settled: within the server's limit, so nothing more is refused.
	settled := time.Now()
	time.Sleep(3 * busyMax)
	mu.Lock()
	for _, at := range refusals {
		if at.After(settled) {
			t.Errorf("a login refused at %s, after every folder was watched: the budget did not shrink", at.Format(time.TimeOnly))
		}
	}
	mu.Unlock()
	for i, b := range boxes {
		dc.Deliver(t, b, msg("after "+b, 100+i))
	}
	recs = waitRecords(t, out, 2*len(boxes), 15*time.Second)
	for _, b := range boxes {
		if !subjects(recs)["after "+b] {
			t.Errorf("%s: new mail not captured", b)
		}
	}
	if !watched() {
		t.Errorf("not every folder watched at the end: %+v", h.m.Status())
	}

	mu.Lock()
	if len(authFailed) > 0 {
		t.Errorf("connection refusals taken for a wrong password: %v", authFailed)
	}
	mu.Unlock()
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

// TestDovecot_twentyFoldersFifteenAllowed is the case: 20 folders
// on a server that allows 15 connections. With NOTIFY one connection
// serves them all; without, max_connections (5) of them. Either way all 20
// are watched and nothing is refused.
func TestDovecot_twentyFoldersFifteenAllowed(t *testing.T) {
	boxes := []string{"INBOX"}
	for i := 1; i < 20; i++ {
		boxes = append(boxes, fmt.Sprintf("F%02d", i))
	}
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{
		Mailboxes:   boxes[1:],
		ExtraConfig: "protocol imap {\n  mail_max_userip_connections = 15\n}\n",
	})
	for _, notify := range []bool{true, false} {
		t.Run(fmt.Sprintf("notify=%v", notify), func(t *testing.T) {
			out := t.TempDir()
			cfg := testConfig(dc, out)
			cfg.Accounts[0].Mailboxes = boxes
			cfg.Watch.Notify = notify
			h := start(t, cfg, nil)
			want := watcher.StatePolling
			if notify {
				want = watcher.StateNotify
			}
			waitUntil(t, h, "all 20 watched", 60*time.Second, func() bool {
				n := 0
				for _, st := range h.m.Status() {
					if st.State == watcher.StateIdle || st.State == want {
						n++
					}
					if strings.Contains(st.Err, "connections") {
						t.Fatalf("%s refused: %s", st.Mailbox, st.Err)
					}
				}
				return n == len(boxes)
			})
			for i, b := range boxes {
				dc.Deliver(t, b, msg(fmt.Sprintf("notify=%v %s", notify, b), i))
			}
			waitRecords(t, out, len(boxes), 20*time.Second)
			h.stop()
		})
	}
}
