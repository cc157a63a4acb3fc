package watcher

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailtap/config"
	"mailtap/jsonstore"
)

func livenessManager(t *testing.T, reg prometheus.Registerer) *Manager {
	t.Helper()
	cfg := config.Defaults()
	cfg.Accounts = []config.Account{{Name: "acct", Host: "127.0.0.1", Port: 1, Mailboxes: []string{"INBOX"}}}
	cfg.Watch.IdleRefresh.Duration = time.Minute
	cfg.Watch.ResponseTimeout.Duration = 10 * time.Second
	cfg.Watch.PollInterval.Duration = 5 * time.Minute
	store, err := jsonstore.Open(t.TempDir(), jsonstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var metrics *Metrics
	if reg != nil {
		metrics = NewMetrics(reg)
	}
	return New(cfg, store, &Options{Metrics: metrics})
}

// An "idle" mailbox whose server has said nothing for more than two
// refreshes is not ready: the state alone proves nothing.
func TestReady_failsWithoutServerContact(t *testing.T) {
	m := livenessManager(t, nil)
	s := m.sessions[0]
	s.status.State = StateIdle
	s.contact.Store(time.Now().Add(-time.Minute).UnixNano())
	if ok, why := m.Ready(); !ok {
		t.Fatalf("not ready one refresh after contact: %s", why)
	}
	s.contact.Store(time.Now().Add(-2*(time.Minute+10*time.Second) - time.Second).UnixNano())
	ok, why := m.Ready()
	if ok || !strings.Contains(why, "no contact with the server") {
		t.Errorf("ready = %v (%s), want not ready for lack of contact", ok, why)
	}
	// Polling allows a poll_interval of silence instead.
	s.status.State = StatePolling
	if ok, why := m.Ready(); !ok {
		t.Errorf("polling every 5m, 2m20s of silence: not ready (%s)", why)
	}
	// Paused mailboxes are not expected to talk.
	s.status.State = StatePaused
	s.contact.Store(time.Now().Add(-time.Hour).UnixNano())
	if ok, why := m.Ready(); !ok {
		t.Errorf("paused: %s", why)
	}
}

// A session that never reached its server counts from the start.
func TestReady_neverContactedCountsFromStart(t *testing.T) {
	m := livenessManager(t, nil)
	m.sessions[0].status.State = StateIdle
	if ok, why := m.Ready(); !ok {
		t.Fatalf("fresh manager: %s", why)
	}
	m.started = time.Now().Add(-time.Hour)
	if ok, _ := m.Ready(); ok {
		t.Errorf("ready after an hour without any contact")
	}
}

func TestMetrics_lastServerContact(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := livenessManager(t, reg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	present := false
	for _, f := range families {
		if f.GetName() == "mailtap_last_server_contact_timestamp_seconds" {
			for _, mt := range f.GetMetric() {
				present = true
				if v := mt.GetGauge().GetValue(); v != 0 {
					t.Errorf("before any contact: %v, want 0", v)
				}
			}
		}
	}
	if !present {
		t.Error("no series before the first contact")
	}
	at := time.Unix(1_800_000_000, 500_000_000)
	m.sessions[0].contact.Store(at.UnixNano())
	families, err = reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range families {
		if f.GetName() != "mailtap_last_server_contact_timestamp_seconds" {
			continue
		}
		for _, mt := range f.GetMetric() {
			found = true
			if v := mt.GetGauge().GetValue(); v != 1_800_000_000.5 {
				t.Errorf("value %v", v)
			}
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["account"] != "acct" || labels["mailbox"] != "INBOX" {
				t.Errorf("labels %v", labels)
			}
		}
	}
	if !found {
		t.Error("no mailtap_last_server_contact_timestamp_seconds series")
	}
}
