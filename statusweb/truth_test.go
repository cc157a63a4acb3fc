package statusweb

import (
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"mailtap/internal/testimap"
	"mailtap/watcher"
)

// Every time in the API has the records' one format: RFC 3339, three
// fractional digits, UTC.
func TestAPI_timesInOneFormat(t *testing.T) {
	r := startRig(t)
	r.imap.Deliver(t, "INBOX", testimap.Msg("timed", 1))
	r.waitCaptured("timed")
	resp := r.do("GET", "/api/status", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/status = %d", resp.StatusCode)
	}
	body, _ := io.ReadAll(resp.Body)
	anyTime := regexp.MustCompile(`"[0-9]{4}-[0-9]{2}-[0-9]{2}T[^"]*"`)
	fixed := regexp.MustCompile(`^"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"$`)
	times := anyTime.FindAllString(string(body), -1)
	if len(times) < 5 { // started, now, since, last_capture, date, captured_at
		t.Fatalf("only %d times in /api/status:\n%s", len(times), body)
	}
	for _, tm := range times {
		if !fixed.MatchString(tm) {
			t.Errorf("time %s is not RFC 3339 with milliseconds in UTC", tm)
		}
	}
}

// twoBoxes adds a second, scripted mailbox to the manager's one and
// records the controls that reach it.
type twoBoxes struct {
	*watcher.Manager
	mu    sync.Mutex
	calls []string
}

var other = watcher.MailboxID{Account: "test", Mailbox: "Archive"}

func (w *twoBoxes) Status() []watcher.MailboxStatus {
	return append(w.Manager.Status(), watcher.MailboxStatus{Mailbox: other, State: watcher.StateIdle})
}

func (w *twoBoxes) Pause(id string) error {
	w.mu.Lock()
	w.calls = append(w.calls, "pause "+id)
	w.mu.Unlock()
	if id == other.String() {
		return nil
	}
	return w.Manager.Pause(id)
}

func (w *twoBoxes) Calls() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.calls)
}

// Every error is JSON, 405 included; an unknown mailbox's 404 lists the
// valid ids; a repeated ?mailbox= applies to each, and nothing happens
// when one of them is unknown.
func TestAPI_errorsAndRepeatedMailbox(t *testing.T) {
	var w *twoBoxes
	r := startRig(t, withWatcher(func(m *watcher.Manager) Watcher { w = &twoBoxes{Manager: m}; return w }))
	type errBody struct {
		Error string   `json:"error"`
		Valid []string `json:"valid"`
	}
	for _, c := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"GET", "/api/pause", http.StatusMethodNotAllowed, "POST"},
		{"DELETE", "/api/status", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"POST", "/metrics", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"GET", "/nope", http.StatusNotFound, ""},
		{"GET", "/api/nope", http.StatusNotFound, ""},
	} {
		resp := r.do(c.method, c.path, nil)
		var e errBody
		r.decode(resp, c.code, &e)
		if e.Error == "" {
			t.Errorf("%s %s: no JSON error", c.method, c.path)
		}
		if got := resp.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}

	var e errBody
	r.decode(r.do("POST", "/api/pause?mailbox=test/INBOX&mailbox=test/Nope", nil), http.StatusNotFound, &e)
	if !strings.Contains(e.Error, "test/Nope") || !strings.Contains(e.Error, "test/INBOX, test/Archive") ||
		!slices.Equal(e.Valid, []string{"test/INBOX", "test/Archive"}) {
		t.Errorf("404 = %+v, want it to name the unknown one and list the valid ids", e)
	}
	if len(w.Calls()) != 0 || r.paused(inbox) {
		t.Errorf("a request with an unknown mailbox paused %v", w.Calls())
	}

	var ok struct {
		Targets   []string `json:"targets"`
		Mailboxes []struct {
			ID string `json:"id"`
		} `json:"mailboxes"`
	}
	r.decode(r.do("POST", "/api/pause?mailbox=test/INBOX&mailbox=test/Archive", nil), http.StatusOK, &ok)
	if got := w.Calls(); !slices.Equal(got, []string{"pause test/Archive", "pause test/INBOX"}) {
		t.Errorf("repeated ?mailbox= paused %q, want both", got)
	}
	if !slices.Equal(ok.Targets, []string{"test/Archive", "test/INBOX"}) || len(ok.Mailboxes) != 2 {
		t.Errorf("answer = %+v", ok)
	}
	if !r.paused(inbox) {
		t.Error("test/INBOX not paused")
	}
}
