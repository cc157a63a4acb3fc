package sinks

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"mailtap/jsonstore"
	"mailtap/record"
)

// committed_at has the one form of every time in records and the API.
func TestEnvelope_committedAtInTimeLayout(t *testing.T) {
	out := t.TempDir()
	if err := os.WriteFile(filepath.Join(out, "r.json"), []byte(`{"id":"a/b/1/1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	east := time.FixedZone("east", 2*3600)
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "2026-01-02T03:04:05.000Z"},
		{time.Date(2026, 1, 2, 3, 4, 5, 120_000_000, time.UTC), "2026-01-02T03:04:05.120Z"},
		{time.Date(2026, 1, 2, 3, 4, 5, 123_456_789, east), "2026-01-02T01:04:05.123Z"},
	} {
		b, err := buildEnvelope(out, jsonstore.JournalEntry{ID: "a/b/1/1", Path: "r.json", CommittedAt: tc.at}, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			CommittedAt string `json:"committed_at"`
		}
		if err := json.Unmarshal(b, &env); err != nil || env.CommittedAt != tc.want {
			t.Errorf("committed_at of %s = %q (%v), want %q", tc.at, env.CommittedAt, err, tc.want)
		}
	}
}

// A delivered envelope carries the journal's committed time exactly, so a
// receiver can pass it to replay --since.
func TestEnvelope_committedAtIsTheJournals(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	m, _ := e.start(webhookCfg(rc.srv.URL))
	e.commit("INBOX", 1)
	waitFor(t, "a delivery", func() bool { return statusOf(m).Delivered == 1 })
	var env struct {
		CommittedAt string `json:"committed_at"`
	}
	if err := json.Unmarshal(rc.requests()[0].body, &env); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(env.CommittedAt) {
		t.Fatalf("committed_at %q is not in record.TimeLayout", env.CommittedAt)
	}
	r := jsonstore.NewJournalReader(e.out, jsonstore.JournalPos{})
	defer r.Close()
	je, err := r.Next(jsonstore.JournalPos{})
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	got, err := time.Parse(record.TimeLayout, env.CommittedAt)
	if err != nil || !got.Equal(je.CommittedAt) {
		t.Errorf("envelope committed_at %s, journal %s", env.CommittedAt, je.CommittedAt.Format(time.RFC3339Nano))
	}
}
