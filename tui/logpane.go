package tui

import (
	"log/slog"
	"strings"

	"charm.land/bubbles/v2/viewport"
)

// logsMsg delivers a copy of the log buffer.
type logsMsg struct{ entries []LogEntry }

// logPane shows the recent warnings and errors, newest at the bottom like a
// log file, in a scrollable viewport.
type logPane struct {
	vp      viewport.Model
	entries []LogEntry
	width   int
	styles  *Styles
}

func newLogPane(st *Styles) *logPane {
	return &logPane{vp: viewport.New(), styles: st}
}

func (p *logPane) setSize(width, height int) {
	p.width = width
	p.vp.SetWidth(width)
	p.vp.SetHeight(max(height, 1))
	p.fill()
}

func (p *logPane) setEntries(es []LogEntry) {
	atBottom := p.vp.AtBottom() || len(p.entries) == 0
	p.entries = es
	p.fill()
	if atBottom {
		p.vp.GotoBottom()
	}
}

func (p *logPane) fill() {
	if len(p.entries) == 0 {
		p.vp.SetContentLines([]string{" No warnings or errors so far."})
		return
	}
	w := max(p.width-1, 1)
	var lines []string
	for _, e := range p.entries {
		level, ls := "WARN ", p.styles.LogWarn
		if e.Level >= slog.LevelError {
			level, ls = "ERROR", p.styles.LogError
		}
		text := sanitizeLine(e.Message)
		if e.Attrs != "" {
			text += " " + sanitizeLine(e.Attrs)
		}
		// time (8) + level (5) + 3 spaces lead; continuation lines indent
		// to the message.
		head := " " + p.styles.LogTime.Render(e.Time.Format("15:04:05")) + " " + ls.Render(level) + " "
		const indent = 16
		for i, l := range wrapLines(text, max(w-indent, 10)) {
			if i == 0 {
				lines = append(lines, head+l)
			} else {
				lines = append(lines, strings.Repeat(" ", indent)+l)
			}
		}
	}
	p.vp.SetContentLines(lines)
}

func (m *model) renderLogs(b *strings.Builder, width int) {
	st := &m.styles
	title := " Warnings and errors (most recent last)"
	if m.opts.Logs == nil && len(m.logs.entries) == 0 {
		title = " No log buffer: warnings and errors go to the log file"
	}
	if p := m.opts.LogPath; p != "" {
		// Where everything else is; the shorter label when space is short.
		title = " Warnings and errors · full log: " + sanitizeLine(p)
		if widthOf(title) > width {
			title = " Full log: " + sanitizeLine(p)
		}
	}
	b.WriteString(st.Section.Render(pad(truncate(title, width), width)))
	b.WriteString("\n")
	b.WriteString(m.logs.vp.View())
}
