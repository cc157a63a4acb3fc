// Package testimap runs real IMAP servers for tests: go-imap's in-memory
// server (Mem, imapserver + imapmemserver on loopback TCP) for fast tests,
// a private Debian Dovecot 2.3 instance (Dovecot) for tests against the
// server most people run, and a private Debian Cyrus IMAP 3.6 instance
// (Cyrus), whose "." hierarchy, IDLE without push (unless idled runs) and
// EXPUNGE-only view of a deleted and recreated mailbox differ from
// Dovecot's. All satisfy Server, so a scenario can be written once and run
// against each (Cyrus has no TLS and cannot recreate INBOX).
//
// Both can deliver mail behind the client's back (Deliver, DeliverMany),
// restart on the same ports with the same mail (Stop, Start), drop sessions
// (Kick), go silent without closing sockets (Freeze), change the password
// (SetPassword) and give a mailbox a new UIDVALIDITY (RecreateMailbox), and
// both can serve TLS with a generated self-signed certificate (CAFile).
// Msg builds small valid messages with unique Message-IDs.
//
// Servers are stopped and their files removed by t.Cleanup. Dovecot tests
// skip when Dovecot is not installed or the test is not root, unless
// MAILTAP_REQUIRE_DOVECOT is set (CI), which makes them fail instead; Cyrus
// tests likewise with MAILTAP_REQUIRE_CYRUS (imapd and idled are looked for
// in MAILTAP_CYRUS_DIR, by default /opt/mailtap-cyrus, see .ci/run).
package testimap

import "testing"

// Server is what both test servers offer.
type Server interface {
	Addr() string    // plain listener (STARTTLS with TLS), "127.0.0.1:port"
	Host() string    // "127.0.0.1"
	Port() int       // plain port, stable across Stop/Start
	TLSAddr() string // implicit TLS listener, "" without TLS
	TLSPort() int
	CAFile() string // PEM trusting the server certificate, "" without TLS
	Cert() []byte
	Username() string
	Password() string
	SetPassword(t testing.TB, password string)

	Deliver(t testing.TB, mailbox string, raw []byte) (uid uint32)
	DeliverMany(t testing.TB, mailbox string, msgs [][]byte) (uids []uint32)
	DeliverN(t testing.TB, mailbox string, n int) (uids []uint32)
	CreateMailbox(t testing.TB, name string)
	DeleteMailbox(t testing.TB, name string)
	RecreateMailbox(t testing.TB, name string) (uidValidity uint32)
	Status(t testing.TB, name string) MailboxStatus

	Kick(t testing.TB)
	Freeze(t testing.TB)
	Thaw(t testing.TB)
	Stop(t testing.TB)
	Start(t testing.TB)
	Restart(t testing.TB)
	Close()
}

var (
	_ Server = (*Mem)(nil)
	_ Server = (*Dovecot)(nil)
	_ Server = (*Cyrus)(nil)
)
