package e2e

import "syscall"

// childAttr: a test binary killed by -timeout must not leave mailtap
// running (Pdeathsig is Linux's).
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
