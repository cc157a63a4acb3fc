package config

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const minimalJSON = `{"accounts": [{"name": "a", "host": "imap.example.com", "username": "u", "password_env": "MAILTAP_TEST_PW"}]}`

func TestLoad_defaults(t *testing.T) {
	p := writeFile(t, t.TempDir(), "config.json", minimalJSON)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != p {
		t.Errorf("Source = %q, want %q", c.Source, p)
	}
	a := c.Accounts[0]
	if a.Port != 993 || a.TLS != "implicit" || a.Auth != "plain" || a.Backfill != "none" ||
		len(a.Mailboxes) != 1 || a.Mailboxes[0] != "INBOX" {
		t.Errorf("account defaults wrong: %+v", a)
	}
	o := c.Output
	if o.Dir != "./mail-json" || o.Attachments != "metadata" || o.MaxBodyBytes != 1048576 || !o.Pretty || o.SaveRaw {
		t.Errorf("output defaults wrong: %+v", o)
	}
	w := c.Watch
	if !w.IDLE || w.PollInterval.Duration != 60*time.Second || w.MaxBackoff.Duration != 5*time.Minute ||
		w.IdleRefresh.Duration != 5*time.Minute || w.ResponseTimeout.Duration != 30*time.Second {
		t.Errorf("watch defaults wrong: %+v", w)
	}
	if c.HTTP.Addr != "" || c.HTTP.TokenEnv != "" {
		t.Errorf("http defaults wrong: %+v", c.HTTP)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("minimal config does not validate: %v", err)
	}
}

func TestLoad_portFollowsTLS(t *testing.T) {
	for tls, want := range map[string]int{"implicit": 993, "starttls": 143, "none": 143} {
		p := writeFile(t, t.TempDir(), "c.json", `{"accounts": [{"host": "h", "tls": "`+tls+`"}]}`)
		c, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Accounts[0].Port; got != want {
			t.Errorf("tls %s: port = %d, want %d", tls, got, want)
		}
	}
}

func TestLoad_explicitValuesBeatDefaults(t *testing.T) {
	p := writeFile(t, t.TempDir(), "c.json", `{
		"accounts": [{"host": "h", "port": 1993, "mailboxes": []}],
		"output": {"pretty": false},
		"watch": {"idle": false, "poll_interval": "2m30s"},
		"http": null
	}`)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Output.Pretty || c.Watch.IDLE {
		t.Error("false values from the file were replaced by defaults")
	}
	if c.Output.Dir != "./mail-json" {
		t.Errorf("output.dir default lost when output was partly given: %q", c.Output.Dir)
	}
	if c.Watch.PollInterval.Duration != 150*time.Second {
		t.Errorf("poll_interval = %v", c.Watch.PollInterval)
	}
	if c.Accounts[0].Port != 1993 {
		t.Errorf("port = %d", c.Accounts[0].Port)
	}
	// An explicit empty list is the user's choice; Validate reports it.
	if c.Accounts[0].Mailboxes == nil || len(c.Accounts[0].Mailboxes) != 0 {
		t.Errorf("mailboxes = %#v, want empty", c.Accounts[0].Mailboxes)
	}
}

func TestLoad_byteOrderMark(t *testing.T) {
	p := writeFile(t, t.TempDir(), "c.json", "\xef\xbb\xbf"+minimalJSON)
	if _, err := Load(p); err != nil {
		t.Fatal(err)
	}
}

func TestLoad_shapeErrors(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"unknown top-level field", "{\n  \"acounts\": []\n}", `:2:3: unknown field "acounts" (did you mean "accounts"?)`},
		{"unknown account field", "{\"accounts\": [\n {\"name\": \"a\",\n    \"hots\": \"x\"}]}", `:3:5: accounts[0]: unknown field "hots" (did you mean "host"?)`},
		{"unknown field in second account", `{"accounts": [{}, {"tsl": "none"}]}`, `:1:20: accounts[1]: unknown field "tsl" (did you mean "tls"?)`},
		{"unknown field without suggestion", `{"output": {"compress": true}}`, `:1:13: output: unknown field "compress"`},
		{"key case matters", `{"accounts": [{"Host": "h"}]}`, `:1:16: accounts[0]: unknown field "Host" (did you mean "host"?)`},
		{"duplicate field", `{"watch": {"idle": true, "idle": false}}`, `:1:26: watch: duplicate field "idle"`},
		{"source is not a field", `{"Source": "x"}`, `:1:2: unknown field "Source"`},
		{"string for number", `{"accounts": [{"port": "993"}]}`, `:1:24: accounts[0].port: must be a whole number, got a string`},
		{"fraction for number", `{"accounts": [{"port": 99.5}]}`, `:1:24: accounts[0].port: must be a whole number in range (got 99.5)`},
		{"number too large", `{"output": {"max_body_bytes": 99999999999999999999}}`, `output.max_body_bytes: must be a whole number in range`},
		{"string for bool", `{"output": {"pretty": "yes"}}`, `:1:23: output.pretty: must be true or false, got a string`},
		{"string for array", `{"accounts": [{"mailboxes": "INBOX"}]}`, `accounts[0].mailboxes: must be an array, got a string`},
		{"number in string array", `{"accounts": [{"mailboxes": ["INBOX", 7]}]}`, `:1:39: accounts[0].mailboxes[1]: must be a string, got a number`},
		{"object for array", `{"accounts": {"name": "a"}}`, `:1:14: accounts: must be an array, got an object`},
		{"number for duration", `{"watch": {"poll_interval": 60}}`, `:1:29: watch.poll_interval: must be a duration string like "60s" or "5m", got a number`},
		{"duration without unit", `{"watch": {"poll_interval": "60"}}`, `watch.poll_interval: must be a duration like "60s", "5m" or "1h30m" (got "60")`},
		{"negative duration", `{"watch": {"max_backoff": "-5s"}}`, `watch.max_backoff: must not be negative (got "-5s")`},
		{"trailing comma", "{\"http\": {\"addr\": \"\",}\n}", `:1:22: syntax error: invalid character '}' looking for beginning of object key string`},
		{"bad literal", `{"output": {"pretty": tru}}`, `:1:26: syntax error: invalid character '}' in literal true (expecting 'e')`},
		{"bad escape", "{\n\"accounts\": [{\"host\": \"a\\qb\"}]}", `:2:26: syntax error: invalid character 'q' in string escape code (a backslash in a JSON string is written twice: "\\Sent")`},
		{"special-use with one backslash", "{\"accounts\": [{\"mailboxes\": [\"\\Sent\"]}]}", `:1:32: syntax error: invalid character 'S' in string escape code (a backslash in a JSON string is written twice: "\\Sent")`},
		{"comment", "{\n  // mine\n}", `:2:3: syntax error: invalid character '/' looking for beginning of object key string (JSON has no comments)`},
		{"truncated", `{"accounts": [`, `:1:15: syntax error: unexpected end of file`},
		{"empty file", "  \n", `: file is empty; expected a JSON object`},
		{"trailing data", "{}\n{}", `:2:1: unexpected data after the top-level object`},
		{"trailing garbage", `{} x`, `:1:4: unexpected data after the top-level object`},
		{"top-level array", `[]`, `:1:1: expected a JSON object, got an array`},
		{"top-level null", `null`, `:1:1: expected a JSON object, got null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "config.json", tt.content)
			_, err := Load(p)
			if err == nil {
				t.Fatal("Load accepted it")
			}
			// A want starting with ":" is the whole message after the
			// file name; otherwise a part of it.
			if strings.HasPrefix(tt.want, ":") {
				if want := p + tt.want; err.Error() != want {
					t.Errorf("error:\n got %s\nwant %s", err, want)
				}
			} else if !strings.HasPrefix(err.Error(), p+":") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n got %s\nwant %s…%s", err, p, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != p {
				t.Errorf("not a *Error naming the file: %#v", err)
			}
		})
	}
}

func TestLoad_typeErrorsDoNotEchoValues(t *testing.T) {
	p := writeFile(t, t.TempDir(), "c.json", `{"accounts": [{"password": 8675309}]}`)
	_, err := Load(p)
	if err == nil {
		t.Fatal("Load accepted a number as password")
	}
	if strings.Contains(err.Error(), "8675309") {
		t.Errorf("error echoes the password: %v", err)
	}
	if !strings.Contains(err.Error(), "accounts[0].password: must be a string") {
		t.Errorf("error does not name the field: %v", err)
	}
}

func TestLoad_missingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.json")
	_, err := Load(p)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("not a *Error: %T", err)
	}
	if got, want := err.Error(), p+": cannot read config file: open: no such file or directory"; got != want {
		t.Errorf("error:\n got %s\nwant %s", got, want)
	}
}

func TestDuration_JSON(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Minute:         `"5m"`,
		90 * time.Second:        `"1m30s"`,
		time.Hour:               `"1h"`,
		time.Hour + time.Second: `"1h0m1s"`,
		1500 * time.Millisecond: `"1.5s"`,
		0:                       `"0s"`,
	} {
		b, err := json.Marshal(Duration{d})
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("Marshal(%v) = %s, want %s", d, b, want)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || back.Duration != d {
			t.Errorf("round trip of %v: %v, %v", d, back, err)
		}
	}

	d := Duration{time.Minute}
	if err := json.Unmarshal([]byte("null"), &d); err != nil || d.Duration != time.Minute {
		t.Errorf("null: %v, %v; want unchanged", d, err)
	}
	for _, bad := range []string{`60`, `"60"`, `"-1s"`, `true`} {
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("Unmarshal(%s) accepted", bad)
		}
	}
}
