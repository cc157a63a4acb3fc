package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"

	"mailtap/watcher"
)

// boxPanel is the mailbox view (tab): every watched mailbox, those without
// mail too, with its state, counters and last capture, and below the list
// the selected one's full last error, next retry and checkpoint. p and r
// act on the selection. It draws only the visible rows and filters by name
// or state, so a frame costs the same at 10 mailboxes or 1,000.
//
// The rows are the header's boxState values (one source of truth for both
// views); the panel keeps only its selection, window and filter.
type boxPanel struct {
	header *header
	styles *Styles
	paint  *paints
	glyphs Glyphs
	keys   *KeyMap
	now    func() time.Time
	loc    *time.Location

	sel    string // selected mailbox id: stable when mailboxes are added
	offset int    // index in the view of the first visible row
	filter string // lower-case; "" = none

	width, height int
	matches       []*boxState // reused between frames
}

func newBoxPanel(h *header, st *Styles, p *paints, g Glyphs, k *KeyMap, now func() time.Time, loc *time.Location) *boxPanel {
	return &boxPanel{header: h, styles: st, paint: p, glyphs: g, keys: k, now: now, loc: loc}
}

func (p *boxPanel) setSize(width, height int) {
	p.width, p.height = width, max(height, 1)
	p.keepVisible()
}

// boxKey is what the filter matches: the name, the state as its badge
// shows it ("auth failed, retry in 29m59s") and as the watcher names it
// ("auth_failed", what the status page and the API show).
func boxKey(b *boxState, now time.Time) string {
	return strings.ToLower(b.label + "\n" + b.badge(now) + "\n" + string(b.state))
}

// view is the visible sequence: every mailbox in config order, or those
// matching the filter. States change between frames, so the matches are
// taken again each time; that is a substring test per mailbox.
func (p *boxPanel) view() []*boxState {
	if p.filter == "" {
		return p.header.boxes
	}
	p.matches = p.matches[:0]
	now := p.now()
	for _, b := range p.header.boxes {
		if strings.Contains(boxKey(b, now), p.filter) {
			p.matches = append(p.matches, b)
		}
	}
	return p.matches
}

// index is the selection's position in v, or -1.
func (p *boxPanel) index(v []*boxState) int {
	for i, b := range v {
		if b.id.String() == p.sel {
			return i
		}
	}
	return -1
}

// selected is the mailbox under the cursor: the remembered one if it is
// shown, else the first shown.
func (p *boxPanel) selected() *boxState {
	v := p.view()
	if i := p.index(v); i >= 0 {
		return v[i]
	}
	if len(v) > 0 {
		return v[0]
	}
	return nil
}

func (p *boxPanel) setFilter(s string) {
	p.filter = strings.ToLower(strings.TrimSpace(s))
	p.offset = 0
	p.keepVisible()
}

// move moves the selection by delta rows.
func (p *boxPanel) move(delta int) {
	v := p.view()
	if len(v) == 0 {
		return
	}
	i := max(p.index(v), 0)
	i = min(max(i+delta, 0), len(v)-1)
	p.sel = v[i].id.String()
	p.keepVisible()
}

func (p *boxPanel) rows() int { return max(p.height-1-p.detailLines(), 1) }

// detailLines is the room under the list for the selected mailbox: a rule
// and up to four lines of its last error, when the screen has it.
func (p *boxPanel) detailLines() int {
	if p.height < 8 {
		return 0
	}
	return min(5, p.height/3)
}

// keepVisible scrolls as little as possible to show the selection.
func (p *boxPanel) keepVisible() {
	v := p.view()
	i := p.index(v)
	if i < 0 && len(v) > 0 {
		i = 0
		p.sel = v[0].id.String()
	}
	n := p.rows()
	if i >= 0 {
		if i < p.offset {
			p.offset = i
		}
		if i >= p.offset+n {
			p.offset = i - n + 1
		}
	}
	p.offset = max(0, min(p.offset, len(v)-n))
}

// step applies a movement key: a row, a page, or the first or last.
func (p *boxPanel) step(mv motion) {
	switch mv {
	case lineUp:
		p.move(-1)
	case lineDown:
		p.move(1)
	case pageUp:
		p.move(-p.rows())
	case pageDown:
		p.move(p.rows())
	case toTop:
		p.move(-len(p.header.boxes))
	case toBottom:
		p.move(len(p.header.boxes))
	}
}

func (p *boxPanel) helpKeys() helpKeys {
	k := p.keys
	return helpKeys{
		short: []key.Binding{relabel(k.Mailboxes, "mail"), relabel(k.Open, "its mail"), k.Filter, k.Pause, k.Reconnect, k.Help, k.Quit},
		full: [][]key.Binding{
			{k.Up, k.Down, k.PageUp, k.PageDown, relabel(k.Top, "first"), relabel(k.Bottom, "last")},
			{relabel(k.Mailboxes, "mail"), relabel(k.Open, "its mail"), k.Filter, k.Back, k.Logs},
			{k.Pause, k.PauseAll, k.Reconnect, k.ReconnectAll},
			{k.Help, k.Quit},
		},
	}
}

// boxLayout is the panel's column widths for one terminal width; narrow
// terminals drop the counters right to left.
type boxLayout struct {
	name, badge               int
	captured, malformed, errs bool
	last                      bool
}

const (
	boxBadgeMax = 24 // " auth failed, retry in 29m59s "
	boxLastW    = 8  // "15:04:05"
)

// boxCols are the counter columns: heading, and its width.
var boxCols = [3]string{"CAPTURED", "MALFORMED", "CONN ERR"}

// boxLayoutFor fits the columns to width; badge is the widest badge on
// screen, so names get what states do not need.
func boxLayoutFor(width, badge int) boxLayout {
	ly := boxLayout{badge: min(max(badge, 6), boxBadgeMax), captured: true, malformed: true, errs: true, last: true}
	fixed := func() int {
		n := 1 + 1 + ly.badge // cursor, gap, badge
		for i, on := range []bool{ly.captured, ly.malformed, ly.errs} {
			if on {
				n += 1 + len(boxCols[i])
			}
		}
		if ly.last {
			n += 2 + boxLastW
		}
		return n
	}
	// Drop columns until the name keeps at least 12 columns.
	for _, drop := range []*bool{&ly.last, &ly.malformed, &ly.errs, &ly.captured} {
		if width-fixed() >= 12 {
			break
		}
		*drop = false
	}
	ly.name = max(min(width-fixed(), 40), 4)
	return ly
}

// render draws the heading, exactly the rows that fit and the selected
// mailbox's details: p.height lines of at most width columns.
func (p *boxPanel) render(b *strings.Builder) {
	st, pt, g := p.styles, p.paint, p.glyphs
	width := p.width
	v := p.view()
	sel := p.selected()
	now := p.now()
	n := p.rows()
	badgeW := len(st.BadgeWrap[0]) + len("STATE")
	for d := p.offset; d < min(p.offset+n, len(v)); d++ {
		badgeW = max(badgeW, widthOf(st.BadgeWrap[0]+v[d].badge(now)+st.BadgeWrap[1]))
	}
	ly := boxLayoutFor(width, badgeW)

	var h strings.Builder
	h.WriteString(" ")
	h.WriteString(pad("MAILBOX", ly.name))
	h.WriteString(" ")
	h.WriteString(pad(strings.Repeat(" ", len(st.BadgeWrap[0]))+"STATE", ly.badge))
	for i, on := range []bool{ly.captured, ly.malformed, ly.errs} {
		if on {
			h.WriteString(" ")
			h.WriteString(boxCols[i])
		}
	}
	if ly.last {
		h.WriteString("  LAST")
	}
	pt.columns.to(b, pad(truncate(h.String(), width), width))

	if len(v) == 0 {
		msg := "  No mailbox yet: waiting for the watcher."
		if p.filter != "" {
			msg = "  No mailbox matches the filter."
		}
		b.WriteString("\n")
		b.WriteString(st.Empty.Render(truncate(msg, width)))
		for range n - 1 {
			b.WriteString("\n")
		}
	} else {
		var line strings.Builder
		for i := range n {
			b.WriteString("\n")
			d := p.offset + i
			if d >= len(v) {
				continue
			}
			bx := v[d]
			name := fit(bx.label, ly.name, g.Ellipsis)
			badge := fit(st.BadgeWrap[0]+bx.badge(now)+st.BadgeWrap[1], ly.badge, g.Ellipsis)
			line.Reset()
			for i, c := range []struct {
				on bool
				n  int64
			}{{ly.captured, bx.capturedN()}, {ly.malformed, bx.malformedN()}, {ly.errs, bx.errors}} {
				if c.on {
					fmt.Fprintf(&line, " %*d", len(boxCols[i]), c.n)
				}
			}
			if ly.last {
				last := "-"
				if t := bx.last(); !t.IsZero() {
					last = t.In(p.loc).Format("15:04:05")
				}
				line.WriteString("  " + pad(last, boxLastW))
			}
			counters := line.String()
			if bx == sel {
				row := g.Cursor + name + " " + badge + counters
				pt.selected.to(b, pad(row, width))
				continue
			}
			b.WriteString(" ")
			pt.mailbox.to(b, name)
			b.WriteString(" ")
			bp, ok := pt.badge[bx.state]
			if !ok {
				bp = pt.badge[watcher.StateStopped]
			}
			// The badge's colour covers its text, not the padding.
			text := st.BadgeWrap[0] + bx.badge(now) + st.BadgeWrap[1]
			if widthOf(text) > ly.badge {
				text = truncate(text, ly.badge, g.Ellipsis)
			}
			bp.to(b, text)
			b.WriteString(strings.Repeat(" ", ly.badge-widthOf(text)))
			pt.counter.to(b, counters)
		}
	}
	if dl := p.detailLines(); dl > 0 {
		p.renderDetail(b, sel, dl, now)
	}
}

// renderDetail is the selected mailbox's full story: state and since when,
// next retry, checkpoint, and the whole last error, wrapped (it is cut
// nowhere else's room).
func (p *boxPanel) renderDetail(b *strings.Builder, bx *boxState, lines int, now time.Time) {
	st, g, width := p.styles, p.glyphs, p.width
	b.WriteString("\n")
	if bx == nil {
		b.WriteString(st.Section.Render(pad("", width)))
		b.WriteString(strings.Repeat("\n", lines-1))
		return
	}
	head := " " + bx.label + g.Sep + bx.badge(now)
	if !bx.since.IsZero() {
		head += " since " + bx.since.In(p.loc).Format("15:04:05")
	}
	if bx.uidValidity != 0 {
		head += fmt.Sprintf("%scheckpoint uid %d (validity %d)", g.Sep, bx.lastUID, bx.uidValidity)
	}
	b.WriteString(st.Section.Render(pad(truncate(head, width, g.Ellipsis), width)))
	text, failing := p.errorText(bx)
	wrapped := wrapLines(text, max(width-2, 10))
	for i := range lines - 1 {
		b.WriteString("\n")
		if i < len(wrapped) {
			l := wrapped[i]
			if i == lines-2 && len(wrapped) > lines-1 {
				l = truncate(l, width-3, g.Ellipsis) + g.Ellipsis
			}
			if failing {
				p.paint.errText.to(b, " "+l)
			} else {
				p.paint.counter.to(b, " "+l)
			}
		}
	}
}

// errorText is the panel's word on the selected mailbox's errors: the
// current one, or the last one and that it recovered (the CONN ERR counter
// goes on counting it), or that the counted failures came before this
// monitor started. failing reports a current error.
func (p *boxPanel) errorText(bx *boxState) (text string, failing bool) {
	at := func() string {
		if bx.lastErrAt.IsZero() {
			return ""
		}
		return " " + bx.lastErrAt.In(p.loc).Format("15:04:05")
	}
	switch {
	case bx.err != "" && bx.err == bx.lastErr:
		return "Last error" + at() + ": " + bx.err, true
	case bx.err != "":
		return "Last error: " + bx.err, true
	case bx.lastErr != "" && watching(bx.state):
		return "Last error" + at() + ", recovered: " + bx.lastErr, false
	case bx.lastErr != "":
		return "Last error" + at() + ": " + bx.lastErr, false
	case bx.errors > 0:
		return plural(int(bx.errors), "failed connection attempt", "failed connection attempts") +
			" before this monitor started; none since.", false
	}
	return "No error.", false
}
