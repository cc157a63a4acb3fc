package mailparse

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"mailtap/internal/recordtest"
	"testing"
	"testing/iotest"
)

// hashSink records what it is given, to check the record's size and sha256
// against the bytes that reached the sink.
type hashSink struct {
	got []*hashWriter
}

type hashWriter struct {
	h      hash.Hash
	n      int64
	closed bool
}

func (w *hashWriter) Write(b []byte) (int, error) {
	w.n += int64(len(b))
	return w.h.Write(b)
}

func (w *hashWriter) Close() error {
	w.closed = true
	return nil
}

func (s *hashSink) Save(index int, filename, contentType string) (io.WriteCloser, string, error) {
	w := &hashWriter{h: sha256.New()}
	s.got = append(s.got, w)
	return w, "x", nil
}

// FuzzParse feeds arbitrary bytes to Parse. Whatever the input: no panic,
// no error (the source never fails), every string valid UTF-8, JSON
// marshals (and the record encoder writes what encoding/json does), bodies within MaxBodyBytes, each attachment's size and sha256
// those of the bytes the sink received, and the same record whether the
// input arrives in one piece or byte by byte.
func FuzzParse(f *testing.F) {
	for _, name := range fixtureNames(f) {
		data := readFixture(f, name)
		f.Add(data, false)
		f.Add(data, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, small bool) {
		opts := ParseOptions{}
		max := int64(DefaultMaxBodyBytes)
		if small {
			max = 40
			opts.MaxBodyBytes = max
		}
		sink := &hashSink{}
		opts.Attachments = sink
		rec, err := Parse(bytes.NewReader(data), opts)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		checkRecord(t, rec)
		recordtest.CheckEncoding(t, "fuzzed record", rec)
		if int64(len(rec.Text)) > max || int64(len(rec.HTML)) > max {
			t.Errorf("text %d / html %d bytes, max %d", len(rec.Text), len(rec.HTML), max)
		}
		if len(rec.ParseErrors) > maxParseErrors+1 {
			t.Errorf("%d parse errors listed", len(rec.ParseErrors))
		}
		if len(sink.got) != len(rec.Attachments) {
			t.Fatalf("%d Save calls for %d attachments", len(sink.got), len(rec.Attachments))
		}
		for i, a := range rec.Attachments {
			w := sink.got[i]
			if !w.closed || w.n != a.Size || hex.EncodeToString(w.h.Sum(nil)) != a.SHA256 || a.SavedAs == nil {
				t.Errorf("attachment %d: sink got %d bytes (closed %v), record %+v", i, w.n, w.closed, a)
			}
		}

		opts.Attachments = nil
		whole, err := Parse(bytes.NewReader(data), opts)
		if err != nil {
			t.Fatal(err)
		}
		bytewise, err := Parse(iotest.OneByteReader(bytes.NewReader(data)), opts)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := marshalGolden(t, whole), marshalGolden(t, bytewise); !bytes.Equal(a, b) {
			t.Errorf("record depends on read sizes:\n%s", lineDiff(string(a), string(b)))
		}
	})
}
