package mailparse

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailtap/internal/recordtest"
)

// The record encoder must write what encoding/json's Encoder writes (plus
// escapeControls), so records do not change shape with the encoder.
func TestMarshal_matchesEncodingJSON(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if len(paths) == 0 {
		t.Fatal("no fixtures")
	}
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := Parse(strings.NewReader(string(raw)), ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
		rec.InternalDate, rec.CapturedAt = d, d
		rec.Subject += " \u2028<&>"
		recordtest.CheckEncoding(t, path, rec)
	}
}
