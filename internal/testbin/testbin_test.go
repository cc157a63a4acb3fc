package testbin

import (
	"path/filepath"
	"testing"

	"mailtap/config"
)

// The mirror must stay a config that mailtap accepts, field for field.
func TestConfig_acceptedByConfigLoad(t *testing.T) {
	c := &Config{
		Accounts: []Account{{Name: "acct", Host: "127.0.0.1", Port: 1143, TLS: "none", Username: "u",
			Password: "p", Auth: "plain", Mailboxes: []string{"INBOX"}, Backfill: "all"}},
		Output: Output{Dir: t.TempDir(), Attachments: "save", MaxBodyBytes: 4096, SaveRaw: true, Pretty: true},
		Watch:  Watch{IDLE: true, PollInterval: "2s", MaxBackoff: "1s", IdleRefresh: "3s", ResponseTimeout: "4s"},
	}
	got, err := config.Load(c.Write(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	a := got.Accounts[0]
	if a.Password != "p" || a.Port != 1143 || got.Output.MaxBodyBytes != 4096 || !got.Output.SaveRaw ||
		got.Watch.ResponseTimeout.Seconds() != 4 || got.Output.Attachments != "save" {
		t.Errorf("config read back differs: %+v %+v %+v", a.Name, got.Output, got.Watch)
	}
}

func TestBuild_writesABinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mailtap")
	}
	out := filepath.Join(t.TempDir(), "mailtap")
	if err := Build(out, nil); err != nil {
		t.Fatal(err)
	}
}
