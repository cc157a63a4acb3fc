package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Validate checks every value and reports all problems at once, each an
// *Error naming the field path (joined with errors.Join; errors.As finds
// the first). It only reads the filesystem to check that ca_file exists; it
// never resolves secrets (see CheckSecrets) and never touches the network.
//
// Callers that change the config afterwards (say, from a --out flag) should
// call Validate again.
func (c *Config) Validate() error {
	v := &validator{c: c}
	if len(c.Accounts) == 0 {
		v.add("accounts", "at least one account is required")
	}
	names := make(map[string]int)
	for i := range c.Accounts {
		a := &c.Accounts[i]
		p := fmt.Sprintf("accounts[%d]", i)
		v.account(p, a)
		if a.Name != "" {
			key := strings.ToLower(a.Name)
			if j, dup := names[key]; dup {
				// Case-insensitive: account names become directory names,
				// and macOS and Windows file systems fold case.
				v.add(p+".name", "%q is already used by accounts[%d]", a.Name, j)
			} else {
				names[key] = i
			}
		}
	}
	v.output()
	v.watch()
	v.http()
	v.sinks()
	v.ssh()
	return errors.Join(v.errs...)
}

type validator struct {
	c    *Config
	errs []error
}

func (v *validator) add(field, format string, args ...any) {
	file := v.c.Source
	if file == "" {
		file = "config"
	}
	env := v.c.fromEnv[field]
	if i := strings.LastIndexByte(field, '['); env == "" && i > 0 && strings.HasSuffix(field, "]") {
		env = v.c.fromEnv[field[:i]] // accounts[0].mailboxes[1] came from MAILTAP_MAILBOXES
	}
	v.errs = append(v.errs, &Error{File: file, Field: field, Env: env, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) account(p string, a *Account) {
	switch {
	case a.Name == "":
		v.add(p+".name", "must not be empty")
	case strings.ContainsAny(a.Name, `/\`):
		v.add(p+".name", "must not contain / or \\ (it names a directory under output.dir; got %q)", a.Name)
	case strings.HasPrefix(a.Name, "."):
		// "." and ".." would escape the output directory, and .mailtap
		// is where mailtap keeps its own state.
		v.add(p+".name", "must not start with a dot (got %q)", a.Name)
	case hasControl(a.Name):
		v.add(p+".name", "must not contain control characters (got %q)", a.Name)
	}

	switch {
	case a.Host == "":
		v.add(p+".host", "must not be empty")
	case strings.Contains(a.Host, "://"):
		v.add(p+".host", "must be a host name, not a URL (got %q)", a.Host)
	case hasControl(a.Host) || strings.ContainsFunc(a.Host, unicode.IsSpace):
		v.add(p+".host", "must not contain spaces or control characters (got %q)", a.Host)
	default:
		if _, port, err := net.SplitHostPort(a.Host); err == nil {
			v.add(p+".host", "must not include a port; put %s in port (got %q)", port, a.Host)
		}
	}
	if a.Port < 1 || a.Port > 65535 {
		v.add(p+".port", "must be 1..65535 (got %d)", a.Port)
	}

	switch a.TLS {
	case TLSImplicit, TLSStartTLS:
	case TLSNone:
		if !a.AllowInsecure && !a.IsLoopback() {
			v.add(p+".tls", `"none" would send the password in clear text to %s; use implicit or starttls, or set allow_insecure: true`, a.Host)
		}
	default:
		v.add(p+".tls", "must be one of implicit, starttls, none (got %q)", a.TLS)
	}
	if a.CAFile != "" {
		if st, err := os.Stat(a.CAFile); err != nil {
			v.add(p+".ca_file", "%v", err)
		} else if st.IsDir() {
			v.add(p+".ca_file", "%q is a directory, not a PEM file", a.CAFile)
		}
	}

	if a.Username == "" {
		v.add(p+".username", "must not be empty")
	}
	v.passwordSource(p, a)

	switch a.Auth {
	case AuthPlain, AuthLogin, AuthXOAUTH2, AuthOAuthBearer:
	default:
		v.add(p+".auth", "must be one of plain, login, xoauth2, oauthbearer (got %q)", a.Auth)
	}

	if len(a.Mailboxes) == 0 {
		v.add(p+".mailboxes", "must list at least one mailbox")
	}
	v.mailboxEntries(p, "mailboxes", a.Mailboxes)
	v.mailboxEntries(p, "exclude", a.Exclude)
	v.excludeConflicts(p, a)

	if _, _, err := parseBackfill(a.Backfill); err != nil {
		v.add(p+".backfill", "%v", err)
	}
	// 0 is the default (an account built in code rather than loaded).
	if a.MaxConnections < 0 || a.MaxConnections > MaxConnectionsLimit {
		v.add(p+".max_connections", "must be between 1 and %d (got %d)", MaxConnectionsLimit, a.MaxConnections)
	}
}

// passwordSource checks that exactly one password source is set. Values are
// never echoed: they are secrets, or could be (password_env holding the
// password itself is a classic mistake).
func (v *validator) passwordSource(p string, a *Account) {
	set := a.passwordSources()
	switch len(set) {
	case 0:
		if v.c.Source == SourceEnvironment {
			v.add(p, "account %q has no password: set MAILTAP_PASSWORD or MAILTAP_PASSWORD_FILE", a.Name)
		} else {
			v.add(p, "account %q has no password source: set exactly one of password, password_env, password_file, password_command", a.Name)
		}
		return
	case 1:
	default:
		v.add(p, "account %q has more than one password source (%s): keep exactly one", a.Name, strings.Join(set, ", "))
		return
	}
	switch {
	case a.PasswordEnv != "" && !validEnvName(a.PasswordEnv):
		v.add(p+".password_env", "must be the name of an environment variable (letters, digits, _), not the password itself")
	case len(a.PasswordCommand) > 0 && a.PasswordCommand[0] == "":
		v.add(p+".password_command", "the first element must be the program to run")
	}
}

// passwordSources lists the password fields that are set.
func (a *Account) passwordSources() []string {
	var set []string
	if a.Password != "" {
		set = append(set, "password")
	}
	if a.PasswordEnv != "" {
		set = append(set, "password_env")
	}
	if a.PasswordFile != "" {
		set = append(set, "password_file")
	}
	if len(a.PasswordCommand) > 0 {
		set = append(set, "password_command")
	}
	return set
}

// mailboxEntries checks each entry of the account's mailboxes or exclude
// (list): not empty, no control characters, a known special-use name, and
// not the same entry twice (INBOX and special-use names in any case).
func (v *validator) mailboxEntries(p, list string, entries []string) {
	seen := make(map[string]int)
	for i, m := range entries {
		mp := fmt.Sprintf("%s.%s[%d]", p, list, i)
		switch {
		case strings.TrimSpace(m) == "":
			v.add(mp, "must not be empty")
			continue
		case hasControl(m):
			v.add(mp, "must not contain control characters (got %q)", m)
			continue
		}
		if EntryKindOf(m) == EntrySpecialUse {
			if _, ok := SpecialUse(m); !ok {
				v.add(mp, "%s", specialUseHint(m))
				continue
			}
		}
		key := sameEntry(m)
		if j, dup := seen[key]; dup {
			v.add(mp, "%q is already listed as %s[%d]", m, list, j)
		} else {
			seen[key] = i
		}
	}
}

// excludeConflicts refuses a literal mailbox that an exclude entry removes
// on every server, and an entry that is in both lists: the config would
// say "watch it" and "never watch it" at once. Conflicts that depend on the
// server (its delimiter, its special-use attributes) are left to the
// watcher, where exclude wins.
func (v *validator) excludeConflicts(p string, a *Account) {
	for i, m := range a.Mailboxes {
		for j, ex := range a.Exclude {
			if strings.TrimSpace(m) == "" || strings.TrimSpace(ex) == "" {
				continue // reported above
			}
			mp := fmt.Sprintf("%s.mailboxes[%d]", p, i)
			switch {
			case sameEntry(m) == sameEntry(ex):
				v.add(mp, "%q is also in exclude[%d], so it would select nothing; keep it in one list", m, j)
			case EntryKindOf(m) == EntryLiteral && excludedWhateverDelimiter(ex, m):
				v.add(mp, "%q is excluded by exclude[%d] %q; remove it from one of the lists", m, j, ex)
			default:
				continue
			}
			break // one error per mailbox entry
		}
	}
}

func (v *validator) output() {
	o := &v.c.Output
	if strings.TrimSpace(o.Dir) == "" {
		v.add("output.dir", "must not be empty")
	}
	switch o.Attachments {
	case AttachmentsMetadata, AttachmentsSave:
	default:
		v.add("output.attachments", "must be one of metadata, save (got %q)", o.Attachments)
	}
	if o.MaxBodyBytes <= 0 {
		v.add("output.max_body_bytes", "must be greater than 0 (got %d)", o.MaxBodyBytes)
	}
}

// maxIdleRefresh follows RFC 2177: clients should re-issue IDLE at least
// every 29 minutes because servers may drop an idle client after 30.
const maxIdleRefresh = 29 * time.Minute

func (v *validator) watch() {
	w := &v.c.Watch
	if w.PollInterval.Duration < time.Second {
		v.add("watch.poll_interval", "must be at least 1s (got %s)", formatDuration(w.PollInterval.Duration))
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"watch.max_backoff", w.MaxBackoff.Duration},
		{"watch.idle_refresh", w.IdleRefresh.Duration},
		{"watch.response_timeout", w.ResponseTimeout.Duration},
	} {
		if d.v <= 0 {
			v.add(d.field, "must be greater than 0 (got %s)", formatDuration(d.v))
		}
	}
	if w.IdleRefresh.Duration > maxIdleRefresh {
		v.add("watch.idle_refresh", "must be at most 29m: servers may drop an IDLE client after 30 minutes (RFC 2177) (got %s)", formatDuration(w.IdleRefresh.Duration))
	}
}

func (v *validator) http() {
	h := &v.c.HTTP
	if h.Addr != "" {
		_, port, err := net.SplitHostPort(h.Addr)
		if err != nil {
			v.add("http.addr", "must be host:port or :port, like 127.0.0.1:8025 (got %q)", h.Addr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			v.add("http.addr", "port must be a number 0..65535 (got %q)", h.Addr)
		}
	}
	if h.TokenEnv != "" && !validEnvName(h.TokenEnv) {
		v.add("http.token_env", "must be the name of an environment variable (letters, digits, _), not the token itself")
	}
}

// parseBackfill splits "since:YYYY-MM-DD" and checks the other modes.
func parseBackfill(s string) (mode string, since time.Time, err error) {
	switch s {
	case BackfillNone, BackfillUnseen, BackfillAll:
		return s, time.Time{}, nil
	}
	if date, ok := strings.CutPrefix(s, BackfillSince+":"); ok {
		t, err := time.Parse(time.DateOnly, date)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("since needs a real date as since:YYYY-MM-DD (got %q)", s)
		}
		return BackfillSince, t, nil
	}
	return "", time.Time{}, fmt.Errorf("must be one of none, unseen, all, since:YYYY-MM-DD (got %q)", s)
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

// validEnvName reports whether s is a portable environment variable name.
func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// envNameForMessage quotes the environment variable name held in field for
// an error message, unless it does not look like one: someone who wrote the
// password itself into password_env must not see it echoed into logs.
func envNameForMessage(field, s string) string {
	if !looksLikeEnvName(s) {
		return "named in " + field + " (name not shown: it is not UPPER_CASE, so it may be the secret itself)"
	}
	return strconv.Quote(s)
}

// looksLikeEnvName reports whether s is an UPPER_CASE name, as environment
// variables conventionally are, rather than a pasted secret.
func looksLikeEnvName(s string) bool {
	if !validEnvName(s) {
		return false
	}
	for _, r := range s {
		if r >= 'a' && r <= 'z' {
			return false
		}
	}
	return true
}
