package jsonstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mailtap/record"

	"github.com/go-json-experiment/json/jsontext"
)

// Record names are deterministic (<uidvalidity>-<uid>.json), so capturing
// a message again after a crash replaces its record in place. But a server
// restored from a backup, or one that restarts its UIDs (UIDNEXT going back
// under the same UIDVALIDITY), can give a UID that already named one
// message to another. A record is never replaced by a different message:
// at commit, when the name is taken, the store compares the record there
// with the new one (identity below) and
//
//   - same message: replaces it, as for a re-capture after a crash;
//   - different message: writes the new one as <stem>~2 (or ~3 …: the
//     first free suffix, or one that already holds this same message, so a
//     re-capture of a suffixed record after a crash is idempotent too) —
//     <stem>~N.json, <stem>~N.eml and the attachment folder <stem>~N/ —
//     and reports it in Committed.Collisions, for the caller to warn.
//
// Finding a name taken costs nothing on the common path: the record is
// placed with a link or rename that refuses to replace (linkat's EEXIST,
// renameat2(RENAME_NOREPLACE) on Linux; a stat first on the portable
// path), and only an EEXIST reads the existing record. Records with side
// files (.eml, saved attachments) are the exception: those are placed
// before their record and under its final stem, so that record's name is
// checked with one stat before anything moves.

// maxSuffix bounds the search for a free "~N" name; past it the commit
// fails rather than loop over a folder something else filled.
const maxSuffix = 1000

// Collision is a record written under a suffixed name because its name
// was held by the record of a different message (see above). The watcher
// logs it as a warning with both ids.
type Collision struct {
	UID  uint32
	Path string // where the new record went: <stem>~N.json
	// Existing is the record that kept the name <stem>.json.
	Existing string
	// MessageID and Size are the new message's; the Existing ones are
	// read from the record already there (empty and 0 if it could not be
	// read, ExistingErr says why; it is kept all the same).
	MessageID, ExistingMessageID string
	Size, ExistingSize           int64
	ExistingErr                  error
}

func (c Collision) String() string {
	return fmt.Sprintf("uid %d: %s already holds message %q (%d bytes); message %q (%d bytes) written as %s",
		c.UID, c.Existing, c.ExistingMessageID, c.ExistingSize, c.MessageID, c.Size, c.Path)
}

// identity is what tells one message from another with the same name.
type identity struct {
	messageID    string
	size         int64
	internalDate time.Time
}

func identityOf(r *record.Record) identity {
	return identity{messageID: r.MessageID, size: r.Size, internalDate: r.InternalDate}
}

// same: equal Message-ID and size; for messages without a Message-ID,
// the server's internal date too. Flags and captured_at may differ: they
// change between two captures of one message.
func (a identity) same(b identity) bool {
	if a.messageID != b.messageID || a.size != b.size {
		return false
	}
	return a.messageID != "" || a.internalDate.Equal(b.internalDate)
}

// readIdentity reads message_id, size and internal_date from a record file,
// stopping as soon as it has them (they come before the bodies).
func readIdentity(path string) (identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return identity{}, err
	}
	defer f.Close()
	dec := jsontext.NewDecoder(f)
	var id identity
	bad := func(err error) (identity, error) { return identity{}, fmt.Errorf("read record %s: %w", path, err) }
	if tok, err := dec.ReadToken(); err != nil {
		return bad(err)
	} else if tok.Kind() != '{' {
		return bad(errors.New("not a JSON object"))
	}
	const all = 7
	found := 0
	for found != all && dec.PeekKind() == '"' {
		tok, err := dec.ReadToken()
		if err != nil {
			return bad(err)
		}
		name := tok.String() // before the next call voids tok
		if name != "message_id" && name != "size" && name != "internal_date" {
			if err := dec.SkipValue(); err != nil {
				return bad(err)
			}
			continue
		}
		v, err := dec.ReadToken()
		if err != nil {
			return bad(err)
		}
		switch name {
		case "message_id":
			if v.Kind() != '"' {
				return bad(errors.New("message_id is not a string"))
			}
			id.messageID, found = v.String(), found|1
		case "size":
			if v.Kind() != '0' {
				return bad(errors.New("size is not a number"))
			}
			id.size, found = v.Int(), found|2
		case "internal_date":
			id.internalDate, _ = time.Parse(time.RFC3339Nano, v.String())
			found |= 4
		}
	}
	if found != all {
		return bad(errors.New("no message_id, size or internal_date"))
	}
	return id, nil
}

// suffixed is the stem of the n-th record of a name: <stem>~n.
func suffixed(stem string, n int) string { return fmt.Sprintf("%s~%d", stem, n) }

// settleName is called when it.final is taken. It returns nil if the
// record there is of the same message (replace it). Otherwise it moves it
// to the first <stem>~N that is free or holds the same message, with its
// side files and saved_as paths, and returns the collision to report.
func (s *Store) settleName(it *pendingRecord) (*Collision, error) {
	existing := it.final
	old, err := readIdentity(existing)
	if err == nil && old.same(it.id) {
		return nil, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // gone meanwhile (by hand): take it
	}
	c := &Collision{UID: it.uid, Existing: existing, MessageID: it.id.messageID, Size: it.id.size,
		ExistingMessageID: old.messageID, ExistingSize: old.size, ExistingErr: err}
	stem := strings.TrimSuffix(existing, ".json")
	for n := 2; n <= maxSuffix; n++ {
		cand := suffixed(stem, n)
		id, err := readIdentity(cand + ".json")
		if errors.Is(err, fs.ErrNotExist) || err == nil && id.same(it.id) {
			if err := s.rename(it, stem, cand); err != nil {
				return nil, err
			}
			c.Path = it.final
			return c, nil
		}
	}
	return nil, fmt.Errorf("uid %d: %s and %d suffixed names are held by other messages; move some away", it.uid, existing, maxSuffix)
}

// rename gives a record that is not yet placed the stem newStem instead of
// stem: its own path, its side files', and the saved_as paths inside it.
func (s *Store) rename(it *pendingRecord, stem, newStem string) error {
	for i, r := range it.renames {
		if rest, ok := strings.CutPrefix(r.to, stem); ok {
			it.renames[i].to = newStem + rest
		}
	}
	it.final = newStem + ".json"
	it.summary.Path = it.final
	if it.saved {
		oldRel, err1 := filepath.Rel(s.dir, stem)
		newRel, err2 := filepath.Rel(s.dir, newStem)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("uid %d: %w", it.uid, err)
		}
		if err := s.reencode(it, filepath.ToSlash(oldRel)+"/", filepath.ToSlash(newRel)+"/"); err != nil {
			return fmt.Errorf("uid %d: rewrite saved_as for %s: %w", it.uid, it.final, err)
		}
	}
	return nil
}

// reencode rewrites the record's temp file with saved_as paths under
// newPrefix instead of oldPrefix. The data was synced already, so the new
// temp file is synced here before it replaces the old one.
func (s *Store) reencode(it *pendingRecord, oldPrefix, newPrefix string) error {
	var data []byte
	var err error
	if it.unnamed != nil {
		data, err = s.fast.readUnnamed(it.unnamed)
	} else {
		data, err = os.ReadFile(it.recTemp)
	}
	if err != nil {
		return err
	}
	rec, err := record.DecodeRecord(data, it.final)
	if err != nil {
		return err
	}
	for i := range rec.Attachments {
		if p := rec.Attachments[i].SavedAs; p != nil {
			if rest, ok := strings.CutPrefix(*p, oldPrefix); ok {
				v := newPrefix + rest
				rec.Attachments[i].SavedAs = &v
			}
		}
	}
	out, err := record.Append(nil, rec, s.opts.Pretty)
	if err != nil {
		return err
	}
	name := s.tempBase("rec")
	path := filepath.Join(s.tmpDir, name)
	if err := s.writeTemp(name, out); err != nil {
		return err
	}
	if err := syncFile(path); err != nil {
		os.Remove(path)
		return err
	}
	if it.unnamed != nil {
		s.fast.closeUnnamed(it.unnamed)
		it.unnamed = nil
	} else {
		os.Remove(it.recTemp)
	}
	it.recTemp = path
	it.bytes += int64(len(out) - len(data))
	return nil
}
