package watcher

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// The catch-up asks "which UIDs are above the checkpoint" with
// UID FETCH last+1:* (UID): every server answers it, because clients
// like mbsync depend on it. UID SEARCH UID last+1:* is not safe: GNU
// Mailutils imap4d answers it with nothing. Whatever the answer, it is
// checked against the server's own UIDNEXT (crossCheck).

// catchUp captures every message above the checkpoint and returns how many
// it found. "last+1:*" also names the last message when nothing is newer
// (RFC 3501 "*" semantics), so results are filtered by UID.
func (s *session) catchUp(ctx context.Context, cn *conn) (int, error) {
	found := 0
	checked := false
	for {
		st, _ := s.m.store.State(s.id.Account, s.id.Mailbox)
		cn.dc.expect(s.watch.ResponseTimeout.Duration)
		uids, err := uidsAbove(cn.c, st.LastUID)
		if err != nil {
			return found, fmt.Errorf("catch up %q: %w", s.id.Mailbox, err)
		}
		if len(uids) == 0 && found == 0 && !checked {
			// Nothing at all: the moment to ask whether the server agrees.
			checked = true
			if uids, err = s.crossCheck(cn, st.LastUID); err != nil {
				return found, err
			}
			if now, _ := s.m.store.State(s.id.Account, s.id.Mailbox); now.LastUID < st.LastUID {
				continue // rewound (UIDNEXT went backwards): list again
			}
		}
		cn.nextFresh = false
		s.m.metrics.lag(s.id, len(uids))
		if len(uids) == 0 {
			return found, nil
		}
		found += len(uids)
		if err := s.fetchAll(ctx, cn, uids, true); err != nil {
			return found, err
		}
		if ctx.Err() != nil {
			return found, ctx.Err()
		}
	}
}

// crossCheck runs when the catch-up found nothing above last. If the
// server's UIDNEXT says UIDs above last were handed out, either they were
// expunged (normal) or the server answered the catch-up query wrongly.
// The newest message's UID tells which; in the second case every message
// is listed by sequence number instead, and the disagreement is logged
// and shown with both numbers.
func (s *session) crossCheck(cn *conn, last uint32) ([]imap.UID, error) {
	if !cn.nextFresh {
		// Pushed mail the query did not find, or a stale UIDNEXT from
		// EXAMINE: ask again.
		if err := s.verifyMailbox(cn); err != nil {
			return nil, err
		}
		if st, _ := s.m.store.State(s.id.Account, s.id.Mailbox); st.LastUID != last {
			return nil, nil // rewound: the caller lists again
		}
	}
	next := cn.uidNext
	if next == 0 || next-1 <= last || next == cn.explainedNext {
		return nil, nil
	}
	cn.dc.expect(s.watch.ResponseTimeout.Duration)
	newest, err := newestUID(cn.c, uint32(max(s.exists.Load(), 0)))
	if err != nil {
		return nil, fmt.Errorf("cross-check %q: %w", s.id.Mailbox, err)
	}
	if newest <= last {
		cn.explainedNext = next
		s.log.Debug("UIDs above the checkpoint were expunged before capture", "last_uid", last, "uidnext", next)
		return nil, nil
	}
	cn.dc.expect(s.watch.ResponseTimeout.Duration)
	all, err := allUIDs(cn.c)
	if err != nil {
		return nil, fmt.Errorf("cross-check %q: %w", s.id.Mailbox, err)
	}
	uids := slices.DeleteFunc(all, func(u imap.UID) bool { return uint32(u) <= last })
	s.warn(fmt.Sprintf("the catch-up query UID FETCH %d:* found no message, but the server's UIDNEXT is %d and its newest message has UID %d: "+
		"the server answers that query wrongly; found %d message(s) by listing the whole mailbox instead", last+1, next, newest, len(uids)),
		"last_uid", last, "uidnext", next, "newest_uid", newest, "found", len(uids))
	if len(uids) == 0 {
		return nil, fmt.Errorf("cross-check %q: the newest message has UID %d, above the checkpoint %d, but no listing returns it", s.id.Mailbox, newest, last)
	}
	return uids, nil
}

// warn logs a sign that the server's word cannot be trusted and keeps it in
// the mailbox status, where the status page and API show it.
func (s *session) warn(msg string, attrs ...any) {
	s.log.Warn(msg, attrs...)
	s.mu.Lock()
	s.status.Warning, s.status.WarningAt = msg, time.Now()
	s.mu.Unlock()
}

// uidsAbove returns the sorted UIDs above last, by UID FETCH last+1:* (UID).
func uidsAbove(c *imapclient.Client, last uint32) ([]imap.UID, error) {
	var set imap.UIDSet
	set.AddRange(imap.UID(last+1), 0) // 0 is "*"
	return collectUIDs(c.Fetch(set, &imap.FetchOptions{UID: true}), last)
}

// allUIDs lists every message's UID by sequence number (FETCH 1:* (UID)),
// the form that does not depend on the server's handling of UID ranges.
func allUIDs(c *imapclient.Client) ([]imap.UID, error) {
	var set imap.SeqSet
	set.AddRange(1, 0)
	return collectUIDs(c.Fetch(set, &imap.FetchOptions{UID: true}), 0)
}

// newestUID is the UID of the last message by sequence number (FETCH
// exists:* (UID)), 0 when the mailbox is empty (exists is the session's count; "*"
// in an empty mailbox is an error on most servers).
func newestUID(c *imapclient.Client, exists uint32) (uint32, error) {
	if exists == 0 {
		return 0, nil
	}
	// exists:*, not *: imapclient hands a response to a FETCH command only
	// if its sequence number is in the set, and "*" alone contains none.
	var set imap.SeqSet
	set.AddRange(exists, 0)
	uids, err := collectUIDs(c.Fetch(set, &imap.FetchOptions{UID: true}), 0)
	if err != nil || len(uids) == 0 {
		return 0, err
	}
	return uint32(uids[len(uids)-1]), nil
}

// collectUIDs drains a FETCH of UIDs and returns those above last, sorted.
// Unsolicited FETCHes (flag changes without a UID) are ignored.
func collectUIDs(cmd *imapclient.FetchCommand, last uint32) ([]imap.UID, error) {
	var uids []imap.UID
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			if it, ok := item.(imapclient.FetchItemDataUID); ok && uint32(it.UID) > last {
				uids = append(uids, it.UID)
			}
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("fetch uids: %w", err)
	}
	slices.Sort(uids)
	return slices.Compact(uids), nil
}

// highestUID is the baseline of a first start: UIDs at or below it
// existed before mailtap started. SEARCH RETURN (MAX) answers in one line
// where the server has ESEARCH; otherwise UIDNEXT - 1 from EXAMINE; only
// a server that sends neither costs a FETCH of the newest message. Never
// UID SEARCH ALL, which lists every UID of a large mailbox.
func (s *session) highestUID(cn *conn, sel *imap.SelectData) (uint32, error) {
	caps := cn.c.Caps()
	if sel.NumMessages > 0 && (caps.Has(imap.CapESearch) || caps.Has(imap.CapIMAP4rev2)) {
		cn.dc.expect(s.watch.ResponseTimeout.Duration)
		data, err := cn.c.UIDSearch(&imap.SearchCriteria{}, &imap.SearchOptions{ReturnMax: true}).Wait()
		if err == nil && data.Max > 0 {
			return data.Max, nil
		}
		if err != nil {
			s.log.Debug("SEARCH RETURN (MAX) failed; using UIDNEXT", "err", err)
		}
	}
	if sel.UIDNext > 0 {
		return uint32(sel.UIDNext) - 1, nil
	}
	cn.dc.expect(s.watch.ResponseTimeout.Duration)
	n, err := newestUID(cn.c, sel.NumMessages)
	if err != nil {
		return 0, fmt.Errorf("newest message of %q: %w", s.id.Mailbox, err)
	}
	return n, nil
}

// search runs UID SEARCH and returns sorted UIDs. A malformed answer is an
// error, never a panic. It is used only with closed UID ranges, which every
// server gets right.
func (s *session) search(cn *conn, crit *imap.SearchCriteria) ([]imap.UID, error) {
	cn.dc.expect(s.watch.ResponseTimeout.Duration)
	data, err := cn.c.UIDSearch(crit, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("search %q: %w", s.id.Mailbox, err)
	}
	var uids []imap.UID
	if set, ok := data.All.(imap.UIDSet); ok && len(set) > 0 {
		nums, ok := set.Nums()
		if !ok {
			return nil, fmt.Errorf("search %q: server answered with an open-ended UID set", s.id.Mailbox)
		}
		uids = nums
	}
	slices.Sort(uids)
	return slices.Compact(uids), nil
}
