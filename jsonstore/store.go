// Package jsonstore owns the durable store under the output dir: batches
// of records written with group commit (temp file, fsync, rename, directory
// sync), the file layout, the checkpoint file, the lock that keeps a
// second process out, and the scan of records already on disk. It parses
// messages with mailparse and encodes them with record; it knows nothing of
// IMAP sessions or UIs.
package jsonstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mailtap/mailparse"
	"mailtap/record"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/sys/unix"
)

// ErrLocked means another mailtap process holds the output dir.
var ErrLocked = errors.New("output dir is in use by another mailtap process")

// Options says how records are written.
type Options struct {
	Pretty          bool  // indent JSON
	SaveAttachments bool  // output.attachments = "save"
	SaveRaw         bool  // also write <base>.eml
	MaxBodyBytes    int64 // see mailparse.ParseOptions

	namedTemps bool // tests: never use unnamed temp files
}

// Store is an output dir opened for writing. It is safe for concurrent use by
// the sessions of several mailboxes.
type Store struct {
	dir      string // absolute <out>
	stateDir string // <out>/.mailtap
	tmpDir   string // <out>/.mailtap/tmp: same filesystem, so rename is atomic
	// tmpDirFile is tmpDir held open: record temp files are created and
	// renamed relative to it, which spares the kernel a walk of the whole
	// path for each (a few percent of a backfill's CPU).
	tmpDirFile *os.File
	opts       Options
	lock       *os.File

	// Unnamed record temp files (unnamed.go): at most maxUnnamed open at
	// once (0: not supported here), linked through /proc if linkByProc.
	maxUnnamed  atomic.Int64
	linkByProc  bool
	unnamedOpen atomic.Int64

	// Semaphores shared by all batches: parsers bounds the messages parsed
	// in parallel by AddBytes (CPU-bound, one per core); recordWriters
	// bounds the goroutines encoding and writing records.
	parsers       chan struct{}
	recordWriters chan struct{}

	mu    sync.Mutex
	state checkpointFile
	seq   atomic.Uint64 // temp name counter
}

// Open creates the output dir if needed, takes its lock (ErrLocked if held),
// removes temp files a crash left behind and loads the checkpoint.
func Open(dir string, opts Options) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("output dir %q: %w", dir, err)
	}
	s := &Store{dir: abs, stateDir: filepath.Join(abs, ".mailtap"), opts: opts,
		parsers: make(chan struct{}, runtime.GOMAXPROCS(0)), recordWriters: make(chan struct{}, 4)}
	s.tmpDir = filepath.Join(s.stateDir, "tmp")
	if err := os.MkdirAll(s.tmpDir, 0o755); err != nil {
		return nil, fmt.Errorf("create output dir: %w (check that %s is writable)", err, abs)
	}
	if err := s.takeLock(); err != nil {
		return nil, err
	}
	if err := s.cleanTmp(); err != nil {
		s.Close()
		return nil, err
	}
	if s.tmpDirFile, err = os.Open(s.tmpDir); err != nil {
		s.Close()
		return nil, fmt.Errorf("open temp dir: %w", err)
	}
	if !opts.namedTemps {
		s.probeUnnamed()
	}
	if err := s.loadCheckpoint(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Dir is the absolute output dir.
func (s *Store) Dir() string { return s.dir }

// StateDir is <out>/.mailtap, where mailtap keeps its own files (logs too).
func (s *Store) StateDir() string { return s.stateDir }

// TempDir is <out>/.mailtap/tmp, on the same filesystem as the records and
// emptied by Open, so scratch files a crash leaves behind do not pile up.
func (s *Store) TempDir() string { return s.tmpDir }

func (s *Store) takeLock() error {
	path := filepath.Join(s.stateDir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(owner))
			if pid == "" {
				pid = "unknown"
			}
			return fmt.Errorf("%w: %s (pid %s); stop it or choose another --out", ErrLocked, s.dir, pid)
		}
		return fmt.Errorf("lock %s: %w", path, err)
	}
	// The pid is informational; the flock is what excludes, and it dies with
	// the process, so a crash never leaves a stale lock.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	s.lock = f
	return nil
}

func (s *Store) cleanTmp() error {
	entries, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return fmt.Errorf("read temp dir: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.tmpDir, e.Name())); err != nil {
			return fmt.Errorf("remove leftover temp file: %w", err)
		}
	}
	return nil
}

// Close releases the lock. Batches must be committed or discarded first.
func (s *Store) Close() error {
	if s.tmpDirFile != nil {
		s.tmpDirFile.Close()
		s.tmpDirFile = nil
	}
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// ---- checkpoint ----

// MailboxState is the checkpoint of one mailbox: every UID ≤ LastUID under
// UIDValidity has a durable record (or was deliberately skipped by backfill).
type MailboxState struct {
	Account     string    `json:"account"`
	Mailbox     string    `json:"mailbox"`
	UIDValidity uint32    `json:"uidvalidity"`
	LastUID     uint32    `json:"last_uid"`
	UpdatedAt   time.Time `json:"updated_at"`
}

type checkpointFile struct {
	Version   int                      `json:"version"`
	Mailboxes map[string]*MailboxState `json:"mailboxes"`
}

func stateKey(account, mailbox string) string { return account + "/" + mailbox }

func (s *Store) checkpointPath() string { return filepath.Join(s.stateDir, "state.json") }

func (s *Store) loadCheckpoint() error {
	s.state = checkpointFile{Version: 1, Mailboxes: map[string]*MailboxState{}}
	b, err := os.ReadFile(s.checkpointPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &s.state); err != nil {
		// The checkpoint is written atomically, so this is outside damage.
		// Refuse rather than silently re-capture or skip mail.
		return fmt.Errorf("checkpoint %s is corrupt: %w (move it away to start over; records already written are kept)", s.checkpointPath(), err)
	}
	if s.state.Mailboxes == nil {
		s.state.Mailboxes = map[string]*MailboxState{}
	}
	return nil
}

// State returns the checkpoint of a mailbox, ok=false if it was never seen.
func (s *Store) State(account, mailbox string) (MailboxState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.state.Mailboxes[stateKey(account, mailbox)]
	if !ok {
		return MailboxState{}, false
	}
	return *st, true
}

// SetState records a checkpoint durably. LastUID only moves forward within a
// UIDVALIDITY; a new UIDVALIDITY replaces the entry.
func (s *Store) SetState(account, mailbox string, uidValidity, lastUID uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setStateLocked(account, mailbox, uidValidity, lastUID)
}

func (s *Store) setStateLocked(account, mailbox string, uidValidity, lastUID uint32) error {
	key := stateKey(account, mailbox)
	cur, ok := s.state.Mailboxes[key]
	if ok && cur.UIDValidity == uidValidity && cur.LastUID >= lastUID {
		return nil
	}
	prev := cur
	s.state.Mailboxes[key] = &MailboxState{Account: account, Mailbox: mailbox,
		UIDValidity: uidValidity, LastUID: lastUID, UpdatedAt: time.Now().UTC()}
	b, err := json.Marshal(s.state, jsontext.WithIndent("  "))
	if err == nil {
		err = s.writeFileDurable(s.checkpointPath(), append(b, '\n'))
	}
	if err != nil {
		if prev != nil {
			s.state.Mailboxes[key] = prev
		} else {
			delete(s.state.Mailboxes, key)
		}
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// writeFileDurable is the atomic-write recipe for a single small file.
func (s *Store) writeFileDurable(path string, data []byte) error {
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
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// tempName is unique within the process; the lock keeps other processes
// out of the temp dir, and Open empties it.
func (s *Store) tempName(prefix string) string {
	return filepath.Join(s.tmpDir, s.tempBase(prefix))
}

func (s *Store) tempBase(prefix string) string {
	return prefix + "-" + strconv.FormatUint(s.seq.Add(1), 10)
}

// writeTemp creates name in the temp dir and writes data to it, through
// the held dir handle.
func (s *Store) writeTemp(name string, data []byte) (err error) {
	dirfd := int(s.tmpDirFile.Fd())
	var fd int
	for {
		fd, err = unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "create", Path: filepath.Join(s.tmpDir, name), Err: err}
	}
	err = writeAll(fd, data)
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(dirfd, name, 0)
		return &os.PathError{Op: "write", Path: filepath.Join(s.tmpDir, name), Err: err}
	}
	return nil
}

// renameInto moves a temp file (always in the temp dir: see tempName) into
// the directory dir (held open), as os.Rename would but without its extra
// lstat of the target and without walking either path again.
func (s *Store) renameInto(r rename, dir *os.File) error {
	err := unix.Renameat(int(s.tmpDirFile.Fd()), filepath.Base(r.from), int(dir.Fd()), filepath.Base(r.to))
	if err != nil {
		return &os.LinkError{Op: "rename", Old: r.from, New: r.to, Err: err}
	}
	return nil
}

// ---- batches ----

// Meta is what the IMAP session knows of a message besides its bytes.
type Meta struct {
	UID          uint32
	InternalDate time.Time
	Flags        []string
	Size         int64 // RFC822.SIZE; 0 means unknown (counted from the stream)
}

// Batch collects records of one mailbox that become durable together with
// one filesystem sync (group commit), after which the checkpoint advances.
type Batch struct {
	s           *Store
	account     string
	mailbox     string
	uidValidity uint32
	relDir      string // <account>/<mailbox…> relative to <out>

	items []*pendingRecord

	// Records are encoded and written to temp files by background writers
	// as soon as Finish has them, so the committer is left with syncing and
	// renaming while the session goroutine parses the next message.
	writers sync.WaitGroup
}

type pendingRecord struct {
	err     error // from the background writer
	uid     uint32
	pos     int            // position in the batch
	rec     *record.Record // until written
	final   string         // path of the record in <out>
	bytes   int64
	renames []rename     // attachments and .eml first, then the record if named
	unnamed *unnamedFile // the record's temp file, if unnamed
	summary record.Summary
}

type rename struct{ from, to string }

// NewBatch starts a batch for one mailbox. delim is the server's hierarchy
// delimiter (0 if unknown); "/" always separates folders.
func (s *Store) NewBatch(account, mailbox string, uidValidity uint32, delim rune) *Batch {
	return &Batch{s: s, account: account, mailbox: mailbox, uidValidity: uidValidity,
		relDir: MailboxRelDir(account, mailbox, delim)}
}

// Len is the number of records added and not yet committed.
func (b *Batch) Len() int { return len(b.items) }

// Pending is a message whose body has been parsed and whose temp files are
// written, waiting for the FETCH items that may follow the body (FLAGS,
// INTERNALDATE, RFC822.SIZE) before Finish adds it to the batch.
type Pending struct {
	uid     uint32
	rec     *record.Record
	counted int64
	renames []rename
}

// Parse reads one message body for uid and writes its attachments and raw
// copy (if configured) to temp files. Nothing is visible in <out> before
// Commit. An error means the body was not fully read or could not be
// written: nothing of it is kept.
func (b *Batch) Parse(uid uint32, body io.Reader) (_ *Pending, err error) {
	s := b.s
	base := RecordBaseName(b.uidValidity, uid)
	// p is a local, not the named result: "return nil, err" must not hide
	// the temp files the cleanup has to remove.
	p := &Pending{uid: uid}
	defer func() {
		if err != nil {
			p.Abandon()
		}
	}()

	counter := &countingReader{r: body}
	var src io.Reader = counter
	var raw *os.File
	if s.opts.SaveRaw {
		raw, err = os.Create(s.tempName("eml"))
		if err != nil {
			return nil, fmt.Errorf("uid %d: create raw copy: %w", uid, err)
		}
		p.renames = append(p.renames, rename{raw.Name(), filepath.Join(s.dir, b.relDir, base+".eml")})
		src = io.TeeReader(counter, raw)
	}

	opts := mailparse.ParseOptions{MaxBodyBytes: s.opts.MaxBodyBytes}
	var sink *attachmentSink
	if s.opts.SaveAttachments {
		sink = &attachmentSink{s: s, relDir: filepath.Join(b.relDir, base), used: map[string]bool{}}
		opts.Attachments = sink
	}
	rec, perr := mailparse.Parse(src, opts)
	if sink != nil {
		p.renames = append(p.renames, sink.renames...)
	}
	if perr == nil {
		// Parse may stop before EOF (an epilogue, a cut part): read the rest
		// so the raw copy is whole and the size counted.
		_, perr = io.Copy(io.Discard, src)
	}
	if raw != nil {
		if cerr := raw.Close(); perr == nil {
			perr = cerr
		}
	}
	if perr != nil {
		return nil, fmt.Errorf("uid %d: %w", uid, perr)
	}
	p.rec = rec
	p.counted = counter.n
	return p, nil
}

// Finish completes a parsed message with the session's metadata and adds
// it to the batch. The record itself is encoded and written at Commit, off
// the goroutine that reads the IMAP stream.
func (b *Batch) Finish(p *Pending, m Meta) error {
	it := &pendingRecord{uid: p.uid, pos: len(b.items)}
	b.fill(it, p, m)
	b.items = append(b.items, it)
	b.writers.Add(1)
	b.s.recordWriters <- struct{}{}
	go func() {
		defer func() { <-b.s.recordWriters; b.writers.Done() }()
		it.err = b.writeRecord(it)
	}()
	return nil
}

// fill completes a parsed message with the session's metadata.
func (b *Batch) fill(it *pendingRecord, p *Pending, m Meta) {
	rec := p.rec
	rec.SchemaVersion = record.SchemaVersion
	rec.ID = RecordID(b.account, b.mailbox, b.uidValidity, p.uid)
	rec.Account, rec.Mailbox = b.account, b.mailbox
	rec.UIDValidity, rec.UID = b.uidValidity, p.uid
	rec.InternalDate = m.InternalDate.UTC()
	rec.CapturedAt = time.Now().UTC()
	rec.Flags = append([]string{}, m.Flags...)
	rec.Size = m.Size
	if rec.Size == 0 {
		rec.Size = p.counted
	}
	rec.Normalize()
	it.rec = rec
	it.final = filepath.Join(b.s.dir, b.relDir, RecordBaseName(b.uidValidity, p.uid)+".json")
	it.renames = p.renames
	it.bytes = p.counted * boolInt(b.s.opts.SaveRaw)
	p.renames = nil
}

// AddBytes adds a message already read into memory (small messages, the
// common case): it is parsed, encoded and written to temp files on a
// worker, in parallel with other messages and with the IMAP stream, and
// waited for at Commit. It blocks only while every parser is busy, which
// bounds the bodies held in memory. raw must not be modified afterwards.
func (b *Batch) AddBytes(uid uint32, raw []byte, m Meta) {
	it := &pendingRecord{uid: uid, pos: len(b.items)}
	b.items = append(b.items, it)
	b.writers.Add(1)
	b.s.parsers <- struct{}{}
	go func() {
		defer func() { <-b.s.parsers; b.writers.Done() }()
		p, err := b.Parse(uid, bytes.NewReader(raw))
		if err != nil {
			it.err = err
			return
		}
		b.fill(it, p, m)
		it.err = b.writeRecord(it)
	}()
}

// recordBuffers recycles the buffers records are encoded into; a record's
// bytes are garbage once written to its temp file.
var recordBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledRecord keeps a rare huge record's buffer from being held forever.
const maxPooledRecord = 4 << 20

func (b *Batch) writeRecord(it *pendingRecord) error {
	buf := recordBuffers.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= maxPooledRecord {
			recordBuffers.Put(buf)
		}
	}()
	data, err := record.Append((*buf)[:0], it.rec, b.s.opts.Pretty)
	*buf = data[:0]
	if err != nil {
		return fmt.Errorf("uid %d: encode record: %w", it.uid, err)
	}
	// Only records past the first syncfsThreshold of a batch are unnamed:
	// such a batch is synced with syncfs, which covers the links too,
	// whereas a few records would need an fsync per file after linking,
	// slower than renames (7 ms against 3 ms for a one-record commit).
	var f *unnamedFile
	if it.pos >= syncfsThreshold {
		f, err = b.s.createUnnamed(data)
	}
	switch {
	case err != nil:
		return fmt.Errorf("uid %d: write record: %w", it.uid, err)
	case f != nil:
		it.unnamed = f
	default:
		name := b.s.tempBase("rec")
		if err := b.s.writeTemp(name, data); err != nil {
			return fmt.Errorf("uid %d: write record: %w", it.uid, err)
		}
		it.renames = append(it.renames, rename{filepath.Join(b.s.tmpDir, name), it.final})
	}
	it.bytes += int64(len(data))
	it.summary = record.SummaryOf(it.rec, it.final)
	it.rec = nil // the encoded copy is what counts now; free the memory
	return nil
}

// Abandon removes the temp files of a parsed message that will not be finished.
func (p *Pending) Abandon() {
	for _, r := range p.renames {
		os.Remove(r.from)
	}
	p.renames = nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Commit makes every added record durable and visible, then advances the
// checkpoint to advanceTo (0: leave it). Order: one sync of all temp data
// (syncfs for a batch, fsync per file for a few), renames and links into
// place (attachments before their record), then a second syncfs if
// anything was linked or else an fsync of each directory touched, then the
// checkpoint. A crash anywhere leaves either the old checkpoint (records
// are re-captured idempotently under the same names) or the new one with
// every record it covers on disk.
func (b *Batch) Commit(advanceTo uint32) (Committed, error) {
	s := b.s
	b.writers.Wait()
	if len(b.items) > 0 {
		var errs []error
		for _, it := range b.items {
			errs = append(errs, it.err)
		}
		if err := errors.Join(errs...); err != nil {
			b.Discard()
			return Committed{}, err
		}
		if err := s.syncTemp(b.items); err != nil {
			b.Discard()
			return Committed{}, err
		}
		if err := s.placeRecords(b.items); err != nil {
			b.Discard()
			return Committed{}, err
		}
	}
	var c Committed
	c.Summaries = make([]record.Summary, 0, len(b.items))
	for _, it := range b.items {
		c.Summaries = append(c.Summaries, it.summary)
		c.Bytes += it.bytes
	}
	b.items = nil
	if advanceTo > 0 {
		if err := s.SetState(b.account, b.mailbox, b.uidValidity, advanceTo); err != nil {
			// Records are durable; only the checkpoint lags, which costs an
			// idempotent re-capture, never a loss.
			return c, err
		}
	}
	return c, nil
}

// Committed is what a Commit made durable.
type Committed struct {
	Summaries []record.Summary
	Bytes     int64 // record, raw copy and attachment bytes written
}

// placeRecords moves every record of a synced batch into place: renames
// (attachments and raw copies before their record) and links, then makes
// the new names durable. Each target dir is opened once, for the renames
// and links into it and its fsync; parents of dirs created here need the
// fsync only.
func (s *Store) placeRecords(items []*pendingRecord) error {
	dirs := map[string]*os.File{}
	parents := map[string]bool{}
	var linked []*unnamedFile // closed only after the sync below
	defer func() {
		for _, f := range dirs {
			f.Close()
		}
		for _, f := range linked {
			s.closeUnnamed(f)
		}
	}()
	dirFor := func(path string) (*os.File, error) {
		d := filepath.Dir(path)
		if df := dirs[d]; df != nil {
			return df, nil
		}
		created, err := mkdirAllTracked(d)
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
		df, err := os.Open(d)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", d, err)
		}
		for _, c := range created {
			parents[filepath.Dir(c)] = true
		}
		dirs[d] = df
		return df, nil
	}
	for _, it := range items {
		for _, r := range it.renames {
			df, err := dirFor(r.to)
			if err != nil {
				return err
			}
			if err := s.renameInto(r, df); err != nil {
				return fmt.Errorf("rename into %s: %w", r.to, err)
			}
		}
		if f := it.unnamed; f != nil {
			df, err := dirFor(it.final)
			if err != nil {
				return err
			}
			it.unnamed = nil
			linked = append(linked, f)
			if err := s.linkUnnamed(f, df, filepath.Base(it.final)); err != nil {
				return err
			}
		}
	}
	// A link changed the file's inode too (see unnamed.go): sync again.
	// Only batches past syncfsThreshold records have unnamed files, and
	// they are synced with syncfs, which makes every new name durable as
	// well; without it, each linked file and each directory is fsynced.
	if len(linked) > 0 && unix.Syncfs(int(s.tmpDirFile.Fd())) == nil {
		return nil
	}
	for _, f := range linked {
		if err := unix.Fsync(f.fd); err != nil {
			return fmt.Errorf("fsync linked record: %w", err)
		}
	}
	for d, f := range dirs {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync dir %s: %w", d, err)
		}
		delete(parents, d)
	}
	for d := range parents {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// Discard removes the temp files of records not yet committed.
func (b *Batch) Discard() {
	b.writers.Wait()
	for _, it := range b.items {
		for _, r := range it.renames {
			os.Remove(r.from)
		}
		if it.unnamed != nil {
			b.s.closeUnnamed(it.unnamed)
			it.unnamed = nil
		}
	}
	b.items = nil
}

// syncfsThreshold: up to this many temp files, fsync them one by one (in
// parallel); above it, one syncfs(2) for the whole filesystem is cheaper.
// syncfs also flushes other programs' dirty data, which makes it slow for
// the single new message of an IDLE notification on a busy machine.
const syncfsThreshold = 16

// syncTemp makes every temp file's data durable before any is renamed or
// linked.
func (s *Store) syncTemp(items []*pendingRecord) error {
	var files []string
	var unnamed []*unnamedFile
	for _, it := range items {
		for _, r := range it.renames {
			files = append(files, r.from)
		}
		if it.unnamed != nil {
			unnamed = append(unnamed, it.unnamed)
		}
	}
	if len(files)+len(unnamed) > syncfsThreshold {
		if unix.Syncfs(int(s.tmpDirFile.Fd())) == nil {
			return nil
		}
		// Not supported here: fall back to fsyncing each file.
	}
	errs := make([]error, len(files)+len(unnamed))
	var wg sync.WaitGroup
	sem := make(chan struct{}, syncfsThreshold) // bounds open files
	for i, name := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f, err := os.Open(name)
			if err == nil {
				err = f.Sync()
				f.Close()
			}
			if err != nil {
				errs[i] = fmt.Errorf("fsync %s: %w", name, err)
			}
		}()
	}
	for i, f := range unnamed {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := unix.Fsync(f.fd); err != nil {
				errs[len(files)+i] = fmt.Errorf("fsync record temp file: %w", err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// mkdirAllTracked is os.MkdirAll that returns the directories it created,
// so their parents can be fsynced too.
func mkdirAllTracked(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	return missing, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// attachmentSink writes decoded attachments to temp files that Commit
// renames into <mailbox dir>/<base>/<safe name>.
type attachmentSink struct {
	s       *Store
	relDir  string
	used    map[string]bool
	renames []rename
}

func (a *attachmentSink) Save(index int, filename, contentType string) (io.WriteCloser, string, error) {
	name := uniqueName(attachmentName(index, filename, contentType), a.used)
	f, err := os.Create(a.s.tempName("att"))
	if err != nil {
		return nil, "", fmt.Errorf("save attachment %q: %w", name, err)
	}
	rel := filepath.Join(a.relDir, name)
	a.renames = append(a.renames, rename{f.Name(), filepath.Join(a.s.dir, rel)})
	return f, filepath.ToSlash(rel), nil
}

// uniqueName appends -2, -3 … before the extension when a message carries
// two attachments of the same name.
func uniqueName(name string, used map[string]bool) string {
	cand := name
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for i := 2; used[strings.ToLower(cand)]; i++ {
		cand = fmt.Sprintf("%s-%d%s", stem, i, ext)
	}
	used[strings.ToLower(cand)] = true
	return cand
}
