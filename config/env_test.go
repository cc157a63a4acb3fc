package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// env returns a getenv over m, so tests never depend on the real
// environment.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFromEnv_noHost(t *testing.T) {
	c, ok, err := FromEnv(env(map[string]string{"MAILTAP_USERNAME": "u", "MAILTAP_PASSWORD": "p"}))
	if c != nil || ok || err != nil {
		t.Errorf("FromEnv = %v, %v, %v; want nil, false, nil", c, ok, err)
	}
}

func TestFromEnv_allVariables(t *testing.T) {
	ca := writeFile(t, t.TempDir(), "ca.pem", "x")
	c, ok, err := FromEnv(env(map[string]string{
		"MAILTAP_ACCOUNT":         "work",
		"MAILTAP_HOST":            "mail.example.org",
		"MAILTAP_TLS":             "starttls",
		"MAILTAP_USERNAME":        "jdoe",
		"MAILTAP_PASSWORD":        "s3cret-value",
		"MAILTAP_AUTH":            "login",
		"MAILTAP_MAILBOXES":       "INBOX, Lists/go ,Sent",
		"MAILTAP_BACKFILL":        "unseen",
		"MAILTAP_TLS_SKIP_VERIFY": "true",
		"MAILTAP_CA_FILE":         ca,
		"MAILTAP_OUT":             "/data",
		"MAILTAP_HTTP":            ":8025",
		"MAILTAP_HTTP_TOKEN":      "tok",
	}))
	if err != nil || !ok {
		t.Fatalf("FromEnv: %v, %v", ok, err)
	}
	if c.Source != SourceEnvironment {
		t.Errorf("Source = %q", c.Source)
	}
	a := c.Accounts[0]
	if a.Name != "work" || a.Host != "mail.example.org" || a.Port != 143 || a.TLS != "starttls" ||
		a.Username != "jdoe" || a.Auth != "login" || a.Backfill != "unseen" || !a.TLSSkipVerify || a.CAFile != ca {
		t.Errorf("account = %+v", a)
	}
	if !slices.Equal(a.Mailboxes, []string{"INBOX", "Lists/go", "Sent"}) {
		t.Errorf("mailboxes = %q", a.Mailboxes)
	}
	// The secret stays in the environment; the config only names it.
	if a.Password != "" || a.PasswordEnv != "MAILTAP_PASSWORD" {
		t.Errorf("password = %q, password_env = %q", a.Password, a.PasswordEnv)
	}
	if c.Output.Dir != "/data" || c.HTTP.Addr != ":8025" || c.HTTP.TokenEnv != "MAILTAP_HTTP_TOKEN" {
		t.Errorf("output/http = %+v %+v", c.Output, c.HTTP)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
}

func TestFromEnv_defaults(t *testing.T) {
	c, _, err := FromEnv(env(map[string]string{"MAILTAP_HOST": "h", "MAILTAP_USERNAME": "u", "MAILTAP_PASSWORD_FILE": "/run/secrets/pw"}))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Accounts[0]
	if a.Name != "default" || a.Port != 993 || a.TLS != "implicit" || a.Auth != "plain" ||
		!slices.Equal(a.Mailboxes, []string{"INBOX"}) || a.Backfill != "none" || a.PasswordFile != "/run/secrets/pw" {
		t.Errorf("account = %+v", a)
	}
	if c.Output.Dir != "./mail-json" {
		t.Errorf("output.dir = %q", c.Output.Dir)
	}
}

func TestFromEnv_badValues(t *testing.T) {
	_, ok, err := FromEnv(env(map[string]string{"MAILTAP_HOST": "h", "MAILTAP_PORT": "imaps", "MAILTAP_ALLOW_INSECURE": "sure"}))
	if !ok || err == nil {
		t.Fatalf("FromEnv = %v, %v", ok, err)
	}
	want := "environment: accounts[0].port (from MAILTAP_PORT): must be a port number (got \"imaps\")\n" +
		"environment: accounts[0].allow_insecure (from MAILTAP_ALLOW_INSECURE): must be true or false (got \"sure\")"
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Env != "MAILTAP_PORT" {
		t.Errorf("errors.As: %#v", ce)
	}
}

func TestFromEnv_validationNamesVariable(t *testing.T) {
	c, _, err := FromEnv(env(map[string]string{"MAILTAP_HOST": "h", "MAILTAP_USERNAME": "u", "MAILTAP_PASSWORD": "x", "MAILTAP_TLS": "ssl", "MAILTAP_PORT": "70000"}))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	want := "environment: accounts[0].port (from MAILTAP_PORT): must be 1..65535 (got 70000)\n" +
		"environment: accounts[0].tls (from MAILTAP_TLS): must be one of implicit, starttls, none (got \"ssl\")"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
}

func TestFromEnv_missingPasswordAndUsername(t *testing.T) {
	c, _, err := FromEnv(env(map[string]string{"MAILTAP_HOST": "h"}))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"environment: accounts[0].username: must not be empty",
		`environment: accounts[0]: account "default" has no password: set MAILTAP_PASSWORD or MAILTAP_PASSWORD_FILE`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// chdirEmpty moves the test into an empty directory, so that no
// ./config.json is found unless the test writes one.
func chdirEmpty(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	return dir
}

func TestResolve_explicitPath(t *testing.T) {
	dir := chdirEmpty(t)
	writeFile(t, dir, "config.json", `{"not": "used"}`)
	p := writeFile(t, t.TempDir(), "mine.json", minimalJSON)
	c, notes, err := Resolve(p, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != p || len(notes) == 0 || notes[0] != "config file "+p+" (from --config)" {
		t.Errorf("Source %q, notes %q", c.Source, notes)
	}
}

func TestResolve_explicitPathMustExist(t *testing.T) {
	chdirEmpty(t)
	missing := filepath.Join(t.TempDir(), "missing.json")
	// Not even a usable environment makes a missing -c file acceptable.
	_, _, err := Resolve(missing, env(map[string]string{"MAILTAP_HOST": "h"}))
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), missing+": ") {
		t.Errorf("err = %v", err)
	}
}

func TestResolve_searchOrder(t *testing.T) {
	dir := chdirEmpty(t)
	xdg := t.TempDir()
	home := t.TempDir()
	xdgFile := filepath.Join(xdg, "mailtap", "config.json")
	homeFile := filepath.Join(home, ".config", "mailtap", "config.json")
	for _, p := range []string{xdgFile, homeFile} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Dir(p), "config.json", minimalJSON)
	}
	full := map[string]string{"XDG_CONFIG_HOME": xdg, "HOME": home, "MAILTAP_HOST": "envhost", "MAILTAP_USERNAME": "u", "MAILTAP_PASSWORD": "p"}
	check := func(name string, m map[string]string, wantSource, wantHow string) {
		t.Helper()
		c, notes, err := Resolve("", env(m))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.Source != wantSource || !strings.Contains(notes[0], wantHow) {
			t.Errorf("%s: Source %q, notes %q; want %q, %q", name, c.Source, notes, wantSource, wantHow)
		}
	}

	writeFile(t, dir, "config.json", minimalJSON)
	check("working dir first", full, "./config.json", "found in the working directory")
	if err := os.Remove(filepath.Join(dir, "config.json")); err != nil {
		t.Fatal(err)
	}
	check("then XDG", full, xdgFile, "found via $XDG_CONFIG_HOME")

	noXDG := maps(full, "XDG_CONFIG_HOME", "")
	check("then ~/.config", noXDG, homeFile, "found in ~/.config")
	check("relative XDG is ignored", maps(full, "XDG_CONFIG_HOME", "rel"), homeFile, "found in ~/.config")

	// With XDG set, ~/.config is not consulted: XDG replaces it.
	check("then environment", maps(full, "XDG_CONFIG_HOME", t.TempDir()), SourceEnvironment, "one account from the environment")
}

// maps returns a copy of m with k set to v.
func maps(m map[string]string, k, v string) map[string]string {
	c := make(map[string]string, len(m))
	for kk, vv := range m {
		c[kk] = vv
	}
	c[k] = v
	return c
}

func TestResolve_nothing(t *testing.T) {
	chdirEmpty(t)
	home := t.TempDir()
	_, _, err := Resolve("", env(map[string]string{"HOME": home}))
	if !errors.Is(err, ErrNoConfig) {
		t.Fatalf("err = %v, want ErrNoConfig", err)
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("not a *Error: %T", err)
	}
	for _, want := range []string{"./config.json", filepath.Join(home, ".config/mailtap/config.json"), "MAILTAP_HOST", "config.example.json", "--demo"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
}

func TestResolve_invalidFileDoesNotFallThrough(t *testing.T) {
	dir := chdirEmpty(t)
	writeFile(t, dir, "config.json", `{"accounts": [{"host": "h", "tls": "ssl"}]}`)
	_, _, err := Resolve("", env(map[string]string{"MAILTAP_HOST": "h", "MAILTAP_USERNAME": "u", "MAILTAP_PASSWORD": "p"}))
	if err == nil || !strings.Contains(err.Error(), `./config.json: accounts[0].tls: must be one of implicit, starttls, none (got "ssl")`) {
		t.Errorf("err = %v", err)
	}
}

func TestResolve_directoryInTheWay(t *testing.T) {
	dir := chdirEmpty(t)
	if err := os.Mkdir(filepath.Join(dir, "config.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, _, err := Resolve("", env(map[string]string{"MAILTAP_HOST": "h"}))
	var ce *Error
	if !errors.As(err, &ce) || err.Error() != "./config.json: is a directory, not a config file" {
		t.Errorf("err = %v", err)
	}
}

func TestResolve_envOnlyNotes(t *testing.T) {
	chdirEmpty(t)
	c, notes, err := Resolve("", env(map[string]string{
		"HOME": t.TempDir(), "MAILTAP_HOST": "imap.example.com", "MAILTAP_USERNAME": "u",
		"MAILTAP_PASSWORD": "pw-value", "MAILTAP_MAILBOXES": "INBOX,Sent", "MAILTAP_OUT": "/out",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Accounts[0].Host != "imap.example.com" {
		t.Errorf("host = %q", c.Accounts[0].Host)
	}
	all := strings.Join(notes, "\n")
	for _, want := range []string{
		"accounts[0].host from MAILTAP_HOST",
		"accounts[0].username from MAILTAP_USERNAME",
		"accounts[0].password_env from MAILTAP_PASSWORD",
		"accounts[0].mailboxes from MAILTAP_MAILBOXES",
		"output.dir from MAILTAP_OUT",
		`accounts[0].name = "default" (default)`,
		`accounts[0].port = "993" (default)`,
		`accounts[0].tls = "implicit" (default)`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("notes lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "pw-value") {
		t.Errorf("notes contain the password:\n%s", all)
	}
	if strings.Contains(all, "output.dir = ") {
		t.Errorf("output.dir noted as default although it came from MAILTAP_OUT:\n%s", all)
	}
}

func TestResolve_envOverridesFileWithNotes(t *testing.T) {
	dir := chdirEmpty(t)
	writeFile(t, dir, "config.json", `{
		"accounts": [{"name": "a", "host": "h", "username": "u", "password_env": "MAILTAP_PASSWORD"}],
		"output": {"dir": "./from-file"}
	}`)
	c, notes, err := Resolve("", env(map[string]string{
		"MAILTAP_OUT":      "/data",
		"MAILTAP_HTTP":     "127.0.0.1:9000",
		"MAILTAP_HOST":     "elsewhere",
		"MAILTAP_PASSWORD": "pw", // referenced by the file: not "ignored"
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Output.Dir != "/data" || c.HTTP.Addr != "127.0.0.1:9000" || c.Accounts[0].Host != "h" {
		t.Errorf("output.dir %q, http.addr %q, host %q", c.Output.Dir, c.HTTP.Addr, c.Accounts[0].Host)
	}
	want := []string{
		"config file ./config.json (found in the working directory)",
		`output.dir = "/data" from MAILTAP_OUT, overriding "./from-file" from ./config.json`,
		`http.addr = "127.0.0.1:9000" from MAILTAP_HTTP, overriding "" from ./config.json`,
		"MAILTAP_HOST is set but ignored: accounts come from ./config.json",
	}
	if !slices.Equal(notes, want) {
		t.Errorf("notes:\n got %q\nwant %q", notes, want)
	}

	// A bad override is reported against the variable, not the file.
	_, _, err = Resolve("", env(map[string]string{"MAILTAP_HTTP": "9000"}))
	if err == nil || err.Error() != `./config.json: http.addr (from MAILTAP_HTTP): must be host:port or :port, like 127.0.0.1:8025 (got "9000")` {
		t.Errorf("err = %v", err)
	}
}

func TestResolve_warnings(t *testing.T) {
	dir := chdirEmpty(t)
	writeFile(t, dir, "config.json", `{
		"accounts": [{"name": "a", "host": "imap.example.com", "username": "u", "password": "pw", "tls_skip_verify": true},
		             {"name": "b", "host": "192.0.2.1", "username": "u", "password": "pw", "tls": "none", "allow_insecure": true}],
		"http": {"addr": ":8025"}
	}`)
	_, notes, err := Resolve("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(notes, "\n")
	for _, want := range []string{
		"warning: accounts[0].tls_skip_verify is true: the certificate of imap.example.com is not verified",
		"warning: accounts[1].tls is none with allow_insecure: the password goes to 192.0.2.1 in clear text",
		`warning: http.addr ":8025" is reachable from other machines and http.token_env is empty`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("notes lack %q:\n%s", want, all)
		}
	}
}

func TestFromEnv_exclude(t *testing.T) {
	c, ok, err := FromEnv(env(map[string]string{
		"MAILTAP_HOST": "h", "MAILTAP_USERNAME": "u", "MAILTAP_PASSWORD": "p",
		"MAILTAP_MAILBOXES": `INBOX,Lists/*,\Sent`, "MAILTAP_EXCLUDE": " Lists/old/* ,\\Junk",
	}))
	if err != nil || !ok {
		t.Fatalf("FromEnv: %v, %v", ok, err)
	}
	a := c.Accounts[0]
	if !slices.Equal(a.Mailboxes, []string{"INBOX", "Lists/*", `\Sent`}) || !slices.Equal(a.Exclude, []string{"Lists/old/*", `\Junk`}) {
		t.Errorf("mailboxes = %q, exclude = %q", a.Mailboxes, a.Exclude)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}

	// A mistake in one entry names the variable it came from.
	c, _, _ = FromEnv(env(map[string]string{
		"MAILTAP_HOST": "h", "MAILTAP_USERNAME": "u", "MAILTAP_PASSWORD": "p", "MAILTAP_EXCLUDE": `Spam,\Spma`,
	}))
	err = c.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), `environment: accounts[0].exclude[1] (from MAILTAP_EXCLUDE): "\\Spma" is not a special-use name`) {
		t.Errorf("err = %v", err)
	}
}
