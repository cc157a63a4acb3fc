package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func withSinks(sinks string) string {
	return `{"accounts": [{"name": "work", "host": "imap.example.com", "username": "u", "password_env": "MAILTAP_TEST_PW"}], "sinks": ` + sinks + `}`
}

func loadString(t *testing.T, content string) (*Config, error) {
	t.Helper()
	return Load(writeFile(t, t.TempDir(), "config.json", content))
}

func TestSinks_loadAndDefaults(t *testing.T) {
	c, err := loadString(t, withSinks(`[
		{"name": "tickets", "type": "webhook", "url": "https://hooks.example.com/mail",
		 "secret_env": "MAILTAP_WEBHOOK_SECRET", "headers": {"X-Team": "support", "Authorization": "Bearer s3cr3t"},
		 "secret_headers": ["authorization"], "mailboxes": ["work/INBOX"], "timeout": "5s", "concurrency": 4,
		 "max_attempts": 0, "max_backoff": "10m"},
		{"name": "index", "type": "command", "command": ["./bin/index-mail"], "timeout": "30s"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	w, cmd := c.Sinks[0], c.Sinks[1]
	if w.Headers["X-Team"] != "support" || w.Timeout.Duration != 5*time.Second || w.Concurrency != 4 || w.MaxBodyBytes != DefaultSinkMaxBody {
		t.Errorf("webhook = %+v", w)
	}
	if cmd.Concurrency != 1 || cmd.MaxBackoff.Duration != DefaultSinkMaxBackoff || cmd.Timeout.Duration != 30*time.Second {
		t.Errorf("command defaults = %+v", cmd)
	}
	if !w.IsSecretHeader("Authorization") || w.IsSecretHeader("X-Team") {
		t.Error("IsSecretHeader")
	}
	if got := w.HTTPHeader().Get("Authorization"); got != "Bearer s3cr3t" {
		t.Errorf("HTTPHeader lost the value: %q", got)
	}
}

// Secret header values never show in any printed form of the config.
func TestSinks_secretsNotShown(t *testing.T) {
	c, err := loadString(t, withSinks(`[{"name": "t", "type": "webhook", "url": "https://h.example/hooks/pathtok3n?key=tok3n",
		"headers": {"Authorization": "Bearer s3cr3t"}, "secret_headers": ["Authorization"], "secret_env": "abcDEFsecret"}]`))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Sinks[0]
	js, _ := json.Marshal(s)
	red, _ := json.Marshal(c.Redacted())
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "sink", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%#v", s), fmt.Sprintf("%+v", s), string(js), string(red), logged.String(), s.Target()} {
		for _, secret := range []string{"s3cr3t", "tok3n", "abcDEFsecret", "hooks"} {
			if strings.Contains(out, secret) {
				t.Errorf("%q shown in %s", secret, out)
			}
		}
	}
}

func TestSinks_errorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ sinks, field, msg string }{
		{`[{"name": "a", "type": "webhook", "url": "https://h/x", "retries": 3}]`, "sinks[0]", `unknown field "retries"`},
		{`[{"name": "a", "type": "webhook", "url": "https://h/x", "headers": {"X": 1}}]`, "sinks[0].headers.X", "must be a string"},
		{`[{"name": "a", "type": "webhook", "url": "https://h/x", "headers": ["X"]}]`, "sinks[0].headers", "must be an object"},
		{`[{"type": "webhook", "url": "https://h/x"}]`, "sinks[0].name", "must not be empty"},
		{`[{"name": "../x", "type": "webhook", "url": "https://h/x"}]`, "sinks[0].name", "letters, digits"},
		{`[{"name": "a", "type": "webhook", "url": "https://h/x"}, {"name": "A", "type": "webhook", "url": "https://h/y"}]`, "sinks[1].name", "already used"},
		{`[{"name": "a", "type": "mail"}]`, "sinks[0].type", "must be one of webhook, command"},
		{`[{"name": "a"}]`, "sinks[0].type", "must be set"},
		{`[{"name": "a", "type": "webhook"}]`, "sinks[0].url", "must be set"},
		{`[{"name": "a", "type": "webhook", "url": "ftp://h/x"}]`, "sinks[0].url", "http:// or https://"},
		{`[{"name": "a", "type": "webhook", "url": "https://u:p@h/x"}]`, "sinks[0].url", "must not carry a user"},
		{`[{"name": "a", "type": "webhook", "url": "https://h/x", "secret_env": "has space"}]`, "sinks[0].secret_env", "name of an environment variable"},
		{`[{"name": "a", "type": "webhook", "url": "https://h/x", "secret_headers": ["Authorization"]}]`, "sinks[0].secret_headers[0]", "not in headers"},
		{`[{"name": "a", "type": "webhook", "url": "https://h/x", "headers": {"Idempotency-Key": "x"}}]`, "sinks[0].headers.Idempotency-Key", "set by mailtap"},
		{`[{"name": "a", "type": "webhook", "url": "https://h/x", "headers": {"X": "a\nb"}}]`, "sinks[0].headers.X", "line breaks"},
		{`[{"name": "a", "type": "webhook", "url": "https://h/x", "ca_file": "/nonexistent/ca.pem"}]`, "sinks[0].ca_file", "no such file"},
		{`[{"name": "a", "type": "webhook", "url": "https://h/x", "command": ["x"]}]`, "sinks[0].command", "for command sinks"},
		{`[{"name": "a", "type": "command"}]`, "sinks[0].command", "must list the program"},
		{`[{"name": "a", "type": "command", "command": [""]}]`, "sinks[0].command", "first element"},
		{`[{"name": "a", "type": "command", "command": ["x"], "url": "https://h/x"}]`, "sinks[0].url", "for webhook sinks"},
		{`[{"name": "a", "type": "command", "command": ["x"], "mailboxes": ["INBOX"]}]`, "sinks[0].mailboxes[0]", "account/mailbox"},
		{`[{"name": "a", "type": "command", "command": ["x"], "concurrency": 100}]`, "sinks[0].concurrency", "1..64"},
		{`[{"name": "a", "type": "command", "command": ["x"], "max_attempts": -1}]`, "sinks[0].max_attempts", "retry forever"},
		{`[{"name": "a", "type": "command", "command": ["x"], "max_backoff": "10ms"}]`, "sinks[0].max_backoff", "at least 1s"},
		{`[{"name": "a", "type": "command", "command": ["x"], "timeout": 10}]`, "sinks[0].timeout", "duration string"},
		{`[{"name": "a", "type": "command", "command": ["x"], "max_body_bytes": 10}]`, "sinks[0].max_body_bytes", "at least 4096"},
	} {
		t.Run(tc.field+" "+tc.msg, func(t *testing.T) {
			c, err := loadString(t, withSinks(tc.sinks))
			if err == nil {
				err = c.Validate()
			}
			if err == nil {
				t.Fatal("accepted")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("not a *config.Error: %v", err)
			}
			if !strings.Contains(err.Error(), tc.field+": ") || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not name %s with %q", err, tc.field, tc.msg)
			}
		})
	}
}

func TestSinks_checkSecrets(t *testing.T) {
	c, err := loadString(t, withSinks(`[{"name": "a", "type": "webhook", "url": "https://h/x", "secret_env": "MAILTAP_TEST_SINK_SECRET"}]`))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MAILTAP_TEST_PW", "pw")
	t.Setenv("MAILTAP_TEST_SINK_SECRET", "")
	if err := c.CheckSecrets(t.Context()); err == nil || !strings.Contains(err.Error(), "sinks[0].secret_env") {
		t.Errorf("empty secret: %v", err)
	}
	t.Setenv("MAILTAP_TEST_SINK_SECRET", "k")
	if err := c.CheckSecrets(t.Context()); err != nil {
		t.Error(err)
	}
	if s, err := c.Sinks[0].Secret(); s != "k" || err != nil {
		t.Errorf("Secret = %q, %v", s, err)
	}
}

func TestMailboxPattern(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		match   []string
		nomatch []string
	}{
		{"work/INBOX", []string{"work/INBOX"}, []string{"work/INBOX/sub", "home/INBOX", "work/INBOXX"}},
		{"work/*", []string{"work/INBOX", "work/Sent"}, []string{"work/Lists/go", "home/INBOX"}},
		{"work/**", []string{"work/INBOX", "work/Lists/go"}, []string{"home/INBOX"}},
		{"*/INBOX", []string{"work/INBOX", "home/INBOX"}, []string{"work/Lists/INBOX"}},
		{"**", []string{"a/b", "a/b/c"}, nil},
		{"work/Lists.?o", []string{"work/Lists.go"}, []string{"work/Lists/go"}},
	} {
		p, err := CompileMailboxPattern(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range tc.match {
			if !p.Match(m) {
				t.Errorf("%q does not match %q", tc.pattern, m)
			}
		}
		for _, m := range tc.nomatch {
			if p.Match(m) {
				t.Errorf("%q matches %q", tc.pattern, m)
			}
		}
	}
}
