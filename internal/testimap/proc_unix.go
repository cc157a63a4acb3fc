//go:build unix

package testimap

import "syscall"

// The real servers (Dovecot, Cyrus) run only on unix; these shims keep the
// package compiling everywhere (`GOOS=windows go vet ./...` in CI), where
// StartDovecot finds no binaries and skips.

const (
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
)

// killGroup sends sig to the process group led by pid.
func killGroup(pid int, sig syscall.Signal) error { return syscall.Kill(-pid, sig) }
