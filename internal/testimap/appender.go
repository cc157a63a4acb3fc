package testimap

import (
	"fmt"
	"sync"

	"github.com/emersion/go-imap/v2/imapclient"
)

// Appender delivers messages over one logged-in IMAP connection, as a
// server's own delivery agent would (the server sees and announces each,
// unlike a file dropped into its Maildir). Safe for concurrent use; the
// APPENDs of one Appender run one at a time.
type Appender struct {
	mu sync.Mutex
	c  *imapclient.Client
}

// NewAppender logs in to addr (plain text: test servers on loopback).
func NewAppender(addr, username, password string) (*Appender, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, fmt.Errorf("appender: dial %s: %w", addr, err)
	}
	if err := c.Login(username, password).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("appender: login %s: %w", username, err)
	}
	return &Appender{c: c}, nil
}

// Append stores raw in mailbox.
func (a *Appender) Append(mailbox string, raw []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	cmd := a.c.Append(mailbox, int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		return fmt.Errorf("append to %q: %w", mailbox, err)
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("append to %q: %w", mailbox, err)
	}
	if _, err := cmd.Wait(); err != nil {
		return fmt.Errorf("append to %q: %w", mailbox, err)
	}
	return nil
}

// Close logs out.
func (a *Appender) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.c.Logout().Wait()
	a.c.Close()
}
