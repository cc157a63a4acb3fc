//go:build linux

package e2e

import (
	"fmt"
	"mailtap/internal/testbin"
	"mailtap/internal/testimap"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSinks_diskFullNothingLost: the output dir fills up while mail
// arrives and the journal grows; once space returns, every record is
// delivered.
func TestSinks_diskFullNothingLost(t *testing.T) {
	binary(t)
	requirePrivateTmpfs(t)
	t.Parallel()
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})
	rc := startReceiver(t, "ok")
	mnt := t.TempDir()
	cfg := baseConfig(dc, filepath.Join(mnt, "out"))
	cfg.Sinks = []testbin.Sink{webhookSink("hook", rc.url(), 2, nil)}
	p := startMailtap(t, runOpts{
		wrap: []string{"unshare", "-m", "--propagation", "private", "sh", "-c", tmpfsScript, "sh", mnt, "16m"},
		args: []string{"--headless", "--log-format", "json", "-c", cfg.Write(t)},
	})
	p.waitLog(0, 20*time.Second, "state=idle", stateIs("idle"))
	fsRoot := fmt.Sprintf("/proc/%d/root%s", p.pid(), mnt)
	out := filepath.Join(fsRoot, "out")
	first := dc.Deliver(t, "INBOX", testimap.Msg("before the disk filled up", 0))
	p.waitLog(0, 10*time.Second, "captured", capturedUID(first))

	var st syscall.Statfs_t
	if err := syscall.Statfs(fsRoot, &st); err != nil {
		t.Fatal(err)
	}
	// Leave a little room, so some records (and journal entries) fit
	// and then the rest fail.
	filler := filepath.Join(fsRoot, "filler")
	if err := os.WriteFile(filler, make([]byte, int64(st.Bavail)*st.Bsize-12*8<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	mark := p.logs.Len()
	msgs := make([][]byte, 40)
	for i := range msgs {
		msgs[i] = testimap.MsgSized(fmt.Sprintf("while the disk is full %d", i+1), i+1, 8<<10)
	}
	uids := append([]uint32{first}, dc.DeliverMany(t, "INBOX", msgs)...)
	p.waitLog(mark, 20*time.Second, "state=error", stateIs("error"))
	time.Sleep(time.Second) // let it retry against the full disk a while
	full, journal := 0, 0
	for _, l := range p.logs.all()[mark:] {
		if strings.Contains(l.Raw, "no space left") {
			full++
			if strings.Contains(l.Raw, "journal") || strings.Contains(l.Raw, "sink cursor") {
				journal++
			}
		}
	}
	t.Logf("%d log lines about the full disk, %d of them from the journal or a sink cursor", full, journal)
	if full == 0 {
		t.Fatal("the disk never filled up")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	uv, _, _ := readCheckpoint(t, out)
	rc.waitAccepted(t, p, recordIDs(uv, uids), 60*time.Second)
	for id, c := range rc.accepted() {
		if c > 1 {
			t.Errorf("%s delivered %d times without a crash", id, c)
		}
	}
	p.stop()
	assertNoPanic(t, p)
}
