package testimap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Users is every account of the instance: Username, then ExtraUsers.
func (d *Dovecot) Users() []string {
	return append([]string{d.opts.Username}, d.opts.ExtraUsers...)
}

// createForAll creates mailboxes for every user in one doveadm run
// (-A iterates the passwd-file): 200 users × 5 folders one by one would
// cost 20 ms each.
func (d *Dovecot) createForAll(t testing.TB, mailboxes []string) {
	t.Helper()
	if len(mailboxes) == 0 {
		return
	}
	if _, err := d.doveadm(nil, append([]string{"mailbox", "create", "-A"}, mailboxes...)...); err != nil {
		t.Fatalf("testimap: create mailboxes for all users: %v", err)
	}
}

// DeliverManyAs is DeliverMany for any of Users. It does not take the lock
// that serialises Deliver (APPENDUID gives the UIDs), so deliveries to
// different users may run concurrently; an error is returned, not fatal,
// so it can be called from worker goroutines.
func (d *Dovecot) DeliverManyAs(user, mailbox string, msgs [][]byte) ([]uint32, error) {
	return multiAppend(d.Addr(), user, d.Password(), mailbox, msgs)
}

// DropAs delivers raw into a user's mailbox the way a local MDA writing
// Maildir does: a file in tmp/, renamed into new/, owned by the mail user.
// It needs no Dovecot process, so it also delivers while the server is
// stopped (doveadm save would need the auth service for the user lookup).
// Dovecot picks the file up at its next sync of the folder.
func (d *Dovecot) DropAs(user, mailbox string, raw []byte) error {
	root := filepath.Join(d.dir, "mail", user)
	if !strings.EqualFold(mailbox, "INBOX") {
		// Maildir++ layout: "a/b" is the folder ".a.b".
		root = filepath.Join(root, "."+strings.ReplaceAll(mailbox, "/", "."))
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(root, sub), 0o700); err != nil {
			return err
		}
		os.Chown(filepath.Join(root, sub), d.uid, d.gid)
	}
	name := fmt.Sprintf("%d.M%dP%d_%d.mailtap-test", time.Now().Unix(), time.Now().Nanosecond()/1000, os.Getpid(), dropSeq.Add(1))
	tmp := filepath.Join(root, "tmp", name)
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	if err := os.Chown(tmp, d.uid, d.gid); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(root, "new", name))
}

var dropSeq atomic.Int64
