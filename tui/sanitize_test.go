package tui

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

func TestSanitizeLine(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "Hello, world", "Hello, world"},
		{"empty", "", ""},
		{"OSC title ended by BEL", "a\x1b]0;pwned\x07b", "ab"},
		{"OSC ended by ST", "a\x1b]0;pwned\x1b\\b", "ab"},
		{"OSC 52 clipboard write", "x\x1b]52;c;cm0gLXJmIH4=\x07y", "xy"},
		{"OSC 8 hyperlink", "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\", "click"},
		{"unterminated OSC keeps inert payload", "a\x1b]0;title", "a0;title"},
		{"clear screen", "\x1b[2Jtext", "text"},
		{"CSI with params and intermediates", "\x1b[?1049h\x1b[38;2;255;0;0mred\x1b[0m", "red"},
		{"cursor movement", "ok\x1b[10;1Hmoved\x1b[A", "okmoved"},
		{"unterminated CSI", "end\x1b[12", "end"},
		{"DCS", "a\x1bP1$qm\x1b\\b", "ab"},
		{"APC PM SOS", "a\x1b_apc\x1b\\b\x1b^pm\x07c\x1bXsos\x1b\\d", "abcd"},
		{"two-byte escapes", "a\x1bcb\x1b7c\x1b(Bd", "abcd"},
		{"lone ESC at end", "a\x1b", "a"},
		{"C1 CSI as UTF-8", "a\u009b2Jb", "ab"},
		{"C1 OSC as UTF-8 ended by C1 ST", "a\u009d0;t\u009cb", "ab"},
		{"raw 8-bit CSI byte", "a\x9b2Jb", "a\ufffd2Jb"},
		{"carriage return", "URGENT\rinvoice", "URGENT invoice"},
		{"backspace", "abc\b\bd", "abcd"},
		{"BEL", "ding\x07dong", "dingdong"},
		{"NUL and DEL", "a\x00b\x7fc", "abc"},
		{"other C0", "a\x01\x02\x0b\x0c\x1fb", "ab"},
		{"C1 controls", "a\u0085\u0090x\u009cb", "ab"}, // NEL dropped; DCS … ST skipped
		{"tabs and newlines", "a\tb\nc\r\nd", "a b c d"},
		{"collapse and trim spaces", "  a   b \t ", "a b"},
		{"bidi override", "invoice\u202Efdp.exe", "invoicefdp.exe"},
		{"bidi isolates and marks", "a\u2066b\u2069c\u200Fd\u061Ce", "abcde"},
		{"zero width and BOM", "a\u200Bb\uFEFFc\u2060d\u00ADe", "abcde"},
		{"ZWJ family", "👨\u200D👩\u200D👧", "👨👩👧"},
		{"variation selector", "❤\uFE0F ok", "❤ ok"},
		{"skin tone", "👍\U0001F3FD", "👍"},
		{"tag characters", "🏴\U000E0067\U000E0062\U000E007F", "🏴"},
		{"private use", "a\uE000b", "ab"},
		{"combining marks kept, Zalgo capped", "e\u0301 Z\u0300\u0301\u0302\u0303\u0304", "e\u0301 Z\u0300\u0301\u0302"},
		{"invalid UTF-8", "a\xffb", "a\ufffdb"},
		{"CJK", "会議の議事録", "会議の議事録"},
		{"line separator", "a\u2028b", "a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sanitizeLine(tt.in)
			if got != tt.want {
				t.Errorf("sanitizeLine(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if bad := unsafeRunes(got); bad != "" {
				t.Errorf("sanitizeLine(%q) kept %s", tt.in, bad)
			}
		})
	}
}

func TestSanitizeText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"keeps lines", "one\ntwo\n\nfour", "one\ntwo\n\nfour"},
		{"CRLF and lone CR", "a\r\nb\rc", "a\nb\nc"},
		{"tabs to stops", "a\tb\n\tc\nabcdefgh\td", "a       b\n        c\nabcdefgh        d"},
		{"tab after wide chars", "会議\tx", "会議    x"},
		{"trailing spaces trimmed", "a  \nb\t\n", "a\nb\n"},
		{"escapes removed", "\x1b[2J\x1b[Hhello\x1b]0;t\x07\nworld\x1b[31m!", "hello\nworld!"},
		{"controls removed", "a\x00\x08b\x07\n\u0085c", "ab\nc"},
		{"paragraph separator", "a\u2029b", "a\nb"},
		{"bidi", "x\u202Ey", "xy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sanitizeText(tt.in); got != tt.want {
				t.Errorf("sanitizeText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// After sanitizing, grapheme and wcwidth measures agree, so columns line up
// whichever method the terminal uses.
func TestSanitize_widthMethodsAgree(t *testing.T) {
	for _, s := range []string{
		"👨\u200D👩\u200D👧\u200D👦 family", "❤️ love", "👍🏽👋🏿", "🇩🇪🇫🇷 flags", "会議の議事録：第3四半期",
		"Ｆｕｌｌｗｉｄｔｈ", "e\u0301\u0302", "📎 attached", "ｶﾀｶﾅ", "한국어 제목", hostileSubject,
	} {
		got := sanitizeLine(s)
		if g, w := ansi.StringWidth(got), ansi.StringWidthWc(got); g != w {
			t.Errorf("sanitizeLine(%q) = %q: grapheme width %d, wcwidth %d", s, got, g, w)
		}
	}
}

// Fuzz-style sweep: no byte sequence survives as a control character, and
// the output is valid UTF-8.
func TestSanitize_neverEmitsControls(t *testing.T) {
	var b strings.Builder
	for i := range 256 {
		b.WriteByte(byte(i))
		b.WriteString("x")
	}
	for r := rune(0x80); r < 0x100; r++ {
		b.WriteRune(r)
	}
	in := b.String()
	for _, out := range []string{sanitizeLine(in), sanitizeText(in)} {
		if !utf8.ValidString(out) {
			t.Errorf("invalid UTF-8 out")
		}
		for _, r := range out {
			if (r < 0x20 && r != '\n') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
				t.Errorf("control %U survived", r)
			}
		}
	}
}

func FuzzSanitizeLine(f *testing.F) {
	f.Add(hostileSubject)
	f.Add("a\x1b]0;t\x07b\u202Ec")
	f.Fuzz(func(t *testing.T, s string) {
		out := sanitizeLine(s)
		if bad := unsafeRunes(out); bad != "" {
			t.Fatalf("sanitizeLine(%q) = %q keeps %s", s, out, bad)
		}
		if strings.ContainsRune(out, '\n') {
			t.Fatalf("newline in %q", out)
		}
	})
}
