package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// Sink is one entry of "sinks": a program that receives every committed
// record (package sinks delivers them).
type Sink struct {
	Name string `json:"name"`
	Type string `json:"type"` // webhook | command

	// webhook
	URL           string            `json:"url,omitempty"`
	SecretEnv     string            `json:"secret_env,omitempty"` // HMAC-SHA256 key for Mailtap-Signature
	Headers       map[string]string `json:"headers,omitempty"`
	SecretHeaders []string          `json:"secret_headers,omitempty"` // header names whose values are never shown
	TLSSkipVerify bool              `json:"tls_skip_verify,omitempty"`
	CAFile        string            `json:"ca_file,omitempty"`

	// command
	Command []string `json:"command,omitempty"` // argv, no shell

	Mailboxes   []string `json:"mailboxes,omitempty"` // account/mailbox patterns; empty: all
	Timeout     Duration `json:"timeout"`
	Concurrency int      `json:"concurrency"`
	MaxAttempts int      `json:"max_attempts"` // 0: retry forever
	MaxBackoff  Duration `json:"max_backoff"`
	// MaxBodyBytes caps the envelope: a larger record is sent as its path
	// and summary instead, for the receiver to read from the output dir.
	MaxBodyBytes int64 `json:"max_body_bytes"`
}

// Values of Sink.Type.
const (
	SinkWebhook = "webhook"
	SinkCommand = "command"
)

// Sink defaults.
const (
	DefaultWebhookTimeout = 10 * time.Second
	DefaultCommandTimeout = 30 * time.Second
	DefaultSinkMaxBackoff = 10 * time.Minute
	DefaultSinkMaxBody    = 1 << 20
	maxSinkConcurrency    = 64
)

func (s *Sink) applyDefaults() {
	if s.Timeout.Duration == 0 {
		s.Timeout.Duration = DefaultWebhookTimeout
		if s.Type == SinkCommand {
			s.Timeout.Duration = DefaultCommandTimeout
		}
	}
	if s.Concurrency == 0 {
		s.Concurrency = 1
	}
	if s.MaxBackoff.Duration == 0 {
		s.MaxBackoff.Duration = DefaultSinkMaxBackoff
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = DefaultSinkMaxBody
	}
}

var sinkNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (v *validator) sinks() {
	names := map[string]int{}
	for i := range v.c.Sinks {
		s := &v.c.Sinks[i]
		p := fmt.Sprintf("sinks[%d]", i)
		switch {
		case s.Name == "":
			v.add(p+".name", "must not be empty")
		case !sinkNameRE.MatchString(s.Name):
			// It names a directory under <out>/.mailtap/sinks.
			v.add(p+".name", "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (got %q)", s.Name)
		default:
			key := strings.ToLower(s.Name)
			if j, dup := names[key]; dup {
				v.add(p+".name", "%q is already used by sinks[%d]", s.Name, j)
			} else {
				names[key] = i
			}
		}
		webhookOnly := map[string]bool{"url": s.URL != "", "secret_env": s.SecretEnv != "", "headers": len(s.Headers) > 0,
			"secret_headers": len(s.SecretHeaders) > 0, "tls_skip_verify": s.TLSSkipVerify, "ca_file": s.CAFile != ""}
		switch s.Type {
		case SinkWebhook:
			v.webhook(p, s)
			if len(s.Command) > 0 {
				v.add(p+".command", "is for command sinks; this sink has type webhook")
			}
		case SinkCommand:
			switch {
			case len(s.Command) == 0:
				v.add(p+".command", "must list the program and its arguments, like [\"./bin/index-mail\"]")
			case s.Command[0] == "":
				v.add(p+".command", "the first element must be the program to run")
			}
			for _, f := range []string{"url", "secret_env", "headers", "secret_headers", "tls_skip_verify", "ca_file"} {
				if webhookOnly[f] {
					v.add(p+"."+f, "is for webhook sinks; this sink has type command")
				}
			}
		case "":
			v.add(p+".type", "must be set: webhook or command")
		default:
			v.add(p+".type", "must be one of webhook, command (got %q)", s.Type)
		}
		for j, m := range s.Mailboxes {
			if _, err := CompileMailboxPattern(m); err != nil {
				v.add(fmt.Sprintf("%s.mailboxes[%d]", p, j), "%v", err)
			}
		}
		if s.Timeout.Duration <= 0 {
			v.add(p+".timeout", "must be greater than 0")
		}
		if s.Concurrency < 1 || s.Concurrency > maxSinkConcurrency {
			v.add(p+".concurrency", "must be 1..%d (got %d)", maxSinkConcurrency, s.Concurrency)
		}
		if s.MaxAttempts < 0 {
			v.add(p+".max_attempts", "must be 0 (retry forever) or more (got %d)", s.MaxAttempts)
		}
		if s.MaxBackoff.Duration < time.Second {
			v.add(p+".max_backoff", "must be at least 1s (got %s)", formatDuration(s.MaxBackoff.Duration))
		}
		if s.MaxBodyBytes < 4096 {
			v.add(p+".max_body_bytes", "must be at least 4096, room for the summary that replaces a large record (got %d)", s.MaxBodyBytes)
		}
	}
}

func (v *validator) webhook(p string, s *Sink) {
	u, err := url.Parse(s.URL)
	switch {
	case s.URL == "":
		v.add(p+".url", "must be set for a webhook sink")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		// The URL may carry a token: never echo it.
		v.add(p+".url", "must be an http:// or https:// URL with a host")
	case u.User != nil:
		v.add(p+".url", "must not carry a user or password; use headers with secret_headers")
	}
	if s.SecretEnv != "" && !validEnvName(s.SecretEnv) {
		v.add(p+".secret_env", "must be the name of an environment variable (letters, digits, _), not the secret itself")
	}
	for name, val := range s.Headers {
		hp := p + ".headers." + name
		switch {
		case name == "" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) }):
			v.add(hp, "is not a valid HTTP header name")
		case strings.ContainsAny(val, "\r\n\x00"):
			v.add(hp, "must not contain line breaks")
		case reservedHeader(name):
			v.add(hp, "is set by mailtap itself and cannot be overridden")
		}
	}
	for j, h := range s.SecretHeaders {
		found := false
		for name := range s.Headers {
			found = found || strings.EqualFold(name, h)
		}
		if !found {
			v.add(fmt.Sprintf("%s.secret_headers[%d]", p, j), "names %q, which is not in headers", h)
		}
	}
	if s.CAFile != "" {
		if st, err := os.Stat(s.CAFile); err != nil {
			v.add(p+".ca_file", "%v", err)
		} else if st.IsDir() {
			v.add(p+".ca_file", "%q is a directory, not a PEM file", s.CAFile)
		}
	}
}

func reservedHeader(name string) bool {
	switch textproto.CanonicalMIMEHeaderKey(name) {
	case "Content-Type", "Content-Length", "Idempotency-Key", "Mailtap-Signature", "Mailtap-Attempt", "Host", "Transfer-Encoding", "Connection":
		return true
	}
	return false
}

// MailboxPattern matches "account/mailbox" names: * is any run of
// characters within one level (no /), ** any run at all, ? one character.
type MailboxPattern struct{ re *regexp.Regexp }

// CompileMailboxPattern checks and compiles one entry of sinks[].mailboxes.
func CompileMailboxPattern(p string) (MailboxPattern, error) {
	if strings.TrimSpace(p) == "" {
		return MailboxPattern{}, fmt.Errorf("must not be empty")
	}
	if !strings.Contains(p, "/") && !strings.Contains(p, "**") {
		return MailboxPattern{}, fmt.Errorf("must be account/mailbox, like \"work/INBOX\" or \"work/*\" (got %q)", p)
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '*' && i+1 < len(p) && p[i+1] == '*':
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return MailboxPattern{}, fmt.Errorf("bad pattern %q: %v", p, err)
	}
	return MailboxPattern{re: re}, nil
}

// Match reports whether "account/mailbox" matches.
func (m MailboxPattern) Match(accountMailbox string) bool { return m.re.MatchString(accountMailbox) }

// Secret returns the HMAC key from secret_env: "" when none is configured,
// an error when the variable is unset or empty.
func (s Sink) Secret() (string, error) {
	if s.SecretEnv == "" {
		return "", nil
	}
	v, err := envSecret(s.SecretEnv, "secret_env")
	if err != nil {
		return "", fmt.Errorf("sink %q: %w", s.Name, err)
	}
	return v, nil
}

// IsSecretHeader reports whether header name is listed in secret_headers.
func (s Sink) IsSecretHeader(name string) bool {
	for _, h := range s.SecretHeaders {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// HTTPHeader returns the configured headers, values included.
func (s Sink) HTTPHeader() http.Header {
	h := http.Header{}
	for k, v := range s.Headers {
		h.Set(k, v)
	}
	return h
}

func (s Sink) redacted() Sink {
	if len(s.Headers) > 0 {
		h := make(map[string]string, len(s.Headers))
		for k, v := range s.Headers {
			if s.IsSecretHeader(k) {
				v = RedactedValue
			}
			h[k] = v
		}
		s.Headers = h
	}
	if s.SecretEnv != "" {
		s.SecretEnv = safeEnvName(s.SecretEnv)
	}
	s.URL = redactURL(s.URL)
	return s
}

// redactURL keeps the scheme and host of a webhook URL: the path and query
// often are the secret (Slack, Discord and many more put the token there).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return RedactedValue
	}
	r := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		r += "/…"
	}
	return r
}

// String, GoString, MarshalJSON and LogValue never show secret header
// values, a pasted secret in secret_env, or the URL's query.
func (s Sink) String() string {
	r := s.redacted()
	return fmt.Sprintf("sink %s (%s %s)", r.Name, r.Type, r.target())
}

func (s Sink) GoString() string { return "config.Sink{" + s.String() + "}" }

func (s Sink) MarshalJSON() ([]byte, error) {
	type plain Sink
	return json.Marshal(plain(s.redacted()))
}

func (s Sink) LogValue() slog.Value {
	r := s.redacted()
	return slog.GroupValue(slog.String("name", r.Name), slog.String("type", r.Type), slog.String("target", r.target()))
}

// Target is what the sink delivers to, fit for logs and status pages: the
// URL's scheme and host (its path and query may hold a token), or the
// program.
func (s Sink) Target() string { return s.redacted().target() }

func (s Sink) target() string {
	if s.Type == SinkCommand {
		if len(s.Command) > 0 {
			return s.Command[0]
		}
		return ""
	}
	return s.URL
}

// checkSinkSecrets is CheckSecrets for sinks.
func (c *Config) checkSinkSecrets(v *validator) {
	for i, s := range c.Sinks {
		if _, err := s.Secret(); err != nil {
			v.add(fmt.Sprintf("sinks[%d].secret_env", i), "%v", err)
		}
	}
}
