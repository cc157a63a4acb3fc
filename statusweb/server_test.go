package statusweb

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"mailtap/internal/testimap"
	"mailtap/jsonstore"
	"mailtap/watcher"
)

const inbox = "test/INBOX"

func TestServer_statusAndControls(t *testing.T) {
	r := startRig(t)

	resp := r.do("GET", "/api/status", nil)
	for h, want := range map[string]string{
		"Content-Type":           "application/json; charset=utf-8",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; " +
			"frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
		"Referrer-Policy": "no-referrer",
		"X-Frame-Options": "DENY",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	var st statusJSON
	r.decode(resp, http.StatusOK, &st)
	if st.Version != "v0.0.0-test" || st.TokenRequired || len(st.Mailboxes) != 1 || st.Recent == nil {
		t.Fatalf("status = %+v", st)
	}
	mb := st.Mailboxes[0]
	if mb.ID != inbox || mb.Account != "test" || mb.Mailbox != "INBOX" || mb.State != "idle" || mb.Paused || mb.UIDValidity == 0 {
		t.Fatalf("mailbox = %+v", mb)
	}

	// Pause one mailbox: the answer already says paused, the state follows.
	var ctl struct {
		OK        bool          `json:"ok"`
		Action    string        `json:"action"`
		Mailbox   string        `json:"mailbox"`
		Mailboxes []mailboxJSON `json:"mailboxes"`
	}
	r.decode(r.do("POST", "/api/pause?mailbox=test%2FINBOX", nil), http.StatusOK, &ctl)
	if !ctl.OK || ctl.Action != "pause" || ctl.Mailbox != inbox || len(ctl.Mailboxes) != 1 || !ctl.Mailboxes[0].Paused {
		t.Fatalf("pause answer = %+v", ctl)
	}
	r.waitState(inbox, "paused")
	if st := r.status(); st.Mailboxes[0].State != "paused" || !st.Mailboxes[0].Paused {
		t.Fatalf("status after pause = %+v", st.Mailboxes[0])
	}

	// Mail that arrives while paused is captured after resume (all).
	r.imap.Deliver(t, "INBOX", testimap.Msg("while paused", 1))
	r.decode(r.do("POST", "/api/resume", nil), http.StatusOK, &ctl)
	if ctl.Mailbox != "" || ctl.Mailboxes[0].Paused {
		t.Fatalf("resume answer = %+v", ctl)
	}
	it := r.waitCaptured("while paused")
	if it.Mailbox != inbox || it.UID == 0 || it.From != "Test Sender <sender@example.com>" || it.Date == nil || it.Size == 0 ||
		!strings.HasPrefix(it.ID, "test/INBOX/") || it.CapturedAt.IsZero() {
		t.Errorf("recent item = %+v", it)
	}
	r.waitState(inbox, "idle")
	st = r.status()
	if mb := st.Mailboxes[0]; mb.Captured != 1 || mb.LastCapture == nil || mb.LastUID != it.UID {
		t.Errorf("mailbox after capture = %+v", mb)
	}

	// Reconnect drops the session and comes back.
	r.decode(r.do("POST", "/api/reconnect?mailbox="+inbox, nil), http.StatusOK, &ctl)
	if ctl.Action != "reconnect" {
		t.Fatalf("reconnect answer = %+v", ctl)
	}
	if !eventually(func() bool { return counter(t, r, "mailtap_reconnects_total") >= 1 }) {
		t.Fatal("reconnect not counted")
	}
	r.waitState(inbox, "idle")
}

func TestServer_controlErrors(t *testing.T) {
	r := startRig(t)
	var e struct {
		Error string `json:"error"`
	}
	r.decode(r.do("POST", "/api/pause?mailbox=test/Nope", nil), http.StatusNotFound, &e)
	if !strings.Contains(e.Error, `"test/Nope"`) {
		t.Errorf("404 error = %q", e.Error)
	}
	r.decode(r.do("POST", "/api/pause?mailbox=", nil), http.StatusBadRequest, &e)
	if r.paused(inbox) {
		t.Fatal("a bad request paused the mailbox")
	}
}

// Nothing changes state on GET: the control paths answer 405 and the
// mailbox stays as it was. Pause sets its flag synchronously, so a wrongly
// routed GET would show at once.
func TestServer_controlsRefuseGET(t *testing.T) {
	r := startRig(t)
	for _, path := range []string{"/api/pause", "/api/pause?mailbox=" + inbox, "/api/resume", "/api/reconnect"} {
		resp := r.do("GET", path, nil)
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET %s = %d, want 405", path, resp.StatusCode)
		}
		if allow := resp.Header.Get("Allow"); allow != "POST" {
			t.Errorf("GET %s: Allow = %q", path, allow)
		}
	}
	if r.paused(inbox) {
		t.Fatal("GET /api/pause paused the mailbox")
	}
	if n := counter(t, r, "mailtap_reconnects_total"); n != 0 {
		t.Fatalf("GET /api/reconnect reconnected (%v)", n)
	}
	if st := r.mgr.Status()[0]; st.State != watcher.StateIdle {
		t.Fatalf("state after GETs = %s", st.State)
	}
}

func TestNew_addressAndToken(t *testing.T) {
	w := idleManager(t)
	tests := []struct {
		addr, token string
		wantAddr    string
		wantErr     string
	}{
		{addr: ":8025", wantAddr: "127.0.0.1:8025"},
		{addr: "localhost:0", wantAddr: "localhost:0"},
		{addr: "[::1]:8025", wantAddr: "[::1]:8025"},
		{addr: "127.0.0.2:8025", wantAddr: "127.0.0.2:8025"},
		{addr: "0.0.0.0:8025", wantErr: "set http.token_env"},
		{addr: "[::]:8025", wantErr: "set http.token_env"},
		{addr: "192.0.2.1:8025", wantErr: "set http.token_env"},
		{addr: "status.example:8025", wantErr: "set http.token_env"},
		{addr: "0.0.0.0:8025", token: "s3cret-token", wantAddr: "0.0.0.0:8025"},
		{addr: "127.0.0.1:8025", token: "with space", wantErr: "must not contain spaces"},
		{addr: "", wantErr: "no listen address"},
		{addr: "8025", wantErr: "must be host:port"},
		{addr: "127.0.0.1:http", wantErr: "port must be a number"},
		{addr: "127.0.0.1:70000", wantErr: "port must be a number"},
	}
	for _, tt := range tests {
		s, err := New(w, Options{Addr: tt.addr, Token: tt.token})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New(%q, token %q) error = %v, want %q", tt.addr, tt.token, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q) error = %v", tt.addr, err)
			continue
		}
		if s.Addr() != tt.wantAddr {
			t.Errorf("New(%q).Addr() = %q, want %q", tt.addr, s.Addr(), tt.wantAddr)
		}
	}
}

// A non-loopback bind with a token: the control API wants the token, reads
// stay open, and the token never appears in what the server sends.
func TestServer_token(t *testing.T) {
	const token = "correct-horse-battery"
	r := startRig(t, withOptions(Options{Addr: "0.0.0.0:0", Token: token}))

	st := r.status()
	if !st.TokenRequired {
		t.Error("status does not say a token is required")
	}
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"none", "", http.StatusUnauthorized},
		{"wrong", "Bearer wrong-token", http.StatusUnauthorized},
		{"prefix", "Bearer " + token[:5], http.StatusUnauthorized},
		{"basic", "Basic " + token, http.StatusUnauthorized},
		{"right", "Bearer " + token, http.StatusOK},
	} {
		hdr := map[string]string{}
		if tc.auth != "" {
			hdr["Authorization"] = tc.auth
		}
		resp := r.do("POST", "/api/pause", hdr)
		r.decode(resp, tc.want, nil)
		if tc.want == http.StatusUnauthorized {
			if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="mailtap"` {
				t.Errorf("%s: WWW-Authenticate = %q", tc.name, got)
			}
			if r.paused(inbox) {
				t.Fatalf("%s token paused the mailbox", tc.name)
			}
		}
	}
	if !r.paused(inbox) {
		t.Fatal("the right token did not pause")
	}
	r.decode(r.do("POST", "/api/resume", map[string]string{"Authorization": "bearer " + token}), http.StatusOK, nil)

	for _, path := range []string{"/", "/app.js", "/api/status", "/healthz", "/metrics"} {
		resp := r.do("GET", path, nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d without a token; reads stay open", path, resp.StatusCode)
		}
		if strings.Contains(string(body), token) || strings.Contains(string(body), r.imap.Password()) {
			t.Errorf("GET %s shows a secret", path)
		}
	}
}

func TestServer_crossOrigin(t *testing.T) {
	r := startRig(t)
	host := strings.TrimPrefix(r.base, "http://")
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"evil origin", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"other port", map[string]string{"Origin": "http://127.0.0.1:1"}, http.StatusForbidden},
		{"null origin", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site fetch", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://" + host}, http.StatusForbidden},
		{"same origin", map[string]string{"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"curl", nil, http.StatusOK},
	} {
		resp := r.do("POST", "/api/pause", tc.hdr)
		r.decode(resp, tc.want, nil)
		if tc.want == http.StatusForbidden && r.paused(inbox) {
			t.Fatalf("%s: a refused request paused the mailbox", tc.name)
		}
		r.decode(r.do("POST", "/api/resume", nil), http.StatusOK, nil)
	}
}

// On a loopback bind a Host header naming another site (DNS rebinding) is
// refused, for reads too: they show senders and subjects.
func TestServer_rebindingHost(t *testing.T) {
	r := startRig(t)
	port := r.base[strings.LastIndex(r.base, ":")+1:]
	for host, want := range map[string]int{
		"evil.example:" + port: http.StatusMisdirectedRequest,
		"evil.example":         http.StatusMisdirectedRequest,
		"localhost:" + port:    http.StatusOK,
		"127.0.0.1:" + port:    http.StatusOK,
		"[::1]:" + port:        http.StatusOK,
	} {
		resp := r.do("GET", "/api/status", map[string]string{"Host": host})
		r.decode(resp, want, nil)
	}
	r.decode(r.do("POST", "/api/pause", map[string]string{"Host": "evil.example:" + port}), http.StatusMisdirectedRequest, nil)
	if r.paused(inbox) {
		t.Fatal("rebinding request paused the mailbox")
	}
}

func TestServer_metrics(t *testing.T) {
	r := startRig(t)
	r.imap.Deliver(t, "INBOX", testimap.Msg("counted", 1))
	r.waitCaptured("counted")

	// The capture is listed before the session is back in IDLE, and the
	// state gauges are set just after the status changes: scrape until the
	// mailbox reads idle, then check every series in that one scrape.
	var fams map[string]*dto.MetricFamily
	scrape := func() {
		resp := r.do("GET", "/metrics", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics = %d", resp.StatusCode)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control = %q", cc)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		var err error
		fams, err = parser.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatalf("metrics do not parse as Prometheus text: %v", err)
		}
	}
	get := func(name string, labels map[string]string) (float64, bool) {
		f, ok := fams[name]
		if !ok {
			return 0, false
		}
	next:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
		return 0, false
	}
	state := func(s string) (float64, bool) {
		return get("mailtap_mailbox_state", map[string]string{"account": "test", "mailbox": "INBOX", "state": s})
	}
	eventually(func() bool {
		scrape()
		v, _ := state("idle")
		return v == 1
	})
	lbl := map[string]string{"account": "test", "mailbox": "INBOX"}
	if v, ok := get("mailtap_messages_captured_total", lbl); !ok || v < 1 {
		t.Errorf("mailtap_messages_captured_total = %v (present %v), want >= 1", v, ok)
	}
	if v, ok := get("mailtap_bytes_written_total", lbl); !ok || v <= 0 {
		t.Errorf("mailtap_bytes_written_total = %v (present %v)", v, ok)
	}
	if v, ok := get("mailtap_last_capture_timestamp_seconds", lbl); !ok || v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("mailtap_last_capture_timestamp_seconds = %v (present %v)", v, ok)
	}
	if v, ok := state("idle"); !ok || v != 1 {
		t.Errorf("mailtap_mailbox_state{state=idle} = %v (present %v) within 10s of the capture", v, ok)
	}
	// Every state has its series, and only the current one is 1.
	for _, s := range watcher.AllStates {
		v, ok := state(string(s))
		if !ok {
			t.Errorf("mailtap_mailbox_state{state=%s} missing", s)
		} else if s != watcher.StateIdle && v != 0 {
			t.Errorf("mailtap_mailbox_state{state=%s} = %v while idle", s, v)
		}
	}
}

// counter reads a counter summed over its series from /metrics.
func counter(t *testing.T, r *rig, name string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range mfs {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

type probeBody struct {
	Status string `json:"status"`
	Reason string `json:"reason"`
}

func TestServer_probes(t *testing.T) {
	r := startRig(t)
	var p probeBody
	r.decode(r.do("GET", "/healthz", nil), http.StatusOK, &p)
	if p.Status != "ok" || p.Reason == "" {
		t.Errorf("healthz = %+v", p)
	}
	r.decode(r.do("GET", "/readyz", nil), http.StatusOK, &p)
	if p.Status != "ok" || p.Reason == "" {
		t.Errorf("readyz = %+v", p)
	}

	// Deliberately paused is still ready.
	r.decode(r.do("POST", "/api/pause", nil), http.StatusOK, nil)
	r.waitState(inbox, "paused")
	r.decode(r.do("GET", "/readyz", nil), http.StatusOK, &p)

	// A server that is gone is not: the session is reconnecting.
	r.imap.Stop(t)
	r.decode(r.do("POST", "/api/resume", nil), http.StatusOK, nil)
	if !eventually(func() bool {
		resp := r.do("GET", "/readyz", nil)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return false
		}
		return json.NewDecoder(resp.Body).Decode(&p) == nil
	}) {
		t.Fatal("readyz did not turn 503 with the IMAP server down")
	}
	if p.Status != "not_ready" || !strings.Contains(p.Reason, inbox) {
		t.Errorf("readyz = %+v", p)
	}
	// Liveness is about the loops, not the server: still healthy.
	r.decode(r.do("GET", "/healthz", nil), http.StatusOK, &p)
	if err := Check(context.Background(), strings.TrimPrefix(r.base, "http://")); err != nil {
		t.Errorf("Check on a live server: %v", err)
	}
}

// wedged is a manager whose session loop has stopped answering.
type wedged struct{ *watcher.Manager }

func (wedged) Healthy() (bool, string) { return false, "test/INBOX: session loop silent for 2m0s" }

func TestServer_unhealthy(t *testing.T) {
	r := startRig(t, withWatcher(func(m *watcher.Manager) Watcher { return wedged{m} }))
	var p probeBody
	r.decode(r.do("GET", "/healthz", nil), http.StatusServiceUnavailable, &p)
	if p.Status != "unhealthy" || p.Reason != "test/INBOX: session loop silent for 2m0s" {
		t.Errorf("healthz = %+v", p)
	}
	err := Check(context.Background(), strings.TrimPrefix(r.base, "http://"))
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "silent for 2m0s") {
		t.Errorf("Check on an unhealthy server = %v", err)
	}
}

func TestCheck(t *testing.T) {
	r := startRig(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(r.base, "http://"))
	for _, addr := range []string{"127.0.0.1:" + port, ":" + port, "0.0.0.0:" + port, "localhost:" + port} {
		if err := Check(context.Background(), addr); err != nil {
			t.Errorf("Check(%q) = %v", addr, err)
		}
	}

	// Absent: a port that was just free.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	absent := ln.Addr().String()
	ln.Close()
	if err := Check(context.Background(), absent); err == nil {
		t.Error("Check against an absent server succeeded")
	}

	// Silent: accepts but never answers; Check gives up after 3 s (here
	// sooner, through the caller's context).
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := Check(ctx, silent.Addr().String()); err == nil {
		t.Error("Check against a silent server succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Check took %s against a silent server", d)
	}
	if err := Check(context.Background(), "no-port"); err == nil {
		t.Error("Check with a bad address succeeded")
	}
}

func TestServer_page(t *testing.T) {
	r := startRig(t)
	resp := r.do("GET", "/", nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	html := string(body)
	// Under script-src 'self' inline code would not run anyway; make sure
	// none was written, nor anything fetched from elsewhere.
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(tag, ` src="/`) {
			t.Errorf("inline script: %s", tag)
		}
	}
	if m := regexp.MustCompile(`\son[a-z]+=`).FindString(html); m != "" {
		t.Errorf("event handler attribute %q", m)
	}
	if regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(html) {
		t.Error("page loads external assets")
	}
	for path, ctype := range map[string]string{"/app.js": "text/javascript; charset=utf-8", "/style.css": "text/css; charset=utf-8"} {
		resp := r.do("GET", path, nil)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ctype || len(b) == 0 {
			t.Errorf("GET %s = %d %q (%d bytes)", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
		}
		if path == "/app.js" && (strings.Contains(string(b), "innerHTML") || strings.Contains(string(b), "insertAdjacentHTML")) {
			t.Error("app.js builds HTML from strings; use textContent")
		}
	}
	if n := pageSize(); n > 24<<10 {
		t.Errorf("page is %d bytes; keep it small", n)
	} else {
		t.Logf("page size (HTML+JS+CSS): %d bytes", n)
	}
	r.decode(r.do("GET", "/nope", nil), http.StatusNotFound, nil)
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ name, data string }

func readEvent(t *testing.T, br *bufio.Reader) sseEvent {
	t.Helper()
	var ev sseEvent
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && ev.name != "":
			return ev
		case strings.HasPrefix(line, "event: "):
			ev.name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[len("data: "):]
		}
	}
}

func TestServer_events(t *testing.T) {
	r := startRig(t)
	// The deadline bounds every read below: a missing event fails the test
	// instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", r.base+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /api/events = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	ev := readEvent(t, br)
	var st statusJSON
	if ev.name != "status" || json.Unmarshal([]byte(ev.data), &st) != nil || len(st.Mailboxes) != 1 {
		t.Fatalf("first event = %+v", ev)
	}

	r.imap.Deliver(t, "INBOX", testimap.Msg("streamed <b>live</b>", 1))
	for {
		ev := readEvent(t, br)
		if ev.name == "captured" {
			var c capturedJSON
			if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
				t.Fatal(err)
			}
			if len(c.Items) == 1 && c.Items[0].Subject == "streamed <b>live</b>" && len(c.Mailboxes) == 1 && c.Mailboxes[0].Captured == 1 {
				break
			}
			t.Fatalf("captured event = %+v", c)
		}
	}

	// Pause: a state change comes as a full status.
	r.decode(r.do("POST", "/api/pause", nil), http.StatusOK, nil)
	for {
		ev := readEvent(t, br)
		if ev.name == "status" && json.Unmarshal([]byte(ev.data), &st) == nil && st.Mailboxes[0].State == "paused" {
			if len(st.Recent) != 1 {
				t.Errorf("status recent = %+v", st.Recent)
			}
			break
		}
	}
}

// A quiet stream pings at the keepalive interval, as an event the page's
// script sees (a comment would not reach it), with the interval and what
// changes without events.
func TestServer_eventsPing(t *testing.T) {
	const interval = 300 * time.Millisecond
	r := startRig(t, withKeepalive(interval))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", r.base+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if ev := readEvent(t, br); ev.name != "status" {
		t.Fatalf("first event = %+v, want status", ev)
	}
	// The first ping comes right with the status; then one after each
	// interval without an event: not sooner, and not much later. (A state
	// change of the start-up may still be on its way: any event restarts
	// the interval.)
	last, pings := time.Now(), 0
	for pings < 4 {
		ev := readEvent(t, br)
		at := time.Now()
		if ev.name != "ping" {
			if pings == 0 {
				t.Fatalf("event after the first status = %+v, want ping", ev)
			}
			last = at
			continue
		}
		var p pingJSON
		if err := json.Unmarshal([]byte(ev.data), &p); err != nil {
			t.Fatalf("ping data %s: %v", ev.data, err)
		}
		if p.IntervalMS != interval.Milliseconds() || p.Now == "" {
			t.Errorf("ping = %s, want interval_ms %d and now", ev.data, interval.Milliseconds())
		}
		if len(p.Mailboxes) != 1 || p.Mailboxes[0].ID != inbox || p.Mailboxes[0].LastServerContact == nil {
			t.Errorf("ping mailboxes = %s, want %s with its last server contact", ev.data, inbox)
		}
		if pings > 0 {
			if gap := at.Sub(last); gap < interval*8/10 || gap > 5*interval {
				t.Errorf("ping %d came %s after the previous event; interval %s", pings+1, gap, interval)
			}
		}
		last = at
		pings++
	}
}

// Shutdown ends open event streams instead of waiting out the grace period.
func TestServer_shutdownWithOpenStream(t *testing.T) {
	mem := testimap.StartMem(t)
	out := t.TempDir()
	store, err := jsonstore.Open(out, jsonstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	mgr := watcher.New(testConfig(t, mem, out), store, &watcher.Options{Logger: quietLogger(t)})
	srv, err := New(mgr, Options{Addr: "127.0.0.1:0", Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()

	rctx, rcancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer rcancel()
	req, _ := http.NewRequestWithContext(rctx, "GET", "http://"+srv.Addr()+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	readEvent(t, br)

	start := time.Now()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve = %v, want nil after cancel", err)
		}
	case <-time.After(shutdownGrace + 2*time.Second):
		t.Fatal("Serve did not return")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("shutdown with an open stream took %s", d)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Errorf("stream did not end cleanly: %v", err)
	}
	if _, err := http.Get("http://" + srv.Addr() + "/healthz"); err == nil {
		t.Error("server still answers after shutdown")
	}
}

func TestServer_listenBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv, err := New(idleManager(t), Options{Addr: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "listen on "+ln.Addr().String()) {
		t.Fatalf("Run on a busy port = %v", err)
	}
}

// idleManager is a manager that is never run, for tests of New.
func idleManager(t *testing.T) *watcher.Manager {
	t.Helper()
	mem := testimap.StartMem(t)
	out := t.TempDir()
	store, err := jsonstore.Open(out, jsonstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return watcher.New(testConfig(t, mem, out), store, nil)
}
