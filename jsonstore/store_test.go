package jsonstore

import (
	"encoding/json"
	"errors"
	"io"
	"mailtap/record"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const simpleMsg = "From: Ann <ann@example.com>\r\nTo: bob@example.com\r\nSubject: hello\r\nMessage-ID: <1@example.com>\r\nDate: Mon, 02 Jan 2006 15:04:05 -0700\r\n\r\nHi Bob\r\n"

func openStore(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func addMsg(t *testing.T, b *Batch, uid uint32, raw string) {
	t.Helper()
	p, err := b.Parse(uid, strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Finish(p, Meta{UID: uid, InternalDate: time.Unix(1700000000, 0), Flags: []string{`\Seen`}}); err != nil {
		t.Fatal(err)
	}
}

func TestStore_commitWritesRecordsAndCheckpoint(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{Pretty: true})
	b := s.NewBatch("acct", "INBOX/Sub", 42, 0)
	addMsg(t, b, 7, simpleMsg)
	addMsg(t, b, 9, simpleMsg)

	// Nothing is visible before Commit.
	if _, err := os.Stat(filepath.Join(dir, "acct")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("records visible before commit: %v", err)
	}
	res, err := b.Commit(9)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Summaries) != 2 || res.Bytes == 0 {
		t.Fatalf("committed %+v", res)
	}
	path := filepath.Join(dir, "acct", "INBOX", "Sub", "42-0000000007.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec record.Record
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.ID != "acct/INBOX/Sub/42/7" || rec.UID != 7 || rec.UIDValidity != 42 || rec.Subject != "hello" || rec.Size != int64(len(simpleMsg)) {
		t.Errorf("record = %+v", rec)
	}
	if res.Summaries[0].Path != path {
		t.Errorf("summary path %q, want %q", res.Summaries[0].Path, path)
	}
	st, ok := s.State("acct", "INBOX/Sub")
	if !ok || st.UIDValidity != 42 || st.LastUID != 9 {
		t.Errorf("state = %+v %v", st, ok)
	}
	// Temp dir is empty after commit.
	if ents, _ := os.ReadDir(filepath.Join(dir, ".mailtap", "tmp")); len(ents) != 0 {
		t.Errorf("temp files left: %v", ents)
	}
	// Checkpoint survives reopening.
	s.Close()
	s2 := openStore(t, dir, Options{})
	if st, _ := s2.State("acct", "INBOX/Sub"); st.LastUID != 9 {
		t.Errorf("reloaded state %+v", st)
	}
}

func TestStore_discardLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{SaveRaw: true})
	b := s.NewBatch("a", "INBOX", 1, 0)
	addMsg(t, b, 1, simpleMsg)
	b.Discard()
	if _, err := b.Commit(1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("discarded record visible")
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, ".mailtap", "tmp")); len(ents) != 0 {
		t.Errorf("temp files left: %v", ents)
	}
}

func TestStore_checkpointNeverMovesBack(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	if err := s.SetState("a", "m", 5, 10); err != nil {
		t.Fatal(err)
	}
	s.SetState("a", "m", 5, 3)
	if st, _ := s.State("a", "m"); st.LastUID != 10 {
		t.Errorf("moved back to %d", st.LastUID)
	}
	s.SetState("a", "m", 6, 0) // new uidvalidity replaces
	if st, _ := s.State("a", "m"); st.UIDValidity != 6 || st.LastUID != 0 {
		t.Errorf("uidvalidity change: %+v", st)
	}
}

func TestStore_rawAndAttachmentsSaved(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{SaveRaw: true, SaveAttachments: true})
	msg := "From: a@b.c\r\nSubject: att\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nbody\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"../../evil.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--XX--\r\n"
	b := s.NewBatch("a", "INBOX", 3, 0)
	addMsg(t, b, 1, msg)
	res, err := b.Commit(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a", "INBOX", "3-0000000001.eml")); err != nil {
		t.Error(err)
	}
	rec := readRec(t, res.Summaries[0].Path)
	if len(rec.Attachments) != 1 || rec.Attachments[0].SavedAs == nil {
		t.Fatalf("attachments %+v", rec.Attachments)
	}
	saved := filepath.Join(dir, *rec.Attachments[0].SavedAs)
	if !strings.HasPrefix(saved, filepath.Join(dir, "a", "INBOX", "3-0000000001")+string(filepath.Separator)) {
		t.Fatalf("attachment escaped its folder: %s", saved)
	}
	if b, err := os.ReadFile(saved); err != nil || string(b) != "hello" {
		t.Errorf("saved attachment %q %v", b, err)
	}
}

// TestStore_unnamedAttachmentsGetExtensions saves the parts of a message
// that have no file name: each file gets an extension from its media type.
func TestStore_unnamedAttachmentsGetExtensions(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "mailparse", "testdata", "unnamed_attachments.eml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := openStore(t, dir, Options{SaveAttachments: true})
	b := s.NewBatch("a", "INBOX", 3, 0)
	addMsg(t, b, 1, string(raw))
	res, err := b.Commit(1)
	if err != nil {
		t.Fatal(err)
	}
	rec := readRec(t, res.Summaries[0].Path)
	var got []string
	for _, a := range rec.Attachments {
		if a.SavedAs == nil {
			t.Fatalf("attachment not saved: %+v", a)
		}
		got = append(got, *a.SavedAs)
		if fi, err := os.Stat(filepath.Join(dir, *a.SavedAs)); err != nil || fi.Size() != a.Size {
			t.Errorf("%s: %v (size %d, record %d)", *a.SavedAs, err, fi.Size(), a.Size)
		}
	}
	want := []string{"a/INBOX/3-0000000001/attachment-1.ics", "a/INBOX/3-0000000001/attachment-2.png",
		"a/INBOX/3-0000000001/attachment-3.eml", "a/INBOX/3-0000000001/attachment-4"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("saved as %q, want %q", got, want)
	}
}

func readRec(t *testing.T, path string) record.Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r record.Record
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestStore_lockExcludesSecondProcess(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir, Options{})
	if os.Getenv("MAILTAP_LOCK_CHILD") == "" {
		// flock is per open file description, so a second Open in this
		// process would also fail; a real second process proves the point.
		cmd := exec.Command(os.Args[0], "-test.run=TestStore_lockChild")
		cmd.Env = append(os.Environ(), "MAILTAP_LOCK_CHILD="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "LOCKED") {
			t.Fatalf("second process was not refused:\n%s", out)
		}
	}
}

func TestStore_lockChild(t *testing.T) {
	dir := os.Getenv("MAILTAP_LOCK_CHILD")
	if dir == "" {
		t.Skip("helper for TestStore_lockExcludesSecondProcess")
	}
	_, err := Open(dir, Options{})
	if errors.Is(err, ErrLocked) && strings.Contains(err.Error(), "pid") {
		t.Log("LOCKED:", err)
		os.Stdout.WriteString("LOCKED\n")
		return
	}
	t.Fatalf("Open = %v, want ErrLocked", err)
}

func TestStore_leftoverTempFilesRemovedOnOpen(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, ".mailtap", "tmp")
	os.MkdirAll(tmp, 0o755)
	os.WriteFile(filepath.Join(tmp, "rec-1-1"), []byte("{partial"), 0o644)
	openStore(t, dir, Options{})
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("leftovers kept: %v", ents)
	}
}

func TestStore_corruptCheckpointRefused(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, ".mailtap"), 0o755)
	os.WriteFile(filepath.Join(dir, ".mailtap", "state.json"), []byte("{nope"), 0o644)
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Open = %v", err)
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"../../x":        "_._.._x",
		"/etc/passwd":    "_etc_passwd",
		"CON":            "_CON",
		"con.txt":        "_con.txt",
		"..":             "_",
		".hidden":        "_hidden",
		"a\x1b[2Jb":      "a_[2Jb",
		"":               "_",
		"ok.pdf":         "ok.pdf",
		"a\u202Efdp.exe": "a_fdp.exe",
	} {
		if got := SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("é", 600) + ".pdf"
	got := SafeName(long)
	if len(got) > maxNameBytes || !strings.HasSuffix(got, ".pdf") {
		t.Errorf("long name: %d bytes, %q", len(got), got[len(got)-8:])
	}
	for _, mb := range []string{"../../etc", "/abs/path", "a/../../b", "..", "INBOX.Sub"} {
		d := MailboxRelDir("acct", mb, '.')
		for _, el := range strings.Split(d, string(filepath.Separator)) {
			if el == ".." || el == "." || el == "" {
				t.Errorf("MailboxRelDir(%q) = %q has element %q", mb, d, el)
			}
		}
		if !strings.HasPrefix(d, "acct"+string(filepath.Separator)) {
			t.Errorf("MailboxRelDir(%q) = %q", mb, d)
		}
	}
}

func TestStore_controlCharactersOnlyAsEscapes(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	b := s.NewBatch("a", "INBOX", 1, 0)
	addMsg(t, b, 1, "Subject: csi \u009b2J del \x7f nul-ish \x01\r\n\r\nbody \u0085\r\n")
	res, err := b.Commit(1)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(res.Summaries[0].Path)
	for i, r := range string(data) {
		if r < 0x20 && r != '\n' || r >= 0x7f && r <= 0x9f {
			t.Fatalf("raw control U+%04X at byte %d in %s", r, i, data)
		}
	}
	rec := readRec(t, res.Summaries[0].Path)
	if !strings.Contains(rec.Subject, "\u009b2J") || !strings.Contains(rec.Subject, "\x7f") {
		t.Errorf("escapes do not decode back: %q", rec.Subject)
	}
}

// failingReader returns some bytes, then an error, like a dropped connection.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	n := min(len(p), f.n)
	for i := range n {
		p[i] = 'x'
	}
	f.n -= n
	return n, nil
}

func TestStore_parseErrorLeavesNoTempFiles(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{SaveRaw: true, SaveAttachments: true})
	b := s.NewBatch("a", "INBOX", 1, 0)
	body := io.MultiReader(strings.NewReader("Subject: cut\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Disposition: attachment; filename=a.bin\r\n\r\n"), &failingReader{n: 100000})
	if _, err := b.Parse(1, body); err == nil {
		t.Fatal("Parse of a broken stream succeeded")
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, ".mailtap", "tmp")); len(ents) != 0 {
		t.Errorf("temp files left after a failed parse: %v", ents)
	}
}
