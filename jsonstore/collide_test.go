package jsonstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// attMsg is a message with a Message-ID, a body and one attachment, so a
// record has side files (.eml, the attachment) when the store saves them.
func attMsg(id, body string) string {
	return "From: a@b.c\r\nSubject: att\r\nMessage-ID: <" + id + ">\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\n" + body +
		"\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"f.bin\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--XX--\r\n"
}

// commitMsgs commits the message msg(uid) for each uid in lo..hi as one
// batch, advancing the checkpoint only if advance.
func commitMsgs(t *testing.T, s *Store, lo, hi uint32, advance bool, msg func(uid uint32) string) Committed {
	t.Helper()
	b := s.NewBatch("a", "INBOX", 1, '/')
	for uid := lo; uid <= hi; uid++ {
		addMsg(t, b, uid, msg(uid))
	}
	to := hi
	if !advance {
		to = 0
	}
	c, err := b.Commit(to)
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(s.TempDir()); len(ents) != 0 {
		t.Errorf("temp files left: %v", ents)
	}
	if n := unnamedOpen(s); n != 0 {
		t.Errorf("%d unnamed temp files still open", n)
	}
	return c
}

// recordsOf maps each record file of mailbox a/INBOX to its message_id.
func recordsOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "a", "INBOX"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") {
			got[e.Name()] = readRec(t, filepath.Join(dir, "a", "INBOX", e.Name())).MessageID
		}
	}
	return got
}

// collideModes runs a collision test in each temp-file mode, with small
// batches (renames, fsync per file) and large ones (unnamed files linked,
// syncfs), with and without side files.
func collideModes(t *testing.T, test func(t *testing.T, s *Store, dir string, n uint32, sides bool)) {
	tempModes(t, func(t *testing.T, opts Options) {
		for _, n := range []uint32{3, syncfsThreshold + 8} {
			for _, sides := range []bool{false, true} {
				t.Run(fmt.Sprintf("n=%d/side-files=%v", n, sides), func(t *testing.T) {
					dir := t.TempDir()
					o := opts
					o.SaveRaw, o.SaveAttachments = sides, sides
					test(t, openStore(t, dir, o), dir, n, sides)
				})
			}
		}
	})
}

// TestStore_sameMessageTwiceOneFile: the same messages committed again (a
// re-capture after a crash kept the checkpoint back, with new flags or a
// new captured_at) replace their records: one file each, no collision.
func TestStore_sameMessageTwiceOneFile(t *testing.T) {
	collideModes(t, func(t *testing.T, s *Store, dir string, n uint32, sides bool) {
		msg := func(uid uint32) string { return attMsg(fmt.Sprintf("m%d@x", uid), "first") }
		commitMsgs(t, s, 1, n, false, msg)
		c := commitMsgs(t, s, 1, n, true, msg)
		if len(c.Collisions) != 0 {
			t.Errorf("collisions for the same messages: %v", c.Collisions)
		}
		recs := recordsOf(t, dir)
		if len(recs) != int(n) {
			t.Errorf("%d records, want %d: %v", len(recs), n, recs)
		}
		for uid := uint32(1); uid <= n; uid++ {
			if got := recs[RecordBaseName(1, uid)+".json"]; got != fmt.Sprintf("m%d@x", uid) {
				t.Errorf("uid %d: message_id %q", uid, got)
			}
		}
		if sides {
			assertNoSuffixed(t, dir)
		}
	})
}

func assertNoSuffixed(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(dir, "a", "INBOX"))
	for _, e := range ents {
		if strings.Contains(e.Name(), "~") {
			t.Errorf("suffixed file %s for a re-capture", e.Name())
		}
	}
}

// TestStore_differentMessageSameUIDKeepsBoth: a server that reuses UIDs
// gives uid 1..n to other messages. Both records stay, the new ones as
// <stem>~2 with their own .eml and attachment folder, each reported with
// both ids; a re-capture of those (a crash) replaces the ~2 files, and a
// third message of the same UID becomes ~3.
func TestStore_differentMessageSameUIDKeepsBoth(t *testing.T) {
	collideModes(t, func(t *testing.T, s *Store, dir string, n uint32, sides bool) {
		gen := func(g string) func(uint32) string {
			return func(uid uint32) string { return attMsg(fmt.Sprintf("%s-%d@x", g, uid), "body of "+g) }
		}
		commitMsgs(t, s, 1, n, true, gen("old"))
		for round, g := range []string{"new", "new", "third"} {
			c := commitMsgs(t, s, 1, n, true, gen(g))
			suffix := "~2"
			if g == "third" {
				suffix = "~3"
			}
			if len(c.Collisions) != int(n) {
				t.Fatalf("round %d: %d collisions reported, want %d", round, len(c.Collisions), n)
			}
			for i, col := range c.Collisions {
				uid := uint32(i + 1)
				stem := filepath.Join(dir, "a", "INBOX", RecordBaseName(1, uid))
				if col.UID != uid || col.Existing != stem+".json" || col.Path != stem+suffix+".json" ||
					col.ExistingMessageID != fmt.Sprintf("old-%d@x", uid) || col.MessageID != fmt.Sprintf("%s-%d@x", g, uid) ||
					col.Size == 0 || col.ExistingSize == 0 || col.ExistingErr != nil {
					t.Errorf("round %d: collision %+v", round, col)
				}
				if c.Summaries[i].Path != col.Path {
					t.Errorf("summary path %s, want %s", c.Summaries[i].Path, col.Path)
				}
				if !strings.Contains(col.String(), col.MessageID) || !strings.Contains(col.String(), col.ExistingMessageID) {
					t.Errorf("collision text without both ids: %s", col)
				}
			}
		}
		recs := recordsOf(t, dir)
		if len(recs) != 3*int(n) {
			t.Errorf("%d records, want %d", len(recs), 3*n)
		}
		for uid := uint32(1); uid <= n; uid++ {
			base := RecordBaseName(1, uid)
			for suffix, g := range map[string]string{"": "old", "~2": "new", "~3": "third"} {
				stem := base + suffix
				if got := recs[stem+".json"]; got != fmt.Sprintf("%s-%d@x", g, uid) {
					t.Errorf("%s.json: message_id %q, want %s's", stem, got, g)
				}
				if !sides {
					continue
				}
				raw, err := os.ReadFile(filepath.Join(dir, "a", "INBOX", stem+".eml"))
				if err != nil || !strings.Contains(string(raw), "body of "+g) {
					t.Errorf("%s.eml: %.80q %v", stem, raw, err)
				}
				rec := readRec(t, filepath.Join(dir, "a", "INBOX", stem+".json"))
				want := "a/INBOX/" + stem + "/f.bin"
				if len(rec.Attachments) != 1 || rec.Attachments[0].SavedAs == nil || *rec.Attachments[0].SavedAs != want {
					t.Errorf("%s.json: attachments %+v, want saved_as %s", stem, rec.Attachments, want)
				} else if b, err := os.ReadFile(filepath.Join(dir, want)); err != nil || string(b) != "hello" {
					t.Errorf("%s: %q %v", want, b, err)
				}
			}
		}
		// The scan of records on disk counts the suffixed ones too.
		inv, err := Scan(dir, 5)
		if err != nil {
			t.Fatal(err)
		}
		if mf := inv.Mailboxes["a/INBOX"]; inv.Total != 3*int(n) || mf == nil || mf.Count != 3*int(n) || mf.MaxUID[1] != n {
			t.Errorf("scan: total %d, mailbox %+v", inv.Total, mf)
		}
	})
}

// TestStore_crashLeftoversOfTheSameUID: after a crash between placing a
// record's side files and the record itself, the next commit of that UID
// (any message: the lone .eml had no record) takes the plain name; an
// unreadable record is never replaced either.
func TestStore_crashLeftoversOfTheSameUID(t *testing.T) {
	tempModes(t, func(t *testing.T, opts Options) {
		dir := t.TempDir()
		opts.SaveRaw, opts.SaveAttachments = true, true
		s := openStore(t, dir, opts)
		mbox := filepath.Join(dir, "a", "INBOX")
		recentWriteFile(t, filepath.Join(mbox, RecordBaseName(1, 1)+".eml"), "orphan of a crash")
		recentWriteFile(t, filepath.Join(mbox, RecordBaseName(1, 2)+".json"), `{"schema_version": 1, "id": "a/INBOX/1/2", "mess`)
		c := commitMsgs(t, s, 1, 2, true, func(uid uint32) string { return attMsg(fmt.Sprintf("m%d@x", uid), "real") })
		if raw, _ := os.ReadFile(filepath.Join(mbox, RecordBaseName(1, 1)+".eml")); !strings.Contains(string(raw), "real") {
			t.Errorf("orphan .eml not replaced: %.60q", raw)
		}
		if len(c.Collisions) != 1 || c.Collisions[0].UID != 2 || c.Collisions[0].ExistingErr == nil {
			t.Fatalf("collisions %+v, want one for uid 2 with the read error", c.Collisions)
		}
		if got := readRec(t, filepath.Join(mbox, RecordBaseName(1, 2)+"~2.json")).MessageID; got != "m2@x" {
			t.Errorf("uid 2 ~2: message_id %q", got)
		}
		if b, _ := os.ReadFile(filepath.Join(mbox, RecordBaseName(1, 2)+".json")); !strings.HasSuffix(string(b), `"mess`) {
			t.Errorf("unreadable record was replaced: %q", b)
		}
	})
}

// TestStore_crashThenRecaptureIdempotent: a store closed without its
// checkpoint advancing (as after kill -9) and reopened captures the same
// messages again into the same files.
func TestStore_crashThenRecaptureIdempotent(t *testing.T) {
	collideModes(t, func(t *testing.T, s *Store, dir string, n uint32, sides bool) {
		msg := func(uid uint32) string { return attMsg(fmt.Sprintf("m%d@x", uid), "once") }
		commitMsgs(t, s, 1, n, false, msg)
		s.Close()
		s2 := openStore(t, dir, s.opts)
		if _, ok := s2.State("a", "INBOX"); ok {
			t.Fatal("checkpoint advanced")
		}
		if c := commitMsgs(t, s2, 1, n, true, msg); len(c.Collisions) != 0 {
			t.Errorf("collisions on re-capture: %v", c.Collisions)
		}
		if recs := recordsOf(t, dir); len(recs) != int(n) {
			t.Errorf("%d records after re-capture, want %d", len(recs), n)
		}
		assertNoSuffixed(t, dir)
	})
}

// TestReadIdentity reads what tells messages apart, and refuses files
// that do not say it.
func TestReadIdentity(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct {
		data string
		ok   bool
	}{
		"full":      {`{"schema_version":1,"message_id":"a@b","headers":[{"x":[1,{"y":2}]}],"internal_date":"2024-01-02T03:04:05Z","size":12,"text":"…"}`, true},
		"no size":   {`{"message_id":"a@b","internal_date":"2024-01-02T03:04:05Z"}`, false},
		"bad size":  {`{"message_id":"a@b","internal_date":"2024-01-02T03:04:05Z","size":"12"}`, false},
		"truncated": {`{"message_id":"a@b","inter`, false},
		"array":     {`[1]`, false},
	} {
		path := filepath.Join(dir, name)
		recentWriteFile(t, path, c.data)
		id, err := readIdentity(path)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v", name, err)
		}
		if c.ok && (id.messageID != "a@b" || id.size != 12 || id.internalDate.IsZero()) {
			t.Errorf("%s: %+v", name, id)
		}
	}
	if _, err := readIdentity(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	a := identity{messageID: "x", size: 3}
	for _, c := range []struct {
		b    identity
		same bool
	}{
		{identity{messageID: "x", size: 3}, true},
		{identity{messageID: "y", size: 3}, false},
		{identity{messageID: "x", size: 4}, false},
	} {
		if a.same(c.b) != c.same {
			t.Errorf("%+v same as %+v: %v", a, c.b, !c.same)
		}
	}
	noID := identity{size: 3, internalDate: timeAt(1)}
	if !noID.same(identity{size: 3, internalDate: timeAt(1)}) || noID.same(identity{size: 3, internalDate: timeAt(2)}) {
		t.Error("messages without Message-ID are told apart by internal date")
	}
}

func timeAt(sec int64) time.Time { return time.Unix(1700000000+sec, 0).UTC() }
