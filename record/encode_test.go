package record_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"mailtap/internal/recordtest"
	"mailtap/record"
)

// TestMarshal_randomStringsMatchEncodingJSON fills every string of a record
// with random runes, invalid bytes and controls, and compares the encoder
// with encoding/json followed by escapeControls.
func TestMarshal_randomStringsMatchEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	pieces := []string{"a", "Z", " ", "\"", "\\", "/", "<", ">", "&", "\x00", "\x1b", "\b", "\f", "\n", "\r", "\t", "\x7f",
		"\u0080", "\u009b", "\u009f", "\u00a0", "é", "€", "\u2028", "\u2029", "😀", "\xff", "\xc2", "\xe2\x80", "\xed\xa0\x80", "\ufffd"}
	str := func() string {
		var sb strings.Builder
		for range rng.IntN(12) {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return sb.String()
	}
	strs := func() []string {
		out := []string{}
		for range rng.IntN(3) {
			out = append(out, str())
		}
		return out
	}
	addrs := func() []record.Address {
		out := []record.Address{}
		for range rng.IntN(3) {
			out = append(out, record.Address{Name: str(), Address: str()})
		}
		return out
	}
	for i := 0; i < 500; i++ {
		d := time.Date(1990+rng.IntN(50), 3, 4, 5, 6, 7, rng.IntN(2)*123456789, time.FixedZone("", (rng.IntN(29)-14)*1800))
		rec := &record.Record{SchemaVersion: record.SchemaVersion, ID: str(), Account: str(), Mailbox: str(), UIDValidity: rng.Uint32(), UID: rng.Uint32(),
			MessageID: str(), InReplyTo: strs(), References: strs(), Subject: str(),
			From: addrs(), Sender: addrs(), ReplyTo: addrs(), To: addrs(), Cc: addrs(), Bcc: addrs(),
			InternalDate: d.UTC(), CapturedAt: d, Flags: strs(), Size: rng.Int64(), Text: str(), HTML: str(),
			Truncated: rng.IntN(2) == 0, Attachments: []record.Attachment{}, Headers: []record.Header{}, ParseErrors: strs()}
		if rng.IntN(2) == 0 {
			rec.Date = &d
		}
		for range rng.IntN(3) {
			a := record.Attachment{Filename: str(), ContentType: str(), Disposition: str(), ContentID: str(), Size: rng.Int64N(1 << 40), SHA256: str()}
			if rng.IntN(2) == 0 {
				saved := str()
				a.SavedAs = &saved
			}
			rec.Attachments = append(rec.Attachments, a)
		}
		for range rng.IntN(4) {
			rec.Headers = append(rec.Headers, record.Header{Name: str(), Value: str()})
		}
		if !recordtest.CheckEncoding(t, fmt.Sprintf("case %d", i), rec) {
			return
		}
	}
}

// TestMarshal_yearOutOfRange: a date encoding/json refuses fails the
// record's encoding the same way, rather than writing something else.
func TestMarshal_yearOutOfRange(t *testing.T) {
	d := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := record.Append(nil, &record.Record{Date: &d}, true); err == nil {
		t.Error("a year past 9999 encoded without error")
	}
}

// TestAppendQuoted_everyByteEveryPosition puts each byte value at each
// position of a run of plain text, so the eight-at-a-time path meets it
// in every lane.
func TestAppendQuoted_everyByteEveryPosition(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 17; pos++ {
			b := []byte(strings.Repeat("a", 17))
			b[pos] = byte(c)
			s := string(b)
			want, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			want = []byte(strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(want)))
			if got := record.AppendQuoted(nil, s); !bytes.Equal(got, recordtest.EscapeControls(want)) {
				t.Fatalf("byte %#x at %d: %s, want %s", c, pos, got, recordtest.EscapeControls(want))
			}
		}
	}
}
