package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"mailtap/record"
	"mailtap/watcher"
)

// boxState is what the header knows of one watched mailbox. State comes
// from StateChanged events as they happen and from Status snapshots;
// counters come from snapshots only (the watcher is their single source of
// truth, so no event can be counted twice).
type boxState struct {
	id    watcher.MailboxID
	label string // sanitized "account/mailbox"

	state   watcher.State
	err     string // sanitized
	next    time.Time
	stateAt time.Time // time of the event or snapshot the state came from

	paused      bool // requested (the snapshot's Paused, or our own request)
	captured    int64
	errors      int64
	lastCapture time.Time

	// On disk: the count at the start-up scan plus records captured since
	// whose UID is above anything the scan saw.
	diskKnown bool
	disk      int
	diskMax   map[uint32]uint32 // per UIDVALIDITY: highest UID counted
}

func newBoxState(id watcher.MailboxID) *boxState {
	return &boxState{id: id, label: sanitizeLine(id.String()), state: watcher.StateStopped}
}

// applyEvent takes a StateChanged unless a newer snapshot already covers it.
func (b *boxState) applyEvent(ev watcher.StateChanged) {
	if ev.At.Before(b.stateAt) {
		return
	}
	b.state, b.err, b.next, b.stateAt = ev.State, sanitizeLine(ev.Err), ev.NextRetry, ev.At
}

// applySnapshot takes counters always and the state if the snapshot (taken
// at at) is newer than the last event applied: an event still queued from
// before the snapshot must not roll the state back, and is then ignored by
// applyEvent.
func (b *boxState) applySnapshot(st watcher.MailboxStatus, at time.Time) {
	b.captured, b.errors, b.lastCapture, b.paused = st.Captured, st.Errors, st.LastCapture, st.Paused
	if !at.Before(b.stateAt) {
		b.state, b.err, b.next, b.stateAt = st.State, sanitizeLine(st.Err), st.NextRetry, at
	}
}

// countCapture counts a newly seen record toward "on disk".
func (b *boxState) countCapture(s record.Summary) {
	if !b.diskKnown {
		return
	}
	if s.UID > b.diskMax[s.UIDValidity] {
		b.diskMax[s.UIDValidity] = s.UID
		b.disk++
	}
}

// badge is the state as words, with the countdown to the next attempt.
func (b *boxState) badge(now time.Time) string {
	switch b.state {
	case watcher.StatePaused:
		if !b.paused {
			return "resuming"
		}
		return "paused"
	case watcher.StateReconnecting:
		if d := b.next.Sub(now); d > 0 {
			return "reconnecting in " + countdown(d)
		}
		return "reconnecting"
	case watcher.StateAuthFailed, watcher.StateError:
		s := "auth failed"
		if b.state == watcher.StateError {
			s = "error"
		}
		if d := b.next.Sub(now); d > 0 {
			s += ", retry in " + countdown(d)
		}
		return s
	case "":
		return "unknown"
	}
	if b.paused {
		return "pausing"
	}
	return string(b.state)
}

// countdown rounds up, so "in 1s" shows until the attempt is due.
func countdown(d time.Duration) string {
	secs := int((d + time.Second - 1) / time.Second)
	switch {
	case secs < 60:
		return strconv.Itoa(secs) + "s"
	case secs < 3600:
		return fmt.Sprintf("%dm%02ds", secs/60, secs%60)
	default:
		return fmt.Sprintf("%dh%02dm", secs/3600, secs%3600/60)
	}
}

// header lists the watched mailboxes in config order.
type header struct {
	boxes []*boxState
	byID  map[string]*boxState
}

func newHeader() *header { return &header{byID: map[string]*boxState{}} }

func (h *header) box(id watcher.MailboxID) *boxState {
	b := h.byID[id.String()]
	if b == nil {
		b = newBoxState(id)
		h.byID[id.String()] = b
		h.boxes = append(h.boxes, b)
	}
	return b
}

// applyStatus takes a snapshot; its order (the config's) becomes the
// display order, mailboxes only heard of through events keep their place
// after.
func (h *header) applyStatus(sts []watcher.MailboxStatus, at time.Time) {
	order := make([]*boxState, 0, len(sts))
	seen := map[*boxState]bool{}
	for _, st := range sts {
		b := h.box(st.Mailbox)
		b.applySnapshot(st, at)
		order = append(order, b)
		seen[b] = true
	}
	for _, b := range h.boxes {
		if !seen[b] {
			order = append(order, b)
		}
	}
	h.boxes = order
}

// countingDown reports whether some mailbox shows a running countdown.
func (h *header) countingDown(now time.Time) bool {
	for _, b := range h.boxes {
		switch b.state {
		case watcher.StateReconnecting, watcher.StateAuthFailed, watcher.StateError:
			if b.next.After(now) {
				return true
			}
		}
	}
	return false
}

// lines is how many mailbox lines fit: a quarter of the screen at most,
// so the list keeps most of it even with many mailboxes.
func (h *header) lines(height int) int {
	n := len(h.boxes)
	limit := max(1, (height-8)/4)
	if n <= limit {
		return n
	}
	return limit // the last one summarises the rest
}

// renderHeader draws the title bar and the mailbox lines.
func (m *model) renderHeader(b *strings.Builder, width int) int {
	st, p, g, h := &m.styles, m.paint, m.glyphs, m.header
	now := m.now()

	// Title bar.
	var total int64
	for _, bx := range h.boxes {
		total += bx.captured
	}
	left := " mailtap"
	if m.opts.Version != "" {
		left += " " + sanitizeLine(m.opts.Version)
	}
	info := g.Sep + plural(len(h.boxes), "mailbox", "mailboxes") + g.Sep + strconv.FormatInt(total, 10) + " captured"
	info += m.sinkSummary()
	warn := ""
	if m.unseenWarnings > 0 {
		warn = g.Sep + plural(m.unseenWarnings, "warning", "warnings") + " (l) "
	}
	p.title.to(b, left)
	p.titleDim.to(b, info)
	p.warn.to(b, warn)
	if used := len(left) + widthOf(info) + widthOf(warn); used < width {
		p.titleDim.to(b, strings.Repeat(" ", width-used))
	}
	lines := 1

	if len(h.boxes) == 0 {
		b.WriteString("\n")
		p.counter.to(b, truncate(" waiting for the watcher"+g.Ellipsis, width))
		return lines + 1
	}
	show := h.lines(m.height)
	shown := h.boxes
	var rest []*boxState
	if show < len(h.boxes) {
		shown, rest = h.boxes[:show-1], h.boxes[show-1:]
	}
	nameW := 0
	for _, bx := range shown {
		nameW = max(nameW, widthOf(bx.label))
	}
	nameW = min(nameW, max(width/4, 10))
	badges := make([]string, len(shown))
	badgeW := 0
	widths := make([]int, len(shown))
	for i, bx := range shown {
		bp, ok := p.badge[bx.state]
		if !ok {
			bp = p.badge[watcher.StateStopped]
		}
		text := st.BadgeWrap[0] + bx.badge(now) + st.BadgeWrap[1]
		badges[i], widths[i] = bp.render(text), widthOf(text)
		badgeW = max(badgeW, widths[i])
	}
	for i, bx := range shown {
		b.WriteString("\n")
		lines++
		b.WriteString(" ")
		p.mailbox.to(b, fit(bx.label, nameW, g.Ellipsis))
		b.WriteString(" ")
		b.WriteString(badges[i])
		b.WriteString(strings.Repeat(" ", badgeW-widths[i]+1))
		room := width - (1 + nameW + 1 + badgeW + 1)
		counters := truncate(m.counters(bx, width >= 100), room, g.Ellipsis)
		p.counter.to(b, counters)
		room -= widthOf(counters)
		if bx.err != "" && room > 10 {
			b.WriteString("  ")
			p.errText.to(b, truncate(bx.err, room-2, g.Ellipsis))
		}
	}
	if len(rest) > 0 {
		b.WriteString("\n")
		lines++
		counts := map[string]int{}
		var order []string
		for _, bx := range rest {
			s := string(bx.state)
			if counts[s] == 0 {
				order = append(order, s)
			}
			counts[s]++
		}
		var parts []string
		for _, s := range order {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
		p.counter.to(b, truncate(fmt.Sprintf(" +%d more: %s", len(rest), strings.Join(parts, ", ")), width, g.Ellipsis))
	}
	return lines
}

// counters is "12 captured · 3410 on disk · 0 errors · last 14:02:11";
// narrow terminals get shorter labels. Without an output dir to scan
// there is no on-disk count.
func (m *model) counters(bx *boxState, wide bool) string {
	sep := m.glyphs.Sep
	var b strings.Builder
	fmt.Fprintf(&b, "%d captured", bx.captured)
	if m.opts.Out != "" {
		disk := "?"
		if bx.diskKnown {
			disk = strconv.Itoa(bx.disk)
		}
		b.WriteString(sep + disk + " on disk")
	}
	last := "-"
	if !bx.lastCapture.IsZero() {
		last = bx.lastCapture.In(m.loc).Format("15:04:05")
		if !wide {
			last = last[:5]
		}
	}
	if wide {
		b.WriteString(sep + plural(int(bx.errors), "error", "errors") + sep + "last " + last)
	} else {
		fmt.Fprintf(&b, "%s%d err%s%s", sep, bx.errors, sep, last)
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
