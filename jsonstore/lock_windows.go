//go:build windows

package jsonstore

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockFile takes an exclusive lock on f without waiting (LockFileEx, as
// cmd/go's filelock does); errLockHeld if another process has it. Windows
// releases it when the handle is closed or the process ends, so a crash
// never leaves a stale lock. The locked byte lies far past the end of the
// file: a locked range cannot be read by others, and the second mailtap
// reads the pid written at the start to say who holds the dir.
func lockFile(f *os.File) error {
	ol := &windows.Overlapped{OffsetHigh: 0x7fffffff}
	err := windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) || errors.Is(err, windows.ERROR_IO_PENDING) {
		return errLockHeld
	}
	return err
}
