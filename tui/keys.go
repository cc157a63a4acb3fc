package tui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// KeyMap is every key binding, with the help text shown in the help bar
// (short) and the full help (?).
type KeyMap struct {
	Up, Down         key.Binding
	PageUp, PageDown key.Binding
	Top, Bottom      key.Binding
	Open             key.Binding // enter: detail
	Back             key.Binding // esc
	Raw              key.Binding // o: raw JSON in the detail view
	Filter           key.Binding
	Mailboxes        key.Binding // tab: the mailbox view and back
	Pause            key.Binding // selected mailbox (or the only one)
	PauseAll         key.Binding
	Reconnect        key.Binding // selected mailbox (or the only one)
	ReconnectAll     key.Binding
	Logs             key.Binding
	Help             key.Binding
	Quit             key.Binding

	// While the filter input has focus every other key types into it;
	// only these act.
	FilterApply  key.Binding // keep the filter, leave the input
	FilterCancel key.Binding // undo the edit: filter and selection as before
	// Move through the matches without leaving the input: each binding
	// is one direction, so any of them can be rebound.
	FilterUp, FilterDown         key.Binding
	FilterPageUp, FilterPageDown key.Binding
}

// DefaultKeyMap is the default key map. Everything works from the keyboard;
// no binding needs a mouse or function keys.
func DefaultKeyMap() KeyMap {
	return KeyMap{
		Up:           key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:         key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		PageUp:       key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "page up")),
		PageDown:     key.NewBinding(key.WithKeys("pgdown", "ctrl+f", "space"), key.WithHelp("pgdn", "page down")),
		Top:          key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g/home", "newest")),
		Bottom:       key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G/end", "oldest")),
		Open:         key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open")),
		Back:         key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Raw:          key.NewBinding(key.WithKeys("o"), key.WithHelp("o", "raw JSON")),
		Filter:       key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		Mailboxes:    key.NewBinding(key.WithKeys("tab", "m"), key.WithHelp("tab", "mailboxes")),
		Pause:        key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "pause/resume")),
		PauseAll:     key.NewBinding(key.WithKeys("P"), key.WithHelp("P", "pause/resume all")),
		Reconnect:    key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "reconnect")),
		ReconnectAll: key.NewBinding(key.WithKeys("R"), key.WithHelp("R", "reconnect all")),
		Logs:         key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "logs")),
		Help:         key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:         key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),

		FilterApply:    key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply")),
		FilterCancel:   key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),
		FilterUp:       key.NewBinding(key.WithKeys("up"), key.WithHelp("↑", "up")),
		FilterDown:     key.NewBinding(key.WithKeys("down"), key.WithHelp("↓", "down")),
		FilterPageUp:   key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "page up")),
		FilterPageDown: key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("pgdn", "page down")),
	}
}

// motion is where a key moves a selection or a scroll position.
type motion int

const (
	noMotion motion = iota
	lineUp
	lineDown
	pageUp
	pageDown
	toTop
	toBottom
)

// motionKeys are the bindings of each motion in one mode; a zero binding
// (top and bottom while filtering) matches nothing.
type motionKeys struct{ up, down, pageUp, pageDown, top, bottom key.Binding }

// motions are the movement keys of the views.
func (k KeyMap) motions() motionKeys {
	return motionKeys{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}
}

// filterMotions are the movement keys while the filter input has focus:
// only these, so that g, G, j, k and space type.
func (k KeyMap) filterMotions() motionKeys {
	return motionKeys{up: k.FilterUp, down: k.FilterDown, pageUp: k.FilterPageUp, pageDown: k.FilterPageDown}
}

// of is the motion msg's binding names, or noMotion.
func (mk motionKeys) of(msg tea.KeyPressMsg) motion {
	switch {
	case key.Matches(msg, mk.up):
		return lineUp
	case key.Matches(msg, mk.down):
		return lineDown
	case key.Matches(msg, mk.pageUp):
		return pageUp
	case key.Matches(msg, mk.pageDown):
		return pageDown
	case key.Matches(msg, mk.top):
		return toTop
	case key.Matches(msg, mk.bottom):
		return toBottom
	}
	return noMotion
}

// relabel is b with other help text: one key, named for what it does in
// a view (g is "newest" in the list, "top" in a text).
func relabel(b key.Binding, desc string) key.Binding {
	b.SetHelp(b.Help().Key, desc)
	return b
}

// helpKeys adapts the key map to help.KeyMap for one view.
type helpKeys struct {
	short []key.Binding
	full  [][]key.Binding
}

func (h helpKeys) ShortHelp() []key.Binding  { return h.short }
func (h helpKeys) FullHelp() [][]key.Binding { return h.full }

func (k KeyMap) listHelp() helpKeys {
	return helpKeys{
		short: []key.Binding{k.Open, k.Filter, k.Mailboxes, k.Pause, k.Reconnect, k.Logs, k.Help, k.Quit},
		full: [][]key.Binding{
			{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom},
			{k.Open, k.Filter, k.Back, k.Mailboxes, k.Logs},
			{k.Pause, k.PauseAll, k.Reconnect, k.ReconnectAll},
			{k.Help, k.Quit},
		},
	}
}

func (k KeyMap) detailHelp() helpKeys {
	return helpKeys{
		short: []key.Binding{k.Back, k.Raw, k.Up, k.Down, k.Pause, k.Help, k.Quit},
		full: [][]key.Binding{
			{k.Up, k.Down, k.PageUp, k.PageDown, relabel(k.Top, "top"), relabel(k.Bottom, "bottom")},
			{k.Back, k.Raw, k.Logs},
			{k.Pause, k.PauseAll, k.Reconnect, k.ReconnectAll},
			{k.Help, k.Quit},
		},
	}
}

func (k KeyMap) logHelp() helpKeys {
	return helpKeys{
		short: []key.Binding{k.Back, k.Up, k.Down, k.Help, k.Quit},
		full: [][]key.Binding{
			{k.Up, k.Down, k.PageUp, k.PageDown, relabel(k.Top, "top"), relabel(k.Bottom, "bottom")},
			{k.Back, k.Logs},
			{k.Pause, k.PauseAll, k.Reconnect, k.ReconnectAll},
			{k.Help, k.Quit},
		},
	}
}

// filterHelp is the footer while the filter input has focus: the keys
// that act there, nothing that would type into the filter instead.
func (k KeyMap) filterHelp() helpKeys {
	return helpKeys{
		short: []key.Binding{k.FilterApply, k.FilterCancel, joinHelp("move", k.FilterUp, k.FilterDown)},
		full: [][]key.Binding{
			{k.FilterApply, k.FilterCancel},
			{k.FilterUp, k.FilterDown, k.FilterPageUp, k.FilterPageDown},
		},
	}
}

// joinHelp is one help entry for several bindings ("↑/↓ move"), named by
// their own help keys so that it follows a rebinding.
func joinHelp(desc string, bs ...key.Binding) key.Binding {
	var keys, names []string
	for _, b := range bs {
		if b.Enabled() {
			keys = append(keys, b.Keys()...)
			names = append(names, b.Help().Key)
		}
	}
	return key.NewBinding(key.WithKeys(keys...), key.WithHelp(strings.Join(names, "/"), desc))
}
