//go:build linux || freebsd

package testimap

import "syscall"

// serverAttr: own process group, so Freeze stops the whole instance and
// Stop can reap stragglers; Pdeathsig, so a test binary killed by
// -timeout does not leave the server running.
func serverAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
