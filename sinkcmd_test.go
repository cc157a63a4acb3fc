package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mailtap/jsonstore"
)

// sinkCmdFixture is an output dir with three committed records and a
// config whose webhook sink points at srv.
func sinkCmdFixture(t *testing.T, url string) (cfgPath, out string) {
	t.Helper()
	dir := t.TempDir()
	out = filepath.Join(dir, "out")
	st, err := jsonstore.Open(out, jsonstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := st.NewBatch("a", "INBOX", 5, '/')
	for u := uint32(1); u <= 3; u++ {
		p, err := b.Parse(u, strings.NewReader(fmt.Sprintf("Subject: m%d\r\n\r\nhi\r\n", u)))
		if err != nil {
			t.Fatal(err)
		}
		b.Finish(p, jsonstore.Meta{UID: u, InternalDate: time.Now()})
	}
	if _, err := b.Commit(3); err != nil {
		t.Fatal(err)
	}
	st.Close()
	cfgPath = filepath.Join(dir, "config.json")
	os.WriteFile(cfgPath, []byte(`{"accounts":[{"name":"a","host":"imap.example.com","username":"u","password":"p"}],
		"output":{"dir":"`+out+`"},
		"sinks":[{"name":"hook","type":"webhook","url":"`+url+`","concurrency":2}]}`), 0o600)
	return cfgPath, out
}

func TestSinkCommands(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Idempotency-Key") == "" {
			w.WriteHeader(400)
			return
		}
		got.Add(1)
	}))
	defer srv.Close()
	cfgPath, _ := sinkCmdFixture(t, srv.URL)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"sinks lists", []string{"sinks", "-c", cfgPath}, exitOK, "(not started)"},
		{"sinks help", []string{"sinks", "--help"}, exitOK, "mailtap sinks"},
		{"replay needs a selector", []string{"replay", "--sink", "hook", "-c", cfgPath}, exitUsage, "exactly one of"},
		{"replay one selector only", []string{"replay", "--sink", "hook", "--dead", "--id", "x", "-c", cfgPath}, exitUsage, "exactly one of"},
		{"replay unknown sink", []string{"replay", "--sink", "nope", "--dead", "-c", cfgPath}, exitUsage, `no sink "nope"`},
		{"replay bad since", []string{"replay", "--sink", "hook", "--since", "yesterday", "-c", cfgPath}, exitUsage, "RFC 3339"},
		{"replay unknown id", []string{"replay", "--sink", "hook", "--id", "a/INBOX/5/9", "-c", cfgPath}, exitFailure, "not in the journal"},
		{"replay id", []string{"replay", "--sink", "hook", "--id", "a/INBOX/5/2", "-c", cfgPath}, exitOK, "ok   a/INBOX/5/2"},
		{"replay since", []string{"replay", "--sink", "hook", "--since", "2000-01-01T00:00:00Z", "-c", cfgPath}, exitOK, "3 delivered, 0 failed"},
		{"replay no dead letters", []string{"replay", "--sink", "hook", "--dead", "-c", cfgPath}, exitOK, "0 delivered, 0 failed"},
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
	if got.Load() != 4 {
		t.Errorf("receiver got %d deliveries, want 4 (one by id, three since)", got.Load())
	}
}

func TestSinkCommands_failedReplayExits1(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	cfgPath, _ := sinkCmdFixture(t, srv.URL)
	var out, errb bytes.Buffer
	if code := run([]string{"replay", "--sink", "hook", "--id", "a/INBOX/5/1", "-c", cfgPath}, &out, &errb); code != exitFailure {
		t.Errorf("exit %d, want 1\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "FAIL a/INBOX/5/1") || !strings.Contains(out.String(), "503") {
		t.Errorf("output: %s", out.String())
	}
}
