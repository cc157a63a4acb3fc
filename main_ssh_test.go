package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --ssh without a key file is a usage error naming the field; a bad host
// key stops the start (exit 1) before capture begins.
func TestRun_sshStartErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	os.WriteFile(cfg, []byte(`{"accounts":[{"name":"a","host":"imap.example.com","username":"u","password":"p"}]}`), 0o644)
	keys := filepath.Join(dir, "authorized_keys")
	os.WriteFile(keys, nil, 0o600)
	badHost := filepath.Join(dir, "host_key")
	os.WriteFile(badHost, []byte("not a key"), 0o600)
	withKeys := filepath.Join(dir, "ssh.json")
	os.WriteFile(withKeys, []byte(`{"accounts":[{"name":"a","host":"imap.example.com","username":"u","password":"p"}],
		"ssh":{"addr":"127.0.0.1:0","authorized_keys":"`+keys+`","host_key":"`+badHost+`"}}`), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no key file", []string{"--headless", "-c", cfg, "--out", filepath.Join(dir, "o1"), "--ssh", ":0"}, exitUsage, "ssh.authorized_keys: is required when ssh.addr is set"},
		{"bad host key", []string{"--headless", "-c", withKeys, "--out", filepath.Join(dir, "o2")}, exitFailure, "not an OpenSSH or PEM private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			all := out.String() + errb.String()
			if code != tc.code || !strings.Contains(all, tc.want) {
				t.Errorf("exit %d (want %d), output lacks %q?\n%s", code, tc.code, tc.want, all)
			}
		})
	}
}
