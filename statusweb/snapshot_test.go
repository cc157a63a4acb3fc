package statusweb

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"mailtap/record"
	"mailtap/watcher"
)

// TestSnapshots_sharedWithServer: a Snapshots given to the server is the
// one /api/status reads, fed by its owner, and JSON is the same document.
func TestSnapshots_sharedWithServer(t *testing.T) {
	w := newFakeWatcher()
	snap := NewSnapshots(w, SnapshotOptions{Version: "v1.2.3"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); snap.Run(ctx) }()
	defer func() { cancel(); <-done }()

	srv, err := New(w, Options{Addr: "127.0.0.1:0", Snapshots: snap, Version: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	w.hub.Publish(watcher.Captured{Mailbox: watcher.MailboxID{Account: "a", Mailbox: "INBOX"},
		Summary: record.Summary{ID: "a/INBOX/1/7", UID: 7, Subject: "hello"}, At: time.Now()})
	deadline := time.Now().Add(10 * time.Second)
	for len(srv.status().Recent) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the capture never reached the shared recent list")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, err := snap.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var st statusJSON
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if st.Version != "v1.2.3" || len(st.Recent) != 1 || st.Recent[0].Subject != "hello" || len(st.Mailboxes) != 1 {
		t.Errorf("snapshot %s", b)
	}
	if srv.status().Version != "v1.2.3" {
		t.Errorf("server status does not come from the shared snapshots")
	}
}

// fakeWatcher is a hub and one fixed mailbox: enough for Snapshots.
type fakeWatcher struct{ hub *watcher.Hub }

func newFakeWatcher() *fakeWatcher { return &fakeWatcher{hub: watcher.NewHub()} }

func (f *fakeWatcher) Pause(string) error     { return nil }
func (f *fakeWatcher) Resume(string) error    { return nil }
func (f *fakeWatcher) Reconnect(string) error { return nil }
func (f *fakeWatcher) Status() []watcher.MailboxStatus {
	return []watcher.MailboxStatus{{Mailbox: watcher.MailboxID{Account: "a", Mailbox: "INBOX"}, State: watcher.StateIdle}}
}
func (f *fakeWatcher) Subscribe(n int) *watcher.Subscription { return f.hub.Subscribe(n) }
func (f *fakeWatcher) Healthy() (bool, string)               { return true, "" }
func (f *fakeWatcher) Ready() (bool, string)                 { return true, "" }
