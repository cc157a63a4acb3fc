package watcher_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"mailtap/internal/testimap"
	"mailtap/watcher"
)

// logSince returns the log lines written after byte offset mark.
func logSince(h *harness, mark int) []string {
	return strings.Split(strings.TrimSpace(h.logs.String()[mark:]), "\n")
}

// waitLogLine waits for a line after mark containing every part.
func waitLogLine(t *testing.T, h *harness, mark int, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, l := range logSince(h, mark) {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no log line with %q after the mark:\n%s", parts, h.logs.String()[mark:])
}

// A mail that arrives in IDLE is one INFO line ("captured"); the syncing
// and idle states around it go to DEBUG. A reconnect the user asked for is
// INFO, not a warning: nothing went wrong.
func TestWatcher_logLevels(t *testing.T) {
	srv := testimap.StartMem(t)
	out := t.TempDir()
	h := start(t, testConfig(srv, out), nil)
	h.waitState(5*time.Second, watcher.StateIdle)
	waitLogLine(t, h, 0, "level=INFO", `msg="mailbox state"`, "state=idle")

	mark := len(h.logs.String())
	srv.Deliver(t, "INBOX", msg("one line per mail", 1))
	waitRecords(t, out, 1, 10*time.Second)
	waitLogLine(t, h, mark, `msg="mailbox state"`, "state=idle")
	var info []string
	for _, l := range logSince(h, mark) {
		if !strings.Contains(l, "level=DEBUG") {
			info = append(info, l)
		}
	}
	if len(info) != 1 || !strings.Contains(info[0], "msg=captured") {
		t.Errorf("a mail in IDLE logged %d lines above DEBUG, want one (captured):\n%s", len(info), strings.Join(info, "\n"))
	}

	mark = len(h.logs.String())
	if err := h.m.Reconnect(""); err != nil {
		t.Fatal(err)
	}
	waitLogLine(t, h, mark, "level=INFO", `msg="mailbox state"`, "state=reconnecting")
	waitLogLine(t, h, mark, "level=INFO", `msg="mailbox state"`, "state=idle")
	for _, l := range logSince(h, mark) {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			t.Errorf("a requested reconnect logged a warning: %s", l)
		}
	}
}

// A refused connection says so without repeating the address: the end of
// the message is what a narrow status line cuts off.
func TestWatcher_dialErrorIsShort(t *testing.T) {
	srv := testimap.StartMem(t)
	cfg := testConfig(srv, t.TempDir())
	cfg.Accounts[0].Port = closedPort(t)
	h := start(t, cfg, nil)
	st := h.waitState(10*time.Second, watcher.StateReconnecting)
	want := fmt.Sprintf("connect to 127.0.0.1:%d: connection refused", cfg.Accounts[0].Port)
	if st.Err != want {
		t.Errorf("error %q, want %q", st.Err, want)
	}
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}
