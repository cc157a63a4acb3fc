package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"mailtap/internal/testimap"
)

// TestSigterm_duringBackfill: SIGTERM in the middle of a backfill ends
// mailtap with exit 0 within 10 s, the records in flight finished and the
// checkpoint written up to them; a restart completes the job without
// duplicates.
func TestSigterm_duringBackfill(t *testing.T) {
	binary(t)
	t.Parallel()
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})
	const n = 1000
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = testimap.MsgSized(fmt.Sprintf("sigterm %d", i+1), i+1, 16<<10)
	}
	uids := dc.DeliverMany(t, "INBOX", msgs)

	out := filepath.Join(t.TempDir(), "out")
	cfg := baseConfig(dc, out).Write(t)
	p := headless(t, cfg)
	p.waitLog(0, 30*time.Second, "the first captured record", msgIs("captured"))
	sent := time.Now()
	p.stop() // SIGTERM, exit 0 within 10 s
	t.Logf("SIGTERM → exit 0 in %s with %d of %d records", time.Since(sent).Round(time.Millisecond), countRecords(out), n)
	p.waitLog(0, time.Second, `"mailtap stopped cleanly"`, msgIs("mailtap stopped cleanly"))
	assertNoPanic(t, p)

	recs := readRecords(t, out)
	if len(recs) == n {
		t.Fatal("the backfill finished before SIGTERM; nothing was in flight")
	}
	_, last, ok := readCheckpoint(t, out)
	if !ok {
		t.Fatal("no checkpoint after a clean stop")
	}
	var maxUID uint32
	for _, r := range recs {
		maxUID = max(maxUID, r.UID)
	}
	// A clean stop leaves no record the checkpoint does not cover: the
	// batch in flight was committed and the checkpoint moved with it.
	if last != maxUID {
		t.Errorf("checkpoint last_uid %d after a clean stop, but records go up to uid %d", last, maxUID)
	}
	assertCheckpointCovered(t, out, uids)
	assertOnlyRecords(t, out)

	p = headless(t, cfg)
	p.waitLog(0, 60*time.Second, "state=idle after the rest of the backfill", stateIs("idle"))
	p.stop()
	recs = readRecords(t, out)
	ids := map[string]bool{}
	for _, r := range recs {
		if ids[r.MessageID] {
			t.Errorf("message %s captured twice", r.MessageID)
		}
		ids[r.MessageID] = true
	}
	for _, m := range msgs {
		if id := messageID(t, m); !ids[id] {
			t.Errorf("message %s missing after the restart", id)
		}
	}
}
