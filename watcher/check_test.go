package watcher_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"mailtap/internal/testimap"
	"mailtap/watcher"
)

// check looks names up with LIST, suggests the close ones, and runs the
// catch-up query, reporting what it found.
func TestCheck_catchUpQueryAndDidYouMean(t *testing.T) {
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{Separator: ".", Mailboxes: []string{"Lists.golang", "Entwürfe"}})
	dc.Deliver(t, "Lists.golang", msg("one", 1))
	dc.Deliver(t, "Lists.golang", msg("two", 2))
	cfg := testConfig(dc, t.TempDir())
	cfg.Accounts[0].Mailboxes = []string{"Lists.golang", "Entwurfe", "Lists/golang"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := watcher.Check(ctx, cfg)
	if len(res) != 3 {
		t.Fatalf("%d results", len(res))
	}
	ok := res[0]
	if ok.Err != nil {
		t.Fatalf("Lists.golang: %v", ok.Err)
	}
	if ok.Delimiter != '.' || ok.Found != 2 || ok.NewestUID != 2 || ok.UIDNext != 3 || ok.Warning != "" {
		t.Errorf("Lists.golang: %+v", ok)
	}
	for i, want := range []string{`did you mean "Entwürfe"`, `did you mean "Lists.golang"`} {
		err := res[i+1].Err
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, watcher.ErrMailboxNotFound) {
			t.Errorf("%s: %v, want %s", res[i+1].Mailbox, err, want)
		}
	}
}

// check through a server that answers the catch-up query wrongly says so.
func TestCheck_warnsWhenTheCatchUpMissesMail(t *testing.T) {
	srv := testimap.StartMem(t)
	for i := range 3 {
		srv.Deliver(t, "INBOX", msg("m", i))
	}
	p := testimap.StartHabitProxy(t, srv.Addr(), testimap.Habits{
		Answer: func(line string) []string {
			if f := strings.Fields(line); len(f) >= 4 && strings.EqualFold(f[2], "FETCH") && strings.HasSuffix(f[3], ":*") && strings.EqualFold(f[1], "UID") {
				return []string{"$TAG OK FETCH completed"}
			}
			return nil
		},
	})
	cfg := viaProxy(testConfig(srv, t.TempDir()), p)
	res := watcher.Check(context.Background(), cfg)
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("%+v", res)
	}
	if r := res[0]; r.Found != 0 || r.NewestUID != 3 || !strings.Contains(r.Warning, "found nothing, but the newest message has UID 3") {
		t.Errorf("%+v", r)
	}
}

// check says how each mailbox will be watched, and says what the running
// watcher then shows: it used to print "idle" wherever the server offered
// IDLE, also for mailboxes polled on the shared connection or announced
// by NOTIFY.
func TestCheck_modeIsWhatTheWatcherShows(t *testing.T) {
	for _, tc := range []struct {
		name   string
		boxes  []string
		max    int
		noIdle bool
		notify bool
	}{
		{name: "one mailbox", boxes: []string{"INBOX"}},
		{name: "all fit", boxes: []string{"A", "INBOX"}},
		{name: "over the budget", boxes: []string{"A", "B", "INBOX", "C"}, max: 2},
		{name: "idle off", boxes: []string{"A", "INBOX"}, noIdle: true},
		{name: "notify", boxes: []string{"A", "B", "INBOX"}, notify: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := testimap.StartMem(t, testimap.WithMailboxes("A", "B", "C"))
			out := t.TempDir()
			cfg := testConfig(srv, out)
			if tc.notify {
				cfg = viaProxy(cfg, testimap.StartHabitProxy(t, srv.Addr(), notifyHabits(nil)))
			}
			cfg.Accounts[0].Mailboxes = tc.boxes
			cfg.Accounts[0].MaxConnections = tc.max
			cfg.Watch.IDLE = !tc.noIdle
			h := start(t, cfg, nil)
			waitUntil(t, h, "every mailbox watched", 10*time.Second, func() bool {
				for _, st := range states(h.m) {
					if st != watcher.StateIdle && st != watcher.StateNotify && st != watcher.StatePolling {
						return false
					}
				}
				return true
			})
			live := states(h.m)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, r := range watcher.Check(ctx, cfg) {
				if r.Err != nil {
					t.Fatalf("%s: %v", r.Mailbox, r.Err)
				}
				if r.Mode != live[r.Mailbox.Mailbox] {
					t.Errorf("%s: check says %s, the watcher shows %s", r.Mailbox, r.Mode, live[r.Mailbox.Mailbox])
				}
			}
		})
	}
}
