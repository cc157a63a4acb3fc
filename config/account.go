package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// RedactedValue is what a secret is replaced with wherever a config is shown.
const RedactedValue = "[redacted]"

// Address is host:port for dialling, with IPv6 literals bracketed.
func (a Account) Address() string {
	return net.JoinHostPort(strings.Trim(a.Host, "[]"), strconv.Itoa(a.Port))
}

// IsLoopback reports whether Host names this machine without a DNS lookup:
// "localhost", 127.0.0.0/8 or ::1. Other names that happen to resolve to
// loopback do not count, since config never touches the network and a
// resolver can lie.
func (a Account) IsLoopback() bool {
	h := strings.TrimSuffix(strings.Trim(a.Host, "[]"), ".")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// BackfillSince splits Backfill into its mode (none, unseen, all or since)
// and, for since, the date (midnight UTC; IMAP SEARCH SINCE compares dates
// only). An unvalidated, invalid value gives mode "" and a zero time.
func (a Account) BackfillSince() (mode string, since time.Time) {
	mode, since, err := parseBackfill(a.Backfill)
	if err != nil {
		return "", time.Time{}
	}
	return mode, since
}

// PasswordSource describes where the password comes from without revealing
// it, e.g. `password_env MAILTAP_PASSWORD` or `password_command "pass" (+2 args)`.
// Command arguments are left out: OAuth helpers take client secrets there.
func (a Account) PasswordSource() string {
	switch set := a.passwordSources(); {
	case len(set) == 0:
		return "none"
	case len(set) > 1:
		return "ambiguous (" + strings.Join(set, ", ") + ")"
	}
	switch {
	case a.Password != "":
		return "password (inline)"
	case a.PasswordEnv != "":
		return "password_env " + safeEnvName(a.PasswordEnv)
	case a.PasswordFile != "":
		return "password_file " + strconv.Quote(a.PasswordFile)
	}
	s := "password_command " + strconv.Quote(a.PasswordCommand[0])
	if n := len(a.PasswordCommand) - 1; n > 0 {
		s += fmt.Sprintf(" (+%d args)", n)
	}
	return s
}

// redacted returns a copy of a with secrets replaced by RedactedValue.
func (a Account) redacted() Account {
	if a.Password != "" {
		a.Password = RedactedValue
	}
	if a.PasswordEnv != "" {
		a.PasswordEnv = safeEnvName(a.PasswordEnv)
	}
	if len(a.PasswordCommand) > 0 {
		cmd := make([]string, len(a.PasswordCommand))
		cmd[0] = a.PasswordCommand[0]
		for i := 1; i < len(cmd); i++ {
			cmd[i] = RedactedValue
		}
		a.PasswordCommand = cmd
	}
	a.Mailboxes = append([]string(nil), a.Mailboxes...)
	if a.Exclude != nil {
		a.Exclude = append([]string(nil), a.Exclude...)
	}
	return a
}

// String is a one-line summary without secrets, for logs and %v.
func (a Account) String() string {
	exclude := ""
	if len(a.Exclude) > 0 {
		exclude = fmt.Sprintf(" exclude=%q", a.Exclude)
	}
	return fmt.Sprintf("%s: %s@%s tls=%s auth=%s %s mailboxes=%q%s backfill=%s",
		a.Name, a.Username, a.Address(), a.TLS, a.Auth, a.PasswordSource(), a.Mailboxes, exclude, a.Backfill)
}

// GoString keeps %#v from printing the password.
func (a Account) GoString() string {
	return "config.Account{" + a.String() + "}"
}

// LogValue makes slog print the account without secrets.
func (a Account) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("name", a.Name),
		slog.String("host", a.Host),
		slog.Int("port", a.Port),
		slog.String("tls", a.TLS),
		slog.String("username", a.Username),
		slog.String("auth", a.Auth),
		slog.String("password_source", a.PasswordSource()),
		slog.String("mailboxes", strings.Join(a.Mailboxes, ",")),
		slog.String("backfill", a.Backfill),
		slog.Int("max_connections", a.MaxConnections),
	}
	if len(a.Exclude) > 0 {
		attrs = append(attrs, slog.String("exclude", strings.Join(a.Exclude, ",")))
	}
	if a.AllowInsecure {
		attrs = append(attrs, slog.Bool("allow_insecure", true))
	}
	if a.TLSSkipVerify {
		attrs = append(attrs, slog.Bool("tls_skip_verify", true))
	}
	if a.CAFile != "" {
		attrs = append(attrs, slog.String("ca_file", a.CAFile))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON writes the account with secrets replaced by RedactedValue, so that
// a config shown as JSON (status page, debug dump, slog's JSON handler on a
// []Account) cannot leak them. Config files are only ever read, never
// written back, so nothing needs the real values in JSON.
func (a Account) MarshalJSON() ([]byte, error) {
	type plain Account // drops the methods, so no recursion
	return json.Marshal(plain(a.redacted()))
}

// Redacted returns a deep copy of c with every secret replaced by RedactedValue.
func (c *Config) Redacted() Config {
	r := *c
	r.Accounts = make([]Account, len(c.Accounts))
	for i, a := range c.Accounts {
		r.Accounts[i] = a.redacted()
	}
	r.HTTP = c.HTTP.redacted()
	r.Sinks = make([]Sink, len(c.Sinks))
	for i, s := range c.Sinks {
		r.Sinks[i] = s.redacted()
	}
	r.fromEnv = nil
	return r
}

func (h HTTP) redacted() HTTP {
	if h.TokenEnv != "" {
		h.TokenEnv = safeEnvName(h.TokenEnv)
	}
	return h
}

// String and GoString keep fmt from printing a token pasted into token_env.
func (h HTTP) String() string {
	return fmt.Sprintf("addr=%q token_env=%s", h.Addr, h.redacted().TokenEnv)
}

func (h HTTP) GoString() string { return "config.HTTP{" + h.String() + "}" }

// MarshalJSON hides a token_env that looks like a pasted token rather than a
// variable name, as Account.MarshalJSON does for password_env.
func (h HTTP) MarshalJSON() ([]byte, error) {
	type plain HTTP
	return json.Marshal(plain(h.redacted()))
}

// LogValue makes slog print the config without secrets; accounts are keyed
// by name.
func (c Config) LogValue() slog.Value {
	accounts := make([]slog.Attr, len(c.Accounts))
	for i, a := range c.Accounts {
		accounts[i] = slog.Attr{Key: a.Name, Value: a.LogValue()}
	}
	return slog.GroupValue(
		slog.String("source", c.Source),
		slog.Attr{Key: "accounts", Value: slog.GroupValue(accounts...)},
		slog.Group("output",
			slog.String("dir", c.Output.Dir),
			slog.String("attachments", c.Output.Attachments),
			slog.Int64("max_body_bytes", c.Output.MaxBodyBytes),
			slog.Bool("save_raw", c.Output.SaveRaw),
			slog.Bool("pretty", c.Output.Pretty)),
		slog.Group("watch",
			slog.Bool("idle", c.Watch.IDLE),
			slog.String("poll_interval", formatDuration(c.Watch.PollInterval.Duration)),
			slog.String("max_backoff", formatDuration(c.Watch.MaxBackoff.Duration)),
			slog.String("idle_refresh", formatDuration(c.Watch.IdleRefresh.Duration)),
			slog.String("response_timeout", formatDuration(c.Watch.ResponseTimeout.Duration))),
		slog.Group("http",
			slog.String("addr", c.HTTP.Addr),
			slog.String("token_env", c.HTTP.redacted().TokenEnv)),
	)
}

// safeEnvName returns an environment variable name for display, or RedactedValue
// when it is not UPPER_CASE and so might be the secret pasted in by mistake.
func safeEnvName(s string) string {
	if !looksLikeEnvName(s) {
		return RedactedValue
	}
	return s
}
