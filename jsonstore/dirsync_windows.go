//go:build windows

package jsonstore

import "os"

// syncDirFile: Windows has no directory fsync (FlushFileBuffers on a
// directory handle fails); NTFS journals the rename itself, so a renamed
// record is there after a crash once MoveFileEx has returned.
func syncDirFile(*os.File) error { return nil }
