package jsonstore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tempModes runs a test on the OS's fast path (on Linux: held directory
// handles, syncfs, unnamed record temp files where this machine supports
// them) and on the portable path that every other OS takes.
func tempModes(t *testing.T, test func(t *testing.T, opts Options)) {
	t.Run("fast", func(t *testing.T) {
		s := openStore(t, t.TempDir(), Options{})
		if s.fast == nil || !s.fast.unnamedSupported() {
			t.Skip("no fast path, or no O_TMPFILE or no way to link it here")
		}
		test(t, Options{Pretty: true})
	})
	t.Run("portable", func(t *testing.T) {
		opts := Options{Pretty: true, Portable: true}
		if s := openStore(t, t.TempDir(), opts); s.fast != nil {
			t.Fatal("Options.Portable did not turn the fast path off")
		}
		test(t, opts)
	})
}

// commitN commits records for uids lo..hi with the given subject and
// checks that every one is in place, the temp dir is empty and no
// descriptor is left open.
func commitN(t *testing.T, s *Store, dir string, lo, hi uint32, subject string) {
	t.Helper()
	b := s.NewBatch("a", "INBOX", 1, '/')
	for uid := lo; uid <= hi; uid++ {
		addMsg(t, b, uid, strings.Replace(simpleMsg, "Subject: hello", "Subject: "+subject, 1))
	}
	if _, err := b.Commit(hi); err != nil {
		t.Fatal(err)
	}
	for uid := lo; uid <= hi; uid++ {
		data, err := os.ReadFile(filepath.Join(dir, "a", "INBOX", RecordBaseName(1, uid)+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), `"subject": "`+subject+`"`) {
			t.Fatalf("uid %d: record does not have subject %q:\n%s", uid, subject, data)
		}
		if s.opts.SaveRaw {
			raw, err := os.ReadFile(filepath.Join(dir, "a", "INBOX", RecordBaseName(1, uid)+".eml"))
			if err != nil || !strings.Contains(string(raw), "Subject: "+subject) {
				t.Fatalf("uid %d: raw copy %.60q, %v", uid, raw, err)
			}
		}
	}
	if ents, _ := os.ReadDir(s.TempDir()); len(ents) != 0 {
		t.Errorf("temp files left: %v", ents)
	}
	if n := unnamedOpen(s); n != 0 {
		t.Errorf("%d unnamed temp files still open", n)
	}
}

func TestStore_tempFiles(t *testing.T) {
	tempModes(t, func(t *testing.T, opts Options) {
		dir := t.TempDir()
		opts.SaveRaw = true // a rename before each record's link or rename
		s := openStore(t, dir, opts)
		commitN(t, s, dir, 1, 3, "small")                   // fsync file by file
		commitN(t, s, dir, 4, 4+syncfsThreshold+5, "large") // one syncfs
		// Re-captured after a crash that kept the checkpoint back: the
		// records are replaced in place, not duplicated or refused.
		commitN(t, s, dir, 1, 30, "again")
		ents, err := os.ReadDir(filepath.Join(dir, "a", "INBOX"))
		if err != nil || len(ents) != 60 {
			t.Errorf("%d files in the mailbox dir (%v), want 30 records and 30 raw copies", len(ents), err)
		}
	})
}

// TestStore_discardClosesUnnamed: a discarded batch leaves no file and no
// open descriptor behind.
func TestStore_discardClosesUnnamed(t *testing.T) {
	tempModes(t, func(t *testing.T, opts Options) {
		dir := t.TempDir()
		s := openStore(t, dir, opts)
		b := s.NewBatch("a", "INBOX", 1, '/')
		for uid := uint32(1); uid <= 20; uid++ {
			addMsg(t, b, uid, simpleMsg)
		}
		b.Discard()
		if n := unnamedOpen(s); n != 0 {
			t.Errorf("%d unnamed temp files still open", n)
		}
		if ents, _ := os.ReadDir(s.TempDir()); len(ents) != 0 {
			t.Errorf("temp files left: %v", ents)
		}
		if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
			t.Errorf("discarded records visible: %v", err)
		}
		fds, _ := os.ReadDir("/proc/self/fd") // Linux; elsewhere there are no unnamed files
		for _, fd := range fds {
			if target, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); strings.Contains(target, dir) && !strings.HasSuffix(target, "lock") && !strings.HasSuffix(target, "tmp") {
				t.Errorf("descriptor %s still open on %s", fd.Name(), target)
			}
		}
	})
}
