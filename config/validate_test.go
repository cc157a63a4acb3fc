package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// loadValid loads minimalJSON from a real file, so that errors carry a real
// file name, and checks that it starts out valid.
func loadValid(t *testing.T) (*Config, string) {
	t.Helper()
	p := writeFile(t, t.TempDir(), "config.json", minimalJSON)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("base config invalid: %v", err)
	}
	return c, p
}

func TestValidate_errors(t *testing.T) {
	dir := t.TempDir()
	second := func(c *Config) *Account {
		b := c.Accounts[0]
		b.Name = "b"
		c.Accounts = append(c.Accounts, b)
		return &c.Accounts[1]
	}
	tests := []struct {
		name   string
		mutate func(c *Config)
		field  string // want "<file>: <field>: <msg>"
		msg    string // part of the message
	}{
		{"no accounts", func(c *Config) { c.Accounts = nil }, "accounts", "at least one account is required"},
		{"name empty", func(c *Config) { c.Accounts[0].Name = "" }, "accounts[0].name", "must not be empty"},
		{"name with slash", func(c *Config) { c.Accounts[0].Name = "a/b" }, "accounts[0].name", `must not contain / or \ (it names a directory under output.dir; got "a/b")`},
		{"name with backslash", func(c *Config) { c.Accounts[0].Name = `a\b` }, "accounts[0].name", "must not contain / or \\"},
		{"name dot-dot", func(c *Config) { c.Accounts[0].Name = ".." }, "accounts[0].name", `must not start with a dot (got "..")`},
		{"name .mailtap", func(c *Config) { c.Accounts[0].Name = ".mailtap" }, "accounts[0].name", "must not start with a dot"},
		{"name control", func(c *Config) { c.Accounts[0].Name = "a\x1b[2J" }, "accounts[0].name", "must not contain control characters"},
		{"name duplicate", func(c *Config) { second(c).Name = "A" }, "accounts[1].name", `"A" is already used by accounts[0]`},
		{"host empty", func(c *Config) { second(c).Host = "" }, "accounts[1].host", "must not be empty"},
		{"host URL", func(c *Config) { c.Accounts[0].Host = "imaps://imap.example.com" }, "accounts[0].host", "must be a host name, not a URL"},
		{"host with port", func(c *Config) { c.Accounts[0].Host = "imap.example.com:993" }, "accounts[0].host", `must not include a port; put 993 in port (got "imap.example.com:993")`},
		{"host with space", func(c *Config) { c.Accounts[0].Host = "imap example.com" }, "accounts[0].host", "must not contain spaces"},
		{"port zero", func(c *Config) { c.Accounts[0].Port = 0 }, "accounts[0].port", "must be 1..65535 (got 0)"},
		{"port too big", func(c *Config) { c.Accounts[0].Port = 65536 }, "accounts[0].port", "must be 1..65535 (got 65536)"},
		{"port negative", func(c *Config) { c.Accounts[0].Port = -1 }, "accounts[0].port", "must be 1..65535 (got -1)"},
		{"tls unknown", func(c *Config) { c.Accounts[0].TLS = "ssl" }, "accounts[0].tls", `must be one of implicit, starttls, none (got "ssl")`},
		{"tls none remote", func(c *Config) { c.Accounts[0].TLS = "none" }, "accounts[0].tls", `"none" would send the password in clear text to imap.example.com; use implicit or starttls, or set allow_insecure: true`},
		{"tls none near-loopback name", func(c *Config) { c.Accounts[0].TLS, c.Accounts[0].Host = "none", "localhost.example.com" }, "accounts[0].tls", "clear text"},
		{"ca_file missing", func(c *Config) { c.Accounts[0].CAFile = filepath.Join(dir, "nope.pem") }, "accounts[0].ca_file", "no such file or directory"},
		{"ca_file directory", func(c *Config) { c.Accounts[0].CAFile = dir }, "accounts[0].ca_file", "is a directory, not a PEM file"},
		{"username empty", func(c *Config) { c.Accounts[0].Username = "" }, "accounts[0].username", "must not be empty"},
		{"no password source", func(c *Config) { c.Accounts[0].PasswordEnv = "" }, "accounts[0]",
			`account "a" has no password source: set exactly one of password, password_env, password_file, password_command`},
		{"two password sources", func(c *Config) { second(c).PasswordFile = "/run/secrets/pw" }, "accounts[1]",
			`account "b" has more than one password source (password_env, password_file): keep exactly one`},
		{"all password sources", func(c *Config) {
			a := &c.Accounts[0]
			a.Password, a.PasswordFile, a.PasswordCommand = "x", "/f", []string{"pass"}
		}, "accounts[0]", "more than one password source (password, password_env, password_file, password_command)"},
		{"password_env not a name", func(c *Config) { c.Accounts[0].PasswordEnv = "hunter2!" }, "accounts[0].password_env",
			"must be the name of an environment variable (letters, digits, _), not the password itself"},
		{"password_command empty program", func(c *Config) {
			c.Accounts[0].PasswordEnv, c.Accounts[0].PasswordCommand = "", []string{"", "x"}
		}, "accounts[0].password_command", "the first element must be the program to run"},
		{"auth unknown", func(c *Config) { c.Accounts[0].Auth = "cram-md5" }, "accounts[0].auth", `must be one of plain, login, xoauth2, oauthbearer (got "cram-md5")`},
		{"mailboxes empty", func(c *Config) { c.Accounts[0].Mailboxes = []string{} }, "accounts[0].mailboxes", "must list at least one mailbox"},
		{"mailbox blank", func(c *Config) { c.Accounts[0].Mailboxes = []string{"INBOX", " "} }, "accounts[0].mailboxes[1]", "must not be empty"},
		{"mailbox control", func(c *Config) { c.Accounts[0].Mailboxes = []string{"a\r\nb"} }, "accounts[0].mailboxes[0]", "must not contain control characters"},
		{"mailbox duplicate", func(c *Config) { c.Accounts[0].Mailboxes = []string{"Sent", "Sent"} }, "accounts[0].mailboxes[1]", `"Sent" is already listed as mailboxes[0]`},
		{"inbox any case", func(c *Config) { c.Accounts[0].Mailboxes = []string{"INBOX", "Inbox"} }, "accounts[0].mailboxes[1]", `"Inbox" is already listed as mailboxes[0]`},
		{"pattern empty in exclude", func(c *Config) { c.Accounts[0].Exclude = []string{""} }, "accounts[0].exclude[0]", "must not be empty"},
		{"pattern control in exclude", func(c *Config) { c.Accounts[0].Exclude = []string{"Spam\x00"} }, "accounts[0].exclude[0]", "must not contain control characters"},
		{"pattern duplicate", func(c *Config) { c.Accounts[0].Mailboxes = []string{"Lists/*", "INBOX", "Lists/*"} }, "accounts[0].mailboxes[2]", `"Lists/*" is already listed as mailboxes[0]`},
		{"special-use duplicate any case", func(c *Config) { c.Accounts[0].Mailboxes = []string{`\Sent`, `\sent`} }, "accounts[0].mailboxes[1]", `"\\sent" is already listed as mailboxes[0]`},
		{"exclude duplicate", func(c *Config) { c.Accounts[0].Exclude = []string{"Spam", "Trash", "Spam"} }, "accounts[0].exclude[2]", `"Spam" is already listed as exclude[0]`},
		{"special-use unknown", func(c *Config) { c.Accounts[0].Mailboxes = []string{"INBOX", `\Snet`} }, "accounts[0].mailboxes[1]",
			`"\\Snet" is not a special-use name (RFC 6154: \All, \Archive, \Drafts, \Flagged, \Important, \Junk, \Sent, \Trash); did you mean "\\Sent"?`},
		{"special-use far off", func(c *Config) { c.Accounts[0].Mailboxes = []string{`\Noselect`} }, "accounts[0].mailboxes[0]", `"\\Noselect" is not a special-use name (RFC 6154: \All, \Archive`},
		{"special-use too short to guess", func(c *Config) { c.Accounts[0].Exclude = []string{`\x`} }, "accounts[0].exclude[0]", `\Sent, \Trash)`},
		{"special-use unknown in exclude", func(c *Config) { c.Accounts[0].Exclude = []string{`\Spam`} }, "accounts[0].exclude[0]", `did you mean "\\Junk"?`},
		{"backslash inbox", func(c *Config) { c.Accounts[0].Mailboxes = []string{`\Inbox`} }, "accounts[0].mailboxes[0]", `"\\Inbox" is not a special-use name; write "INBOX" without the backslash`},
		{"literal excluded by literal", func(c *Config) {
			c.Accounts[0].Mailboxes, c.Accounts[0].Exclude = []string{"INBOX", "Spam"}, []string{"Trash", "Spam"}
		}, "accounts[0].mailboxes[1]", `"Spam" is also in exclude[1], so it would select nothing`},
		{"inbox excluded any case", func(c *Config) {
			c.Accounts[0].Mailboxes, c.Accounts[0].Exclude = []string{"INBOX"}, []string{"inbox"}
		}, "accounts[0].mailboxes[0]", `"INBOX" is also in exclude[0]`},
		{"literal excluded by star", func(c *Config) {
			c.Accounts[0].Mailboxes, c.Accounts[0].Exclude = []string{"Lists/golang/nuts"}, []string{"Lists/*"}
		}, "accounts[0].mailboxes[0]", `"Lists/golang/nuts" is excluded by exclude[0] "Lists/*"; remove it from one of the lists`},
		{"literal excluded by percent on any delimiter", func(c *Config) {
			c.Accounts[0].Mailboxes, c.Accounts[0].Exclude = []string{"Archive2024"}, []string{"Archive%"}
		}, "accounts[0].mailboxes[0]", `"Archive2024" is excluded by exclude[0] "Archive%"`},
		{"inbox excluded by everything", func(c *Config) { c.Accounts[0].Exclude = []string{"*"} }, "accounts[0].mailboxes[0]", `"INBOX" is excluded by exclude[0] "*"`},
		{"pattern also excluded", func(c *Config) {
			c.Accounts[0].Mailboxes, c.Accounts[0].Exclude = []string{"INBOX", `\Trash`}, []string{`\trash`}
		}, "accounts[0].mailboxes[1]", `"\\Trash" is also in exclude[0], so it would select nothing`},
		{"backfill unknown", func(c *Config) { c.Accounts[0].Backfill = "new" }, "accounts[0].backfill", `must be one of none, unseen, all, since:YYYY-MM-DD (got "new")`},
		{"backfill impossible date", func(c *Config) { c.Accounts[0].Backfill = "since:2024-02-30" }, "accounts[0].backfill", `since needs a real date as since:YYYY-MM-DD (got "since:2024-02-30")`},
		{"backfill not a date", func(c *Config) { c.Accounts[0].Backfill = "since:yesterday" }, "accounts[0].backfill", "since needs a real date"},
		{"output dir empty", func(c *Config) { c.Output.Dir = " " }, "output.dir", "must not be empty"},
		{"attachments unknown", func(c *Config) { c.Output.Attachments = "all" }, "output.attachments", `must be one of metadata, save (got "all")`},
		{"max_body_bytes zero", func(c *Config) { c.Output.MaxBodyBytes = 0 }, "output.max_body_bytes", "must be greater than 0 (got 0)"},
		{"poll_interval too short", func(c *Config) { c.Watch.PollInterval.Duration = 500 * time.Millisecond }, "watch.poll_interval", "must be at least 1s (got 500ms)"},
		{"max_backoff zero", func(c *Config) { c.Watch.MaxBackoff.Duration = 0 }, "watch.max_backoff", "must be greater than 0 (got 0s)"},
		{"idle_refresh zero", func(c *Config) { c.Watch.IdleRefresh.Duration = 0 }, "watch.idle_refresh", "must be greater than 0"},
		{"idle_refresh too long", func(c *Config) { c.Watch.IdleRefresh.Duration = 30 * time.Minute }, "watch.idle_refresh", "must be at most 29m: servers may drop an IDLE client after 30 minutes (RFC 2177) (got 30m)"},
		{"response_timeout zero", func(c *Config) { c.Watch.ResponseTimeout.Duration = 0 }, "watch.response_timeout", "must be greater than 0"},
		{"http addr no port", func(c *Config) { c.HTTP.Addr = "8025" }, "http.addr", `must be host:port or :port, like 127.0.0.1:8025 (got "8025")`},
		{"http addr named port", func(c *Config) { c.HTTP.Addr = "localhost:http" }, "http.addr", `port must be a number 0..65535 (got "localhost:http")`},
		{"http addr port too big", func(c *Config) { c.HTTP.Addr = "127.0.0.1:99999" }, "http.addr", "port must be a number 0..65535"},
		{"token_env not a name", func(c *Config) { c.HTTP.TokenEnv = "s3cr3t-t0ken" }, "http.token_env", "must be the name of an environment variable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p := loadValid(t)
			tt.mutate(c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			want := p + ": " + tt.field + ": "
			if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error:\n got %s\nwant %s…%s…", err, want, tt.msg)
			}
			if strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("one mistake gave several errors:\n%v", err)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != p || ce.Field != tt.field {
				t.Errorf("errors.As: %#v, want File %q Field %q", ce, p, tt.field)
			}
		})
	}
}

func TestValidate_passwordNotEchoed(t *testing.T) {
	c, _ := loadValid(t)
	c.Accounts[0].PasswordEnv = "correct horse battery"
	c.Accounts[0].Password = "Tr0ub4dor&3"
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, secret := range []string{"correct horse", "Tr0ub4dor"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error contains %q: %v", secret, err)
		}
	}
}

func TestValidate_reportsEveryProblem(t *testing.T) {
	c, p := loadValid(t)
	c.Accounts[0].TLS = "ssl"
	c.Accounts[0].Auth = "md5"
	c.Output.Attachments = "none"
	err := c.Validate()
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 problems, got:\n%v", err)
	}
	for i, field := range []string{"accounts[0].tls", "accounts[0].auth", "output.attachments"} {
		if !strings.HasPrefix(lines[i], p+": "+field+": ") {
			t.Errorf("line %d = %q, want field %s", i, lines[i], field)
		}
	}
}

func TestValidate_accepts(t *testing.T) {
	dir := t.TempDir()
	ca := writeFile(t, dir, "ca.pem", "-----BEGIN CERTIFICATE-----\n")
	tests := map[string]func(c *Config){
		"tls none on localhost": func(c *Config) { c.Accounts[0].TLS, c.Accounts[0].Host = "none", "localhost" },
		"tls none on 127.0.0.2": func(c *Config) { c.Accounts[0].TLS, c.Accounts[0].Host = "none", "127.0.0.2" },
		"tls none on ::1":       func(c *Config) { c.Accounts[0].TLS, c.Accounts[0].Host = "none", "::1" },
		"tls none with allow":   func(c *Config) { c.Accounts[0].TLS, c.Accounts[0].AllowInsecure = "none", true },
		"starttls":              func(c *Config) { c.Accounts[0].TLS = "starttls" },
		"ca_file present":       func(c *Config) { c.Accounts[0].CAFile = ca },
		"inline password":       func(c *Config) { c.Accounts[0].PasswordEnv, c.Accounts[0].Password = "", "pw" },
		"password_command": func(c *Config) {
			c.Accounts[0].PasswordEnv, c.Accounts[0].PasswordCommand = "", []string{"pass", "show", "x"}
		},
		"all auths":            func(c *Config) { c.Accounts[0].Auth = "oauthbearer" },
		"since date":           func(c *Config) { c.Accounts[0].Backfill = "since:2024-02-29" },
		"hierarchical mailbox": func(c *Config) { c.Accounts[0].Mailboxes = []string{"INBOX", "Lists/golang-nuts", "Entwürfe"} },
		"patterns and special-use": func(c *Config) {
			c.Accounts[0].Mailboxes = []string{"INBOX", "Lists/*", "Lists/%", `\Sent`, `\all`, "*"}
			c.Accounts[0].Exclude = []string{"Spam", `\Junk`, "Lists/old/*"}
		},
		// "Lists.go" is excluded by "Lists%" only where "." is not the
		// delimiter: the watcher decides, and exclude wins there.
		"exclusion that depends on the delimiter": func(c *Config) {
			c.Accounts[0].Mailboxes, c.Accounts[0].Exclude = []string{"Lists.go", "Lists/go"}, []string{"Lists%"}
		},
		// Which mailbox is \Sent is the server's to say.
		"literal and a special-use exclude": func(c *Config) {
			c.Accounts[0].Mailboxes, c.Accounts[0].Exclude = []string{"INBOX", "Sent"}, []string{`\Sent`}
		},
		"http on all interfaces":      func(c *Config) { c.HTTP.Addr = ":8025" },
		"http on ipv6":                func(c *Config) { c.HTTP.Addr = "[::1]:0" },
		"idle_refresh at the maximum": func(c *Config) { c.Watch.IdleRefresh.Duration = 29 * time.Minute },
		"save attachments":            func(c *Config) { c.Output.Attachments = "save" },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			c, _ := loadValid(t)
			mutate(c)
			if err := c.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestValidate_sourceless(t *testing.T) {
	// A Config built in code still gets a useful prefix.
	c := Defaults()
	err := c.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "config: accounts: ") {
		t.Errorf("err = %v", err)
	}
}

func TestAccount_helpers(t *testing.T) {
	loop := map[string]bool{
		"localhost": true, "LocalHost": true, "localhost.": true, "127.0.0.1": true, "127.9.9.9": true,
		"::1": true, "[::1]": true, "::ffff:127.0.0.1": true,
		"imap.example.com": false, "10.0.0.1": false, "::": false, "localhost.example.com": false, "0.0.0.0": false,
	}
	for host, want := range loop {
		if got := (Account{Host: host}).IsLoopback(); got != want {
			t.Errorf("IsLoopback(%q) = %v", host, got)
		}
	}

	for _, tt := range []struct {
		host string
		port int
		want string
	}{{"imap.example.com", 993, "imap.example.com:993"}, {"::1", 143, "[::1]:143"}, {"[::1]", 143, "[::1]:143"}} {
		if got := (Account{Host: tt.host, Port: tt.port}).Address(); got != tt.want {
			t.Errorf("Address(%q, %d) = %q, want %q", tt.host, tt.port, got, tt.want)
		}
	}

	for backfill, want := range map[string]struct {
		mode string
		date string
	}{
		"none": {"none", ""}, "unseen": {"unseen", ""}, "all": {"all", ""},
		"since:2024-03-01": {"since", "2024-03-01"}, "since:2024-13-01": {"", ""}, "bogus": {"", ""},
	} {
		mode, since := Account{Backfill: backfill}.BackfillSince()
		var date string
		if !since.IsZero() {
			date = since.Format(time.DateOnly)
			if since.Location() != time.UTC || since.Hour() != 0 {
				t.Errorf("%s: since = %v, want midnight UTC", backfill, since)
			}
		}
		if mode != want.mode || date != want.date {
			t.Errorf("BackfillSince(%q) = %q, %q; want %q, %q", backfill, mode, date, want.mode, want.date)
		}
	}
}

func TestValidate_caFileRelativeToWorkingDir(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "ca.pem", "x")
	t.Chdir(dir)
	c, _ := loadValid(t)
	c.Accounts[0].CAFile = "ca.pem"
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	if err := os.Remove(filepath.Join(dir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil {
		t.Error("missing ca_file accepted")
	}
}
