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

// TestUIDValidity_changeRecapturesAndKeepsOldFiles: the mailbox is
// recreated on the server (new UIDVALIDITY) while mailtap watches it.
// mailtap logs a warning naming both values, captures the mailbox again
// under the new one, and leaves every old file exactly as it was.
func TestUIDValidity_changeRecapturesAndKeepsOldFiles(t *testing.T) {
	binary(t)
	t.Parallel()
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})
	old := [][]byte{
		testimap.Msg("first", 1), testimap.Msg("second", 2), testimap.Msg("third", 3),
	}
	dc.DeliverMany(t, "INBOX", old)
	uv1 := dc.Status(t, "INBOX").UIDValidity

	out := filepath.Join(t.TempDir(), "out")
	p := headless(t, baseConfig(dc, out).Write(t))
	p.waitLog(0, 20*time.Second, "state=idle", stateIs("idle"))
	waitRecords(t, p, out, len(old), 10*time.Second)

	type snap struct {
		data  []byte
		mtime time.Time
	}
	before := map[string]snap{}
	for _, r := range readRecords(t, out) {
		fi, err := os.Stat(r.path)
		if err != nil {
			t.Fatal(err)
		}
		before[r.path] = snap{r.raw, fi.ModTime()}
	}

	mark := p.logs.Len()
	uv2 := dc.RecreateMailbox(t, "INBOX")
	// The same three come back (an account restored from a backup does
	// this), plus one new.
	again := append(old, testimap.Msg("new after the change", 4))
	dc.DeliverMany(t, "INBOX", again)

	w := p.waitLog(mark, 20*time.Second, "a UIDVALIDITY warning", func(l logLine) bool {
		return l.str("level") == "WARN" && strings.Contains(l.str("msg"), "UIDVALIDITY")
	})
	if w.num("old_uidvalidity") != float64(uv1) || w.num("new_uidvalidity") != float64(uv2) {
		t.Errorf("warning %s: want old_uidvalidity %d and new_uidvalidity %d", w.Raw, uv1, uv2)
	}
	waitRecords(t, p, out, len(old)+len(again), 20*time.Second)
	p.waitLog(mark, 10*time.Second, "state=idle after the recapture", stateIs("idle"))
	p.stop()
	assertNoPanic(t, p)

	var under2 []string
	for _, r := range readRecords(t, out) {
		switch r.UIDValidity {
		case uv1:
			b, ok := before[r.path]
			fi, err := os.Stat(r.path)
			if !ok || err != nil || !bytes.Equal(b.data, r.raw) || !fi.ModTime().Equal(b.mtime) {
				t.Errorf("old record %s changed (or appeared) after the UIDVALIDITY change", r.path)
			}
			delete(before, r.path)
		case uv2:
			under2 = append(under2, r.MessageID)
		default:
			t.Errorf("record %s under unknown uidvalidity %d (want %d or %d)", r.path, r.UIDValidity, uv1, uv2)
		}
	}
	for path := range before {
		t.Errorf("old record %s disappeared", path)
	}
	var want []string
	for _, m := range again {
		want = append(want, messageID(t, m))
	}
	if fmt.Sprint(under2) != fmt.Sprint(want) {
		t.Errorf("records under the new uidvalidity %d: %v, want %v", uv2, under2, want)
	}
	if uv, _, _ := readCheckpoint(t, out); uv != uv2 {
		t.Errorf("checkpoint uidvalidity %d, want %d", uv, uv2)
	}
	assertOnlyRecords(t, out)
}
