package mailparse

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestUUReader(t *testing.T) {
	tests := []struct {
		name, in, want, file string
		noBegin, ended       bool
		bad                  int64
	}{
		{"posix", "begin 644 abc.txt\n#86)C\n`\nend\n", "abc", "abc.txt", false, true, 0},
		{"crlf and a preamble", "some text\r\nbegin 600 x y.bin\r\n#86)C\r\n`\r\nend\r\n", "abc", "x y.bin", false, true, 0},
		{"stripped trailing space", "begin 644 z\n$80  \n`\nend\n", "a\x00\x00\x00", "z", false, true, 0},
		{"stripped in transit", "begin 644 z\n$80\n \nend\n", "a\x00\x00\x00", "z", false, true, 0},
		{"checksum character ignored", "begin 644 z\n#86)CX\n`\nend\n", "abc", "z", false, true, 0},
		{"junk line skipped", "begin 644 z\n#86)C\nthis is not uuencode\n#86)C\n`\nend\n", "abcabc", "z", false, true, 1},
		{"no begin line", "#86)C\n`\nend\n", "abc", "", true, true, 0},
		{"no end line", "begin 644 z\n#86)C\n", "abc", "z", false, false, 0},
		{"data after end is dropped", "begin 644 z\n#86)C\n`\nend\n#86)C\n", "abc", "z", false, true, 0},
		{"45-byte line", "begin 644 z\nM86)C9&5F9VAI:FML;6YO<'%R<W1U=G=X>7IA8F-D969G:&EJ:VQM;F]P<7)S\n`\nend\n",
			"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrs", "z", false, true, 0},
	}
	for _, tt := range tests {
		for _, bytewise := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tt.in)
			if bytewise {
				r = iotest.OneByteReader(r)
			}
			u := newUUReader(r)
			got, err := io.ReadAll(u)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if string(got) != tt.want || u.name != tt.file || u.noBegin != tt.noBegin || u.ended != tt.ended || u.bad != tt.bad {
				t.Errorf("%s (bytewise %v): %q name %q noBegin %v ended %v bad %d; want %q %q %v %v %d", tt.name, bytewise,
					got, u.name, u.noBegin, u.ended, u.bad, tt.want, tt.file, tt.noBegin, tt.ended, tt.bad)
			}
		}
	}
}
