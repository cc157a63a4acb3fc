package jsonstore

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func checkpointFiles(t *testing.T, out string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(out, ".mailtap", "state"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			t.Errorf("directory %s in the checkpoint dir", e.Name())
		}
		names = append(names, e.Name())
	}
	return names
}

func wantState(t *testing.T, s *Store, account, mailbox string, uv, last uint32) {
	t.Helper()
	st, ok := s.State(account, mailbox)
	if !ok || st.UIDValidity != uv || st.LastUID != last || st.Account != account || st.Mailbox != mailbox {
		t.Errorf("State(%q, %q) = %+v %v, want uidvalidity %d last_uid %d", account, mailbox, st, ok, uv, last)
	}
}

func TestCheckpoint_roundTrip(t *testing.T) {
	out := t.TempDir()
	s := openStore(t, out, Options{})
	if err := s.SetState("acct", "INBOX", 5, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.SetState("acct", "Lists/go", 6, 3); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// One self-describing file per mailbox, under its documented name.
	b, err := os.ReadFile(CheckpointPath(out, "acct", "Lists/go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"version": 1`, `"account": "acct"`, `"mailbox": "Lists/go"`, `"uidvalidity": 6`, `"last_uid": 3`, `"updated_at"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("checkpoint file lacks %s:\n%s", want, b)
		}
	}
	if n := len(checkpointFiles(t, out)); n != 2 {
		t.Errorf("%d checkpoint files, want 2", n)
	}
	if _, err := os.Stat(filepath.Join(out, ".mailtap", "state.json")); !os.IsNotExist(err) {
		t.Errorf("state.json written: %v", err)
	}

	m, err := ReadCheckpoint(out)
	if err != nil {
		t.Fatal(err)
	}
	if st := m[CheckpointKey("acct", "INBOX")]; len(m) != 2 || st.UIDValidity != 5 || st.LastUID != 10 {
		t.Errorf("ReadCheckpoint = %+v", m)
	}

	s2 := openStore(t, out, Options{})
	wantState(t, s2, "acct", "INBOX", 5, 10)
	wantState(t, s2, "acct", "Lists/go", 6, 3)
	if _, ok := s2.State("acct", "Nope"); ok {
		t.Error("State of an unknown mailbox is ok")
	}
}

// TestCheckpoint_manyMailboxes: a commit rewrites its own mailbox's file
// and no other.
func TestCheckpoint_manyMailboxes(t *testing.T) {
	out := t.TempDir()
	s := openStore(t, out, Options{})
	const n = 1000
	for i := range n {
		if err := s.SetState("acct"+strconv.Itoa(i%7), "box"+strconv.Itoa(i), 1, uint32(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	before := map[string]os.FileInfo{}
	for _, name := range checkpointFiles(t, out) {
		fi, err := os.Stat(filepath.Join(out, ".mailtap", "state", name))
		if err != nil {
			t.Fatal(err)
		}
		before[name] = fi
	}
	if len(before) != n {
		t.Fatalf("%d checkpoint files, want %d", len(before), n)
	}
	b := s.NewBatch("acct3", "box500", 1, '/')
	addMsg(t, b, 600, simpleMsg)
	if _, err := b.Commit(600); err != nil {
		t.Fatal(err)
	}
	changed := 0
	for name, fi := range before {
		now, err := os.Stat(filepath.Join(out, ".mailtap", "state", name))
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(fi, now) {
			changed++
			if name != CheckpointFileName("acct3", "box500") {
				t.Errorf("commit to acct3/box500 rewrote %s", name)
			}
		}
	}
	if changed != 1 {
		t.Errorf("commit rewrote %d checkpoint files, want 1", changed)
	}
	s.Close()
	s2 := openStore(t, out, Options{})
	for i := range n {
		last := uint32(i + 1)
		if i == 500 {
			last = 600
		}
		wantState(t, s2, "acct"+strconv.Itoa(i%7), "box"+strconv.Itoa(i), 1, last)
	}
}

func writeLegacy(t *testing.T, out string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "legacy-state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(out, ".mailtap"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, ".mailtap", "state.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func wantLegacyStates(t *testing.T, s *Store) {
	t.Helper()
	wantState(t, s, "acct", "INBOX", 1700000001, 42)
	wantState(t, s, "acct", "INBOX/Sub", 7, 9)
	wantState(t, s, "other", "Входящие", 3, 1000)
}

// TestCheckpoint_migratesLegacyStateJSON: a state.json as the previous
// version wrote it (testdata/legacy-state.json) becomes per-mailbox files
// and is kept as state.json.migrated.
func TestCheckpoint_migratesLegacyStateJSON(t *testing.T) {
	out := t.TempDir()
	legacy := writeLegacy(t, out)

	// ReadCheckpoint reads a state.json not migrated yet.
	m, err := ReadCheckpoint(out)
	if err != nil {
		t.Fatal(err)
	}
	if st := m[CheckpointKey("other", "Входящие")]; len(m) != 3 || st.LastUID != 1000 {
		t.Errorf("ReadCheckpoint before migration = %+v", m)
	}

	s := openStore(t, out, Options{})
	wantLegacyStates(t, s)
	if st, _ := s.State("acct", "INBOX/Sub"); !st.UpdatedAt.Equal(time.Date(2026, 11, 30, 10, 0, 1, 123456000, time.UTC)) {
		t.Errorf("updated_at = %v", st.UpdatedAt)
	}
	if _, err := os.Stat(filepath.Join(out, ".mailtap", "state.json")); !os.IsNotExist(err) {
		t.Errorf("state.json still there after migration: %v", err)
	}
	kept, err := os.ReadFile(filepath.Join(out, ".mailtap", "state.json.migrated"))
	if err != nil || !bytes.Equal(kept, legacy) {
		t.Errorf("state.json.migrated = %q, %v; want the old file unchanged", kept, err)
	}
	if n := len(checkpointFiles(t, out)); n != 3 {
		t.Errorf("%d checkpoint files, want 3", n)
	}
	if err := s.SetState("acct", "INBOX", 1700000001, 43); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// The next start reads the files; the kept copy is not migrated again.
	s2 := openStore(t, out, Options{})
	wantState(t, s2, "acct", "INBOX", 1700000001, 43)
	wantState(t, s2, "other", "Входящие", 3, 1000)
}

// TestCheckpoint_migrationRepeatedAfterCrash: a crash in the middle of a
// migration leaves state.json and some of the files; the next Open
// finishes it, and a file present wins over state.json (it is at least as
// recent, and an older checkpoint only costs an idempotent re-capture).
func TestCheckpoint_migrationRepeatedAfterCrash(t *testing.T) {
	out := t.TempDir()
	writeLegacy(t, out)
	// What the interrupted migration got to: one file as migrated, one
	// that has moved on since (a downgrade and upgrade does that too).
	bare := &Store{stateDir: filepath.Join(out, ".mailtap"), tmpDir: filepath.Join(out, ".mailtap", "tmp")}
	for _, d := range []string{bare.tmpDir, bare.checkpointDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range []MailboxState{
		{Account: "acct", Mailbox: "INBOX", UIDValidity: 1700000001, LastUID: 42},
		{Account: "other", Mailbox: "Входящие", UIDValidity: 4, LastUID: 5},
	} {
		if err := bare.writeCheckpointFile(st, true); err != nil {
			t.Fatal(err)
		}
	}
	// And a state.json.migrated of an earlier migration, replaced now.
	if err := os.WriteFile(filepath.Join(out, ".mailtap", "state.json.migrated"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}

	s := openStore(t, out, Options{})
	wantState(t, s, "acct", "INBOX", 1700000001, 42)
	wantState(t, s, "acct", "INBOX/Sub", 7, 9)
	wantState(t, s, "other", "Входящие", 4, 5) // the file wins
	if _, err := os.Stat(filepath.Join(out, ".mailtap", "state.json")); !os.IsNotExist(err) {
		t.Errorf("state.json still there: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, ".mailtap", "state.json.migrated")); !bytes.Contains(b, []byte(`"mailboxes"`)) {
		t.Errorf("state.json.migrated = %q, want the last state.json", b)
	}
	s.Close()
	s2 := openStore(t, out, Options{})
	wantState(t, s2, "acct", "INBOX/Sub", 7, 9)
	wantState(t, s2, "other", "Входящие", 4, 5)
}

var checkpointNameRE = regexp.MustCompile(`^[A-Za-z0-9_]*-[0-9a-f]{16}\.json$`)

func TestCheckpoint_hostileNames(t *testing.T) {
	long := strings.Repeat("x", 300)
	names := [][2]string{
		{"acct", "../x"}, {"acct", "../../etc/passwd"}, {"../x", "INBOX"},
		{"acct", "CON"}, {"acct", "con"}, {"CON", "NUL"}, {"acct", "COM1.txt"},
		{"acct", "a/b"}, {"acct", "a.b"}, {"acct", "a_b"}, {"acct", "a\\b"},
		{"a/b", "c"}, {"a", "b/c"},
		{"acct", "Входящие"}, {"acct", "日本語/メール"}, {"acct", "e\u0301"}, {"acct", "\u00e9"},
		{"acct", long}, {"acct", long + "y"}, {long, long},
		{"acct", "INBOX"}, {"acct", "inbox"}, {"acct", "Inbox"},
		{"acct", "trailing. "}, {"acct", "a\x00b"}, {"acct", "\x01\x7f"}, {"acct", ""},
	}
	out := t.TempDir()
	s := openStore(t, out, Options{})
	for i, n := range names {
		if err := s.SetState(n[0], n[1], 1, uint32(i+1)); err != nil {
			t.Fatalf("SetState(%q, %q): %v", n[0], n[1], err)
		}
	}
	files := checkpointFiles(t, out)
	if len(files) != len(names) {
		t.Errorf("%d checkpoint files for %d mailboxes", len(files), len(names))
	}
	folded := map[string]bool{}
	for _, f := range files {
		if !checkpointNameRE.MatchString(f) || len(f) > 70 {
			t.Errorf("checkpoint file name %q (%d bytes) is not safe", f, len(f))
		}
		if windowsReserved[strings.ToUpper(strings.SplitN(f, ".", 2)[0])] {
			t.Errorf("checkpoint file name %q is a Windows device name", f)
		}
		if folded[strings.ToLower(f)] {
			t.Errorf("checkpoint file names %q clash on a case-insensitive filesystem", f)
		}
		folded[strings.ToLower(f)] = true
	}
	// Nothing escaped the checkpoint dir.
	if ents, _ := os.ReadDir(filepath.Join(out, ".mailtap")); len(ents) > 4 {
		t.Errorf(".mailtap holds %v", ents)
	}
	s.Close()
	s2 := openStore(t, out, Options{})
	for i, n := range names {
		wantState(t, s2, n[0], n[1], 1, uint32(i+1))
	}
}

// TestCheckpoint_concurrentSetState runs SetState from many goroutines on
// different mailboxes and on one: each mailbox ends at its highest UID, and
// the shared one never reads lower than it read before.
func TestCheckpoint_concurrentSetState(t *testing.T) {
	out := t.TempDir()
	s := openStore(t, out, Options{})
	const workers, rounds = 16, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() { // its own mailbox
			defer wg.Done()
			for r := range rounds {
				if err := s.SetState("acct", "own"+strconv.Itoa(w), 1, uint32(r+1)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		wg.Add(1)
		go func() { // the shared mailbox, UIDs in random order
			defer wg.Done()
			for _, uid := range rand.Perm(rounds * 5) {
				if err := s.SetState("acct", "shared", 9, uint32(uid+1)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	watched := make(chan error)
	go func() {
		var last uint32
		for {
			select {
			case <-stop:
				watched <- nil
				return
			default:
			}
			st, _ := s.State("acct", "shared")
			if st.LastUID < last {
				watched <- fmt.Errorf("shared mailbox went back from %d to %d", last, st.LastUID)
				return
			}
			last = st.LastUID
		}
	}()
	wg.Wait()
	close(stop)
	if err := <-watched; err != nil {
		t.Error(err)
	}
	wantState(t, s, "acct", "shared", 9, rounds*5)
	s.Close()
	s2 := openStore(t, out, Options{})
	wantState(t, s2, "acct", "shared", 9, rounds*5)
	for w := range workers {
		wantState(t, s2, "acct", "own"+strconv.Itoa(w), 1, rounds)
	}
}

// TestCheckpoint_writeOfOneMailboxDoesNotBlockOthers: while a mailbox's
// checkpoint write is in progress, other mailboxes' writes complete and
// its last durable checkpoint can be read.
func TestCheckpoint_writeOfOneMailboxDoesNotBlockOthers(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	if err := s.SetState("acct", "slow", 1, 5); err != nil {
		t.Fatal(err)
	}
	inWrite, release := make(chan struct{}), make(chan struct{})
	s.testHookCheckpointWrite = func(account, mailbox string) {
		if mailbox == "slow" {
			close(inWrite)
			<-release
		}
	}
	slowDone := make(chan error)
	go func() { slowDone <- s.SetState("acct", "slow", 1, 6) }()
	<-inWrite
	done := make(chan error)
	go func() {
		for i := range 10 {
			if err := s.SetState("acct", "fast"+strconv.Itoa(i), 1, 1); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SetState of other mailboxes waits for a write of another one")
	}
	wantState(t, s, "acct", "slow", 1, 5) // not durable yet
	close(release)
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	wantState(t, s, "acct", "slow", 1, 6)
}

// TestCheckpoint_failedWriteLeavesState: SetState that cannot write keeps
// the checkpoint in memory where it was, for a known and an unknown mailbox.
func TestCheckpoint_failedWriteLeavesState(t *testing.T) {
	out := t.TempDir()
	s := openStore(t, out, Options{})
	if err := s.SetState("acct", "INBOX", 5, 10); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(out, ".mailtap", "tmp")
	if err := os.RemoveAll(tmp); err != nil { // fails the temp file, even as root
		t.Fatal(err)
	}
	if err := s.SetState("acct", "INBOX", 5, 11); err == nil {
		t.Fatal("SetState without a temp dir succeeded")
	}
	if err := s.SetState("acct", "INBOX", 6, 0); err == nil {
		t.Fatal("SetState without a temp dir succeeded")
	}
	if err := s.SetState("acct", "New", 1, 1); err == nil {
		t.Fatal("SetState without a temp dir succeeded")
	}
	wantState(t, s, "acct", "INBOX", 5, 10)
	if _, ok := s.State("acct", "New"); ok {
		t.Error("failed first SetState made the mailbox known")
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.SetState("acct", "INBOX", 5, 11); err != nil {
		t.Fatal(err)
	}
	wantState(t, s, "acct", "INBOX", 5, 11)
}

func TestCheckpoint_corruptFileRefused(t *testing.T) {
	for _, tc := range []struct {
		name, content, want string
	}{
		{"garbage", `{"version": 1, "account": "acct", "mail`, "move it away to start that mailbox over"},
		{"empty", ``, "move it away to start that mailbox over"},
		{"newer", `{"version": 2, "account": "acct", "mailbox": "INBOX"}`, "newer mailtap"},
		{"misnamed", `{"version": 1, "account": "acct", "mailbox": "Other", "uidvalidity": 1, "last_uid": 1}`, "whose checkpoint is " + CheckpointFileName("acct", "Other")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			s := openStore(t, out, Options{})
			if err := s.SetState("acct", "INBOX", 1, 1); err != nil {
				t.Fatal(err)
			}
			s.Close()
			path := CheckpointPath(out, "acct", "INBOX")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Open(out, Options{})
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v, want an error naming %s and saying %q", err, path, tc.want)
			}
			if _, err := ReadCheckpoint(out); err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("ReadCheckpoint = %v, want an error naming %s", err, path)
			}
			// Moving it away is the documented way out.
			if err := os.Rename(path, filepath.Join(out, "moved")); err != nil {
				t.Fatal(err)
			}
			s2, err := Open(out, Options{})
			if err != nil {
				t.Fatal(err)
			}
			s2.Close()
		})
	}
}
