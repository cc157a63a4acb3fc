package testimap

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireDovecotEnv, when set to anything but "" or "0", turns "Dovecot is
// not available here" from a skip into a test failure (CI sets it).
const RequireDovecotEnv = "MAILTAP_REQUIRE_DOVECOT"

// DovecotOptions configures StartDovecot. The zero value is a plain
// (ssl = no) server with DefaultUsername / DefaultPassword and INBOX.
type DovecotOptions struct {
	// TLS turns on ssl = yes with a generated self-signed certificate:
	// STARTTLS on the plain port and an implicit-TLS port (TLSAddr).
	TLS bool
	// Username and Password of the one account; ':' is not allowed (the
	// passwd-file format).
	Username, Password string
	// Mailboxes are created besides INBOX, with Separator between levels.
	Mailboxes []string
	// Separator is the hierarchy delimiter of the inbox namespace: "/"
	// (the default) or "." (Dovecot's own default, and Courier's).
	Separator string
	// ExtraUsers are further accounts with the same password and the same
	// Mailboxes, each with its own maildir (benchmarks of many accounts on
	// one server; see DeliverManyAs).
	ExtraUsers []string
	// ExtraConfig is appended to the generated dovecot.conf; later settings
	// override earlier ones (e.g. "auth_failure_delay = 2 secs").
	ExtraConfig string
}

// Dovecot is a private Dovecot 2.3 instance (Debian's dovecot-imapd) for
// one test: its own dovecot.conf, base_dir, state_dir, log and maildir under
// a temp dir, IMAP on free loopback ports, the account's mail owned by
// nobody. Messages are delivered with doveadm, the way an MDA does, and
// reach IDLE sessions through Dovecot's own change notification.
//
// It needs root (Dovecot's master drops to the mail user itself). When
// Dovecot is missing or the test is not root, StartDovecot skips the test,
// or fails it if MAILTAP_REQUIRE_DOVECOT is set.
type Dovecot struct {
	tb        testing.TB
	opts      DovecotOptions
	dovecot   string // binaries
	doveadmB  string
	dir       string
	conf      string
	passwd    string
	logFile   string
	errFile   string // dovecot's own stderr (config errors before logging starts)
	uid, gid  int
	cert      *selfSigned
	certFile  string
	keyFile   string
	deliverMu sync.Mutex // Deliver derives the UID from UIDNEXT

	mu       sync.Mutex
	password string
	port     int
	tlsPort  int
	cmd      *exec.Cmd
	exited   chan struct{}
	frozen   bool
	closed   bool
}

// StartDovecot starts a private Dovecot and stops it when the test ends; if
// the test failed, Dovecot's log is printed.
func StartDovecot(t testing.TB, opts DovecotOptions) *Dovecot {
	t.Helper()
	dovecotBin, doveadmBin, err := dovecotBinaries()
	if err != nil {
		unavailable(t, err.Error()+" (apt-get install dovecot-imapd)")
	}
	if os.Geteuid() != 0 {
		unavailable(t, "dovecot tests run a private Dovecot, which must start as root")
	}
	if opts.Username == "" {
		opts.Username = DefaultUsername
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	if strings.ContainsAny(opts.Username+opts.Password+strings.Join(opts.ExtraUsers, ""), ":\n") {
		t.Fatal("testimap: dovecot username and password must not contain ':' or newlines")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("testimap: look up user nobody: %v", err)
	}
	d := &Dovecot{
		tb:       t,
		opts:     opts,
		dovecot:  dovecotBin,
		doveadmB: doveadmBin,
		password: opts.Password,
	}
	d.uid, _ = strconv.Atoi(nobody.Uid)
	d.gid, _ = strconv.Atoi(nobody.Gid)

	// Dovecot's mail processes run as nobody and must reach the maildir, so
	// every directory above it must be traversable: t.TempDir is 0700.
	d.dir, err = os.MkdirTemp(traversableTempBase(), "mailtap-dovecot-")
	if err != nil {
		t.Fatalf("testimap: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d.dir) })
	if err := d.prepareDir(); err != nil {
		t.Fatalf("testimap: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			d.dumpLog()
		}
	})
	t.Cleanup(d.Close)

	if err := d.startFresh(); err != nil {
		t.Fatalf("testimap: start dovecot: %v", err)
	}
	if len(opts.ExtraUsers) > 0 {
		d.createForAll(t, opts.Mailboxes)
	} else {
		for _, name := range opts.Mailboxes {
			d.CreateMailbox(t, name)
		}
	}
	return d
}

func unavailable(t testing.TB, why string) {
	t.Helper()
	skipOrFail(t, RequireDovecotEnv, why)
}

func dovecotBinaries() (dovecot, doveadm string, err error) {
	find := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin"} {
			if p := filepath.Join(dir, name); isExecutable(p) {
				return p
			}
		}
		return ""
	}
	return findDovecot(find, nil)
}

// findDovecot finds dovecot and doveadm with find, and checks that the IMAP
// service is installed too: Debian splits it into dovecot-imapd, and
// dovecot-core alone starts fine and then refuses every IMAP connection
// (one skip with the reason beats a failure in every test). libexec lists
// the directories holding imap and imap-login; nil means the usual ones
// and those beside the dovecot binary.
func findDovecot(find func(string) string, libexec []string) (dovecot, doveadm string, err error) {
	dovecot, doveadm = find("dovecot"), find("doveadm")
	if dovecot == "" || doveadm == "" {
		return "", "", errors.New("dovecot not installed")
	}
	if libexec == nil {
		prefix := filepath.Dir(filepath.Dir(dovecot)) // /usr/sbin/dovecot → /usr
		libexec = []string{"/usr/lib/dovecot", "/usr/libexec/dovecot", "/usr/local/libexec/dovecot",
			filepath.Join(prefix, "lib", "dovecot"), filepath.Join(prefix, "libexec", "dovecot")}
	}
	for _, dir := range libexec {
		if isExecutable(filepath.Join(dir, "imap")) && isExecutable(filepath.Join(dir, "imap-login")) {
			return dovecot, doveadm, nil
		}
	}
	return "", "", fmt.Errorf("dovecot is installed but its IMAP service is not (no imap and imap-login in %s)", strings.Join(libexec, ", "))
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// traversableTempBase is os.TempDir if others can traverse it (and every
// directory above it), else /tmp.
func traversableTempBase() string {
	base := os.TempDir()
	for p := base; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if p == filepath.Dir(p) {
			return base
		}
	}
}

func (d *Dovecot) prepareDir() error {
	if err := os.Chmod(d.dir, 0o755); err != nil {
		return err
	}
	for _, sub := range []string{"run", "state"} {
		if err := os.Mkdir(filepath.Join(d.dir, sub), 0o755); err != nil {
			return err
		}
	}
	mail := filepath.Join(d.dir, "mail")
	if err := os.Mkdir(mail, 0o755); err != nil {
		return err
	}
	if err := os.Chown(mail, d.uid, d.gid); err != nil {
		return fmt.Errorf("chown maildir to nobody: %w", err)
	}
	d.conf = filepath.Join(d.dir, "dovecot.conf")
	d.passwd = filepath.Join(d.dir, "passwd")
	d.logFile = filepath.Join(d.dir, "dovecot.log")
	d.errFile = filepath.Join(d.dir, "dovecot.stderr")
	if err := d.writePasswd(d.password); err != nil {
		return err
	}
	if d.opts.TLS {
		cert, err := newSelfSigned()
		if err != nil {
			return err
		}
		d.cert = cert
		if d.certFile, d.keyFile, err = cert.writeFiles(d.dir); err != nil {
			return err
		}
	}
	return nil
}

// writePasswd replaces the passwd-file atomically; Dovecot re-reads it when
// it changes, so new logins see a new password at once.
func (d *Dovecot) writePasswd(password string) error {
	var lines strings.Builder
	for _, u := range append([]string{d.opts.Username}, d.opts.ExtraUsers...) {
		home := filepath.Join(d.dir, "mail", u)
		fmt.Fprintf(&lines, "%s:{PLAIN}%s:%d:%d::%s::\n", u, password, d.uid, d.gid, home)
	}
	tmp := d.passwd + ".tmp"
	if err := os.WriteFile(tmp, []byte(lines.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, d.passwd)
}

func (d *Dovecot) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Generated by mailtap's internal/testimap for one test.
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
instance_name = mailtap-%[2]s
protocols = imap
listen = 127.0.0.1
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
# Tests of wrong passwords should not wait 2 s per attempt, nor have the
# next login from 127.0.0.1 held back by anvil's failure penalty (2 s,
# doubling to 15 s). ExtraConfig can bring both back.
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:%[1]s/mail/%%u
# Durability of the test server's own mail is not under test.
mail_fsync = never
mail_plugins =
namespace inbox {
  inbox = yes
  separator = %[4]s
  prefix =
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[3]s
}
userdb {
  driver = passwd-file
  args = username_format=%%u %[3]s
}
protocol imap {
  mail_max_userip_connections = 100
}
`, d.dir, filepath.Base(d.dir), d.passwd, cmp.Or(d.opts.Separator, "/"))
	if d.opts.TLS {
		fmt.Fprintf(&b, `ssl = yes
ssl_cert = <%s
ssl_key = <%s
service imap-login {
  inet_listener imap {
    port = %d
  }
  inet_listener imaps {
    port = %d
    ssl = yes
  }
}
`, d.certFile, d.keyFile, d.port, d.tlsPort)
	} else {
		fmt.Fprintf(&b, `ssl = no
service imap-login {
  inet_listener imap {
    port = %d
  }
  inet_listener imaps {
    port = 0
  }
}
`, d.port)
	}
	b.WriteString(d.opts.ExtraConfig)
	b.WriteString("\n")
	return b.String()
}

// startFresh picks free ports and starts; a port taken between picking and
// binding (another test, another engineer) is retried with new ones.
func (d *Dovecot) startFresh() error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		d.mu.Lock()
		d.port, d.tlsPort = 0, 0
		if d.port, err = freePort(); err == nil && d.opts.TLS {
			d.tlsPort, err = freePort()
		}
		if err == nil {
			err = d.startLocked()
		}
		d.mu.Unlock()
		if err == nil || !errors.Is(err, errAddrInUse) {
			return err
		}
	}
	return err
}

var errAddrInUse = errors.New("address already in use")

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startLocked writes the config, starts dovecot -F and waits until it
// greets. d.mu is held.
func (d *Dovecot) startLocked() error {
	if err := os.WriteFile(d.conf, []byte(d.config()), 0o644); err != nil {
		return err
	}
	errOut, err := os.OpenFile(d.errFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer errOut.Close()
	errStart, logStart := fileSize(d.errFile), fileSize(d.logFile) // judge this start by its own lines
	cmd := exec.Command(d.dovecot, "-F", "-c", d.conf)
	cmd.Stdout, cmd.Stderr = errOut, errOut
	cmd.SysProcAttr = serverAttr() // own process group, dies with the test (proc_*.go)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", d.dovecot, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	d.cmd, d.exited = cmd, exited

	if err := d.waitReady(exited); err != nil {
		d.stopLocked(true)
		if inUse := []byte("Address already in use"); bytes.Contains(readFrom(d.errFile, errStart), inUse) || bytes.Contains(readFrom(d.logFile, logStart), inUse) {
			return fmt.Errorf("%w: %v", errAddrInUse, err)
		}
		return fmt.Errorf("%w\n%s", err, d.tail(20))
	}
	return nil
}

// waitReady waits for the "* OK" greeting on the plain port and a
// connection on the TLS port.
func (d *Dovecot) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(20 * time.Second)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(d.port))
	for {
		select {
		case <-exited:
			return errors.New("dovecot exited during startup")
		default:
		}
		if err := greets(addr); err == nil {
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("dovecot not ready on %s after 20s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d.tlsPort != 0 {
		tlsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(d.tlsPort))
		c, err := net.DialTimeout("tcp", tlsAddr, 2*time.Second)
		if err != nil {
			return fmt.Errorf("dovecot TLS port %s: %w", tlsAddr, err)
		}
		c.Close()
	}
	return nil
}

func greets(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	if !strings.HasPrefix(line, "* OK") {
		return fmt.Errorf("unexpected greeting %q", line)
	}
	return nil
}

// Addr is the plain listener (STARTTLS offered with TLS), "127.0.0.1:port".
func (d *Dovecot) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(d.Port())) }

// Host is "127.0.0.1".
func (d *Dovecot) Host() string { return "127.0.0.1" }

// Port is the plain listener's port; it stays the same across Stop/Start.
func (d *Dovecot) Port() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.port
}

// TLSAddr is the implicit-TLS listener, or "" without TLS.
func (d *Dovecot) TLSAddr() string {
	if p := d.TLSPort(); p != 0 {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return ""
}

// TLSPort is the implicit-TLS listener's port, or 0 without TLS.
func (d *Dovecot) TLSPort() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tlsPort
}

// Username is the account's username.
func (d *Dovecot) Username() string { return d.opts.Username }

// Password is the account's current password.
func (d *Dovecot) Password() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.password
}

// Cert is the server certificate in PEM (its own CA), or nil without TLS.
func (d *Dovecot) Cert() []byte {
	if d.cert == nil {
		return nil
	}
	return d.cert.CertPEM
}

// CAFile is a PEM file trusting the server certificate, or "" without TLS.
func (d *Dovecot) CAFile() string { return d.certFile }

// LogFile is Dovecot's log (printed by StartDovecot's cleanup when the test
// failed).
func (d *Dovecot) LogFile() string { return d.logFile }

// SetPassword changes the password for new logins.
func (d *Dovecot) SetPassword(t testing.TB, password string) {
	t.Helper()
	if strings.ContainsAny(password, ":\n") {
		t.Fatal("testimap: dovecot password must not contain ':' or newlines")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.writePasswd(password); err != nil {
		t.Fatalf("testimap: set password: %v", err)
	}
	d.password = password
	// The auth process looks at the file at most once a second; a reload
	// (SIGHUP) restarts it, so the very next login sees the change.
	// Logged-in sessions are not affected.
	if d.cmd != nil {
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("testimap: reload dovecot: %v", err)
		}
	}
}

// Stop stops Dovecot (its IMAP processes die with it, so clients see the
// connection close); mail and ports are kept for Start.
func (d *Dovecot) Stop(t testing.TB) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.stopLocked(true); err != nil {
		t.Fatalf("testimap: stop dovecot: %v", err)
	}
}

// stopLocked ends the instance. Graceful is SIGTERM to the master, which
// ends its sessions (clients see BYE or EOF) and flushes the log, taking
// about a second; otherwise the whole process group is killed at once.
func (d *Dovecot) stopLocked(graceful bool) error {
	if d.cmd == nil {
		return nil
	}
	pgid := d.cmd.Process.Pid
	if d.frozen {
		killGroup(pgid, sigCont)
		d.frozen = false
	}
	var err error
	if graceful {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			err = errors.New("dovecot did not exit within 10s of SIGTERM; killed")
		}
	}
	// Anything of the instance still alive (a stuck imap process holding
	// the listening socket) must not survive into Start.
	killGroup(pgid, syscall.SIGKILL)
	<-d.exited
	d.cmd, d.exited = nil, nil
	return err
}

// Start starts Dovecot again after Stop, on the same ports with the same
// mail. Calling it while running is a no-op.
func (d *Dovecot) Start(t testing.TB) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		t.Fatal("testimap: Start on a closed Dovecot")
	}
	if d.cmd != nil {
		return
	}
	// The ports were just released; a listener of the old instance's
	// children may linger for a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := d.startLocked()
		if err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			t.Fatalf("testimap: restart dovecot on port %d: %v", d.port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Restart is Stop then Start.
func (d *Dovecot) Restart(t testing.TB) {
	t.Helper()
	d.Stop(t)
	d.Start(t)
}

// Freeze stops (SIGSTOP) every process of the instance: connections stay
// open and TCP still ACKs, but nothing answers until Thaw. doveadm commands
// (Deliver …) hang while frozen.
func (d *Dovecot) Freeze(t testing.TB) { d.signalGroup(t, sigStop, true) }

// Thaw continues the processes stopped by Freeze.
func (d *Dovecot) Thaw(t testing.TB) { d.signalGroup(t, sigCont, false) }

func (d *Dovecot) signalGroup(t testing.TB, sig syscall.Signal, frozen bool) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		t.Fatal("testimap: dovecot is not running")
	}
	if err := killGroup(d.cmd.Process.Pid, sig); err != nil {
		t.Fatalf("testimap: signal dovecot: %v", err)
	}
	d.frozen = frozen
}

// Close stops Dovecot for good. It is registered with t.Cleanup. When the
// test passed there is nothing to wait for, so it kills the instance; after
// a failure it stops it gracefully so the log printed next is complete.
func (d *Dovecot) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	if err := d.stopLocked(d.tb.Failed()); err != nil {
		d.tb.Logf("testimap: %v", err)
	}
}

// doveadm runs doveadm against this instance.
func (d *Dovecot) doveadm(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command(d.doveadmB, append([]string{"-c", d.conf}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("doveadm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Deliver saves raw into mailbox with doveadm save (no IMAP, like an MDA)
// and returns its UID. Deliveries through this helper are serialised; the
// UID is UIDNEXT-1 afterwards, so do not APPEND concurrently over IMAP.
func (d *Dovecot) Deliver(t testing.TB, mailbox string, raw []byte) uint32 {
	t.Helper()
	d.deliverMu.Lock()
	defer d.deliverMu.Unlock()
	if _, err := d.doveadm(raw, "save", "-u", d.opts.Username, "-m", mailbox); err != nil {
		t.Fatalf("testimap: deliver to %q: %v", mailbox, err)
	}
	return d.Status(t, mailbox).UIDNext - 1
}

// DeliverMany appends msgs in order and returns their UIDs. It uses one
// IMAP connection and MULTIAPPEND with non-synchronising literals, about
// 10,000 small messages in 2 s, where doveadm save costs 20 ms a message.
func (d *Dovecot) DeliverMany(t testing.TB, mailbox string, msgs [][]byte) []uint32 {
	t.Helper()
	d.deliverMu.Lock()
	defer d.deliverMu.Unlock()
	uids, err := multiAppend(d.Addr(), d.opts.Username, d.Password(), mailbox, msgs)
	if err != nil {
		t.Fatalf("testimap: deliver %d messages to %q: %v", len(msgs), mailbox, err)
	}
	return uids
}

// DeliverN delivers n messages built by Msg with subjects "test message 1"
// … "test message n" and returns their UIDs.
func (d *Dovecot) DeliverN(t testing.TB, mailbox string, n int) []uint32 {
	t.Helper()
	return d.DeliverMany(t, mailbox, testMsgs(n))
}

// Kick disconnects the account's IMAP sessions (doveadm kick).
func (d *Dovecot) Kick(t testing.TB) {
	t.Helper()
	out, err := d.doveadm(nil, "kick", d.opts.Username)
	var exit *exec.ExitError
	// Exit 68 (EX_NOUSER) with "no users kicked" is not an error here.
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 68) {
		t.Fatalf("testimap: kick: %v (%s)", err, out)
	}
}

// CreateMailbox creates an empty mailbox.
func (d *Dovecot) CreateMailbox(t testing.TB, name string) {
	t.Helper()
	if _, err := d.doveadm(nil, "mailbox", "create", "-u", d.opts.Username, name); err != nil {
		t.Fatalf("testimap: create mailbox: %v", err)
	}
}

// DeleteMailbox deletes a mailbox and its mail (not INBOX, which Dovecot
// refuses to delete). Sessions that have it selected get "* BYE" at once
// while in IDLE, else at their next command.
func (d *Dovecot) DeleteMailbox(t testing.TB, name string) {
	t.Helper()
	if _, err := d.doveadm(nil, "mailbox", "delete", "-u", d.opts.Username, name); err != nil {
		t.Fatalf("testimap: delete mailbox: %v", err)
	}
}

// RecreateMailbox empties a mailbox and gives it a new UIDVALIDITY, which
// it returns. Other mailboxes are deleted and created again; INBOX cannot
// be deleted, so its mail is expunged and its UIDVALIDITY raised. Sessions
// that have it selected get "* BYE" from Dovecot when they next sync (at
// once for a deleted mailbox, on the next command or new mail for INBOX).
func (d *Dovecot) RecreateMailbox(t testing.TB, name string) uint32 {
	t.Helper()
	old := d.Status(t, name).UIDValidity
	if strings.EqualFold(name, "INBOX") {
		if _, err := d.doveadm(nil, "expunge", "-u", d.opts.Username, "mailbox", name, "all"); err != nil {
			t.Fatalf("testimap: empty %s: %v", name, err)
		}
	} else {
		d.DeleteMailbox(t, name)
		d.CreateMailbox(t, name)
	}
	if uv := d.Status(t, name).UIDValidity; uv != old {
		return uv
	}
	uv := old + 1
	if _, err := d.doveadm(nil, "mailbox", "update", "-u", d.opts.Username, "--uid-validity", strconv.FormatUint(uint64(uv), 10), name); err != nil {
		t.Fatalf("testimap: change UIDVALIDITY of %q: %v", name, err)
	}
	if got := d.Status(t, name).UIDValidity; got != uv {
		t.Fatalf("testimap: UIDVALIDITY of %q is %d after update to %d", name, got, uv)
	}
	return uv
}

// Status reports a mailbox's message count, UIDNEXT and UIDVALIDITY.
func (d *Dovecot) Status(t testing.TB, name string) MailboxStatus {
	t.Helper()
	out, err := d.doveadm(nil, "-f", "tab", "mailbox", "status", "-u", d.opts.Username, "messages uidnext uidvalidity", name)
	if err != nil {
		t.Fatalf("testimap: status: %v", err)
	}
	st, err := parseStatus(out)
	if err != nil {
		t.Fatalf("testimap: status of %q: %v", name, err)
	}
	return st
}

// parseStatus reads doveadm's tab format: a header line, then values.
func parseStatus(out string) (MailboxStatus, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		return MailboxStatus{}, fmt.Errorf("unexpected doveadm output %q", out)
	}
	keys, vals := strings.Split(lines[0], "\t"), strings.Split(lines[1], "\t")
	if len(keys) != len(vals) {
		return MailboxStatus{}, fmt.Errorf("unexpected doveadm output %q", out)
	}
	var st MailboxStatus
	fields := map[string]*uint32{"messages": &st.Messages, "uidnext": &st.UIDNext, "uidvalidity": &st.UIDValidity}
	for i, k := range keys {
		dst := fields[strings.TrimSpace(k)]
		if dst == nil {
			continue // e.g. the "mailbox" column
		}
		v, err := strconv.ParseUint(strings.TrimSpace(vals[i]), 10, 32)
		if err != nil {
			return MailboxStatus{}, fmt.Errorf("%s=%q: %w", k, vals[i], err)
		}
		*dst = uint32(v)
		delete(fields, strings.TrimSpace(k))
	}
	if len(fields) != 0 {
		return MailboxStatus{}, fmt.Errorf("doveadm output %q lacks a field", out)
	}
	return st, nil
}

func (d *Dovecot) readLogs() []byte {
	var b bytes.Buffer
	for _, f := range []string{d.errFile, d.logFile} {
		if data, err := os.ReadFile(f); err == nil {
			b.Write(data)
		} else if !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(&b, "(read %s: %v)\n", f, err)
		}
	}
	return b.Bytes()
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readFrom returns path's content from offset on ("" if unreadable).
func readFrom(path string, offset int64) []byte {
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) < offset {
		return nil
	}
	return data[offset:]
}

// tail is the last n lines of Dovecot's stderr and log.
func (d *Dovecot) tail(n int) string {
	lines := strings.Split(strings.TrimRight(string(d.readLogs()), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (d *Dovecot) dumpLog() {
	d.tb.Logf("dovecot log (%s), last 200 lines:\n%s", d.logFile, d.tail(200))
}
