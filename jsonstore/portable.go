package jsonstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The store's file operations, each taking the fast path (fast_linux.go)
// when there is one and the portable path otherwise: what os offers on
// every OS, as design.md §5 states the recipe (temp file on the same
// filesystem, fsync, rename, fsync of the directory; on Windows, which
// has no directory fsync, see dirsync_windows.go).

// errLockHeld is what lockFile returns when another process holds the lock.
var errLockHeld = errors.New("lock held")

// writeTemp creates name in the temp dir and writes data to it.
func (s *Store) writeTemp(name string, data []byte) error {
	if s.fast != nil {
		return s.fast.writeTemp(name, data)
	}
	path := filepath.Join(s.tmpDir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// renameInto moves the temp file from to to, in the directory dir (held
// open by the caller). With replace=false an existing to is left alone and
// the error satisfies errors.Is(err, fs.ErrExist).
func (s *Store) renameInto(from, to string, dir *os.File, replace bool) error {
	if s.fast != nil {
		return s.fast.renameInto(from, to, dir, replace)
	}
	if !replace {
		// The store's lock keeps other mailtaps out, so nothing can take
		// the name between this check and the rename.
		if _, err := os.Lstat(to); err == nil {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: fs.ErrExist}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return os.Rename(from, to)
}

// exists says whether name is taken in dir: an error satisfying
// errors.Is(err, fs.ErrExist) if it is, nil if it is free.
func (s *Store) exists(dir *os.File, name string) error {
	if s.fast != nil {
		if err := s.fast.exists(dir, name); err != nil {
			return &os.PathError{Op: "stat", Path: filepath.Join(dir.Name(), name), Err: err}
		}
		return nil
	}
	path := filepath.Join(dir.Name(), name)
	switch _, err := os.Lstat(path); {
	case err == nil:
		return &os.PathError{Op: "stat", Path: path, Err: fs.ErrExist}
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		return err
	}
}

// syncFile fsyncs a temp file by name.
func syncFile(name string) error {
	f, err := os.Open(name)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err != nil {
		return fmt.Errorf("fsync %s: %w", name, err)
	}
	return nil
}
