package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// SourceEnvironment is Config.Source for a config built by FromEnv.
const SourceEnvironment = "environment"

// envVar is one MAILTAP_* variable and the field it sets.
type envVar struct {
	name  string
	field string // JSON path; account fields are in accounts[0]
	set   func(c *Config, v string) error
}

// accountVars build the single account of env-only mode. They are ignored
// (with a note) when a config file defines the accounts.
var accountVars = []envVar{
	{"MAILTAP_ACCOUNT", "accounts[0].name", func(c *Config, v string) error { c.Accounts[0].Name = v; return nil }},
	{"MAILTAP_HOST", "accounts[0].host", func(c *Config, v string) error { c.Accounts[0].Host = v; return nil }},
	{"MAILTAP_PORT", "accounts[0].port", func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("must be a port number (got %q)", v)
		}
		c.Accounts[0].Port = n
		return nil
	}},
	{"MAILTAP_TLS", "accounts[0].tls", func(c *Config, v string) error { c.Accounts[0].TLS = v; return nil }},
	{"MAILTAP_USERNAME", "accounts[0].username", func(c *Config, v string) error { c.Accounts[0].Username = v; return nil }},
	// The password itself stays in the environment: the account only names
	// the variable, so the secret is read at login and never copied into
	// the Config.
	{"MAILTAP_PASSWORD", "accounts[0].password_env", func(c *Config, v string) error {
		c.Accounts[0].PasswordEnv = "MAILTAP_PASSWORD"
		return nil
	}},
	{"MAILTAP_PASSWORD_FILE", "accounts[0].password_file", func(c *Config, v string) error { c.Accounts[0].PasswordFile = v; return nil }},
	{"MAILTAP_AUTH", "accounts[0].auth", func(c *Config, v string) error { c.Accounts[0].Auth = v; return nil }},
	{"MAILTAP_MAILBOXES", "accounts[0].mailboxes", func(c *Config, v string) error {
		c.Accounts[0].Mailboxes = splitList(v)
		return nil
	}},
	{"MAILTAP_EXCLUDE", "accounts[0].exclude", func(c *Config, v string) error {
		c.Accounts[0].Exclude = splitList(v)
		return nil
	}},
	{"MAILTAP_BACKFILL", "accounts[0].backfill", func(c *Config, v string) error { c.Accounts[0].Backfill = v; return nil }},
	{"MAILTAP_MAX_CONNECTIONS", "accounts[0].max_connections", func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return fmt.Errorf("must be a whole number of connections, at least 1 (got %q)", v)
		}
		c.Accounts[0].MaxConnections = n
		return nil
	}},
	{"MAILTAP_ALLOW_INSECURE", "accounts[0].allow_insecure", func(c *Config, v string) error {
		return parseBool(v, &c.Accounts[0].AllowInsecure)
	}},
	{"MAILTAP_TLS_SKIP_VERIFY", "accounts[0].tls_skip_verify", func(c *Config, v string) error {
		return parseBool(v, &c.Accounts[0].TLSSkipVerify)
	}},
	{"MAILTAP_CA_FILE", "accounts[0].ca_file", func(c *Config, v string) error { c.Accounts[0].CAFile = v; return nil }},
}

// globalVars apply in env-only mode and on top of a config file.
var globalVars = []envVar{
	{"MAILTAP_OUT", "output.dir", func(c *Config, v string) error { c.Output.Dir = v; return nil }},
	{"MAILTAP_HTTP", "http.addr", func(c *Config, v string) error { c.HTTP.Addr = v; return nil }},
	// Like MAILTAP_PASSWORD: the token stays in the environment.
	{"MAILTAP_HTTP_TOKEN", "http.token_env", func(c *Config, v string) error {
		c.HTTP.TokenEnv = "MAILTAP_HTTP_TOKEN"
		return nil
	}},
	sshVars[0], sshVars[1],
}

// splitList splits a comma-separated list of mailboxes or patterns;
// mailbox names containing a comma need a file.
func splitList(v string) []string {
	var list []string
	for m := range strings.SplitSeq(v, ",") {
		list = append(list, strings.TrimSpace(m))
	}
	return list
}

func parseBool(v string, dst *bool) error {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("must be true or false (got %q)", v)
	}
	*dst = b
	return nil
}

// apply sets the fields of vars from getenv, recording where each came
// from. Empty variables count as unset. It returns the variables it used.
func (c *Config) apply(vars []envVar, getenv func(string) string) ([]envVar, error) {
	if c.fromEnv == nil {
		c.fromEnv = make(map[string]string)
	}
	var used []envVar
	var errs []error
	for _, ev := range vars {
		v := getenv(ev.name)
		if v == "" {
			continue
		}
		if err := ev.set(c, v); err != nil {
			errs = append(errs, &Error{File: SourceEnvironment, Field: ev.field, Env: ev.name, Msg: err.Error()})
			continue
		}
		c.fromEnv[ev.field] = ev.name
		used = append(used, ev)
	}
	return used, errors.Join(errs...)
}

// FromEnv builds a single-account config from MAILTAP_* variables, for
// running without a config file (Docker with no mounted file). ok is false
// when MAILTAP_HOST is unset or empty.
//
//	MAILTAP_HOST, MAILTAP_PORT, MAILTAP_TLS, MAILTAP_USERNAME, MAILTAP_AUTH
//	MAILTAP_PASSWORD or MAILTAP_PASSWORD_FILE
//	MAILTAP_MAILBOXES, MAILTAP_EXCLUDE (comma-separated), MAILTAP_BACKFILL, MAILTAP_MAX_CONNECTIONS
//	MAILTAP_ACCOUNT (the account name, default "default")
//	MAILTAP_ALLOW_INSECURE, MAILTAP_TLS_SKIP_VERIFY, MAILTAP_CA_FILE
//	MAILTAP_OUT (output.dir), MAILTAP_HTTP (http.addr), MAILTAP_HTTP_TOKEN
//	MAILTAP_SSH (ssh.addr), MAILTAP_SSH_AUTHORIZED_KEYS (ssh.authorized_keys)
//
// The result is not validated; Resolve does that. Errors are *Error naming
// the variable.
func FromEnv(getenv func(string) string) (*Config, bool, error) {
	if getenv("MAILTAP_HOST") == "" {
		return nil, false, nil
	}
	c := Defaults()
	c.Source = SourceEnvironment
	c.Accounts = []Account{{Name: "default"}}
	_, err1 := c.apply(accountVars, getenv)
	_, err2 := c.apply(globalVars, getenv)
	if err := errors.Join(err1, err2); err != nil {
		return nil, true, err
	}
	c.Accounts[0].applyDefaults()
	return c, true, nil
}

// ApplyEnv applies the MAILTAP_* variables that make sense on top of a
// config file (MAILTAP_OUT, MAILTAP_HTTP, MAILTAP_HTTP_TOKEN) and returns a
// note for each field it overrode. Account variables such as MAILTAP_HOST
// are not applied to a file, which may hold several accounts; each one that
// is set gets a note saying it was ignored, so nothing is silent.
func ApplyEnv(c *Config, getenv func(string) string) ([]string, error) {
	before := *c
	used, err := c.apply(globalVars, getenv)
	if err != nil {
		return nil, err
	}
	var notes []string
	for _, ev := range used {
		old := fieldString(&before, ev.field)
		notes = append(notes, fmt.Sprintf("%s = %q from %s, overriding %q from %s",
			ev.field, fieldString(c, ev.field), ev.name, old, c.Source))
	}
	referenced := make(map[string]bool)
	for _, a := range c.Accounts {
		referenced[a.PasswordEnv] = true
	}
	referenced[c.HTTP.TokenEnv] = true
	for _, ev := range accountVars {
		if getenv(ev.name) != "" && !referenced[ev.name] {
			notes = append(notes, fmt.Sprintf("%s is set but ignored: accounts come from %s", ev.name, c.Source))
		}
	}
	return notes, nil
}

// fieldString returns the value of one of the globalVars fields.
func fieldString(c *Config, field string) string {
	switch field {
	case "output.dir":
		return c.Output.Dir
	case "http.addr":
		return c.HTTP.Addr
	case "http.token_env":
		return c.HTTP.TokenEnv
	}
	return sshFieldString(c, field)
}

// Resolve finds, loads and validates the configuration, and returns notes
// for the log saying where each part came from. The search order:
//
//  1. path (from -c/--config), which must exist;
//  2. ./config.json;
//  3. $XDG_CONFIG_HOME/mailtap/config.json, or ~/.config/mailtap/config.json;
//  4. the MAILTAP_* environment (FromEnv), if MAILTAP_HOST is set.
//
// A file found is used even if invalid; the search does not fall through.
// With none of these, the error wraps ErrNoConfig and says how to create a
// config. All errors are *Error (exit code 2).
func Resolve(path string, getenv func(string) string) (*Config, []string, error) {
	file, how, looked, err := findFile(path, getenv)
	if err != nil {
		return nil, nil, err
	}
	var c *Config
	var notes []string
	if file != "" {
		if c, err = Load(file); err != nil {
			return nil, nil, err
		}
		notes = append(notes, fmt.Sprintf("config file %s (%s)", file, how))
		n, err := ApplyEnv(c, getenv)
		if err != nil {
			return nil, nil, err
		}
		notes = append(notes, n...)
	} else {
		var ok bool
		c, ok, err = FromEnv(getenv)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return nil, nil, &Error{Err: ErrNoConfig, Msg: fmt.Sprintf(
				"no configuration: looked for %s, and MAILTAP_HOST is not set. "+
					"Copy config.example.json to ./config.json and edit it, "+
					"or set MAILTAP_HOST, MAILTAP_USERNAME and MAILTAP_PASSWORD, "+
					"or run mailtap --demo to try it without an account",
				strings.Join(looked, " and "))}
		}
		notes = append(notes, fmt.Sprintf("no config file (looked for %s); one account from the environment", strings.Join(looked, " and ")))
		notes = append(notes, envNotes(c)...)
	}
	if err := c.Validate(); err != nil {
		return nil, notes, err
	}
	return c, append(notes, warnings(c)...), nil
}

// findFile applies steps 1-3 of Resolve. file is "" when none exists.
func findFile(path string, getenv func(string) string) (file, how string, looked []string, err error) {
	if path != "" {
		return path, "from --config", nil, nil
	}
	type candidate struct{ path, how string }
	candidates := []candidate{{"./config.json", "found in the working directory"}}
	// The XDG spec says to ignore a relative XDG_CONFIG_HOME.
	if x := getenv("XDG_CONFIG_HOME"); filepath.IsAbs(x) {
		candidates = append(candidates, candidate{filepath.Join(x, "mailtap", "config.json"), "found via $XDG_CONFIG_HOME"})
	} else if h := getenv("HOME"); h != "" {
		candidates = append(candidates, candidate{filepath.Join(h, ".config", "mailtap", "config.json"), "found in ~/.config"})
	}
	for _, cand := range candidates {
		st, err := os.Stat(cand.path)
		switch {
		case err == nil && st.IsDir():
			return "", "", nil, &Error{File: cand.path, Msg: "is a directory, not a config file"}
		case err == nil:
			return cand.path, cand.how, nil, nil
		case !errors.Is(err, fs.ErrNotExist):
			// Unreadable is not absent: falling through to the next
			// candidate would run with a config the user did not mean.
			return "", "", nil, &Error{File: cand.path, Msg: unwrapPathError(err).Error(), Err: err}
		}
		looked = append(looked, cand.path)
	}
	return "", "", looked, nil
}

// envNotes says which account fields came from which variable in env-only
// mode, and which took defaults.
func envNotes(c *Config) []string {
	var notes []string
	for _, ev := range append(accountVars, globalVars...) {
		if c.fromEnv[ev.field] == ev.name {
			notes = append(notes, fmt.Sprintf("%s from %s", ev.field, ev.name))
		}
	}
	a := c.Accounts[0]
	for _, d := range []struct{ field, value string }{
		{"accounts[0].name", a.Name},
		{"accounts[0].port", strconv.Itoa(a.Port)},
		{"accounts[0].tls", a.TLS},
		{"accounts[0].auth", a.Auth},
		{"accounts[0].mailboxes", strings.Join(a.Mailboxes, ",")},
		{"accounts[0].backfill", a.Backfill},
		{"output.dir", c.Output.Dir},
	} {
		if _, ok := c.fromEnv[d.field]; !ok {
			notes = append(notes, fmt.Sprintf("%s = %q (default)", d.field, d.value))
		}
	}
	return notes
}

// warnings are notes about valid but risky settings.
func warnings(c *Config) []string {
	var w []string
	for i, a := range c.Accounts {
		if a.TLSSkipVerify && a.TLS != TLSNone {
			w = append(w, fmt.Sprintf("warning: accounts[%d].tls_skip_verify is true: the certificate of %s is not verified", i, a.Host))
		}
		if a.TLS == TLSNone && !a.IsLoopback() {
			w = append(w, fmt.Sprintf("warning: accounts[%d].tls is none with allow_insecure: the password goes to %s in clear text", i, a.Host))
		}
	}
	if c.HTTP.Addr != "" && c.HTTP.TokenEnv == "" {
		if host, _, err := net.SplitHostPort(c.HTTP.Addr); err == nil && !(Account{Host: host}).IsLoopback() {
			w = append(w, fmt.Sprintf("warning: http.addr %q is reachable from other machines and http.token_env is empty: anyone who can reach it can pause or reconnect the watcher", c.HTTP.Addr))
		}
	}
	return w
}
