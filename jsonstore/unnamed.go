package jsonstore

import (
	"errors"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Record temp files are unnamed where the filesystem allows it (Linux
// O_TMPFILE): written without a directory entry and linked into place at
// commit. Against a named temp file that is renamed, this spares an insert
// into the temp dir and the rename's lookup and delete (about a fifth of
// mailtap's system time in a backfill), and a crash leaves nothing behind.
//
// Durability: an unnamed file's link count goes from 0 to 1 when it is
// linked, which on some filesystems (ext4 without a journal) only the
// file's own inode records. So a commit syncs the files before linking
// them, as for renames, and once more after (syncfs; fsync of each linked
// file where syncfs fails). Only then does the checkpoint move. Because a
// second sync per file would make small commits slower, only big batches
// use unnamed files (see Batch.writeRecord).

// unnamedFile is a record's temp file without a name, open until its
// batch is committed or discarded.
type unnamedFile struct{ fd int }

// probeUnnamed finds out whether the temp dir supports unnamed files and
// how they can be linked: linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH
// on older kernels; /proc/self/fd works where /proc is mounted.
func (s *Store) probeUnnamed() {
	var nofile unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile) != nil {
		return
	}
	// Every unnamed file holds a descriptor until its commit; use at most
	// a quarter of them, and none if there are few.
	limit := int64(min(nofile.Cur/4, 1024))
	if limit < 64 {
		return
	}
	dirfd := int(s.tmpDirFile.Fd())
	fd, err := unix.Openat(dirfd, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return // EOPNOTSUPP, EISDIR (kernel before 3.11), …
	}
	defer unix.Close(fd)
	name := s.tempBase("probe")
	switch {
	case unix.Linkat(fd, "", dirfd, name, unix.AT_EMPTY_PATH) == nil:
	case unix.Linkat(unix.AT_FDCWD, procFD(fd), dirfd, name, unix.AT_SYMLINK_FOLLOW) == nil:
		s.linkByProc = true
	default:
		return
	}
	unix.Unlinkat(dirfd, name, 0)
	s.maxUnnamed.Store(limit)
}

func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// createUnnamed writes data to a new unnamed file in the temp dir. It
// returns nil (and no error) when unnamed files are not available or too
// many are open, and the caller writes a named one instead.
func (s *Store) createUnnamed(data []byte) (*unnamedFile, error) {
	if s.unnamedOpen.Add(1) > s.maxUnnamed.Load() {
		s.unnamedOpen.Add(-1)
		return nil, nil
	}
	var fd int
	var err error
	for {
		fd, err = unix.Openat(int(s.tmpDirFile.Fd()), ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		s.unnamedOpen.Add(-1)
		if err == unix.EMFILE || err == unix.ENFILE {
			return nil, nil
		}
		return nil, &os.PathError{Op: "create unnamed file in", Path: s.tmpDir, Err: err}
	}
	f := &unnamedFile{fd: fd}
	if err := writeAll(fd, data); err != nil {
		s.closeUnnamed(f)
		return nil, &os.PathError{Op: "write unnamed file in", Path: s.tmpDir, Err: err}
	}
	return f, nil
}

func (s *Store) closeUnnamed(f *unnamedFile) {
	unix.Close(f.fd)
	s.unnamedOpen.Add(-1)
}

// linkUnnamed gives f the name name in dir. A record that is already
// there (captured before a crash kept the checkpoint back) is replaced
// atomically, as a rename would.
func (s *Store) linkUnnamed(f *unnamedFile, dir *os.File, name string) error {
	err := s.linkat(f.fd, int(dir.Fd()), name)
	if errors.Is(err, unix.EEXIST) {
		tmpfd, tmp := int(s.tmpDirFile.Fd()), s.tempBase("rec")
		if err = s.linkat(f.fd, tmpfd, tmp); err == nil {
			if err = unix.Renameat(tmpfd, tmp, int(dir.Fd()), name); err != nil {
				unix.Unlinkat(tmpfd, tmp, 0)
			}
		}
	}
	if err != nil {
		// Whatever the cause (a security module, a filesystem that takes
		// O_TMPFILE but not the link), the retry of this batch and every
		// later one write named temp files instead.
		s.maxUnnamed.Store(0)
		return &os.LinkError{Op: "link", Old: "unnamed record", New: dir.Name() + "/" + name, Err: err}
	}
	return nil
}

func (s *Store) linkat(fd, dirfd int, name string) error {
	if s.linkByProc {
		return unix.Linkat(unix.AT_FDCWD, procFD(fd), dirfd, name, unix.AT_SYMLINK_FOLLOW)
	}
	return unix.Linkat(fd, "", dirfd, name, unix.AT_EMPTY_PATH)
}

// writeAll writes data to fd, retrying short writes and EINTR.
func writeAll(fd int, data []byte) error {
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		case n == 0:
			return io.ErrShortWrite
		}
		data = data[n:]
	}
	return nil
}
