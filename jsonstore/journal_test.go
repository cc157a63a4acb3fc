package jsonstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// readJournal returns every entry up to end.
func readJournal(t *testing.T, out string, from, end JournalPos) []JournalEntry {
	t.Helper()
	r := NewJournalReader(out, from)
	defer r.Close()
	var got []JournalEntry
	for {
		e, err := r.Next(end)
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
}

func commitUIDs(t *testing.T, s *Store, mailbox string, advance bool, uids ...uint32) {
	t.Helper()
	b := s.NewBatch("acct", mailbox, 7, '/')
	for _, u := range uids {
		addMsg(t, b, u, simpleMsg)
	}
	to := uint32(0)
	if advance {
		to = uids[len(uids)-1]
	}
	if _, err := b.Commit(to); err != nil {
		t.Fatal(err)
	}
}

func TestJournal_commitsInOrder(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	note, stop := s.JournalNotify()
	defer stop()
	commitUIDs(t, s, "INBOX", true, 1, 2, 3)
	select {
	case <-note:
	default:
		t.Fatal("no notification after a commit")
	}
	commitUIDs(t, s, "Lists/go", true, 5)
	commitUIDs(t, s, "INBOX", true, 4)

	got := readJournal(t, dir, JournalPos{}, s.JournalEnd())
	want := []string{"acct/INBOX/7/1", "acct/INBOX/7/2", "acct/INBOX/7/3", "acct/Lists/go/7/5", "acct/INBOX/7/4"}
	if len(got) != len(want) {
		t.Fatalf("journal has %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, e := range got {
		if e.ID != want[i] || e.Seq != uint64(i+1) {
			t.Errorf("entry %d = seq %d %q, want seq %d %q", i, e.Seq, e.ID, i+1, want[i])
		}
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(e.Path))); err != nil {
			t.Errorf("entry %d path %q: %v", i, e.Path, err)
		}
		if e.Subject != "hello" || e.CommittedAt.IsZero() {
			t.Errorf("entry %d = %+v", i, e)
		}
	}
	// Resuming mid-way returns the rest.
	r := NewJournalReader(dir, JournalPos{})
	r.Next(JournalPos{})
	r.Next(JournalPos{})
	mid := r.Pos()
	r.Close()
	if rest := readJournal(t, dir, mid, s.JournalEnd()); len(rest) != 3 || rest[0].Seq != 3 {
		t.Errorf("from %+v: %+v", mid, rest)
	}
	// Without a limit, a reader sees what is on disk: the same.
	if all := readJournal(t, dir, JournalPos{}, JournalPos{}); len(all) != 5 {
		t.Errorf("unlimited read: %d entries", len(all))
	}
	if end, err := ReadJournalEnd(dir); err != nil || end != s.JournalEnd() {
		t.Errorf("ReadJournalEnd = %+v, %v; store says %+v", end, err, s.JournalEnd())
	}
}

// A crash after the journal and before the checkpoint makes the watcher
// commit the same UIDs again: they are journalled once.
func TestJournal_recommitAfterCrashNotDuplicated(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	commitUIDs(t, s, "INBOX", true, 1, 2)
	commitUIDs(t, s, "INBOX", false, 3, 4) // checkpoint stays at 2
	s.Close()

	s = openStore(t, dir, Options{})
	commitUIDs(t, s, "INBOX", true, 3, 4, 5)
	got := readJournal(t, dir, JournalPos{}, s.JournalEnd())
	var ids []string
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	if fmt.Sprint(ids) != "[acct/INBOX/7/1 acct/INBOX/7/2 acct/INBOX/7/3 acct/INBOX/7/4 acct/INBOX/7/5]" {
		t.Errorf("journal = %v", ids)
	}
	if got[len(got)-1].Seq != 5 {
		t.Errorf("last seq %d, want 5", got[len(got)-1].Seq)
	}
}

// A torn or damaged tail (a crash mid-write, a full disk) is cut at Open and
// the next entries follow the last good one.
func TestJournal_tornTailTruncated(t *testing.T) {
	for _, tail := range []string{"0badc0de {\"seq\":3", "\x00\x00\x00\x00\x00\x00", "00000000 {\"seq\":3,\"id\":\"x\"}\n"} {
		t.Run(fmt.Sprintf("%q", tail[:6]), func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, Options{})
			commitUIDs(t, s, "INBOX", true, 1, 2)
			end := s.JournalEnd()
			s.Close()
			seg := filepath.Join(JournalDir(dir), segmentName(1))
			f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(tail)
			f.Close()
			if all := readJournal(t, dir, JournalPos{}, JournalPos{}); len(all) != 2 && tail[len(tail)-1] != '\n' {
				t.Errorf("reader past a torn tail: %d entries", len(all))
			}

			s = openStore(t, dir, Options{})
			if s.JournalEnd() != end {
				t.Errorf("end after reopen %+v, want %+v", s.JournalEnd(), end)
			}
			commitUIDs(t, s, "INBOX", true, 3)
			got := readJournal(t, dir, JournalPos{}, s.JournalEnd())
			if len(got) != 3 || got[2].Seq != 3 || got[2].ID != "acct/INBOX/7/3" {
				t.Errorf("journal after torn tail: %+v", got)
			}
		})
	}
}

func TestJournal_segmentsRotate(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	s.journal.segmentBytes = 600 // about two entries
	for u := uint32(1); u <= 9; u++ {
		commitUIDs(t, s, "INBOX", true, u)
	}
	segs, err := journalSegments(JournalDir(dir))
	if err != nil || len(segs) < 3 {
		t.Fatalf("segments %v, %v", segs, err)
	}
	got := readJournal(t, dir, JournalPos{}, s.JournalEnd())
	if len(got) != 9 {
		t.Fatalf("%d entries across %d segments", len(got), len(segs))
	}
	for i, e := range got {
		if e.UID != uint32(i+1) || e.Seq != uint64(i+1) {
			t.Errorf("entry %d: %+v", i, e)
		}
	}
	// Reopening continues the numbering in the last segment.
	s.Close()
	s = openStore(t, dir, Options{})
	commitUIDs(t, s, "INBOX", true, 10)
	got = readJournal(t, dir, JournalPos{}, s.JournalEnd())
	if len(got) != 10 || got[9].Seq != 10 {
		t.Errorf("after reopen: %d entries, last %+v", len(got), got[len(got)-1])
	}
}

// A journal that cannot be written (here: its file turned read-only under
// it, as a full disk would refuse the write) keeps the checkpoint where it
// was; the batch captured again later is journalled then, once.
func TestJournal_writeFailureHoldsCheckpoint(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	commitUIDs(t, s, "INBOX", true, 1)
	good := s.journal.f
	ro, err := os.Open(good.Name())
	if err != nil {
		t.Fatal(err)
	}
	s.journal.f = ro
	b := s.NewBatch("acct", "INBOX", 7, '/')
	addMsg(t, b, 2, simpleMsg)
	if _, err := b.Commit(2); err == nil || !strings.Contains(err.Error(), "write journal") {
		t.Fatalf("commit with an unwritable journal: %v", err)
	}
	if st, _ := s.State("acct", "INBOX"); st.LastUID != 1 {
		t.Errorf("checkpoint moved to %d past an unjournalled record", st.LastUID)
	}
	ro.Close()
	s.journal.f = good
	commitUIDs(t, s, "INBOX", true, 2)
	got := readJournal(t, dir, JournalPos{}, s.JournalEnd())
	if len(got) != 2 || got[1].ID != "acct/INBOX/7/2" || got[1].Seq != 2 {
		t.Errorf("journal after the failure: %+v", got)
	}
}

// TestJournal_groupCommit: 32 mailboxes commit at once while the first
// fsync is held back until all have written: one or two fsyncs make all 32
// durable (not 32 in a row), the entries are numbered 1…32 without a gap,
// each record once, and every checkpoint moved.
func TestJournal_groupCommit(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	const n = 32
	release := make(chan struct{})
	var once sync.Once
	s.journal.testHookSync = func() {
		once.Do(func() { <-release })
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			b := s.NewBatch("acct", fmt.Sprintf("box%02d", i), 7, '/')
			addMsg(t, b, 1, simpleMsg)
			if _, err := b.Commit(1); err != nil {
				errs <- err
			}
		})
	}
	// All 32 written (the first waiting in its fsync), then let it go.
	for deadline := time.Now().Add(10 * time.Second); ; {
		s.journal.mu.Lock()
		written := s.journal.next.Seq
		s.journal.mu.Unlock()
		if written == n+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d entries written", written-1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if syncs := s.journal.syncs.Load(); syncs > 2 {
		t.Errorf("%d journal fsyncs for %d concurrent commits, want ≤ 2", syncs, n)
	}
	got := readJournal(t, dir, JournalPos{}, s.JournalEnd())
	seen := map[string]bool{}
	for i, e := range got {
		if e.Seq != uint64(i+1) {
			t.Errorf("entry %d has seq %d", i, e.Seq)
		}
		if seen[e.ID] {
			t.Errorf("%s journalled twice", e.ID)
		}
		seen[e.ID] = true
	}
	if len(got) != n {
		t.Errorf("%d entries, want %d", len(got), n)
	}
	for i := range n {
		if st, _ := s.State("acct", fmt.Sprintf("box%02d", i)); st.LastUID != 1 {
			t.Errorf("box%02d checkpoint at %d", i, st.LastUID)
		}
	}
}
