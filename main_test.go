package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun_exitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"accounts":[{"name":"a","hots":"x"}]}`), 0o644)
	invalid := filepath.Join(dir, "invalid.json")
	os.WriteFile(invalid, []byte(`{"accounts":[{"name":"a","host":"imap.example.com","username":"u","password":"p","tls":"ssl"}]}`), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stdout+stderr
	}{
		{"version", []string{"--version"}, exitOK, "mailtap"},
		{"help", []string{"--help"}, exitOK, "mailtap check"},
		{"unknown flag", []string{"--nope"}, exitUsage, "unknown flag --nope"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"stray argument", []string{"--headless", "extra"}, exitUsage, `unexpected argument "extra"`},
		{"bad log format", []string{"--log-format", "xml"}, exitUsage, "--log-format"},
		{"bad log level", []string{"--log-level", "loud"}, exitUsage, "--log-level"},
		{"unknown config field", []string{"--headless", "-c", bad}, exitUsage, `unknown field "hots"`},
		{"invalid config field", []string{"--headless", "-c", invalid}, exitUsage, "accounts[0].tls"},
		{"missing config file", []string{"--headless", "-c", filepath.Join(dir, "none.json")}, exitUsage, "none.json"},
		{"check invalid config", []string{"check", "-c", invalid}, exitUsage, "accounts[0].tls"},
		{"healthcheck without server", []string{"healthcheck", "--http", "127.0.0.1:1"}, exitFailure, "healthcheck"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			all := out.String() + errb.String()
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, all)
			}
			if !strings.Contains(all, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, all)
			}
		})
	}
}
