package watcher

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailtap/config"
)

// Mailbox selection: which of the server's mailboxes an account watches.
//
// An account's "mailboxes" and "exclude" hold literal names, LIST patterns
// (* and %) and special-use names (\Sent …); config.EntryKindOf tells them
// apart and config.Validate has checked them. The account runner lists the
// server's mailboxes (listAll) at connect and at every refresh, and
// selectMailboxes turns that LIST into the mailboxes to watch, in priority
// order; diff against the previous selection says which folders appeared
// and which went away.
//
// Priority order, which decides who gets an IDLE connection of its own
// when the budget is short:
//
//  1. INBOX, when any entry selects it;
//  2. then by the first entry of "mailboxes" that selects the mailbox, in
//     config order (a mailbox two entries select is listed once, under the
//     first);
//  3. among the mailboxes of one pattern or special-use name, by name
//     (UTF-8 byte order, which is code point order), not in LIST order:
//     servers list in the order of their storage, which changes when a
//     folder is created or restored, and the order must stay put from one
//     refresh to the next so that IDLE connections do not move around.
//
// A mailbox that any exclude entry matches is never selected, even INBOX
// and even a literal name; \Noselect and \NonExistent mailboxes are never
// selected either (they hold no mail to EXAMINE).

// selection is the outcome of one LIST against an account's config.
type selection struct {
	// Mailboxes to watch, in priority order.
	Mailboxes []selectedMailbox

	// Missing are the literal names in "mailboxes" that LIST did not
	// return as a selectable mailbox, in config order: the caller shows
	// them as not found (missingMailbox.err) and looks again at the next
	// refresh.
	Missing []missingMailbox

	// Unmatched are the pattern and special-use entries of "mailboxes"
	// that matched no selectable mailbox (before exclusion), in config
	// order: worth a note in the log ("\Sent" on a server without
	// special-use attributes), not an error.
	Unmatched []string

	// Excluded are the literal names in "mailboxes" that an exclude entry
	// removed. Validate refuses those it can see without the server; what
	// is left depends on the server's delimiter or its special-use
	// attributes, and exclude wins. Worth a warning.
	Excluded []excludedMailbox
}

// selectedMailbox is one mailbox to watch.
type selectedMailbox struct {
	Name  string // as the server's LIST spells it (UTF-8)
	Delim rune   // the server's hierarchy delimiter for it; 0 on a flat server
	Entry int    // index in the account's "mailboxes" of the first entry that selected it
}

// missingMailbox is a literal name from the config that the server lacks.
type missingMailbox struct {
	Name        string   // as the config spells it
	Entry       int      // its index in "mailboxes"
	Suggestions []string // close matches among the server's mailboxes
}

// err is the error to show for the mailbox (state error, retried).
func (m missingMailbox) err() error { return mailboxNotFound(m.Name, m.Suggestions, nil) }

// excludedMailbox is a literal name from the config that exclude removed.
type excludedMailbox struct {
	Name    string // as the config spells it
	Entry   int    // its index in "mailboxes"
	Exclude int    // index of the first exclude entry that matched
}

func (e excludedMailbox) String() string {
	return fmt.Sprintf("mailboxes[%d] %q is excluded by exclude[%d] on this server", e.Entry, e.Name, e.Exclude)
}

// selectMailboxes decides which mailboxes of list to watch, given the
// account's "mailboxes" (patterns) and "exclude" entries. It is pure: the
// same LIST and config give the same selection, in the same order.
func selectMailboxes(list []*imap.ListData, patterns, exclude []string) selection {
	boxes := selectable(list)
	var sel selection

	excludedBy := func(b *imap.ListData) int {
		for j, ex := range exclude {
			if entryMatches(ex, b) {
				return j
			}
		}
		return -1
	}

	taken := make(map[string]bool) // by mailboxKey
	var inbox *selectedMailbox
	for i, entry := range patterns {
		kind := config.EntryKindOf(entry)
		var matched []*imap.ListData
		for _, b := range boxes {
			if entryMatches(entry, b) {
				matched = append(matched, b)
			}
		}
		switch {
		case kind == config.EntryLiteral && len(matched) == 0:
			sel.Missing = append(sel.Missing, missingMailbox{Name: entry, Entry: i, Suggestions: closeMatches(entry, listNames(boxes))})
			continue
		case len(matched) == 0:
			sel.Unmatched = append(sel.Unmatched, entry)
			continue
		}
		for _, b := range matched { // boxes, and so matched, are in name order
			key := mailboxKey(b.Mailbox)
			if taken[key] {
				continue
			}
			if j := excludedBy(b); j >= 0 {
				if kind == config.EntryLiteral {
					sel.Excluded = append(sel.Excluded, excludedMailbox{Name: entry, Entry: i, Exclude: j})
				}
				continue
			}
			taken[key] = true
			m := selectedMailbox{Name: b.Mailbox, Delim: b.Delim, Entry: i}
			if key == "INBOX" {
				inbox = &m
				continue
			}
			sel.Mailboxes = append(sel.Mailboxes, m)
		}
	}
	if inbox != nil {
		sel.Mailboxes = slices.Insert(sel.Mailboxes, 0, *inbox)
	}
	return sel
}

// selectable returns the mailboxes of list that can be examined, once each,
// in name order.
func selectable(list []*imap.ListData) []*imap.ListData {
	var out []*imap.ListData
	seen := make(map[string]bool)
	for _, b := range list {
		if b == nil || slices.Contains(b.Attrs, imap.MailboxAttrNoSelect) || slices.Contains(b.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		if key := mailboxKey(b.Mailbox); !seen[key] {
			seen[key] = true
			out = append(out, b)
		}
	}
	slices.SortStableFunc(out, func(a, b *imap.ListData) int {
		return cmp.Compare(mailboxKey(a.Mailbox), mailboxKey(b.Mailbox))
	})
	return out
}

// entryMatches reports whether a config entry (literal, pattern or
// special-use name) selects the listed mailbox b.
func entryMatches(entry string, b *imap.ListData) bool {
	if config.EntryKindOf(entry) == config.EntrySpecialUse {
		return slices.ContainsFunc(b.Attrs, func(a imap.MailboxAttr) bool {
			return strings.EqualFold(string(a), entry) // RFC 6154 attributes are case-insensitive
		})
	}
	return config.MatchMailbox(entry, b.Mailbox, b.Delim)
}

// mailboxKey is the name under which two mailboxes are the same: INBOX in
// any case (RFC 3501 §5.1), everything else exactly (see sameMailbox).
func mailboxKey(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

func listNames(boxes []*imap.ListData) []string {
	out := make([]string, len(boxes))
	for i, b := range boxes {
		out[i] = b.Mailbox
	}
	return out
}

// names lists the selected mailboxes' names in priority order.
func (sel selection) names() []string {
	out := make([]string, len(sel.Mailboxes))
	for i, m := range sel.Mailboxes {
		out[i] = m.Name
	}
	return out
}

// diff compares sel with the selection of the previous LIST: added are the
// mailboxes to start watching (in sel's priority order), removed those that
// are gone from the server or no longer selected (in prev's order), for
// the caller to stop and show as vanished. A mailbox in both, even with
// another priority or delimiter, is in neither.
func (sel selection) diff(prev selection) (added, removed []selectedMailbox) {
	in := func(s selection) map[string]bool {
		m := make(map[string]bool, len(s.Mailboxes))
		for _, b := range s.Mailboxes {
			m[mailboxKey(b.Name)] = true
		}
		return m
	}
	now, before := in(sel), in(prev)
	for _, b := range sel.Mailboxes {
		if !before[mailboxKey(b.Name)] {
			added = append(added, b)
		}
	}
	for _, b := range prev.Mailboxes {
		if !now[mailboxKey(b.Name)] {
			removed = append(removed, b)
		}
	}
	return added, removed
}

// listOptions are the options of the one LIST the account runner sends:
// RETURN (SPECIAL-USE) where the server has SPECIAL-USE (RFC 6154) and
// takes LIST return options at all (LIST-EXTENDED, RFC 5258, or
// IMAP4rev2); nil, a plain LIST, otherwise. RFC 6154 defines the return
// option for the extended LIST, but a server may have SPECIAL-USE without
// LIST-EXTENDED (its own example, RFC errata 5581), and such servers put
// the attributes in the plain LIST responses; so do Gmail and Dovecot.
// Either way selectMailboxes reads them from ListData.Attrs.
func listOptions(caps imap.CapSet) *imap.ListOptions {
	extended := caps.Has(imap.CapListExtended) || caps.Has(imap.CapIMAP4rev2)
	if caps.Has(imap.CapSpecialUse) && extended {
		return &imap.ListOptions{ReturnSpecialUse: true}
	}
	return nil
}

// listAll lists every mailbox of the account with one LIST "" "*".
//
// One LIST of everything rather than one per config entry: it is a single
// round trip whatever the number of entries; the matching (* and %, INBOX
// case, exclude, special-use) is then done here, the same way on every
// server, instead of by each server's own LIST matcher (Cyrus and Courier
// differ on INBOX children, and special-use entries need the attributes of
// all mailboxes anyway); and the same answer feeds the suggestions for a
// literal name that is missing. Even a large account lists a few thousand
// lines, well within one refresh.
//
// The caller sets the response deadline; c.Caps may first send CAPABILITY.
func listAll(c *imapclient.Client) ([]*imap.ListData, error) {
	list, err := c.List("", "*", listOptions(c.Caps())).Collect()
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	return list, nil
}
