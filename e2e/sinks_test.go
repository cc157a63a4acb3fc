package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mailtap/internal/testbin"
	"mailtap/internal/testimap"
)

// The receiver (internal/hookrecv) runs in a process of its own, built once.
var (
	hookrecvOnce sync.Once
	hookrecvBin  string
	hookrecvErr  error
)

func hookrecvBinary(t *testing.T) string {
	t.Helper()
	hookrecvOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mailtap-e2e-hookrecv-")
		if err != nil {
			hookrecvErr = err
			return
		}
		root, err := testbin.ModuleRoot()
		if err != nil {
			hookrecvErr = err
			return
		}
		hookrecvBin = filepath.Join(dir, "hookrecv")
		cmd := exec.Command("go", "build", "-o", hookrecvBin, "./internal/hookrecv")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			hookrecvErr = fmt.Errorf("build hookrecv: %v\n%s", err, out)
		}
	})
	if hookrecvErr != nil {
		t.Fatal(hookrecvErr)
	}
	return hookrecvBin
}

const hookSecretEnv = "MAILTAP_E2E_HOOK_SECRET"

// hookReceiver is one hookrecv process on a fixed port, so that it can go
// away and come back where mailtap expects it.
type hookReceiver struct {
	t    *testing.T
	addr string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startReceiver(t *testing.T, mode string) *hookReceiver {
	t.Helper()
	r := &hookReceiver{t: t, addr: freeAddr(t), log: filepath.Join(t.TempDir(), "received.jsonl")}
	r.start(mode)
	t.Cleanup(r.kill)
	return r
}

func (r *hookReceiver) url() string { return "http://" + r.addr + "/hook" }

func (r *hookReceiver) start(mode string) {
	r.t.Helper()
	cmd := exec.Command(hookrecvBinary(r.t), "--addr", r.addr, "--log", r.log, "--secret-env", hookSecretEnv, "--mode", mode)
	cmd.Env = append(os.Environ(), hookSecretEnv+"=e2e-s3cret")
	cmd.SysProcAttr = childAttr()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening") {
		cmd.Process.Kill()
		cmd.Wait()
		r.t.Fatalf("hookrecv did not start on %s: %q %v", r.addr, line, err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(r.done) }()
}

// kill makes the receiver go away at once, requests in flight included.
func (r *hookReceiver) kill() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

func (r *hookReceiver) setMode(mode string) {
	r.t.Helper()
	resp, err := http.Post("http://"+r.addr+"/_mode", "text/plain", strings.NewReader(mode))
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
}

type receivedLine struct {
	ID      string `json:"id"`
	Key     string `json:"key"`
	Attempt string `json:"attempt"`
	SigOK   bool   `json:"sig_ok"`
	Status  int    `json:"status"`
	Bytes   int    `json:"bytes"`
}

func (r *hookReceiver) lines() []receivedLine {
	r.t.Helper()
	b, err := os.ReadFile(r.log)
	if err != nil && !os.IsNotExist(err) {
		r.t.Fatal(err)
	}
	var out []receivedLine
	for _, l := range strings.Split(string(b), "\n") {
		var rl receivedLine
		if json.Unmarshal([]byte(l), &rl) == nil && rl.Key != "" {
			out = append(out, rl)
		}
	}
	return out
}

// accepted counts the 2xx answers per id.
func (r *hookReceiver) accepted() map[string]int {
	got := map[string]int{}
	for _, l := range r.lines() {
		if l.Status/100 == 2 {
			got[l.ID]++
		}
	}
	return got
}

func (r *hookReceiver) waitAccepted(t *testing.T, p *proc, ids []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := r.accepted()
		missing := 0
		for _, id := range ids {
			if got[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records never accepted by the receiver after %s", missing, len(ids), timeout)
		}
		if p != nil && !p.running() {
			t.Fatalf("mailtap exited (%v) with %d records not delivered", p.err, missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func webhookSink(name, url string, concurrency int, extra map[string]any) testbin.Sink {
	s := testbin.Sink{"name": name, "type": "webhook", "url": url, "secret_env": hookSecretEnv,
		"concurrency": concurrency, "timeout": "2s", "max_backoff": "1s"}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

func recordIDs(uv uint32, uids []uint32) []string {
	ids := make([]string, len(uids))
	for i, u := range uids {
		ids[i] = fmt.Sprintf("%s/INBOX/%d/%d", testAccount, uv, u)
	}
	return ids
}

// The webhook secret is in the environment of every mailtap the tests
// start (and of hookrecv): parallel tests cannot use t.Setenv, and this
// name is the sink tests' own.
func init() { os.Setenv(hookSecretEnv, "e2e-s3cret") }

// TestSinks_sigkillDuringBackfillDeliversEveryRecord: a backfill with a
// webhook sink is killed with SIGKILL at random moments while the receiver
// answers 500 to a fifth of the requests and, for a while, is gone. At the
// end every record was accepted, every signature verified (the receiver
// checks it with the README's recipe), and records were accepted twice only
// within the in-flight window of a kill.
func TestSinks_sigkillDuringBackfillDeliversEveryRecord(t *testing.T) {
	binary(t)
	t.Parallel()
	rng := rand.New(rand.NewPCG(testSeed(t), 0x73696e6b73))
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})
	const n, kills, concurrency = 2000, 12, 4
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = testimap.MsgSized(fmt.Sprintf("sink crash %d", i+1), i+1, 800+rng.IntN(6000))
	}
	uids := dc.DeliverMany(t, "INBOX", msgs)
	rc := startReceiver(t, "fail:0.2")
	out := filepath.Join(t.TempDir(), "out")
	cfg := baseConfig(dc, out)
	cfg.Sinks = []testbin.Sink{webhookSink("hook", rc.url(), concurrency, nil)}
	path := cfg.Write(t)

	receiverKills := 0
	for k := 1; k <= kills; k++ {
		switch k {
		case 4:
			rc.kill() // gone for kills 4..6: connection refused
			receiverKills++
		case 7:
			rc.start("fail:0.2")
		}
		p := headless(t, path)
		time.Sleep(time.Duration(50+rng.IntN(1200)) * time.Millisecond)
		p.kill()
		assertNoPanic(t, p)
		p.quiet = true
		t.Logf("kill %2d: %4d records on disk, %4d distinct ids accepted", k, countRecords(out), len(rc.accepted()))
	}
	p := headless(t, path)
	uv, _, _ := readCheckpoint(t, out)
	if uv == 0 {
		p.waitLog(0, 30*time.Second, "state=idle", stateIs("idle"))
		uv, _, _ = readCheckpoint(t, out)
	}
	ids := recordIDs(uv, uids)
	rc.waitAccepted(t, p, ids, 120*time.Second)
	p.stop()
	assertNoPanic(t, p)

	lines := rc.lines()
	dups, fails := 0, 0
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for _, l := range lines {
		if !l.SigOK {
			t.Errorf("signature of %s (attempt %s) did not verify", l.ID, l.Attempt)
		}
		if l.Key != l.ID {
			t.Errorf("Idempotency-Key %q for record %q", l.Key, l.ID)
		}
		if !want[l.ID] {
			t.Errorf("delivered %q, which is no record of this mailbox", l.ID)
		}
		if l.Status == 500 {
			fails++
		}
	}
	for _, c := range rc.accepted() {
		dups += c - 1
	}
	// A kill of mailtap re-delivers what was in flight (concurrency) and
	// what finished during the cursor save then under way (group commit:
	// a few ms of deliveries); a kill of the receiver loses the answers to
	// the requests it had accepted. Without a durable cursor every kill
	// would re-deliver hundreds.
	limit := (kills + receiverKills) * 4 * concurrency
	t.Logf("%d requests, %d answered 500, %d records accepted twice (limit %d)", len(lines), fails, dups, limit)
	if dups > limit {
		t.Errorf("%d duplicate deliveries, more than the in-flight window allows (%d)", dups, limit)
	}
	if fails == 0 {
		t.Error("the receiver never answered 500: the retry path was not tested")
	}
}

// captureTime runs mailtap on a fresh output dir until the checkpoint
// reaches lastUID and returns how long that took, and the process.
func captureTime(t *testing.T, cfg *testbin.Config, lastUID uint32) (time.Duration, *proc) {
	t.Helper()
	path := cfg.Write(t)
	start := time.Now()
	p := headless(t, path)
	deadline := start.Add(60 * time.Second)
	for {
		if _, last, _ := readCheckpoint(t, cfg.Output.Dir); last >= lastUID {
			return time.Since(start), p
		}
		if time.Now().After(deadline) || !p.running() {
			t.Fatalf("backfill did not reach uid %d (running %v)", lastUID, p.running())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSinks_deadReceiversDoNotSlowCapture: one receiver never answers and
// another answers 400 to everything. Capture takes as long as without any
// sink; the refusals become dead letters at once, the silent one builds a
// backlog; once the receivers are fixed the backlog drains and
// `mailtap replay --dead` delivers the dead letters exactly once each.
func TestSinks_deadReceiversDoNotSlowCapture(t *testing.T) {
	binary(t)
	t.Parallel()
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})
	const n = 600
	uids := dc.DeliverN(t, "INBOX", n)
	last := uids[len(uids)-1]

	base := baseConfig(dc, filepath.Join(t.TempDir(), "plain"))
	plain, p0 := captureTime(t, base, last)
	p0.stop()

	hang := startReceiver(t, "hang")
	refuse := startReceiver(t, "status:400")
	out := filepath.Join(t.TempDir(), "out")
	cfg := baseConfig(dc, out)
	cfg.Sinks = []testbin.Sink{
		webhookSink("silent", hang.url(), 4, map[string]any{"timeout": "1s"}),
		webhookSink("refuse", refuse.url(), 4, nil),
	}
	withSinks, p := captureTime(t, cfg, last)
	t.Logf("backfill of %d: %s without sinks, %s with a silent and a refusing receiver", n, plain.Round(time.Millisecond), withSinks.Round(time.Millisecond))
	// Generous: the machine is shared; a sink that blocked capture would
	// take minutes here (600 records × 1 s timeout / 4).
	if withSinks > 2*plain+2*time.Second {
		t.Errorf("capture took %s with failing sinks, %s without", withSinks, plain)
	}
	uv, _, _ := readCheckpoint(t, out)
	ids := recordIDs(uv, uids)

	// Every refusal is a dead letter, after one attempt each.
	deadFile := filepath.Join(out, ".mailtap", "sinks", "refuse", "dead.jsonl")
	deadline := time.Now().Add(60 * time.Second)
	for countLines(deadFile) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d dead letters", countLines(deadFile), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := len(refuse.lines()); got != n {
		t.Errorf("refusing receiver got %d requests for %d records: a 400 must not be retried", got, n)
	}
	mark := p.logs.Len()
	l := p.waitLog(0, 10*time.Second, "a dead-letter log line", func(l logLine) bool { return strings.Contains(l.str("msg"), "dead-lettered") })
	if !strings.Contains(l.str("err"), "400") || !strings.Contains(l.str("err"), "status 400") {
		t.Errorf("dead letter log does not show the status and answer: %s", l.Raw)
	}
	_ = mark

	// `mailtap sinks` shows the backlog of the silent one.
	sinksOut, err := exec.Command(binary(t), "sinks", "-c", cfg.Write(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("mailtap sinks: %v\n%s", err, sinksOut)
	}
	t.Logf("mailtap sinks:\n%s", sinksOut)
	if !strings.Contains(string(sinksOut), "silent") || !strings.Contains(string(sinksOut), "refuse") || !strings.Contains(string(sinksOut), strconv.Itoa(n)) {
		t.Errorf("mailtap sinks output lacks the sinks or the dead letters:\n%s", sinksOut)
	}

	// Fixed: the silent one's backlog drains, replay --dead delivers.
	hang.setMode("ok")
	refuse.setMode("ok")
	hang.waitAccepted(t, p, ids, 60*time.Second)
	replay := exec.Command(binary(t), "replay", "--sink", "refuse", "--dead", "-c", cfg.Write(t))
	replay.Env = os.Environ()
	rout, err := replay.CombinedOutput()
	if err != nil {
		t.Fatalf("mailtap replay --dead: %v\n%s", err, rout)
	}
	if !strings.Contains(string(rout), fmt.Sprintf("%d delivered, 0 failed", n)) {
		t.Errorf("replay output: %s", lastLines(string(rout), 3))
	}
	got := refuse.accepted()
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("%s accepted %d times after replay, want 1", id, got[id])
		}
	}
	if c := countLines(deadFile); c != 0 {
		t.Errorf("%d dead letters left after replay", c)
	}
	// A second replay has nothing left to do.
	rout, err = exec.Command(binary(t), "replay", "--sink", "refuse", "--dead", "-c", cfg.Write(t)).CombinedOutput()
	if err != nil || !strings.Contains(string(rout), "0 delivered, 0 failed") {
		t.Errorf("second replay: %v %s", err, rout)
	}
	p.stop()
	assertNoPanic(t, p)
}

func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// TestSinks_commandRetriedThenDelivered: a command sink whose script
// appends the record id to a file and fails the first time for each record:
// every record is retried and delivered, and the script saw each twice.
func TestSinks_commandRetriedThenDelivered(t *testing.T) {
	binary(t)
	t.Parallel()
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})
	uids := dc.DeliverN(t, "INBOX", 20)
	dir := t.TempDir()
	script := filepath.Join(dir, "deliver.sh")
	os.WriteFile(script, []byte(`#!/bin/sh
set -e
id=$MAILTAP_RECORD_ID
mark="`+dir+`/seen-$(printf %s "$id" | tr / _)"
grep -q '"event":"message.captured"' || { echo "no envelope on stdin" >&2; exit 3; }
test -s "$MAILTAP_RECORD_PATH"
if [ ! -e "$mark" ]; then echo "fail $id" >> "`+dir+`/calls"; touch "$mark"; echo "first time fails" >&2; exit 1; fi
echo "ok $id" >> "`+dir+`/calls"
`), 0o755)
	out := filepath.Join(t.TempDir(), "out")
	cfg := baseConfig(dc, out)
	cfg.Sinks = []testbin.Sink{{"name": "script", "type": "command", "command": []string{script}, "timeout": "10s", "max_backoff": "1s"}}
	p := headless(t, cfg.Write(t))
	uv := uint32(0)
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "calls"))
		if strings.Count(string(b), "ok ") == len(uids) {
			break
		}
		if time.Now().After(deadline) || !p.running() {
			t.Fatalf("calls so far:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	uv, _, _ = readCheckpoint(t, out)
	b, _ := os.ReadFile(filepath.Join(dir, "calls"))
	calls := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i, id := range recordIDs(uv, uids) {
		// concurrency 1: in UID order, each failing then succeeding.
		if calls[2*i] != "fail "+id || calls[2*i+1] != "ok "+id {
			t.Errorf("calls %d,%d = %q, %q; want fail then ok of %s", 2*i, 2*i+1, calls[2*i], calls[2*i+1], id)
		}
	}
	if len(calls) != 2*len(uids) {
		t.Errorf("%d calls for %d records", len(calls), len(uids))
	}
	if _, ok := p.logs.waitFrom(0, time.Second, func(l logLine) bool { return strings.Contains(l.str("err"), "first time fails") }); !ok {
		t.Error("the script's stderr is not in the log")
	}
	p.stop()
	assertNoPanic(t, p)
}

// TestSinks_onceDeliversBeforeExit: `mailtap --once` (cron) waits for its
// sinks to deliver what it captured before it exits.
func TestSinks_onceDeliversBeforeExit(t *testing.T) {
	binary(t)
	t.Parallel()
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})
	uids := dc.DeliverN(t, "INBOX", 200)
	rc := startReceiver(t, "ok")
	out := filepath.Join(t.TempDir(), "out")
	cfg := baseConfig(dc, out)
	cfg.Sinks = []testbin.Sink{webhookSink("hook", rc.url(), 4, nil)}
	p := startMailtap(t, runOpts{args: []string{"--once", "--log-format", "json", "-c", cfg.Write(t)}})
	if code := p.exitCode(60 * time.Second); code != 0 {
		t.Fatalf("--once exited %d", code)
	}
	uv, _, _ := readCheckpoint(t, out)
	got := rc.accepted()
	for _, id := range recordIDs(uv, uids) {
		if got[id] != 1 {
			t.Errorf("%s accepted %d times by the time --once exited, want 1", id, got[id])
		}
	}
	assertNoPanic(t, p)

	// A failing receiver does not keep --once from exiting: what is left
	// waits for the next run.
	rc.setMode("status:503")
	more := dc.DeliverN(t, "INBOX", 5)
	start := time.Now()
	p = startMailtap(t, runOpts{args: []string{"--once", "--log-format", "json", "-c", cfg.Write(t)}})
	if code := p.exitCode(30 * time.Second); code != 0 {
		t.Fatalf("--once with a failing sink exited %d", code)
	}
	t.Logf("--once with a failing receiver exited after %s", time.Since(start).Round(time.Millisecond))
	if _, last, _ := readCheckpoint(t, out); last != more[len(more)-1] {
		t.Errorf("checkpoint %d, want %d", last, more[len(more)-1])
	}
	rc.setMode("ok")
	p = startMailtap(t, runOpts{args: []string{"--once", "--log-format", "json", "-c", cfg.Write(t)}})
	if code := p.exitCode(30 * time.Second); code != 0 {
		t.Fatalf("third --once exited %d", code)
	}
	got = rc.accepted()
	for _, id := range recordIDs(uv, more) {
		if got[id] != 1 {
			t.Errorf("%s accepted %d times after the next run, want 1", id, got[id])
		}
	}
}
