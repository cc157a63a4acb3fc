package jsonstore

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// This file is the Linux fast path of the store; fast_other.go has the same
// API for every other OS, where openFastPath returns nil and the store takes
// the portable path (store.go, portable.go) alone. Linux runs the portable
// path too when Options.Portable is set, so the test suite covers both.
//
// What it adds, each measured on a backfill (README "Performance"):
//   - temp files created and renamed relative to the temp dir held open
//     (openat, renameat), which spares a walk of the whole path for each;
//   - syncfs(2): one sync of the filesystem instead of an fsync per file
//     for big batches;
//   - unnamed record temp files (O_TMPFILE), linked into place at commit.
//
// Unnamed files: written without a directory entry and linked into place at
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

// fastPath holds what the Linux fast path needs: the temp dir held open
// and what probing found the filesystem can do.
type fastPath struct {
	tmpDir *os.File

	// Unnamed record temp files: at most maxUnnamed open at once (0: not
	// supported here), linked through /proc if linkByProc.
	maxUnnamed  atomic.Int64
	linkByProc  bool
	unnamedOpen atomic.Int64

	// noReplace: renameat2(RENAME_NOREPLACE) works here, so a rename that
	// must not replace a record costs nothing extra (see Store.placeNew).
	// Cleared on the first EINVAL (a filesystem without it).
	noReplace atomic.Bool

	seq func() string // unique temp names, shared with the store
}

// unnamedFile is a record's temp file without a name, open until its
// batch is committed or discarded.
type unnamedFile struct{ fd int }

// openFastPath opens the temp dir for the fast path and probes what the
// filesystem supports; unnamed=false leaves unnamed files out.
func openFastPath(tmpDir string, unnamed bool, seq func() string) (*fastPath, error) {
	d, err := os.Open(tmpDir)
	if err != nil {
		return nil, err
	}
	fp := &fastPath{tmpDir: d, seq: seq}
	fp.noReplace.Store(true)
	if unnamed {
		fp.probeUnnamed()
	}
	return fp, nil
}

func (fp *fastPath) close() { fp.tmpDir.Close() }

func (fp *fastPath) dirfd() int { return int(fp.tmpDir.Fd()) }

// syncfs makes all of the filesystem's dirty data durable with one call.
func (fp *fastPath) syncfs() error { return unix.Syncfs(fp.dirfd()) }

// writeTemp creates name in the temp dir and writes data to it, through
// the held dir handle.
func (fp *fastPath) writeTemp(name string, data []byte) (err error) {
	dirfd := fp.dirfd()
	var fd int
	for {
		fd, err = unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "create", Path: filepath.Join(fp.tmpDir.Name(), name), Err: err}
	}
	err = writeAll(fd, data)
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(dirfd, name, 0)
		return &os.PathError{Op: "write", Path: filepath.Join(fp.tmpDir.Name(), name), Err: err}
	}
	return nil
}

// renameInto moves a temp file (always in the temp dir: see
// Store.tempName) into the directory dir (held open), as os.Rename would
// but without its extra lstat of the target and without walking either
// path again. With replace=false an existing target is an error
// satisfying errors.Is(err, fs.ErrExist) and is left alone.
func (fp *fastPath) renameInto(from, to string, dir *os.File, replace bool) error {
	old, name := filepath.Base(from), filepath.Base(to)
	var err error
	switch {
	case replace:
		err = unix.Renameat(fp.dirfd(), old, int(dir.Fd()), name)
	case fp.noReplace.Load():
		err = unix.Renameat2(fp.dirfd(), old, int(dir.Fd()), name, unix.RENAME_NOREPLACE)
		if err != unix.EINVAL && err != unix.ENOSYS {
			break
		}
		fp.noReplace.Store(false)
		fallthrough
	default:
		// No RENAME_NOREPLACE here. The store's lock keeps other mailtaps
		// out, so a check then a rename is as good.
		if err = fp.exists(dir, name); err == nil {
			err = unix.Renameat(fp.dirfd(), old, int(dir.Fd()), name)
		}
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// exists returns unix.EEXIST if name is in dir, nil if it is not.
func (fp *fastPath) exists(dir *os.File, name string) error {
	var st unix.Stat_t
	switch err := unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err {
	case nil:
		return unix.EEXIST
	case unix.ENOENT:
		return nil
	default:
		return err
	}
}

// probeUnnamed finds out whether the temp dir supports unnamed files and
// how they can be linked: linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH
// on older kernels; /proc/self/fd works where /proc is mounted.
func (fp *fastPath) probeUnnamed() {
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
	dirfd := fp.dirfd()
	fd, err := unix.Openat(dirfd, ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return // EOPNOTSUPP, EISDIR (kernel before 3.11), …
	}
	defer unix.Close(fd)
	name := fp.seq()
	switch {
	case unix.Linkat(fd, "", dirfd, name, unix.AT_EMPTY_PATH) == nil:
	case unix.Linkat(unix.AT_FDCWD, procFD(fd), dirfd, name, unix.AT_SYMLINK_FOLLOW) == nil:
		fp.linkByProc = true
	default:
		return
	}
	unix.Unlinkat(dirfd, name, 0)
	fp.maxUnnamed.Store(limit)
}

func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// unnamedSupported says whether records may be unnamed files right now.
func (fp *fastPath) unnamedSupported() bool { return fp.maxUnnamed.Load() > 0 }

// createUnnamed writes data to a new unnamed file in the temp dir. It
// returns nil (and no error) when unnamed files are not available or too
// many are open, and the caller writes a named one instead.
func (fp *fastPath) createUnnamed(data []byte) (*unnamedFile, error) {
	if fp.unnamedOpen.Add(1) > fp.maxUnnamed.Load() {
		fp.unnamedOpen.Add(-1)
		return nil, nil
	}
	var fd int
	var err error
	for {
		// O_RDWR, not O_WRONLY: a record whose name collides is read back
		// to be re-encoded (readUnnamed).
		fd, err = unix.Openat(fp.dirfd(), ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o644)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		fp.unnamedOpen.Add(-1)
		if err == unix.EMFILE || err == unix.ENFILE {
			return nil, nil
		}
		return nil, &os.PathError{Op: "create unnamed file in", Path: fp.tmpDir.Name(), Err: err}
	}
	f := &unnamedFile{fd: fd}
	if err := writeAll(fd, data); err != nil {
		fp.closeUnnamed(f)
		return nil, &os.PathError{Op: "write unnamed file in", Path: fp.tmpDir.Name(), Err: err}
	}
	return f, nil
}

func (fp *fastPath) closeUnnamed(f *unnamedFile) {
	unix.Close(f.fd)
	fp.unnamedOpen.Add(-1)
}

func (fp *fastPath) fsyncUnnamed(f *unnamedFile) error { return unix.Fsync(f.fd) }

// readUnnamed returns the whole content of f (for the rare record that
// must be re-encoded at commit, see collide.go).
func (fp *fastPath) readUnnamed(f *unnamedFile) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		return nil, err
	}
	buf := make([]byte, st.Size)
	for off := 0; off < len(buf); {
		n, err := unix.Pread(f.fd, buf[off:], int64(off))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, err
		case n == 0:
			return nil, io.ErrUnexpectedEOF
		}
		off += n
	}
	return buf, nil
}

// linkUnnamed gives f the name name in dir. With replace, a record that
// is already there (captured before a crash kept the checkpoint back) is
// replaced atomically, as a rename would; without, linkat's EEXIST is
// returned (errors.Is(err, fs.ErrExist)), which makes the check for a name
// already taken free (see Store.placeNew).
func (fp *fastPath) linkUnnamed(f *unnamedFile, dir *os.File, name string, replace bool) error {
	err := fp.linkat(f.fd, int(dir.Fd()), name)
	if errors.Is(err, unix.EEXIST) {
		if !replace {
			return &os.LinkError{Op: "link", Old: "unnamed record", New: filepath.Join(dir.Name(), name), Err: err}
		}
		tmpfd, tmp := fp.dirfd(), fp.seq()
		if err = fp.linkat(f.fd, tmpfd, tmp); err == nil {
			if err = unix.Renameat(tmpfd, tmp, int(dir.Fd()), name); err != nil {
				unix.Unlinkat(tmpfd, tmp, 0)
			}
		}
	}
	if err != nil {
		// Whatever the cause (a security module, a filesystem that takes
		// O_TMPFILE but not the link), the retry of this batch and every
		// later one write named temp files instead.
		fp.maxUnnamed.Store(0)
		return &os.LinkError{Op: "link", Old: "unnamed record", New: filepath.Join(dir.Name(), name), Err: err}
	}
	return nil
}

func (fp *fastPath) linkat(fd, dirfd int, name string) error {
	if fp.linkByProc {
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
