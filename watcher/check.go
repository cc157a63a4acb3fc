package watcher

import (
	"context"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailtap/config"
)

// CheckResult is what `mailtap check` reports for one mailbox.
type CheckResult struct {
	Mailbox     MailboxID
	Err         error
	UIDValidity uint32
	Messages    uint32
	IDLE        bool
	Elapsed     time.Duration
}

// Check connects to every account once, logs in and examines each mailbox,
// without fetching or writing anything.
func Check(ctx context.Context, cfg *config.Config) []CheckResult {
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
		c, _, err := dial(ctx, acct, &cfg.Watch, &imapclient.Options{}, nil)
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
		for _, mb := range acct.Mailboxes {
			r := CheckResult{Mailbox: MailboxID{acct.Name, mb}, IDLE: idle}
			sel, err := c.Select(mb, &imap.SelectOptions{ReadOnly: true}).Wait()
			if err != nil {
				r.Err = fmt.Errorf("examine %q: %w", mb, err)
			} else {
				r.UIDValidity, r.Messages = sel.UIDValidity, sel.NumMessages
			}
			r.Elapsed = time.Since(start)
			out = append(out, r)
		}
		c.Logout().Wait()
		stop()
		c.Close()
	}
	return out
}
