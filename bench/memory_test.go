//go:build linux

package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailtap/internal/testimap"
	"mailtap/record"
)

// TestBenchMemory: peak RSS of `mailtap --once` capturing one message of
// MAILTAP_BENCH_LARGE_MB (100) MiB whose bulk is a base64 attachment, with
// attachments "metadata" and "save"; mbsync on the same message for
// reference.
func TestBenchMemory(t *testing.T) {
	bin := requireBench(t)
	size := envInt(t, largeEnv, 100) << 20
	srv := testimap.StartDovecot(t, testimap.DovecotOptions{})
	msg := LargeMessage(DefaultSeed, size)
	msgLen := len(msg)
	srv.DeliverMany(t, "INBOX", [][]byte{msg})
	msg = nil
	rawFetch(t, srv, 1) // warm Dovecot's cache like the backfill does

	work := t.TempDir()
	cfgPath := filepath.Join(work, "config.json")
	label := fmt.Sprintf("one %s message (base64 attachment)", mb(int64(msgLen)))
	for _, mode := range []string{"metadata", "save"} {
		out := filepath.Join(work, "out-"+mode)
		writeConfig(t, cfgPath, srv, out, mode)
		settle()
		res := runTimed(t, bin, "--once", "-c", cfgPath, "--log-level", "warn")
		rec := onlyRecord(t, out)
		if len(rec.Attachments) != 1 || rec.Attachments[0].Size < int64(msgLen)*7/10 {
			t.Fatalf("%s: attachments %+v", mode, rec.Attachments)
		}
		if mode == "save" {
			a := rec.Attachments[0]
			if a.SavedAs == nil {
				t.Fatal("save: attachment not saved")
			}
			fi, err := os.Stat(filepath.Join(out, *a.SavedAs))
			if err != nil || fi.Size() != a.Size {
				t.Fatalf("save: saved file %v, size %d (want %d)", err, fi.Size(), a.Size)
			}
		}
		results.add("memory", fmt.Sprintf("`mailtap --once`, %s, attachments %q", label, mode),
			fmt.Sprintf("**peak RSS %s**; %.2f s, %.2f s CPU", mb(res.maxRSS), res.wall.Seconds(), res.cpu().Seconds()),
			"≤ 64 MB", yesNo(res.maxRSS <= 64e6))
		t.Logf("%s: peak RSS %s, %v", mode, mb(res.maxRSS), res.wall.Round(time.Millisecond))
		os.RemoveAll(out)
	}

	if mbsync, err := exec.LookPath("mbsync"); err == nil {
		maildir := filepath.Join(work, "maildir")
		if err := os.Mkdir(maildir, 0o755); err != nil {
			t.Fatal(err)
		}
		rcPath := filepath.Join(work, "mbsyncrc")
		writeMbsyncrc(t, rcPath, srv, maildir)
		settle()
		res := runTimed(t, mbsync, "-c", rcPath, "-a", "-q")
		results.add("memory", "mbsync, same message (reference)", fmt.Sprintf("peak RSS %s; %.2f s", mb(res.maxRSS), res.wall.Seconds()), "", "")
	}
}

// onlyRecord reads the single record under out.
func onlyRecord(t *testing.T, out string) *record.Record {
	t.Helper()
	var paths []string
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == ".mailtap" {
			return filepath.SkipDir
		}
		if err == nil && strings.HasSuffix(p, ".json") && d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return err
	})
	if len(paths) != 1 {
		t.Fatalf("%d records under %s, want 1", len(paths), out)
	}
	rec, err := record.ReadRecord(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestBenchIdle: `mailtap --headless` watching 1 mailbox and, at the same
// time as a second process, 10 mailboxes (each with 20 corpus messages
// captured first), idle in IDLE with watch.idle_refresh at its default 5m:
// RSS after 30 s, CPU time (utime+stime of all threads) over
// MAILTAP_BENCH_IDLE_SECONDS (60) s.
func TestBenchIdle(t *testing.T) {
	bin := requireBench(t)
	window := time.Duration(envInt(t, idleEnv, 60)) * time.Second
	boxes := []string{"INBOX"}
	for i := 1; i < 10; i++ {
		boxes = append(boxes, fmt.Sprintf("Box%02d", i))
	}
	srv := testimap.StartDovecot(t, testimap.DovecotOptions{Mailboxes: boxes[1:]})
	for i, box := range boxes {
		srv.DeliverMany(t, box, Corpus(DefaultSeed+uint64(i)+1, 20))
	}

	type proc struct {
		label   string
		boxes   []string
		cmd     *exec.Cmd
		log     string
		cpu0    time.Duration
		rss30   int64
		hwm30   int64
		cpuUsed time.Duration
	}
	procs := []*proc{{label: "1 mailbox", boxes: boxes[:1]}, {label: "10 mailboxes", boxes: boxes}}
	work := t.TempDir()
	for i, p := range procs {
		cfgPath := filepath.Join(work, fmt.Sprintf("config-%d.json", i))
		writeConfig(t, cfgPath, srv, filepath.Join(work, fmt.Sprintf("out-%d", i)), "metadata", p.boxes...)
		p.log = filepath.Join(work, fmt.Sprintf("mailtap-%d.log", i))
		p.cmd = startMailtap(t, bin, cfgPath, p.log)
	}
	for _, p := range procs {
		if err := waitIdle(p.log, len(p.boxes), time.Minute); err != nil {
			log, _ := os.ReadFile(p.log)
			t.Fatalf("%s: %v\n%s", p.label, err, tail(log, 30))
		}
	}
	// Let the catch-up's garbage be collected before measuring.
	time.Sleep(2 * time.Second)
	var err error
	for _, p := range procs {
		if p.cpu0, err = procCPU(p.cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	memAt := min(30*time.Second, window)
	time.Sleep(memAt)
	for _, p := range procs {
		if p.rss30, p.hwm30, err = procMem(p.cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(window - time.Since(start))
	elapsed := time.Since(start)
	for _, p := range procs {
		cpu, err := procCPU(p.cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		p.cpuUsed = cpu - p.cpu0
		perMin := p.cpuUsed.Seconds() * 60 / elapsed.Seconds()
		results.add("idle", fmt.Sprintf("`mailtap --headless`, %s in IDLE: CPU over %.0f s", p.label, elapsed.Seconds()),
			fmt.Sprintf("**%.2f s** (%.3f s/min)", p.cpuUsed.Seconds(), perMin), "≤ 0.1 s/min", yesNo(perMin <= 0.1))
		results.add("idle", fmt.Sprintf("`mailtap --headless`, %s in IDLE: memory after %.0f s", p.label, memAt.Seconds()),
			fmt.Sprintf("RSS %s, peak RSS %s (20 messages per mailbox captured at start)", mb(p.rss30), mb(p.hwm30)), "", "")
		t.Logf("%s: cpu %v over %v, rss %s, hwm %s", p.label, p.cpuUsed, elapsed.Round(time.Second), mb(p.rss30), mb(p.hwm30))
	}
}

// waitIdle waits until mailtap's JSON log shows state "idle" for n
// mailboxes.
func waitIdle(logPath string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		idle := map[string]bool{}
		if f, err := os.Open(logPath); err == nil {
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var line struct {
					Msg, State, Mailbox string
				}
				if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "mailbox state" {
					idle[line.Mailbox] = line.State == "idle"
				}
			}
			f.Close()
		}
		count := 0
		for _, ok := range idle {
			if ok {
				count++
			}
		}
		if count >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d mailboxes idle after %v", count, n, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
