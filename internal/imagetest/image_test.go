package imagetest

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailtap/config"
	"mailtap/internal/testbin"
	"mailtap/internal/testimap"
	"mailtap/jsonstore"
	"mailtap/record"
	"mailtap/statusweb"
	"mailtap/watcher"
)

const binaryEnv = "MAILTAP_IMAGE_BINARY"

var (
	mailtapBin string
	buildErr   error
)

func TestMain(m *testing.M) {
	flag.Parse()
	var tmp string
	switch {
	case os.Getenv(binaryEnv) != "":
		mailtapBin = os.Getenv(binaryEnv)
	case testing.Short():
		buildErr = errors.New("building mailtap takes a while; skipped with -short")
	default:
		tmp, buildErr = os.MkdirTemp("", "mailtap-image-")
		if buildErr == nil {
			mailtapBin = filepath.Join(tmp, "mailtap")
			buildErr = buildLikeDockerfile(mailtapBin)
		}
	}
	code := m.Run()
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}

func binary(t *testing.T) string {
	t.Helper()
	if mailtapBin == "" && testing.Short() {
		t.Skip(buildErr)
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return mailtapBin
}

// ---- the Dockerfile ----

// instruction is one Dockerfile instruction with continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, …
	args string
}

func parseDockerfile() ([]instruction, error) {
	root, err := testbin.ModuleRoot()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return nil, err
	}
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	return out, nil
}

// stages splits instructions at each FROM.
func stages(ins []instruction) [][]instruction {
	var st [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			st = append(st, nil)
		}
		if len(st) > 0 {
			st[len(st)-1] = append(st[len(st)-1], in)
		}
	}
	return st
}

var goBuildRE = regexp.MustCompile(`CGO_ENABLED=0 .*go build (.+) -o /out/mailtap \.$`)

// buildArgs returns the flags of the Dockerfile's `go build`, with
// ${VERSION} replaced by version.
func buildArgs(version string) ([]string, error) {
	ins, err := parseDockerfile()
	if err != nil {
		return nil, err
	}
	for _, in := range ins {
		if m := goBuildRE.FindStringSubmatch(in.args); in.cmd == "RUN" && m != nil {
			args, err := shellWords(strings.ReplaceAll(m[1], "${VERSION}", version))
			if err != nil {
				return nil, fmt.Errorf("Dockerfile go build line: %w", err)
			}
			return args, nil
		}
	}
	return nil, errors.New("Dockerfile: no RUN with CGO_ENABLED=0 … go build … -o /out/mailtap .")
}

// shellWords splits s like sh does for plain and double-quoted words (all
// the Dockerfile's build line uses).
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unbalanced quote in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

func buildLikeDockerfile(out string) error {
	args, err := buildArgs("test")
	if err != nil {
		return err
	}
	return testbin.Build(out, []string{"CGO_ENABLED=0"}, args...)
}

func TestDockerfile_contract(t *testing.T) {
	ins, err := parseDockerfile()
	if err != nil {
		t.Fatal(err)
	}
	st := stages(ins)
	if len(st) < 2 {
		t.Fatalf("Dockerfile has %d stage(s); want a build stage and a runtime stage", len(st))
	}
	if from := st[0][0].args; !strings.Contains(from, "golang:") {
		t.Errorf("build stage FROM %s; want the official Go image", from)
	}
	final := st[len(st)-1]
	has := func(cmd, args string) bool {
		return slices.ContainsFunc(final, func(in instruction) bool { return in.cmd == cmd && in.args == args })
	}
	want := []instruction{
		{"FROM", "gcr.io/distroless/static-debian12:nonroot"},
		{"VOLUME", "/data"},
		{"EXPOSE", "8025"},
		{"EXPOSE", "2222"}, // the SSH monitor (sshui)
		{"ENTRYPOINT", `["/mailtap","--headless"]`},
		{"COPY", "--from=build /out/mailtap /mailtap"},
	}
	for _, w := range want {
		if !has(w.cmd, w.args) {
			t.Errorf("runtime stage lacks %s %s", w.cmd, w.args)
		}
	}
	var env, health, user string
	for _, in := range final {
		switch in.cmd {
		case "ENV":
			env += " " + in.args
		case "HEALTHCHECK":
			health = in.args
		case "USER":
			user = in.args
		case "CMD":
			t.Errorf("runtime stage has CMD %s: flags there would override a mounted config's http.addr", in.args)
		}
	}
	if !strings.HasSuffix(health, `CMD ["/mailtap","healthcheck"]`) {
		t.Errorf("HEALTHCHECK %q", health)
	}
	if !strings.Contains(env, "MAILTAP_OUT=/data") {
		t.Errorf("ENV lacks MAILTAP_OUT=/data: %q", env)
	}
	if user != "65532:65532" && user != "nonroot" && user != "nonroot:nonroot" {
		t.Errorf("USER %q; want the distroless nonroot user", user)
	}

	args, err := buildArgs("v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	wantArgs := []string{"-trimpath", "-ldflags", "-s -w -X main.version=v1.2.3"}
	if !slices.Equal(args, wantArgs) {
		t.Errorf("go build flags %q, want %q", args, wantArgs)
	}
}

// ---- the binary ----

func TestBinary_static(t *testing.T) {
	bin := binary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("program header %s: the binary is dynamically linked (it would not run on distroless/static)", p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		t.Errorf("needs shared libraries %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("symbol table present: -ldflags -s was not applied")
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("mailtap --version: %v", err)
	}
	if got := strings.TrimSpace(string(out)); mailtapBin == os.Getenv(binaryEnv) {
		t.Logf("prebuilt binary reports %q", got)
	} else if got != "mailtap test" {
		t.Errorf("mailtap --version = %q; -X main.version=test was not applied", got)
	}
}

// env is a clean environment: no config file can be found (HOME and the
// working directory are empty temp dirs) and no MAILTAP_* leaks in.
func env(t *testing.T, extra ...string) ([]string, string) {
	t.Helper()
	dir := t.TempDir()
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, extra...), dir
}

// run runs mailtap to completion and returns its exit code and stderr.
func run(t *testing.T, environ []string, dir string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Env, cmd.Dir = environ, dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode(), stderr.String()
	default:
		t.Fatalf("mailtap %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		return -1, ""
	}
}

// sick reports a wedged session loop.
type sick struct{ *watcher.Manager }

func (sick) Healthy() (bool, string) { return false, "default/INBOX: session loop silent for 3m0s" }

// statusServer runs a status server in this process, in front of a real
// (not running) watcher, and returns its address.
func statusServer(t *testing.T, healthy bool) string {
	t.Helper()
	mem := testimap.StartMem(t)
	out := t.TempDir()
	cfg := config.Defaults()
	cfg.Accounts = []config.Account{{Name: "default", Host: mem.Host(), Port: mem.Port(), TLS: config.TLSNone,
		Username: mem.Username(), Password: mem.Password(), Auth: config.AuthPlain,
		Mailboxes: []string{"INBOX"}, Backfill: config.BackfillNone}}
	cfg.Output.Dir = out
	store, err := jsonstore.Open(out, jsonstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var w statusweb.Watcher = watcher.New(cfg, store, nil)
	if !healthy {
		w = sick{w.(*watcher.Manager)}
	}
	srv, err := statusweb.New(w, statusweb.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return srv.Addr()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestBinary_healthcheck(t *testing.T) {
	binary(t)
	live := statusServer(t, true)
	wedged := statusServer(t, false)
	absent := freeAddr(t)
	_, port, _ := net.SplitHostPort(live)

	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want int
	}{
		{"flag", []string{"healthcheck", "--http", live}, nil, 0},
		{"port only", []string{"healthcheck", "--http", ":" + port}, nil, 0},
		// The image's HEALTHCHECK passes no flag: MAILTAP_HTTP says where.
		{"env", []string{"healthcheck"}, []string{"MAILTAP_HTTP=" + live}, 0},
		{"wildcard bind", []string{"healthcheck"}, []string{"MAILTAP_HTTP=0.0.0.0:" + port}, 0},
		{"absent", []string{"healthcheck", "--http", absent}, nil, 1},
		{"unhealthy", []string{"healthcheck", "--http", wedged}, nil, 1},
		{"default addr, nothing there", []string{"healthcheck"}, nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			environ, dir := env(t, tc.env...)
			code, stderr := run(t, environ, dir, tc.args...)
			if tc.want == -1 {
				// 127.0.0.1:8025 may be taken on a developer machine; only
				// say what happened.
				t.Logf("exit %d: %s", code, strings.TrimSpace(stderr))
				return
			}
			if code != tc.want {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.want, stderr)
			}
			if tc.want != 0 && !strings.Contains(stderr, "healthcheck") {
				t.Errorf("stderr does not say what failed: %q", stderr)
			}
			if tc.name == "unhealthy" && !strings.Contains(stderr, "silent for 3m0s") {
				t.Errorf("stderr lacks the reason: %q", stderr)
			}
		})
	}
}

// proc is a running mailtap.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *testbin.SyncBuffer
	done   chan struct{}
	err    error
}

func start(t *testing.T, environ []string, dir string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(binary(t), args...), stderr: &testbin.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Env, p.cmd.Dir, p.cmd.Stderr = environ, dir, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("mailtap stderr:\n%s", p.stderr)
		}
	})
	return p
}

// stop sends SIGTERM and expects exit 0 within 10 s.
func (p *proc) stop() {
	p.t.Helper()
	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Fatal("mailtap did not exit within 10 s of SIGTERM")
	}
	if p.err != nil {
		p.t.Fatalf("exit after SIGTERM: %v", p.err)
	}
	p.t.Logf("SIGTERM → exit 0 in %s", time.Since(sent).Round(time.Millisecond))
}

// eventually polls cond for up to 15 s, failing early if mailtap exits.
func (p *proc) eventually(what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		select {
		case <-p.done:
			p.t.Fatalf("mailtap exited (%v) while waiting for %s", p.err, what)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func records(t *testing.T, dir string) map[string]record.Record {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	out := map[string]record.Record{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var r record.Record
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[r.Subject] = r
	}
	return out
}

// status sends method to url (with a bearer token if not empty) and returns
// the status code, 0 if nothing answered.
func status(method, url, token string) int {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The container's way of running: no config file, everything from
// MAILTAP_* variables, records in MAILTAP_OUT, status server for the
// HEALTHCHECK on MAILTAP_HTTP.
func TestBinary_headlessFromEnv(t *testing.T) {
	binary(t)
	// A password that cannot occur by chance, to look for it in the log.
	mem := testimap.StartMem(t, testimap.WithCredentials("user", "imap-secret-4b7a"))
	mem.Deliver(t, "INBOX", testimap.Msg("before start", 1))
	httpAddr := freeAddr(t)
	out := filepath.Join(t.TempDir(), "data")
	environ, dir := env(t,
		"MAILTAP_HOST="+mem.Host(),
		fmt.Sprintf("MAILTAP_PORT=%d", mem.Port()),
		"MAILTAP_TLS=none",
		"MAILTAP_USERNAME="+mem.Username(),
		"MAILTAP_PASSWORD="+mem.Password(),
		"MAILTAP_BACKFILL=all",
		"MAILTAP_OUT="+out,
		"MAILTAP_HTTP="+httpAddr,
	)
	p := start(t, environ, dir, "--headless", "--log-format", "json")
	inbox := filepath.Join(out, "default", "INBOX")
	p.eventually("the backfilled record", func() bool { _, ok := records(t, inbox)["before start"]; return ok })
	mem.Deliver(t, "INBOX", testimap.Msg("while running", 2))
	p.eventually("the new record", func() bool { _, ok := records(t, inbox)["while running"]; return ok })
	r := records(t, inbox)["while running"]
	if r.SchemaVersion != 1 || r.Account != "default" || r.Mailbox != "INBOX" || r.UID != 2 {
		t.Errorf("record = %+v", r)
	}

	p.eventually("readyz 200", func() bool { return status("GET", "http://"+httpAddr+"/readyz", "") == http.StatusOK })
	hcEnv, hcDir := env(t, "MAILTAP_HTTP="+httpAddr)
	if code, stderr := run(t, hcEnv, hcDir, "healthcheck"); code != 0 {
		t.Errorf("healthcheck against the running mailtap: exit %d: %s", code, stderr)
	}
	if strings.Contains(p.stderr.String(), mem.Password()) {
		t.Error("the password appears in the log")
	}
	p.stop()
}

// A status server reachable from other machines needs a token: without one
// mailtap refuses to start (exit 2, naming http.token_env); with
// MAILTAP_HTTP_TOKEN the control API wants it.
func TestBinary_openBindNeedsToken(t *testing.T) {
	binary(t)
	mem := testimap.StartMem(t)
	_, port, _ := net.SplitHostPort(freeAddr(t))
	base := []string{
		"MAILTAP_HOST=" + mem.Host(),
		fmt.Sprintf("MAILTAP_PORT=%d", mem.Port()),
		"MAILTAP_TLS=none",
		"MAILTAP_USERNAME=" + mem.Username(),
		"MAILTAP_PASSWORD=" + mem.Password(),
		"MAILTAP_HTTP=0.0.0.0:" + port,
	}
	environ, dir := env(t, append(base, "MAILTAP_OUT="+t.TempDir())...)
	code, stderr := run(t, environ, dir, "--headless")
	if code != 2 || !strings.Contains(stderr, "http.token_env") {
		t.Fatalf("without a token: exit %d, stderr %q; want 2 naming http.token_env", code, stderr)
	}

	const token = "image-test-token-77"
	environ, dir = env(t, append(base, "MAILTAP_OUT="+t.TempDir(), "MAILTAP_HTTP_TOKEN="+token)...)
	p := start(t, environ, dir, "--headless")
	url := "http://127.0.0.1:" + port
	p.eventually("readyz 200", func() bool { return status("GET", url+"/readyz", "") == http.StatusOK })
	if got := status("POST", url+"/api/pause", ""); got != http.StatusUnauthorized {
		t.Errorf("POST /api/pause without the token = %d, want 401", got)
	}
	if got := status("POST", url+"/api/pause", token); got != http.StatusOK {
		t.Errorf("POST /api/pause with the token = %d, want 200", got)
	}
	if strings.Contains(p.stderr.String(), token) {
		t.Error("the token appears in the log")
	}
	p.stop()
}
