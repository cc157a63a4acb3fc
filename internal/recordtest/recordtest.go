// Package recordtest holds the reference the record encoder is tested
// against: encoding/json's output plus the extra control escapes. The
// record, parser and store tests share it.
package recordtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"testing"
	"time"

	"mailtap/record"
)

// CheckEncoding compares record.Append, indented and compact, with what
// encoding/json's Encoder writes followed by FixTimes and EscapeControls.
func CheckEncoding(t testing.TB, label string, rec *record.Record) bool {
	t.Helper()
	for _, pretty := range []bool{true, false} {
		got, err := record.Append(nil, rec, pretty)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if pretty {
			enc.SetIndent("", "  ")
		}
		if err := enc.Encode(rec); err != nil {
			t.Fatal(err)
		}
		if w := EscapeControls(FixTimes(t, want.Bytes())); !bytes.Equal(got, w) {
			t.Errorf("%s (pretty %v): encoders differ:\n%s\nvs encoding/json:\n%s", label, pretty, got, w)
			return false
		}
	}
	return true
}

// timeField matches the record's three time fields as encoding/json
// writes them. Keys cannot occur inside strings, whose quotes are escaped.
var timeField = regexp.MustCompile(`"(date|internal_date|captured_at)":( ?)"([^"]*)"`)

// FixTimes is the reference for the record's one time format: encoding/json
// writes RFC 3339 with as many fractional digits as needed; records have
// exactly three (record.TimeLayout), internal_date and captured_at in UTC.
func FixTimes(t testing.TB, b []byte) []byte {
	t.Helper()
	return timeField.ReplaceAllFunc(b, func(m []byte) []byte {
		sub := timeField.FindSubmatch(m)
		tm, err := time.Parse(time.RFC3339Nano, string(sub[3]))
		if err != nil {
			t.Fatalf("reference: %s: %v", m, err)
		}
		if string(sub[1]) != "date" {
			tm = tm.UTC()
		}
		return fmt.Appendf(nil, `"%s":%s"%s"`, sub[1], sub[2], tm.Format(record.TimeLayout))
	})
}

// EscapeControls is the reference for the controls the record encoder
// escapes beyond encoding/json: DEL (U+007F) and the C1 controls
// (U+0080–U+009F, e.g. U+009B, the one-byte CSI). They can only occur
// inside strings, so a byte-level pass over encoding/json's output is exact.
func EscapeControls(b []byte) []byte {
	out := make([]byte, 0, len(b)+64)
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == 0x7f:
			out = append(out, `\u007f`...)
		case b[i] == 0xc2 && i+1 < len(b) && b[i+1] >= 0x80 && b[i+1] <= 0x9f:
			out = fmt.Appendf(out, `\u%04x`, b[i+1])
			i++
		default:
			out = append(out, b[i])
		}
	}
	return out
}
