//go:build !linux

package e2e

import "syscall"

// childAttr: no Pdeathsig off Linux; the e2e suite needs Dovecot and runs
// on Linux in CI, this file only keeps it compiling elsewhere.
func childAttr() *syscall.SysProcAttr { return nil }
