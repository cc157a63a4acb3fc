// Package jsonstore owns the durable store under the output dir: batches
// of records written with group commit (temp file, fsync, rename, directory
// sync), the file layout, the per-mailbox checkpoint files, the lock that
// keeps a second process out, and the scan of records already on disk. It
// parses messages with mailparse and encodes them with record; it knows
// nothing of IMAP sessions or UIs.
package jsonstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
)

// ErrLocked means another mailtap process holds the output dir.
var ErrLocked = errors.New("output dir is in use by another mailtap process")

// Options says how records are written.
type Options struct {
	Pretty          bool  // indent JSON
	SaveAttachments bool  // output.attachments = "save"
	SaveRaw         bool  // also write <base>.eml
	MaxBodyBytes    int64 // see mailparse.ParseOptions

	// Portable makes the store take its portable path (named temp files,
	// an fsync per file, rename, directory fsync), which is what every OS
	// but Linux runs, even where an OS-specific fast path exists. It is
	// for tests, so that Linux CI covers the fallback too; mailtap sets it
	// when PortableEnv is "1".
	Portable bool
}

// PortableEnv is the environment variable that sets Options.Portable in the
// mailtap binary, so end-to-end tests (the crash test) can run a built
// binary on the portable path. Test-only: it changes the write path and
// nothing else a user can see.
const PortableEnv = "MAILTAP_TEST_PORTABLE_STORE"

// Store is an output dir opened for writing. It is safe for concurrent use by
// the sessions of several mailboxes.
type Store struct {
	dir      string // absolute <out>
	stateDir string // <out>/.mailtap
	tmpDir   string // <out>/.mailtap/tmp: same filesystem, so rename is atomic
	opts     Options
	lock     *os.File

	// fast is the OS-specific fast path (fast_linux.go), nil where there
	// is none or Options.Portable asks for the portable path (portable.go).
	fast *fastPath

	// Semaphores shared by all batches: parsers bounds the messages parsed
	// in parallel by AddBytes (CPU-bound, one per core); recordWriters
	// bounds the goroutines encoding and writing records.
	parsers       chan struct{}
	recordWriters chan struct{}

	// mu guards cps, the map of per-mailbox checkpoints (checkpoint.go);
	// it is never held during I/O.
	mu      sync.Mutex
	cps     map[cpKey]*cpEntry
	journal *journal      // journal.go
	seq     atomic.Uint64 // temp name counter

	// testHookCheckpointWrite, if set, runs as a checkpoint write of a
	// mailbox starts, holding that mailbox's write lock only.
	testHookCheckpointWrite func(account, mailbox string)
}

// Open creates the output dir if needed, takes its lock (ErrLocked if held),
// removes temp files a crash left behind and loads the checkpoints,
// migrating a state.json of an older mailtap (checkpoint.go).
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
	if !opts.Portable {
		s.fast, err = openFastPath(s.tmpDir, true, func() string { return s.tempBase("rec") })
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("open temp dir: %w", err)
		}
	}
	if err := s.loadCheckpoint(); err != nil {
		s.Close()
		return nil, err
	}
	if s.journal, err = openJournal(filepath.Join(s.stateDir, "journal"), s.State); err != nil {
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
	if err := lockFile(f); err != nil {
		owner, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, errLockHeld) {
			pid := strings.TrimSpace(string(owner))
			if pid == "" {
				pid = "unknown"
			}
			return fmt.Errorf("%w: %s (pid %s); stop it or choose another --out", ErrLocked, s.dir, pid)
		}
		return fmt.Errorf("lock %s: %w", path, err)
	}
	// The pid is informational; the lock is what excludes (lock_*.go), and
	// it dies with the process, so a crash never leaves a stale lock.
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
	if s.journal != nil {
		s.journal.close()
	}
	if s.fast != nil {
		s.fast.close()
		s.fast = nil
	}
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := syncDirFile(d); err != nil {
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
	final   string         // path of the record in <out>: <stem>.json
	bytes   int64
	renames []rename     // side files (attachments, .eml), placed before the record
	recTemp string       // the record's named temp file, or "" if unnamed
	unnamed *unnamedFile // the record's temp file, if unnamed
	saved   bool         // saved_as paths in the record name its stem (collide.go)
	id      identity     // what tells it from another message of the same name
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
	if it.pos >= syncfsThreshold && b.s.fast != nil {
		f, err = b.s.fast.createUnnamed(data)
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
		it.recTemp = filepath.Join(b.s.tmpDir, name)
	}
	it.bytes += int64(len(data))
	it.summary = record.SummaryOf(it.rec, it.final)
	it.id = identityOf(it.rec)
	for _, a := range it.rec.Attachments {
		it.saved = it.saved || a.SavedAs != nil
	}
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
// every record it covers on disk. A name held by a different message's
// record is never replaced: see collide.go and Committed.Collisions.
func (b *Batch) Commit(advanceTo uint32) (Committed, error) {
	s := b.s
	b.writers.Wait()
	var c Committed
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
		var err error
		if c.Collisions, err = s.placeRecords(b.items); err != nil {
			b.Discard()
			return Committed{}, err
		}
	}
	c.Summaries = make([]record.Summary, 0, len(b.items))
	for _, it := range b.items {
		c.Summaries = append(c.Summaries, it.summary)
		c.Bytes += it.bytes
	}
	b.items = nil
	// Journalled before the checkpoint moves: every record it covers is.
	if err := b.journalCommit(c.Summaries); err != nil {
		return c, err
	}
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
	// Collisions lists the records written under a suffixed name because
	// a different message's record held theirs (collide.go); their
	// Summaries have the suffixed path. Warn about each: it means the
	// server reused UIDs (UIDNEXT went back under the same UIDVALIDITY).
	Collisions []Collision
}

// placeRecords moves every record of a synced batch into place: renames
// (attachments and raw copies before their record) and links, then makes
// the new names durable. Each target dir is opened once, for the renames
// and links into it and its fsync; parents of dirs created here need the
// fsync only.
func (s *Store) placeRecords(items []*pendingRecord) ([]Collision, error) {
	dirs := map[string]*os.File{}
	parents := map[string]bool{}
	var linked []*unnamedFile // closed only after the sync below
	defer func() {
		for _, f := range dirs {
			f.Close()
		}
		for _, f := range linked {
			s.fast.closeUnnamed(f)
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
	var collisions []Collision
	for _, it := range items {
		// The record's folder is the same whatever its stem (collide.go).
		df, err := dirFor(it.final)
		if err != nil {
			return nil, err
		}
		var c *Collision
		if len(it.renames) > 0 {
			// Side files go first and under the record's final stem, so
			// that is settled before anything moves.
			if err := s.exists(df, filepath.Base(it.final)); errors.Is(err, fs.ErrExist) {
				if c, err = s.settleName(it); err != nil {
					return nil, err
				}
			} else if err != nil {
				return nil, fmt.Errorf("uid %d: %w", it.uid, err)
			}
			for _, r := range it.renames {
				rdf, err := dirFor(r.to)
				if err != nil {
					return nil, err
				}
				if err := s.renameInto(r.from, r.to, rdf, true); err != nil {
					return nil, fmt.Errorf("rename into %s: %w", r.to, err)
				}
			}
			err = s.putRecord(it, df, true, &linked)
		} else if err = s.putRecord(it, df, false, &linked); errors.Is(err, fs.ErrExist) {
			if c, err = s.settleName(it); err == nil {
				err = s.putRecord(it, df, true, &linked)
			}
		}
		if err != nil {
			return nil, err
		}
		if c != nil {
			collisions = append(collisions, *c)
		}
	}
	// A link changed the file's inode too (see fast_linux.go): sync again.
	// Only batches past syncfsThreshold records have unnamed files, and
	// they are synced with syncfs, which makes every new name durable as
	// well; without it, each linked file and each directory is fsynced.
	if len(linked) > 0 && s.fast.syncfs() == nil {
		return collisions, nil
	}
	for _, f := range linked {
		if err := s.fast.fsyncUnnamed(f); err != nil {
			return nil, fmt.Errorf("fsync linked record: %w", err)
		}
	}
	for d, f := range dirs {
		if err := syncDirFile(f); err != nil {
			return nil, fmt.Errorf("fsync dir %s: %w", d, err)
		}
		delete(parents, d)
	}
	for d := range parents {
		if err := syncDir(d); err != nil {
			return nil, err
		}
	}
	return collisions, nil
}

// putRecord links or renames the record's temp file to it.final in dir.
// With replace=false a name already taken is an error satisfying
// errors.Is(err, fs.ErrExist), and the temp file stays for another try.
func (s *Store) putRecord(it *pendingRecord, dir *os.File, replace bool, linked *[]*unnamedFile) error {
	if f := it.unnamed; f != nil {
		err := s.fast.linkUnnamed(f, dir, filepath.Base(it.final), replace)
		if !replace && errors.Is(err, fs.ErrExist) {
			return err
		}
		// Linked or failed, it is closed after the final sync.
		it.unnamed = nil
		*linked = append(*linked, f)
		return err
	}
	err := s.renameInto(it.recTemp, it.final, dir, replace)
	if !replace && errors.Is(err, fs.ErrExist) {
		return err
	}
	if err != nil {
		return fmt.Errorf("rename into %s: %w", it.final, err)
	}
	it.recTemp = ""
	return nil
}

// Discard removes the temp files of records not yet committed.
func (b *Batch) Discard() {
	b.writers.Wait()
	for _, it := range b.items {
		for _, r := range it.renames {
			os.Remove(r.from)
		}
		if it.recTemp != "" {
			os.Remove(it.recTemp)
		}
		if it.unnamed != nil {
			b.s.fast.closeUnnamed(it.unnamed)
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
		if it.recTemp != "" {
			files = append(files, it.recTemp)
		}
		if it.unnamed != nil {
			unnamed = append(unnamed, it.unnamed)
		}
	}
	if len(files)+len(unnamed) > syncfsThreshold && s.fast != nil {
		if s.fast.syncfs() == nil {
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
			errs[i] = syncFile(name)
		}()
	}
	for i, f := range unnamed {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := s.fast.fsyncUnnamed(f); err != nil {
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
