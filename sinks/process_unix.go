//go:build unix

package sinks

import (
	"os/exec"
	"syscall"
)

// ownGroup puts a command sink's program in a process group of its own,
// killed whole on timeout: a script's children must not outlive it
// holding the pipes.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
