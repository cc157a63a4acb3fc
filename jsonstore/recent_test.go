package jsonstore

import (
	"errors"
	"fmt"
	"io/fs"
	"mailtap/record"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// recentWriteRecord writes a minimal record where the store would, with the
// given mtime, and returns its path.
func recentWriteRecord(t testing.TB, out, account, mailbox string, uidv, uid uint32, captured time.Time) string {
	t.Helper()
	rec := &record.Record{SchemaVersion: record.SchemaVersion, ID: RecordID(account, mailbox, uidv, uid),
		Account: account, Mailbox: mailbox, UIDValidity: uidv, UID: uid,
		Subject: fmt.Sprintf("message %d", uid), CapturedAt: captured.UTC(),
		From: []record.Address{{Name: "Ann", Address: "ann@example.com"}}}
	rec.Normalize()
	data, err := record.Append(nil, rec, true)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(out, MailboxRelDir(account, mailbox, 0))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, RecordBaseName(uidv, uid)+".json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, captured, captured); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestScan_newestFirstAcrossMailboxes(t *testing.T) {
	out := t.TempDir()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	// INBOX: uids 1..5 a minute apart; Work/Sub (a nested mailbox): 3
	// records interleaved in time; a second UIDVALIDITY in INBOX is newest.
	for i := uint32(1); i <= 5; i++ {
		recentWriteRecord(t, out, "personal", "INBOX", 100, i, t0.Add(time.Duration(i)*time.Minute))
	}
	for i := uint32(1); i <= 3; i++ {
		recentWriteRecord(t, out, "work", "Work/Sub", 7, i, t0.Add(time.Duration(i)*time.Minute+30*time.Second))
	}
	recentWriteRecord(t, out, "personal", "INBOX", 99, 1, t0.Add(time.Hour))

	// Things that are not records and must be ignored: the state dir, an
	// attachment folder holding a file named like a record, a raw copy.
	inbox := filepath.Join(out, "personal", "INBOX")
	recentWriteFile(t, filepath.Join(out, ".mailtap", "tmp", "100-0000000009.json"), "{")
	recentWriteFile(t, filepath.Join(inbox, "100-0000000002", "100-0000000001.json"), "not json")
	recentWriteFile(t, filepath.Join(inbox, "100-0000000002.eml"), "From: x\r\n\r\n")
	recentWriteFile(t, filepath.Join(inbox, "notes.json"), "{}")

	got, err := Recent(out, 4)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range got {
		ids = append(ids, s.ID)
	}
	want := []string{"personal/INBOX/99/1", "personal/INBOX/100/5", "personal/INBOX/100/4", "work/Work/Sub/7/3"}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Fatalf("Recent = %v, want %v", ids, want)
	}
	if got[0].Path != filepath.Join(inbox, "99-0000000001.json") || got[0].From != "Ann <ann@example.com>" {
		t.Errorf("summary = %+v", got[0])
	}

	inv, err := Scan(out, 2)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Total != 9 || len(inv.Recent) != 2 {
		t.Errorf("Total = %d, Recent = %d, want 9, 2", inv.Total, len(inv.Recent))
	}
	p := inv.Mailboxes["personal/INBOX"]
	w := inv.Mailboxes["work/Work/Sub"]
	if p == nil || w == nil || len(inv.Mailboxes) != 2 {
		t.Fatalf("Mailboxes = %v", inv.Mailboxes)
	}
	if p.Count != 6 || p.MaxUID[100] != 5 || p.MaxUID[99] != 1 {
		t.Errorf("personal/INBOX = %+v", p)
	}
	// work/Work/Sub has nothing among the 2 newest but is still named from
	// one of its own records.
	if w.Count != 3 || w.MaxUID[7] != 3 || w.Dir != filepath.Join(out, "work", "Work", "Sub") {
		t.Errorf("work/Work/Sub = %+v", w)
	}
}

// Only the chosen records are parsed: older files are corrupt here, and a
// scan that read them would report them.
func TestScan_readsOnlyTheNewest(t *testing.T) {
	out := t.TempDir()
	t0 := time.Now().Add(-time.Hour)
	var paths []string
	for i := uint32(1); i <= 300; i++ {
		paths = append(paths, recentWriteRecord(t, out, "a", "INBOX", 1, i, t0.Add(time.Duration(i)*time.Second)))
	}
	for _, p := range paths[:295] {
		if err := os.WriteFile(p, []byte("{corrupt"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := Scan(out, 5)
	if err != nil {
		t.Fatalf("Scan read an older file: %v", err)
	}
	if len(inv.Recent) != 5 || inv.Recent[0].Summary.UID != 300 || inv.Recent[4].Summary.UID != 296 {
		t.Fatalf("Recent = %+v", inv.Recent)
	}
	if inv.Mailboxes["a/INBOX"].Count != 300 {
		t.Errorf("Count = %d", inv.Mailboxes["a/INBOX"].Count)
	}
}

// A corrupt record among the newest is reported, and the next one takes
// its place.
func TestScan_corruptRecordReportedAndSkipped(t *testing.T) {
	out := t.TempDir()
	t0 := time.Now().Add(-time.Hour)
	for i := uint32(1); i <= 4; i++ {
		recentWriteRecord(t, out, "a", "INBOX", 1, i, t0.Add(time.Duration(i)*time.Second))
	}
	bad := filepath.Join(out, "a", "INBOX", "1-0000000004.json")
	if err := os.WriteFile(bad, []byte(`{"subject":"no id"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := Scan(out, 2)
	if err == nil || !strings.Contains(err.Error(), "not a mailtap record") || !strings.Contains(err.Error(), bad) {
		t.Fatalf("err = %v, want it to name %s", err, bad)
	}
	if inv == nil || len(inv.Recent) != 2 || inv.Recent[0].Summary.UID != 3 || inv.Recent[1].Summary.UID != 2 {
		t.Fatalf("Recent = %+v", inv)
	}
}

func TestScan_missingOutIsEmpty(t *testing.T) {
	inv, err := Scan(filepath.Join(t.TempDir(), "nope"), 10)
	if err != nil || inv == nil || len(inv.Recent) != 0 || inv.Total != 0 {
		t.Fatalf("Scan = %+v, %v", inv, err)
	}
}

func TestScan_unreadableFolderReported(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads folders regardless of permissions")
	}
	out := t.TempDir()
	recentWriteRecord(t, out, "a", "INBOX", 1, 1, time.Now())
	recentWriteRecord(t, out, "b", "INBOX", 1, 1, time.Now())
	locked := filepath.Join(out, "b", "INBOX")
	if err := os.Chmod(locked, 0o000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	inv, err := Scan(out, 10)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("err = %v, want permission error", err)
	}
	if len(inv.Recent) != 1 || inv.Recent[0].Summary.Account != "a" {
		t.Fatalf("Recent = %+v", inv.Recent)
	}
}

func TestReadRecord(t *testing.T) {
	dir := t.TempDir()
	path := recentWriteRecord(t, dir, "a", "INBOX", 5, 42, time.Now())
	rec, err := record.ReadRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	if rec.ID != "a/INBOX/5/42" || rec.To == nil || rec.Attachments == nil {
		t.Errorf("rec = %+v (slices must be non-nil)", rec)
	}
	for name, body := range map[string]string{"empty.json": "", "array.json": "[]", "other.json": `{"id":"x"}`} {
		p := filepath.Join(dir, name)
		recentWriteFile(t, p, body)
		if _, err := record.ReadRecord(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("ReadRecord(%s) err = %v, want an error naming the file", name, err)
		}
	}
	if _, err := record.ReadRecord(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestParseRecordBase(t *testing.T) {
	for s, ok := range map[string]bool{
		"1-0000000001": true, "4294967295-4294967295": true, "12-0000000001x": false,
		"-0000000001": false, "1-001": false, "a-0000000001": false, "1-0000000001-2": false,
		"4294967296-0000000001": false,
		"1-0000000001~2":        true, "1-0000000001~12": true, "1-0000000001~": false, "1-0000000001~1": false,
		"1-0000000001~02": false, "1-0000000001~x": false, "1-0000000001~2~3": false, "~2": false,
	} {
		if _, _, got := parseRecordBase(s); got != ok {
			t.Errorf("parseRecordBase(%q) ok = %v, want %v", s, got, ok)
		}
	}
}

func recentWriteFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkScan measures a start-up scan of a 20,000-record mailbox
// reading the newest 500.
func BenchmarkScan(b *testing.B) {
	out := b.TempDir()
	t0 := time.Now().Add(-24 * time.Hour)
	for i := uint32(1); i <= 20000; i++ {
		recentWriteRecord(b, out, "a", "INBOX", 1, i, t0.Add(time.Duration(i)*time.Second))
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Scan(out, 500); err != nil {
			b.Fatal(err)
		}
	}
}
