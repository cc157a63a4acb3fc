package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"mailtap/internal/testimap"
)

// TestServerRestart_mailWhileDownCaptured: Dovecot stops under an IDLE
// session, mail reaches the maildir while it is down, Dovecot comes back:
// mailtap reconnects within its backoff (max_backoff 1 s) and captures all
// of it, once.
func TestServerRestart_mailWhileDownCaptured(t *testing.T) {
	binary(t)
	t.Parallel()
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})
	out := filepath.Join(t.TempDir(), "out")
	p := headless(t, baseConfig(dc, out).Write(t))
	p.waitLog(0, 20*time.Second, "state=idle", stateIs("idle"))

	// Push works before anything breaks.
	first := testimap.Msg("before the restart", 1)
	uid := dc.Deliver(t, "INBOX", first)
	p.waitLog(0, 10*time.Second, fmt.Sprintf("captured uid=%d", uid), capturedUID(uid))

	mark := p.logs.Len()
	dc.Stop(t)
	p.waitLog(mark, 10*time.Second, "state=reconnecting after the server stopped", stateIs("reconnecting"))

	want := map[string]bool{messageID(t, first): true}
	for i := 2; i <= 4; i++ {
		m := testimap.Msg("delivered while the server was down", i)
		maildirDeliver(t, dc, m)
		want[messageID(t, m)] = true
	}
	// Let the backoff grow to its cap: at least three failed attempts.
	deadline := time.Now().Add(15 * time.Second)
	for p.logs.count(func(l logLine) bool { return l.N >= mark && stateIs("reconnecting")(l) }) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("mailtap did not retry three times within 15 s of the server going away")
		}
		time.Sleep(50 * time.Millisecond)
	}

	restarted := time.Now()
	dc.Start(t)
	waitRecords(t, p, out, len(want), 15*time.Second)
	took := time.Since(restarted)
	t.Logf("server back → all mail captured in %s (max_backoff 1s)", took.Round(time.Millisecond))
	// One full backoff (≤ 1 s) plus login, EXAMINE and the fetch; the rest
	// is slack for a loaded CI machine.
	if limit := 4 * time.Second; took > limit {
		t.Errorf("capture took %s after the server came back, want ≤ %s", took, limit)
	}
	p.waitLog(mark, 10*time.Second, "state=idle again", stateIs("idle"))
	p.stop()
	assertNoPanic(t, p)

	recs := readRecords(t, out)
	got := map[string]int{}
	for _, r := range recs {
		got[r.MessageID]++
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("message %s captured %d times, want once", id, got[id])
		}
	}
	if len(recs) != len(want) {
		t.Errorf("%d records, want %d", len(recs), len(want))
	}
	assertOnlyRecords(t, out)
}
