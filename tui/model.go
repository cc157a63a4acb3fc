package tui

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"mailtap/jsonstore"
	"mailtap/watcher"
)

// viewState is the active view; the root model forwards keys to it only.
type viewState int

const (
	stateList viewState = iota
	stateDetail
	stateLogs
)

// Messages. All I/O (reading records, asking the controller) happens in
// commands that return one of these; Update only applies them.
type (
	// eventsMsg is a batch of watcher events from the bridge goroutine.
	eventsMsg struct{ events []watcher.Event }
	// statusMsg is a controller snapshot taken at at.
	statusMsg struct {
		at time.Time
		st []watcher.MailboxStatus
	}
	// inventoryMsg is the scan of records already on disk.
	inventoryMsg struct {
		inv *jsonstore.Inventory
		err error
	}
	// controlMsg is the outcome of a pause, resume or reconnect.
	controlMsg struct {
		verb   string // "paused", "resumed", "reconnecting"
		target string // mailbox id, "" = all
		err    error
	}
	tickMsg   struct{} // countdown second
	noticeMsg struct{ id int }
)

// Model is the root Bubble Tea model of the monitor. Bubble Tea copies the
// model on every message, so Model is a handle and the state lives behind
// one pointer (a value model this size would be copied to the heap on each
// of thousands of events a second).
type Model struct{ *model }

// Init loads the status, the records already on disk and the log buffer.
func (m Model) Init() tea.Cmd { return m.init() }

// Update applies one message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) { return m, m.update(msg) }

// View draws the whole screen: exactly height lines, none wider than width.
func (m Model) View() tea.View { return m.view() }

type model struct {
	ctrl   watcher.Controller
	opts   Options
	styles Styles
	paint  *paints
	glyphs Glyphs
	keys   KeyMap
	now    func() time.Time
	loc    *time.Location

	width, height int
	state         viewState

	header *header
	list   *mailList
	detail *detail
	logs   *logPane
	help   help.Model
	filter textinput.Model

	helpText       string // the help bar for the current state and width, set by layout
	filtering      bool   // the filter input has focus
	notice         string
	noticeID       int
	unseenWarnings int
	seenLogSeq     uint64
	statusPending  bool // a throttled status refresh is scheduled
	tickPending    bool
	recentLoaded   bool
	inv            *jsonstore.Inventory
	accounts       map[string]bool // seen in rows and status, for the mailbox column
}

// NewModel returns the model; Run wires it to a program and the watcher's
// events. Tests drive it with teatest.
func NewModel(ctrl watcher.Controller, opts Options) Model {
	opts.defaults()
	m := &model{
		ctrl: ctrl, opts: opts,
		styles: opts.Styles, glyphs: opts.Glyphs, keys: DefaultKeyMap(),
		now: opts.Now, loc: opts.Location,
		header: newHeader(), list: newMailList(opts.MaxRows),
		help: help.New(), filter: textinput.New(), accounts: map[string]bool{},
	}
	if opts.ReadOnly {
		m.keys.disableControls()
	}
	if opts.ASCII {
		m.keys.Up.SetHelp("up/k", "up")
		m.keys.Down.SetHelp("down/j", "down")
		m.help.ShortSeparator = " | "
		m.help.Ellipsis = "~"
	}
	m.paint = newPaints(&m.styles)
	m.logs = newLogPane(&m.styles)
	m.help.Styles = m.styles.Help
	m.filter.Prompt = "/"
	m.filter.Placeholder = "filter by sender or subject"
	m.filter.SetVirtualCursor(false) // a real cursor: no blink redraws over SSH
	fs := m.filter.Styles()
	fs.Focused.Prompt = m.styles.Prompt
	fs.Blurred.Prompt = m.styles.Prompt
	m.filter.SetStyles(fs)
	return Model{m}
}

func (m *model) init() tea.Cmd {
	cmds := []tea.Cmd{m.statusCmd(0), m.scanCmd(m.opts.RecentLimit)}
	if m.opts.Logs != nil {
		cmds = append(cmds, logsCmd(m.opts.Logs))
	}
	return tea.Batch(cmds...)
}

// statusCmd asks the controller for a snapshot after delay.
func (m *model) statusCmd(delay time.Duration) tea.Cmd {
	ctrl := m.ctrl
	get := func() tea.Msg {
		at := time.Now()
		return statusMsg{at: at, st: ctrl.Status()}
	}
	if delay <= 0 {
		return get
	}
	return tea.Tick(delay, func(time.Time) tea.Msg { return get() })
}

func (m *model) scanCmd(n int) tea.Cmd {
	out := m.opts.Out
	if out == "" {
		return nil
	}
	return func() tea.Msg {
		inv, err := jsonstore.Scan(out, n)
		return inventoryMsg{inv: inv, err: err}
	}
}

func logsCmd(lb *LogBuffer) tea.Cmd {
	return func() tea.Msg { return logsMsg{entries: lb.Entries()} }
}

func controlCmd(ctrl watcher.Controller, verb, target string) tea.Cmd {
	return func() tea.Msg {
		var err error
		switch verb {
		case "paused":
			err = ctrl.Pause(target)
		case "resumed":
			err = ctrl.Resume(target)
		case "reconnecting":
			err = ctrl.Reconnect(target)
		}
		return controlMsg{verb: verb, target: target, err: err}
	}
}

// statusRefreshDelay throttles snapshots while events stream in: counters
// lag by at most this much, and a burst of captures costs one snapshot.
const statusRefreshDelay = 300 * time.Millisecond

func (m *model) refreshStatus() tea.Cmd {
	if m.statusPending {
		return nil
	}
	m.statusPending = true
	return m.statusCmd(statusRefreshDelay)
}

// scheduleTick starts the 1 s countdown tick if a countdown is showing and
// no tick is pending; with no countdown there is no timer at all.
func (m *model) scheduleTick() tea.Cmd {
	if m.tickPending || !m.header.countingDown(m.now()) {
		return nil
	}
	m.tickPending = true
	return tea.Tick(time.Second, func(time.Time) tea.Msg { return tickMsg{} })
}

func (m *model) setNotice(s string) tea.Cmd {
	m.noticeID++
	m.notice = s
	id := m.noticeID
	return tea.Tick(8*time.Second, func(time.Time) tea.Msg { return noticeMsg{id: id} })
}

func (m *model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		return nil
	case tea.KeyPressMsg:
		return m.handleKey(msg)
	case tea.PasteMsg:
		if m.filtering {
			var cmd tea.Cmd
			m.filter, cmd = m.filter.Update(msg)
			m.list.setFilter(m.filter.Value())
			return cmd
		}
		return nil
	case eventsMsg:
		return m.applyEvents(msg.events)
	case statusMsg:
		m.statusPending = false
		m.header.applyStatus(msg.st, msg.at)
		for _, st := range msg.st {
			m.accounts[st.Mailbox.Account] = true
		}
		m.applyDisk()
		m.layout()
		return m.scheduleTick()
	case inventoryMsg:
		return m.applyInventory(msg)
	case detailMsg:
		if m.detail != nil && m.detail.path == msg.path {
			m.detail.loaded(msg)
		}
		return nil
	case controlMsg:
		return tea.Batch(m.applyControl(msg), m.statusCmd(0))
	case logsMsg:
		m.applyLogs(msg.entries)
		return nil
	case tickMsg:
		m.tickPending = false
		return m.scheduleTick()
	case noticeMsg:
		if msg.id == m.noticeID {
			m.notice = ""
		}
		return nil
	}
	if m.filtering {
		var cmd tea.Cmd
		m.filter, cmd = m.filter.Update(msg)
		return cmd
	}
	return nil
}

func (m *model) applyEvents(events []watcher.Event) tea.Cmd {
	var cmds []tea.Cmd
	stateChanged := false
	for _, ev := range events {
		switch ev := ev.(type) {
		case watcher.StateChanged:
			m.header.box(ev.Mailbox).applyEvent(ev)
			m.accounts[ev.Mailbox.Account] = true
			stateChanged = true
		case watcher.Captured:
			m.accounts[ev.Summary.Account] = true
			r := newRow(ev.Summary, ev.At, true)
			if m.list.add(r) {
				m.header.box(ev.Mailbox).countCapture(ev.Summary)
			}
		case watcher.Dropped:
			cmds = append(cmds, m.setNotice(fmt.Sprintf("%d events skipped while the UI was busy; reloading from disk", ev.N)))
			// Reconcile: the status is a snapshot, and the records the
			// skipped events announced are on disk.
			cmds = append(cmds, m.statusCmd(0), m.scanCmd(min(m.opts.RecentLimit+ev.N, m.opts.MaxRows)))
		}
	}
	if stateChanged {
		m.layout() // a new mailbox may add a header line
		cmds = append(cmds, m.scheduleTick())
	}
	cmds = append(cmds, m.refreshStatus())
	return tea.Batch(cmds...)
}

func (m *model) applyInventory(msg inventoryMsg) tea.Cmd {
	var cmd tea.Cmd
	if msg.err != nil {
		cmd = m.setNotice("reading earlier records: " + sanitizeLine(msg.err.Error()))
	}
	if msg.inv == nil {
		return cmd
	}
	rows := make([]*row, 0, len(msg.inv.Recent))
	for _, f := range msg.inv.Recent {
		rows = append(rows, newRow(f.Summary, f.CapturedAt, false))
		m.accounts[f.Summary.Account] = true
	}
	m.list.merge(rows)
	if !m.recentLoaded {
		m.inv = msg.inv
		m.recentLoaded = true
		m.applyDisk()
	}
	return cmd
}

// applyDisk starts the on-disk counters from the start-up scan, counting
// the rows captured before the scan result arrived that it had not seen.
func (m *model) applyDisk() {
	if m.inv == nil {
		return
	}
	newly := false
	for _, b := range m.header.boxes {
		if b.diskKnown {
			continue
		}
		newly = true
		b.diskKnown = true
		b.diskMax = map[uint32]uint32{}
		if mf := m.inv.Mailboxes[b.id.String()]; mf != nil {
			b.disk = mf.Count
			for k, v := range mf.MaxUID {
				b.diskMax[k] = v
			}
		}
	}
	if !newly {
		return
	}
	for _, r := range m.list.rows {
		if r.live {
			if b := m.header.byID[r.box]; b != nil {
				b.countCapture(r.sum)
			}
		}
	}
}

func (m *model) applyControl(msg controlMsg) tea.Cmd {
	who := "every mailbox"
	if msg.target != "" {
		who = sanitizeLine(msg.target)
	}
	if msg.err != nil {
		return m.setNotice(fmt.Sprintf("%s: %s", who, sanitizeLine(msg.err.Error())))
	}
	return m.setNotice(who + " " + msg.verb)
}

func (m *model) applyLogs(es []LogEntry) {
	if len(es) > 0 && m.state == stateLogs {
		m.seenLogSeq = es[len(es)-1].Seq
	}
	m.unseenWarnings = 0
	for _, e := range es {
		if e.Seq > m.seenLogSeq {
			m.unseenWarnings++
		}
	}
	m.logs.setEntries(es)
}

// target is the mailbox p and r act on: the only one, or the one of the
// mail under the cursor (or open in the detail view).
func (m *model) target() (string, bool) {
	if len(m.header.boxes) == 1 {
		return m.header.boxes[0].id.String(), true
	}
	var r *row
	if m.state == stateDetail && m.detail != nil {
		r = m.detail.row
	} else {
		r = m.list.selectedRow()
	}
	if r == nil {
		return "", false
	}
	if _, ok := m.header.byID[r.box]; !ok {
		return "", false
	}
	return r.box, true
}

func (m *model) handleKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	if msg.String() == "ctrl+c" {
		return tea.Quit
	}
	if m.filtering {
		switch msg.String() {
		case "esc":
			m.filtering = false
			m.filter.Blur()
			m.filter.SetValue("")
			m.list.setFilter("")
			m.layout()
			return nil
		case "enter":
			m.filtering = false
			m.filter.Blur()
			m.layout()
			return nil
		case "up", "down", "pgup", "pgdown":
			// Move through the matches without leaving the filter.
			m.listKey(msg)
			return nil
		}
		var cmd tea.Cmd
		m.filter, cmd = m.filter.Update(msg)
		m.list.setFilter(m.filter.Value())
		return cmd
	}
	if cmd, ok := m.readOnlyKey(msg); ok {
		return cmd
	}

	switch {
	case key.Matches(msg, k.Quit):
		return tea.Quit
	case key.Matches(msg, k.Help):
		m.help.ShowAll = !m.help.ShowAll
		m.layout()
		return nil
	case key.Matches(msg, k.Logs):
		if m.state == stateLogs {
			m.state = stateList
			if m.detail != nil {
				m.state = stateDetail
			}
		} else {
			m.state = stateLogs
			m.unseenWarnings = 0
			if es := m.logs.entries; len(es) > 0 {
				m.seenLogSeq = es[len(es)-1].Seq
			}
			m.logs.vp.GotoBottom()
		}
		m.layout()
		return nil
	case key.Matches(msg, k.Pause):
		id, ok := m.target()
		if !ok {
			return m.setNotice("select a mail of the mailbox to pause, or press P for all")
		}
		b := m.header.byID[id]
		verb := "paused"
		if b.paused || b.state == watcher.StatePaused {
			verb = "resumed"
		}
		b.paused = verb == "paused" // shown at once; the next snapshot confirms
		return controlCmd(m.ctrl, verb, id)
	case key.Matches(msg, k.PauseAll):
		all := len(m.header.boxes) > 0
		for _, b := range m.header.boxes {
			all = all && (b.paused || b.state == watcher.StatePaused)
		}
		verb := "paused"
		if all {
			verb = "resumed"
		}
		for _, b := range m.header.boxes {
			b.paused = verb == "paused"
		}
		return controlCmd(m.ctrl, verb, "")
	case key.Matches(msg, k.Reconnect):
		id, ok := m.target()
		if !ok {
			return m.setNotice("select a mail of the mailbox to reconnect, or press R for all")
		}
		return controlCmd(m.ctrl, "reconnecting", id)
	case key.Matches(msg, k.ReconnectAll):
		return controlCmd(m.ctrl, "reconnecting", "")
	}

	switch m.state {
	case stateDetail:
		switch {
		case key.Matches(msg, k.Back):
			m.state = stateList
			m.detail = nil
			m.layout()
		case key.Matches(msg, k.Raw):
			m.detail.toggleRaw()
		default:
			scroll(&m.detail.vp, msg, k)
		}
		return nil
	case stateLogs:
		if key.Matches(msg, k.Back) {
			m.state = stateList
			if m.detail != nil {
				m.state = stateDetail
			}
			m.layout()
			return nil
		}
		scroll(&m.logs.vp, msg, k)
		return nil
	}

	switch {
	case key.Matches(msg, k.Open):
		r := m.list.selectedRow()
		if r == nil {
			return nil
		}
		m.state = stateDetail
		m.detail = newDetail(r, m.width, m.bodyHeight())
		m.layout()
		return loadDetail(r.sum.Path)
	case key.Matches(msg, k.Filter):
		m.filtering = true
		m.layout()
		return m.filter.Focus()
	case key.Matches(msg, k.Back):
		if m.list.filter != "" {
			m.filter.SetValue("")
			m.list.setFilter("")
		}
		m.notice = ""
		return nil
	}
	m.listKey(msg)
	return nil
}

func (m *model) listKey(msg tea.KeyPressMsg) {
	k, l := m.keys, m.list
	switch {
	case key.Matches(msg, k.Up):
		l.move(-1)
	case key.Matches(msg, k.Down):
		l.move(1)
	case key.Matches(msg, k.PageUp):
		l.move(-l.height)
	case key.Matches(msg, k.PageDown):
		l.move(l.height)
	case key.Matches(msg, k.Top):
		l.top()
	case key.Matches(msg, k.Bottom):
		l.bottom()
	}
}

type scroller interface {
	ScrollUp(int)
	ScrollDown(int)
	PageUp()
	PageDown()
	GotoTop() []string
	GotoBottom() []string
}

func scroll(vp scroller, msg tea.KeyPressMsg, k KeyMap) {
	switch {
	case key.Matches(msg, k.Up):
		vp.ScrollUp(1)
	case key.Matches(msg, k.Down):
		vp.ScrollDown(1)
	case key.Matches(msg, k.PageUp):
		vp.PageUp()
	case key.Matches(msg, k.PageDown):
		vp.PageDown()
	case key.Matches(msg, k.Top):
		vp.GotoTop()
	case key.Matches(msg, k.Bottom):
		vp.GotoBottom()
	}
}

// Layout: title and mailbox lines, the active view, one status line, the
// help bar (several lines when full help is on).

func (m *model) headerHeight() int { return 1 + max(m.header.lines(m.height), 1) }

// helpView renders the help bar; layout caches it in helpText.
func (m *model) helpView() string {
	m.help.SetWidth(m.width)
	var keys help.KeyMap
	switch m.state {
	case stateDetail:
		keys = m.keys.detailHelp()
	case stateLogs:
		keys = m.keys.logHelp()
	default:
		keys = m.keys.listHelp()
	}
	return m.footer(keys)
}

func (m *model) bodyHeight() int {
	return max(m.height-m.headerHeight()-1-strings.Count(m.helpText, "\n")-1, 1)
}

// layout sizes every component; call it after anything that changes the
// size, the active view, the help mode or the header's height.
func (m *model) layout() {
	if m.width == 0 {
		return
	}
	m.helpText = m.helpView()
	h := m.bodyHeight()
	m.list.setHeight(h - 1) // minus the column heading
	if m.detail != nil {
		m.detail.setSize(m.width, h)
	}
	m.logs.setSize(m.width, h-1)
	m.filter.SetWidth(max(m.width-30, 10))
}

func (m *model) showMailboxColumn() bool {
	boxes := map[string]bool{}
	for _, b := range m.header.boxes {
		boxes[b.id.String()] = true
	}
	return len(boxes) > 1 || len(m.accounts) > 1
}

func (m *model) singleAccount() bool { return len(m.accounts) <= 1 }

func (m *model) view() tea.View {
	var v tea.View
	v.AltScreen = true
	if m.width <= 0 || m.height <= 0 {
		return v
	}
	var b strings.Builder
	m.renderHeader(&b, m.width)
	b.WriteString("\n")
	bodyTop := strings.Count(b.String(), "\n")
	switch m.state {
	case stateDetail:
		m.renderDetail(&b, m.width, m.bodyHeight())
	case stateLogs:
		m.renderLogs(&b, m.width)
	default:
		m.renderList(&b, m.width)
	}
	b.WriteString("\n")
	statusY := bodyTop + m.bodyHeight()
	b.WriteString(m.statusLine())
	b.WriteString("\n")
	b.WriteString(m.helpText)
	v.SetContent(clip(b.String(), m.width, m.height))
	if m.filtering {
		if c := m.filter.Cursor(); c != nil {
			c.Y += statusY
			v.Cursor = c
		}
	}
	return v
}

// statusLine is the filter input while typing, else position, filter,
// notices and the "new mail above" hint.
func (m *model) statusLine() string {
	st, l, g := &m.styles, m.list, m.glyphs
	if m.filtering {
		count := fmt.Sprintf("  %d of %d", l.len(), len(l.rows))
		return m.filter.View() + st.Status.Render(count)
	}
	var parts []string
	switch m.state {
	case stateList:
		if n := l.len(); n > 0 {
			pos := fmt.Sprintf(" %d/%d", l.display(l.sel)+1, n)
			if l.filter != "" {
				pos += fmt.Sprintf(" matching %q (of %d; esc clears)", sanitizeLine(l.filter), len(l.rows))
			}
			parts = append(parts, pos)
		} else if l.filter != "" {
			parts = append(parts, fmt.Sprintf(" 0 matching %q (esc clears)", sanitizeLine(l.filter)))
		}
		if l.above > 0 {
			parts = append(parts, fmt.Sprintf("%d new above (g)", l.above))
		}
	}
	line := m.paint.status.render(strings.Join(parts, g.Sep))
	if m.notice != "" {
		if line != "" {
			line += m.paint.status.render(g.Sep)
		} else {
			line = " "
		}
		line += m.paint.notice.render(m.notice)
	}
	return line
}

// clip makes s exactly height lines of at most width columns. Components
// size themselves to fit; this is the guarantee that a miscount can never
// wrap a line and scroll the whole screen.
func clip(s string, width, height int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > height {
		lines = lines[:height]
	}
	for i, l := range lines {
		if widthBound(l) > width && ansi.StringWidth(l) > width {
			lines[i] = ansi.Truncate(l, width, "")
		}
	}
	for len(lines) < height {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

// widthBound is a cheap upper bound of a styled line's width: escape
// sequences count nothing, characters below U+1100 one column, the rest
// two. Exact for ASCII, CJK and emoji; it overcounts only combining marks,
// and then the exact (slower) measure decides.
func widthBound(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == 0x1b && i+1 < len(s) && s[i+1] == '[':
			i += 2
			for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
				i++
			}
			i++
		case c == 0x1b:
			return len(s) // other sequences are not ours: measure exactly
		case c < 0x80:
			n++
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r >= 0x1100 {
				n += 2
			} else {
				n++
			}
			i += size
		}
	}
	return n
}
