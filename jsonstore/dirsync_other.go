//go:build !windows

package jsonstore

import "os"

// syncDirFile makes the names in a directory durable: new records, and the
// renames that replaced old ones.
func syncDirFile(d *os.File) error { return d.Sync() }
