package sshui

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	gossh "golang.org/x/crypto/ssh"

	"mailtap/config"
	"mailtap/internal/testbin"
	"mailtap/internal/testimap"
	"mailtap/jsonstore"
	"mailtap/statusweb"
	"mailtap/tui"
	"mailtap/watcher"
)

// rig is a real watcher on an in-memory IMAP server over loopback, with
// the SSH server in front of it, and keys made by ssh-keygen for the real
// OpenSSH client.
type rig struct {
	t        *testing.T
	imap     *testimap.Mem
	mgr      *watcher.Manager
	ctrl     *countingCtrl
	srv      *Server
	reg      *prometheus.Registry
	out      string
	dir      string
	logs     *testbin.SyncBuffer // the server's log, for assertions and failures
	port     string
	known    string // known_hosts with the server's host key
	fullKey  string // private key files
	roKey    string
	wrongKey string
}

type rigOptions struct {
	failureDelay time.Duration
	maxSessions  int
	writeTimeout time.Duration
	mailboxes    int
}

func needSSH(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("MAILTAP_REQUIRE_SSH") != "" {
			t.Fatal("ssh is not installed (apt-get install openssh-client) and MAILTAP_REQUIRE_SSH is set")
		}
		t.Skip("ssh is not installed (apt-get install openssh-client); skipping")
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen is not installed; skipping")
	}
	return p
}

func keygen(t testing.TB, path string) string {
	t.Helper()
	if o, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", filepath.Base(path), "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, o)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return string(pub)
}

func startRig(t *testing.T, ro rigOptions) *rig {
	t.Helper()
	needSSH(t)
	dir := t.TempDir()
	r := &rig{t: t, dir: dir, logs: &testbin.SyncBuffer{}}
	r.fullKey = filepath.Join(dir, "full")
	r.roKey = filepath.Join(dir, "readonly")
	r.wrongKey = filepath.Join(dir, "wrong")
	full, roPub := keygen(t, r.fullKey), keygen(t, r.roKey)
	keygen(t, r.wrongKey)
	authorized := filepath.Join(dir, "authorized_keys")
	readOnly := filepath.Join(dir, "read_only_keys")
	writeFile(t, authorized, "# operators\n"+full)
	writeFile(t, readOnly, roPub)

	boxes := []string{"INBOX"}
	var extra []string
	for i := 1; i < ro.mailboxes; i++ {
		extra = append(extra, fmt.Sprintf("Box%d", i))
	}
	boxes = append(boxes, extra...)
	r.imap = testimap.StartMem(t, testimap.WithMailboxes(extra...))
	r.out = filepath.Join(dir, "out")
	cfg := config.Defaults()
	cfg.Source = "test"
	cfg.Accounts = []config.Account{{
		Name: "test", Host: r.imap.Host(), Port: r.imap.Port(), TLS: config.TLSNone,
		Username: r.imap.Username(), Password: r.imap.Password(), Auth: config.AuthPlain,
		Mailboxes: boxes, Backfill: config.BackfillAll,
	}}
	cfg.Output.Dir = r.out
	cfg.Watch.MaxBackoff = config.Duration{Duration: 2 * time.Second}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	store, err := jsonstore.Open(r.out, jsonstore.Options{Pretty: true})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.reg = prometheus.NewRegistry()
	r.mgr = watcher.New(cfg, store, &watcher.Options{Logger: log, Metrics: watcher.NewMetrics(r.reg)})
	r.ctrl = &countingCtrl{Controller: r.mgr}
	snap := statusweb.NewSnapshots(r.mgr, statusweb.SnapshotOptions{Version: "v0-test"})
	r.srv, err = New(r.ctrl, Options{
		Addr: "127.0.0.1:0", AuthorizedKeys: authorized, ReadOnlyKeys: readOnly, StateDir: store.StateDir(),
		Status: snap.JSON, TUI: tui.Options{Out: r.out, Version: "v0-test"},
		Registerer: r.reg, Logger: log,
		FailureDelay: ro.failureDelay, MaxSessions: ro.maxSessions, WriteTimeout: ro.writeTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Listen(); err != nil {
		t.Fatal(err)
	}
	_, r.port, _ = net.SplitHostPort(r.srv.Addr())
	r.known = filepath.Join(dir, "known_hosts")
	writeFile(t, r.known, fmt.Sprintf("[127.0.0.1]:%s %s", r.port, hostPublicKey(t, filepath.Join(store.StateDir(), HostKeyName))))

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	capErr := make(chan error, 1)
	wg.Go(func() { capErr <- r.mgr.Run(ctx) })
	wg.Go(func() { snap.Run(ctx) })
	served := make(chan error, 1)
	wg.Go(func() { served <- r.srv.Serve(ctx) })
	t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("server or watcher did not stop within 20s")
		}
		if err := <-capErr; err != nil {
			t.Errorf("watcher: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("ssh server: %v", err)
		}
		store.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", r.logs.String())
		}
	})
	r.waitFor("every mailbox idle", func() bool {
		for _, st := range r.mgr.Status() {
			if st.State != watcher.StateIdle {
				return false
			}
		}
		return true
	})
	return r
}

func writeFile(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// hostPublicKey is the authorized_keys form of a private key file's
// public half.
func hostPublicKey(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(gossh.MarshalAuthorizedKey(s.PublicKey()))
}

// sshArgs are the client's options: no user config or agent, only the
// given key, the server's host key checked strictly.
func (r *rig) sshArgs(key string, opts []string, cmd ...string) []string {
	args := []string{"-F", "/dev/null", "-p", r.port,
		"-o", "UserKnownHostsFile=" + r.known, "-o", "StrictHostKeyChecking=yes", "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "IdentityAgent=none", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20"}
	if key != "" {
		args = append(args, "-i", key, "-o", "IdentitiesOnly=yes")
	}
	args = append(args, opts...)
	args = append(args, "operator@127.0.0.1")
	return append(args, cmd...)
}

// ssh runs the client to completion.
func (r *rig) ssh(key string, opts []string, cmd ...string) (stdout, stderr string, code int) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, "ssh", r.sshArgs(key, opts, cmd...)...)
	var o, e strings.Builder
	c.Stdout, c.Stderr = &o, &e
	err := c.Run()
	code = c.ProcessState.ExitCode()
	if err != nil && code < 0 {
		r.t.Fatalf("ssh: %v", err)
	}
	return o.String(), e.String(), code
}

func (r *rig) waitFor(what string, ok func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rig) authFailures() float64 { return testutil.ToFloat64(r.srv.metrics.authFailures) }

func (r *rig) captured() int64 {
	var n int64
	for _, st := range r.mgr.Status() {
		n += st.Captured
	}
	return n
}

// countingCtrl passes everything to the watcher and counts the controls.
type countingCtrl struct {
	watcher.Controller
	mu    sync.Mutex
	calls []string
}

func (c *countingCtrl) record(s string) {
	c.mu.Lock()
	c.calls = append(c.calls, s)
	c.mu.Unlock()
}
func (c *countingCtrl) Pause(id string) error { c.record("pause " + id); return c.Controller.Pause(id) }
func (c *countingCtrl) Resume(id string) error {
	c.record("resume " + id)
	return c.Controller.Resume(id)
}
func (c *countingCtrl) Reconnect(id string) error {
	c.record("reconnect " + id)
	return c.Controller.Reconnect(id)
}
func (c *countingCtrl) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

// tmux drives a private tmux server (own socket, no user config).
type tmux struct {
	t    *testing.T
	sock string
}

func newTmux(t *testing.T) *tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("MAILTAP_REQUIRE_TMUX") != "" {
			t.Fatal("tmux is not installed (apt-get install tmux) and MAILTAP_REQUIRE_TMUX is set")
		}
		t.Skip("tmux is not installed (apt-get install tmux); skipping the real-terminal test")
	}
	tm := &tmux{t: t, sock: fmt.Sprintf("mailtap-ssh-test-%d-%d", os.Getpid(), time.Now().UnixNano())}
	t.Cleanup(func() { tm.run("kill-server") })
	return tm
}

func (tm *tmux) run(args ...string) (string, error) {
	b, err := exec.Command("tmux", append([]string{"-L", tm.sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
	return string(b), err
}

func (tm *tmux) must(args ...string) string {
	tm.t.Helper()
	o, err := tm.run(args...)
	if err != nil {
		tm.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, o)
	}
	return o
}

// start runs argv in a new detached session of w×h, keeping the pane
// after it exits, and writing its exit status to statusFile.
func (tm *tmux) start(name string, w, h int, statusFile string, argv ...string) {
	tm.t.Helper()
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = shellQuote(a)
	}
	cmdline := fmt.Sprintf("sh -c %s", shellQuote(strings.Join(quoted, " ")+"; echo $? > "+shellQuote(statusFile)))
	tm.must("new-session", "-d", "-s", name, "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), cmdline)
	tm.must("set-option", "-t", name, "remain-on-exit", "on")
}

func (tm *tmux) capture(name string) string { return tm.must("capture-pane", "-p", "-t", name) }

func (tm *tmux) waitPane(name, what string, ok func(string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := tm.capture(name)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("%s did not show within 30s; screen:\n%s", what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (tm *tmux) keys(name string, keys ...string) {
	tm.t.Helper()
	tm.must(append([]string{"send-keys", "-t", name}, keys...)...)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// waitExit waits for the status file a tmux session's shell writes.
func waitExit(t *testing.T, statusFile string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(statusFile); err == nil && strings.HasSuffix(string(b), "\n") {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client did not exit within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
