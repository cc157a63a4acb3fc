package jsonstore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"mailtap/record"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file reads what earlier runs wrote, for UIs that show the records
// already on disk when they start. It never writes.

// Found is one record chosen by Scan.
type Found struct {
	Summary    record.Summary
	CapturedAt time.Time // captured_at of the record (file mtime if absent)
}

// MailboxFiles counts the records of one mailbox folder.
type MailboxFiles struct {
	Account string
	Mailbox string
	Dir     string // absolute folder
	Count   int    // record files
	// MaxUID is the highest UID on disk per UIDVALIDITY, so a caller that
	// later hears of a capture can tell a new file from a re-capture.
	MaxUID map[uint32]uint32
}

// Inventory is what Scan found under an output dir.
type Inventory struct {
	Recent []Found // newest first
	// Mailboxes by "account/mailbox" (as in the records, not the folder
	// names, which are made safe). A folder none of whose records could be
	// read is left out.
	Mailboxes map[string]*MailboxFiles
	Total     int // record files seen
}

// Recent returns the newest n records under out, newest first; see Scan.
func Recent(out string, n int) ([]record.Summary, error) {
	inv, err := Scan(out, n)
	if inv == nil {
		return nil, err
	}
	sums := make([]record.Summary, len(inv.Recent))
	for i, f := range inv.Recent {
		sums[i] = f.Summary
	}
	return sums, err
}

// recordFile is a record file name "<uidvalidity>-<uid>[~N].json" in a folder.
type recordFile struct {
	dir     *scanDir
	name    string
	uidv    uint32
	uid     uint32
	modTime time.Time
}

type scanDir struct {
	path  string
	files []recordFile
}

// Scan walks <out>/<account>/<mailbox…>/ for record files, skipping
// <out>/.mailtap, attachment folders and raw .eml copies, and reads only the
// newest n of them (file names are listed, but only about n files are
// stat'ed and only the chosen ones parsed). It counts the records of every
// mailbox folder on the way.
//
// A missing out is an empty inventory. Folders or files that cannot be read
// are skipped and reported together in the error, alongside the inventory
// of everything else; only a failure to read out itself returns a nil
// inventory.
func Scan(out string, n int) (*Inventory, error) {
	root, err := filepath.Abs(out)
	if err != nil {
		return nil, fmt.Errorf("output dir %q: %w", out, err)
	}
	inv := &Inventory{Mailboxes: map[string]*MailboxFiles{}}
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return inv, nil
	} else if err != nil {
		return nil, fmt.Errorf("output dir: %w", err)
	}

	var problems []error
	dirs := map[string]*scanDir{}
	walkErr := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			problems = append(problems, err)
			return nil
		}
		if d.IsDir() {
			if path == root {
				return nil
			}
			if filepath.Dir(path) == root && d.Name() == ".mailtap" {
				return fs.SkipDir
			}
			if _, _, ok := parseRecordBase(d.Name()); ok {
				// "<base>/" beside "<base>.json" holds saved attachments,
				// whose file names come from emails and prove nothing.
				if _, err := os.Lstat(path + ".json"); err == nil {
					return fs.SkipDir
				}
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		name := d.Name()
		base, ok := strings.CutSuffix(name, ".json")
		if !ok {
			return nil
		}
		uidv, uid, ok := parseRecordBase(base)
		if !ok {
			return nil
		}
		dir := filepath.Dir(path)
		sd := dirs[dir]
		if sd == nil {
			sd = &scanDir{path: dir}
			dirs[dir] = sd
		}
		sd.files = append(sd.files, recordFile{dir: sd, name: name, uidv: uidv, uid: uid})
		return nil
	})
	if walkErr != nil {
		return nil, fmt.Errorf("scan output dir: %w", walkErr)
	}

	// Within one UIDVALIDITY of one folder a higher UID was captured later,
	// so each such group is a list already sorted newest first; merging the
	// groups by the mtime of their heads visits files newest first while
	// stat'ing only about n files plus one per group.
	type group struct {
		files []recordFile // highest UID first
		next  int
	}
	var groups []*group
	for _, sd := range dirs {
		inv.Total += len(sd.files)
		slices.SortFunc(sd.files, func(a, b recordFile) int {
			if a.uidv != b.uidv {
				return cmpU32(a.uidv, b.uidv)
			}
			return cmpU32(b.uid, a.uid)
		})
		for i := 0; i < len(sd.files); {
			j := i
			for j < len(sd.files) && sd.files[j].uidv == sd.files[i].uidv {
				j++
			}
			groups = append(groups, &group{files: sd.files[i:j]})
			i = j
		}
	}
	// head stats the group's next file, skipping files removed meanwhile;
	// it returns nil when the group is used up.
	head := func(g *group) *recordFile {
		for g.next < len(g.files) {
			f := &g.files[g.next]
			if !f.modTime.IsZero() {
				return f
			}
			fi, err := os.Lstat(filepath.Join(f.dir.path, f.name))
			if err == nil {
				f.modTime = fi.ModTime()
				return f
			}
			if !errors.Is(err, fs.ErrNotExist) {
				problems = append(problems, err)
			}
			g.next++
		}
		return nil
	}

	// Read the newest n; an unreadable file makes room for the next one.
	named := map[*scanDir]*record.Record{} // one record per folder names its mailbox
	for len(inv.Recent) < n {
		var best *group
		var bestF *recordFile
		for _, g := range groups {
			f := head(g)
			if f == nil {
				continue
			}
			if bestF == nil || f.modTime.After(bestF.modTime) ||
				(f.modTime.Equal(bestF.modTime) && f.name > bestF.name) {
				best, bestF = g, f
			}
		}
		if best == nil {
			break
		}
		best.next++
		path := filepath.Join(bestF.dir.path, bestF.name)
		rec, err := record.ReadRecord(path)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				problems = append(problems, err)
			}
			continue
		}
		at := rec.CapturedAt
		if at.IsZero() {
			at = bestF.modTime
		}
		inv.Recent = append(inv.Recent, Found{Summary: record.SummaryOf(rec, path), CapturedAt: at})
		if named[bestF.dir] == nil {
			named[bestF.dir] = rec
		}
	}
	slices.SortStableFunc(inv.Recent, func(a, b Found) int { return b.CapturedAt.Compare(a.CapturedAt) })

	for _, sd := range dirs {
		rec := named[sd]
		for i := 0; rec == nil && i < len(sd.files) && i < 3; i++ {
			// Folder with nothing among the newest: read one of its files
			// for the account and mailbox names (the folder name is only
			// their safe form).
			r, err := record.ReadRecord(filepath.Join(sd.path, sd.files[i].name))
			if err == nil {
				rec = r
			} else if !errors.Is(err, fs.ErrNotExist) {
				problems = append(problems, err)
			}
		}
		if rec == nil {
			continue
		}
		key := rec.Account + "/" + rec.Mailbox
		mf := inv.Mailboxes[key]
		if mf == nil {
			mf = &MailboxFiles{Account: rec.Account, Mailbox: rec.Mailbox, Dir: sd.path, MaxUID: map[uint32]uint32{}}
			inv.Mailboxes[key] = mf
		}
		mf.Count += len(sd.files)
		for _, f := range sd.files {
			if f.uid > mf.MaxUID[f.uidv] {
				mf.MaxUID[f.uidv] = f.uid
			}
		}
	}
	if len(problems) > 0 {
		return inv, fmt.Errorf("scan output dir: %d unreadable: %w", len(problems), errors.Join(problems...))
	}
	return inv, nil
}

// parseRecordBase parses "<uidvalidity>-<uid %010d>", the stem of record
// files and attachment folders, optionally followed by "~N" (N ≥ 2): the
// stem of a different message that got the same UID (see collide.go).
func parseRecordBase(s string) (uidv, uid uint32, ok bool) {
	if stem, n, found := strings.Cut(s, "~"); found {
		if !allDigits(n) || n[0] == '0' || n == "1" {
			return 0, 0, false
		}
		s = stem
	}
	a, b, found := strings.Cut(s, "-")
	if !found || len(b) < 10 || a == "" || !allDigits(a) || !allDigits(b) {
		return 0, 0, false
	}
	v, err1 := strconv.ParseUint(a, 10, 32)
	u, err2 := strconv.ParseUint(b, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uint32(v), uint32(u), true
}

func allDigits(s string) bool {
	return len(s) > 0 && bytes.IndexFunc([]byte(s), func(r rune) bool { return r < '0' || r > '9' }) < 0
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
