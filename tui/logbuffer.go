package tui

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LogEntry is one warning or error kept for the log pane.
type LogEntry struct {
	Seq     uint64 // 1, 2, … in arrival order
	Time    time.Time
	Level   slog.Level
	Message string
	Attrs   string // "key=value …", groups as "group.key"
}

// LogBuffer is an slog.Handler for TUI mode: every record goes on to next
// (a file handler: the terminal belongs to the UI), and the last size
// records at Warn or above are kept in memory for the log pane. It is safe
// for concurrent use and never blocks the logging goroutine beyond a short
// mutex: the watcher logs from its session loops, which must not wait for
// the UI.
type LogBuffer struct {
	next   slog.Handler // nil: keep only
	core   *logCore     // shared by every handler derived with WithAttrs/WithGroup
	prefix string       // formatted attrs added by WithAttrs
	group  string       // "a.b." from WithGroup, for the keys that follow
}

type logCore struct {
	mu      sync.Mutex
	ring    []LogEntry
	head, n int
	seq     uint64
	changed chan struct{} // closed (and replaced) when something is added
}

// NewLogBuffer wraps next (nil to keep records only in memory) and keeps
// the last size warnings and errors (at least 1).
func NewLogBuffer(next slog.Handler, size int) *LogBuffer {
	if size < 1 {
		size = 1
	}
	return &LogBuffer{next: next, core: &logCore{ring: make([]LogEntry, size), changed: make(chan struct{})}}
}

// Enabled reports whether next wants the level, and always for warnings and
// errors, which the pane keeps even when the file log is quieter.
func (b *LogBuffer) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn || (b.next != nil && b.next.Enabled(ctx, level))
}

// Handle keeps r if it is a warning or an error and passes it to next if
// next is enabled for its level.
func (b *LogBuffer) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		b.keep(r)
	}
	if b.next != nil && b.next.Enabled(ctx, r.Level) {
		return b.next.Handle(ctx, r)
	}
	return nil
}

func (b *LogBuffer) keep(r slog.Record) {
	var sb strings.Builder
	sb.WriteString(b.prefix)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&sb, b.group, a)
		return true
	})
	e := LogEntry{Time: r.Time, Level: r.Level, Message: r.Message, Attrs: strings.TrimSpace(sb.String())}
	c := b.core
	c.mu.Lock()
	c.seq++
	e.Seq = c.seq
	if c.n == len(c.ring) {
		c.ring[c.head] = e
		c.head = (c.head + 1) % len(c.ring)
	} else {
		c.ring[(c.head+c.n)%len(c.ring)] = e
		c.n++
	}
	close(c.changed) // wakes every reader: the local TUI and each SSH session
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// WithAttrs returns a handler whose records carry attrs, sharing this
// buffer.
func (b *LogBuffer) WithAttrs(attrs []slog.Attr) slog.Handler {
	var sb strings.Builder
	sb.WriteString(b.prefix)
	for _, a := range attrs {
		appendAttr(&sb, b.group, a)
	}
	nb := *b
	nb.prefix = sb.String()
	if b.next != nil {
		nb.next = b.next.WithAttrs(attrs)
	}
	return &nb
}

// WithGroup returns a handler that qualifies later keys with name.
func (b *LogBuffer) WithGroup(name string) slog.Handler {
	if name == "" {
		return b
	}
	nb := *b
	nb.group = b.group + name + "."
	if b.next != nil {
		nb.next = b.next.WithGroup(name)
	}
	return &nb
}

// Entries returns the kept records, oldest first.
func (b *LogBuffer) Entries() []LogEntry {
	c := b.core
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]LogEntry, c.n)
	for i := range c.n {
		out[i] = c.ring[(c.head+i)%len(c.ring)]
	}
	return out
}

// Changed returns a channel that is closed when the next record is kept.
// Every reader gets its own wake-up (never blocking the logger); take the
// channel before reading Entries, so that nothing kept in between is
// missed.
func (b *LogBuffer) Changed() <-chan struct{} {
	c := b.core
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// appendAttr writes " key=value" in the style of slog's text handler,
// flattening groups into dotted keys.
func appendAttr(sb *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			appendAttr(sb, g, ga)
		}
		return
	}
	sb.WriteByte(' ')
	sb.WriteString(group)
	sb.WriteString(a.Key)
	sb.WriteByte('=')
	v := a.Value.String()
	if a.Value.Kind() == slog.KindTime {
		v = a.Value.Time().Format(time.RFC3339)
	}
	if v == "" || strings.ContainsAny(v, " \t\n\"=") || !strconv.CanBackquote(v) {
		v = strconv.Quote(v)
	}
	sb.WriteString(v)
}
