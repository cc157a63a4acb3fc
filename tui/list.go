package tui

import (
	"mailtap/record"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// row is one captured mail in the list. Display strings are sanitized once,
// when the row is added, so drawing a frame does no per-row cleaning.
type row struct {
	sum     record.Summary // as captured; Path and ID are used, never drawn raw
	at      time.Time      // capture time: the list's sort key
	seq     uint64         // tie-break for equal times, in arrival order
	box     string         // "account/mailbox", the watcher's mailbox id
	from    string         // sanitized sender name (or address)
	subject string         // sanitized
	acct    string         // sanitized account, for the mailbox column
	mbox    string         // sanitized mailbox
	key     string         // lower-case from and subject, for the filter
	live    bool           // from a Captured event of this run

	// Cells fitted to the layout they were last drawn with: rows on screen
	// are drawn every frame, and measuring wide text is the costly part.
	cellsFor    cellKey
	cFrom, cBox string
	cSubj       string
	cSubjW      int
}

type cellKey struct {
	from, box, subject int
	fullBox            bool
	ellipsis           string
}

func newRow(sum record.Summary, at time.Time, live bool) *row {
	r := &row{sum: sum, at: at, live: live, box: sum.Account + "/" + sum.Mailbox}
	r.setSummary(sum)
	return r
}

func (r *row) setSummary(sum record.Summary) {
	r.sum = sum
	r.cellsFor = cellKey{}
	r.from = sanitizeLine(displayName(sum.From))
	r.subject = sanitizeLine(sum.Subject)
	if r.subject == "" {
		r.subject = "(no subject)"
	}
	r.acct = sanitizeLine(sum.Account)
	r.mbox = sanitizeLine(sum.Mailbox)
	// The filter matches what the user sees (sender, subject, the MAILBOX
	// column as account/mailbox) plus the full address.
	r.key = strings.ToLower(r.from + "\n" + sanitizeLine(sum.From) + "\n" + r.subject + "\n" + r.acct + "/" + r.mbox)
}

// displayName shows the name of "Name <addr>", or the address without one.
func displayName(from string) string {
	if i := strings.LastIndex(from, " <"); i > 0 && strings.HasSuffix(from, ">") {
		return strings.Trim(from[:i], `" `)
	}
	return from
}

// before orders rows by capture time, then arrival.
func (r *row) before(o *row) bool {
	if c := r.at.Compare(o.at); c != 0 {
		return c < 0
	}
	return r.seq < o.seq
}

// mailList holds every row, oldest first, and draws only the visible
// window, so a frame costs the same at 100 rows or 100,000. Rows are
// addressed on screen by display index: 0 is the newest. The selection is a
// row, not an index, so rows arriving above it never move it off the mail
// the user is reading.
type mailList struct {
	rows    []*row // ascending by (at, seq)
	byID    map[string]*row
	seq     uint64
	maxRows int

	filter  string // lower-case; "" = none
	matches []*row // rows matching filter, ascending; used only when filter != ""

	sel    *row
	follow bool // until the user moves the cursor, it stays on the newest row
	offset int  // display index of the first visible row
	height int  // rows visible (the column heading is extra)
	above  int  // rows that arrived above the window while it was scrolled down
}

func newMailList(maxRows int) *mailList {
	return &mailList{byID: map[string]*row{}, maxRows: maxRows, follow: true}
}

// view is the visible sequence: every row, or the filter's matches.
func (l *mailList) view() []*row {
	if l.filter != "" {
		return l.matches
	}
	return l.rows
}

func (l *mailList) len() int { return len(l.view()) }

// at returns the row at display index d.
func (l *mailList) rowAt(d int) *row {
	v := l.view()
	return v[len(v)-1-d]
}

// searchIn is the position in v (ascending) where r is or would be.
func searchIn(v []*row, r *row) int {
	lo, hi := 0, len(v)
	// Fast path: new rows almost always go at the end.
	if hi == 0 || v[hi-1].before(r) {
		return hi
	}
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if v[mid].before(r) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// display returns r's display index, or -1 if r is not in the view.
func (l *mailList) display(r *row) int {
	if r == nil {
		return -1
	}
	v := l.view()
	p := searchIn(v, r)
	if p < len(v) && v[p] == r {
		return len(v) - 1 - p
	}
	return -1
}

func insertAt(v []*row, p int, r *row) []*row {
	if p == len(v) {
		return append(v, r)
	}
	v = append(v, nil)
	copy(v[p+1:], v[p:])
	v[p] = r
	return v
}

func (l *mailList) matches1(r *row) bool {
	return l.filter != "" && strings.Contains(r.key, l.filter)
}

// add inserts r (or refreshes the row with its ID) and reports whether it
// was new.
func (l *mailList) add(r *row) bool {
	if old := l.byID[r.sum.ID]; old != nil {
		old.setSummary(r.sum) // a re-capture: same file, maybe better data
		old.live = old.live || r.live
		return false
	}
	l.seq++
	r.seq = l.seq
	l.byID[r.sum.ID] = r
	p := searchIn(l.rows, r)
	l.rows = insertAt(l.rows, p, r)
	inView := true
	if l.filter != "" {
		inView = l.matches1(r)
		if inView {
			l.matches = insertAt(l.matches, searchIn(l.matches, r), r)
		}
	}
	if inView {
		d := l.display(r)
		switch {
		case l.sel == nil || (l.follow && d == 0):
			l.sel = r
		case l.offset > 0 && d <= l.offset:
			// Scrolled down: keep the window on the same rows.
			l.offset++
			l.above++
		default:
			// At the top new rows show, pushing the rest down; once the
			// selection would leave the window, the window follows it.
			if sd := l.display(l.sel); sd >= l.offset+l.height {
				l.above += sd - l.height + 1 - l.offset
				l.offset = sd - l.height + 1
			}
		}
	}
	if l.maxRows > 0 && len(l.rows) > l.maxRows {
		l.trim()
	}
	l.keepVisible()
	return true
}

// merge adds rows (any order) in one pass: the start-up load of records
// already on disk, or a reconciliation after dropped events.
func (l *mailList) merge(rs []*row) {
	anchor := l.display(l.sel) - l.offset // screen line of the selection
	var fresh []*row
	for _, r := range rs {
		if old := l.byID[r.sum.ID]; old != nil {
			continue
		}
		l.seq++
		r.seq = l.seq
		l.byID[r.sum.ID] = r
		fresh = append(fresh, r)
	}
	if len(fresh) == 0 {
		return
	}
	sortRows(fresh)
	merged := make([]*row, 0, len(l.rows)+len(fresh))
	i, j := 0, 0
	for i < len(l.rows) || j < len(fresh) {
		if j == len(fresh) || (i < len(l.rows) && l.rows[i].before(fresh[j])) {
			merged = append(merged, l.rows[i])
			i++
		} else {
			merged = append(merged, fresh[j])
			j++
		}
	}
	l.rows = merged
	if l.maxRows > 0 && len(l.rows) > l.maxRows {
		l.trim()
	}
	l.refilter()
	if (l.sel == nil || l.follow) && l.len() > 0 {
		l.sel = l.rowAt(0)
		anchor = 0
	}
	if d := l.display(l.sel); d >= 0 && l.offset > 0 {
		l.offset = max(0, d-anchor)
	}
	l.keepVisible()
}

func sortRows(rs []*row) {
	// insertion-friendly: callers pass mostly sorted input
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].before(rs[j-1]); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// trim drops the oldest rows beyond maxRows (in one go of 10% extra, so the
// copy is rare). They stay on disk; only the list forgets them.
func (l *mailList) trim() {
	n := len(l.rows) - l.maxRows + l.maxRows/10
	n = min(n, len(l.rows))
	for _, r := range l.rows[:n] {
		delete(l.byID, r.sum.ID)
		if r == l.sel {
			l.sel = nil
		}
	}
	l.rows = append([]*row(nil), l.rows[n:]...)
	if l.filter != "" {
		l.refilter()
	}
	if l.sel == nil && l.len() > 0 {
		l.sel = l.rowAt(l.len() - 1)
	}
}

// setFilter shows only rows whose sender or subject contains s (case
// insensitive). The selection stays if it matches, else moves to the
// nearest match.
func (l *mailList) setFilter(s string) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == l.filter {
		return
	}
	if l.filter != "" && s != "" && strings.Contains(s, l.filter) {
		// Typing narrows: only the current matches can still match.
		l.filter = s
		kept := l.matches[:0]
		for _, r := range l.matches {
			if strings.Contains(r.key, s) {
				kept = append(kept, r)
			}
		}
		clear(l.matches[len(kept):])
		l.matches = kept
	} else {
		l.filter = s
		l.refilter()
	}
	l.offset, l.above = 0, 0
	if l.sel != nil && l.display(l.sel) < 0 {
		v := l.view()
		p := searchIn(v, l.sel)
		switch {
		case len(v) == 0:
			// keep sel: it shows again when the filter is cleared
		case p < len(v):
			l.sel = v[p]
		default:
			l.sel = v[len(v)-1]
		}
	}
	l.keepVisible()
}

func (l *mailList) refilter() {
	if l.filter == "" {
		l.matches = nil
		return
	}
	l.matches = nil // a fresh slice: a narrowed one may share its array
	for _, r := range l.rows {
		if strings.Contains(r.key, l.filter) {
			l.matches = append(l.matches, r)
		}
	}
}

// move moves the selection by delta rows (negative: newer). From then on
// the cursor stays on the row it is on when new rows arrive.
func (l *mailList) move(delta int) {
	l.follow = false
	n := l.len()
	if n == 0 {
		return
	}
	d := l.display(l.sel)
	if d < 0 {
		d = 0
	}
	d = min(max(d+delta, 0), n-1)
	l.sel = l.rowAt(d)
	l.keepVisible()
}

func (l *mailList) top()    { l.move(-l.len()) }
func (l *mailList) bottom() { l.move(l.len()) }

// step applies a movement key: a row, a page, or to the newest or oldest.
func (l *mailList) step(mv motion) {
	switch mv {
	case lineUp:
		l.move(-1)
	case lineDown:
		l.move(1)
	case pageUp:
		l.move(-l.height)
	case pageDown:
		l.move(l.height)
	case toTop:
		l.top()
	case toBottom:
		l.bottom()
	}
}

func (l *mailList) setHeight(h int) {
	l.height = max(h, 1)
	l.keepVisible()
}

// keepVisible scrolls as little as possible to show the selection, and
// never past the end.
func (l *mailList) keepVisible() {
	n := l.len()
	if d := l.display(l.sel); d >= 0 {
		if d < l.offset {
			l.offset = d
		}
		if d >= l.offset+l.height {
			l.offset = d - l.height + 1
		}
	}
	l.offset = max(0, min(l.offset, n-l.height))
	if l.offset == 0 {
		l.above = 0
	}
}

// selectedRow is the row under the cursor, if it is shown.
func (l *mailList) selectedRow() *row {
	if l.display(l.sel) < 0 {
		return nil
	}
	return l.sel
}

// listLayout is the column widths for one terminal width.
type listLayout struct {
	width, time, from, box, subject int
	showBox                         bool
}

// timeCols fits the "CAPTURED" heading and "15:04", "Jan 02", "2024".
const timeCols = 8

func layoutFor(width int, showBox bool) listLayout {
	ly := listLayout{width: width, time: timeCols, showBox: showBox}
	ly.from = min(max(width/4, 8), 28)
	rest := width - 1 - (ly.time + 1) - (ly.from + 1) - 3 // gutter, mark
	if showBox {
		ly.box = min(max(width/7, 6), 20)
		rest -= ly.box + 1
	}
	ly.subject = max(rest, 1)
	return ly
}

// renderList draws the column heading and exactly l.height rows (blank
// when there are fewer). Every line is at most width columns. Only the
// visible window is drawn, with pre-painted styles: a frame costs the same
// at 100 rows or 100,000.
func (m *model) renderList(b *strings.Builder, width int) {
	l, p, g := m.list, m.paint, m.glyphs
	ly := layoutFor(width, m.showMailboxColumn())
	var h strings.Builder
	h.WriteString(" ")
	h.WriteString(pad("CAPTURED", ly.time))
	h.WriteString(" ")
	h.WriteString(pad("FROM", ly.from))
	h.WriteString(" ")
	if ly.showBox {
		h.WriteString(pad("MAILBOX", ly.box))
		h.WriteString(" ")
	}
	h.WriteString("   SUBJECT")
	p.columns.to(b, pad(h.String(), width))
	b.WriteByte('\n')

	n := l.len()
	if n == 0 {
		msg := "No mail captured yet: new messages appear here as they arrive."
		if l.filter != "" {
			msg = "No mail matches the filter."
		}
		b.WriteString(m.styles.Empty.Render(truncate("  "+msg, width)))
		for range l.height - 1 {
			b.WriteString("\n")
		}
		return
	}
	now := m.now().In(m.loc)
	singleAcct := m.singleAccount()
	var line strings.Builder
	for i := range l.height {
		if i > 0 {
			b.WriteByte('\n')
		}
		d := l.offset + i
		if d >= n {
			continue
		}
		r := l.rowAt(d)
		tm := pad(shortTime(r.at, now, m.loc), ly.time)
		if ck := (cellKey{ly.from, ly.box, ly.subject, !singleAcct, g.Ellipsis}); r.cellsFor != ck {
			r.cellsFor = ck
			r.cFrom = fit(r.from, ly.from, g.Ellipsis)
			if ly.showBox {
				label := r.mbox
				if !singleAcct {
					label = r.acct + "/" + r.mbox
				}
				r.cBox = fit(label, ly.box, g.Ellipsis)
			}
			r.cSubj = truncate(r.subject, ly.subject, g.Ellipsis)
			r.cSubjW = widthOf(r.cSubj)
		}
		from, box, subj := r.cFrom, r.cBox, r.cSubj
		mark := "  "
		if r.sum.Attachments > 0 {
			mark = g.Attachment
		}
		if r == l.sel {
			// One style for the whole row: nested styles would end the
			// highlight at the first cell.
			line.Reset()
			line.WriteString(g.Cursor)
			line.WriteString(tm)
			line.WriteByte(' ')
			line.WriteString(from)
			line.WriteByte(' ')
			if ly.showBox {
				line.WriteString(box)
				line.WriteByte(' ')
			}
			line.WriteString(mark)
			line.WriteByte(' ')
			line.WriteString(subj)
			used := 1 + ly.time + 1 + ly.from + 1 + 2 + 1 + r.cSubjW
			if ly.showBox {
				used += ly.box + 1
			}
			if used < width {
				line.WriteString(strings.Repeat(" ", width-used))
			}
			p.selected.to(b, line.String())
			continue
		}
		b.WriteByte(' ')
		p.time.to(b, tm)
		b.WriteByte(' ')
		p.from.to(b, from)
		b.WriteByte(' ')
		if ly.showBox {
			p.box.to(b, box)
			b.WriteByte(' ')
		}
		if r.sum.Attachments > 0 {
			p.attach.to(b, mark)
		} else {
			b.WriteString(mark)
		}
		b.WriteByte(' ')
		p.subject.to(b, subj)
	}
}

// shortTime formats the capture time, the list's sort key, in at most 6
// columns. Not the Date header: a sender's clock (or a delayed delivery)
// would put the column out of the list's order, and the status page shows
// capture time too. The detail view shows both.
func shortTime(t, now time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	t = t.In(loc)
	y1, m1, d1 := t.Date()
	y2, m2, d2 := now.Date()
	switch {
	case y1 == y2 && m1 == m2 && d1 == d2:
		return t.Format("15:04")
	case y1 == y2 || (t.Before(now) && now.Sub(t) < 180*24*time.Hour):
		return t.Format("Jan 02")
	default:
		return t.Format("2006")
	}
}

// truncate cuts s to at most w columns, ending with tail if it was cut.
// Wide characters are never split.
func truncate(s string, w int, tail ...string) string {
	if w <= 0 {
		return ""
	}
	if len(s) <= w && isPlainASCII(s) {
		return s
	}
	t := ""
	if len(tail) > 0 {
		t = tail[0]
	}
	return ansi.Truncate(s, w, t)
}

// pad right-pads s with spaces to exactly w columns (s must fit).
func pad(s string, w int) string {
	n := w - widthOf(s)
	if n <= 0 {
		return s
	}
	return s + strings.Repeat(" ", n)
}

// fit is truncate then pad: exactly w columns.
func fit(s string, w int, tail string) string { return pad(truncate(s, w, tail), w) }

// widthOf is the display width of plain (unstyled) text.
func widthOf(s string) int {
	if isPlainASCII(s) {
		return len(s)
	}
	return ansi.StringWidth(s)
}
