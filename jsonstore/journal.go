package jsonstore

// The commit journal: an ordered, append-only list of every record the
// store committed, in <out>/.mailtap/journal/ as numbered segment files.
// Commit appends a batch's entries and fsyncs them after the records are in
// place and before the checkpoint moves, so every record the checkpoint
// covers is journalled (a crash in between re-captures the batch, and the
// entries are written then). Sinks read it from disk to deliver records;
// each keeps its own position.
//
// A line is "<crc32c of the JSON, 8 hex digits> <JSON entry>\n". A line
// that is cut short or fails its check can only be the unsynced tail of the
// last segment after a crash or a full disk: Open truncates it, readers
// stop before it.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mailtap/record"
)

// JournalEntry is one committed record.
type JournalEntry struct {
	Seq         uint64    `json:"seq"`  // 1, 2, … in journal order, never reused
	ID          string    `json:"id"`   // the record's id
	Path        string    `json:"path"` // of the record file, relative to <out>, with /
	Account     string    `json:"account"`
	Mailbox     string    `json:"mailbox"`
	UIDValidity uint32    `json:"uid_validity"`
	UID         uint32    `json:"uid"`
	Subject     string    `json:"subject"`
	From        string    `json:"from"`
	Size        int64     `json:"size"`
	CommittedAt time.Time `json:"committed_at"`
}

// JournalPos is a place in the journal: the start of the entry numbered
// Seq, at Offset bytes into segment file Segment.
type JournalPos struct {
	Segment uint64 `json:"segment"`
	Offset  int64  `json:"offset"`
	Seq     uint64 `json:"seq"`
}

// Before reports whether p comes before q.
func (p JournalPos) Before(q JournalPos) bool {
	if p.Segment != q.Segment {
		return p.Segment < q.Segment
	}
	return p.Offset < q.Offset
}

// journalSegmentBytes is where a segment is closed and the next begun; at
// about 300 bytes an entry, some 50,000 records each.
const journalSegmentBytes = 16 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// JournalDir is where the journal of the output dir out lives.
func JournalDir(out string) string { return filepath.Join(out, ".mailtap", "journal") }

func segmentName(n uint64) string { return fmt.Sprintf("%010d.journal", n) }

// journalSegments lists the segment numbers in dir, in order.
func journalSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var segs []uint64
	for _, e := range entries {
		stem, ok := strings.CutSuffix(e.Name(), ".journal")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(stem, 10, 64); err == nil && n > 0 {
			segs = append(segs, n)
		}
	}
	slices.Sort(segs)
	return segs, nil
}

// journal is the writing side, owned by the Store.
type journal struct {
	dir          string
	segmentBytes int64 // journalSegmentBytes; smaller in tests

	mu   sync.Mutex
	f    *os.File   // current segment, nil until the first append
	end  JournalPos // after the last durable entry: what readers may read
	next JournalPos // after the last entry written, durable or not
	// pending are the appends between end and next; epoch counts the
	// failed syncs, each of which cut them off (syncErr the last cause).
	pending []journalled
	epoch   uint64
	syncErr error
	// syncMu is held by whoever runs fsync (lock order: syncMu, then mu).
	syncMu sync.Mutex
	syncs  atomic.Int64 // fsyncs of the journal, for tests
	// testHookSync, if set, runs before a group's fsync (tests only).
	testHookSync func()
	subs         map[chan struct{}]struct{}
	// above holds, per mailbox (account/mailbox/uidvalidity), the UIDs
	// journalled above that mailbox's checkpoint: a crash between the
	// journal and the checkpoint makes the watcher commit them again, and
	// they must not be journalled (and delivered) twice.
	above map[string]map[uint32]bool
}

func mailboxKey(account, mailbox string, uidValidity uint32) string {
	return account + "\x00" + mailbox + "\x00" + strconv.FormatUint(uint64(uidValidity), 10)
}

// openJournal finds the end of the journal, truncates a torn tail, and
// reads the entries of the last segments that lie above the checkpoint.
func openJournal(dir string, checkpoint func(account, mailbox string) (MailboxState, bool)) (*journal, error) {
	j := &journal{dir: dir, segmentBytes: journalSegmentBytes, subs: map[chan struct{}]struct{}{}, above: map[string]map[uint32]bool{}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create journal dir: %w", err)
	}
	segs, err := journalSegments(dir)
	if err != nil {
		return nil, fmt.Errorf("read journal dir: %w", err)
	}
	j.end = JournalPos{Segment: 1, Seq: 1}
	if len(segs) == 0 {
		return j, nil
	}
	// A crash re-captures at most the batches in flight, whose entries are
	// at the end; two segments cover a rotation between them.
	tail := segs[max(0, len(segs)-2):]
	for i, seg := range tail {
		last := i == len(tail)-1
		path := filepath.Join(dir, segmentName(seg))
		var valid int64
		err := scanSegment(path, 0, func(e JournalEntry, next int64) bool {
			valid = next
			j.end = JournalPos{Segment: seg, Offset: next, Seq: e.Seq + 1}
			if st, ok := checkpoint(e.Account, e.Mailbox); !ok || st.UIDValidity != e.UIDValidity || e.UID > st.LastUID {
				j.remember(e)
			}
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("read journal %s: %w", path, err)
		}
		if last {
			j.end.Segment, j.end.Offset = seg, valid
			if fi, err := os.Stat(path); err == nil && fi.Size() > valid {
				if err := os.Truncate(path, valid); err != nil {
					return nil, fmt.Errorf("truncate torn journal tail %s: %w", path, err)
				}
			}
		}
	}
	return j, nil
}

func (j *journal) remember(e JournalEntry) {
	k := mailboxKey(e.Account, e.Mailbox, e.UIDValidity)
	if j.above[k] == nil {
		j.above[k] = map[uint32]bool{}
	}
	j.above[k][e.UID] = true
}

// append journals the records of one committed batch of a mailbox and
// fsyncs them; lastUID is the mailbox's checkpoint before this commit.
// On failure nothing of the batch counts as journalled (the torn part is
// cut off again) and the caller must not move the checkpoint.
//
// Group commit: batches of different mailboxes append concurrently, and
// one fsync makes every entry written so far durable. Whoever holds
// syncMu syncs for all who wrote before it; the others find their entries
// durable when their turn comes. Without it a burst of one-record commits
// (new mail in 1,000 mailboxes at once) queued behind 1,000 fsyncs.
func (j *journal) append(out, account, mailbox string, uidValidity uint32, cp MailboxState, hasCP bool, sums []record.Summary) error {
	if err := j.rotateIfFull(); err != nil {
		return err
	}
	j.mu.Lock()
	k := mailboxKey(account, mailbox, uidValidity)
	set := j.above[k]
	if hasCP && cp.UIDValidity == uidValidity {
		for u := range set {
			if u <= cp.LastUID {
				delete(set, u)
			}
		}
	}
	var buf bytes.Buffer
	seq := j.next.Seq
	// Milliseconds, as record.TimeLayout writes it: the envelope then
	// carries exactly the time replay --since compares.
	now := time.Now().UTC().Truncate(time.Millisecond)
	var added []uint32
	for _, s := range sums {
		if set[s.UID] {
			continue // journalled before a crash; the checkpoint lagged
		}
		rel, err := filepath.Rel(out, s.Path)
		if err != nil {
			rel = s.Path
		}
		e := JournalEntry{Seq: seq, ID: s.ID, Path: filepath.ToSlash(rel), Account: s.Account, Mailbox: s.Mailbox,
			UIDValidity: s.UIDValidity, UID: s.UID, Subject: s.Subject, From: s.From, Size: s.Size, CommittedAt: now}
		b, err := json.Marshal(e)
		if err != nil {
			j.mu.Unlock()
			return fmt.Errorf("journal %s: %w", s.ID, err)
		}
		fmt.Fprintf(&buf, "%08x ", crc32.Checksum(b, crcTable))
		buf.Write(b)
		buf.WriteByte('\n')
		seq++
		added = append(added, s.UID)
	}
	if buf.Len() == 0 {
		j.mu.Unlock()
		return nil
	}
	if _, err := j.f.WriteAt(buf.Bytes(), j.next.Offset); err != nil {
		// Cut what may have reached the file, so the next append starts
		// on a line boundary; if even that fails, Open will cut it.
		_ = j.f.Truncate(j.next.Offset)
		j.mu.Unlock()
		return fmt.Errorf("write journal: %w", err)
	}
	j.next.Offset += int64(buf.Len())
	j.next.Seq = seq
	mine, epoch := j.next.Seq, j.epoch
	j.pending = append(j.pending, journalled{key: k, uids: added})
	j.mu.Unlock()
	return j.syncUpTo(mine, epoch)
}

// journalled is an append written but not yet synced.
type journalled struct {
	key  string
	uids []uint32
}

// syncUpTo returns once the entries before seq are durable, syncing them
// (and whatever else was written) itself if nobody has yet. A failed sync
// cuts every unsynced entry off again and fails each of their appends
// (their epoch is gone).
func (j *journal) syncUpTo(seq, epoch uint64) error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	if j.epoch != epoch {
		err := j.syncErr
		j.mu.Unlock()
		return fmt.Errorf("write journal: %w", err)
	}
	if j.end.Seq >= seq {
		j.mu.Unlock()
		return nil // synced by the append before us
	}
	target, f, pend := j.next, j.f, j.pending
	j.pending = nil
	j.mu.Unlock()

	if j.testHookSync != nil {
		j.testHookSync()
	}
	err := f.Sync()
	j.syncs.Add(1)

	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil {
		_ = f.Truncate(j.end.Offset)
		j.next, j.pending = j.end, nil
		j.epoch++
		j.syncErr = err
		return fmt.Errorf("write journal: %w", err)
	}
	j.end = target
	j.rememberLocked(pend)
	for c := range j.subs {
		select {
		case c <- struct{}{}:
		default: // already woken; the reader will see this append too
		}
	}
	return nil
}

// rememberLocked records durable appends' UIDs above their checkpoint.
func (j *journal) rememberLocked(done []journalled) {
	for _, p := range done {
		set := j.above[p.key]
		if set == nil {
			set = map[uint32]bool{}
			j.above[p.key] = set
		}
		for _, u := range p.uids {
			set[u] = true
		}
	}
}

// rotateIfFull opens the first segment, or the next one when the current
// is full. Entries still unsynced in the full one are synced first, and
// syncMu is held so no sync of the old file can move end afterwards.
func (j *journal) rotateIfFull() error {
	j.mu.Lock()
	full := j.f == nil || j.next.Offset >= j.segmentBytes
	j.mu.Unlock()
	if !full {
		return nil
	}
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil && j.next.Offset < j.segmentBytes {
		return nil // another append rotated meanwhile
	}
	if j.f != nil && j.next.Seq != j.end.Seq {
		if err := j.f.Sync(); err != nil {
			_ = j.f.Truncate(j.end.Offset)
			j.next, j.pending = j.end, nil
			j.epoch++
			j.syncErr = err
			return fmt.Errorf("write journal: %w", err)
		}
		j.end = j.next
		j.rememberLocked(j.pending)
		j.pending = nil
	}
	if err := j.openSegment(); err != nil {
		return err
	}
	j.next = j.end
	return nil
}

// openSegment opens the current segment for appending, or starts the next
// one when the current is full.
func (j *journal) openSegment() error {
	if j.f != nil {
		j.f.Close()
		j.f = nil
		j.end = JournalPos{Segment: j.end.Segment + 1, Seq: j.end.Seq}
	}
	path := filepath.Join(j.dir, segmentName(j.end.Segment))
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		// The new name must survive a crash before entries in it count.
		if err := syncDir(j.dir); err != nil {
			f.Close()
			os.Remove(path)
			return fmt.Errorf("create journal segment: %w", err)
		}
	}
	j.f = f
	return nil
}

func (j *journal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}

// JournalEnd is the position after the last durable journal entry: what a
// reader may read up to.
func (s *Store) JournalEnd() JournalPos {
	s.journal.mu.Lock()
	defer s.journal.mu.Unlock()
	return s.journal.end
}

// JournalNotify returns a channel that receives (without ever blocking the
// store) after each append, and a function to stop the notifications.
func (s *Store) JournalNotify() (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	s.journal.mu.Lock()
	s.journal.subs[c] = struct{}{}
	s.journal.mu.Unlock()
	return c, func() {
		s.journal.mu.Lock()
		delete(s.journal.subs, c)
		s.journal.mu.Unlock()
	}
}

// journalCommit is the hook in Commit.
func (b *Batch) journalCommit(sums []record.Summary) error {
	if len(sums) == 0 {
		return nil
	}
	cp, ok := b.s.State(b.account, b.mailbox)
	if err := b.s.journal.append(b.s.dir, b.account, b.mailbox, b.uidValidity, cp, ok, sums); err != nil {
		return err
	}
	return nil
}

// ---- reading ----

// JournalReader reads entries in order from the journal of an output dir,
// from disk, one at a time: memory stays bounded whatever the backlog.
type JournalReader struct {
	dir string
	pos JournalPos
	f   *os.File
	br  *bufio.Reader
}

// NewJournalReader starts reading at pos (the zero JournalPos is the start).
func NewJournalReader(out string, pos JournalPos) *JournalReader {
	if pos.Segment == 0 {
		pos = JournalPos{Segment: 1, Seq: 1}
	}
	return &JournalReader{dir: JournalDir(out), pos: pos}
}

// Pos is the position of the next entry Next would return.
func (r *JournalReader) Pos() JournalPos { return r.pos }

// Close releases the open segment.
func (r *JournalReader) Close() {
	if r.f != nil {
		r.f.Close()
		r.f, r.br = nil, nil
	}
}

// Next returns the next entry before limit, or io.EOF when there is none
// (yet). A zero limit means "whatever complete entries the files hold".
func (r *JournalReader) Next(limit JournalPos) (JournalEntry, error) {
	for {
		if limit.Segment != 0 && !r.pos.Before(limit) {
			return JournalEntry{}, io.EOF
		}
		if r.f == nil {
			f, err := os.Open(filepath.Join(r.dir, segmentName(r.pos.Segment)))
			if errors.Is(err, os.ErrNotExist) {
				if r.nextSegmentExists() {
					r.pos = JournalPos{Segment: r.pos.Segment + 1, Seq: r.pos.Seq}
					continue
				}
				return JournalEntry{}, io.EOF
			}
			if err != nil {
				return JournalEntry{}, fmt.Errorf("open journal: %w", err)
			}
			if _, err := f.Seek(r.pos.Offset, io.SeekStart); err != nil {
				f.Close()
				return JournalEntry{}, fmt.Errorf("seek journal: %w", err)
			}
			r.f, r.br = f, bufio.NewReaderSize(f, 64<<10)
		}
		line, err := r.br.ReadSlice('\n')
		if err == nil {
			e, ok := parseJournalLine(line)
			if !ok && limit.Segment == 0 {
				// Without the writer's word on where the end is, a bad
				// line is the torn tail that the next Open cuts.
				r.Close()
				return JournalEntry{}, io.EOF
			}
			if !ok {
				return JournalEntry{}, fmt.Errorf("journal %s at offset %d: damaged entry", segmentName(r.pos.Segment), r.pos.Offset)
			}
			r.pos.Offset += int64(len(line))
			r.pos.Seq = e.Seq + 1
			return e, nil
		}
		// End of what this segment holds now. Reopen next time: a partial
		// line may still be being written, and bufio has consumed it.
		r.Close()
		if errors.Is(err, bufio.ErrBufferFull) {
			return JournalEntry{}, fmt.Errorf("journal %s at offset %d: entry too long", segmentName(r.pos.Segment), r.pos.Offset)
		}
		if limit.Segment > r.pos.Segment || (limit.Segment == 0 && r.nextSegmentExists()) {
			r.pos = JournalPos{Segment: r.pos.Segment + 1, Seq: r.pos.Seq}
			continue
		}
		return JournalEntry{}, io.EOF
	}
}

func (r *JournalReader) nextSegmentExists() bool {
	_, err := os.Stat(filepath.Join(r.dir, segmentName(r.pos.Segment+1)))
	return err == nil
}

func parseJournalLine(line []byte) (JournalEntry, bool) {
	var e JournalEntry
	line = bytes.TrimSuffix(line, []byte("\n"))
	if len(line) < 10 || line[8] != ' ' {
		return e, false
	}
	sum, err := strconv.ParseUint(string(line[:8]), 16, 32)
	if err != nil || uint32(sum) != crc32.Checksum(line[9:], crcTable) {
		return e, false
	}
	if json.Unmarshal(line[9:], &e) != nil || e.Seq == 0 {
		return e, false
	}
	return e, true
}

// scanSegment calls fn for each valid entry of a segment from offset,
// with the offset after it, until fn returns false or an entry is torn or
// damaged (where it stops quietly: that is the end).
func scanSegment(path string, offset int64, fn func(JournalEntry, int64) bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, bufio.ErrBufferFull) {
				return nil
			}
			return err
		}
		e, ok := parseJournalLine(line)
		if !ok {
			return nil
		}
		offset += int64(len(line))
		if !fn(e, offset) {
			return nil
		}
	}
}

// ReadJournalEnd finds the end of the complete entries on disk, for
// programs that read an output dir without opening the store (mailtap
// sinks, replay).
func ReadJournalEnd(out string) (JournalPos, error) {
	dir := JournalDir(out)
	segs, err := journalSegments(dir)
	if err != nil {
		return JournalPos{}, err
	}
	end := JournalPos{Segment: 1, Seq: 1}
	for _, seg := range segs[max(0, len(segs)-2):] {
		path := filepath.Join(dir, segmentName(seg))
		end.Segment, end.Offset = seg, 0
		err := scanSegment(path, 0, func(e JournalEntry, next int64) bool {
			end.Offset, end.Seq = next, e.Seq+1
			return true
		})
		if err != nil {
			return JournalPos{}, err
		}
	}
	return end, nil
}
