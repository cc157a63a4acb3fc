package statusweb

import (
	"time"

	"mailtap/sinks"
)

// sinkJSON is one sink as /api/status shows it. State is "failing" once
// the sink has failed for longer than ten minutes; /readyz ignores sinks.
type sinkJSON struct {
	Name         string   `json:"name"`
	Type         string   `json:"type"`
	Target       string   `json:"target"` // the URL's scheme and host, or the program
	State        string   `json:"state"`
	Failing      bool     `json:"failing"`
	Backlog      int64    `json:"backlog"`
	Delivered    int64    `json:"delivered"`
	DeadLetters  int      `json:"dead_letters"`
	LastDelivery *apiTime `json:"last_delivery"`
	LastError    string   `json:"last_error"`
	FailingSince *apiTime `json:"failing_since"`
	NextRetry    *apiTime `json:"next_retry"`
}

func (s *Snapshots) sinks() []sinkJSON {
	out := []sinkJSON{}
	if s.sinkStatus == nil {
		return out
	}
	now := time.Now()
	for _, st := range s.sinkStatus() {
		out = append(out, sinkJSON{Name: st.Name, Type: st.Type, Target: st.Target, State: st.State, Failing: st.Failing(now),
			Backlog: st.Backlog, Delivered: st.Delivered, DeadLetters: st.DeadLetters, LastDelivery: optTime(st.LastDelivery),
			LastError: st.LastError, FailingSince: optTime(st.FailingSince), NextRetry: optTime(st.NextRetry)})
	}
	return out
}

// SinkStatus is what the server needs from the sinks; (*sinks.Manager).Status.
type SinkStatus func() []sinks.Status
