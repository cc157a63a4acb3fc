package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mailtap/internal/testbin"
	"mailtap/internal/testimap"
	"mailtap/jsonstore"
)

// binaryEnv names a prebuilt mailtap binary to test instead of building one.
const binaryEnv = "MAILTAP_E2E_BINARY"

var (
	mailtapBin string // path of the binary under test
	buildErr   error  // why there is none
)

func TestMain(m *testing.M) {
	flag.Parse()
	var tmp string
	switch {
	case testing.Short():
		buildErr = errors.New("e2e tests need the built binary and take minutes; skipped with -short")
	case os.Getenv(binaryEnv) != "":
		mailtapBin = os.Getenv(binaryEnv)
	default:
		tmp, buildErr = os.MkdirTemp("", "mailtap-e2e-bin-")
		if buildErr == nil {
			mailtapBin = filepath.Join(tmp, "mailtap")
			buildErr = buildMailtap(mailtapBin)
		}
	}
	code := m.Run()
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}

// raceEnv builds the binary under test with -race; assertNoPanic then also
// fails on a data race the binary reports.
const raceEnv = "MAILTAP_E2E_RACE"

// buildMailtap builds the module's main package the way a user would: a
// plain build (faster, and what ships) unless MAILTAP_E2E_RACE is set.
func buildMailtap(out string) error {
	var flags []string
	if v := os.Getenv(raceEnv); v != "" && v != "0" {
		flags = append(flags, "-race")
	}
	return testbin.Build(out, nil, flags...)
}

// binary is the mailtap under test; it skips with -short and fails the test
// when the build failed.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip(buildErr)
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return mailtapBin
}

// ---- config files ----

// testAccount is the account name every test uses; records land in
// <out>/acct/INBOX/.
const testAccount = "acct"

// baseConfig watches srv's INBOX in plain text on loopback with the short
// timings of the brief: backoff capped at 1 s, a 2 s answer timeout and a
// NOOP every 2 s in IDLE.
func baseConfig(srv testimap.Server, out string) *testbin.Config {
	return &testbin.Config{
		Accounts: []testbin.Account{{
			Name: testAccount, Host: srv.Host(), Port: srv.Port(), TLS: "none",
			Username: srv.Username(), Password: srv.Password(), Auth: "plain",
			Mailboxes: []string{"INBOX"}, Backfill: "all",
		}},
		Output: testbin.Output{Dir: out, Attachments: "metadata", MaxBodyBytes: 1 << 20, Pretty: true},
		Watch: testbin.Watch{IDLE: true, PollInterval: "2s", MaxBackoff: "1s",
			IdleRefresh: "2s", ResponseTimeout: "2s"},
	}
}

// ---- running the binary ----

// logLine is one line mailtap wrote to stderr; Fields is nil when the line
// is not a JSON object (a panic, a message printed before logging starts).
type logLine struct {
	N      int // index in the process's log
	At     time.Time
	Raw    string
	Fields map[string]any
}

func (l logLine) str(key string) string {
	v, _ := l.Fields[key].(string)
	return v
}

func (l logLine) num(key string) float64 {
	v, _ := l.Fields[key].(float64)
	return v
}

// time is the record's own "time" field (when mailtap logged it), or when
// the test read the line if it has none.
func (l logLine) time() time.Time {
	if ts, err := time.Parse(time.RFC3339Nano, l.str("time")); err == nil {
		return ts
	}
	return l.At
}

// logSink collects a process's stderr line by line and wakes waiters.
type logSink struct {
	mu      sync.Mutex
	lines   []logLine
	changed chan struct{} // closed and replaced on every line
	eof     bool
}

func newLogSink() *logSink { return &logSink{changed: make(chan struct{})} }

func (s *logSink) consume(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		raw := sc.Text()
		var fields map[string]any
		if strings.HasPrefix(raw, "{") {
			if json.Unmarshal([]byte(raw), &fields) != nil {
				fields = nil
			}
		}
		s.mu.Lock()
		s.lines = append(s.lines, logLine{N: len(s.lines), At: time.Now(), Raw: raw, Fields: fields})
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.eof = true
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Len is the number of lines so far: a mark for waitFrom.
func (s *logSink) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

func (s *logSink) all() []logLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]logLine(nil), s.lines...)
}

func (s *logSink) text() string {
	var b strings.Builder
	for _, l := range s.all() {
		b.WriteString(l.Raw)
		b.WriteByte('\n')
	}
	return b.String()
}

// waitFrom waits until a line at index ≥ from matches, the stream ends, or
// the timeout passes.
func (s *logSink) waitFrom(from int, timeout time.Duration, match func(logLine) bool) (logLine, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		for i := from; i < len(s.lines); i++ {
			if match(s.lines[i]) {
				l := s.lines[i]
				s.mu.Unlock()
				return l, true
			}
		}
		from = len(s.lines)
		eof, changed := s.eof, s.changed
		s.mu.Unlock()
		if eof {
			return logLine{}, false
		}
		select {
		case <-changed:
		case <-deadline.C:
			return logLine{}, false
		}
	}
}

func (s *logSink) count(match func(logLine) bool) int {
	n := 0
	for _, l := range s.all() {
		if match(l) {
			n++
		}
	}
	return n
}

// Matchers for mailtap's log lines (slog JSON).

func stateIs(state string) func(logLine) bool {
	return func(l logLine) bool { return l.str("msg") == "mailbox state" && l.str("state") == state }
}

func msgIs(msg string) func(logLine) bool {
	return func(l logLine) bool { return l.str("msg") == msg }
}

// capturedUID matches the log of a commit that covers uid: per record
// ("uid", debug level) or per batch ("last_uid", info level).
func capturedUID(uid uint32) func(logLine) bool {
	return func(l logLine) bool {
		return l.str("msg") == "captured" && (l.num("uid") == float64(uid) || l.num("last_uid") >= float64(uid))
	}
}

// proc is one run of the mailtap binary.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	logs   *logSink
	stdout bytes.Buffer // guarded by outMu
	outMu  sync.Mutex
	done   chan struct{}
	err    error // of Wait, valid after done
	quiet  bool  // do not print the log when the test fails
}

type runOpts struct {
	args []string
	env  []string // added to the test's environment
	// wrap runs mailtap through another program: wrap[0] wrap[1:]… is
	// started and must exec mailtap (given as $MAILTAP_BIN) in the end.
	wrap []string
}

// startMailtap runs the binary with args. Its stderr is collected as log
// lines; it is killed at the end of the test if still running, and its log
// is printed if the test failed.
func startMailtap(t *testing.T, o runOpts) *proc {
	t.Helper()
	bin := binary(t)
	var cmd *exec.Cmd
	if len(o.wrap) > 0 {
		cmd = exec.Command(o.wrap[0], append(o.wrap[1:], o.args...)...)
	} else {
		cmd = exec.Command(bin, o.args...)
	}
	cmd.Env = append(append(os.Environ(), "MAILTAP_BIN="+bin), o.env...)
	// A test binary killed by -timeout must not leave mailtap running.
	cmd.SysProcAttr = childAttr()
	p := &proc{t: t, cmd: cmd, logs: newLogSink(), done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = &lockedWriter{mu: &p.outMu, w: &p.stdout}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mailtap: %v", err)
	}
	consumed := make(chan struct{})
	go func() {
		p.logs.consume(stderr)
		close(consumed)
	}()
	go func() {
		<-consumed // Wait closes the pipe: read everything first
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() && !p.quiet {
			lines := p.logs.all()
			if len(lines) > 400 {
				lines = lines[len(lines)-400:]
			}
			var b strings.Builder
			for _, l := range lines {
				b.WriteString(l.Raw + "\n")
			}
			t.Logf("mailtap pid %d %v, last %d log lines:\n%s", cmd.Process.Pid, o.args, len(lines), b.String())
		}
	})
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) output() string {
	p.outMu.Lock()
	defer p.outMu.Unlock()
	return p.stdout.String()
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if p.running() {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// quit sends SIGQUIT, which makes the Go runtime print every goroutine's
// stack to stderr and exit: the log then shows where a stuck mailtap hangs.
func (p *proc) quit() {
	p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// exitCode waits up to timeout for the process to end and returns its exit
// code (-1 if killed by a signal); the test fails if it does not end.
func (p *proc) exitCode(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("mailtap (pid %d) still running %s later", p.pid(), timeout)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	default:
		p.t.Fatalf("wait for mailtap: %v", p.err)
		return -1
	}
}

// stop sends SIGTERM and requires exit 0 within 10 s (design.md: finish the
// record in flight, write the checkpoint, exit 0).
func (p *proc) stop() {
	p.t.Helper()
	if !p.running() {
		p.t.Fatalf("mailtap (pid %d) exited before SIGTERM: %v", p.pid(), p.err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exitCode(10 * time.Second); code != 0 {
		p.t.Fatalf("mailtap exited %d after SIGTERM, want 0", code)
	}
}

// waitLog waits for a matching line written after mark (a logs.Len()), and
// fails the test on timeout or exit.
func (p *proc) waitLog(mark int, timeout time.Duration, what string, match func(logLine) bool) logLine {
	p.t.Helper()
	l, ok := p.logs.waitFrom(mark, timeout, match)
	if !ok {
		state := "still running; SIGQUIT sent for a goroutine dump, see its log"
		if !p.running() {
			state = fmt.Sprintf("exited: %v", p.err)
		} else {
			p.quit()
		}
		p.t.Fatalf("no log line %s within %s (mailtap %s)", what, timeout, state)
	}
	return l
}

// headless starts `mailtap --headless --log-format json -c cfg` plus extra.
func headless(t *testing.T, cfgPath string, extra ...string) *proc {
	t.Helper()
	return startMailtap(t, runOpts{args: append([]string{"--headless", "--log-format", "json", "-c", cfgPath}, extra...)})
}

// assertNoPanic fails if the process's stderr shows a Go panic or a data race.
func assertNoPanic(t *testing.T, p *proc) {
	t.Helper()
	for _, l := range p.logs.all() {
		if strings.HasPrefix(l.Raw, "panic:") || strings.HasPrefix(l.Raw, "fatal error:") || strings.Contains(l.Raw, "DATA RACE") {
			t.Errorf("mailtap crashed: %s", l.Raw)
		}
	}
}

// ---- the output dir ----

// record is the part of a record v1 the tests look at.
type record struct {
	SchemaVersion int    `json:"schema_version"`
	ID            string `json:"id"`
	Account       string `json:"account"`
	Mailbox       string `json:"mailbox"`
	UIDValidity   uint32 `json:"uid_validity"`
	UID           uint32 `json:"uid"`
	MessageID     string `json:"message_id"`
	Subject       string `json:"subject"`
	Size          int64  `json:"size"`
	Text          string `json:"text"`
	HTML          string `json:"html"`
	Truncated     bool   `json:"truncated"`
	Attachments   []struct {
		Filename    string  `json:"filename"`
		ContentType string  `json:"content_type"`
		Size        int64   `json:"size"`
		SHA256      string  `json:"sha256"`
		SavedAs     *string `json:"saved_as"`
	} `json:"attachments"`
	ParseErrors []string `json:"parse_errors"`

	path string // absolute
	raw  []byte
}

// recordName is <uidvalidity>-<uid %010d>.json.
var recordName = regexp.MustCompile(`^([0-9]+)-([0-9]{10})\.json$`)

// mailboxDir is where the test account's INBOX records go.
func mailboxDir(out string) string { return filepath.Join(out, testAccount, "INBOX") }

// readRecords parses every record in <out>/acct/INBOX and fails the test on
// any file that is not a complete, valid record named after its own
// uidvalidity and uid. Other entries (attachment folders, .eml) are left to
// the callers that expect them.
func readRecords(t *testing.T, out string) []record {
	t.Helper()
	dir := mailboxDir(out)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var recs []record
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".eml") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if !recordName.MatchString(e.Name()) {
			t.Errorf("unexpected file in the mailbox folder: %s", path)
			continue
		}
		if r := parseRecordFile(t, path); r != nil {
			recs = append(recs, *r)
		}
	}
	return recs
}

// parseRecordFile reads one record and checks that it is complete JSON and
// that its id, uid and uid_validity agree with its file name. It reports
// what is wrong with t.Errorf and returns nil.
func parseRecordFile(t *testing.T, path string) *record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		t.Errorf("%s is not a complete JSON record (%d bytes): %v", path, len(b), err)
		return nil
	}
	r.path, r.raw = path, b
	if want := fmt.Sprintf("%d-%010d.json", r.UIDValidity, r.UID); want != filepath.Base(path) {
		t.Errorf("%s holds uid_validity %d uid %d (want file %s)", path, r.UIDValidity, r.UID, want)
	}
	if want := fmt.Sprintf("%s/INBOX/%d/%d", testAccount, r.UIDValidity, r.UID); r.ID != want || r.SchemaVersion != 1 ||
		r.Account != testAccount || r.Mailbox != "INBOX" {
		t.Errorf("%s: id %q account %q mailbox %q schema_version %d, want %q, %q, INBOX, 1",
			path, r.ID, r.Account, r.Mailbox, r.SchemaVersion, want, testAccount)
	}
	return &r
}

// countRecords is the number of record files (no parsing), for polling.
func countRecords(out string) int {
	entries, _ := os.ReadDir(mailboxDir(out))
	n := 0
	for _, e := range entries {
		if recordName.MatchString(e.Name()) {
			n++
		}
	}
	return n
}

// waitRecords polls until at least n records exist.
func waitRecords(t *testing.T, p *proc, out string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for countRecords(out) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records after %s", countRecords(out), n, timeout)
		}
		if p != nil && !p.running() {
			t.Fatalf("mailtap exited (%v) with %d of %d records", p.err, countRecords(out), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readCheckpoint returns INBOX's checkpoint, read with jsonstore's
// accessor; ok is false when there is none yet. A checkpoint that exists
// but does not parse fails the test: it is written atomically.
func readCheckpoint(t *testing.T, out string) (uidValidity, lastUID uint32, ok bool) {
	t.Helper()
	m, err := jsonstore.ReadCheckpoint(out)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := m[jsonstore.CheckpointKey(testAccount, "INBOX")]
	return st.UIDValidity, st.LastUID, ok
}

// assertCheckpointCovered fails unless every UID of uids that is ≤ the
// checkpoint has its record under the checkpoint's uidvalidity: the
// checkpoint never runs ahead of durable records.
func assertCheckpointCovered(t *testing.T, out string, uids []uint32) {
	t.Helper()
	uv, last, ok := readCheckpoint(t, out)
	if !ok {
		return
	}
	missing := 0
	for _, u := range uids {
		if u > last {
			continue
		}
		path := filepath.Join(mailboxDir(out), fmt.Sprintf("%d-%010d.json", uv, u))
		if _, err := os.Stat(path); err != nil {
			if missing < 5 {
				t.Errorf("checkpoint last_uid %d but no record for uid %d: %v", last, u, err)
			}
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("checkpoint ahead of the records: %d UIDs ≤ last_uid %d have no file", missing, last)
	}
}

// assertOnlyRecords walks <out> (outside .mailtap) and fails on anything
// that is not a record, a raw copy, or a saved attachment in its record's
// folder under <out>/acct/INBOX: no temp files where consumers look, no
// file anywhere else.
func assertOnlyRecords(t *testing.T, out string) {
	t.Helper()
	if _, err := os.Stat(out); errors.Is(err, fs.ErrNotExist) {
		return // killed before it made the dir
	}
	recDir := mailboxDir(out)
	attDir := regexp.MustCompile(`^[0-9]+-[0-9]{10}$`)
	eml := regexp.MustCompile(`^[0-9]+-[0-9]{10}\.eml$`)
	err := filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(out, path)
		switch {
		case path == out:
			return nil
		case rel == ".mailtap":
			return fs.SkipDir
		case d.Type()&fs.ModeSymlink != 0:
			t.Errorf("symlink in the output dir: %s", rel)
			return nil
		case d.IsDir():
			if path == filepath.Join(out, testAccount) || path == recDir ||
				(filepath.Dir(path) == recDir && attDir.MatchString(d.Name())) {
				return nil
			}
			t.Errorf("unexpected directory in the output dir: %q", rel)
			return fs.SkipDir
		}
		dir := filepath.Dir(path)
		switch {
		case dir == recDir && (recordName.MatchString(d.Name()) || eml.MatchString(d.Name())):
		case filepath.Dir(dir) == recDir && attDir.MatchString(filepath.Base(dir)):
		default:
			t.Errorf("unexpected file in the output dir: %q", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", out, err)
	}
}

// ---- delivering behind Dovecot's back ----

// maildirDeliver writes raw into the Dovecot account's INBOX maildir (new/)
// the way an MDA does: tmp/ then rename, owned by the mail user. It works
// while Dovecot is stopped, where doveadm save cannot reach the auth
// socket. Dovecot assigns the UID when it next looks at the mailbox.
func maildirDeliver(t *testing.T, dc *testimap.Dovecot, raw []byte) {
	t.Helper()
	// testimap keeps its files beside its log: <dir>/mail/<user> is the
	// account's maildir (mail_location = maildir:<dir>/mail/%u).
	root := filepath.Join(filepath.Dir(dc.LogFile()), "mail", dc.Username())
	uid, gid := nobodyIDs(t, filepath.Dir(root))
	for _, sub := range []string{"", "tmp", "new", "cur"} {
		d := filepath.Join(root, sub)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	name := fmt.Sprintf("%d.M%dP%dQ%d.mailtap-e2e", time.Now().Unix(), time.Now().Nanosecond()/1000, os.Getpid(), maildirSeq.Add(1))
	tmp := filepath.Join(root, "tmp", name)
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(tmp, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(root, "new", name)); err != nil {
		t.Fatal(err)
	}
}

// maildirSeq makes maildir file names unique within the test process.
var maildirSeq atomic.Int64
