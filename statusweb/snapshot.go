package statusweb

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"mailtap/record"
	"mailtap/watcher"
)

// Snapshots is what GET /api/status reports: the watcher's mailboxes and
// the last captured mail. It is the status server's, and can be shared
// with other readers of the same JSON (`ssh host status`, package sshui),
// so that there is one shape of it and one subscription feeding the
// recent list.
type Snapshots struct {
	w             watcher.Controller
	version       string
	tokenRequired bool
	log           *slog.Logger
	started       time.Time
	sinkStatus    SinkStatus

	// sub feeds recent. It is taken in NewSnapshots, before the watcher
	// starts, so the first captures of a run are not missed.
	sub    *watcher.Subscription
	recent recentRing
}

// SnapshotOptions configure NewSnapshots.
type SnapshotOptions struct {
	Version string
	// TokenRequired is reported as token_required: the status server's
	// control API wants a bearer token.
	TokenRequired bool
	Logger        *slog.Logger // nil: slog.Default()
	// Sinks, if set, gives the sinks' state (sinks.go).
	Sinks SinkStatus
}

// NewSnapshots subscribes to w; call Run to keep the recent list fed (and,
// when it returns, the subscription closed).
func NewSnapshots(w watcher.Controller, opts SnapshotOptions) *Snapshots {
	s := &Snapshots{w: w, version: opts.Version, tokenRequired: opts.TokenRequired, log: opts.Logger, started: time.Now(), sinkStatus: opts.Sinks}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.sub = w.Subscribe(1024)
	return s
}

// Run keeps the recent list up to date until ctx ends, then closes the
// subscription.
func (s *Snapshots) Run(ctx context.Context) {
	defer s.sub.Close()
	for {
		e, err := s.sub.Next(ctx)
		if err != nil {
			return
		}
		switch e := e.(type) {
		case watcher.Captured:
			s.recent.add(itemOf(e))
		case watcher.Dropped:
			// Only possible if this loop stalls for 1024 captures; the
			// ring simply lacks those.
			s.log.Debug("recent list missed captures", "n", e.N)
		}
	}
}

func (s *Snapshots) mailboxes() []mailboxJSON {
	sts := s.w.Status()
	out := make([]mailboxJSON, 0, len(sts))
	for _, st := range sts {
		out = append(out, mailboxOf(st))
	}
	return out
}

// status is the full snapshot.
func (s *Snapshots) status() statusJSON {
	return statusJSON{
		Version: s.version, Started: record.FormatTime(s.started), Now: record.FormatTime(time.Now()),
		TokenRequired: s.tokenRequired, Mailboxes: s.mailboxes(), Recent: s.recent.list(),
		Sinks: s.sinks(),
	}
}

// JSON is the body of GET /api/status, newline-terminated.
func (s *Snapshots) JSON() ([]byte, error) {
	b, err := json.Marshal(s.status())
	if err != nil {
		return nil, fmt.Errorf("encode status: %w", err)
	}
	return append(b, '\n'), nil
}
