package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mailtap/sshui"
)

// needOpenSSH skips the test when the OpenSSH client (ssh, ssh-keygen) is
// not installed, or fails it when MAILTAP_REQUIRE_SSH is set (CI), as
// sshui's tests do.
func needOpenSSH(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("MAILTAP_REQUIRE_SSH") != "" {
				t.Fatalf("%s is not installed (apt-get install openssh-client) and MAILTAP_REQUIRE_SSH is set", tool)
			}
			t.Skipf("%s is not installed (apt-get install openssh-client); skipping", tool)
		}
	}
}

// The real program, headless on the demo, with --ssh and the key file
// from MAILTAP_SSH_AUTHORIZED_KEYS (the Docker way): the real OpenSSH
// client with a key made here gets the status JSON (exit 0) and, for an
// unknown command, one line and exit 2; the host key fingerprint in the
// log is what ssh-keygen says of the key the client checked; SIGTERM
// stops the program cleanly.
func TestCLI_headlessSSH(t *testing.T) {
	needOpenSSH(t)
	bin := mailtapBinary(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	if o, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "operator", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, o)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")

	cmd := exec.Command(bin, "--demo", "--headless", "--log-format", "json", "--http", "127.0.0.1:0", "--ssh", "127.0.0.1:0")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MAILTAP_OUT="+out, "MAILTAP_SSH_AUTHORIZED_KEYS="+authorized)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var log bytes.Buffer
	var logMu sync.Mutex
	monitor := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			var v map[string]any
			if json.Unmarshal(sc.Bytes(), &v) == nil && v["msg"] == "ssh monitor" {
				monitor <- v
			}
		}
		exited <- cmd.Wait()
	}()
	logged := func() string { logMu.Lock(); defer logMu.Unlock(); return log.String() }
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("mailtap's log:\n%s", logged())
		}
	})

	var line map[string]any
	select {
	case line = <-monitor:
	case err := <-exited:
		stopped = true
		t.Fatalf("mailtap exited before serving SSH: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("no \"ssh monitor\" line in the log within 60s")
	}
	addr, _ := line["addr"].(string)
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("ssh monitor addr %q", addr)
	}

	// The host key the client is to trust, and what ssh-keygen says of it.
	hostPub, err := exec.Command("ssh-keygen", "-y", "-f", filepath.Join(out, ".mailtap", sshui.HostKeyName)).Output()
	if err != nil {
		t.Fatalf("ssh-keygen -y of the generated host key: %v", err)
	}
	hostPubFile := filepath.Join(dir, "host_key.pub")
	if err := os.WriteFile(hostPubFile, hostPub, 0o600); err != nil {
		t.Fatal(err)
	}
	lf, err := exec.Command("ssh-keygen", "-lf", hostPubFile).Output()
	if err != nil {
		t.Fatalf("ssh-keygen -lf: %v", err)
	}
	// "256 SHA256:… comment (ED25519)"
	fields := strings.Fields(string(lf))
	if len(fields) < 2 || line["host_key_fingerprint"] != fields[1] {
		t.Errorf("logged host_key_fingerprint %q; ssh-keygen -lf says %q", line["host_key_fingerprint"], strings.TrimSpace(string(lf)))
	}
	known := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(known, []byte(fmt.Sprintf("[127.0.0.1]:%s %s", port, hostPub)), 0o600); err != nil {
		t.Fatal(err)
	}

	ssh := func(command string) (stdout, stderr string, code int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, "ssh", "-F", "/dev/null", "-p", port, "-i", key, "-o", "IdentitiesOnly=yes",
			"-o", "UserKnownHostsFile="+known, "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
			"-o", "IdentityAgent=none", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20",
			"operator@127.0.0.1", command)
		var o, e strings.Builder
		c.Stdout, c.Stderr = &o, &e
		err := c.Run()
		if code = c.ProcessState.ExitCode(); err != nil && code < 0 {
			t.Fatalf("ssh %s: %v", command, err)
		}
		return o.String(), e.String(), code
	}

	stdout, errOut, code := ssh("status")
	var status struct {
		Mailboxes []json.RawMessage `json:"mailboxes"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &status) != nil || status.Mailboxes == nil {
		t.Errorf("ssh … status: exit %d, stdout %q, stderr %q; want exit 0 and the status JSON", code, stdout, errOut)
	}
	stdout, errOut, code = ssh("frobnicate")
	if code != 2 || stdout != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("ssh … frobnicate: exit %d, stdout %q, stderr %q; want exit 2 and one line", code, stdout, errOut)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("mailtap after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("mailtap did not stop within 30s of SIGTERM")
	}
	if !strings.Contains(logged(), "mailtap stopped cleanly") {
		t.Error("no clean stop in the log")
	}
}
