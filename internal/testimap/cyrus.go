package testimap

import (
	"bufio"
	"bytes"
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

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// RequireCyrusEnv, when set to anything but "" or "0", turns "Cyrus is not
// available here" from a skip into a test failure (CI sets it).
const RequireCyrusEnv = "MAILTAP_REQUIRE_CYRUS"

// CyrusDirEnv names the directory the cyrus-imapd .deb was unpacked into
// (dpkg -x), which holds imapd and idled; DefaultCyrusDir when unset.
// cyrus-imapd itself cannot be installed beside Dovecot (both provide
// imap-server and conflict); .ci/run unpacks it there.
const CyrusDirEnv = "MAILTAP_CYRUS_DIR"

// DefaultCyrusDir is where .ci/run unpacks cyrus-imapd.
const DefaultCyrusDir = "/opt/mailtap-cyrus"

// CyrusOptions configures StartCyrus. The zero value is a server with
// DefaultUsername / DefaultPassword and INBOX, "." as the hierarchy
// separator and IDLE polling every 60 s (no idled).
type CyrusOptions struct {
	// Username and Password of the one account. The username may not
	// contain '.', '/', '@', spaces or newlines (Cyrus would map or split
	// them); the password may not contain newlines.
	Username, Password string
	// Mailboxes are created besides INBOX, as the user, with names in the
	// server's own syntax: "INBOX.Lists.golang" by default,
	// "Lists/golang" with UnixHierarchySep.
	Mailboxes []string
	// UnixHierarchySep selects unixhierarchysep: yes and altnamespace: yes
	// ("/" separator, folders beside INBOX). Without it, Debian's default:
	// "." separator, folders below INBOX.
	UnixHierarchySep bool
	// Idled runs the idled daemon, which tells IDLE sessions about changes
	// at once (a few ms). Without it imapd re-checks the selected mailbox
	// every imapidlepoll seconds (default 60; "imapidlepoll: 1" in
	// ExtraConfig makes it 1 s; 0 turns IDLE off).
	Idled bool
	// ExtraConfig holds imapd.conf lines ("key: value"). Cyrus refuses a
	// key given twice, so a key given here replaces the generated one.
	ExtraConfig string
}

// Cyrus is a private Cyrus IMAP 3.6 instance (Debian's) for one test: its
// own imapd.conf, cyrus.conf, sasldb, databases and spool under a temp dir
// owned cyrus:mail, IMAP on a free loopback port. Nothing in /etc is used.
//
// Cyrus logs only to syslog, so master runs in a private mount namespace
// whose /dev holds a "log" socket that the helper reads: Log returns what
// Cyrus said, and StartCyrus prints it when the test failed.
//
// Binaries: master and ctl_cyrusdb from cyrus-common, saslpasswd2 from
// sasl2-bin (installable beside dovecot-imapd), imapd and idled from the
// cyrus-imapd .deb unpacked into $MAILTAP_CYRUS_DIR or DefaultCyrusDir.
// It needs root (for the namespace; master drops to the cyrus user). When
// something is missing or the test is not root, StartCyrus skips the test,
// or fails it if MAILTAP_REQUIRE_CYRUS is set.
//
// Messages are delivered by APPEND as the user, mailboxes created and
// deleted over IMAP as the user.
type Cyrus struct {
	tb         testing.TB
	opts       CyrusOptions
	bins       cyrusBins
	dir        string
	imapdConf  string
	cyrusConf  string
	sasldb     string
	pidFile    string
	stderrFile string // master's and the namespace script's own stderr
	uid, gid   int
	deliverMu  sync.Mutex // serialises Deliver* like Dovecot's

	logConn *net.UnixConn
	logDone chan struct{}
	logMu   sync.Mutex
	log     bytes.Buffer // syslog records, one a line

	mu       sync.Mutex
	password string
	port     int
	cmd      *exec.Cmd
	exited   chan struct{}
	frozen   bool
	closed   bool
}

type cyrusBins struct {
	master, ctlCyrusdb, imapd, idled, saslpasswd2, unshare string
}

// StartCyrus starts a private Cyrus and stops it when the test ends; if the
// test failed, Cyrus's log is printed.
func StartCyrus(t testing.TB, opts CyrusOptions) *Cyrus {
	t.Helper()
	bins, err := findCyrus()
	if err != nil {
		skipOrFail(t, RequireCyrusEnv, err.Error())
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, RequireCyrusEnv, "cyrus tests run a private Cyrus in its own mount namespace, which needs root")
	}
	if opts.Username == "" {
		opts.Username = DefaultUsername
	}
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	if strings.ContainsAny(opts.Username, "./@ \t\r\n") || strings.ContainsAny(opts.Password, "\r\n") {
		t.Fatal("testimap: cyrus username must not contain '.', '/', '@' or blanks, nor the password newlines")
	}
	cyrusUser, err := user.Lookup("cyrus")
	if err != nil {
		skipOrFail(t, RequireCyrusEnv, fmt.Sprintf("no cyrus user (%v): apt-get install cyrus-common", err))
	}
	mail, err := user.LookupGroup("mail")
	if err != nil {
		t.Fatalf("testimap: look up group mail: %v", err)
	}
	c := &Cyrus{tb: t, opts: opts, bins: bins, password: opts.Password}
	c.uid, _ = strconv.Atoi(cyrusUser.Uid)
	c.gid, _ = strconv.Atoi(mail.Gid)

	// Cyrus runs as the cyrus user and must reach its files: t.TempDir is
	// 0700 under a root-only parent.
	c.dir, err = os.MkdirTemp(traversableTempBase(), "mailtap-cyrus-")
	if err != nil {
		t.Fatalf("testimap: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(c.dir) })
	if err := c.prepareDir(); err != nil {
		t.Fatalf("testimap: %v", err)
	}
	if err := c.listenLog(); err != nil {
		t.Fatalf("testimap: cyrus log socket: %v", err)
	}
	t.Cleanup(c.closeLog) // after the log is printed (cleanups run last first)
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLog()
		}
	})
	t.Cleanup(c.Close)
	if err := c.setPassword(opts.Password); err != nil {
		t.Fatalf("testimap: %v", err)
	}

	if err := c.startFresh(); err != nil {
		t.Fatalf("testimap: start cyrus: %v", err)
	}
	for _, name := range opts.Mailboxes {
		c.CreateMailbox(t, name)
	}
	return c
}

// skipOrFail skips the test, or fails it when env is set (not "" or "0").
func skipOrFail(t testing.TB, env, why string) {
	t.Helper()
	if v := os.Getenv(env); v != "" && v != "0" {
		t.Fatalf("%s, and %s is set", why, env)
		return
	}
	t.Skipf("%s; set %s=1 to fail instead", why, env)
}

// findCyrus looks for the binaries: imapd and idled in the unpacked
// cyrus-imapd (DIR/usr/lib/cyrus/bin, or DIR itself), master and
// ctl_cyrusdb there too or else from cyrus-common in /usr/lib/cyrus/bin.
func findCyrus() (cyrusBins, error) {
	dir := os.Getenv(CyrusDirEnv)
	if dir == "" {
		dir = DefaultCyrusDir
	}
	unpacked := []string{filepath.Join(dir, "usr/lib/cyrus/bin"), dir}
	find := func(name string, dirs ...string) string {
		for _, d := range dirs {
			if p := filepath.Join(d, name); isExecutable(p) {
				return p
			}
		}
		return ""
	}
	var b cyrusBins
	b.imapd = find("imapd", unpacked...)
	b.idled = find("idled", unpacked...)
	if b.imapd == "" || b.idled == "" {
		return b, fmt.Errorf("cyrus imapd/idled not found in %s (set %s, or unpack cyrus-imapd there: apt-get download cyrus-imapd && dpkg -x cyrus-imapd_*.deb %s)", dir, CyrusDirEnv, dir)
	}
	common := append(unpacked, "/usr/lib/cyrus/bin")
	b.master = find("master", common...)
	b.ctlCyrusdb = find("ctl_cyrusdb", common...)
	if b.master == "" || b.ctlCyrusdb == "" {
		return b, errors.New("cyrus master/ctl_cyrusdb not installed (apt-get install cyrus-common)")
	}
	look := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		return find(name, "/usr/sbin", "/usr/bin", "/sbin", "/bin")
	}
	if b.saslpasswd2 = look("saslpasswd2"); b.saslpasswd2 == "" {
		return b, errors.New("saslpasswd2 not installed (apt-get install sasl2-bin)")
	}
	if b.unshare = look("unshare"); b.unshare == "" {
		return b, errors.New("unshare not installed (util-linux)")
	}
	return b, nil
}

func (c *Cyrus) prepareDir() error {
	if err := os.Chmod(c.dir, 0o750); err != nil {
		return err
	}
	for _, sub := range []string{"config", "config/db", "config/socket", "spool", "sieve", "run", "dev"} {
		if err := os.Mkdir(filepath.Join(c.dir, sub), 0o750); err != nil {
			return err
		}
	}
	c.imapdConf = filepath.Join(c.dir, "imapd.conf")
	c.cyrusConf = filepath.Join(c.dir, "cyrus.conf")
	c.sasldb = filepath.Join(c.dir, "sasldb2")
	c.pidFile = filepath.Join(c.dir, "run", "master.pid")
	c.stderrFile = filepath.Join(c.dir, "master.stderr")
	return c.chownAll()
}

// chownAll gives the whole tree to cyrus:mail; files the helper creates as
// root (configs, the sasldb) must be readable by Cyrus.
func (c *Cyrus) chownAll() error {
	return filepath.Walk(c.dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, c.uid, c.gid)
	})
}

// listenLog opens the datagram socket that is /dev/log inside Cyrus's mount
// namespace and collects what arrives.
func (c *Cyrus) listenLog() error {
	path := filepath.Join(c.dir, "log.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	if err := os.Chmod(path, 0o666); err != nil {
		conn.Close()
		return err
	}
	conn.SetReadBuffer(1 << 20)
	c.logConn, c.logDone = conn, make(chan struct{})
	go func() {
		defer close(c.logDone)
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			line := syslogLine(buf[:n])
			c.logMu.Lock()
			c.log.WriteString(line)
			c.log.WriteByte('\n')
			c.logMu.Unlock()
		}
	}()
	return nil
}

func (c *Cyrus) closeLog() {
	if c.logConn != nil {
		c.logConn.Close()
		<-c.logDone
	}
}

var syslogSeverity = [8]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// syslogLine turns "<19>Dec  1 22:32:39 prefix/imap[42]: text" into
// "Dec  1 22:32:39 prefix/imap[42]: err: text".
func syslogLine(rec []byte) string {
	s := strings.TrimRight(string(rec), "\x00\r\n")
	if !strings.HasPrefix(s, "<") {
		return s
	}
	end := strings.IndexByte(s, '>')
	pri, err := strconv.Atoi(s[1:max(end, 1)])
	if end < 0 || err != nil {
		return s
	}
	s = s[end+1:]
	sev := syslogSeverity[pri&7]
	// The header ends at the first ": " after the timestamp.
	if i := strings.Index(s, "]: "); i >= 0 {
		return s[:i+3] + sev + ": " + s[i+3:]
	}
	return sev + ": " + s
}

func (c *Cyrus) logLen() int {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	return c.log.Len()
}

func (c *Cyrus) logFrom(offset int) string {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	if offset > c.log.Len() {
		return ""
	}
	return string(c.log.Bytes()[offset:])
}

// Log is what Cyrus has logged so far (its syslog records, then master's
// own stderr).
func (c *Cyrus) Log() string {
	s := c.logFrom(0)
	if data, err := os.ReadFile(c.stderrFile); err == nil && len(data) > 0 {
		s += "--- master stderr\n" + string(data)
	}
	return s
}

func (c *Cyrus) setPassword(password string) error {
	cmd := exec.Command(c.bins.saslpasswd2, "-p", "-c", "-f", c.sasldb, "-u", "localhost", c.opts.Username)
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("saslpasswd2: %w: %s", err, bytes.TrimSpace(out))
	}
	return os.Chown(c.sasldb, c.uid, c.gid)
}

func (c *Cyrus) imapdConfig() string {
	sep, alt := "no", "no"
	if c.opts.UnixHierarchySep {
		sep, alt = "yes", "yes"
	}
	d := c.dir
	gen := [][2]string{
		{"configdirectory", d + "/config"},
		{"defaultpartition", "default"},
		{"partition-default", d + "/spool"},
		{"sievedir", d + "/sieve"},
		{"proc_path", d + "/run/proc"},
		{"mboxname_lockpath", d + "/run/lock"},
		{"idlesocket", c.idleSocket()},
		{"notifysocket", d + "/run/notify"},
		{"lmtpsocket", d + "/run/lmtp"},
		{"servername", "localhost"},
		{"admins", "cyrus"},
		{"allowplaintext", "yes"},
		{"sasl_pwcheck_method", "auxprop"},
		{"sasl_auxprop_plugin", "sasldb"},
		{"sasl_sasldb_path", c.sasldb},
		{"sasl_mech_list", "PLAIN LOGIN"},
		{"sasl_auto_transition", "no"},
		// Tests of wrong passwords should not wait 3 s per attempt;
		// ExtraConfig can bring the pause back.
		{"failedloginpause", "0"},
		// INBOX is created at the first login.
		{"autocreate_quota", "0"},
		{"unixhierarchysep", sep},
		{"altnamespace", alt},
		{"syslog_prefix", "mailtap-cyrus"},
	}
	extra := c.extraConfig()
	var b strings.Builder
	b.WriteString("# Generated by mailtap's internal/testimap for one test.\n")
	for _, kv := range gen {
		if _, ok := extra[kv[0]]; !ok {
			fmt.Fprintf(&b, "%s: %s\n", kv[0], kv[1])
		}
	}
	if c.opts.ExtraConfig != "" {
		b.WriteString(strings.TrimSpace(c.opts.ExtraConfig))
		b.WriteString("\n")
	}
	return b.String()
}

// extraConfig is ExtraConfig's settings by key.
func (c *Cyrus) extraConfig() map[string]string {
	extra := map[string]string{}
	for _, line := range strings.Split(c.opts.ExtraConfig, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			extra[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return extra
}

// idleSocket is where idled listens.
func (c *Cyrus) idleSocket() string {
	if p, ok := c.extraConfig()["idlesocket"]; ok {
		return p
	}
	return c.dir + "/run/idle"
}

func (c *Cyrus) cyrusConfig() string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Generated by mailtap's internal/testimap for one test.
START {
  recover cmd="%[1]s -C %[2]s -r"
}
SERVICES {
  imap cmd="%[3]s -C %[2]s" listen="127.0.0.1:%[4]d" prefork=0 maxchild=100
}
EVENTS {
  checkpoint cmd="%[1]s -C %[2]s -c" period=30
}
`, c.bins.ctlCyrusdb, c.imapdConf, c.bins.imapd, c.port)
	if c.opts.Idled {
		fmt.Fprintf(&b, "DAEMON {\n  idled cmd=\"%s -C %s\"\n}\n", c.bins.idled, c.imapdConf)
	}
	return b.String()
}

// cyrusNamespaceScript runs in a new mount namespace (unshare -m,
// propagation private, so nothing leaks out): it builds a small /dev on a
// tmpfs in DIR/dev with the usual nodes bind-mounted from the real one plus
// "log", a symlink to the helper's socket, puts it over /dev and runs
// master. It stays master's parent so that its parent-death signal (which
// master loses when it becomes the cyrus user) still ends Cyrus when the
// test binary dies, and passes SIGTERM on.
const cyrusNamespaceScript = `set -e
dir=$1; shift
mount -t tmpfs -o mode=0755,size=1m mailtap-cyrus-dev "$dir/dev"
for n in null zero full random urandom tty; do
	if [ -e "/dev/$n" ]; then
		touch "$dir/dev/$n"
		mount --bind "/dev/$n" "$dir/dev/$n"
	fi
done
if [ -d /dev/shm ]; then
	mkdir "$dir/dev/shm"
	mount --rbind /dev/shm "$dir/dev/shm"
fi
ln -s /proc/self/fd "$dir/dev/fd"
ln -s /proc/self/fd/0 "$dir/dev/stdin"
ln -s /proc/self/fd/1 "$dir/dev/stdout"
ln -s /proc/self/fd/2 "$dir/dev/stderr"
ln -s "$dir/log.sock" "$dir/dev/log"
mount --rbind "$dir/dev" /dev
set +e
"$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT HUP
wait "$pid" # returns early when a trapped signal arrives
wait "$pid"
`

// startFresh picks a free port and starts; a port taken between picking and
// binding is retried with a new one.
func (c *Cyrus) startFresh() error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		c.mu.Lock()
		if c.port, err = freePort(); err == nil {
			err = c.startLocked()
		}
		c.mu.Unlock()
		if err == nil || !errors.Is(err, errAddrInUse) {
			return err
		}
	}
	return err
}

// startLocked writes the configs, starts master in its namespace and waits
// for the greeting. c.mu is held.
func (c *Cyrus) startLocked() error {
	if err := os.WriteFile(c.imapdConf, []byte(c.imapdConfig()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(c.cyrusConf, []byte(c.cyrusConfig()), 0o644); err != nil {
		return err
	}
	errOut, err := os.OpenFile(c.stderrFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer errOut.Close()
	logStart, errStart := c.logLen(), fileSize(c.stderrFile)
	// waitReady waits for idled's socket; one left by the last run would
	// not say that idled is up.
	if err := os.Remove(c.idleSocket()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	cmd := exec.Command(c.bins.unshare, "--mount", "--propagation", "private",
		"/bin/sh", "-c", cyrusNamespaceScript, "sh", c.dir,
		c.bins.master, "-C", c.imapdConf, "-M", c.cyrusConf, "-p", c.pidFile)
	cmd.Stdout, cmd.Stderr = errOut, errOut
	// Own process group: Freeze stops the whole instance and Stop can reap
	// stragglers. Pdeathsig: a test binary killed by -timeout does not
	// leave Cyrus running (the script passes it on to master).
	cmd.SysProcAttr = serverAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", c.bins.unshare, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	c.cmd, c.exited = cmd, exited

	if err := c.waitReady(exited, logStart); err != nil {
		c.stopLocked(true)
		time.Sleep(50 * time.Millisecond) // let the last records arrive
		inUse := "Address already in use"
		if strings.Contains(c.logFrom(logStart), inUse) || bytes.Contains(readFrom(c.stderrFile, errStart), []byte(inUse)) {
			return fmt.Errorf("%w: %v", errAddrInUse, err)
		}
		return fmt.Errorf("%w\n%s", err, c.tail(30))
	}
	return nil
}

// waitReady waits for a greeting that names Cyrus: something else might
// hold the port, and master listens before imapd can answer. A master that
// cannot bind says so in the log and goes on running without the service.
// With Idled it then waits for idled's socket: master starts idled beside
// the first imapd, and an IDLE begun before idled listens falls back to
// polling every 60 s for the whole session (observed, logged as "error
// sending message INIT to idled").
func (c *Cyrus) waitReady(exited <-chan struct{}, logStart int) error {
	deadline := time.Now().Add(20 * time.Second)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port))
	if err := c.waitGreeting(exited, logStart, addr, deadline); err != nil {
		return err
	}
	if !c.opts.Idled {
		return nil
	}
	for {
		if fi, err := os.Stat(c.idleSocket()); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			return nil
		}
		select {
		case <-exited:
			return errors.New("cyrus master exited during startup")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("idled's socket %s missing after 20s", c.idleSocket())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *Cyrus) waitGreeting(exited <-chan struct{}, logStart int, addr string, deadline time.Time) error {
	for {
		select {
		case <-exited:
			return errors.New("cyrus master exited during startup")
		default:
		}
		if strings.Contains(c.logFrom(logStart), "Address already in use") {
			return fmt.Errorf("cyrus master cannot listen on %s", addr)
		}
		line, err := greeting(addr)
		if err == nil && strings.HasPrefix(line, "* OK") && strings.Contains(line, "Cyrus") {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("unexpected greeting %q", line)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cyrus not ready on %s after 20s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func greeting(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read greeting: %w", err)
	}
	fmt.Fprintf(conn, "z LOGOUT\r\n")
	return line, nil
}

// Addr is the IMAP listener, "127.0.0.1:port".
func (c *Cyrus) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port())) }

// Host is "127.0.0.1".
func (c *Cyrus) Host() string { return "127.0.0.1" }

// Port is the IMAP port; it stays the same across Stop/Start.
func (c *Cyrus) Port() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.port
}

// TLSAddr is "": the Cyrus helper serves plain IMAP only.
func (c *Cyrus) TLSAddr() string { return "" }

// TLSPort is 0 (no TLS).
func (c *Cyrus) TLSPort() int { return 0 }

// CAFile is "" (no TLS).
func (c *Cyrus) CAFile() string { return "" }

// Cert is nil (no TLS).
func (c *Cyrus) Cert() []byte { return nil }

// Username is the account's username.
func (c *Cyrus) Username() string { return c.opts.Username }

// Password is the account's current password.
func (c *Cyrus) Password() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.password
}

// Separator is the hierarchy separator: '.' or, with UnixHierarchySep, '/'.
func (c *Cyrus) Separator() rune {
	if c.opts.UnixHierarchySep {
		return '/'
	}
	return '.'
}

// Dir is the instance's directory (configs, databases, spool).
func (c *Cyrus) Dir() string { return c.dir }

// SetPassword changes the password; the next login sees it (the sasldb is
// read at each authentication), logged-in sessions stay.
func (c *Cyrus) SetPassword(t testing.TB, password string) {
	t.Helper()
	if strings.ContainsAny(password, "\r\n") {
		t.Fatal("testimap: cyrus password must not contain newlines")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.setPassword(password); err != nil {
		t.Fatalf("testimap: set password: %v", err)
	}
	c.password = password
}

// Stop stops Cyrus (master ends its imapd processes, so clients see the
// connection close); mail and port are kept for Start.
func (c *Cyrus) Stop(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stopLocked(true); err != nil {
		t.Fatalf("testimap: stop cyrus: %v", err)
	}
}

// stopLocked ends the instance: SIGTERM (master ends its children and
// exits), then SIGKILL to whatever of the process group is left.
func (c *Cyrus) stopLocked(graceful bool) error {
	if c.cmd == nil {
		return nil
	}
	pgid := c.cmd.Process.Pid
	if c.frozen {
		killGroup(pgid, sigCont)
		c.frozen = false
	}
	var err error
	if graceful {
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(10 * time.Second):
			err = errors.New("cyrus did not exit within 10s of SIGTERM; killed")
		}
	}
	killGroup(pgid, syscall.SIGKILL)
	<-c.exited
	// A child that left the group (none is known to) must not keep the
	// port or the databases.
	for _, pid := range c.pids("") {
		signalPID(pid, syscall.SIGKILL)
	}
	c.cmd, c.exited = nil, nil
	return err
}

// pids lists the processes running this instance's binaries (their command
// line names its imapd.conf), only those named name if it is not "".
func (c *Cyrus) pids(name string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) < 3 || args[0] == c.bins.unshare || filepath.Base(args[0]) == "sh" {
			continue
		}
		if name != "" && filepath.Base(args[0]) != name {
			continue
		}
		for i := 1; i+1 < len(args); i++ {
			if args[i] == "-C" && args[i+1] == c.imapdConf {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// Start starts Cyrus again after Stop, on the same port with the same mail.
// Calling it while running is a no-op.
func (c *Cyrus) Start(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		t.Fatal("testimap: Start on a closed Cyrus")
	}
	if c.cmd != nil {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := c.startLocked()
		if err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			t.Fatalf("testimap: restart cyrus on port %d: %v", c.port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Restart is Stop then Start.
func (c *Cyrus) Restart(t testing.TB) {
	t.Helper()
	c.Stop(t)
	c.Start(t)
}

// Freeze stops (SIGSTOP) every process of the instance: connections stay
// open and TCP still ACKs, but nothing answers until Thaw. Deliver and the
// other IMAP helpers hang while frozen.
func (c *Cyrus) Freeze(t testing.TB) { c.signalGroup(t, sigStop, true) }

// Thaw continues the processes stopped by Freeze.
func (c *Cyrus) Thaw(t testing.TB) { c.signalGroup(t, sigCont, false) }

func (c *Cyrus) signalGroup(t testing.TB, sig syscall.Signal, frozen bool) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		t.Fatal("testimap: cyrus is not running")
	}
	if err := killGroup(c.cmd.Process.Pid, sig); err != nil {
		t.Fatalf("testimap: signal cyrus: %v", err)
	}
	c.frozen = frozen
}

// Kick drops every IMAP session: Cyrus has no kick command, so the imapd
// processes are sent SIGTERM (clients see the connection close, without a
// BYE); master keeps listening and forks new ones.
func (c *Cyrus) Kick(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	pids := c.pids("imapd")
	for _, pid := range pids {
		signalPID(pid, syscall.SIGTERM)
	}
	// Wait for them to be gone so that the caller's next step does not race
	// with a session still open.
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for processAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// processAlive is false once pid has exited (a zombie counts as exited).
func processAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// Close stops Cyrus for good. It is registered with t.Cleanup. After a
// passed test it kills the instance at once; after a failure it stops it
// gracefully so that the log printed next is complete.
func (c *Cyrus) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	if err := c.stopLocked(c.tb.Failed()); err != nil {
		c.tb.Logf("testimap: %v", err)
	}
}

// Deliver appends raw to mailbox as the user and returns its UID (from
// APPENDUID). Cyrus refuses messages with bare LF line ends ("NO Message
// contains bare newlines") or without a valid header ("NO Message contains
// invalid header"), which fail the test; Msg's are fine.
func (c *Cyrus) Deliver(t testing.TB, mailbox string, raw []byte) uint32 {
	t.Helper()
	return c.DeliverMany(t, mailbox, [][]byte{raw})[0]
}

// DeliverMany appends msgs in order over one connection (MULTIAPPEND with
// LITERAL+) and returns their UIDs.
func (c *Cyrus) DeliverMany(t testing.TB, mailbox string, msgs [][]byte) []uint32 {
	t.Helper()
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	uids, err := multiAppend(c.Addr(), c.opts.Username, c.Password(), mailbox, msgs)
	if err != nil {
		t.Fatalf("testimap: deliver %d messages to %q: %v", len(msgs), mailbox, err)
	}
	return uids
}

// DeliverN delivers n messages built by Msg with subjects "test message 1"
// … "test message n" and returns their UIDs.
func (c *Cyrus) DeliverN(t testing.TB, mailbox string, n int) []uint32 {
	t.Helper()
	return c.DeliverMany(t, mailbox, testMsgs(n))
}

// session logs in as the user for one helper operation.
func (c *Cyrus) session(t testing.TB) *imapclient.Client {
	t.Helper()
	cl, err := imapclient.DialInsecure(c.Addr(), &imapclient.Options{Dialer: &net.Dialer{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatalf("testimap: dial cyrus: %v", err)
	}
	if err := cl.Login(c.opts.Username, c.Password()).Wait(); err != nil {
		cl.Close()
		t.Fatalf("testimap: login to cyrus: %v", err)
	}
	return cl
}

func logout(cl *imapclient.Client) {
	cl.Logout().Wait()
	cl.Close()
}

// CreateMailbox creates an empty mailbox (server syntax: "INBOX.a.b", or
// "a/b" with UnixHierarchySep).
func (c *Cyrus) CreateMailbox(t testing.TB, name string) {
	t.Helper()
	cl := c.session(t)
	defer logout(cl)
	if err := cl.Create(name, nil).Wait(); err != nil {
		t.Fatalf("testimap: create mailbox %q: %v", name, err)
	}
}

// DeleteMailbox deletes a mailbox and its mail, as the user over IMAP.
// Sessions that have it selected are told "* N EXPUNGE" for each message
// (at once while in IDLE with idled, else at their next command or poll)
// and stay selected: no BYE, and they never learn the new UIDVALIDITY of a
// mailbox created again under the same name unless they select it anew.
func (c *Cyrus) DeleteMailbox(t testing.TB, name string) {
	t.Helper()
	cl := c.session(t)
	defer logout(cl)
	if err := cl.Delete(name).Wait(); err != nil {
		t.Fatalf("testimap: delete mailbox %q: %v", name, err)
	}
}

// RecreateMailbox deletes a mailbox and creates it again empty, with a new
// UIDVALIDITY, which it returns. Not for INBOX: a Cyrus user cannot delete
// their own INBOX ("NO Operation is not supported on mailbox"), and
// RENAME INBOX (which would empty it) crashes imapd 3.6.1 (SIGSEGV, seen in
// the log as "signaled to death by signal 11").
func (c *Cyrus) RecreateMailbox(t testing.TB, name string) uint32 {
	t.Helper()
	if strings.EqualFold(name, "INBOX") {
		t.Fatal("testimap: Cyrus cannot recreate INBOX (the user may not delete it)")
	}
	old := c.Status(t, name).UIDValidity
	c.DeleteMailbox(t, name)
	c.CreateMailbox(t, name)
	uv := c.Status(t, name).UIDValidity
	if uv == old {
		t.Fatalf("testimap: UIDVALIDITY of %q unchanged (%d) by delete and create", name, uv)
	}
	return uv
}

// Status reports a mailbox's message count, UIDNEXT and UIDVALIDITY.
func (c *Cyrus) Status(t testing.TB, name string) MailboxStatus {
	t.Helper()
	cl := c.session(t)
	defer logout(cl)
	data, err := cl.Status(name, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true}).Wait()
	if err != nil {
		t.Fatalf("testimap: status of %q: %v", name, err)
	}
	var st MailboxStatus
	if data.NumMessages != nil {
		st.Messages = *data.NumMessages
	}
	st.UIDNext, st.UIDValidity = uint32(data.UIDNext), data.UIDValidity
	return st
}

// tail is the last n lines of the log.
func (c *Cyrus) tail(n int) string {
	lines := strings.Split(strings.TrimRight(c.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *Cyrus) dumpLog() {
	// Records sent just before master exited may still be in the socket.
	for n := -1; n != c.logLen(); {
		n = c.logLen()
		time.Sleep(50 * time.Millisecond)
	}
	c.tb.Logf("cyrus log (%s), last 200 lines:\n%s", c.dir, c.tail(200))
}

// signalPID sends sig to one process; a process already gone is no error
// worth reporting here.
func signalPID(pid int, sig syscall.Signal) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Signal(sig)
	}
}
