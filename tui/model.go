package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"mailtap/jsonstore"
	"mailtap/sinks"
	"mailtap/watcher"
)

// viewState is the active view; the root model forwards keys to it only.
type viewState int

const (
	stateList viewState = iota
	stateDetail
	stateLogs
	stateBoxes // the mailbox panel
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
	boxes  *boxPanel
	detail *detail
	logs   *logPane
	help   help.Model
	filter textinput.Model

	helpText  string // the help bar for the current state and width, set by layout
	filtering bool   // the filter input has focus
	// What the filter edit started from, restored by FilterCancel.
	filterWas      string
	filterSelWas   *row
	filterBoxWas   string
	notice         string
	noticeID       int
	follow         *reconnectNotice // the notice reports this reconnect
	unseenWarnings int
	seenLogSeq     uint64
	statusPending  bool // a throttled status refresh is scheduled
	tickPending    bool
	recentLoaded   bool
	inv            *jsonstore.Inventory
	accounts       map[string]bool // seen in rows and status, for the mailbox column
	sinks          []sinks.Status  // sinks.go
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
		m.keys.FilterUp.SetHelp("up", "up")
		m.keys.FilterDown.SetHelp("down", "down")
		m.help.ShortSeparator = " | "
		m.help.Ellipsis = "~"
	}
	m.paint = newPaints(&m.styles)
	m.logs = newLogPane(&m.styles)
	m.boxes = newBoxPanel(m.header, &m.styles, m.paint, m.glyphs, &m.keys, m.now, m.loc)
	m.help.Styles = m.styles.Help
	m.filter.Prompt = "/"
	m.filter.Placeholder = "filter by sender, subject or mailbox"
	m.filter.SetVirtualCursor(false) // a real cursor: no blink redraws over SSH
	fs := m.filter.Styles()
	fs.Focused.Prompt = m.styles.Prompt
	fs.Blurred.Prompt = m.styles.Prompt
	m.filter.SetStyles(fs)
	return Model{m}
}

func (m *model) init() tea.Cmd {
	cmds := []tea.Cmd{m.statusCmd(0), m.scanCmd(m.opts.RecentLimit), sinksCmd(m.opts.Sinks, 0)}
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

// reconnectNotice is a requested reconnect whose notice follows the
// mailboxes' states: "reconnect requested" until they went down and came
// back, then "reconnected" (which expires), so the status line never says
// "reconnecting" above an idle badge.
type reconnectNotice struct {
	target string // mailbox id, "" = all
	who    string // as shown
	down   bool   // left the watching states since the request
}

// saw notes a state change of a followed mailbox: events come in batches,
// and one batch can hold a whole reconnect, down and back up, that the
// states after the batch no longer show.
func (f *reconnectNotice) saw(ev watcher.StateChanged) {
	if f == nil || f.target != "" && f.target != ev.Mailbox.String() {
		return
	}
	switch {
	case watching(ev.State), ev.State == watcher.StatePaused, ev.State == watcher.StateStopped:
	default:
		f.down = true
	}
}

// noticeTTL is how long a notice stays; one that follows a reconnect is
// replaced when the reconnect is over.
const noticeTTL = 8 * time.Second

func (m *model) setNotice(s string) tea.Cmd {
	m.follow = nil
	m.noticeID++
	m.notice = s
	id := m.noticeID
	return tea.Tick(noticeTTL, func(time.Time) tea.Msg { return noticeMsg{id: id} })
}

// requestReconnect sets the notice of a reconnect about to be requested,
// before the request, so that no state change of it can be missed. Its
// expiry starts when the controller has answered (applyControl).
func (m *model) requestReconnect(target string) {
	who := "every mailbox"
	if target != "" {
		who = sanitizeLine(target)
	}
	m.noticeID++
	m.notice = who + ": reconnect requested"
	m.follow = &reconnectNotice{target: target, who: who}
}

// followReconnect updates a notice that follows a reconnect from the
// header's states.
func (m *model) followReconnect() tea.Cmd {
	f := m.follow
	if f == nil {
		return nil
	}
	var boxes []*boxState
	if f.target == "" {
		boxes = m.header.boxes
	} else if b := m.header.byID[f.target]; b != nil {
		boxes = []*boxState{b}
	}
	up := len(boxes) > 0
	for _, b := range boxes {
		switch {
		case watching(b.state):
		case b.state == watcher.StatePaused, b.state == watcher.StateStopped:
			// A paused mailbox does not reconnect, nor does one that is
			// no longer watched: not waited for.
		case b.state == watcher.StateAuthFailed, b.state == watcher.StateError:
			// Failed: the badge and its error say so; the notice steps aside.
			m.follow, m.notice = nil, ""
			return nil
		default:
			up = false
			f.down = true
		}
	}
	if f.down && up {
		return m.setNotice(f.who + " reconnected")
	}
	return nil
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
			m.applyFilter(m.filter.Value())
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
		return tea.Batch(m.scheduleTick(), m.followReconnect())
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
	case sinksMsg:
		return m.applySinks(msg)
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
			m.follow.saw(ev)
			m.accounts[ev.Mailbox.Account] = true
			stateChanged = true
		case watcher.Captured:
			m.accounts[ev.Summary.Account] = true
			r := newRow(ev.Summary, ev.At, true)
			if m.list.add(r) {
				b := m.header.box(ev.Mailbox)
				b.countCapture(ev.Summary)
				b.countLive(ev.Summary, ev.At)
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
	if stateChanged {
		cmds = append(cmds, m.followReconnect())
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
	if msg.verb == "reconnecting" && m.follow != nil {
		// The notice was set with the request; it expires from now on.
		id := m.noticeID
		expire := tea.Tick(noticeTTL, func(time.Time) tea.Msg { return noticeMsg{id: id} })
		return tea.Batch(expire, m.followReconnect())
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

// target is the mailbox p and r act on: the only one, the one selected in
// the mailbox panel, or the one of the mail under the cursor (or open in
// the detail view).
func (m *model) target() (string, bool) {
	if len(m.header.boxes) == 1 {
		return m.header.boxes[0].id.String(), true
	}
	if m.state == stateBoxes {
		if b := m.boxes.selected(); b != nil {
			return b.id.String(), true
		}
		return "", false
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

// handleKey routes a key: the filter input takes every key while it has
// focus; then the keys that work everywhere; then the active view's.
func (m *model) handleKey(msg tea.KeyPressMsg) tea.Cmd {
	if msg.String() == "ctrl+c" {
		return tea.Quit
	}
	if m.filtering {
		return m.filterKey(msg)
	}
	if cmd, ok := m.readOnlyKey(msg); ok {
		return cmd
	}
	if cmd, ok := m.globalKey(msg); ok {
		return cmd
	}
	switch m.state {
	case stateDetail:
		return m.detailKey(msg)
	case stateBoxes:
		return m.boxesKey(msg)
	case stateLogs:
		return m.logsKey(msg)
	}
	return m.mailKey(msg)
}

// globalKey handles the keys of every view: quit, help, switching views,
// and the controls.
func (m *model) globalKey(msg tea.KeyPressMsg) (tea.Cmd, bool) {
	k := m.keys
	switch {
	case key.Matches(msg, k.Quit):
		return tea.Quit, true
	case key.Matches(msg, k.Mailboxes) && m.state != stateLogs:
		if m.state == stateBoxes {
			m.state = stateList
		} else {
			m.state = stateBoxes
			m.detail = nil
		}
		m.syncFilterInput()
		m.layout()
	case key.Matches(msg, k.Help):
		m.help.ShowAll = !m.help.ShowAll
		m.layout()
	case key.Matches(msg, k.Logs):
		if m.state == stateLogs {
			m.leaveLogs()
		} else {
			m.state = stateLogs
			m.unseenWarnings = 0
			if es := m.logs.entries; len(es) > 0 {
				m.seenLogSeq = es[len(es)-1].Seq
			}
			m.logs.vp.GotoBottom()
		}
		m.layout()
	case key.Matches(msg, k.Pause, k.PauseAll, k.Reconnect, k.ReconnectAll):
		return m.controlKey(msg), true
	default:
		return nil, false
	}
	return nil, true
}

// controlKey is p, P, r and R: on the target mailbox, or every one.
func (m *model) controlKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.Pause):
		id, ok := m.target()
		if !ok {
			return m.setNotice("select a mail, or a mailbox with tab, to pause it; P pauses all")
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
			return m.setNotice("select a mail, or a mailbox with tab, to reconnect it; R reconnects all")
		}
		m.requestReconnect(id)
		return controlCmd(m.ctrl, "reconnecting", id)
	default: // ReconnectAll
		m.requestReconnect("")
		return controlCmd(m.ctrl, "reconnecting", "")
	}
}

// leaveLogs goes back to the view the log pane was opened from.
func (m *model) leaveLogs() {
	m.state = stateList
	if m.detail != nil {
		m.state = stateDetail
	}
}

func (m *model) detailKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.Back):
		m.state = stateList
		m.detail = nil
		m.layout()
	case key.Matches(msg, k.Raw):
		m.detail.toggleRaw()
	default:
		scroll(&m.detail.vp, k.motions().of(msg))
	}
	return nil
}

func (m *model) logsKey(msg tea.KeyPressMsg) tea.Cmd {
	if key.Matches(msg, m.keys.Back) {
		m.leaveLogs()
		m.layout()
		return nil
	}
	scroll(&m.logs.vp, m.keys.motions().of(msg))
	return nil
}

func (m *model) boxesKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.Filter):
		m.startFilter()
		return m.filter.Focus()
	case key.Matches(msg, k.Open):
		// The mail of this mailbox: the list, filtered to it.
		if b := m.boxes.selected(); b != nil {
			m.state = stateList
			m.list.setFilter(b.id.String())
			m.syncFilterInput()
			m.layout()
		}
	case key.Matches(msg, k.Back):
		if m.boxes.filter != "" {
			m.boxes.setFilter("")
		} else {
			m.state = stateList
			m.layout()
		}
		m.syncFilterInput()
	default:
		m.boxes.step(k.motions().of(msg))
	}
	return nil
}

// mailKey is the mail list's keys.
func (m *model) mailKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
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
		m.startFilter()
		return m.filter.Focus()
	case key.Matches(msg, k.Back):
		if m.list.filter != "" {
			m.filter.SetValue("")
			m.list.setFilter("")
		}
		m.notice = ""
		return nil
	}
	m.list.step(k.motions().of(msg))
	return nil
}

// The filter input edits the filter of the view it was opened in: the
// mail list or the mailbox panel.

// startFilter gives the input focus, remembering what to restore on
// FilterCancel.
func (m *model) startFilter() {
	m.filtering = true
	m.filterWas = m.currentFilter()
	m.filterSelWas = m.list.sel
	m.filterBoxWas = m.boxes.sel
	m.filter.SetValue(m.filterWas)
	m.filter.CursorEnd()
	m.layout()
}

func (m *model) currentFilter() string {
	if m.state == stateBoxes {
		return m.boxes.filter
	}
	return m.list.filter
}

func (m *model) applyFilter(s string) {
	if m.state == stateBoxes {
		m.boxes.setFilter(s)
		return
	}
	m.list.setFilter(s)
}

// syncFilterInput shows the active view's filter in the (blurred) input.
func (m *model) syncFilterInput() { m.filter.SetValue(m.currentFilter()) }

// filterKey handles a key while the filter input has focus: the filter
// keys of the KeyMap act, everything else types.
func (m *model) filterKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.FilterCancel):
		// Undo the edit: the filter and the selection as they were, not
		// whatever transient match the typing landed on.
		m.filtering = false
		m.filter.Blur()
		m.applyFilter(m.filterWas)
		m.filter.SetValue(m.filterWas)
		if m.state == stateBoxes {
			m.boxes.sel = m.filterBoxWas
			m.boxes.keepVisible()
		} else if m.filterSelWas != nil && m.list.display(m.filterSelWas) >= 0 {
			m.list.sel = m.filterSelWas
			m.list.keepVisible()
		}
		m.layout()
		return nil
	case key.Matches(msg, k.FilterApply):
		m.filtering = false
		m.filter.Blur()
		m.layout()
		return nil
	}
	if mv := k.filterMotions().of(msg); mv != noMotion {
		// Move through the matches without leaving the filter.
		if m.state == stateBoxes {
			m.boxes.step(mv)
		} else {
			m.list.step(mv)
		}
		return nil
	}
	var cmd tea.Cmd
	m.filter, cmd = m.filter.Update(msg)
	m.applyFilter(m.filter.Value())
	return cmd
}

type scroller interface {
	ScrollUp(int)
	ScrollDown(int)
	PageUp()
	PageDown()
	GotoTop() []string
	GotoBottom() []string
}

func scroll(vp scroller, mv motion) {
	switch mv {
	case lineUp:
		vp.ScrollUp(1)
	case lineDown:
		vp.ScrollDown(1)
	case pageUp:
		vp.PageUp()
	case pageDown:
		vp.PageDown()
	case toTop:
		vp.GotoTop()
	case toBottom:
		vp.GotoBottom()
	}
}

// Layout: title and mailbox lines, the active view, one status line, the
// help bar (several lines when full help is on).

func (m *model) headerHeight() int { return 1 + max(m.headerLines(), 1) }

// headerLines is how many mailbox lines the header draws: in the mailbox
// panel, which shows them all, one summary line.
func (m *model) headerLines() int {
	if m.state == stateBoxes && len(m.header.boxes) > 0 {
		return 1
	}
	return m.header.lines(m.height)
}

// helpView renders the help bar; layout caches it in helpText.
func (m *model) helpView() string {
	m.help.SetWidth(m.width)
	var keys help.KeyMap
	switch {
	case m.filtering:
		keys = m.keys.filterHelp()
	case m.state == stateBoxes:
		keys = m.boxes.helpKeys()
	case m.state == stateDetail:
		keys = m.keys.detailHelp()
	case m.state == stateLogs:
		keys = m.keys.logHelp()
	default:
		keys = m.keys.listHelp()
	}
	text := m.footer(keys)
	if m.help.ShowAll && !m.filtering {
		text += "\n" + m.stateLegend()
	}
	return text
}

// stateLegend is the full help's line on the watching states the header
// and the panel show: idle and notify are pushed (IDLE on the mailbox's
// own connection, NOTIFY on the account's shared one), polling is asked.
func (m *model) stateLegend() string {
	g := m.glyphs
	s := "idle, notify: server pushes new mail" + g.Sep + "polling: checked every poll_interval"
	return m.styles.Help.FullDesc.Render(truncate(s, m.width, g.Ellipsis))
}

// fitShort drops bindings from the short help, last first, until it fits
// the width, but never its last two (help and quit, or the filter's apply
// and cancel): those must stay findable however narrow the terminal.
func (m *model) fitShort(k helpKeys) helpKeys {
	w := m.help.Width()
	m.help.SetWidth(0) // measure without the help's own cut
	defer m.help.SetWidth(w)
	short := k.short
	for len(short) > 2 && ansi.StringWidth(m.help.ShortHelpView(short)) > w {
		short = append(slices.Clip(short[:len(short)-3]), short[len(short)-2:]...)
	}
	k.short = short
	return k
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
	m.boxes.setSize(m.width, h)
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
	case stateBoxes:
		m.boxes.render(&b)
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
		if m.state == stateBoxes {
			count = fmt.Sprintf("  %d of %d mailboxes", len(m.boxes.view()), len(m.header.boxes))
		}
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
	case stateBoxes:
		v := m.boxes.view()
		if len(v) > 0 {
			pos := fmt.Sprintf(" %d/%d", max(m.boxes.index(v), 0)+1, len(v))
			if m.boxes.filter != "" {
				pos += fmt.Sprintf(" matching %q (of %d; esc clears)", sanitizeLine(m.boxes.filter), len(m.header.boxes))
			}
			parts = append(parts, pos)
		} else if m.boxes.filter != "" {
			parts = append(parts, fmt.Sprintf(" 0 matching %q (esc clears)", sanitizeLine(m.boxes.filter)))
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
