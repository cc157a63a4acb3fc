package tui

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Everything that came from an email (subject, addresses, file names, body,
// server error text) is attacker-controlled. Drawn as is, an escape sequence
// in a subject could retitle the window (OSC 0), clear the screen (CSI 2J),
// rewrite the clipboard (OSC 52) or move the cursor and overwrite the
// header; a bidi override could make "exe.txt" read as "txt.exe". The
// functions here turn such strings into inert text before any width is
// measured or any line is drawn.
//
// They also drop the code points whose width terminals disagree about
// (zero-width joiners, variation selectors, emoji skin-tone modifiers): a
// ZWJ family emoji is 2 columns to a grapheme-aware terminal and 6 to a
// wcwidth one, so keeping it would shift every column after it on one of
// them. Without these, grapheme and wcwidth widths agree, and the columns
// line up whichever method the terminal uses.

// maxCombining caps combining marks on one base character ("Zalgo" text):
// they add no width but can draw over neighbouring lines.
const maxCombining = 3

// tabWidth is the tab stop distance used when expanding tabs in bodies.
const tabWidth = 8

// sanitizeLine makes s safe to draw on one line: escape sequences and
// control characters are removed, tabs and line breaks become spaces, runs of
// white space collapse to one, and the result is trimmed.
func sanitizeLine(s string) string {
	if isPlainASCII(s) && !strings.Contains(s, "  ") && strings.TrimSpace(s) == s {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false // a space is pending
	clean(s, func(r rune) {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			return
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	})
	return b.String()
}

// sanitizeText makes a multi-line text (a body, a raw JSON record) safe to
// draw: escape sequences and control characters are removed, CRLF and lone
// CR become LF, tabs expand to spaces at tabWidth stops, and trailing spaces
// are trimmed from each line.
func sanitizeText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	col := 0          // display column within the current line, for tabs
	lastNonSpace := 0 // b.Len() just after the last non-space of the line
	prevCR := false
	clean(s, func(r rune) {
		cr := r == '\r'
		if r == '\n' && prevCR {
			prevCR = false
			return // the CR already ended the line
		}
		prevCR = cr
		switch {
		case r == '\n' || cr || r == '\u2028' || r == '\u2029':
			trimTo(&b, lastNonSpace)
			b.WriteByte('\n')
			col, lastNonSpace = 0, b.Len()
		case r == '\t':
			n := tabWidth - col%tabWidth
			b.WriteString(strings.Repeat(" ", n))
			col += n
		default:
			b.WriteRune(r)
			col += runeCols(r)
			if r != ' ' {
				lastNonSpace = b.Len()
			}
		}
	})
	trimTo(&b, lastNonSpace)
	return b.String()
}

// trimTo drops what was written to b after byte n (trailing spaces).
func trimTo(b *strings.Builder, n int) {
	if n >= b.Len() {
		return
	}
	s := b.String()[:n]
	b.Reset()
	b.WriteString(s)
}

// runeCols is the display width of one sanitized rune, for tab expansion.
func runeCols(r rune) int {
	switch {
	case unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r):
		return 0
	case isWide(r):
		return 2
	default:
		return 1
	}
}

// isWide reports East Asian wide and fullwidth characters and emoji, which
// take two columns. Only tab expansion needs this rough answer; layout
// measures with the ansi package.
func isWide(r rune) bool {
	return r >= 0x1100 && (r <= 0x115f || r == 0x2329 || r == 0x232a ||
		(r >= 0x2e80 && r <= 0xa4cf && r != 0x303f) ||
		(r >= 0xac00 && r <= 0xd7a3) || (r >= 0xf900 && r <= 0xfaff) ||
		(r >= 0xfe30 && r <= 0xfe6f) || (r >= 0xff00 && r <= 0xff60) ||
		(r >= 0xffe0 && r <= 0xffe6) || (r >= 0x1f300 && r <= 0x1faff) ||
		(r >= 0x20000 && r <= 0x3fffd))
}

func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// clean walks s, skipping escape sequences and characters that must never
// reach the terminal, and calls emit for every other rune. '\n', '\r' and
// '\t' are passed on for the caller to place; invalid UTF-8 becomes U+FFFD.
func clean(s string, emit func(rune)) {
	combining := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			// A stray byte, possibly 0x9B (8-bit CSI) or 0x9D (8-bit OSC)
			// that a terminal not in UTF-8 mode would obey: never pass it.
			emit(utf8.RuneError)
			i++
			combining = 0
			continue
		}
		switch {
		case r == 0x1b: // ESC: skip the whole sequence
			i = skipEscape(s, i+1)
			continue
		case r == 0x9b: // C1 CSI
			i = skipCSI(s, i+size)
			continue
		case r == 0x9d || r == 0x90 || r == 0x98 || r == 0x9e || r == 0x9f: // C1 OSC, DCS, SOS, PM, APC
			i = skipString(s, i+size)
			continue
		case r == '\n' || r == '\r' || r == '\t':
			emit(r)
			combining = 0
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			// other C0 controls (BEL, BS, NUL, …), DEL and C1 controls: drop
		case r == '\u2028' || r == '\u2029':
			emit(r)
			combining = 0
		case dropFormat(r):
		case unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r):
			if combining < maxCombining {
				emit(r)
			}
			combining++
		default:
			emit(r)
			combining = 0
		}
		i += size
	}
}

// dropFormat reports invisible code points that reorder or join text or
// whose width terminals disagree about: format characters (bidi controls
// such as U+202E, zero-width joiner and space, BOM, soft hyphen, tag
// characters), variation selectors and emoji skin-tone modifiers.
func dropFormat(r rune) bool {
	switch {
	case unicode.Is(unicode.Cf, r):
		return true
	case r >= 0xfe00 && r <= 0xfe0f, r >= 0xe0100 && r <= 0xe01ef: // variation selectors
		return true
	case r >= 0x1f3fb && r <= 0x1f3ff: // skin-tone modifiers
		return true
	case r == 0x200b || r == 0x2060 || r == 0xfeff: // zero-width space, word joiner, BOM
		return true
	case unicode.Is(unicode.Co, r) || r == utf8.MaxRune || !utf8.ValidRune(r):
		return true // private use: no agreed glyph or width
	}
	return false
}

// skipEscape returns the index after the escape sequence whose ESC ended
// just before i. An unterminated string sequence (OSC, DCS …) loses only its
// introducer: its payload is inert without the ESC and stays visible.
func skipEscape(s string, i int) int {
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[':
		return skipCSI(s, i+1)
	case ']', 'P', 'X', '^', '_':
		return skipString(s, i+1)
	}
	// nF sequences: intermediates 0x20–0x2F, then one final byte.
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
		i++
	}
	if i < len(s) && s[i] >= 0x30 && s[i] <= 0x7e {
		i++
	}
	return i
}

// skipCSI skips parameter bytes (0x30–0x3F), intermediates (0x20–0x2F) and
// the final byte (0x40–0x7E) of a control sequence starting at i. A
// malformed sequence ends at the first byte that fits none of them.
func skipCSI(s string, i int) int {
	for i < len(s) && s[i] >= 0x30 && s[i] <= 0x3f {
		i++
	}
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
		i++
	}
	if i < len(s) && s[i] >= 0x40 && s[i] <= 0x7e {
		i++
	}
	return i
}

// skipString skips the payload of an OSC, DCS, SOS, PM or APC sequence up to
// and including its terminator: BEL, ESC \ or the C1 ST (U+009C). If there
// is no terminator, only the introducer is skipped.
func skipString(s string, i int) int {
	for j := i; j < len(s); j++ {
		switch {
		case s[j] == 0x07:
			return j + 1
		case s[j] == 0x1b && j+1 < len(s) && s[j+1] == '\\':
			return j + 2
		case s[j] == 0x1b:
			// ESC that starts another sequence: the string was cut short.
			return j
		case s[j] == 0xc2 && j+1 < len(s) && s[j+1] == 0x9c:
			return j + 2
		}
	}
	return i
}
