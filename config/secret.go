package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
	"unicode"
)

const (
	// secretCommandTimeout bounds password_command: a helper waiting on a
	// prompt nobody will answer must not hang the watcher.
	secretCommandTimeout = 10 * time.Second
	// maxSecretBytes bounds what is read from a password file or command;
	// a password_file pointing at the wrong file should fail, not fill memory.
	maxSecretBytes = 64 << 10
	// maxStderrLine bounds the diagnostic quoted from a failing command.
	maxStderrLine = 200
)

var errSecretTimeout = errors.New("password_command timed out")

// Secret returns the account's password (or OAuth2 token, for xoauth2 and
// oauthbearer) from its one password source:
//
//   - password: the value itself;
//   - password_env: the variable's value, which must be set and non-empty;
//   - password_file: the file's content without trailing newlines (Docker
//     secrets end in one);
//   - password_command: the first line of the program's stdout, trimmed. The
//     argv runs without a shell, stdin empty, environment inherited, killed
//     after 10s or when ctx ends. Only the first line counts, as with
//     `pass show`, which prints the password first and metadata below it.
//
// Call it at each login, not once: tokens from a command expire. Errors name
// the account, the field, the variable or path, and for a command its exit
// status and the first line of its stderr; they never contain the secret.
func (a Account) Secret(ctx context.Context) (string, error) {
	s, field, err := a.resolveSecret(ctx)
	if err != nil {
		return "", fmt.Errorf("account %q: %s: %w", a.Name, field, err)
	}
	return s, nil
}

// resolveSecret returns the secret, or the field it failed on and an error
// that does not repeat the field.
func (a Account) resolveSecret(ctx context.Context) (secret, field string, err error) {
	switch set := a.passwordSources(); len(set) {
	case 0:
		return "", "password", errors.New("no password source is set")
	case 1:
	default:
		return "", strings.Join(set, ", "), errors.New("more than one password source is set")
	}
	switch {
	case a.Password != "":
		return a.Password, "password", nil
	case a.PasswordEnv != "":
		s, err := envSecret(a.PasswordEnv, "password_env")
		return s, "password_env", err
	case a.PasswordFile != "":
		s, err := fileSecret(a.PasswordFile)
		return s, "password_file", err
	}
	s, err := commandSecret(ctx, a.PasswordCommand, secretCommandTimeout)
	return s, "password_command", err
}

func envSecret(name, field string) (string, error) {
	v, ok := os.LookupEnv(name)
	switch {
	case !ok:
		return "", fmt.Errorf("environment variable %s is not set", envNameForMessage(field, name))
	case v == "":
		return "", fmt.Errorf("environment variable %s is empty", envNameForMessage(field, name))
	}
	return v, nil
}

func fileSecret(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%q: %w", path, unwrapPathError(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
	if err != nil {
		return "", fmt.Errorf("%q: %w", path, unwrapPathError(err))
	}
	if len(b) > maxSecretBytes {
		return "", fmt.Errorf("%q is larger than %d KiB; is it the right file?", path, maxSecretBytes>>10)
	}
	s := strings.TrimRight(string(b), "\r\n")
	switch {
	case s == "":
		return "", fmt.Errorf("%q is empty", path)
	case strings.ContainsAny(s, "\r\n"):
		return "", fmt.Errorf("%q has more than one line; expected just the password", path)
	case strings.ContainsRune(s, 0):
		// SASL PLAIN separates fields with NUL; this is the wrong file.
		return "", fmt.Errorf("%q contains NUL bytes; expected just the password", path)
	}
	return s, nil
}

func commandSecret(ctx context.Context, argv []string, timeout time.Duration) (string, error) {
	if len(argv) == 0 || argv[0] == "" {
		return "", errors.New("no program to run")
	}
	// Only the program is named in errors: arguments of OAuth helpers can
	// carry client secrets.
	prog := fmt.Sprintf("%q", argv[0])

	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errSecretTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	stdout := &capBuffer{max: maxSecretBytes}
	stderr := &capBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A helper that forks a child holding stdout open would otherwise keep
	// Wait blocked after the kill.
	cmd.WaitDelay = time.Second
	err := cmd.Run()

	if ctxErr := ctx.Err(); ctxErr != nil {
		if context.Cause(ctx) == errSecretTimeout {
			return "", fmt.Errorf("%s did not finish within %s: %w", prog, timeout, ctxErr)
		}
		return "", fmt.Errorf("%s: %w", prog, ctxErr)
	}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return "", fmt.Errorf("%s: %w", prog, err)
		}
		msg := fmt.Sprintf("%s failed: %s", prog, ee.ProcessState)
		if line := stderrLine(stderr.Bytes(), stdout.Bytes()); line != "" {
			msg += ": " + line
		}
		return "", errors.New(msg)
	}
	if stdout.overflow {
		return "", fmt.Errorf("%s printed more than %d KiB on stdout; expected one line", prog, maxSecretBytes>>10)
	}
	line, _, _ := strings.Cut(string(stdout.Bytes()), "\n")
	secret := strings.TrimSpace(line)
	switch {
	case secret == "":
		return "", fmt.Errorf("%s exited 0 but printed nothing on the first line of stdout", prog)
	case strings.ContainsRune(secret, 0):
		return "", fmt.Errorf("%s printed NUL bytes; expected a password or token", prog)
	}
	return secret, nil
}

// stderrLine picks the first non-blank line of a failed command's stderr for
// an error message: control characters removed, shortened, and replaced
// entirely if it contains anything the command printed on stdout, which may
// be the secret.
func stderrLine(stderr, stdout []byte) string {
	var line string
	for l := range strings.Lines(string(stderr)) {
		if l = strings.TrimSpace(l); l != "" {
			line = l
			break
		}
	}
	if line == "" {
		return ""
	}
	for l := range strings.Lines(string(stdout)) {
		if l = strings.TrimSpace(l); l != "" && strings.Contains(line, l) {
			return "(stderr not shown: it repeats what the command printed on stdout)"
		}
	}
	line = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, line)
	if len(line) > maxStderrLine {
		line = strings.ToValidUTF8(line[:maxStderrLine], "") + "…"
	}
	return "stderr: " + line
}

// capBuffer keeps the first max bytes written and notes whether there were
// more, while still accepting everything so the writer never blocks. The
// buffer is a named field, not embedded: an embedded bytes.Buffer would lend
// capBuffer its ReadFrom, and io.Copy would use that and bypass the cap.
type capBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.overflow = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *capBuffer) Bytes() []byte { return b.buf.Bytes() }

// CheckSecrets resolves every account's secret once and discards it, so that
// startup and `mailtap check` report a missing variable, an unreadable file
// or a failing command before any connection is tried. Problems are *Error
// values naming the field (joined with errors.Join).
func (c *Config) CheckSecrets(ctx context.Context) error {
	v := &validator{c: c}
	for i, a := range c.Accounts {
		if _, field, err := a.resolveSecret(ctx); err != nil {
			v.add(fmt.Sprintf("accounts[%d].%s", i, field), "account %q: %v", a.Name, err)
			v.errs[len(v.errs)-1].(*Error).Err = err
		}
	}
	c.checkSinkSecrets(v)
	return errors.Join(v.errs...)
}

// Token returns the bearer token for the status server's control API from
// the variable named by token_env: "" when token_env is empty (no token
// required), an error when the variable is unset or empty.
func (h HTTP) Token() (string, error) {
	if h.TokenEnv == "" {
		return "", nil
	}
	t, err := envSecret(h.TokenEnv, "token_env")
	if err != nil {
		return "", fmt.Errorf("http.token_env: %w", err)
	}
	return t, nil
}
