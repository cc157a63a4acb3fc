package config

import (
	"fmt"
	"strings"
)

// An entry of accounts[].mailboxes or accounts[].exclude is one of three
// kinds, told apart by its spelling alone:
//
//   - a special-use name (RFC 6154), starting with a backslash: `\Sent`,
//     `\All` …, in any case; it stands for the mailboxes whose LIST
//     response carries that attribute;
//   - a pattern, holding one of the LIST wildcards (RFC 3501 §6.3.8): `*`
//     matches anything including the hierarchy delimiter, `%` anything but
//     the delimiter (`Lists/*` is every folder below Lists, `Lists/%` only
//     its children);
//   - a literal name, as the user's mail client shows it (UTF-8, with the
//     server's own delimiter).
//
// IMAP mailbox names cannot hold `*` or `%` (they are the wildcards) and
// none starts with a backslash in practice, so the spelling is not
// ambiguous. The delimiter is only known once the server answers LIST, so
// Validate checks the syntax and what holds whatever the delimiter, and the
// watcher matches against the server's names (MatchMailbox).

// EntryKind says what an entry of mailboxes or exclude is.
type EntryKind int

const (
	EntryLiteral    EntryKind = iota // a mailbox name
	EntryPattern                     // a name with the wildcards * or %
	EntrySpecialUse                  // \Sent, \All … (RFC 6154)
)

func (k EntryKind) String() string {
	switch k {
	case EntryLiteral:
		return "literal"
	case EntryPattern:
		return "pattern"
	case EntrySpecialUse:
		return "special-use"
	}
	return fmt.Sprintf("EntryKind(%d)", int(k))
}

// EntryKindOf tells the kind of an entry of mailboxes or exclude.
func EntryKindOf(entry string) EntryKind {
	switch {
	case strings.HasPrefix(entry, `\`):
		return EntrySpecialUse
	case strings.ContainsAny(entry, "*%"):
		return EntryPattern
	}
	return EntryLiteral
}

// SpecialUseNames are the special-use attributes an entry may name: those
// of RFC 6154 and \Important (RFC 8457, which Gmail sends).
var SpecialUseNames = []string{`\All`, `\Archive`, `\Drafts`, `\Flagged`, `\Important`, `\Junk`, `\Sent`, `\Trash`}

// SpecialUse returns the canonical spelling of a special-use entry
// (`\sent` gives `\Sent`); ok is false when entry names none of
// SpecialUseNames.
func SpecialUse(entry string) (name string, ok bool) {
	for _, n := range SpecialUseNames {
		if strings.EqualFold(entry, n) {
			return n, true
		}
	}
	return "", false
}

// MatchMailbox reports whether the mailbox name, as a server's LIST spells
// it, matches the entry pattern (a literal name or a pattern; not a
// special-use name) on a server whose hierarchy delimiter is delim (0 for a
// flat server, where % matches as much as *).
//
// The semantics are those of LIST (RFC 3501 §6.3.8): * matches zero or more
// characters, % matches zero or more characters other than the delimiter,
// everything else matches itself exactly. Names are compared as UTF-8
// characters, not bytes. INBOX is case-insensitive (RFC 3501 §5.1), as a
// whole name and as the first level of a name ("inbox.*" matches
// "INBOX.Lists"); every other name is case-sensitive.
func MatchMailbox(pattern, name string, delim rune) bool {
	pattern, name = foldInbox(pattern, delim, true), foldInbox(name, delim, false)
	switch {
	case pattern == "*":
		return true
	case !strings.ContainsAny(pattern, "*%"):
		return pattern == name // a literal: the common case, without the table
	}
	p, n := []rune(pattern), []rune(name)
	// at[j] says whether the pattern read so far matches n[:j]: one pass
	// per pattern character, so the cost is len(p)·len(n) at worst and
	// never exponential, whatever the wildcards.
	at := make([]bool, len(n)+1)
	next := make([]bool, len(n)+1)
	at[0] = true
	for _, pc := range p {
		switch pc {
		case '*':
			reach := false
			for j := range next {
				reach = reach || at[j]
				next[j] = reach
			}
		case '%':
			reach := false
			for j := range next {
				if j > 0 && delim != 0 && n[j-1] == delim {
					reach = false // % does not cross a delimiter
				}
				reach = reach || at[j]
				next[j] = reach
			}
		default:
			next[0] = false
			for j := 1; j < len(next); j++ {
				next[j] = at[j-1] && n[j-1] == pc
			}
		}
		at, next = next, at
	}
	return at[len(n)]
}

// foldInbox spells a leading INBOX level in capitals: "inbox", "Inbox/x"
// and, in a pattern, "inbox*" all begin with INBOX.
func foldInbox(s string, delim rune, pattern bool) string {
	const inbox = "INBOX"
	if len(s) < len(inbox) || !strings.EqualFold(s[:len(inbox)], inbox) {
		return s
	}
	rest := s[len(inbox):]
	switch {
	case rest == "",
		delim != 0 && strings.HasPrefix(rest, string(delim)),
		pattern && (rest[0] == '*' || rest[0] == '%'):
		return inbox + rest
	}
	return s
}

// sameEntry gives the key under which two entries of one list are the same:
// INBOX in any case, special-use names in any case, everything else exact.
func sameEntry(entry string) string {
	if su, ok := SpecialUse(entry); ok {
		return su
	}
	if EntryKindOf(entry) == EntryLiteral && strings.EqualFold(entry, "INBOX") {
		return "INBOX"
	}
	return entry
}

// excludedWhateverDelimiter reports whether exclude entry ex removes the
// literal name on every server: with "/" as the delimiter and with "."
// (the two in use), and so also on a flat server, where % matches more.
func excludedWhateverDelimiter(ex, name string) bool {
	if EntryKindOf(ex) == EntrySpecialUse {
		return false // depends on the server's attributes
	}
	return MatchMailbox(ex, name, '/') && MatchMailbox(ex, name, '.')
}

// specialUseAliases are what mail clients call the special-use folders.
var specialUseAliases = map[string]string{
	`\spam`: `\Junk`, `\bin`: `\Trash`, `\deleted`: `\Trash`, `\starred`: `\Flagged`,
	`\allmail`: `\All`, `\all mail`: `\All`, `\sent mail`: `\Sent`, `\sentmail`: `\Sent`,
}

// specialUseHint explains an unknown backslash entry, with the closest
// known name.
func specialUseHint(entry string) string {
	if strings.EqualFold(entry, `\INBOX`) {
		return fmt.Sprintf("%q is not a special-use name; write \"INBOX\" without the backslash", entry)
	}
	// A typo is at most two edits, and fewer than half the entry.
	best := specialUseAliases[strings.ToLower(entry)]
	if best == "" {
		bestD := 3
		for _, n := range SpecialUseNames {
			if d := editDistance(strings.ToLower(entry), strings.ToLower(n)); d < bestD && 2*d < len(entry) {
				best, bestD = n, d
			}
		}
	}
	known := strings.Join(SpecialUseNames, ", ")
	if best == "" {
		return fmt.Sprintf("%q is not a special-use name (RFC 6154: %s)", entry, known)
	}
	return fmt.Sprintf("%q is not a special-use name (RFC 6154: %s); did you mean %q?", entry, known, best)
}
