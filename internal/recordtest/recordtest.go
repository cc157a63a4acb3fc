// Package recordtest holds the reference the record encoder is tested
// against: encoding/json's output plus the extra control escapes. The
// record, parser and store tests share it.
package recordtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"mailtap/record"
)

// CheckEncoding compares record.Append, indented and compact, with what
// encoding/json's Encoder writes followed by escapeControls.
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
		if w := EscapeControls(want.Bytes()); !bytes.Equal(got, w) {
			t.Errorf("%s (pretty %v): encoders differ:\n%s\nvs encoding/json:\n%s", label, pretty, got, w)
			return false
		}
	}
	return true
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
