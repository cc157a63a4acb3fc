package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const (
	inlineSecret = "inline-Pa55w0rd"
	cmdArgSecret = "client-secret-XYZ"
)

func secretConfig(t *testing.T) *Config {
	t.Helper()
	c, _ := loadValid(t)
	c.Accounts = []Account{
		{Name: "inline", Host: "h", Port: 993, TLS: "implicit", Username: "u", Password: inlineSecret, Auth: "plain", Mailboxes: []string{"INBOX"}, Backfill: "none"},
		{Name: "cmd", Host: "h", Port: 993, TLS: "implicit", Username: "u", PasswordCommand: []string{"oauth-helper", "--secret", cmdArgSecret}, Auth: "xoauth2", Mailboxes: []string{"INBOX"}, Backfill: "none"},
		{Name: "pasted", Host: "h", Port: 993, TLS: "implicit", Username: "u", PasswordEnv: "pastedSecret9", Auth: "plain", Mailboxes: []string{"INBOX"}, Backfill: "none"},
	}
	c.HTTP.TokenEnv = "pastedT0ken"
	return c
}

// TestRedaction_everyWayOfPrinting prints a config with secrets in every
// way a caller is likely to, and checks that no secret comes out.
func TestRedaction_everyWayOfPrinting(t *testing.T) {
	c := secretConfig(t)
	secrets := []string{inlineSecret, cmdArgSecret, "pastedSecret9", "pastedT0ken"}

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		outputs = append(outputs,
			fmt.Sprintf(verb, c.Accounts[0]), fmt.Sprintf(verb, &c.Accounts[1]),
			fmt.Sprintf(verb, c.Accounts), fmt.Sprintf(verb, c), fmt.Sprintf(verb, *c))
	}
	for _, a := range c.Accounts {
		outputs = append(outputs, a.String(), a.PasswordSource())
	}
	for _, v := range []any{c, *c, c.Accounts, c.Accounts[0], c.Redacted()} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, string(b))
	}
	for _, newHandler := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(newHandler(&buf))
		log.Info("config", "config", c, "value", *c, "accounts", c.Accounts)
		for _, a := range c.Accounts {
			log.Info("account", "account", a, "ptr", &a)
		}
		outputs = append(outputs, buf.String())
	}

	for _, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("secret %q printed in:\n%s", s, out)
			}
		}
	}

	// The redaction must be visible and useful, not an empty print.
	all := strings.Join(outputs, "\n")
	for _, want := range []string{`password_command "oauth-helper" (+2 args)`, "password (inline)", RedactedValue, "password_source=", `"username":"u"`} {
		if !strings.Contains(all, want) {
			t.Errorf("no output contains %q", want)
		}
	}
}

func TestRedacted_copiesDeeply(t *testing.T) {
	c := secretConfig(t)
	r := c.Redacted()
	if r.Accounts[0].Password != RedactedValue || r.Accounts[1].PasswordCommand[2] != RedactedValue || r.Accounts[1].PasswordCommand[0] != "oauth-helper" {
		t.Errorf("Redacted() = %+v", r.Accounts)
	}
	r.Accounts[1].Mailboxes[0] = "changed"
	if c.Accounts[0].Password != inlineSecret || c.Accounts[1].PasswordCommand[2] != cmdArgSecret || c.Accounts[1].Mailboxes[0] != "INBOX" {
		t.Error("Redacted() changed the original")
	}
	// The real secret is still there for the code that logs in.
	if got, err := c.Accounts[0].Secret(t.Context()); err != nil || got != inlineSecret {
		t.Errorf("Secret = %q, %v", got, err)
	}
}

func TestLogValue_fields(t *testing.T) {
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "account", Account{
		Name: "n", Host: "h", Port: 143, TLS: "starttls", Username: "u", PasswordEnv: "PW", Auth: "login",
		Mailboxes: []string{"INBOX", "Sent"}, Backfill: "all", TLSSkipVerify: true, MaxConnections: 3,
	})
	var got struct {
		Account map[string]any `json:"account"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name": "n", "host": "h", "port": float64(143), "tls": "starttls", "username": "u", "auth": "login",
		"password_source": "password_env PW", "mailboxes": "INBOX,Sent", "backfill": "all", "tls_skip_verify": true,
		"max_connections": float64(3),
	}
	if fmt.Sprint(got.Account) != fmt.Sprint(want) {
		t.Errorf("logged\n%v\nwant\n%v", got.Account, want)
	}
}
