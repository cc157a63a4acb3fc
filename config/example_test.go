package config_test

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"mailtap/config"
)

const examplePath = "../config.example.json"

// TestExampleConfig keeps config.example.json loadable and valid as is, and
// checks that it shows every field of output, watch and http with its
// default, so that it doubles as documentation of the defaults.
func TestExampleConfig(t *testing.T) {
	c, err := config.Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	sources := make(map[string]string)
	for _, a := range c.Accounts {
		sources[a.Name] = a.PasswordSource()
	}
	want := map[string]string{
		"personal": "password_env MAILTAP_PASSWORD",
		"gmail":    `password_command "oama" (+2 args)`,
		"work":     `password_file "/run/secrets/work_imap_password"`,
	}
	if fmt.Sprint(sources) != fmt.Sprint(want) {
		t.Errorf("password sources = %v, want %v", sources, want)
	}

	d := config.Defaults()
	if !reflect.DeepEqual(c.Output, d.Output) || !reflect.DeepEqual(c.Watch, d.Watch) {
		t.Errorf("example output/watch differ from Defaults():\n%+v %+v\n%+v %+v", c.Output, c.Watch, d.Output, d.Watch)
	}

	raw, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	for _, section := range []string{"output", "watch", "http"} {
		var fields map[string]any
		if err := json.Unmarshal(all[section], &fields); err != nil {
			t.Fatalf("example %s: %v", section, err)
		}
		typ := reflect.TypeOf(*d).FieldByIndex(fieldIndex(t, section))
		for f := range typ.Type.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if _, ok := fields[name]; !ok {
				t.Errorf("example %s lacks %q", section, name)
			}
		}
	}
}

// fieldIndex finds the Config field whose JSON name is section.
func fieldIndex(t *testing.T, section string) []int {
	t.Helper()
	for f := range reflect.TypeFor[config.Config]().Fields() {
		if f.Tag.Get("json") == section {
			return f.Index
		}
	}
	t.Fatalf("no Config field %q", section)
	return nil
}

func ExampleLoad() {
	c, err := config.Load("../config.example.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := c.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range c.Accounts {
		fmt.Println(a)
	}
	// Output:
	// personal: me@example.com@imap.example.com:993 tls=implicit auth=plain password_env MAILTAP_PASSWORD mailboxes=["INBOX"] backfill=none
	// gmail: me@gmail.com@imap.gmail.com:993 tls=implicit auth=xoauth2 password_command "oama" (+2 args) mailboxes=["INBOX" "\\Sent"] backfill=since:2025-01-01
	// work: jdoe@mail.example.org:143 tls=starttls auth=login password_file "/run/secrets/work_imap_password" mailboxes=["INBOX" "Support/*"] exclude=["Support/Archive/*" "\\Junk"] backfill=unseen
}

func ExampleError() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := dir + "/config.json"
	os.WriteFile(path, []byte("{\n  \"accounts\": [{\"hots\": \"imap.example.com\"}]\n}\n"), 0o600)

	_, err := config.Load(path)
	fmt.Println(strings.TrimPrefix(err.Error(), dir+"/"))
	// Output:
	// config.json:2:17: accounts[0]: unknown field "hots" (did you mean "host"?)
}
