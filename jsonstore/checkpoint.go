package jsonstore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The checkpoint: one small file per mailbox,
// <out>/.mailtap/state/<readable prefix>-<hash>.json, each written with the
// atomic recipe (temp file in .mailtap/tmp, fsync, rename, fsync of the
// directory). A commit rewrites its own mailbox's file only, so its cost
// does not grow with the number of mailboxes, and the store-wide lock is
// never held during the write: mailboxes commit in parallel, and each
// mailbox's writes are ordered by its own lock.
//
// Older versions kept every mailbox in one state.json, rewritten whole on
// every commit. Open migrates it (migrateLegacy) and keeps it as
// state.json.migrated for a downgrade.

// MailboxState is the checkpoint of one mailbox: every UID ≤ LastUID under
// UIDValidity has a durable record (or was deliberately skipped by backfill).
type MailboxState struct {
	Account     string    `json:"account"`
	Mailbox     string    `json:"mailbox"`
	UIDValidity uint32    `json:"uidvalidity"`
	LastUID     uint32    `json:"last_uid"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// checkpointVersion is the version of a per-mailbox checkpoint file.
const checkpointVersion = 1

// checkpointEntry is the content of one per-mailbox checkpoint file:
// self-describing, so the file name need not be decoded.
type checkpointEntry struct {
	Version int `json:"version"`
	MailboxState
}

// legacyCheckpoint is the state.json of older versions.
type legacyCheckpoint struct {
	Version   int                      `json:"version"`
	Mailboxes map[string]*MailboxState `json:"mailboxes"`
}

const (
	checkpointDirName = "state"      // <out>/.mailtap/state/
	legacyName        = "state.json" // <out>/.mailtap/state.json, before per-mailbox files
	legacyMigrated    = "state.json.migrated"
)

// cpKey names a mailbox without the ambiguity of "account/mailbox".
type cpKey struct{ account, mailbox string }

// cpEntry is one mailbox's checkpoint in memory.
type cpEntry struct {
	write sync.Mutex   // orders this mailbox's writes; held during its I/O
	st    MailboxState // the durable checkpoint; guarded by Store.mu
	ok    bool         // st is set; guarded by Store.mu
}

func stateKey(account, mailbox string) string { return account + "/" + mailbox }

// CheckpointKey is the key of a mailbox in ReadCheckpoint's map.
func CheckpointKey(account, mailbox string) string { return stateKey(account, mailbox) }

// checkpointPrefixBytes bounds the readable part of a checkpoint file name.
const checkpointPrefixBytes = 48

// CheckpointFileName is the name of a mailbox's checkpoint file in
// <out>/.mailtap/state/: a readable prefix of the account and mailbox in
// ASCII letters, digits and "_" (so no separator, dot, device name, case
// folding or Unicode normalisation can make two mailboxes share a file,
// or a file escape the folder), then 16 hex digits of SHA-256 of the
// exact names, which tell apart names the prefix maps alike ("a/b" and
// "a.b", "INBOX" and "inbox"). At most 70 bytes whatever the names.
func CheckpointFileName(account, mailbox string) string {
	sum := sha256.Sum256([]byte(account + "\x00" + mailbox))
	var b strings.Builder
	under := false
	for _, r := range account + "_" + mailbox {
		if b.Len() >= checkpointPrefixBytes {
			break
		}
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
			under = false
		} else if !under {
			b.WriteByte('_')
			under = true
		}
	}
	return b.String() + "-" + hex.EncodeToString(sum[:8]) + ".json"
}

// CheckpointPath is the checkpoint file of a mailbox in the output dir out.
func CheckpointPath(out, account, mailbox string) string {
	return filepath.Join(out, ".mailtap", checkpointDirName, CheckpointFileName(account, mailbox))
}

func (s *Store) checkpointDir() string { return filepath.Join(s.stateDir, checkpointDirName) }

// loadCheckpoint reads the per-mailbox checkpoints, migrating a state.json
// first if there is one.
func (s *Store) loadCheckpoint() error {
	legacy, hasLegacy, err := readLegacy(s.stateDir)
	if err != nil {
		return err
	}
	dir := s.checkpointDir()
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create checkpoint dir: %w", err)
		}
		if err := syncDir(s.stateDir); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("checkpoint dir: %w", err)
	}
	files, err := readCheckpointDir(dir)
	if err != nil {
		return err
	}
	if hasLegacy {
		if err := s.migrateLegacy(legacy, files); err != nil {
			return err
		}
	}
	s.cps = make(map[cpKey]*cpEntry, len(files))
	for k, st := range files {
		s.cps[k] = &cpEntry{st: st, ok: true}
	}
	return nil
}

// migrateLegacy writes every mailbox of state.json that has no file yet
// (a file present was written by an earlier, interrupted migration or
// since; it wins), makes them durable, and only then renames state.json to
// state.json.migrated. A crash at any point leaves either state.json,
// which the next Open migrates again, or every file. files gains the
// migrated entries.
func (s *Store) migrateLegacy(legacy map[cpKey]MailboxState, files map[cpKey]MailboxState) error {
	dir := s.checkpointDir()
	for k, st := range legacy {
		if _, ok := files[k]; ok {
			continue
		}
		if err := s.writeCheckpointFile(st, false); err != nil {
			return fmt.Errorf("migrate checkpoint of %q: %w", stateKey(k.account, k.mailbox), err)
		}
		files[k] = st
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("migrate checkpoint: %w", err)
	}
	from := filepath.Join(s.stateDir, legacyName)
	if err := os.Rename(from, filepath.Join(s.stateDir, legacyMigrated)); err != nil {
		return fmt.Errorf("migrate checkpoint: %w", err)
	}
	if err := syncDir(s.stateDir); err != nil {
		return fmt.Errorf("migrate checkpoint: %w", err)
	}
	return nil
}

// readLegacy reads <stateDir>/state.json; ok is false if there is none.
func readLegacy(stateDir string) (_ map[cpKey]MailboxState, ok bool, _ error) {
	path := filepath.Join(stateDir, legacyName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read checkpoint: %w", err)
	}
	var f legacyCheckpoint
	if err := json.Unmarshal(b, &f); err != nil {
		// The checkpoint is written atomically, so this is outside damage.
		// Refuse rather than silently re-capture or skip mail.
		return nil, false, fmt.Errorf("checkpoint %s is corrupt: %w (move it away to start over; records already written are kept)", path, err)
	}
	m := make(map[cpKey]MailboxState, len(f.Mailboxes))
	for key, st := range f.Mailboxes {
		if st == nil {
			continue
		}
		if st.Account == "" && st.Mailbox == "" {
			// Every version wrote both; a hand-edited file may not.
			st.Account, st.Mailbox, _ = strings.Cut(key, "/")
		}
		m[cpKey{st.Account, st.Mailbox}] = *st
	}
	return m, true, nil
}

// readCheckpointDir reads every checkpoint file in dir (none if dir does
// not exist). A file that does not parse, or whose name is not the one its
// content calls for, is refused with what to do: each is written
// atomically, so either is outside damage, and guessing could skip mail.
func readCheckpointDir(dir string) (map[cpKey]MailboxState, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[cpKey]MailboxState{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint dir: %w", err)
	}
	m := make(map[cpKey]MailboxState, len(ents))
	for _, e := range ents {
		name := e.Name()
		// Only mailtap writes here, always *.json; skip what a file
		// manager or editor may leave (.DS_Store, backups).
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".json") || e.IsDir() {
			continue
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read checkpoint: %w", err)
		}
		var ce checkpointEntry
		err = json.Unmarshal(b, &ce)
		if err == nil && ce.Version != checkpointVersion {
			err = fmt.Errorf("version %d, want %d (written by a newer mailtap?)", ce.Version, checkpointVersion)
		}
		if err == nil && ce.Account == "" {
			err = errors.New("no account")
		}
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s is corrupt: %w (move it away to start that mailbox over; records already written are kept)", path, err)
		}
		if want := CheckpointFileName(ce.Account, ce.Mailbox); name != want {
			return nil, fmt.Errorf("checkpoint %s holds account %q mailbox %q, whose checkpoint is %s: move it away, or rename it if it is that mailbox's", path, ce.Account, ce.Mailbox, want)
		}
		m[cpKey{ce.Account, ce.Mailbox}] = ce.MailboxState
	}
	return m, nil
}

// writeCheckpointFile writes one mailbox's checkpoint: temp file, fsync,
// rename, and with syncDirToo the directory fsync that makes it durable.
func (s *Store) writeCheckpointFile(st MailboxState, syncDirToo bool) error {
	b, err := json.Marshal(checkpointEntry{Version: checkpointVersion, MailboxState: st}, jsontext.WithIndent("  "))
	if err != nil {
		return err
	}
	path := filepath.Join(s.checkpointDir(), CheckpointFileName(st.Account, st.Mailbox))
	if err := s.writeFileSynced(path, append(b, '\n')); err != nil {
		return err
	}
	if syncDirToo {
		return syncDir(filepath.Dir(path))
	}
	return nil
}

// writeFileSynced is the atomic-write recipe for a single small file, but
// for the directory fsync, which the caller does.
func (s *Store) writeFileSynced(path string, data []byte) error {
	f, err := os.CreateTemp(s.tmpDir, "state-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// State returns the checkpoint of a mailbox, ok=false if it was never seen.
// It does not wait for a write in progress: it returns the last durable
// checkpoint.
func (s *Store) State(account, mailbox string) (MailboxState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.cps[cpKey{account, mailbox}]
	if e == nil || !e.ok {
		return MailboxState{}, false
	}
	return e.st, true
}

// SetState records a checkpoint durably. LastUID only moves forward within a
// UIDVALIDITY; a new UIDVALIDITY replaces the entry. A failed write leaves
// the checkpoint as it was. Calls for different mailboxes run in parallel;
// calls for one mailbox are ordered.
func (s *Store) SetState(account, mailbox string, uidValidity, lastUID uint32) error {
	return s.setState(account, mailbox, uidValidity, lastUID, false)
}

func (s *Store) setState(account, mailbox string, uidValidity, lastUID uint32, rewind bool) error {
	k := cpKey{account, mailbox}
	s.mu.Lock()
	e := s.cps[k]
	if e == nil {
		e = &cpEntry{}
		s.cps[k] = e
	}
	s.mu.Unlock()

	e.write.Lock()
	defer e.write.Unlock()
	if s.testHookCheckpointWrite != nil {
		s.testHookCheckpointWrite(account, mailbox)
	}
	// Only a holder of e.write changes e.st, so it cannot change under us.
	s.mu.Lock()
	cur, ok := e.st, e.ok
	s.mu.Unlock()
	if !rewind && ok && cur.UIDValidity == uidValidity && cur.LastUID >= lastUID {
		return nil
	}
	next := MailboxState{Account: account, Mailbox: mailbox,
		UIDValidity: uidValidity, LastUID: lastUID, UpdatedAt: time.Now().UTC()}
	if err := s.writeCheckpointFile(next, true); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	s.mu.Lock()
	e.st, e.ok = next, true
	s.mu.Unlock()
	return nil
}

// ReadCheckpoint reads the checkpoints of the output dir out without
// opening (and locking) the store, for `mailtap check` (which may run
// beside a live mailtap) and for tests. Keys are CheckpointKey. A missing
// checkpoint is no checkpoints; a state.json not migrated yet is read too,
// its entries giving way to per-mailbox files as Open's migration does.
func ReadCheckpoint(out string) (map[string]MailboxState, error) {
	stateDir := filepath.Join(out, ".mailtap")
	// state.json first: a live mailtap migrating it renames it only after
	// every file is durable, so if it is gone now, the files are whole.
	legacy, _, err := readLegacy(stateDir)
	if err != nil {
		return nil, err
	}
	files, err := readCheckpointDir(filepath.Join(stateDir, checkpointDirName))
	if err != nil {
		return nil, err
	}
	m := make(map[string]MailboxState, len(files)+len(legacy))
	for k, st := range legacy {
		m[stateKey(k.account, k.mailbox)] = st
	}
	for k, st := range files {
		m[stateKey(k.account, k.mailbox)] = st
	}
	return m, nil
}
