package watcher

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailtap/config"
	"mailtap/jsonstore"
)

// CheckResult is what `mailtap check` reports for one mailbox.
type CheckResult struct {
	Mailbox     MailboxID
	Err         error
	UIDValidity uint32
	Messages    uint32
	UIDNext     uint32
	Delimiter   rune // from LIST; 0 if the server has none (flat)
	IDLE        bool // the server offers IDLE
	// Mode is how the watcher will watch it (idle, notify or polling):
	// the account's plan for this server's capabilities, the mailboxes
	// and max_connections.
	Mode    State
	Elapsed time.Duration

	// The catch-up query, run as the watcher runs it: UID FETCH
	// Checkpoint+1:* (UID), or 1:* without a checkpoint for this
	// mailbox (or a different UIDVALIDITY).
	Checkpoint uint32 // last_uid the query started above
	Found      int    // UIDs it returned above Checkpoint
	NewestUID  uint32 // UID of the newest message (FETCH n:* by sequence)
	// Warning says where the server's answers disagree with each other
	// (the catch-up misses mail, UIDNEXT below the checkpoint), "" if not.
	Warning string
	// NoMatch: Mailbox is a pattern or special-use entry of the config
	// that matched no mailbox; only Warning is set.
	NoMatch bool
}

// Check connects to every account once, logs in and, for each mailbox,
// looks it up with LIST (suggesting close names when it is missing),
// examines it and runs the catch-up query, cross-checking the answer with
// UIDNEXT and the newest message; it fetches no message and writes nothing.
func Check(ctx context.Context, cfg *config.Config) []CheckResult {
	checkpoints, _ := jsonstore.ReadCheckpoint(cfg.Output.Dir) // none is fine: check from UID 1
	var out []CheckResult
	for i := range cfg.Accounts {
		acct := &cfg.Accounts[i]
		start := time.Now()
		fail := func(err error) {
			for _, mb := range acct.Mailboxes {
				out = append(out, CheckResult{Mailbox: MailboxID{acct.Name, mb}, Err: err, Elapsed: time.Since(start)})
			}
		}
		secret, err := acct.Secret(ctx)
		if err != nil {
			fail(fmt.Errorf("password: %w", err))
			continue
		}
		c, dc, err := dial(ctx, acct, &cfg.Watch, &imapclient.Options{}, nil)
		if err != nil {
			fail(err)
			continue
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		if err := login(c, acct, secret); err != nil {
			fail(err)
			stop()
			c.Close()
			continue
		}
		idle := c.Caps().Has(imap.CapIdle) || c.Caps().Has(imap.CapIMAP4rev2)
		// The mailboxes the watcher would watch: patterns and special-use
		// names resolved against the server's LIST, exclude applied; a
		// literal name the server lacks is reported with close matches.
		dc.expect(cfg.Watch.ResponseTimeout.Duration)
		list, err := listAll(c)
		if err != nil {
			fail(err)
			stop()
			c.Close()
			continue
		}
		sel := selectMailboxes(list, acct.Mailboxes, acct.Exclude)
		// Reported in the order of the config's entries.
		type entryResult struct {
			entry int
			r     CheckResult
		}
		var rs []entryResult
		for _, miss := range sel.Missing {
			rs = append(rs, entryResult{miss.Entry, CheckResult{Mailbox: MailboxID{acct.Name, miss.Name}, Err: miss.err(), Elapsed: time.Since(start)}})
		}
		for _, entry := range sel.Unmatched {
			rs = append(rs, entryResult{slices.Index(acct.Mailboxes, entry), CheckResult{Mailbox: MailboxID{acct.Name, entry}, Elapsed: time.Since(start), NoMatch: true,
				Warning: fmt.Sprintf("%q matches no mailbox on the server (yet): nothing to watch for it now", entry)}})
		}
		names := make([]string, len(sel.Mailboxes))
		for i, mb := range sel.Mailboxes {
			names[i] = mb.Name
		}
		modes := plannedStates(acct, &cfg.Watch, c.Caps(), names)
		for i, mb := range sel.Mailboxes {
			r := CheckResult{Mailbox: MailboxID{acct.Name, mb.Name}, IDLE: idle, Mode: modes[i]}
			if cp, ok := checkpoints[jsonstore.CheckpointKey(acct.Name, mb.Name)]; ok {
				r.Checkpoint, r.UIDValidity = cp.LastUID, cp.UIDValidity
			}
			dc.expect(cfg.Watch.ResponseTimeout.Duration)
			r.Err = checkMailbox(c, dc, cfg.Watch.ResponseTimeout.Duration, mb.Name, &r)
			r.Elapsed = time.Since(start)
			rs = append(rs, entryResult{mb.Entry, r})
		}
		slices.SortStableFunc(rs, func(x, y entryResult) int { return x.entry - y.entry })
		for _, er := range rs {
			out = append(out, er.r)
		}
		dc.expect(2 * time.Second)
		c.Logout().Wait()
		stop()
		c.Close()
	}
	return out
}

// checkMailbox fills r for one mailbox; r.UIDValidity and r.Checkpoint come
// in as the stored checkpoint.
func checkMailbox(c *imapclient.Client, dc *deadlineConn, timeout time.Duration, mb string, r *CheckResult) error {
	delim, found, err := listMailbox(c, mb)
	if err == nil && !found {
		dc.expect(timeout)
		return mailboxNotFound(mb, suggestMailboxes(c, mb), nil)
	}
	r.Delimiter = delim
	dc.expect(timeout)
	sel, err := c.Select(mb, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		if isNo(err) {
			dc.expect(timeout)
			return mailboxNotFound(mb, suggestMailboxes(c, mb), fmt.Errorf("examine: %w", err))
		}
		return fmt.Errorf("examine %q: %w", mb, err)
	}
	if sel.UIDValidity != r.UIDValidity {
		r.Checkpoint = 0 // mailtap would capture it anew under this UIDVALIDITY
	}
	r.UIDValidity, r.Messages, r.UIDNext = sel.UIDValidity, sel.NumMessages, uint32(sel.UIDNext)
	dc.expect(timeout)
	uids, err := uidsAbove(c, r.Checkpoint)
	if err != nil {
		return fmt.Errorf("catch-up query on %q: %w", mb, err)
	}
	r.Found = len(uids)
	dc.expect(timeout)
	if r.NewestUID, err = newestUID(c, sel.NumMessages); err != nil {
		return fmt.Errorf("newest message of %q: %w", mb, err)
	}
	switch {
	case r.NewestUID > r.Checkpoint && r.Found == 0:
		r.Warning = fmt.Sprintf("the catch-up query UID FETCH %d:* found nothing, but the newest message has UID %d (UIDNEXT %d): mailtap falls back to listing the whole mailbox on this server",
			r.Checkpoint+1, r.NewestUID, r.UIDNext)
	case r.UIDNext != 0 && r.NewestUID >= r.UIDNext:
		r.Warning = fmt.Sprintf("the server reports UIDNEXT %d but holds UID %d: its UIDNEXT cannot be trusted", r.UIDNext, r.NewestUID)
	case r.Checkpoint > 0 && r.UIDNext != 0 && r.UIDNext <= r.Checkpoint:
		r.Warning = fmt.Sprintf("UIDNEXT %d is at or below the checkpoint %d with UIDVALIDITY unchanged (server restored from a backup?): mailtap will capture the mailbox again", r.UIDNext, r.Checkpoint)
	}
	return nil
}
