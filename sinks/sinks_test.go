package sinks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailtap/config"
	"mailtap/jsonstore"
)

const testMsg = "From: Ann <ann@example.com>\r\nTo: bob@example.com\r\nSubject: hello %d\r\nMessage-ID: <%d@example.com>\r\n\r\nHi Bob\r\n"

// fakeClock records every wait it is asked for and returns at once, so
// retries run without sleeping and their delays can be checked.
type fakeClock struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (c *fakeClock) Now() time.Time { return time.Now() }
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Now()
	return ch
}
func (c *fakeClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

type env struct {
	t     *testing.T
	out   string
	store *jsonstore.Store
	clock *fakeClock
	logs  *syncBuf
	uid   map[string]uint32
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T) *env {
	out := t.TempDir()
	st, err := jsonstore.Open(out, jsonstore.Options{Pretty: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &env{t: t, out: out, store: st, clock: &fakeClock{}, logs: &syncBuf{}, uid: map[string]uint32{}}
}

// commit captures n messages into mailbox (account "acct").
func (e *env) commit(mailbox string, n int) {
	e.t.Helper()
	b := e.store.NewBatch("acct", mailbox, 1, '/')
	for range n {
		e.uid[mailbox]++
		u := e.uid[mailbox]
		p, err := b.Parse(u, strings.NewReader(fmt.Sprintf(testMsg, u, u)))
		if err != nil {
			e.t.Fatal(err)
		}
		if err := b.Finish(p, jsonstore.Meta{UID: u, InternalDate: time.Now()}); err != nil {
			e.t.Fatal(err)
		}
	}
	if _, err := b.Commit(e.uid[mailbox]); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) opts() *Options {
	return &Options{Logger: slog.New(slog.NewTextHandler(e.logs, nil)), Clock: e.clock, Version: "test"}
}

// start runs a manager for cfgs until the test ends or stop is called.
func (e *env) start(cfgs ...config.Sink) (m *Manager, stop func()) {
	e.t.Helper()
	m, err := New(cfgs, e.out, e.store, e.opts())
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(stop)
	return m, stop
}

func webhookCfg(url string) config.Sink {
	return config.Sink{Name: "hook", Type: config.SinkWebhook, URL: url, Timeout: config.Duration{Duration: 5 * time.Second},
		Concurrency: 1, MaxBackoff: config.Duration{Duration: time.Minute}, MaxBodyBytes: config.DefaultSinkMaxBody}
}

// receiver is an HTTP receiver whose answers the test chooses.
type receiver struct {
	mu     sync.Mutex
	got    []received
	answer func(n int, r *http.Request) (int, http.Header) // n: requests so far, from 1
	srv    *httptest.Server
}

type received struct {
	header http.Header
	body   []byte
	env    Envelope
}

func newReceiver(t *testing.T, answer func(n int, r *http.Request) (int, http.Header)) *receiver {
	rc := &receiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var env Envelope
		json.Unmarshal(body, &env)
		rc.mu.Lock()
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body, env: env})
		n := len(rc.got)
		rc.mu.Unlock()
		code, h := 200, http.Header(nil)
		if rc.answer != nil {
			code, h = rc.answer(n, r)
		}
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "answer %d", code)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func statusOf(m *Manager) Status { return m.Status()[0] }

func TestWebhook_deliversSignedEnvelopesInOrder(t *testing.T) {
	e := newEnv(t)
	t.Setenv("MAILTAP_TEST_HOOK_SECRET", "k3y")
	rc := newReceiver(t, nil)
	cfg := webhookCfg(rc.srv.URL + "/mail")
	cfg.SecretEnv = "MAILTAP_TEST_HOOK_SECRET"
	cfg.Headers = map[string]string{"X-Team": "support"}
	m, stop := e.start(cfg)
	e.commit("INBOX", 3)
	e.commit("INBOX", 2)
	waitFor(t, "5 deliveries", func() bool { return statusOf(m).Delivered == 5 })

	got := rc.requests()
	if len(got) != 5 {
		t.Fatalf("%d requests, want 5", len(got))
	}
	for i, r := range got {
		wantID := fmt.Sprintf("acct/INBOX/1/%d", i+1)
		if r.env.ID != wantID || r.header.Get("Idempotency-Key") != wantID {
			t.Errorf("request %d: id %q, Idempotency-Key %q, want %q", i, r.env.ID, r.header.Get("Idempotency-Key"), wantID)
		}
		if r.header.Get("Mailtap-Signature") != Signature([]byte("k3y"), r.body) {
			t.Errorf("request %d: bad signature %q", i, r.header.Get("Mailtap-Signature"))
		}
		if r.header.Get("Content-Type") != "application/json" || r.header.Get("X-Team") != "support" {
			t.Errorf("request %d headers: %v", i, r.header)
		}
		var rec struct {
			ID, Subject string
		}
		if err := json.Unmarshal(r.env.Record, &rec); err != nil || rec.ID != wantID || rec.Subject != fmt.Sprintf("hello %d", i+1) {
			t.Errorf("request %d record: %s (%v)", i, r.env.Record, err)
		}
		if r.env.Event != EventCaptured || r.env.Path != fmt.Sprintf("acct/INBOX/1-%010d.json", i+1) || r.env.Summary.Subject == "" {
			t.Errorf("request %d envelope: %+v", i, r.env)
		}
	}
	st := statusOf(m)
	if st.State != StateIdle || st.Backlog != 0 || st.LastError != "" {
		t.Errorf("status after delivery: %+v", st)
	}
	stop()

	// A restart resumes after the cursor: nothing is delivered twice.
	_, _ = e.start(cfg)
	e.commit("INBOX", 1)
	waitFor(t, "the 6th delivery", func() bool { return len(rc.requests()) >= 6 })
	time.Sleep(50 * time.Millisecond)
	if got := rc.requests(); len(got) != 6 || got[5].env.ID != "acct/INBOX/1/6" {
		t.Errorf("after restart: %d requests, last %q", len(got), got[len(got)-1].env.ID)
	}
}

func TestWebhook_retriesWithBackoffAndRetryAfter(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(n int, r *http.Request) (int, http.Header) {
		switch n {
		case 1:
			return 500, nil
		case 2:
			return 503, nil
		case 3:
			return 429, http.Header{"Retry-After": {"7"}}
		case 4:
			return 408, nil
		}
		return 204, nil
	})
	m, _ := e.start(webhookCfg(rc.srv.URL))
	e.commit("INBOX", 1)
	waitFor(t, "delivery", func() bool { return statusOf(m).Delivered == 1 })
	got := rc.requests()
	if len(got) != 5 {
		t.Fatalf("%d attempts, want 5", len(got))
	}
	for i, r := range got {
		if r.header.Get("Idempotency-Key") != "acct/INBOX/1/1" || r.header.Get("Mailtap-Attempt") != fmt.Sprint(i+1) {
			t.Errorf("attempt %d headers %v", i+1, r.header)
		}
	}
	waits := e.clock.recorded()
	if len(waits) != 4 {
		t.Fatalf("waits %v, want 4", waits)
	}
	// 1 s, 2 s (jittered over their upper half), Retry-After 7 s, then 8 s.
	for i, lim := range [][2]time.Duration{{500 * time.Millisecond, time.Second}, {time.Second, 2 * time.Second}, {7 * time.Second, 7 * time.Second}, {4 * time.Second, 8 * time.Second}} {
		if waits[i] < lim[0] || waits[i] > lim[1] {
			t.Errorf("wait %d = %s, want %s..%s", i+1, waits[i], lim[0], lim[1])
		}
	}
	if st := statusOf(m); st.DeadLetters != 0 || !st.FailingSince.IsZero() {
		t.Errorf("status %+v", st)
	}
}

// A 4xx other than 408/429 will never succeed: dead letter at once, move
// on, and replay --dead delivers once the receiver is fixed.
func TestWebhook_refusalDeadLettersAndReplayDelivers(t *testing.T) {
	e := newEnv(t)
	var fixed sync.Map
	rc := newReceiver(t, func(n int, r *http.Request) (int, http.Header) {
		if _, ok := fixed.Load("yes"); ok || r.Header.Get("Idempotency-Key") != "acct/INBOX/1/2" {
			return 200, nil
		}
		return 400, nil
	})
	cfg := webhookCfg(rc.srv.URL)
	m, stop := e.start(cfg)
	e.commit("INBOX", 3)
	waitFor(t, "2 deliveries and a dead letter", func() bool { st := statusOf(m); return st.Delivered == 2 && st.DeadLetters == 1 })
	if n := len(rc.requests()); n != 3 {
		t.Errorf("%d requests, want 3 (no retry of a 400)", n)
	}
	if !strings.Contains(e.logs.String(), "answer 400") {
		t.Errorf("the log does not show the answer: %s", e.logs.String())
	}
	stop()
	dead, err := ReadDeadLetters(e.out, "hook")
	if err != nil || len(dead) != 1 || dead[0].Entry.ID != "acct/INBOX/1/2" || dead[0].Status != 400 || dead[0].Attempts != 1 {
		t.Fatalf("dead letters %+v, %v", dead, err)
	}

	// Still refused: it stays a dead letter.
	var results []ReplayResult
	ok, failed, err := Replay(t.Context(), cfg, e.out, Selection{Dead: true}, e.opts(), func(r ReplayResult) { results = append(results, r) })
	if err != nil || ok != 0 || failed != 1 {
		t.Errorf("replay against the broken receiver: %d ok, %d failed, %v", ok, failed, err)
	}
	fixed.Store("yes", true)
	ok, failed, err = Replay(t.Context(), cfg, e.out, Selection{Dead: true}, e.opts(), func(r ReplayResult) { results = append(results, r) })
	if err != nil || ok != 1 || failed != 0 {
		t.Errorf("replay: %d ok, %d failed, %v", ok, failed, err)
	}
	if dead, _ := ReadDeadLetters(e.out, "hook"); len(dead) != 0 {
		t.Errorf("dead letters left after replay: %+v", dead)
	}
	last := rc.requests()[len(rc.requests())-1]
	if last.env.ID != "acct/INBOX/1/2" || len(last.env.Record) < 10 {
		t.Errorf("replayed %+v", last.env)
	}
	// --id and --since pick from the journal.
	ok, _, err = Replay(t.Context(), cfg, e.out, Selection{ID: "acct/INBOX/1/3"}, e.opts(), func(ReplayResult) {})
	if err != nil || ok != 1 || rc.requests()[len(rc.requests())-1].env.ID != "acct/INBOX/1/3" {
		t.Errorf("replay --id: %d, %v", ok, err)
	}
	if _, _, err = Replay(t.Context(), cfg, e.out, Selection{ID: "acct/INBOX/1/99"}, e.opts(), func(ReplayResult) {}); err == nil {
		t.Error("replay of an unknown id succeeded")
	}
	ok, _, err = Replay(t.Context(), cfg, e.out, Selection{Since: time.Now().Add(-time.Hour)}, e.opts(), func(ReplayResult) {})
	if err != nil || ok != 3 {
		t.Errorf("replay --since: %d, %v", ok, err)
	}
	if ok, _, _ = Replay(t.Context(), cfg, e.out, Selection{Since: time.Now().Add(time.Hour)}, e.opts(), func(ReplayResult) {}); ok != 0 {
		t.Errorf("replay --since the future: %d", ok)
	}
}

func TestWebhook_maxAttemptsThenDeadLetter(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(int, *http.Request) (int, http.Header) { return 502, nil })
	cfg := webhookCfg(rc.srv.URL)
	cfg.MaxAttempts = 3
	m, _ := e.start(cfg)
	e.commit("INBOX", 2)
	waitFor(t, "2 dead letters", func() bool { st := statusOf(m); return st.DeadLetters == 2 && st.Backlog == 0 })
	if n := len(rc.requests()); n != 6 {
		t.Errorf("%d attempts, want 3 per record", n)
	}
	if st := statusOf(m); st.Backlog != 0 {
		t.Errorf("backlog %d after dead-lettering everything", st.Backlog)
	}
}

// A receiver that never answers costs a timeout per attempt and retries.
func TestWebhook_timeoutRetries(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	var mu sync.Mutex
	hang := true
	rc := newReceiver(t, func(n int, r *http.Request) (int, http.Header) {
		mu.Lock()
		h := hang
		mu.Unlock()
		if h {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}
		return 200, nil
	})
	defer close(release)
	cfg := webhookCfg(rc.srv.URL)
	cfg.Timeout.Duration = 100 * time.Millisecond
	m, _ := e.start(cfg)
	e.commit("INBOX", 1)
	waitFor(t, "two timed-out attempts", func() bool { return len(rc.requests()) >= 2 })
	st := statusOf(m)
	if st.State != StateRetrying && st.State != StateDelivering || !strings.Contains(st.LastError, "no answer within 100ms") {
		t.Errorf("status while hanging: %+v", st)
	}
	mu.Lock()
	hang = false
	mu.Unlock()
	waitFor(t, "delivery", func() bool { return statusOf(m).Delivered == 1 })
}

func TestSink_mailboxFilter(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	cfg := webhookCfg(rc.srv.URL)
	cfg.Mailboxes = []string{"acct/Lists/*"}
	m, _ := e.start(cfg)
	e.commit("INBOX", 2)
	e.commit("Lists/go", 2)
	e.commit("INBOX", 1)
	waitFor(t, "backlog passed", func() bool { st := statusOf(m); return st.Delivered == 2 && st.Backlog == 0 })
	for _, r := range rc.requests() {
		if r.env.Mailbox != "Lists/go" {
			t.Errorf("delivered %s", r.env.ID)
		}
	}
}

func TestSink_largeRecordReplacedBySummary(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	cfg := webhookCfg(rc.srv.URL)
	cfg.MaxBodyBytes = 4096
	m, _ := e.start(cfg)
	b := e.store.NewBatch("acct", "INBOX", 1, '/')
	big := fmt.Sprintf("From: a@example.com\r\nSubject: big\r\n\r\n%s\r\n", strings.Repeat("x", 20000))
	p, _ := b.Parse(1, strings.NewReader(big))
	b.Finish(p, jsonstore.Meta{UID: 1, InternalDate: time.Now()})
	if _, err := b.Commit(1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", func() bool { return statusOf(m).Delivered == 1 })
	r := rc.requests()[0]
	if len(r.body) > 4096 || string(r.env.Record) != "null" || r.env.RecordOmitted == "" || r.env.Summary.Subject != "big" || r.env.Path == "" {
		t.Errorf("%d bytes: %+v", len(r.body), r.env)
	}
}

// With concurrency 8, many deliveries run at once and every record arrives.
func TestSink_concurrency(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	cur, peak := 0, 0
	rc := newReceiver(t, func(int, *http.Request) (int, http.Header) {
		mu.Lock()
		cur++
		peak = max(peak, cur)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		cur--
		mu.Unlock()
		return 200, nil
	})
	cfg := webhookCfg(rc.srv.URL)
	cfg.Concurrency = 8
	m, _ := e.start(cfg)
	e.commit("INBOX", 100)
	waitFor(t, "100 deliveries", func() bool { return statusOf(m).Delivered == 100 })
	seen := map[string]bool{}
	for _, r := range rc.requests() {
		seen[r.env.ID] = true
	}
	if len(seen) != 100 || peak < 2 || peak > 8 {
		t.Errorf("%d distinct ids, peak concurrency %d", len(seen), peak)
	}
	// The cursor is saved behind the deliveries, soon.
	waitFor(t, "the cursor past every record", func() bool {
		c, _, _ := loadCursor(StateDir(e.out, "hook"))
		return c.Pos.Seq == 101
	})
}

func TestCommand_retriedThenDelivered(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	script := filepath.Join(dir, "sink.sh")
	// Fails on the first run (no marker yet), succeeds after.
	os.WriteFile(script, []byte(`#!/bin/sh
body=$(cat)
echo "$MAILTAP_RECORD_ID $MAILTAP_RECORD_PATH $(printf %s "$body" | head -c 40)" >> "`+log+`"
if [ ! -e "`+dir+`/marker" ]; then touch "`+dir+`/marker"; echo "not yet" >&2; exit 1; fi
exit 0
`), 0o755)
	cfg := config.Sink{Name: "cmd", Type: config.SinkCommand, Command: []string{script}, Timeout: config.Duration{Duration: 10 * time.Second},
		Concurrency: 1, MaxBackoff: config.Duration{Duration: time.Minute}, MaxBodyBytes: config.DefaultSinkMaxBody}
	m, _ := e.start(cfg)
	e.commit("INBOX", 1)
	waitFor(t, "delivery", func() bool { return statusOf(m).Delivered == 1 })
	b, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	want := "acct/INBOX/1/1 " + filepath.Join(e.out, "acct", "INBOX", "1-0000000001.json") + ` {"event":"message.captured","id":"acct/I`
	if len(lines) != 2 || lines[0] != want || lines[1] != want {
		t.Errorf("script saw:\n%s\nwant twice:\n%s", b, want)
	}
	if !strings.Contains(e.logs.String(), "not yet") || !strings.Contains(e.logs.String(), "exit status 1") {
		t.Errorf("stderr and status not logged: %s", e.logs.String())
	}
}

func TestCommand_timeoutKillsIt(t *testing.T) {
	e := newEnv(t)
	cfg := config.Sink{Name: "cmd", Type: config.SinkCommand, Command: []string{"sh", "-c", "sleep 30 & sleep 30"}, Timeout: config.Duration{Duration: 100 * time.Millisecond},
		Concurrency: 1, MaxAttempts: 2, MaxBackoff: config.Duration{Duration: time.Minute}, MaxBodyBytes: config.DefaultSinkMaxBody}
	m, _ := e.start(cfg)
	start := time.Now()
	e.commit("INBOX", 1)
	waitFor(t, "dead letter", func() bool { return statusOf(m).DeadLetters == 1 })
	if el := time.Since(start); el > 8*time.Second {
		t.Errorf("two 100ms attempts took %s: the process group was not killed", el)
	}
	if !strings.Contains(e.logs.String(), "killed after 100ms") {
		t.Errorf("log: %s", e.logs.String())
	}
}

// Secrets (the URL's query, secret headers, the HMAC key) never reach logs
// or status, even in errors of the HTTP client.
func TestWebhook_secretsNotLogged(t *testing.T) {
	e := newEnv(t)
	t.Setenv("MAILTAP_TEST_HOOK_SECRET", "hmacs3cret")
	cfg := webhookCfg("http://127.0.0.1:1/hook/p4ths3cret?token=qu3rys3cret") // nothing listens
	cfg.SecretEnv = "MAILTAP_TEST_HOOK_SECRET"
	cfg.Headers = map[string]string{"Authorization": "Bearer h3aders3cret"}
	cfg.SecretHeaders = []string{"Authorization"}
	cfg.MaxAttempts = 2
	m, _ := e.start(cfg)
	e.commit("INBOX", 1)
	waitFor(t, "dead letter", func() bool { return statusOf(m).DeadLetters == 1 })
	dead, _ := os.ReadFile(deadPath(StateDir(e.out, "hook")))
	st, _ := json.Marshal(m.Status())
	for _, out := range []string{e.logs.String(), string(dead), string(st)} {
		for _, s := range []string{"qu3rys3cret", "p4ths3cret", "h3aders3cret", "hmacs3cret"} {
			if strings.Contains(out, s) {
				t.Errorf("%q shown: %s", s, out)
			}
		}
	}
	if !strings.Contains(e.logs.String(), "connection refused") {
		t.Errorf("log lost the cause: %s", e.logs.String())
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		failures int
		rnd      float64
		want     time.Duration
	}{
		{1, 0, 500 * time.Millisecond}, {1, 0.999999, time.Second}, {2, 0, time.Second}, {3, 0.5, 3 * time.Second},
		{10, 0, 30 * time.Second}, {100, 0.999999, time.Minute},
	} {
		got := backoff(tc.failures, time.Second, time.Minute, func() float64 { return tc.rnd })
		if d := got - tc.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("backoff(%d, rnd %v) = %s, want %s", tc.failures, tc.rnd, got, tc.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"": 0, "7": 7 * time.Second, "-3": 0, "junk": 0, "999999": time.Hour,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestSnapshot(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(int, *http.Request) (int, http.Header) { return 400, nil })
	cfg := webhookCfg(rc.srv.URL)
	if st, err := Snapshot(cfg, e.out); err != nil || st.State != "new" {
		t.Errorf("before the first run: %+v, %v", st, err)
	}
	m, stop := e.start(cfg)
	e.commit("INBOX", 2)
	waitFor(t, "dead letters", func() bool { return statusOf(m).DeadLetters == 2 })
	stop()
	e.commit("INBOX", 3)
	st, err := Snapshot(cfg, e.out)
	if err != nil || st.Backlog != 3 || st.DeadLetters != 2 || !strings.Contains(st.LastError, "400") {
		t.Errorf("snapshot %+v, %v", st, err)
	}
}

// A record being retried does not hold back the others; what finished
// ahead of it is in the cursor, so a restart re-delivers only it.
func TestSink_finishedAheadSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	var fixed sync.Map
	rc := newReceiver(t, func(n int, r *http.Request) (int, http.Header) {
		if _, ok := fixed.Load("yes"); !ok && r.Header.Get("Idempotency-Key") == "acct/INBOX/1/1" {
			return 503, nil
		}
		return 200, nil
	})
	cfg := webhookCfg(rc.srv.URL)
	cfg.Concurrency = 4
	// Real waits for this one: the stuck record must stay stuck.
	m, err := New([]config.Sink{cfg}, e.out, e.store, &Options{Logger: slog.New(slog.NewTextHandler(e.logs, nil)), BaseBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	e.commit("INBOX", 30)
	waitFor(t, "29 deliveries past the stuck one", func() bool { return statusOf(m).Delivered == 29 })
	cancel()
	<-done
	c, _, _ := loadCursor(StateDir(e.out, "hook"))
	if c.Pos.Seq != 1 || len(c.Ahead) != 29 {
		t.Fatalf("cursor at seq %d with %d ahead, want 1 and 29", c.Pos.Seq, len(c.Ahead))
	}
	before := len(rc.requests())
	fixed.Store("yes", true)
	m2, stop := e.start(cfg)
	// Delivered reaches 30 before the reader has walked past the 29
	// finished entries; the cursor is only at the end once it has.
	waitFor(t, "the stuck one, and the cursor past the rest", func() bool {
		st := statusOf(m2)
		return st.Delivered == 30 && st.Backlog == 0
	})
	stop()
	got := rc.requests()[before:]
	if len(got) != 1 || got[0].env.ID != "acct/INBOX/1/1" {
		var ids []string
		for _, r := range got {
			ids = append(ids, r.env.ID)
		}
		t.Errorf("after restart delivered %v, want only acct/INBOX/1/1", ids)
	}
	if c, _, _ := loadCursor(StateDir(e.out, "hook")); c.Pos.Seq != 31 || len(c.Ahead) != 0 {
		t.Errorf("final cursor %+v", c)
	}
}
