package config

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needs skips the test when a program it runs is missing.
func needs(t *testing.T, progs ...string) {
	t.Helper()
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed", p)
		}
	}
}

// noSecret fails if err mentions any of the secrets.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error contains the secret %q: %v", s, err)
		}
	}
}

func TestSecret_password(t *testing.T) {
	got, err := Account{Name: "a", Password: "inline pw "}.Secret(t.Context())
	if err != nil || got != "inline pw " {
		t.Errorf("Secret = %q, %v", got, err)
	}
}

func TestSecret_passwordEnv(t *testing.T) {
	a := Account{Name: "a", PasswordEnv: "MAILTAP_TEST_SECRET"}

	t.Setenv("MAILTAP_TEST_SECRET", " exact value\n")
	if got, err := a.Secret(t.Context()); err != nil || got != " exact value\n" {
		t.Errorf("Secret = %q, %v; want the value unchanged", got, err)
	}

	t.Setenv("MAILTAP_TEST_SECRET", "")
	_, err := a.Secret(t.Context())
	if err == nil || err.Error() != `account "a": password_env: environment variable "MAILTAP_TEST_SECRET" is empty` {
		t.Errorf("empty: err = %v", err)
	}

	os.Unsetenv("MAILTAP_TEST_SECRET") // t.Setenv restores it afterwards
	_, err = a.Secret(t.Context())
	if err == nil || err.Error() != `account "a": password_env: environment variable "MAILTAP_TEST_SECRET" is not set` {
		t.Errorf("unset: err = %v", err)
	}
}

func TestSecret_passwordEnvHoldingThePassword(t *testing.T) {
	// A user who pasted the password into password_env must not find it in
	// the logs when mailtap reports the "variable" as unset.
	_, err := Account{Name: "a", PasswordEnv: "hunter2"}.Secret(t.Context())
	if err == nil {
		t.Fatal("no error")
	}
	noSecret(t, err, "hunter2")
	if !strings.Contains(err.Error(), "name not shown") {
		t.Errorf("err = %v", err)
	}
}

func TestSecret_passwordFile(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		"s3cret\n":       "s3cret",
		"s3cret\r\n":     "s3cret",
		"s3cret":         "s3cret",
		"  spaced  \n\n": "  spaced  ",
	} {
		p := writeFile(t, dir, "pw", content)
		got, err := Account{Name: "a", PasswordFile: p}.Secret(t.Context())
		if err != nil || got != want {
			t.Errorf("file %q: Secret = %q, %v; want %q", content, got, err, want)
		}
	}

	missing := filepath.Join(dir, "missing")
	_, err := Account{Name: "a", PasswordFile: missing}.Secret(t.Context())
	if !errors.Is(err, os.ErrNotExist) || err.Error() != `account "a": password_file: "`+missing+`": open: no such file or directory` {
		t.Errorf("missing: err = %v", err)
	}

	empty := writeFile(t, dir, "empty", "\n")
	_, err = Account{Name: "a", PasswordFile: empty}.Secret(t.Context())
	if err == nil || !strings.HasSuffix(err.Error(), `"`+empty+`" is empty`) {
		t.Errorf("empty: err = %v", err)
	}

	big := writeFile(t, dir, "big", strings.Repeat("x", maxSecretBytes+1))
	_, err = Account{Name: "a", PasswordFile: big}.Secret(t.Context())
	if err == nil || !strings.Contains(err.Error(), "is larger than 64 KiB") {
		t.Errorf("big: err = %v", err)
	}

	multi := writeFile(t, dir, "multi", "line1-secret\nline2\n")
	_, err = Account{Name: "a", PasswordFile: multi}.Secret(t.Context())
	if err == nil || !strings.HasSuffix(err.Error(), "has more than one line; expected just the password") {
		t.Errorf("multi-line: err = %v", err)
	}
	noSecret(t, err, "line1-secret")

	binary := writeFile(t, dir, "binary", "\x7fELF\x00\x01")
	_, err = Account{Name: "a", PasswordFile: binary}.Secret(t.Context())
	if err == nil || !strings.HasSuffix(err.Error(), "contains NUL bytes; expected just the password") {
		t.Errorf("binary: err = %v", err)
	}

	_, err = Account{Name: "a", PasswordFile: dir}.Secret(t.Context())
	if err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: err = %v", err)
	}
}

func TestSecret_passwordCommand(t *testing.T) {
	needs(t, "printf", "sh")
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"printf", "tok-123\n"}, "tok-123"},
		{[]string{"printf", "  padded\t\n"}, "padded"},
		{[]string{"printf", "first\nuser: me\nurl: x\n"}, "first"}, // pass(1) layout
		{[]string{"printf", "crlf\r\n"}, "crlf"},
		{[]string{"sh", "-c", `echo warning >&2; echo "$0"`, "from-argv"}, "from-argv"}, // stderr ignored on success
	}
	for _, tt := range tests {
		got, err := Account{Name: "a", PasswordCommand: tt.argv}.Secret(t.Context())
		if err != nil || got != tt.want {
			t.Errorf("%q: Secret = %q, %v; want %q", tt.argv, got, err, tt.want)
		}
	}
}

func TestSecret_passwordCommandFailures(t *testing.T) {
	needs(t, "sh", "true")
	tests := []struct {
		name    string
		argv    []string
		want    string // whole error
		secrets []string
	}{
		{"exit status and stderr", []string{"sh", "-c", "echo 'token expired; run oama authorize' >&2; echo more >&2; exit 3"},
			`account "a": password_command: "sh" failed: exit status 3: stderr: token expired; run oama authorize`, nil},
		{"no stderr", []string{"sh", "-c", "exit 1"}, `account "a": password_command: "sh" failed: exit status 1`, nil},
		{"stderr repeats the secret", []string{"sh", "-c", "echo T0p-S3cret; echo cannot store T0p-S3cret >&2; exit 1"},
			`account "a": password_command: "sh" failed: exit status 1: (stderr not shown: it repeats what the command printed on stdout)`, []string{"T0p-S3cret"}},
		{"arguments not shown", []string{"sh", "-c", "exit 2", "--client-secret=CLIENT-SECRET-42"},
			`account "a": password_command: "sh" failed: exit status 2`, []string{"CLIENT-SECRET-42"}},
		{"control characters stripped", []string{"sh", "-c", `printf 'bad\033[2Jnews\n' >&2; exit 1`},
			`account "a": password_command: "sh" failed: exit status 1: stderr: bad[2Jnews`, nil},
		{"killed by signal", []string{"sh", "-c", "kill -9 $$"}, `account "a": password_command: "sh" failed: signal: killed`, nil},
		{"prints nothing", []string{"true"}, `account "a": password_command: "true" exited 0 but printed nothing on the first line of stdout`, nil},
		{"blank first line", []string{"sh", "-c", "echo; echo second"}, `account "a": password_command: "sh" exited 0 but printed nothing on the first line of stdout`, []string{"second"}},
		{"not found", []string{"/nonexistent/helper", "arg-secret"}, `account "a": password_command: "/nonexistent/helper": fork/exec /nonexistent/helper: no such file or directory`, []string{"arg-secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Account{Name: "a", PasswordCommand: tt.argv}.Secret(t.Context())
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n got %v\nwant %s", err, tt.want)
			}
			noSecret(t, err, tt.secrets...)
		})
	}
}

func TestSecret_passwordCommandLongStderr(t *testing.T) {
	needs(t, "sh")
	_, err := Account{Name: "a", PasswordCommand: []string{"sh", "-c", "head -c 5000 /dev/zero | tr '\\0' x >&2; exit 1"}}.Secret(t.Context())
	if err == nil || len(err.Error()) > 300 || !strings.HasSuffix(err.Error(), "x…") {
		t.Errorf("err = %v", err)
	}
}

func TestSecret_passwordCommandHugeStdout(t *testing.T) {
	needs(t, "head")
	_, err := Account{Name: "a", PasswordCommand: []string{"head", "-c", "1000000", "/dev/zero"}}.Secret(t.Context())
	if err == nil || !strings.Contains(err.Error(), "printed more than 64 KiB") {
		t.Errorf("err = %v", err)
	}
	_, err = Account{Name: "a", PasswordCommand: []string{"head", "-c", "10", "/dev/zero"}}.Secret(t.Context())
	if err == nil || !strings.Contains(err.Error(), "printed NUL bytes") {
		t.Errorf("err = %v", err)
	}
}

func TestSecret_passwordCommandTimeout(t *testing.T) {
	needs(t, "sleep", "sh")
	for _, argv := range [][]string{
		{"sleep", "30"},
		// The shell's child keeps stdout open after the shell is killed;
		// WaitDelay must still end the wait.
		{"sh", "-c", "sleep 30; echo late"},
	} {
		start := time.Now()
		_, err := commandSecret(t.Context(), argv, 100*time.Millisecond)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not finish within 100ms") {
			t.Errorf("%q: err = %v", argv, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%q: took %v to give up", argv, d)
		}
	}
}

func TestSecret_passwordCommandCallerCancels(t *testing.T) {
	needs(t, "sleep")
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := Account{Name: "a", PasswordCommand: []string{"sleep", "30"}}.Secret(ctx)
	// The caller's deadline is not the 10 s limit and must not be reported
	// as such.
	if !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "did not finish within") {
		t.Errorf("err = %v", err)
	}
}

func TestSecret_sourceCount(t *testing.T) {
	_, err := Account{Name: "a"}.Secret(t.Context())
	if err == nil || err.Error() != `account "a": password: no password source is set` {
		t.Errorf("none: err = %v", err)
	}
	_, err = Account{Name: "a", Password: "pw-inline", PasswordFile: "/f"}.Secret(t.Context())
	if err == nil || err.Error() != `account "a": password, password_file: more than one password source is set` {
		t.Errorf("two: err = %v", err)
	}
	noSecret(t, err, "pw-inline")
}

func TestCheckSecrets(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good", "pw\n")
	c, p := loadValid(t)
	c.Accounts = []Account{
		{Name: "ok", PasswordFile: good},
		{Name: "broken", PasswordFile: filepath.Join(dir, "missing")},
	}
	err := c.CheckSecrets(t.Context())
	want := p + `: accounts[1].password_file: account "broken": "` + filepath.Join(dir, "missing") + `": open: no such file or directory`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Field != "accounts[1].password_file" || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("errors.As: %#v", ce)
	}

	c.Accounts = c.Accounts[:1]
	if err := c.CheckSecrets(t.Context()); err != nil {
		t.Error(err)
	}
}

func TestHTTPToken(t *testing.T) {
	if tok, err := (HTTP{}).Token(); tok != "" || err != nil {
		t.Errorf("no token_env: %q, %v", tok, err)
	}
	t.Setenv("MAILTAP_TEST_TOKEN", "tkn")
	if tok, err := (HTTP{TokenEnv: "MAILTAP_TEST_TOKEN"}).Token(); tok != "tkn" || err != nil {
		t.Errorf("set: %q, %v", tok, err)
	}
	_, err := (HTTP{TokenEnv: "MAILTAP_TEST_TOKEN_UNSET"}).Token()
	if err == nil || err.Error() != `http.token_env: environment variable "MAILTAP_TEST_TOKEN_UNSET" is not set` {
		t.Errorf("unset: %v", err)
	}
}
