package tui

import (
	"strings"
	"testing"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

var ctrlN = tea.KeyPressMsg{Code: 'n', Mod: tea.ModCtrl}

// In filter mode a rebound movement key moves, in the list and in the
// mailbox panel: the filter bindings decide the direction, not Up/Down.
func TestFilter_reboundMoveKeysMove(t *testing.T) {
	rebind := func(m Model) {
		m.keys.FilterDown = key.NewBinding(key.WithKeys("ctrl+n"), key.WithHelp("ctrl+n", "next"))
	}
	m := scene(t, 80, 24, testOptions())
	rebind(m)
	m = update(t, m, press("/"))
	before := m.list.display(m.list.sel)
	m = update(t, m, ctrlN)
	if got := m.list.display(m.list.sel); got != before+1 {
		t.Errorf("list: the rebound key moved the selection from %d to %d; want %d", before, got, before+1)
	}

	m = scene(t, 80, 24, testOptions())
	rebind(m)
	m = update(t, m, press("tab"), press("/"))
	first := m.boxes.selected()
	m = update(t, m, ctrlN)
	if m.boxes.selected() == first {
		t.Errorf("panel: the rebound key did not move the selection from %s", first.label)
	}
	// The footer names the rebound key; the old one types into the filter.
	if footer := lastLine(plain(m)); !strings.Contains(footer, "↑/ctrl+n move") {
		t.Errorf("filter footer after rebinding: %q", footer)
	}
	// down is no longer bound to a filter movement: it moves nothing and
	// leaves the input focused.
	was := m.boxes.selected()
	m = update(t, m, press("down"))
	if m.boxes.selected() != was || !m.filtering {
		t.Errorf("down after rebinding moved to %s (filtering %v)", m.boxes.selected().label, m.filtering)
	}
}

// The default filter movement keys: up and down a row, pgup and pgdown a
// page; g, G, j, k and space type into the filter.
func TestFilter_defaultMoveKeys(t *testing.T) {
	m := scene(t, 80, 24, testOptions())
	m = update(t, m, press("/"), press("down"), press("down"))
	if got := m.list.display(m.list.sel); got != 2 {
		t.Errorf("two downs in the filter moved to row %d; want 2", got)
	}
	m = update(t, m, press("up"))
	if got := m.list.display(m.list.sel); got != 1 {
		t.Errorf("up moved to row %d; want 1", got)
	}
	m = update(t, m, tea.KeyPressMsg{Code: tea.KeyPgDown})
	if got := m.list.display(m.list.sel); got != m.list.len()-1 {
		t.Errorf("pgdown moved to row %d of %d", got, m.list.len())
	}
	m = update(t, m, press("g"), press("j"), press("k"), press("G"))
	if got := m.filter.Value(); got != "gjkG" || !m.filtering {
		t.Errorf("letters in the filter: value %q, filtering %v", got, m.filtering)
	}
}

// The full help says what the watching states mean: idle and notify are
// pushed, polling is asked; every line fits the width.
func TestHelp_explainsWatchingStates(t *testing.T) {
	for _, w := range []int{40, 80, 120} {
		for _, keys := range [][]string{{"?"}, {"tab", "?"}, {"l", "?"}} {
			m := scene(t, w, 40, testOptions())
			for _, k := range keys {
				m = update(t, m, press(k))
			}
			s := plain(m)
			checkFrame(t, m.View().Content, w, 40)
			if !strings.Contains(s, "\nidle, notify: ") || w >= 80 && !strings.Contains(s, "polling: checked every poll_interval") {
				t.Errorf("%d cols, keys %v: the full help does not explain notify and polling:\n%s", w, keys, s)
			}
		}
	}
	if s := plain(scene(t, 80, 24, testOptions())); strings.Contains(s, "poll_interval") {
		t.Errorf("the short help carries the state legend:\n%s", s)
	}
}
