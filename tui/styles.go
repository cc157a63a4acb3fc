package tui

import (
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"

	"mailtap/watcher"
)

// Styles is every style the UI draws with. Colours are the 16 ANSI colours,
// so they follow the user's terminal theme (dark or light) and survive
// terminals and multiplexers without true colour.
type Styles struct {
	Title     lipgloss.Style // top bar
	TitleDim  lipgloss.Style // secondary text in the top bar
	Warn      lipgloss.Style // warning counter in the top bar
	Mailbox   lipgloss.Style // account/mailbox in the header
	Counter   lipgloss.Style // header counters
	ErrText   lipgloss.Style // last error of a mailbox
	Badge     map[watcher.State]lipgloss.Style
	BadgeWrap [2]string // drawn around the badge text, inside its style

	Columns  lipgloss.Style // list column headings
	Time     lipgloss.Style
	From     lipgloss.Style
	Subject  lipgloss.Style
	Box      lipgloss.Style // mailbox column
	Attach   lipgloss.Style
	Selected lipgloss.Style // the whole selected row
	Empty    lipgloss.Style // "no mail yet"

	Status lipgloss.Style // position, filter and notices line
	Notice lipgloss.Style
	Prompt lipgloss.Style // filter prompt

	Label    lipgloss.Style // detail field names
	Value    lipgloss.Style
	Section  lipgloss.Style // detail section headings
	ParseErr lipgloss.Style

	LogTime  lipgloss.Style
	LogWarn  lipgloss.Style
	LogError lipgloss.Style

	Help help.Styles
}

// DefaultStyles are the colour styles.
func DefaultStyles() Styles {
	c := lipgloss.Color
	badge := func(fg, bg string) lipgloss.Style {
		return lipgloss.NewStyle().Foreground(c(fg)).Background(c(bg)).Bold(true)
	}
	keyStyle := lipgloss.NewStyle().Foreground(c("6"))
	descStyle := lipgloss.NewStyle().Faint(true)
	return Styles{
		Title:    lipgloss.NewStyle().Bold(true).Foreground(c("15")).Background(c("4")),
		TitleDim: lipgloss.NewStyle().Foreground(c("7")).Background(c("4")),
		Warn:     lipgloss.NewStyle().Bold(true).Foreground(c("11")).Background(c("4")),
		Mailbox:  lipgloss.NewStyle().Bold(true),
		Counter:  lipgloss.NewStyle().Faint(true),
		ErrText:  lipgloss.NewStyle().Foreground(c("1")),
		Badge: map[watcher.State]lipgloss.Style{
			watcher.StateIdle:         badge("0", "2"),
			watcher.StatePolling:      badge("0", "2"),
			watcher.StateNotify:       badge("0", "2"),
			watcher.StateSyncing:      badge("0", "6"),
			watcher.StateConnecting:   badge("0", "6"),
			watcher.StatePaused:       badge("0", "3"),
			watcher.StateReconnecting: badge("0", "3"),
			watcher.StateAuthFailed:   badge("15", "1"),
			watcher.StateError:        badge("15", "1"),
			watcher.StateStopped:      badge("0", "7"),
		},
		BadgeWrap: [2]string{" ", " "},
		Columns:   lipgloss.NewStyle().Faint(true).Bold(true),
		Time:      lipgloss.NewStyle().Faint(true),
		From:      lipgloss.NewStyle().Foreground(c("6")),
		Subject:   lipgloss.NewStyle(),
		Box:       lipgloss.NewStyle().Foreground(c("5")),
		Attach:    lipgloss.NewStyle().Foreground(c("3")),
		Selected:  lipgloss.NewStyle().Reverse(true),
		Empty:     lipgloss.NewStyle().Faint(true),
		Status:    lipgloss.NewStyle().Faint(true),
		Notice:    lipgloss.NewStyle().Foreground(c("3")).Bold(true),
		Prompt:    lipgloss.NewStyle().Foreground(c("6")).Bold(true),
		Label:     lipgloss.NewStyle().Foreground(c("6")).Bold(true),
		Value:     lipgloss.NewStyle(),
		Section:   lipgloss.NewStyle().Bold(true).Foreground(c("4")),
		ParseErr:  lipgloss.NewStyle().Foreground(c("1")),
		LogTime:   lipgloss.NewStyle().Faint(true),
		LogWarn:   lipgloss.NewStyle().Foreground(c("3")).Bold(true),
		LogError:  lipgloss.NewStyle().Foreground(c("1")).Bold(true),
		Help: help.Styles{
			Ellipsis: descStyle, ShortKey: keyStyle, ShortDesc: descStyle, ShortSeparator: descStyle,
			FullKey: keyStyle, FullDesc: descStyle, FullSeparator: descStyle,
		},
	}
}

// NoColorStyles honour NO_COLOR (https://no-color.org): no colour at all,
// only bold, faint, underline and reverse video, and state badges in
// brackets so they read as text.
func NoColorStyles() Styles {
	plain := lipgloss.NewStyle()
	bold := plain.Bold(true)
	faint := plain.Faint(true)
	badges := map[watcher.State]lipgloss.Style{}
	for _, st := range watcher.AllStates {
		badges[st] = plain
	}
	for _, st := range []watcher.State{watcher.StatePaused, watcher.StateReconnecting, watcher.StateAuthFailed, watcher.StateError} {
		badges[st] = bold
	}
	return Styles{
		Title: bold.Reverse(true), TitleDim: plain.Reverse(true), Warn: bold.Reverse(true),
		Mailbox: bold, Counter: plain, ErrText: plain,
		Badge: badges, BadgeWrap: [2]string{"[", "]"},
		Columns: bold, Time: plain, From: plain, Subject: plain, Box: plain, Attach: plain,
		Selected: plain.Reverse(true), Empty: faint,
		Status: plain, Notice: bold, Prompt: bold,
		Label: bold, Value: plain, Section: bold, ParseErr: bold,
		LogTime: plain, LogWarn: bold, LogError: bold,
		Help: help.Styles{Ellipsis: plain, ShortKey: bold, ShortDesc: plain, ShortSeparator: plain,
			FullKey: bold, FullDesc: plain, FullSeparator: plain},
	}
}

// Glyphs are the few non-letter symbols the UI draws. ASCIIGlyphs replace
// them on terminals whose locale is not UTF-8 (the Linux console, old
// serial terminals).
type Glyphs struct {
	Attachment string // mail has attachments; two columns wide
	Cursor     string // marks the selected row; one column
	Ellipsis   string // cut text; one column
	Sep        string // between counters; three columns
}

// UnicodeGlyphs are the default glyphs.
func UnicodeGlyphs() Glyphs {
	return Glyphs{Attachment: "📎", Cursor: "▌", Ellipsis: "…", Sep: " · "}
}

// ASCIIGlyphs draw with 7-bit ASCII only.
func ASCIIGlyphs() Glyphs { return Glyphs{Attachment: "+ ", Cursor: ">", Ellipsis: "~", Sep: " | "} }

// paint is a style reduced to the escape sequences around its text.
// lipgloss's Render measures, wraps and pads on every call; the list draws
// a few hundred cells per frame, so the hot paths paint with the prefix and
// suffix of a style rendered once. Only for styles without padding,
// margins, borders or widths (checked by TestPaint_matchesRender).
type paint struct{ pre, post string }

func paintOf(s lipgloss.Style) paint {
	const probe = "\x00"
	r := s.Render(probe)
	i := strings.Index(r, probe)
	if i < 0 {
		return paint{}
	}
	return paint{pre: r[:i], post: r[i+len(probe):]}
}

// render styles text the way the style's Render would.
func (p paint) render(text string) string {
	if text == "" || p.pre == "" {
		return text
	}
	return p.pre + text + p.post
}

// to writes text, styled, to b.
func (p paint) to(b *strings.Builder, text string) {
	if text == "" || p.pre == "" {
		b.WriteString(text)
		return
	}
	b.WriteString(p.pre)
	b.WriteString(text)
	b.WriteString(p.post)
}

// paints are the painted forms of the styles the hot paths use.
type paints struct {
	title, titleDim, warn, mailbox, counter, errText paint
	columns, time, from, subject, box, attach        paint
	selected, status, notice                         paint
	badge                                            map[watcher.State]paint
}

func newPaints(st *Styles) *paints {
	p := &paints{badge: map[watcher.State]paint{}}
	for k, v := range st.Badge {
		p.badge[k] = paintOf(v)
	}
	p.title, p.titleDim, p.warn = paintOf(st.Title), paintOf(st.TitleDim), paintOf(st.Warn)
	p.mailbox, p.counter, p.errText = paintOf(st.Mailbox), paintOf(st.Counter), paintOf(st.ErrText)
	p.columns, p.time, p.from, p.subject = paintOf(st.Columns), paintOf(st.Time), paintOf(st.From), paintOf(st.Subject)
	p.box, p.attach, p.selected = paintOf(st.Box), paintOf(st.Attach), paintOf(st.Selected)
	p.status, p.notice = paintOf(st.Status), paintOf(st.Notice)
	return p
}
