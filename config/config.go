// Package config owns mailtap's JSON configuration: loading, defaults,
// MAILTAP_* environment overrides, validation that names the offending field
// and file, and resolution of secrets (password, password_env, password_file,
// password_command). It never touches the network.
//
// main uses it like this:
//
//	cfg, notes, err := config.Resolve(flagConfig, os.Getenv) // file or env, validated
//	for _, n := range notes { log.Info("config: " + n) }      // where each value came from
//	var ce *config.Error
//	if errors.As(err, &ce) { /* print err, exit 2 */ }
//	err = cfg.CheckSecrets(ctx) // optional fail-fast; watcher calls Account.Secret at each login
//
// Secrets are kept out of every way a Config or Account is printed: fmt,
// slog (LogValue) and JSON all show the password source, never the value.
package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Config is the whole configuration file (design.md §3).
type Config struct {
	Accounts []Account `json:"accounts"`
	Output   Output    `json:"output"`
	Watch    Watch     `json:"watch"`
	HTTP     HTTP      `json:"http"`
	Sinks    []Sink    `json:"sinks,omitempty"` // sinks.go
	SSH      SSH       `json:"ssh"`

	// Source says where the config came from (a file path, or "environment");
	// it is used in error messages and never serialised.
	Source string `json:"-"`

	// fromEnv maps a field path ("output.dir", "accounts[0].port") to the
	// environment variable that set it, so that validation errors and the
	// startup log can say where a value came from.
	fromEnv map[string]string
}

// Account is one IMAP login and the mailboxes watched through it.
type Account struct {
	Name     string `json:"name"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	TLS      string `json:"tls"` // implicit | starttls | none
	Username string `json:"username"`

	// Exactly one password source.
	Password        string   `json:"password,omitempty"`
	PasswordEnv     string   `json:"password_env,omitempty"`
	PasswordFile    string   `json:"password_file,omitempty"`
	PasswordCommand []string `json:"password_command,omitempty"`

	Auth string `json:"auth"` // plain | login | xoauth2 | oauthbearer

	// Mailboxes says what to watch: literal names, LIST patterns with * and
	// %, and special-use names such as \Sent (see EntryKindOf).
	// Omitted, it is ["INBOX"]. Exclude takes the same entries; a mailbox
	// it matches is never watched, whatever Mailboxes says.
	Mailboxes []string `json:"mailboxes"`
	Exclude   []string `json:"exclude,omitempty"`

	Backfill string `json:"backfill"` // none | unseen | all | since:YYYY-MM-DD
	// MaxConnections caps the account's IMAP connections (default
	// DefaultMaxConnections); 0 in a file means the default.
	MaxConnections int    `json:"max_connections,omitempty"`
	AllowInsecure  bool   `json:"allow_insecure,omitempty"`
	TLSSkipVerify  bool   `json:"tls_skip_verify,omitempty"`
	CAFile         string `json:"ca_file,omitempty"`
}

// Output says where and how records are written.
type Output struct {
	Dir          string `json:"dir"`
	Attachments  string `json:"attachments"` // metadata | save
	MaxBodyBytes int64  `json:"max_body_bytes"`
	SaveRaw      bool   `json:"save_raw"`
	Pretty       bool   `json:"pretty"`
}

// Watch tunes the IMAP sessions. Durations are Go duration strings in JSON.
type Watch struct {
	IDLE bool `json:"idle"`
	// Notify lets an account with several mailboxes watch them all on one
	// connection where the server has NOTIFY (RFC 5465).
	Notify          bool     `json:"notify"`
	PollInterval    Duration `json:"poll_interval"`
	MaxBackoff      Duration `json:"max_backoff"`
	IdleRefresh     Duration `json:"idle_refresh"`
	ResponseTimeout Duration `json:"response_timeout"`
}

// HTTP configures the optional status web server.
type HTTP struct {
	Addr     string `json:"addr"`
	TokenEnv string `json:"token_env"`
}

// DefaultMaxConnections is an account's connection budget when the config
// sets none: Gmail allows 15 per account and Dovecot 10 per user and IP by
// default, shared with the user's phone and laptop; 5 leaves them room
// while giving INBOX and three more mailboxes push of their own.
const DefaultMaxConnections = 5

// MaxConnectionsLimit is the most max_connections may ask for.
const MaxConnectionsLimit = 100

// Duration is a time.Duration that reads and writes as "60s" in JSON.
//
// Only duration strings are accepted. A bare number is refused rather than
// guessed at: Go encodes time.Duration as nanoseconds while people mean
// seconds, and a config that silently polls every 60ns is worse than an error.
type Duration struct{ time.Duration }

// Defaults returns the configuration used for everything a file or the
// environment leaves out. It has no accounts; per-account defaults (port from
// tls, tls, auth, mailboxes, backfill) are filled in by Load and FromEnv,
// because the right port depends on the tls the account chose.
func Defaults() *Config {
	return &Config{
		Output: Output{
			Dir:          "./mail-json",
			Attachments:  "metadata",
			MaxBodyBytes: 1 << 20,
			Pretty:       true,
		},
		Watch: Watch{
			IDLE:            true,
			Notify:          true,
			PollInterval:    Duration{60 * time.Second},
			MaxBackoff:      Duration{5 * time.Minute},
			IdleRefresh:     Duration{5 * time.Minute},
			ResponseTimeout: Duration{30 * time.Second},
		},
	}
}

// applyDefaults fills the per-account fields left empty. A port of 0 counts
// as unset, like an absent one: 0 is never a valid IMAP port.
func (a *Account) applyDefaults() {
	if a.TLS == "" {
		a.TLS = TLSImplicit
	}
	if a.Port == 0 {
		if a.TLS == TLSStartTLS || a.TLS == TLSNone {
			a.Port = 143
		} else {
			a.Port = 993
		}
	}
	if a.Auth == "" {
		a.Auth = AuthPlain
	}
	if a.MaxConnections == 0 {
		a.MaxConnections = DefaultMaxConnections
	}
	// Only a missing list gets the default; an explicit [] is an error that
	// Validate reports, not something to paper over.
	if a.Mailboxes == nil {
		a.Mailboxes = []string{"INBOX"}
	}
	if a.Backfill == "" {
		a.Backfill = BackfillNone
	}
}

// Values of Account.TLS, Account.Auth, Account.Backfill and
// Output.Attachments.
const (
	TLSImplicit = "implicit"
	TLSStartTLS = "starttls"
	TLSNone     = "none"

	AuthPlain       = "plain"
	AuthLogin       = "login"
	AuthXOAUTH2     = "xoauth2"
	AuthOAuthBearer = "oauthbearer"

	BackfillNone   = "none"
	BackfillUnseen = "unseen"
	BackfillAll    = "all"
	BackfillSince  = "since" // written "since:YYYY-MM-DD"

	AttachmentsMetadata = "metadata"
	AttachmentsSave     = "save"
)

// MarshalJSON writes the duration in its shortest Go form ("5m", not "5m0s").
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(formatDuration(d.Duration))
}

// UnmarshalJSON reads a Go duration string. null leaves the value unchanged,
// as encoding/json does for built-in types.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("must be a duration string like \"60s\" or \"5m\" (got %s)", b)
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// parseDuration is time.ParseDuration with messages fit for a config file
// and negative values refused.
func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("must be a duration like \"60s\", \"5m\" or \"1h30m\" (got %q)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("must not be negative (got %q)", s)
	}
	return v, nil
}

func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
