package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestSSH_validation(t *testing.T) {
	dir := t.TempDir()
	keys := writeFile(t, dir, "authorized_keys", "")
	tests := []struct {
		name  string
		ssh   SSH
		field string // "" = valid
		msg   string
	}{
		{"off", SSH{}, "", ""},
		{"off with files ignored", SSH{AuthorizedKeys: filepath.Join(dir, "nope")}, "", ""},
		{"port only", SSH{Addr: ":2222", AuthorizedKeys: keys}, "", ""},
		{"read-only keys alone", SSH{Addr: ":2222", ReadOnlyKeys: keys}, "", ""},
		{"no key file", SSH{Addr: ":2222"}, "ssh.authorized_keys", "is required when ssh.addr is set"},
		{"bad addr", SSH{Addr: "2222", AuthorizedKeys: keys}, "ssh.addr", `must be host:port or :port, like :2222 or 0.0.0.0:2222 (got "2222")`},
		{"bad port", SSH{Addr: ":99999", AuthorizedKeys: keys}, "ssh.addr", "port must be a number 0..65535"},
		{"keys missing", SSH{Addr: ":2222", AuthorizedKeys: filepath.Join(dir, "nope")}, "ssh.authorized_keys", "no such file or directory"},
		{"keys directory", SSH{Addr: ":2222", AuthorizedKeys: dir}, "ssh.authorized_keys", "is a directory"},
		{"read-only missing", SSH{Addr: ":2222", AuthorizedKeys: keys, ReadOnlyKeys: filepath.Join(dir, "ro")}, "ssh.read_only_keys", "no such file"},
		{"host key missing", SSH{Addr: ":2222", AuthorizedKeys: keys, HostKey: filepath.Join(dir, "hk")}, "ssh.host_key", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p := loadValid(t)
			c.SSH = tt.ssh
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *Error, got %v", err)
			}
			want := p + ": " + tt.field + ": "
			if !strings.HasPrefix(ce.Error(), want) || !strings.Contains(ce.Error(), tt.msg) {
				t.Errorf("got %q, want prefix %q containing %q", ce.Error(), want, tt.msg)
			}
		})
	}
}

func TestSSH_fileAndUnknownField(t *testing.T) {
	dir := t.TempDir()
	keys := writeFile(t, dir, "authorized_keys", "")
	body := strings.Replace(minimalJSON, `"accounts"`, `"ssh": {"addr": ":2222", "authorized_keys": "`+keys+`", "host_key": "", "read_only_keys": ""}, "accounts"`, 1)
	c, err := Load(writeFile(t, dir, "config.json", body))
	if err != nil {
		t.Fatal(err)
	}
	if c.SSH.Addr != ":2222" || c.SSH.AuthorizedKeys != keys {
		t.Errorf("ssh = %+v", c.SSH)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}

	body = strings.Replace(minimalJSON, `"accounts"`, `"ssh": {"adress": ":2222"}, "accounts"`, 1)
	_, err = Load(writeFile(t, dir, "bad.json", body))
	if err == nil || !strings.Contains(err.Error(), `ssh: unknown field "adress"`) {
		t.Errorf("unknown field: got %v", err)
	}
}

func TestSSH_env(t *testing.T) {
	dir := t.TempDir()
	keys := writeFile(t, dir, "authorized_keys", "")
	vars := map[string]string{"MAILTAP_SSH": "0.0.0.0:2222", "MAILTAP_SSH_AUTHORIZED_KEYS": keys}

	// Env only (Docker without a file).
	m := map[string]string{"MAILTAP_HOST": "imap.example.com", "MAILTAP_USERNAME": "u", "MAILTAP_PASSWORD": "p"}
	for k, v := range vars {
		m[k] = v
	}
	c, ok, err := FromEnv(env(m))
	if err != nil || !ok {
		t.Fatalf("FromEnv: %v %v", ok, err)
	}
	if c.SSH.Addr != "0.0.0.0:2222" || c.SSH.AuthorizedKeys != keys {
		t.Errorf("ssh = %+v", c.SSH)
	}

	// On top of a file, with a note for each.
	c, _ = loadValid(t)
	notes, err := ApplyEnv(c, env(vars))
	if err != nil {
		t.Fatal(err)
	}
	if c.SSH.Addr != "0.0.0.0:2222" || c.SSH.AuthorizedKeys != keys {
		t.Errorf("ssh = %+v", c.SSH)
	}
	joined := strings.Join(notes, "\n")
	for _, want := range []string{`ssh.addr = "0.0.0.0:2222" from MAILTAP_SSH`, "ssh.authorized_keys = " + `"` + keys + `" from MAILTAP_SSH_AUTHORIZED_KEYS`} {
		if !strings.Contains(joined, want) {
			t.Errorf("notes lack %q:\n%s", want, joined)
		}
	}

	// A validation error names the variable.
	c, _ = loadValid(t)
	if _, err := ApplyEnv(c, env(map[string]string{"MAILTAP_SSH": ":2222"})); err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), "ssh.authorized_keys: is required") {
		t.Errorf("got %v", err)
	}
	c, _ = loadValid(t)
	ApplyEnv(c, env(map[string]string{"MAILTAP_SSH": "nonsense", "MAILTAP_SSH_AUTHORIZED_KEYS": keys}))
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "ssh.addr (from MAILTAP_SSH): must be host:port") {
		t.Errorf("got %v", err)
	}
}
