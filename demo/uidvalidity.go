package demo

import (
	"crypto/rand"
	"encoding/binary"

	"github.com/emersion/go-imap/v2"
)

// Every start of the demo server is a new server with new mailboxes, so
// it must not reuse UIDVALIDITYs: imapmemserver numbers them 1, 2, … on
// every start, and a second `mailtap --demo` on the same output dir saw
// UIDVALIDITY 1 again with UIDNEXT far below its checkpoint, and captured
// nothing for minutes. A random base (not the clock: two starts in one
// second must differ too) is added to every UIDVALIDITY the backend
// reports; it leaves room below 2^32 for the backend's own numbers.
func freshUIDValidityBase() uint32 {
	var b [4]byte
	rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return 1<<20 + binary.BigEndian.Uint32(b[:])%(1<<31-1<<20)
}

func (sess *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	data, err := sess.Session.Select(name, options)
	if data != nil {
		data.UIDValidity += sess.s.uvBase
	}
	return data, err
}

func (sess *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	data, err := sess.Session.Status(name, options)
	if data != nil && data.UIDValidity != 0 {
		data.UIDValidity += sess.s.uvBase
	}
	return data, err
}

func (sess *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	data, err := sess.Session.Append(mailbox, r, options)
	if data != nil && data.UIDValidity != 0 {
		data.UIDValidity += sess.s.uvBase
	}
	return data, err
}

func (sess *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	data, err := sess.Session.Copy(numSet, dest)
	if data != nil && data.UIDValidity != 0 {
		data.UIDValidity += sess.s.uvBase
	}
	return data, err
}
