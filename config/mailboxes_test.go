package config

import (
	"strconv"
	"strings"
	"testing"
)

func TestMatchMailbox(t *testing.T) {
	tests := []struct {
		pattern, name string
		delim         rune
		want          bool
	}{
		// Literals match themselves only.
		{"Sent", "Sent", '/', true},
		{"Sent", "sent", '/', false}, // only INBOX ignores case
		{"Sent", "Sent/x", '/', false},
		{"Lists/golang", "Lists/golang", '/', true},
		{"Lists/golang", "Lists.golang", '.', false},

		// * crosses the delimiter, % does not.
		{"*", "INBOX", '/', true},
		{"*", "Lists/golang/nuts", '/', true},
		{"%", "Lists", '/', true},
		{"%", "Lists/golang", '/', false},
		{"Lists/*", "Lists/golang/nuts", '/', true},
		{"Lists/*", "Lists", '/', false},
		{"Lists/*", "Lists/", '/', true},
		{"Lists*", "Lists", '/', true}, // * matches zero characters
		{"Lists/%", "Lists/golang", '/', true},
		{"Lists/%", "Lists/golang/nuts", '/', false},
		{"Lists/%/nuts", "Lists/golang/nuts", '/', true},
		{"Lists/%/nuts", "Lists/golang/x/nuts", '/', false},
		{"Lists/*/nuts", "Lists/golang/x/nuts", '/', true},
		{"%/%", "Lists/golang", '/', true},
		{"%/%", "Lists", '/', false},
		{"*g*", "Lists/golang", '/', true},
		{"%g%", "Lists/golang", '/', false}, // the first % would have to cross "/"
		{"Lists/%ang", "Lists/golang", '/', true},
		{"Lists/%ang", "Lists/golang/ang", '/', false},
		{"**", "a/b", '/', true},
		{"%%", "a/b", '/', false},
		{"%*", "a/b", '/', true},

		// The same with "." as the delimiter (Courier, Cyrus): "/" is then
		// an ordinary character, "." is not.
		{"INBOX.%", "INBOX.Lists", '.', true},
		{"INBOX.%", "INBOX.Lists.golang", '.', false},
		{"INBOX.*", "INBOX.Lists.golang", '.', true},
		{"Lists/%", "Lists/a.b", '.', false},
		{"Lists/%", "Lists/a/b", '.', true},
		{"%", "a/b", '.', true},

		// A flat server: % is as good as *.
		{"%", "a/b", 0, true},
		{"Lists%", "Lists.golang", 0, true},

		// INBOX in any case, as a whole and as the first level.
		{"inbox", "INBOX", '/', true},
		{"INBOX", "inbox", '/', true},
		{"Inbox/*", "INBOX/Lists", '/', true},
		{"inbox.%", "INBOX.Lists", '.', true},
		{"inbox*", "INBOX.Lists", '.', true},
		{"inbox/x", "INBOX/X", '/', false}, // below INBOX, case counts
		{"inboxes", "INBOXES", '/', false}, // not INBOX, just alike
		{"INBOX", "INBOXES", '/', false},
		{"Inbox.x", "INBOX.x", '/', false}, // "." is not the delimiter here

		// Names are characters, not bytes: % and * take whole runes, and a
		// multi-byte character equals itself only.
		{"Entwürfe", "Entwürfe", '/', true},
		{"Entw%rfe", "Entwürfe", '/', true},
		{"Entw_rfe", "Entwürfe", '/', false},
		{"Архив/%", "Архив/2024", '/', true},
		{"Архив/%", "Архив/2024/Q1", '/', false},
		{"*📬", "Lists/📬", '/', true},
		{"%", "日本語", '/', true},
		{"Archiv", "Archív", '/', false},

		// Empty pattern and name.
		{"", "", '/', true},
		{"", "INBOX", '/', false},
		{"*", "", '/', true},
	}
	for _, tt := range tests {
		if got := MatchMailbox(tt.pattern, tt.name, tt.delim); got != tt.want {
			t.Errorf("MatchMailbox(%q, %q, %q) = %v, want %v", tt.pattern, tt.name, tt.delim, got, tt.want)
		}
	}
}

// TestMatchMailbox_noBlowUp: wildcards cost a pass each, never a
// backtracking search (a naive matcher takes minutes on this).
func TestMatchMailbox_noBlowUp(t *testing.T) {
	pattern := strings.Repeat("*a", 40) + "b"
	name := strings.Repeat("a", 2000)
	if MatchMailbox(pattern, name, '/') {
		t.Error("matched")
	}
}

func TestEntryKindOf(t *testing.T) {
	for entry, want := range map[string]EntryKind{
		"INBOX": EntryLiteral, "Lists/golang": EntryLiteral, "[Gmail]/Sent Mail": EntryLiteral, `a\b`: EntryLiteral,
		"*": EntryPattern, "Lists/%": EntryPattern, "INBOX.*": EntryPattern,
		`\Sent`: EntrySpecialUse, `\sent`: EntrySpecialUse, `\Bogus`: EntrySpecialUse,
	} {
		if got := EntryKindOf(entry); got != want {
			t.Errorf("EntryKindOf(%q) = %v, want %v", entry, got, want)
		}
	}
	for entry, want := range map[string]string{`\sent`: `\Sent`, `\ALL`: `\All`, `\Important`: `\Important`, `\Inbox`: "", "Sent": ""} {
		if got, ok := SpecialUse(entry); got != want || ok != (want != "") {
			t.Errorf("SpecialUse(%q) = %q, %v; want %q", entry, got, ok, want)
		}
	}
}

func TestSpecialUseHint(t *testing.T) {
	for entry, want := range map[string]string{
		`\Snet`: `\Sent`, `\draft`: `\Drafts`, `\TRASH2`: `\Trash`, `\Spam`: `\Junk`, `\starred`: `\Flagged`,
		`\x`: "", `\Noselect`: "", `\HasChildren`: "",
	} {
		msg := specialUseHint(entry)
		_, guess, _ := strings.Cut(msg, "did you mean ")
		if want == "" && guess != "" || want != "" && guess != strconv.Quote(want)+"?" {
			t.Errorf("specialUseHint(%q) = %s; want a guess of %q", entry, msg, want)
		}
	}
}
