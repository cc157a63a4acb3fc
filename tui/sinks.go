package tui

import (
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"mailtap/sinks"
)

// The sinks in the title bar: " · sinks: tickets ok · index 120 behind".
// Their state changes without watcher events, so it is fetched on its own
// slow tick, in a command (the snapshot takes a lock, never I/O).

// sinksMsg is a snapshot of the sinks.
type sinksMsg struct{ st []sinks.Status }

const sinksRefresh = 2 * time.Second

func sinksCmd(get func() []sinks.Status, delay time.Duration) tea.Cmd {
	if get == nil {
		return nil
	}
	fetch := func() tea.Msg { return sinksMsg{st: get()} }
	if delay <= 0 {
		return fetch
	}
	return tea.Tick(delay, func(time.Time) tea.Msg { return fetch() })
}

func (m *model) applySinks(msg sinksMsg) tea.Cmd {
	m.sinks = msg.st
	return sinksCmd(m.opts.Sinks, sinksRefresh)
}

// sinkSummary is the title bar's part about sinks, "" without any.
func (m *model) sinkSummary() string {
	if len(m.sinks) == 0 {
		return ""
	}
	now := m.now()
	parts := make([]string, 0, len(m.sinks))
	for _, s := range m.sinks {
		state := "ok"
		switch {
		case s.Failing(now):
			state = "FAILING"
		case s.State == sinks.StateRetrying:
			state = "retrying"
		case s.State == sinks.StateStopped:
			state = "stopped"
		}
		if s.Backlog > 0 {
			state += fmt.Sprintf(" %d behind", s.Backlog)
		}
		if s.DeadLetters > 0 {
			state += fmt.Sprintf(" %d dead", s.DeadLetters)
		}
		parts = append(parts, sanitizeLine(s.Name)+" "+state)
	}
	return m.glyphs.Sep + "sinks: " + strings.Join(parts, ", ")
}
