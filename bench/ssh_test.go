//go:build linux

package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	gossh "golang.org/x/crypto/ssh"

	"mailtap/config"
	"mailtap/internal/testimap"
	"mailtap/jsonstore"
	"mailtap/sshui"
	"mailtap/statusweb"
	"mailtap/tui"
	"mailtap/watcher"
)

// TestBenchSSHSessions (issue 15): capture throughput of the daemon alone,
// then with three real OpenSSH clients attached to the monitor plus a
// fourth whose ssh process is stopped with SIGSTOP, and the heap each
// monitor session costs. In process: watcher, store and SSH server share
// the CPU as they do in the daemon; the IMAP server is go-imap's in-memory
// one, so the figure is mailtap's own work.
//
//	MAILTAP_BENCH=1 go test ./bench -run SSHSessions -v
func TestBenchSSHSessions(t *testing.T) {
	if !enabled() {
		t.Skipf("measurement; set %s=1 to run", benchEnv)
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("ssh is not installed (apt-get install openssh-client)")
	}
	n := envInt(t, "MAILTAP_BENCH_SSH_MESSAGES", 3000)
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	if o, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, o)
	}
	pub, _ := os.ReadFile(key + ".pub")
	authorized := filepath.Join(dir, "authorized_keys")
	os.WriteFile(authorized, pub, 0o600)

	mem := testimap.StartMem(t)
	out := filepath.Join(dir, "out")
	cfg := config.Defaults()
	cfg.Accounts = []config.Account{{Name: "bench", Host: mem.Host(), Port: mem.Port(), TLS: config.TLSNone,
		Username: mem.Username(), Password: mem.Password(), Auth: config.AuthPlain, Mailboxes: []string{"INBOX"}, Backfill: config.BackfillAll}}
	cfg.Output.Dir = out
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	store, err := jsonstore.Open(out, jsonstore.Options{Pretty: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var logBuf strings.Builder
	var logMu sync.Mutex
	log = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logBuf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelWarn}))
	mgr := watcher.New(cfg, store, &watcher.Options{Logger: log})
	snap := statusweb.NewSnapshots(mgr, statusweb.SnapshotOptions{})
	srv, err := sshui.New(mgr, sshui.Options{Addr: "127.0.0.1:0", AuthorizedKeys: authorized, StateDir: store.StateDir(),
		Status: snap.JSON, TUI: tui.Options{Out: out, Version: "bench"}, Registerer: prometheus.NewRegistry(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { mgr.Run(ctx) })
	wg.Go(func() { snap.Run(ctx) })
	wg.Go(func() { srv.Serve(ctx) })
	defer func() { cancel(); wg.Wait() }()
	_, port, _ := net.SplitHostPort(srv.Addr())

	captured := func() int64 {
		var c int64
		for _, st := range mgr.Status() {
			c += st.Captured
		}
		return c
	}
	waitUntil(t, "idle", func() bool { return mgr.Status()[0].State == watcher.StateIdle })

	// Deliver n messages in batches of 50 and time until the last is durable.
	next := 0
	round := func() (time.Duration, float64) {
		start, base := time.Now(), captured()
		for i := 0; i < n; i += 50 {
			var msgs [][]byte
			for j := range 50 {
				msgs = append(msgs, testimap.Msg(fmt.Sprintf("bench over ssh %d", next+j), next+j+1))
			}
			next += 50
			mem.DeliverMany(t, "INBOX", msgs)
		}
		waitUntil(t, "capture", func() bool { return captured() >= base+int64(n) })
		d := time.Since(start)
		return d, float64(n) / d.Seconds()
	}

	alone, aloneRate := round()
	t.Logf("no session: %d messages in %s, %.0f msgs/s", n, alone.Round(time.Millisecond), aloneRate)

	// Three real clients reading, one stopped.
	sshArgs := []string{"-tt", "-F", "/dev/null", "-p", port, "-i", key, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "bench@127.0.0.1"}
	type client struct {
		cmd   *exec.Cmd
		in    io.WriteCloser
		bytes atomic.Int64
		seen  atomic.Bool
	}
	var clients []*client
	for i := range 4 {
		c := &client{cmd: exec.Command("ssh", sshArgs...)}
		c.cmd.Env = append(os.Environ(), "TERM=xterm-256color")
		c.in, _ = c.cmd.StdinPipe()
		stdout, _ := c.cmd.StdoutPipe()
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			buf := make([]byte, 32<<10)
			for {
				k, err := stdout.Read(buf)
				c.bytes.Add(int64(k))
				if c.bytes.Load() > 500 { // a first frame
					c.seen.Store(true)
				}
				if err != nil {
					return
				}
			}
		}()
		clients = append(clients, c)
		waitUntil(t, fmt.Sprintf("client %d's monitor", i), c.seen.Load)
	}
	defer func() {
		for _, c := range clients {
			c.cmd.Process.Signal(syscall.SIGCONT)
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	}()
	stopped := clients[3]
	if err := stopped.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	before := make([]int64, 4)
	for i, c := range clients {
		before[i] = c.bytes.Load()
	}
	with, withRate := round()
	t.Logf("3 sessions + 1 stopped: %d messages in %s, %.0f msgs/s (%.0f%% of alone)", n, with.Round(time.Millisecond), withRate, 100*withRate/aloneRate)
	for i, c := range clients {
		t.Logf("client %d received %d bytes during the round", i, c.bytes.Load()-before[i])
	}
	// Keep delivering a little for the stopped client to be dropped: its
	// output must fill the SSH window (2 MB) and the TCP buffers first,
	// and the monitor's frames are small diffs, so it may well not be
	// within 30 s (sshui's TestSSH_stalledClientDropped forces it).
	dropStart := time.Now()
	dropped := func() bool {
		logMu.Lock()
		defer logMu.Unlock()
		return strings.Contains(logBuf.String(), "session dropped")
	}
	for !dropped() && time.Since(dropStart) < 30*time.Second {
		var msgs [][]byte
		for j := range 20 {
			msgs = append(msgs, testimap.Msg(fmt.Sprintf("keep going %d", next+j), next+j+1))
		}
		next += 20
		mem.DeliverMany(t, "INBOX", msgs)
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("stopped client dropped: %v, %s after its round ended", dropped(), time.Since(dropStart).Round(time.Second))
	for _, c := range clients[:3] {
		c.in.Write([]byte("q"))
	}

	// Heap per monitor session: 10 Go clients with a 100×30 terminal.
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	time.Sleep(time.Second)
	h0, g0 := heap(), runtime.NumGoroutine()
	const k = 10
	var sess []*gossh.Client
	signer := loadSigner(t, key)
	for range k {
		c, err := gossh.Dial("tcp", "127.0.0.1:"+port, &gossh.ClientConfig{User: "bench", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
			HostKeyCallback: gossh.InsecureIgnoreHostKey()})
		if err != nil {
			t.Fatal(err)
		}
		s, _ := c.NewSession()
		var seen atomic.Bool
		var got atomic.Int64
		s.Stdout = writerFunc(func(p []byte) (int, error) {
			if got.Add(int64(len(p))) > 2000 { // a first frame
				seen.Store(true)
			}
			return len(p), nil
		})
		s.StdinPipe()
		s.RequestPty("xterm-256color", 30, 100, gossh.TerminalModes{})
		s.Shell()
		waitUntil(t, "a monitor", seen.Load)
		sess = append(sess, c)
	}
	time.Sleep(time.Second)
	h1, g1 := heap(), runtime.NumGoroutine()
	t.Logf("heap per monitor session: %.0f KiB (%d sessions, %d rows on disk, includes both ends of the SSH connection in this process); goroutines per session: %d",
		float64(h1-h0)/k/1024, k, captured(), (g1-g0)/k)
	for _, c := range sess {
		c.Close()
	}
	results.add("SSH sessions", "capture with 3 sessions + 1 stopped, vs none", fmt.Sprintf("%.0f vs %.0f msgs/s", withRate, aloneRate), "unaffected", yesNo(withRate > 0.7*aloneRate))
	results.add("SSH sessions", "heap per monitor session", fmt.Sprintf("%.0f KiB", float64(h1-h0)/k/1024), "", "")
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func loadSigner(t *testing.T, path string) gossh.Signer {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
