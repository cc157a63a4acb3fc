package watcher

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// A connection that closes cleanly mid-literal reaches us as an early
// io.EOF; it must not look like the end of a (shorter) message.
func TestLiteralReader_earlyEOFIsAnError(t *testing.T) {
	s := &session{}
	full := &literalReader{r: strings.NewReader("hello"), left: 5, s: s}
	if b, err := io.ReadAll(full); err != nil || string(b) != "hello" {
		t.Fatalf("complete literal: %q, %v", b, err)
	}
	short := &literalReader{r: strings.NewReader("hel"), left: 5, s: s}
	_, err := io.ReadAll(short)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("literal cut short: err = %v, want io.ErrUnexpectedEOF", err)
	}
}
