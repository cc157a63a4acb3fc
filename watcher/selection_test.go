package watcher

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailtap/internal/testimap"
)

// lst builds a LIST answer: each name with delim; "name \Attr \Attr" adds
// attributes.
func lst(delim rune, entries ...string) []*imap.ListData {
	var out []*imap.ListData
	for _, e := range entries {
		name, attrs, _ := strings.Cut(e, " \\")
		d := &imap.ListData{Mailbox: name, Delim: delim}
		if attrs != "" {
			for a := range strings.SplitSeq(attrs, " \\") {
				d.Attrs = append(d.Attrs, imap.MailboxAttr(`\`+a))
			}
		}
		out = append(out, d)
	}
	return out
}

func TestSelectMailboxes(t *testing.T) {
	slash := lst('/', "Archive/2024", "Lists/rust", "INBOX", "Lists", "Lists/golang", "Lists/golang/nuts",
		"Sent \\Sent", "Spam \\Junk", "Trash \\Trash", "Entwürfe \\Drafts", "Архив", "[Gmail] \\Noselect",
		"[Gmail]/All Mail \\All \\HasNoChildren", "Gone \\NonExistent")
	dot := lst('.', "INBOX", "INBOX.Lists", "INBOX.Lists.golang", "INBOX.Lists.rust", "INBOX.Sent \\sent", "INBOX.a/b")
	tests := []struct {
		name              string
		list              []*imap.ListData
		patterns, exclude []string
		want              []string // selected names, in order
		missing           []string
		unmatched         []string
		excluded          []string
	}{
		{name: "literals in config order, INBOX first", list: slash,
			patterns: []string{"Sent", "Lists/golang", "inbox"},
			want:     []string{"INBOX", "Sent", "Lists/golang"}},
		{name: "star crosses the delimiter, in name order", list: slash,
			patterns: []string{"Lists/*"},
			want:     []string{"Lists/golang", "Lists/golang/nuts", "Lists/rust"}},
		{name: "percent stays on one level", list: slash,
			patterns: []string{"Lists/%"},
			want:     []string{"Lists/golang", "Lists/rust"}},
		{name: "percent at the top", list: slash,
			patterns: []string{"%"},
			want:     []string{"INBOX", "Entwürfe", "Lists", "Sent", "Spam", "Trash", "Архив"}},
		{name: "everything, without Noselect and NonExistent", list: slash,
			patterns: []string{"*"},
			want: []string{"INBOX", "Archive/2024", "Entwürfe", "Lists", "Lists/golang", "Lists/golang/nuts", "Lists/rust",
				"Sent", "Spam", "Trash", "[Gmail]/All Mail", "Архив"}},
		{name: "priority: entries in config order, a mailbox once under its first entry", list: slash,
			patterns: []string{"Lists/rust", "Lists/*", "*", "INBOX"},
			want: []string{"INBOX", "Lists/rust", "Lists/golang", "Lists/golang/nuts", "Archive/2024", "Entwürfe", "Lists",
				"Sent", "Spam", "Trash", "[Gmail]/All Mail", "Архив"}},
		{name: "two patterns selecting the same mailboxes", list: slash,
			patterns: []string{"Lists/%", "Lists/*", "*/golang"},
			want:     []string{"Lists/golang", "Lists/rust", "Lists/golang/nuts"}},
		{name: "exclude wins over a pattern", list: slash,
			patterns: []string{"*"}, exclude: []string{"Lists/*", `\Junk`, "Archive*", "[Gmail]/*"},
			want: []string{"INBOX", "Entwürfe", "Lists", "Sent", "Trash", "Архив"}},
		{name: "exclude wins over INBOX", list: slash,
			patterns: []string{"%"}, exclude: []string{"INBOX", "%/%", "S*", "T*", "E*", "Л*"},
			want: []string{"Lists", "Архив"}},
		{name: "exclude wins over a literal, and says so", list: slash,
			patterns: []string{"INBOX", "Sent", "Spam"}, exclude: []string{`\sent`},
			want: []string{"INBOX", "Spam"}, excluded: []string{"Sent"}},
		{name: "special-use names, any case", list: slash,
			patterns: []string{`\Drafts`, `\all`, `\SENT`, `\Archive`},
			want:     []string{"Entwürfe", "[Gmail]/All Mail", "Sent"}, unmatched: []string{`\Archive`}},
		{name: "special-use and a literal of the same mailbox", list: slash,
			patterns: []string{"INBOX", `\Sent`, "Sent"},
			want:     []string{"INBOX", "Sent"}},
		{name: "literal not on the server, with suggestions", list: slash,
			patterns: []string{"INBOX", "Lists/Golang", "Nope/Nothing/Like/It", "[Gmail]", "Gone"},
			want:     []string{"INBOX"}, missing: []string{"Lists/Golang", "Nope/Nothing/Like/It", "[Gmail]", "Gone"}},
		{name: "pattern matching nothing", list: slash,
			patterns: []string{"INBOX", "Work/*"},
			want:     []string{"INBOX"}, unmatched: []string{"Work/*"}},
		{name: "unicode literal and pattern", list: slash,
			patterns: []string{"Entwürfe", "Арх%"},
			want:     []string{"Entwürfe", "Архив"}},

		{name: "dot delimiter: percent", list: dot,
			patterns: []string{"INBOX.%"},
			want:     []string{"INBOX.Lists", "INBOX.Sent", "INBOX.a/b"}},
		{name: "dot delimiter: star, and / is a plain character", list: dot,
			patterns: []string{"INBOX.Lists.*", "INBOX.a%"},
			want:     []string{"INBOX.Lists.golang", "INBOX.Lists.rust", "INBOX.a/b"}},
		{name: "dot delimiter: INBOX children in another case", list: dot,
			patterns: []string{"inbox.Lists.%", "Inbox"},
			want:     []string{"INBOX", "INBOX.Lists.golang", "INBOX.Lists.rust"}},
		{name: "dot delimiter: lowercase special-use attribute", list: dot,
			patterns: []string{`\Sent`},
			want:     []string{"INBOX.Sent"}},

		{name: "flat server: percent is star", list: lst(0, "INBOX", "a/b", "a.b"),
			patterns: []string{"a%"},
			want:     []string{"a.b", "a/b"}},
		{name: "a server listing a mailbox twice, INBOX in two cases", list: lst('/', "INBOX", "Sent", "inbox", "Sent"),
			patterns: []string{"*"},
			want:     []string{"INBOX", "Sent"}},
		{name: "empty LIST", list: nil,
			patterns: []string{"INBOX", "*"},
			missing:  []string{"INBOX"}, unmatched: []string{"*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel := selectMailboxes(tt.list, tt.patterns, tt.exclude)
			if got := sel.names(); !slices.Equal(got, tt.want) {
				t.Errorf("selected\n got %q\nwant %q", got, tt.want)
			}
			var missing, excluded []string
			for _, m := range sel.Missing {
				missing = append(missing, m.Name)
				if tt.patterns[m.Entry] != m.Name {
					t.Errorf("missing %q has entry %d", m.Name, m.Entry)
				}
			}
			for _, e := range sel.Excluded {
				excluded = append(excluded, e.Name)
			}
			if !slices.Equal(missing, tt.missing) {
				t.Errorf("missing = %q, want %q", missing, tt.missing)
			}
			if !slices.Equal(sel.Unmatched, tt.unmatched) {
				t.Errorf("unmatched = %q, want %q", sel.Unmatched, tt.unmatched)
			}
			if !slices.Equal(excluded, tt.excluded) {
				t.Errorf("excluded = %q, want %q", excluded, tt.excluded)
			}
			for _, m := range sel.Mailboxes {
				if m.Entry < 0 || m.Entry >= len(tt.patterns) {
					t.Errorf("%q: entry %d out of range", m.Name, m.Entry)
				}
				if want := tt.list[slices.IndexFunc(tt.list, func(d *imap.ListData) bool { return d.Mailbox == m.Name })].Delim; m.Delim != want {
					t.Errorf("%q: delim %q, want %q", m.Name, m.Delim, want)
				}
			}
		})
	}
}

func TestSelectMailboxes_details(t *testing.T) {
	list := lst('/', "INBOX", "Lists/golang", "Lists/rust", "Sent \\Sent", "Lists \\Noselect")
	sel := selectMailboxes(list, []string{"Lists/Golang", "*", `\Sent`, "Lists"}, []string{"Sent"})

	// Each mailbox remembers the first entry that selected it.
	entries := map[string]int{}
	for _, m := range sel.Mailboxes {
		entries[m.Name] = m.Entry
	}
	if fmt.Sprint(entries) != "map[INBOX:1 Lists/golang:1 Lists/rust:1]" {
		t.Errorf("entries = %v", entries)
	}

	// A missing literal comes with the close matches and reads as the
	// watcher's usual not-found error; a \Noselect mailbox is missing too.
	if len(sel.Missing) != 2 {
		t.Fatalf("missing = %+v", sel.Missing)
	}
	err := sel.Missing[0].err()
	if !strings.Contains(err.Error(), `the server has no mailbox "Lists/Golang"; did you mean "Lists/golang"?`) {
		t.Errorf("err = %v", err)
	}
	if !errors.Is(err, ErrMailboxNotFound) {
		t.Errorf("errors.Is(%v, ErrMailboxNotFound) = false", err)
	}
	if m := sel.Missing[1]; m.Name != "Lists" || m.Entry != 3 {
		t.Errorf("missing[1] = %+v", m)
	}

	// \Sent selected only the excluded mailbox: nothing selected, but the
	// entry did match, so it is not "unmatched".
	if len(sel.Unmatched) != 0 || len(sel.Excluded) != 0 {
		t.Errorf("unmatched = %q, excluded = %v", sel.Unmatched, sel.Excluded)
	}

	sel = selectMailboxes(list, []string{"Sent"}, []string{"Lists", `\Sent`})
	if len(sel.Excluded) != 1 || sel.Excluded[0].String() != `mailboxes[0] "Sent" is excluded by exclude[1] on this server` {
		t.Errorf("excluded = %v", sel.Excluded)
	}
}

func TestSelection_diff(t *testing.T) {
	before := selectMailboxes(lst('/', "INBOX", "Lists/golang", "Lists/rust", "Old"), []string{"INBOX", "Lists/*", "Old"}, nil)
	after := selectMailboxes(lst('/', "inbox", "Lists/golang", "Lists/zig", "Lists/ada"), []string{"INBOX", "Lists/*", "Old"}, nil)
	added, removed := after.diff(before)
	var a, r []string
	for _, m := range added {
		a = append(a, m.Name)
	}
	for _, m := range removed {
		r = append(r, m.Name)
	}
	if !slices.Equal(a, []string{"Lists/ada", "Lists/zig"}) || !slices.Equal(r, []string{"Lists/rust", "Old"}) {
		t.Errorf("added %q, removed %q", a, r)
	}
	if added, removed := after.diff(after); added != nil || removed != nil {
		t.Errorf("diff with itself: %v, %v", added, removed)
	}
	if added, _ := after.diff(selection{}); len(added) != len(after.Mailboxes) {
		t.Errorf("first LIST: added %v", added)
	}
}

func TestListOptions(t *testing.T) {
	caps := func(c ...imap.Cap) imap.CapSet {
		s := imap.CapSet{}
		for _, x := range c {
			s[x] = struct{}{}
		}
		return s
	}
	for _, tt := range []struct {
		caps imap.CapSet
		want bool
	}{
		{caps(imap.CapIMAP4rev1), false},
		{caps(imap.CapIMAP4rev1, imap.CapSpecialUse), false}, // no return options without LIST-EXTENDED
		{caps(imap.CapIMAP4rev1, imap.CapListExtended), false},
		{caps(imap.CapIMAP4rev1, imap.CapSpecialUse, imap.CapListExtended), true},
		{caps(imap.CapIMAP4rev2, imap.CapSpecialUse), true},
	} {
		opts := listOptions(tt.caps)
		if got := opts != nil && opts.ReturnSpecialUse; got != tt.want {
			t.Errorf("listOptions(%v) = %+v, want RETURN (SPECIAL-USE) %v", tt.caps, opts, tt.want)
		}
	}
}

// TestSelectMailboxes_loopback feeds selectMailboxes what a real LIST
// returns over loopback (go-imap's client decoding the in-memory server's
// modified UTF-7), then creates and deletes folders and lists again, as a
// refresh does.
func TestSelectMailboxes_loopback(t *testing.T) {
	srv := testimap.StartMem(t, testimap.WithMailboxes(
		"Lists/golang", "Lists/rust", "Lists/old/2019", "Entwürfe", "Spam", "Archive/2024", "日本語/メール"))
	c, err := imapclient.DialInsecure(srv.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(srv.Username(), srv.Password()).Wait(); err != nil {
		t.Fatal(err)
	}
	list := func() []*imap.ListData {
		t.Helper()
		l, err := listAll(c)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	patterns := []string{"Lists/%", "Entw*", "INBOX", "Lists/Golang", `\Sent`, "*"}
	exclude := []string{"Spam", "Lists/old/*"}

	first := selectMailboxes(list(), patterns, exclude)
	want := []string{"INBOX", "Lists/golang", "Lists/rust", "Entwürfe", "Archive/2024", "日本語/メール"}
	if got := first.names(); !slices.Equal(got, want) {
		t.Errorf("selected\n got %q\nwant %q", got, want)
	}
	for _, m := range first.Mailboxes {
		if m.Delim != '/' {
			t.Errorf("%q: delim %q", m.Name, m.Delim)
		}
	}
	if len(first.Missing) != 1 || first.Missing[0].Name != "Lists/Golang" || !slices.Equal(first.Missing[0].Suggestions, []string{"Lists/golang"}) {
		t.Errorf("missing = %+v", first.Missing)
	}
	// The in-memory server marks no special-use mailboxes.
	if !slices.Equal(first.Unmatched, []string{`\Sent`}) {
		t.Errorf("unmatched = %q", first.Unmatched)
	}

	// A refresh: one folder appeared, one went away, one is now excluded.
	srv.CreateMailbox(t, "Lists/zig")
	srv.CreateMailbox(t, "Lists/old/2020")
	srv.DeleteMailbox(t, "Lists/rust")
	second := selectMailboxes(list(), patterns, exclude)
	added, removed := second.diff(first)
	if len(added) != 1 || added[0].Name != "Lists/zig" || added[0].Delim != '/' {
		t.Errorf("added = %+v", added)
	}
	if len(removed) != 1 || removed[0].Name != "Lists/rust" {
		t.Errorf("removed = %+v", removed)
	}
}

// BenchmarkSelectMailboxes: one refresh of a large account, 10,000 folders
// in 100 lists of 100, against a config with a pattern of each kind.
func BenchmarkSelectMailboxes(b *testing.B) {
	var list []*imap.ListData
	list = append(list, &imap.ListData{Mailbox: "INBOX", Delim: '/'})
	for i := range 100 {
		for j := range 100 {
			list = append(list, &imap.ListData{Mailbox: fmt.Sprintf("Lists/l%03d/f%03d", i, j), Delim: '/'})
		}
	}
	list = append(list, &imap.ListData{Mailbox: "Sent", Delim: '/', Attrs: []imap.MailboxAttr{imap.MailboxAttrSent}})
	patterns := []string{"INBOX", `\Sent`, "Lists/l00%/*", "Lists/%/f000", "*"}
	exclude := []string{"Lists/l099/*", `\Junk`}
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = len(selectMailboxes(list, patterns, exclude).Mailboxes)
	}
	b.ReportMetric(float64(n), "selected")
}
