//go:build unix && !linux && !freebsd

package testimap

import "syscall"

// serverAttr: own process group (Freeze, Stop). No Pdeathsig here: a test
// binary killed by -timeout may leave the server running.
func serverAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
