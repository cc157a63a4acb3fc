package statusweb

import (
	"net/http"
	"testing"
	"time"

	"mailtap/sinks"
)

// The sinks are in /api/status; one failing for more than ten minutes is
// marked failing; /readyz does not care.
func TestServer_sinks(t *testing.T) {
	now := time.Now()
	r := startRig(t, withOptions(Options{Addr: "127.0.0.1:0", Sinks: func() []sinks.Status {
		return []sinks.Status{
			{Name: "tickets", Type: "webhook", Target: "https://hooks.example.com/mail", State: sinks.StateRetrying,
				Backlog: 120, DeadLetters: 2, LastError: "answered 503", FailingSince: now.Add(-11 * time.Minute), LastErrorAt: now},
			{Name: "index", Type: "command", Target: "./bin/index-mail", State: sinks.StateRetrying, FailingSince: now.Add(-time.Minute)},
			{Name: "quiet", Type: "webhook", State: sinks.StateIdle, Delivered: 9, LastDelivery: now},
		}
	}}))
	st := r.status()
	if len(st.Sinks) != 3 {
		t.Fatalf("sinks = %+v", st.Sinks)
	}
	tk, ix, q := st.Sinks[0], st.Sinks[1], st.Sinks[2]
	if !tk.Failing || tk.Backlog != 120 || tk.DeadLetters != 2 || tk.LastError != "answered 503" || tk.FailingSince == nil {
		t.Errorf("tickets = %+v", tk)
	}
	if ix.Failing || ix.State != "retrying" {
		t.Errorf("index (failing for 1 min) = %+v", ix)
	}
	if q.Failing || q.Delivered != 9 || q.LastDelivery == nil {
		t.Errorf("quiet = %+v", q)
	}
	var p probeBody
	r.decode(r.do("GET", "/readyz", nil), http.StatusOK, &p)
}

func TestServer_noSinks(t *testing.T) {
	r := startRig(t)
	if st := r.status(); st.Sinks == nil || len(st.Sinks) != 0 {
		t.Errorf("sinks = %#v, want []", st.Sinks)
	}
}
