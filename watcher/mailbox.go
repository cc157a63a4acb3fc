package watcher

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Mailbox names in the config are as the user sees them in a mail client:
// UTF-8 (go-imap encodes them as modified UTF-7 on the wire) with the
// server's own hierarchy delimiter, e.g. "INBOX.Lists.golang" on Courier
// or Debian's Cyrus, "Lists/golang" on Dovecot. The delimiter is taken
// from LIST, and the on-disk path nests by it: <out>/<account>/INBOX/Lists/
// golang. A personal-namespace prefix such as "INBOX." is kept, because it
// is part of the name the server knows; dropping it would make "INBOX.x"
// and a top-level "x" (on servers that have both) the same folder.

// ErrMailboxNotFound marks a configured mailbox that the server does not
// have (never created, renamed, or deleted while mailtap was connected).
// The session shows state "error" and retries with backoff: a mailbox that
// is recreated is picked up again.
var ErrMailboxNotFound = errors.New("mailbox not found")

// mailboxNotFound builds the error, with the close matches from LIST.
func mailboxNotFound(name string, suggestions []string, cause error) error {
	msg := fmt.Sprintf("%v: the server has no mailbox %q", ErrMailboxNotFound, name)
	if len(suggestions) > 0 {
		q := make([]string, len(suggestions))
		for i, s := range suggestions {
			q[i] = fmt.Sprintf("%q", s)
		}
		msg += "; did you mean " + strings.Join(q, " or ") + "?"
	} else {
		msg += "; check the account's mailboxes in the config (names as your mail client shows them, with the server's delimiter)"
	}
	if cause != nil {
		return fmt.Errorf("%s (%w)", msg, wrapNotFound{cause})
	}
	return wrapNotFound{errors.New(msg)}
}

// wrapNotFound makes errors.Is(err, ErrMailboxNotFound) hold while keeping
// the server's own text.
type wrapNotFound struct{ err error }

func (w wrapNotFound) Error() string { return w.err.Error() }
func (w wrapNotFound) Unwrap() []error {
	return []error{w.err, ErrMailboxNotFound}
}

// listMailbox looks name up with LIST "" name and returns its delimiter
// (0 for a flat server). found is false when LIST names no selectable
// mailbox of that name; err is a failed command.
func listMailbox(c *imapclient.Client, name string) (delim rune, found bool, err error) {
	items, err := c.List("", name, nil).Collect()
	if err != nil {
		return 0, false, fmt.Errorf("list %q: %w", name, err)
	}
	for _, it := range items {
		if !sameMailbox(it.Mailbox, name) {
			continue // a wildcard in the name matched others
		}
		if slices.Contains(it.Attrs, imap.MailboxAttrNonExistent) || slices.Contains(it.Attrs, imap.MailboxAttrNoSelect) {
			return it.Delim, false, nil
		}
		return it.Delim, true, nil
	}
	return 0, false, nil
}

// sameMailbox compares names as the server does: INBOX in any case is
// INBOX (RFC 3501 §5.1), everything else exactly.
func sameMailbox(a, b string) bool {
	if strings.EqualFold(a, "INBOX") || strings.EqualFold(b, "INBOX") {
		return strings.EqualFold(a, b)
	}
	return a == b
}

// suggestMailboxes lists every mailbox and returns up to three close to
// name: the same name with another delimiter or case, with or without the
// personal-namespace prefix, the same last level, or a few typos away.
func suggestMailboxes(c *imapclient.Client, name string) []string {
	items, err := c.List("", "*", nil).Collect()
	if err != nil {
		return nil
	}
	var names []string
	for _, it := range items {
		if !slices.Contains(it.Attrs, imap.MailboxAttrNoSelect) && !slices.Contains(it.Attrs, imap.MailboxAttrNonExistent) {
			names = append(names, it.Mailbox)
		}
	}
	return closeMatches(name, names)
}

// closeMatches ranks candidates by how likely the user meant them.
func closeMatches(name string, candidates []string) []string {
	norm := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r == '/' || r == '.' || r == '\\' {
				return '/'
			}
			return r
		}, strings.ToLower(s))
	}
	want := norm(name)
	wantLast := want[strings.LastIndexByte(want, '/')+1:]
	type scored struct {
		name  string
		score int
	}
	var out []scored
	for _, c := range candidates {
		if c == name {
			continue
		}
		n := norm(c)
		last := n[strings.LastIndexByte(n, '/')+1:]
		score := 0
		switch {
		case n == want:
			score = 100 // other delimiter or case
		case strings.HasSuffix(n, "/"+want) || strings.HasSuffix(want, "/"+n):
			score = 80 // namespace prefix added or left out
		case last == wantLast && wantLast != "":
			score = 60
		default:
			d := editDistance(n, want)
			limit := max(1, utf8.RuneCountInString(want)/4)
			if d <= limit {
				score = 50 - d
			} else if ld := editDistance(last, wantLast); wantLast != "" && ld <= max(1, utf8.RuneCountInString(wantLast)/4) {
				score = 40 - ld
			}
		}
		if score > 0 {
			out = append(out, scored{c, score})
		}
	}
	slices.SortStableFunc(out, func(a, b scored) int {
		if a.score != b.score {
			return b.score - a.score
		}
		return strings.Compare(a.name, b.name)
	})
	var names []string
	for i := 0; i < len(out) && i < 3; i++ {
		names = append(names, out[i].name)
	}
	return names
}

// editDistance is the Levenshtein distance in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// isNo reports a tagged NO from the server (as opposed to a dead
// connection or a BAD).
func isNo(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo
}

// lookUpMailbox finds the configured mailbox with LIST and returns its
// delimiter. A server whose LIST fails is not held against the mailbox:
// EXAMINE decides, and the delimiter is then unknown (folders only at "/").
func (s *session) lookUpMailbox(cn *conn) (rune, error) {
	cn.dc.expect(s.watch.ResponseTimeout.Duration)
	delim, found, err := listMailbox(cn.c, s.id.Mailbox)
	if err != nil {
		if cn.c.State() == imap.ConnStateNone || isClosed(cn.c) {
			return 0, err
		}
		s.log.Debug("LIST failed; EXAMINE decides whether the mailbox exists", "err", err)
		return 0, nil
	}
	if !found {
		cn.dc.expect(s.watch.ResponseTimeout.Duration)
		return 0, mailboxNotFound(s.id.Mailbox, suggestMailboxes(cn.c, s.id.Mailbox), nil)
	}
	return delim, nil
}

// examineError explains a failed EXAMINE: a NO means the mailbox is not
// there (or not ours to read), with the close matches from LIST.
func (s *session) examineError(cn *conn, err error) error {
	if !isNo(err) {
		return fmt.Errorf("examine %q: %w", s.id.Mailbox, err)
	}
	cn.dc.expect(s.watch.ResponseTimeout.Duration)
	return mailboxNotFound(s.id.Mailbox, suggestMailboxes(cn.c, s.id.Mailbox), fmt.Errorf("examine: %w", err))
}

func isClosed(c *imapclient.Client) bool {
	select {
	case <-c.Closed():
		return true
	default:
		return false
	}
}
