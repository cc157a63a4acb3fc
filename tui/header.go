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
// from StateChanged events as they happen and from Status snapshots.
// Counters come from snapshots (the watcher is their source of truth), but
// a snapshot is throttled: captures seen as events count at once, so
// "captured" never lags "on disk", which counts the same events. Showing
// the larger of the two can neither count an event twice nor run ahead of
// the watcher.
type boxState struct {
	id    watcher.MailboxID
	label string // sanitized "account/mailbox"

	state   watcher.State
	err     string // sanitized; the current state's error, "" once recovered
	next    time.Time
	stateAt time.Time // time of the event or snapshot the state came from
	since   time.Time // when the state was entered, as the watcher says

	// The last error this monitor saw, kept after recovery, and when it
	// happened: what the CONN ERR counter counted.
	lastErr   string // sanitized
	lastErrAt time.Time

	uidValidity, lastUID uint32 // checkpoint, from the snapshot

	paused      bool  // requested (the snapshot's Paused, or our own request)
	captured    int64 // from the snapshot
	malformed   int64 // from the snapshot: captured with parse_errors
	errors      int64 // failed connection attempts, from the snapshot
	lastCapture time.Time

	// Live captures of this run seen as events, distinct records only.
	seen, seenMalformed int64
	seenLast            time.Time

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
	b.noteErr(ev.Err, ev.At) // even from a stale event: a snapshot only has the current error
	if ev.At.Before(b.stateAt) {
		return
	}
	if ev.State != b.state {
		b.since = ev.At
	}
	b.state, b.err, b.next, b.stateAt = ev.State, sanitizeLine(ev.Err), ev.NextRetry, ev.At
}

// applySnapshot takes counters always and the state if the snapshot (taken
// at at) is newer than the last event applied: an event still queued from
// before the snapshot must not roll the state back, and is then ignored by
// applyEvent.
func (b *boxState) applySnapshot(st watcher.MailboxStatus, at time.Time) {
	b.captured, b.malformed, b.errors, b.lastCapture, b.paused = st.Captured, st.Malformed, st.Errors, st.LastCapture, st.Paused
	b.uidValidity, b.lastUID = st.UIDValidity, st.LastUID
	if !at.Before(b.stateAt) {
		b.state, b.err, b.next, b.stateAt = st.State, sanitizeLine(st.Err), st.NextRetry, at
		b.since = st.Since
		when := st.Since // the error is the state's: it happened when the state was entered
		if when.IsZero() {
			when = at
		}
		b.noteErr(st.Err, when)
	}
}

// noteErr keeps err (raw) as the last error, seen at at, unless a later
// one is already kept.
func (b *boxState) noteErr(err string, at time.Time) {
	if err == "" || at.Before(b.lastErrAt) {
		return
	}
	b.lastErr, b.lastErrAt = sanitizeLine(err), at
}

// countLive counts a record captured this run, seen as an event.
func (b *boxState) countLive(s record.Summary, at time.Time) {
	b.seen++
	if s.ParseErrors > 0 {
		b.seenMalformed++
	}
	if at.After(b.seenLast) {
		b.seenLast = at
	}
}

// capturedN, malformedN and last are the counters as shown.
func (b *boxState) capturedN() int64  { return max(b.captured, b.seen) }
func (b *boxState) malformedN() int64 { return max(b.malformed, b.seenMalformed) }
func (b *boxState) last() time.Time {
	if b.seenLast.After(b.lastCapture) {
		return b.seenLast
	}
	return b.lastCapture
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

// watching reports whether a mailbox in state s is connected and watching
// for mail: by IDLE on its own connection, by NOTIFY on the account's
// shared one, or by polling. All three are as connected as each other.
func watching(s watcher.State) bool {
	switch s {
	case watcher.StateIdle, watcher.StateNotify, watcher.StatePolling:
		return true
	}
	return false
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
		total += bx.capturedN()
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
	show := m.headerLines()
	shown := h.boxes
	var rest []*boxState
	switch {
	case m.state == stateBoxes:
		shown, rest = nil, h.boxes
	case show < len(h.boxes):
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
		counters := truncate(m.counters(bx, width >= 100, room), room, g.Ellipsis)
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
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], strings.ReplaceAll(s, "_", " ")))
		}
		line := fmt.Sprintf(" +%d more (tab: every mailbox): %s", len(rest), strings.Join(parts, ", "))
		if len(shown) == 0 {
			line = fmt.Sprintf(" %s: %s", plural(len(rest), "mailbox", "mailboxes"), strings.Join(parts, ", "))
		}
		p.counter.to(b, truncate(line, width, g.Ellipsis))
	}
	return lines
}

// counters is "12 captured · 3410 on disk · 1 malformed · 0 conn errors ·
// last 14:02:11": malformed counts mail captured with parse_errors, conn
// errors the failed connection attempts. Narrow terminals get shorter
// labels and no zero malformed count. Without an output dir to scan there
// is no on-disk count.
// Parts that do not fit in room are left out whole, last first, rather
// than cut in the middle; the mailbox panel (tab) has every counter.
func (m *model) counters(bx *boxState, wide bool, room int) string {
	parts := []string{fmt.Sprintf("%d captured", bx.capturedN())}
	if m.opts.Out != "" {
		disk := "?"
		if bx.diskKnown {
			disk = strconv.Itoa(bx.disk)
		}
		parts = append(parts, disk+" on disk")
	}
	if n := bx.malformedN(); wide || n > 0 {
		parts = append(parts, fmt.Sprintf("%d malformed", n))
	}
	last := "-"
	if t := bx.last(); !t.IsZero() {
		last = t.In(m.loc).Format("15:04:05")
		if !wide {
			last = last[:5]
		}
	}
	if wide {
		parts = append(parts, plural(int(bx.errors), "conn error", "conn errors"), "last "+last)
	} else {
		parts = append(parts, fmt.Sprintf("%d conn err", bx.errors), last)
	}
	sep := m.glyphs.Sep
	for len(parts) > 1 && widthOf(strings.Join(parts, sep)) > room {
		parts = parts[:len(parts)-1]
	}
	return strings.Join(parts, sep)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
