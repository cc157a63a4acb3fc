package testimap

import (
	"bytes"
	"strconv"
	"testing"
)

func TestDropIdleCapability(t *testing.T) {
	tests := []struct{ in, want string }{
		{"* CAPABILITY IMAP4rev1 IDLE UIDPLUS\r\n", "* CAPABILITY IMAP4rev1 UIDPLUS\r\n"},
		{"* OK [CAPABILITY IMAP4rev1 SASL-IR IDLE] IMAP server ready\r\n", "* OK [CAPABILITY IMAP4rev1 SASL-IR] IMAP server ready\r\n"},
		{"a1 OK [CAPABILITY IMAP4rev1 idle MOVE] LOGIN completed\r\n", "a1 OK [CAPABILITY IMAP4rev1 MOVE] LOGIN completed\r\n"},
		{"* CAPABILITY IMAP4rev1 IDLEX\r\n", "* CAPABILITY IMAP4rev1 IDLEX\r\n"},
		{"* 1 FETCH (FLAGS (IDLE))\r\n", "* 1 FETCH (FLAGS (IDLE))\r\n"},
		{"+ idling\r\n", "+ idling\r\n"},
	}
	for _, tt := range tests {
		if got := string(dropIdleCapability([]byte(tt.in))); got != tt.want {
			t.Errorf("dropIdleCapability(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRejectIdleCommand(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a7 IDLE\r\n", "a7 XIDLE\r\n"},
		{"a7 idle\r\n", "a7 XIDLE\r\n"},
		{"a8 NOOP\r\n", "a8 NOOP\r\n"},
		{"a9 SELECT IDLE\r\n", "a9 SELECT IDLE\r\n"},
	}
	for _, tt := range tests {
		if got := string(rejectIdleCommand([]byte(tt.in))); got != tt.want {
			t.Errorf("rejectIdleCommand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLiteralSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"* 1 FETCH (BODY[] {42}\r\n", 42},
		{"a APPEND INBOX {310+}\r\n", 310},
		{"a APPEND INBOX {7-}\r\n", 7},
		{"a APPEND INBOX ~{9+}\r\n", 9},
		{"* OK {not a literal}\r\n", 0},
		{"* OK done\r\n", 0},
	}
	for _, tt := range tests {
		if got := literalSize([]byte(tt.in)); got != tt.want {
			t.Errorf("literalSize(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// The filter must give the same output however the stream is cut into
// reads, and must not touch literal bytes.
func TestLineFilter_splitsAndLiterals(t *testing.T) {
	body := "* CAPABILITY IMAP4rev1 IDLE\r\nA1 IDLE\r\n"
	stream := "* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n" +
		"* 1 FETCH (BODY[] {" + itoa(len(body)) + "}\r\n" + body + ")\r\n" +
		"* CAPABILITY IMAP4rev1 IDLE\r\n"
	want := "* OK [CAPABILITY IMAP4rev1] ready\r\n" +
		"* 1 FETCH (BODY[] {" + itoa(len(body)) + "}\r\n" + body + ")\r\n" +
		"* CAPABILITY IMAP4rev1\r\n"
	for _, chunk := range []int{1, 2, 3, 7, 64, len(stream)} {
		f := lineFilter{rewrite: dropIdleCapability}
		var out []byte
		for s := []byte(stream); len(s) > 0; {
			n := min(chunk, len(s))
			out = f.feed(s[:n], out)
			s = s[n:]
		}
		if !bytes.Equal(out, []byte(want)) {
			t.Errorf("chunks of %d:\n got %q\nwant %q", chunk, out, want)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
