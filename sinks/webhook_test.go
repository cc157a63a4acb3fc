package sinks

import (
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// Deliveries reuse their connections: over many deliveries with
// concurrency N the receiver sees at most N of them.
func TestWebhook_keepAlive(t *testing.T) {
	e := newEnv(t)
	var conns, requests atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		requests.Add(1)
		w.WriteHeader(204)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	const n = 4
	cfg := webhookCfg(srv.URL)
	cfg.Concurrency = n
	m, _ := e.start(cfg)
	for range 5 {
		e.commit("INBOX", 40)
	}
	waitFor(t, "200 deliveries", func() bool { return statusOf(m).Delivered == 200 })
	if c := conns.Load(); c < 1 || c > n {
		t.Errorf("%d TCP connections for %d deliveries with concurrency %d, want 1..%d", c, requests.Load(), n, n)
	}
}

// Certificates are verified: a receiver whose CA is not trusted gets
// nothing; with ca_file naming that CA it gets the record.
func TestWebhook_caFile(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.WriteHeader(200)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}

	e := newEnv(t)
	cfg := webhookCfg(srv.URL)
	cfg.MaxAttempts = 1
	m, stop := e.start(cfg)
	e.commit("INBOX", 1)
	waitFor(t, "a dead letter", func() bool { st := statusOf(m); return st.DeadLetters == 1 && st.Backlog == 0 })
	stop()
	if st := statusOf(m); requests.Load() != 0 || !strings.Contains(st.LastError, "certificate") {
		t.Errorf("without ca_file: %d requests, last error %q", requests.Load(), st.LastError)
	}

	cfg.CAFile = ca
	m, _ = e.start(cfg)
	e.commit("INBOX", 1)
	waitFor(t, "a delivery", func() bool { return statusOf(m).Delivered == 1 })
	if requests.Load() != 1 {
		t.Errorf("with ca_file: %d requests, want 1", requests.Load())
	}
}
