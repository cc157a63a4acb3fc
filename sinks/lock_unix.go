//go:build unix

package sinks

import (
	"os"

	"golang.org/x/sys/unix"
)

// lockExclusive waits for an exclusive lock on f, released when f closes.
func lockExclusive(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_EX) }
