package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mailtap/internal/testbin"
)

// The CLI as a user meets it: the built binary, its stdout, stderr and
// exit status.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func mailtapBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mailtap-cli-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "mailtap")
		binErr = testbin.Build(binPath, nil)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// runBinary runs mailtap to completion (30 s at most) in dir.
func runBinary(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mailtapBinary(t), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run mailtap %q: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// validConfig is a config that passes validation, for a server that is
// not there.
func validConfig(t *testing.T, out string) string {
	t.Helper()
	cfg := &testbin.Config{
		Accounts: []testbin.Account{{Name: "a", Host: "127.0.0.1", Port: 1, TLS: "none", Username: "u", Password: "pw-never-shown",
			Auth: "plain", Mailboxes: []string{"INBOX"}, Backfill: "none"}},
		Output: testbin.Output{Dir: out, Attachments: "metadata", MaxBodyBytes: 1 << 20},
		Watch:  testbin.Watch{IDLE: true, PollInterval: "60s", MaxBackoff: "1s", IdleRefresh: "5m", ResponseTimeout: "2s"},
	}
	return cfg.Write(t)
}

var singleDashLong = regexp.MustCompile(`(^|[\s,])-[a-z][a-z-]+`)

func TestCLI_help(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"check", "--help"}} {
		r := runBinary(t, nil, args...)
		if r.code != 0 || r.stderr != "" {
			t.Errorf("%q: exit %d, stderr %q; want 0 and help on stdout", args, r.code, r.stderr)
		}
		for _, want := range []string{"mailtap check", "mailtap healthcheck", "-c, --config PATH", "--out DIR", "--http ADDR",
			"--log-format text|json", "--log-level debug|info|warn|error", "--version", "--headless", "--demo", "--once", "Exit codes"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%q: help lacks %q:\n%s", args, want, r.stdout)
			}
		}
		if m := singleDashLong.FindString(r.stdout); m != "" {
			t.Errorf("%q: help shows a flag in Go's single-dash form %q:\n%s", args, m, r.stdout)
		}
	}
}

// The README's usage block and --help list the same flags.
func TestCLI_readmeListsTheFlags(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, _ := strings.Cut(string(readme), "## Using it\n\n```\n")
	block, _, _ = strings.Cut(block, "```")
	flagRE := regexp.MustCompile(`--[a-z][a-z-]+`)
	inReadme := map[string]bool{}
	for _, f := range flagRE.FindAllString(block, -1) {
		inReadme[f] = true
	}
	help := runBinary(t, nil, "--help").stdout
	inHelp := map[string]bool{}
	for _, f := range flagRE.FindAllString(help, -1) {
		inHelp[f] = true
	}
	for f := range inHelp {
		if !inReadme[f] {
			t.Errorf("--help lists %s; the README's usage block does not", f)
		}
	}
	for f := range inReadme {
		if !inHelp[f] {
			t.Errorf("the README's usage block lists %s; --help does not", f)
		}
	}
}

func TestCLI_version(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		r := runBinary(t, nil, args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "mailtap ") {
			t.Errorf("%q: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
}

func TestCLI_usageErrorsOnce(t *testing.T) {
	r := runBinary(t, nil, "--nope")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code != 2 || len(lines) != 1 || !strings.Contains(lines[0], "unknown flag --nope") || !strings.Contains(lines[0], "--help") {
		t.Errorf("--nope: exit %d, stderr:\n%s\nwant exit 2 and one line naming --nope and --help", r.code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("--nope printed on stdout:\n%s", r.stdout)
	}
	r = runBinary(t, nil, "--config")
	if r.code != 2 || !strings.Contains(r.stderr, "--config needs a value") {
		t.Errorf("--config without a value: exit %d, stderr %q", r.code, r.stderr)
	}
}

// With --log-format json, whatever stops mailtap is one JSON line.
func TestCLI_jsonErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--headless", "--log-format", "json", "-c", filepath.Join(dir, "missing.json")},
		{"--log-format", "json", "--nope"},
		{"--headless", "--log-format=json", "frobnicate"},
	} {
		r := runBinary(t, nil, args...)
		if r.code != 2 {
			t.Errorf("%q: exit %d, want 2", args, r.code)
		}
		for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
			var v map[string]any
			if err := json.Unmarshal([]byte(l), &v); err != nil || v["level"] != "ERROR" {
				t.Errorf("%q: stderr line is not a JSON error log line: %q", args, l)
			}
		}
	}
}

func TestCLI_outIsAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "records")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runBinary(t, nil, "--headless", "-c", validConfig(t, t.TempDir()), "--out", file)
	if r.code != 2 || !strings.Contains(r.stderr, "is a file, not a directory") {
		t.Errorf("exit %d, stderr:\n%s\nwant 2 and \"is a file, not a directory\"", r.code, r.stderr)
	}
}

func TestCLI_busyHTTPPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := runBinary(t, nil, "--headless", "-c", validConfig(t, t.TempDir()), "--http", ln.Addr().String())
	if r.code != 2 || !strings.Contains(r.stderr, ln.Addr().String()+" is already in use") {
		t.Errorf("exit %d, stderr:\n%s\nwant 2 and a line saying the address is in use", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "mailtap starting") {
		t.Errorf("mailtap said it was starting before it found the port busy:\n%s", r.stderr)
	}
}

func TestCLI_healthcheckSaysSoOnce(t *testing.T) {
	r := runBinary(t, nil, "healthcheck", "--http", "127.0.0.1:1")
	if r.code != 1 || strings.Count(r.stderr, "healthcheck") != 1 {
		t.Errorf("exit %d, stderr %q: want 1 and \"healthcheck\" once", r.code, r.stderr)
	}
}

// check is a report for people: on stdout, and no log lines.
func TestCLI_checkReportOnly(t *testing.T) {
	r := runBinary(t, []string{"MAILTAP_OUT=" + t.TempDir()}, "check", "-c", validConfig(t, t.TempDir()))
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL a/INBOX") || !strings.Contains(r.stdout, "config ") {
		t.Errorf("exit %d, stdout:\n%s", r.code, r.stdout)
	}
	if !strings.Contains(r.stdout, "note: output.dir") {
		t.Errorf("the report does not say where output.dir came from:\n%s", r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("check wrote log lines to stderr:\n%s", r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "pw-never-shown") {
		t.Error("check printed the password")
	}
}

func TestCLI_checkDemo(t *testing.T) {
	r := runBinary(t, nil, "check", "--demo")
	if r.code != 0 || !strings.Contains(r.stdout, "ok   demo/INBOX") {
		t.Errorf("check --demo: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// startDemo runs `mailtap --demo --headless` and returns the status page
// URL from its log.
func startDemo(t *testing.T, env []string, args ...string) (url string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cmd := exec.CommandContext(ctx, mailtapBinary(t), append([]string{"--demo", "--headless", "--log-format", "json"}, args...)...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(append(os.Environ(), "MAILTAP_OUT="+t.TempDir()), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop = func() {
		cancel()
		cmd.Wait()
	}
	t.Cleanup(stop)
	found := make(chan string, 1)
	var log bytes.Buffer
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			var v map[string]any
			if json.Unmarshal(sc.Bytes(), &v) == nil && v["msg"] == "status page" {
				found <- v["url"].(string)
			}
		}
		close(found)
	}()
	select {
	case u, ok := <-found:
		if ok {
			return u, stop
		}
	case <-time.After(30 * time.Second):
	}
	mu.Lock()
	defer mu.Unlock()
	t.Fatalf("no status page in the demo's log:\n%s", log.String())
	return "", nil
}

// --demo applies MAILTAP_HTTP and MAILTAP_HTTP_TOKEN like any run.
func TestCLI_demoAppliesEnv(t *testing.T) {
	url, _ := startDemo(t, []string{"MAILTAP_HTTP=127.0.0.1:0", "MAILTAP_HTTP_TOKEN=demo-token-7c1"})
	resp, err := http.Post(url+"api/pause", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /api/pause without the token set in MAILTAP_HTTP_TOKEN = %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", url+"api/pause", nil)
	req.Header.Set("Authorization", "Bearer demo-token-7c1")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST /api/pause with the token = %d, want 200", resp.StatusCode)
	}

	// Not loopback, with the token in the environment: it starts.
	startDemo(t, []string{"MAILTAP_HTTP_TOKEN=demo-token-7c1"}, "--http", "0.0.0.0:0")
}
