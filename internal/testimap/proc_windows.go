//go:build windows

package testimap

import (
	"errors"
	"os"
	"syscall"
)

// No Dovecot or Cyrus on Windows: StartDovecot skips before any of this
// runs. These keep the package compiling for CI's cross-build.

const (
	sigStop = syscall.Signal(0x13)
	sigCont = syscall.Signal(0x12)
)

func serverAttr() *syscall.SysProcAttr { return nil }

func killGroup(pid int, sig syscall.Signal) error {
	if sig != syscall.SIGKILL {
		return errors.New("testimap: process group signals are not supported on windows")
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}
