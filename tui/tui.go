// Package tui is mailtap's terminal monitor (design.md §7): a Bubble Tea
// program showing every watched mailbox with its state and counters, a live
// list of captured mail (newest first, fast at 100,000 rows, filterable),
// a detail view read from the JSON record on disk, the recent warnings and
// errors, and keys to pause, resume and reconnect mailboxes.
//
// The UI is a subscriber like any other: it reads the watcher's events
// through a bounded subscription and steers it through watcher.Controller.
// Nothing here is on the capture path — a frozen or slow UI loses old UI
// events (and says so), never mail. The model does no I/O in Update: files
// are read and the controller is called in commands.
//
// Everything that came from an email is stripped of control characters and
// escape sequences before it is drawn (sanitize.go).
package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"

	"mailtap/sinks"
	"mailtap/watcher"
)

// Options configure the monitor. The zero value works.
type Options struct {
	// Out is the output dir; records already there are listed at start.
	Out string
	// Logs, if set, feeds the log pane (l). Install it as the slog handler
	// in TUI mode so that logs never write onto the screen.
	Logs *LogBuffer
	// LogPath is the full log file, named in the log pane (which keeps
	// only warnings and errors).
	LogPath string
	// Version is shown in the title bar.
	Version string
	// Sinks, if set, gives the sinks' state for the title bar
	// ((*sinks.Manager).Status).
	Sinks func() []sinks.Status
	// ReadOnly sessions see everything but cannot pause, resume or
	// reconnect: those keys only say so, and the footer shows it.
	ReadOnly bool

	// RecentLimit is how many records on disk are listed at start
	// (default 500).
	RecentLimit int
	// MaxRows caps the rows kept in memory; the oldest are forgotten by the
	// list (never deleted from disk). Default 250,000.
	MaxRows int

	// NoColor selects NoColorStyles. Run also sets it when NO_COLOR is set
	// to anything non-empty.
	NoColor bool
	// ASCII draws with 7-bit ASCII glyphs. Run also sets it when the locale
	// is not UTF-8.
	ASCII bool
	// Styles and Glyphs override the defaults chosen from NoColor and
	// ASCII, if their fields are set.
	Styles Styles
	Glyphs Glyphs

	// Now and Location fix the clock and zone (tests). Defaults: time.Now,
	// time.Local.
	Now      func() time.Time
	Location *time.Location

	// ProgramOptions are passed to tea.NewProgram by Run (input, output,
	// colour profile, for tests and embedding).
	ProgramOptions []tea.ProgramOption
}

func (o *Options) defaults() {
	if o.RecentLimit <= 0 {
		o.RecentLimit = 500
	}
	if o.MaxRows <= 0 {
		o.MaxRows = 250_000
	}
	if o.Styles.Badge == nil {
		if o.NoColor {
			o.Styles = NoColorStyles()
		} else {
			o.Styles = DefaultStyles()
		}
	}
	if o.Glyphs.Attachment == "" {
		if o.ASCII {
			o.Glyphs = ASCIIGlyphs()
		} else {
			o.Glyphs = UnicodeGlyphs()
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.Local
	}
}

// eventBuffer is the subscription size: about a minute of a heavy backfill.
// Past it the hub drops the oldest events for the UI, never for capture.
const eventBuffer = 4096

// EventBuffer is the subscription size to give NewProgram.
const EventBuffer = eventBuffer

// Run shows the monitor until the user quits (q, ctrl+c) or ctx ends, and
// returns nil in both cases. It never blocks capture: events reach the UI
// through a bounded subscription that drops for the UI when it falls
// behind. ctrl's watcher keeps running after Run returns; stopping it is
// the caller's job.
func Run(ctx context.Context, ctrl watcher.Controller, opts Options) error {
	opts.ApplyEnv(os.Getenv)
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Subscribe before the model asks for the first status snapshot, so no
	// event falls between the two.
	sub := ctrl.Subscribe(eventBuffer)
	defer sub.Close()

	p, wait := NewProgram(ctx, ctrl, sub, opts)
	_, err := p.Run()
	cancel()
	sub.Close()
	wait()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tea.ErrProgramKilled) && parent.Err() != nil:
		return nil // the caller's context ended: shutting down
	case errors.Is(err, tea.ErrInterrupted):
		return nil // SIGINT from outside the terminal: a way to quit
	default:
		return fmt.Errorf("terminal UI: %w", err)
	}
}

// maxBatch bounds one eventsMsg, so a burst is applied in a few updates
// (and frames) instead of one per event, while a single huge batch still
// cannot stall the loop.
const maxBatch = 1024

// startBridges starts the goroutines that feed the program: one bridges
// the watcher's events (batched) into send, one forwards log-buffer
// changes. Both end when ctx does; the returned func waits for them.
func startBridges(ctx context.Context, sub *watcher.Subscription, logs *LogBuffer, send func(tea.Msg)) (wait func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		bridgeEvents(ctx, sub, send)
	}()
	if logs != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The next channel is taken before Entries is read, so a
			// record kept in between is either read or wakes us again.
			changed := logs.Changed()
			for {
				select {
				case <-ctx.Done():
					return
				case <-changed:
				}
				changed = logs.Changed()
				send(logsMsg{entries: logs.Entries()})
			}
		}()
	}
	return wg.Wait
}

// bridgeEvents blocks for one event, then takes whatever else is already
// queued (up to maxBatch) without waiting, and sends the batch. While send
// blocks (the UI is busy), events wait in the subscription's ring, where
// the hub drops the oldest if the UI falls too far behind.
func bridgeEvents(ctx context.Context, sub *watcher.Subscription, send func(tea.Msg)) {
	// Next with a done context returns a queued event or an error at once.
	done, stop := context.WithCancel(context.Background())
	stop()
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			return
		}
		batch := []watcher.Event{ev}
		for len(batch) < maxBatch {
			ev, err := sub.Next(done)
			if err != nil {
				break
			}
			batch = append(batch, ev)
		}
		send(eventsMsg{events: batch})
		if ctx.Err() != nil {
			return
		}
	}
}

// utf8Locale reports whether the locale (LC_ALL, LC_CTYPE, LANG, the first
// set) is UTF-8, as terminals configured for it expect.
func utf8Locale(getenv func(string) string) bool {
	for _, v := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		if s := getenv(v); s != "" {
			s = strings.ToLower(s)
			return strings.Contains(s, "utf-8") || strings.Contains(s, "utf8")
		}
	}
	return false
}
