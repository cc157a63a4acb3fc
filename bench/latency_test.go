//go:build linux

package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"golang.org/x/sys/unix"

	"mailtap/internal/testimap"
	"mailtap/jsonstore"
)

// TestBenchLatency: mailtap --headless IDLEs on INBOX while another client
// APPENDs messages one at a time; for each, the time from the APPEND's
// tagged OK to (a) the record's appearance in the mailbox dir (a link, or a
// rename where unnamed temp files are unavailable) and (b) the
// checkpoint's rename, both seen with inotify. (b) is the durability mark:
// jsonstore renames INBOX's checkpoint file (jsonstore.CheckpointPath) only
// after the record and its directory are synced, so (a) ≤ durable ≤ (b)
// and (b) overstates by one small write+fsync+rename. Next to it, in the same run, a bare imapclient
// IDLE client's APPEND→EXISTS time: the floor no IDLE client can beat.
func TestBenchLatency(t *testing.T) {
	bin := requireBench(t)
	n := envInt(t, latencyEnv, 200)
	t.Run("dovecot", func(t *testing.T) {
		latency(t, bin, testimap.StartDovecot(t, testimap.DovecotOptions{}), "Dovecot", n)
	})
	t.Run("mem", func(t *testing.T) {
		latency(t, bin, testimap.StartMem(t), "go-imap in-memory server", n)
	})
}

// gap is the pause after a message is captured before the next APPEND, so
// both clients are back in IDLE.
const gap = 100 * time.Millisecond

func latency(t *testing.T, bin string, srv server, label string, n int) {
	work := t.TempDir()
	out := filepath.Join(work, "out")
	cfgPath := filepath.Join(work, "config.json")
	writeConfig(t, cfgPath, srv, out, "metadata")
	logPath := filepath.Join(work, "mailtap.log")
	startMailtap(t, bin, cfgPath, logPath)

	fail := func(format string, args ...any) {
		t.Helper()
		log, _ := os.ReadFile(logPath)
		t.Fatalf(format+"\nmailtap log:\n%s", append(args, tail(log, 30))...)
	}

	statePath := jsonstore.CheckpointPath(out, "bench", "INBOX")
	stateDir, stateName := filepath.Dir(statePath), filepath.Base(statePath)
	if err := waitFile(statePath, 30*time.Second); err != nil {
		fail("mailtap did not write its checkpoint: %v", err)
	}
	in, err := newInotify()
	if err != nil {
		t.Fatal(err)
	}
	defer in.close()
	stateWD, err := in.watch(stateDir)
	if err != nil {
		t.Fatal(err)
	}

	floor := newIdleClient(t, srv)
	app, err := imapclient.DialInsecure(fmt.Sprintf("%s:%d", srv.Host(), srv.Port()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if err := app.Login(srv.Username(), srv.Password()).Wait(); err != nil {
		t.Fatal(err)
	}
	appendMsg := func(m []byte) (*imap.AppendData, time.Time) {
		cmd := app.Append("INBOX", int64(len(m)), nil)
		if _, err := cmd.Write(m); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		data, err := cmd.Wait()
		done := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		if data.UID == 0 {
			t.Fatal("server did not return APPENDUID")
		}
		return data, done
	}

	// The mailbox dir exists from the first record on: a first message
	// creates it, then it is watched. Two more warm the path.
	msgs := latencyMessages(n + 3)
	data, _ := appendMsg(msgs[0])
	mboxDir := filepath.Join(out, jsonstore.MailboxRelDir("bench", "INBOX", '/'))
	if err := waitFile(filepath.Join(mboxDir, jsonstore.RecordBaseName(data.UIDValidity, uint32(data.UID))+".json"), 30*time.Second); err != nil {
		fail("first message not captured: %v", err)
	}
	mboxWD, err := in.watch(mboxDir)
	if err != nil {
		t.Fatal(err)
	}

	var floorLat, recLat, durLat, over []time.Duration
	for k := 1; k < len(msgs); k++ {
		time.Sleep(gap)
		data, t0 := appendMsg(msgs[k])
		name := jsonstore.RecordBaseName(data.UIDValidity, uint32(data.UID)) + ".json"
		want := floor.base + uint32(k) + 1
		var tExists, tRecord, tState time.Time
		deadline := time.After(30 * time.Second)
		for tExists.IsZero() || tRecord.IsZero() || tState.IsZero() {
			select {
			case e := <-floor.exists:
				if e.n >= want && tExists.IsZero() {
					tExists = e.at
				}
			case ev := <-in.events:
				switch {
				case ev.wd == mboxWD && ev.name == name:
					tRecord = ev.at
				case ev.wd == stateWD && ev.name == stateName && !tRecord.IsZero() && tState.IsZero():
					if last, err := checkpointUID(out); err == nil && last >= uint32(data.UID) {
						tState = ev.at
					}
				}
			case err := <-in.errs:
				t.Fatal(err)
			case <-deadline:
				fail("message %d (UID %d): after 30 s exists=%v record=%v checkpoint=%v", k, data.UID, !tExists.IsZero(), !tRecord.IsZero(), !tState.IsZero())
			}
		}
		if k < 3 {
			continue // warm-up
		}
		floorLat = append(floorLat, tExists.Sub(t0))
		recLat = append(recLat, tRecord.Sub(t0))
		durLat = append(durLat, tState.Sub(t0))
		over = append(over, tState.Sub(tExists))
	}
	if last, err := checkpointUID(out); err != nil || last < uint32(data.UID) {
		t.Fatalf("checkpoint at %d (%v)", last, err)
	}

	dist := func(xs []time.Duration) string {
		return fmt.Sprintf("p50 %s, p99 %s, max %s", ms(percentile(xs, 50)), ms(percentile(xs, 99)), ms(percentile(xs, 100)))
	}
	bench := "latency, " + label
	results.add(bench, fmt.Sprintf("floor: bare IDLE client, APPEND OK → EXISTS (%d msgs)", len(floorLat)), dist(floorLat), "", "")
	results.add(bench, "mailtap: APPEND OK → record linked or renamed into place (visible)", dist(recLat), "", "")
	p50, p99 := percentile(durLat, 50), percentile(durLat, 99)
	f50, f99 := percentile(floorLat, 50), percentile(floorLat, 99)
	results.add(bench, "mailtap: APPEND OK → checkpoint renamed (record durable)", "**"+dist(durLat)+"**",
		fmt.Sprintf("p50 ≤ %s, p99 ≤ %s", ms(f50+20*time.Millisecond), ms(f99+100*time.Millisecond)),
		yesNo(p50 <= f50+20*time.Millisecond && p99 <= f99+100*time.Millisecond))
	results.add(bench, "mailtap durable − floor, per message", dist(over), "", "")
	t.Logf("%s: floor %s; record %s; durable %s", label, dist(floorLat), dist(recLat), dist(durLat))
}

// latencyMessages are corpus messages from index 50,000 on, without the
// rare 300 KB–1 MB ones: this measures notification and commit, not
// transfer.
func latencyMessages(n int) [][]byte {
	var msgs [][]byte
	for i := 50_000; len(msgs) < n; i++ {
		if KindOf(DefaultSeed, i) != KindLarge {
			msgs = append(msgs, Message(DefaultSeed, i))
		}
	}
	return msgs
}

// startMailtap runs `mailtap --headless` until the test ends (SIGTERM,
// then SIGKILL after 10 s).
func startMailtap(t *testing.T, bin, cfgPath, logPath string) *exec.Cmd {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "-c", cfgPath, "--log-format", "json")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		logFile.Close()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("mailtap did not exit within 10 s of SIGTERM")
		}
	})
	return cmd
}

func waitFile(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func checkpointUID(out string) (uint32, error) {
	m, err := jsonstore.ReadCheckpoint(out)
	if err != nil {
		return 0, err
	}
	st, ok := m[jsonstore.CheckpointKey("bench", "INBOX")]
	if !ok {
		return 0, errors.New("no bench/INBOX in checkpoint")
	}
	return st.LastUID, nil
}

// ---- the bare IDLE client ----

type existsEvent struct {
	n  uint32
	at time.Time
}

type idleClient struct {
	base   uint32 // messages at EXAMINE
	exists chan existsEvent
}

// newIdleClient EXAMINEs INBOX and IDLEs until the test ends, stamping
// every EXISTS on arrival (on go-imap's reader goroutine, which must not
// block: the channel is large and a full one drops).
func newIdleClient(t *testing.T, srv server) *idleClient {
	t.Helper()
	ic := &idleClient{exists: make(chan existsEvent, 4096)}
	c, err := imapclient.DialInsecure(fmt.Sprintf("%s:%d", srv.Host(), srv.Port()), &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case ic.exists <- existsEvent{*d.NumMessages, time.Now()}:
					default:
					}
				}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(srv.Username(), srv.Password()).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	ic.base = sel.NumMessages
	// EXISTS during SELECT is not news.
	for len(ic.exists) > 0 {
		<-ic.exists
	}
	if _, err := c.Idle(); err != nil {
		t.Fatal(err)
	}
	return ic
}

// ---- inotify ----

type fsEvent struct {
	wd   int32
	name string
	at   time.Time
}

// inotify reports names that appear in watched dirs, stamped when read:
// IN_MOVED_TO for a rename into the dir, IN_CREATE for a link (records
// written as unnamed temp files are linked into place). A
// goroutine waits in poll(2) (so close can stop it) and reads as soon as
// an event is queued.
type inotify struct {
	fd     int
	events chan fsEvent
	errs   chan error
	stop   atomic.Bool
	done   chan struct{}
}

func newInotify() (*inotify, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	in := &inotify{fd: fd, events: make(chan fsEvent, 4096), errs: make(chan error, 1), done: make(chan struct{})}
	go in.read()
	return in, nil
}

func (in *inotify) watch(dir string) (int32, error) {
	wd, err := unix.InotifyAddWatch(in.fd, dir, unix.IN_MOVED_TO|unix.IN_CREATE)
	if err != nil {
		return 0, fmt.Errorf("inotify_add_watch %s: %w", dir, err)
	}
	return int32(wd), nil
}

func (in *inotify) read() {
	defer close(in.done)
	buf := make([]byte, 64<<10)
	for !in.stop.Load() {
		fds := []unix.PollFd{{Fd: int32(in.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 100); err != nil && !errors.Is(err, unix.EINTR) {
			in.errs <- fmt.Errorf("poll inotify: %w", err)
			return
		}
		n, err := unix.Read(in.fd, buf)
		at := time.Now()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			in.errs <- fmt.Errorf("read inotify: %w", err)
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			wd := int32(binary.NativeEndian.Uint32(buf[off:]))
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+nameLen]
			for len(name) > 0 && name[len(name)-1] == 0 {
				name = name[:len(name)-1]
			}
			in.events <- fsEvent{wd: wd, name: string(name), at: at}
			off += unix.SizeofInotifyEvent + nameLen
		}
	}
}

func (in *inotify) close() {
	in.stop.Store(true)
	<-in.done
	unix.Close(in.fd)
}
