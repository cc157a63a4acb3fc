//go:build linux

package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailtap/internal/testimap"
)

// tmpfsScript mounts a tmpfs of size $2 on $1 in the private mount
// namespace `unshare -m` made, then becomes mailtap with the remaining
// arguments. Nothing of it is visible outside that namespace; the test
// reaches the files through /proc/<pid>/root.
const tmpfsScript = `m=$1 s=$2; shift 2
mount -t tmpfs -o size="$s",mode=0755 mailtap-e2e "$m" || exit 97
exec "$MAILTAP_BIN" "$@"`

// requirePrivateTmpfs skips (or, where Dovecot is required, fails) when
// this machine does not let the test mount a tmpfs in a private mount
// namespace (not root, no CAP_SYS_ADMIN, unshare missing).
func requirePrivateTmpfs(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs -o size=1m probe "$1" && touch "$1/ok"`, "sh", dir).CombinedOutput()
	if err == nil {
		if _, serr := os.Stat(filepath.Join(dir, "ok")); serr == nil {
			err = fmt.Errorf("the tmpfs leaked out of the private namespace")
		}
	}
	if err != nil {
		why := fmt.Sprintf("cannot mount a tmpfs in a private mount namespace (unshare -m): %v %s", err, strings.TrimSpace(string(out)))
		if v := os.Getenv(testimap.RequireDovecotEnv); v != "" && v != "0" {
			t.Fatalf("%s, and %s is set", why, testimap.RequireDovecotEnv)
		}
		t.Skip(why)
	}
}

// TestDiskFull_errorStateNoLossAfterSpaceFreed: the output dir is on a
// small tmpfs that fills up while mail arrives. mailtap goes to state
// error and says why, keeps running and retrying, never moves the
// checkpoint past a record it could not write and never shows a partial
// file; once space is freed it captures everything.
//
// It runs twice: records only, where the record write fails; and with
// save_raw and saved attachments, where the failure hits while the body
// streams.
func TestDiskFull_errorStateNoLossAfterSpaceFreed(t *testing.T) {
	binary(t)
	requirePrivateTmpfs(t)
	t.Parallel()
	t.Run("records", func(t *testing.T) { t.Parallel(); testDiskFull(t, false) })
	t.Run("raw_and_attachments", func(t *testing.T) { t.Parallel(); testDiskFull(t, true) })
}

func testDiskFull(t *testing.T, saveFiles bool) {
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})

	mnt := t.TempDir() // the tmpfs is mounted here, inside mailtap's namespace only
	cfg := baseConfig(dc, filepath.Join(mnt, "out"))
	if saveFiles {
		cfg.Output.SaveRaw, cfg.Output.Attachments = true, "save"
	}
	p := startMailtap(t, runOpts{
		wrap: []string{"unshare", "-m", "--propagation", "private", "sh", "-c", tmpfsScript, "sh", mnt, "16m"},
		args: []string{"--headless", "--log-format", "json", "-c", cfg.Write(t)},
	})
	p.waitLog(0, 20*time.Second, "state=idle", stateIs("idle"))
	// mailtap's view of the tmpfs, from outside its namespace.
	fsRoot := fmt.Sprintf("/proc/%d/root%s", p.pid(), mnt)
	out := filepath.Join(fsRoot, "out")

	first := testimap.Msg("before the disk filled up", 0)
	uid0 := dc.Deliver(t, "INBOX", first)
	p.waitLog(0, 10*time.Second, fmt.Sprintf("captured uid=%d", uid0), capturedUID(uid0))

	// Fill the disk, leaving room for part of the batch below: some of
	// its files are written, then the disk is full, and the batch must
	// be dropped whole.
	var st syscall.Statfs_t
	if err := syscall.Statfs(fsRoot, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	filler := filepath.Join(fsRoot, "filler")
	if err := os.WriteFile(filler, make([]byte, free-24*64<<10), 0o644); err != nil {
		t.Fatalf("fill the tmpfs (%d bytes free): %v", free, err)
	}

	mark := p.logs.Len()
	// More than the 16 records a batch writes to named temp files, so
	// unnamed ones (O_TMPFILE) meet the full disk too.
	msgs := make([][]byte, 30)
	for i := range msgs {
		subject := fmt.Sprintf("while the disk is full %d", i+1)
		if saveFiles {
			msgs[i] = msgWithAttachment(subject, i+1, 48<<10)
		} else {
			msgs[i] = testimap.MsgSized(subject, i+1, 64<<10)
		}
	}
	uids := dc.DeliverMany(t, "INBOX", msgs)
	all := append([]uint32{uid0}, uids...)

	l := p.waitLog(mark, 20*time.Second, "state=error", stateIs("error"))
	t.Logf("disk full reported: %s", l.str("err"))
	if !strings.Contains(l.str("err"), "no space left") {
		t.Errorf("state error does not say the disk is full: %q", l.str("err"))
	}
	// It keeps retrying (backoff ≤ 1 s), and stays alive doing so.
	deadline := time.Now().Add(15 * time.Second)
	for p.logs.count(func(l logLine) bool { return l.N >= mark && stateIs("error")(l) }) < 3 {
		if time.Now().After(deadline) || !p.running() {
			t.Fatalf("mailtap did not retry three times with the disk full (running: %v)", p.running())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, last, _ := readCheckpoint(t, out); last != uid0 {
		t.Errorf("checkpoint at uid %d while the disk is full, want %d (the last record written)", last, uid0)
	}
	assertCheckpointCovered(t, out, all)
	assertOnlyRecords(t, out)
	readRecords(t, out) // every visible record is complete

	freed := time.Now()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitRecords(t, p, out, len(all), 20*time.Second)
	p.waitLog(mark, 10*time.Second, "state=idle after space was freed", stateIs("idle"))
	t.Logf("space freed → everything captured in %s", time.Since(freed).Round(time.Millisecond))

	recs := readRecords(t, out)
	byID := map[string]int{}
	for _, r := range recs {
		byID[r.MessageID]++
		for _, pe := range r.ParseErrors {
			if strings.Contains(pe, "no space") {
				t.Errorf("uid %d: the full disk ended up in the record as a parse error: %q", r.UID, pe)
			}
		}
	}
	for _, m := range append([][]byte{first}, msgs...) {
		if id := messageID(t, m); byID[id] != 1 {
			t.Errorf("message %s captured %d times, want once", id, byID[id])
		}
	}
	if _, last, _ := readCheckpoint(t, out); last != uids[len(uids)-1] {
		t.Errorf("checkpoint %d after recovery, want %d", last, uids[len(uids)-1])
	}
	assertOnlyRecords(t, out)
	// Failed attempts must not leave temp files eating the space that was
	// just freed.
	if left, _ := os.ReadDir(filepath.Join(out, ".mailtap", "tmp")); len(left) > 0 {
		t.Errorf("%d temp files left in .mailtap/tmp, e.g. %s", len(left), left[0].Name())
	}
	if spills, _ := filepath.Glob(filepath.Join(out, ".mailtap", "spill-*")); len(spills) > 0 {
		t.Errorf("spill files left behind: %v", spills)
	}
	// Nor open unnamed temp files, which hold their space until closed.
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid()))
	for _, fd := range fds {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p.pid(), fd.Name())); strings.Contains(target, "/.mailtap/tmp/") {
			t.Errorf("descriptor %s still open on temp file %s", fd.Name(), target)
		}
	}
	p.stop()
	assertNoPanic(t, p)
}

// msgWithAttachment is a multipart/mixed message with a text part and a
// base64 attachment of size random-looking bytes.
func msgWithAttachment(subject string, n, size int) []byte {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + n)
	}
	var b strings.Builder
	head := string(testimap.Msg(subject, n))
	hdr, _, _ := strings.Cut(head, "\r\n\r\n")
	hdr = strings.Replace(hdr, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit",
		`Content-Type: multipart/mixed; boundary="b1"`, 1)
	b.WriteString(hdr + "\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--b1\r\n")
	b.WriteString("Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"data.bin\"\r\n")
	b.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--b1--\r\n")
	return []byte(b.String())
}
