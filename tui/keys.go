package tui

import "charm.land/bubbles/v2/key"

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
	FilterMove   key.Binding // move through the matches
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

		FilterApply:  key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply")),
		FilterCancel: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),
		FilterMove:   key.NewBinding(key.WithKeys("up", "down", "pgup", "pgdown"), key.WithHelp("↑/↓", "move")),
	}
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
	keys := []key.Binding{k.FilterApply, k.FilterCancel, k.FilterMove}
	return helpKeys{short: keys, full: [][]key.Binding{keys}}
}
