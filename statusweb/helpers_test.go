package statusweb

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailtap/config"
	"mailtap/internal/testimap"
	"mailtap/jsonstore"
	"mailtap/watcher"
)

// rig is a real watcher on an in-memory IMAP server with a status server in
// front of it, all on loopback TCP.
type rig struct {
	t    *testing.T
	imap *testimap.Mem
	mgr  *watcher.Manager
	reg  *prometheus.Registry
	srv  *Server
	base string // http://127.0.0.1:port
	out  string

	stop       context.CancelFunc
	served     chan error // Server.Serve's result
	watcherRan chan error
}

type rigOption func(*rigConfig)

type rigConfig struct {
	opts Options
	// wrap lets a test put a different Watcher in front of the manager.
	wrap func(*watcher.Manager) Watcher
	// keepalive, if set, replaces streamKeepalive.
	keepalive time.Duration
}

func withOptions(o Options) rigOption { return func(c *rigConfig) { c.opts = o } }

// withKeepalive shortens the event stream's ping interval.
func withKeepalive(d time.Duration) rigOption { return func(c *rigConfig) { c.keepalive = d } }

func withWatcher(f func(*watcher.Manager) Watcher) rigOption {
	return func(c *rigConfig) { c.wrap = f }
}

// testConfig is a config for the in-memory server, as a user would write it
// for a loopback server without TLS.
func testConfig(t *testing.T, mem *testimap.Mem, out string) *config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.Source = "test"
	cfg.Accounts = []config.Account{{
		Name: "test", Host: mem.Host(), Port: mem.Port(), TLS: config.TLSNone,
		Username: mem.Username(), Password: mem.Password(), Auth: config.AuthPlain,
		Mailboxes: []string{"INBOX"}, Backfill: config.BackfillAll,
	}}
	cfg.Output.Dir = out
	cfg.Watch = config.Watch{
		IDLE:            true,
		PollInterval:    config.Duration{Duration: time.Second},
		MaxBackoff:      config.Duration{Duration: 2 * time.Second},
		IdleRefresh:     config.Duration{Duration: time.Minute},
		ResponseTimeout: config.Duration{Duration: 5 * time.Second},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

// quietLogger keeps test output readable; failures still show.
func quietLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startRig starts everything and waits until the mailbox is idle.
func startRig(t *testing.T, options ...rigOption) *rig {
	t.Helper()
	var rc rigConfig
	rc.opts.Addr = "127.0.0.1:0"
	for _, o := range options {
		o(&rc)
	}
	// A password that cannot occur by chance, so tests can look for leaks.
	mem := testimap.StartMem(t, testimap.WithCredentials("user", "imap-secret-9f2c"))
	out := t.TempDir()
	cfg := testConfig(t, mem, out)
	store, err := jsonstore.Open(out, jsonstore.Options{Pretty: true})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	log := quietLogger(t)
	mgr := watcher.New(cfg, store, &watcher.Options{Metrics: watcher.NewMetrics(reg), Logger: log})

	opts := rc.opts
	opts.Gatherer = reg
	opts.Logger = log
	if opts.Version == "" {
		opts.Version = "v0.0.0-test"
	}
	var w Watcher = mgr
	if rc.wrap != nil {
		w = rc.wrap(mgr)
	}
	srv, err := New(w, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if rc.keepalive > 0 {
		srv.keepalive = rc.keepalive // before Serve: no stream reads it yet
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, imap: mem, mgr: mgr, reg: reg, srv: srv, out: out, stop: cancel,
		served: make(chan error, 1), watcherRan: make(chan error, 1)}
	host, port, _ := net.SplitHostPort(srv.Addr())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	r.base = "http://" + net.JoinHostPort(host, port)
	go func() { r.watcherRan <- mgr.Run(ctx) }()
	go func() { r.served <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		for _, ch := range []chan error{r.served, r.watcherRan} {
			select {
			case err := <-ch:
				if err != nil {
					t.Errorf("stopped with error: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("server or watcher did not stop within 10s")
			}
		}
		store.Close()
	})
	r.waitState("test/INBOX", "idle")
	return r
}

// eventually polls cond until it holds (true) or 10 s pass (false).
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

func (r *rig) waitState(id, state string) {
	r.t.Helper()
	var last watcher.MailboxStatus
	if !eventually(func() bool {
		for _, st := range r.mgr.Status() {
			if st.Mailbox.String() == id {
				last = st
				return string(st.State) == state
			}
		}
		return false
	}) {
		r.t.Fatalf("timed out waiting for %s to be %s; last %s (err %q)", id, state, last.State, last.Err)
	}
}

// waitCaptured waits until the status lists a mail with this subject.
func (r *rig) waitCaptured(subject string) recentItem {
	r.t.Helper()
	var found recentItem
	if !eventually(func() bool {
		for _, it := range r.status().Recent {
			if it.Subject == subject {
				found = it
				return true
			}
		}
		return false
	}) {
		r.t.Fatalf("timed out waiting for %q in /api/status recent", subject)
	}
	return found
}

func (r *rig) status() statusJSON {
	r.t.Helper()
	var st statusJSON
	resp := r.do("GET", "/api/status", nil)
	r.decode(resp, http.StatusOK, &st)
	return st
}

// do sends a request; hdr holds extra headers.
func (r *rig) do(method, path string, hdr map[string]string) *http.Response {
	r.t.Helper()
	req, err := http.NewRequest(method, r.base+path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	r.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// decode checks the status code and decodes the JSON body into v.
func (r *rig) decode(resp *http.Response, code int, v any) {
	r.t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	if resp.StatusCode != code {
		r.t.Fatalf("%s %s: got %d %s, want %d", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, body, code)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			r.t.Fatalf("%s %s: decode %s: %v", resp.Request.Method, resp.Request.URL.Path, body, err)
		}
	}
}

func (r *rig) paused(id string) bool {
	for _, st := range r.mgr.Status() {
		if st.Mailbox.String() == id {
			return st.Paused
		}
	}
	r.t.Fatalf("no mailbox %s", id)
	return false
}
