//go:build linux

package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"mailtap/internal/testbin"
	"mailtap/internal/testimap"
	"mailtap/jsonstore"
)

// TestBenchSinks measures the webhook sink (issue 12): capture throughput
// with and without a sink, deliveries per second at concurrency 8 from a
// backlog, APPEND → webhook latency on the in-memory server beside the
// capture latency of the same messages, and capture and RSS with a
// receiver that takes 5 s per answer and a backlog of the whole corpus.
// The receiver is internal/hookrecv, in its own process.
func TestBenchSinks(t *testing.T) {
	bin := requireBench(t)
	recv := buildHookrecv(t)
	n := envInt(t, messagesEnv, 10_000)
	msgs := Corpus(DefaultSeed, n)
	srv := testimap.StartDovecot(t, testimap.DovecotOptions{})
	uids := srv.DeliverMany(t, "INBOX", msgs)
	last := uids[len(uids)-1]
	rawFetch(t, srv, n) // warms Dovecot's caches for every run alike
	work := t.TempDir()

	// Each part is a subtest: -run 'TestBenchSinks/slow' reruns one.
	t.Run("once", func(t *testing.T) { benchSinkOnce(t, bin, recv, srv, n, filepath.Join(work, "once")) })
	t.Run("drain", func(t *testing.T) { benchSinkDrain(t, bin, recv, srv, n, filepath.Join(work, "drain")) })
	t.Run("slow", func(t *testing.T) { benchSinkSlow(t, bin, recv, srv, n, last, filepath.Join(work, "slow")) })
	t.Run("latency", func(t *testing.T) { sinkLatency(t, bin, recv, envInt(t, latencyEnv, 200)/2) })
}

// benchSinkOnce: backfill with --once, without and with a webhook sink
// whose receiver answers at once, alternately.
func benchSinkOnce(t *testing.T, bin, recv string, srv server, n int, work string) {
	os.MkdirAll(work, 0o755)
	rc := startHookrecv(t, recv, "ok")
	runs := envInt(t, runsEnv, 2)
	var plain, hooked []float64
	for run := 1; run <= runs; run++ {
		for _, withSink := range []bool{false, true} {
			out := filepath.Join(work, fmt.Sprintf("once-%d-%v", run, withSink))
			cfg := sinkConfig(srv, out)
			if withSink {
				cfg.Sinks = []testbin.Sink{{"name": "bench", "type": "webhook", "url": rc.url, "concurrency": 8}}
			}
			path := filepath.Join(work, "once.json")
			cfg.WriteFile(path)
			settle()
			res := runTimed(t, bin, "--once", "-c", path, "--log-level", "warn")
			rate := float64(n) / res.wall.Seconds()
			if withSink {
				hooked = append(hooked, rate)
			} else {
				plain = append(plain, rate)
			}
			t.Logf("run %d, sink %v: %v, %.0f msgs/s, peak RSS %s", run, withSink, res.wall.Round(time.Millisecond), rate, mb(res.maxRSS))
		}
	}
	p, h := median(plain), median(hooked)
	results.add("sinks", fmt.Sprintf("`mailtap --once` backfill of %d msgs, no sink (median of %d)", n, runs), fmt.Sprintf("%.0f msgs/s", p), "", "")
	results.add("sinks", "same, with a webhook sink (concurrency 8, receiver answering at once)", fmt.Sprintf("**%.0f msgs/s** (%+.1f%%)", h, (h/p-1)*100), "within 10%", yesNo(h >= 0.9*p))
}

// benchSinkDrain: deliveries per second from a backlog: the journal of a
// plain backfill, with a sink whose cursor is put at its start (a new sink
// starts at the end; this stands for one that fell behind).
func benchSinkDrain(t *testing.T, bin, recv string, srv server, n int, work string) {
	os.MkdirAll(work, 0o755)
	out := filepath.Join(work, "out")
	plain := filepath.Join(work, "plain.json")
	sinkConfig(srv, out).WriteFile(plain)
	runTimed(t, bin, "--once", "-c", plain, "--log-level", "warn")
	dir := filepath.Join(out, ".mailtap", "sinks", "bench")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "cursor.json"), []byte(`{"version":1,"pos":{"segment":1,"offset":0,"seq":1}}`), 0o644)
	rc8 := startHookrecv(t, recv, "ok")
	cfg := sinkConfig(srv, out)
	cfg.Sinks = []testbin.Sink{{"name": "bench", "type": "webhook", "url": rc8.url, "concurrency": 8}}
	path := filepath.Join(work, "drain.json")
	cfg.WriteFile(path)
	mt := startBenchMailtap(t, bin, path, filepath.Join(work, "drain.log"))
	first, lastAt := rc8.waitAccepted(t, n, 5*time.Minute)
	mt.stop(t)
	rate := float64(n-1) / lastAt.Sub(first).Seconds()
	results.add("sinks", fmt.Sprintf("deliveries from a backlog of %d, concurrency 8, receiver answering at once", n), fmt.Sprintf("**%.0f deliveries/s**", rate), "≥ 2,000/s", yesNo(rate >= 2000))
}

// benchSinkSlow: a receiver that takes 5 s per answer: capture as without
// sinks, RSS bounded with the whole backfill as backlog.
func benchSinkSlow(t *testing.T, bin, recv string, srv server, n int, last uint32, work string) {
	os.MkdirAll(work, 0o755)
	runs := envInt(t, runsEnv, 2)
	for run := 1; run <= runs; run++ {
		slow := startHookrecv(t, recv, "delay:5s")
		for _, withSink := range []bool{false, true} {
			out := filepath.Join(work, fmt.Sprintf("slow-%d-%v", run, withSink))
			cfg := sinkConfig(srv, out)
			if withSink {
				cfg.Sinks = []testbin.Sink{{"name": "slow", "type": "webhook", "url": slow.url, "concurrency": 8}}
			}
			path := filepath.Join(work, "slow.json")
			cfg.WriteFile(path)
			settle()
			start := time.Now()
			mt := startBenchMailtap(t, bin, path, filepath.Join(work, fmt.Sprintf("slow-%d-%v.log", run, withSink)))
			for {
				if uid, err := checkpointUID(out); err == nil && uid >= last {
					break
				}
				if time.Since(start) > 5*time.Minute {
					t.Fatal("backfill did not finish")
				}
				time.Sleep(5 * time.Millisecond)
			}
			took := time.Since(start)
			// Then 10 s with the backlog waiting on the slow receiver.
			var rss, hwm int64
			for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
				r, h, err := procMem(mt.cmd.Process.Pid)
				if err == nil {
					rss, hwm = max(rss, r), max(hwm, h)
				}
			}
			backlog := "none"
			if withSink {
				backlog = fmt.Sprintf("%d of %d delivered 10 s after the backfill", len(slow.accepted()), n)
			}
			mt.stop(t)
			label := "no sink"
			if withSink {
				label = "webhook sink answering in 5 s (concurrency 8)"
			}
			results.add("sinks", fmt.Sprintf("run %d: `mailtap --headless` backfill of %d msgs, %s", run, n, label),
				fmt.Sprintf("%.0f msgs/s; RSS %s, peak %s; backlog: %s", float64(n)/took.Seconds(), mb(rss), mb(hwm), backlog), "", "")
		}
	}
}

// sinkConfig is writeConfig's config, as a value to add sinks to.
func sinkConfig(srv server, out string) *testbin.Config {
	return &testbin.Config{
		Accounts: []testbin.Account{{Name: "bench", Host: srv.Host(), Port: srv.Port(), TLS: "none",
			Username: srv.Username(), Password: srv.Password(), Auth: "plain", Mailboxes: []string{"INBOX"}, Backfill: "all"}},
		Output: testbin.Output{Dir: out, Attachments: "metadata", MaxBodyBytes: 1 << 20, Pretty: true},
		Watch:  testbin.Watch{IDLE: true, PollInterval: "60s", MaxBackoff: "5m", IdleRefresh: "5m", ResponseTimeout: "30s"},
	}
}

// sinkLatency appends messages one at a time to the in-memory server and
// times, from APPEND OK, the durable record (checkpoint renamed, as in
// TestBenchLatency) and the webhook's arrival at the receiver.
func sinkLatency(t *testing.T, bin, recv string, n int) {
	srv := testimap.StartMem(t)
	rc := startHookrecv(t, recv, "ok")
	work := t.TempDir()
	out := filepath.Join(work, "out")
	cfg := sinkConfig(srv, out)
	cfg.Sinks = []testbin.Sink{{"name": "lat", "type": "webhook", "url": rc.url}}
	path := filepath.Join(work, "config.json")
	cfg.WriteFile(path)
	mt := startBenchMailtap(t, bin, path, filepath.Join(work, "mailtap.log"))
	defer mt.stop(t)
	statePath := jsonstore.CheckpointPath(out, "bench", "INBOX")
	if err := waitFile(statePath, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	app, err := imapclient.DialInsecure(fmt.Sprintf("%s:%d", srv.Host(), srv.Port()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if err := app.Login(srv.Username(), srv.Password()).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs := latencyMessages(n + 3)
	var durable, hook []time.Duration
	for k, m := range msgs {
		time.Sleep(gap)
		cmd := app.Append("INBOX", int64(len(m)), nil)
		cmd.Write(m)
		cmd.Close()
		data, err := cmd.Wait()
		t0 := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("bench/INBOX/%d/%d", data.UIDValidity, data.UID)
		var tDurable time.Time
		deadline := time.Now().Add(30 * time.Second)
		for {
			if tDurable.IsZero() {
				if uid, err := checkpointUID(out); err == nil && uid >= uint32(data.UID) {
					tDurable = time.Now()
				}
			}
			if at, ok := rc.acceptedAt(id); ok && !tDurable.IsZero() {
				if k >= 3 { // warm-up
					durable = append(durable, tDurable.Sub(t0))
					hook = append(hook, at.Sub(t0))
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("message %d (%s) not delivered within 30 s", k, id)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	dist := func(xs []time.Duration) string {
		return fmt.Sprintf("p50 %s, p99 %s", ms(percentile(xs, 50)), ms(percentile(xs, 99)))
	}
	d50, h50 := percentile(durable, 50), percentile(hook, 50)
	results.add("sinks", fmt.Sprintf("latency, in-memory server: APPEND OK → checkpoint (record durable), %d msgs, polled every 0.2 ms", len(durable)), dist(durable), "", "")
	results.add("sinks", "same messages: APPEND OK → webhook received (receiver's clock)", "**"+dist(hook)+"**",
		fmt.Sprintf("p50 ≤ %s", ms(d50+10*time.Millisecond)), yesNo(h50 <= d50+10*time.Millisecond))
}

// ---- the receiver and mailtap processes ----

func buildHookrecv(t *testing.T) string {
	t.Helper()
	root, err := testbin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "hookrecv")
	cmd := exec.Command("go", "build", "-o", out, "./internal/hookrecv")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build hookrecv: %v\n%s", err, b)
	}
	return out
}

type hookrecv struct {
	url string
	log string
}

func startHookrecv(t *testing.T, bin, mode string) *hookrecv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := &hookrecv{url: "http://" + addr + "/hook", log: filepath.Join(t.TempDir(), "received.jsonl")}
	cmd := exec.Command(bin, "--addr", addr, "--log", r.log, "--mode", mode)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.HasPrefix(line, "listening") {
		t.Fatalf("hookrecv: %q %v", line, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return r
}

type hookLine struct {
	ID     string    `json:"id"`
	Status int       `json:"status"`
	At     time.Time `json:"at"`
}

func (r *hookrecv) accepted() []hookLine {
	f, err := os.Open(r.log)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []hookLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l hookLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Status == http.StatusOK {
			out = append(out, l)
		}
	}
	return out
}

func (r *hookrecv) acceptedAt(id string) (time.Time, bool) {
	for _, l := range r.accepted() {
		if l.ID == id {
			return l.At, true
		}
	}
	return time.Time{}, false
}

// waitAccepted waits for n distinct accepted ids and returns when the
// first and the last arrived.
func (r *hookrecv) waitAccepted(t *testing.T, n int, timeout time.Duration) (first, last time.Time) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ls := r.accepted()
		seen := map[string]bool{}
		for _, l := range ls {
			seen[l.ID] = true
		}
		if len(seen) >= n {
			return ls[0].At, ls[len(ls)-1].At
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d delivered after %s", len(seen), n, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type benchProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startBenchMailtap(t *testing.T, bin, cfgPath, logPath string) *benchProc {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--headless", "-c", cfgPath, "--log-format", "json", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &benchProc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); logFile.Close(); close(p.done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	return p
}

func (p *benchProc) stop(t *testing.T) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("mailtap did not stop within 10 s of SIGTERM")
		p.cmd.Process.Kill()
		<-p.done
	}
}
