package tui

import (
	"context"
	"slices"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"mailtap/watcher"
)

// NewProgram builds the monitor as a program of the caller's: it reads
// events from sub, which the caller owns (subscribed before the program
// exists, so that nothing falls between the subscription and the first
// status snapshot), steers ctrl, and draws through the program options in
// opts.ProgramOptions (input, output, window size, colour profile: an SSH
// session gives its own). Nothing here touches the process's terminal,
// environment or signals, so several programs can run at once beside the
// local one.
//
// The caller runs the program, then ends ctx or closes sub and calls
// wait, which returns when the goroutines feeding the program have ended.
// Closing sub ends only this program's feed; the watcher goes on.
func NewProgram(ctx context.Context, ctrl watcher.Controller, sub *watcher.Subscription, opts Options) (p *tea.Program, wait func()) {
	m := NewModel(ctrl, opts)
	popts := append([]tea.ProgramOption{tea.WithContext(ctx)}, opts.ProgramOptions...)
	p = tea.NewProgram(m, popts...)
	return p, startBridges(ctx, sub, opts.Logs, p.Send)
}

// ApplyEnv sets NoColor when NO_COLOR is set to anything non-empty and
// ASCII when the locale (LC_ALL, LC_CTYPE, LANG, the first set) is not
// UTF-8, reading the environment through getenv: os.Getenv for the local
// terminal, the session's for a remote one.
func (o *Options) ApplyEnv(getenv func(string) string) {
	if getenv("NO_COLOR") != "" {
		o.NoColor = true
	}
	if !utf8Locale(getenv) {
		o.ASCII = true
	}
}

// readOnlyNotice is what p, P, r and R answer in a read-only session.
const readOnlyNotice = "read-only session: pause, resume and reconnect are disabled"

// disableControls takes the control keys out of the help of a read-only
// session; with them disabled, key.Matches never lets one through.
func (k *KeyMap) disableControls() {
	for _, b := range []*key.Binding{&k.Pause, &k.PauseAll, &k.Reconnect, &k.ReconnectAll} {
		b.SetEnabled(false)
	}
}

// readOnlyKey answers a control key in a read-only session with a notice;
// the controller is never called.
func (m *model) readOnlyKey(msg tea.KeyPressMsg) (tea.Cmd, bool) {
	if !m.opts.ReadOnly {
		return nil, false
	}
	// The bindings are disabled in a read-only session (so no help shows
	// them), and a disabled binding matches nothing: compare the keys.
	k := m.keys
	for _, b := range []key.Binding{k.Pause, k.PauseAll, k.Reconnect, k.ReconnectAll} {
		if slices.Contains(b.Keys(), msg.String()) {
			return m.setNotice(readOnlyNotice), true
		}
	}
	return nil, false
}

// footer is the help bar, led by a read-only mark in a read-only session.
// The short help is fitted to what is left of the width (fitShort).
func (m *model) footer(keys help.KeyMap) string {
	mark := ""
	if m.opts.ReadOnly {
		mark = m.paint.notice.render(" read-only") + m.paint.status.render(m.help.ShortSeparator)
		m.help.SetWidth(max(m.width-ansi.StringWidth(mark), 0))
	}
	if hk, ok := keys.(helpKeys); ok && !m.help.ShowAll {
		keys = m.fitShort(hk)
	}
	return mark + m.help.View(keys)
}
