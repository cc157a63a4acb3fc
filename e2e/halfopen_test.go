package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailtap/internal/testimap"
)

// Timings of baseConfig that the half-open bound is made of.
const (
	idleRefresh     = 2 * time.Second
	responseTimeout = 2 * time.Second
	// detectionSlack covers scheduling on a loaded 2-core CI machine; the
	// promise itself is idle_refresh + response_timeout.
	detectionSlack = 2 * time.Second
)

// TestHalfOpen_frozenPeerDetected: the connection to the server stops
// carrying anything but stays open (a proxy that freezes). mailtap, in
// IDLE, notices within idle_refresh + response_timeout, keeps retrying
// while new connections hang too, and once the path works again it
// reconnects and captures the mail that arrived meanwhile, once.
func TestHalfOpen_frozenPeerDetected(t *testing.T) {
	binary(t)
	t.Parallel()
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})
	px := startProxy(t, dc.Addr())
	out := filepath.Join(t.TempDir(), "out")
	cfg := baseConfig(dc, out)
	cfg.Accounts[0].Port = px.Port()
	// Debug: the return to IDLE after a capture is a DEBUG line (it only
	// brackets the capture), and the freeze must start in IDLE.
	p := headless(t, cfg.Write(t), "--log-level", "debug")
	p.waitLog(0, 20*time.Second, "state=idle", stateIs("idle"))
	uid := dc.Deliver(t, "INBOX", testimap.Msg("before the freeze", 1))
	p.waitLog(0, 10*time.Second, fmt.Sprintf("captured uid=%d", uid), capturedUID(uid))

	// Freeze while IDLE: the worst case, where silence is expected.
	mark := p.logs.Len()
	p.waitLog(mark, 10*time.Second, "state=idle", stateIs("idle"))
	frozeAt := time.Now()
	px.Freeze()
	l := p.waitLog(mark, 30*time.Second, "state=reconnecting after the freeze", stateIs("reconnecting"))
	detected := l.time().Sub(frozeAt)
	bound := idleRefresh + responseTimeout
	t.Logf("half-open connection detected %s after the freeze (bound idle_refresh+response_timeout = %s); error: %s",
		detected.Round(time.Millisecond), bound, l.str("err"))
	if detected > bound+detectionSlack {
		t.Errorf("frozen connection detected after %s, want ≤ %s (+%s slack)", detected, bound, detectionSlack)
	}

	// Mail arrives while the path is dead; new connections hang at the
	// greeting and must time out too.
	want := map[string]bool{}
	for i := 2; i <= 3; i++ {
		m := testimap.Msg("during the freeze", i)
		dc.Deliver(t, "INBOX", m)
		want[messageID(t, m)] = true
	}
	accepted := px.Accepted()
	deadline := time.Now().Add(20 * time.Second)
	for px.Accepted() < accepted+2 {
		if time.Now().After(deadline) {
			t.Fatal("mailtap did not retry through the frozen path twice within 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := countRecords(out); n != 1 {
		t.Fatalf("%d records while frozen, want 1", n)
	}

	restored := time.Now()
	px.Restore()
	waitRecords(t, p, out, 3, 20*time.Second)
	t.Logf("path restored → mail captured in %s", time.Since(restored).Round(time.Millisecond))
	p.stop()
	assertNoPanic(t, p)

	for _, r := range readRecords(t, out) {
		if r.Subject == "during the freeze" && !want[r.MessageID] {
			t.Errorf("unexpected record %s", r.MessageID)
		}
		delete(want, r.MessageID)
	}
	for id := range want {
		t.Errorf("message %s delivered during the freeze was not captured", id)
	}
	assertOnlyRecords(t, out)
}

// TestHalfOpen_cutMidLiteral: the connection dies 1 MB into the literal of
// a 5 MB message. No partial record (nor raw copy) ever becomes visible;
// after the reconnect the message is captured whole, byte for byte.
func TestHalfOpen_cutMidLiteral(t *testing.T) {
	binary(t)
	t.Parallel()
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})
	px := startProxy(t, dc.Addr())
	out := filepath.Join(t.TempDir(), "out")
	cfg := baseConfig(dc, out)
	cfg.Accounts[0].Port = px.Port()
	cfg.Output.SaveRaw = true
	p := headless(t, cfg.Write(t))
	p.waitLog(0, 20*time.Second, "state=idle", stateIs("idle"))

	big := testimap.MsgSized("five megabytes", 1, 5<<20)
	mark := p.logs.Len()
	px.CutServerAfter(1 << 20)
	uid := dc.DeliverMany(t, "INBOX", [][]byte{big})[0]

	l := p.waitLog(mark, 30*time.Second, "state=reconnecting after the cut", stateIs("reconnecting"))
	if px.Cuts() != 1 {
		t.Fatalf("the proxy made %d cuts, want 1", px.Cuts())
	}
	t.Logf("cut noticed: %s", l.str("err"))
	base := filepath.Join(mailboxDir(out), fmt.Sprintf("%d-%010d", dc.Status(t, "INBOX").UIDValidity, uid))
	// Between the cut and the next attempt nothing of the message may be
	// visible. (A record could only appear here if the partial stream had
	// been committed.)
	for _, ext := range []string{".json", ".eml"} {
		if _, err := os.Stat(base + ext); err == nil {
			t.Errorf("%s exists after the connection was cut mid-literal", base+ext)
		}
	}

	p.waitLog(mark, 30*time.Second, fmt.Sprintf("captured uid=%d", uid), capturedUID(uid))
	p.stop()
	assertNoPanic(t, p)

	recs := readRecords(t, out)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	r := recs[0]
	if r.Size != int64(len(big)) {
		t.Errorf("record size %d, want %d", r.Size, len(big))
	}
	if !r.Truncated || !strings.HasPrefix(r.Text, "This is test message 1.") {
		t.Errorf("record text %d bytes, truncated %v; want the body cut at max_body_bytes", len(r.Text), r.Truncated)
	}
	raw, err := os.ReadFile(base + ".eml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, big) {
		t.Errorf("raw copy is %d bytes and differs from the %d delivered", len(raw), len(big))
	}
	assertOnlyRecords(t, out)
}
