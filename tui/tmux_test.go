package tui

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailtap/internal/testbin"
)

// TestTmux_demo runs the real binary in a real terminal: `mailtap --demo`
// in a detached 100×30 tmux session, read back with capture-pane. It checks
// what no in-process test can: the terminal setup, the alternate screen,
// keys arriving through a pty, logs kept off the screen, and a clean exit.
//
// It needs tmux (CI installs it) and builds the binary from the repo root.
func TestTmux_demo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it under tmux; skipped with -short")
	}
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("MAILTAP_REQUIRE_TMUX") != "" {
			t.Fatal("tmux is not installed (apt-get install tmux) and MAILTAP_REQUIRE_TMUX is set")
		}
		t.Skip("tmux is not installed (apt-get install tmux); skipping the real-terminal test")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mailtap")
	if err := testbin.Build(bin, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")

	// A private server socket and no user config: nothing of the user's
	// tmux is touched or read.
	sock := fmt.Sprintf("mailtap-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	tm := func(args ...string) (string, error) {
		cmd := exec.Command(tmux, append([]string{"-L", sock, "-f", "/dev/null"}, args...)...)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	t.Cleanup(func() { tm("kill-server") })

	// A shell waits for mailtap and records its exit status: tmux itself
	// sometimes leaves an exited pane process unreaped (a zombie), so its
	// pane_dead flag cannot be relied on.
	statusFile := filepath.Join(dir, "status")
	cmdline := fmt.Sprintf("sh -c %s", shellQuote(fmt.Sprintf("env LANG=C.UTF-8 LC_ALL= NO_COLOR= %s --demo --out %s; echo $? > %s",
		shellQuote(bin), shellQuote(out), shellQuote(statusFile))))
	if o, err := tm("new-session", "-d", "-s", "demo", "-x", "100", "-y", "30", cmdline); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, o)
	}
	// Keep the pane after exit to read the exit status.
	if o, err := tm("set-option", "-t", "demo", "remain-on-exit", "on"); err != nil {
		t.Fatalf("tmux set-option: %v\n%s", err, o)
	}
	capture := func() string {
		s, err := tm("capture-pane", "-p", "-t", "demo")
		if err != nil {
			t.Fatalf("capture-pane: %v\n%s", err, s)
		}
		return s
	}
	waitPane := func(what string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			s := capture()
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not show within 30s; screen:\n%s\nlog:\n%s", what, s, readLog(out))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// A captured mail row: the list's position indicator ("1/5") shows
	// only when there are rows.
	position := regexp.MustCompile(`(?m)^ \d+/\d+`)
	screen := waitPane("a captured mail", func(s string) bool {
		return strings.Contains(s, "captured") && position.MatchString(s)
	})
	t.Logf("screen with mail:\n%s", screen)
	lines := strings.Split(strings.TrimRight(screen, "\n"), "\n")
	if len(lines) > 30 {
		t.Errorf("%d lines on a 30-line terminal", len(lines))
	}
	for i, l := range lines {
		if n := len([]rune(l)); n > 100 {
			t.Errorf("line %d has %d characters on a 100-column terminal: %q", i, n, l)
		}
	}
	for _, leak := range []string{"level=", "msg=", "time="} {
		if strings.Contains(screen, leak) {
			t.Errorf("a log line reached the screen (%q):\n%s", leak, screen)
		}
	}

	if o, err := tm("send-keys", "-t", "demo", "p"); err != nil {
		t.Fatalf("send-keys: %v\n%s", err, o)
	}
	screen = waitPane("a paused mailbox", func(s string) bool {
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, " demo/") && strings.Contains(l, " paused ") {
				return true
			}
		}
		return false
	})
	t.Logf("screen after p:\n%s", screen)

	if o, err := tm("send-keys", "-t", "demo", "q"); err != nil {
		t.Fatalf("send-keys: %v\n%s", err, o)
	}
	status := ""
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(statusFile); err == nil && strings.HasSuffix(string(b), "\n") {
			status = strings.TrimSpace(string(b))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailtap did not exit after q; screen:\n%s", capture())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status != "0" {
		t.Errorf("mailtap exited with status/signal %q; screen:\n%s\nlog:\n%s", status, capture(), readLog(out))
	}
	if n := countRecords(t, out); n == 0 {
		t.Errorf("no records under %s", out)
	}
	// Back on the shell's screen, mailtap says what it did and where.
	final := capture()
	if !strings.Contains(final, "captured this run; records are in "+out) || !strings.Contains(final, "mailtap.log") {
		t.Errorf("after quitting, the terminal does not say how many mails were captured and where:\n%s", final)
	}
	if !strings.Contains(readLog(out), "mailtap starting") {
		t.Errorf("the log file lacks the start line:\n%s", readLog(out))
	}
}

func readLog(out string) string {
	b, _ := os.ReadFile(filepath.Join(out, ".mailtap", "mailtap.log"))
	return string(b)
}

// repoRoot is the directory of go.mod.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
