// Package e2e proves mailtap's delivery guarantees end to end: its tests
// build the mailtap binary once, run it as a user would (a JSON config file,
// --headless or --once, signals, exit codes, logs on stderr) against a
// private Dovecot or go-imap's in-memory server on loopback, and break
// things on purpose: SIGKILL mid-backfill, a server that goes away, a TCP
// proxy that goes silent or cuts a message in half, a full disk, a new
// UIDVALIDITY, a wrong password, hostile mail, a second instance, an
// untrusted certificate. Each test fails when the guarantee it names in
// the README's "Guarantees" section breaks.
//
// The package has no non-test code. The binary is built by TestMain with
// `go build`; MAILTAP_E2E_BINARY=/path/to/mailtap runs a prebuilt one
// instead, and MAILTAP_E2E_RACE=1 builds it with -race. -short skips the
// whole suite; MAILTAP_E2E_SEED replays a random schedule. Dovecot tests
// skip when Dovecot is missing unless MAILTAP_REQUIRE_DOVECOT is set (see
// internal/testimap).
package e2e
