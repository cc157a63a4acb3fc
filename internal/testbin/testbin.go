// Package testbin serves the tests that drive the built mailtap binary as a
// user would (e2e, bench, imagetest, the tmux test): it builds the binary
// from the module root, writes the binary's config file, and captures a
// process's output safely while other goroutines read it.
package testbin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// ModuleRoot is the directory of mailtap's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not inside the mailtap module")
	}
	return filepath.Dir(gomod), nil
}

// Build runs `go build FLAGS -o out .` in the module root, with env added to
// the environment (e.g. CGO_ENABLED=0).
func Build(out string, env []string, flags ...string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", append(append([]string{"build"}, flags...), "-o", out, ".")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(flags, " "), err, msg)
	}
	return nil
}

// SyncBuffer is a bytes.Buffer that a process (or a logger) writes while
// the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Config mirrors the config file format (design.md §3) for tests to write.
// It is not config.Config because that type redacts passwords when
// marshalled, by design, and tests need the password in the file.
type Config struct {
	Accounts []Account `json:"accounts"`
	Output   Output    `json:"output"`
	Watch    Watch     `json:"watch"`
	Sinks    []Sink    `json:"sinks,omitempty"`
}

// Sink is one entry of "sinks", as the config file has it.
type Sink map[string]any

// Account is one entry of "accounts".
type Account struct {
	Name        string `json:"name"`
	Host        string `json:"host"`
	Port        int    `json:"port"`
	TLS         string `json:"tls"`
	Username    string `json:"username"`
	Password    string `json:"password,omitempty"`
	PasswordEnv string `json:"password_env,omitempty"`
	// PasswordCommand is password_command (argv, no shell).
	PasswordCommand []string `json:"password_command,omitempty"`
	Auth            string   `json:"auth"`
	Mailboxes       []string `json:"mailboxes"`
	Backfill        string   `json:"backfill"`
	CAFile          string   `json:"ca_file,omitempty"`
	MaxConnections  int      `json:"max_connections,omitempty"`
}

// Output is "output".
type Output struct {
	Dir          string `json:"dir"`
	Attachments  string `json:"attachments"`
	MaxBodyBytes int64  `json:"max_body_bytes"`
	SaveRaw      bool   `json:"save_raw"`
	Pretty       bool   `json:"pretty"`
}

// Watch is "watch"; durations as Go duration strings.
type Watch struct {
	IDLE            bool   `json:"idle"`
	Notify          *bool  `json:"notify,omitempty"` // nil: mailtap's default
	PollInterval    string `json:"poll_interval"`
	MaxBackoff      string `json:"max_backoff"`
	IdleRefresh     string `json:"idle_refresh"`
	ResponseTimeout string `json:"response_timeout"`
}

// WriteFile stores the config at path (0600: it holds a password).
func (c *Config) WriteFile(path string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// Write stores the config in a new temp dir of t and returns its path.
func (c *Config) Write(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := c.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}
