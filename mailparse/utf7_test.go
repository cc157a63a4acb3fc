package mailparse

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/emersion/go-message/charset"
)

func TestUTF7(t *testing.T) {
	tests := []struct{ in, want string }{
		// RFC 2152's examples.
		{"A+ImIDkQ.", "A\u2262\u0391."},
		{"Hi Mom -+Jjo--!", "Hi Mom -\u263a-!"},
		{"+ZeVnLIqe-", "日本語"},
		{"Item 3 is +AKM-1.", "Item 3 is £1."},
		// "+-" is "+"; a run ends at any non-base64 byte, "-" absorbed.
		{"1 +- 1 +AD0 2", "1 + 1 = 2"},
		{"+AGEAYgBj-", "abc"},
		{"+AGEAYgBj.", "abc."},
		// A surrogate pair (U+1F600), and one split over two runs.
		{"+2D3eAA-", "😀"},
		{"+2D0-+3gA-", "😀"},
		// Lenient: an unpaired surrogate, 8-bit bytes, a "+" at the end.
		{"+2D0-x", "\ufffdx"},
		{"+3gA-", "\ufffd"},
		{"caf\xe9", "café"},
		{"a+", "a+"},
		{"a+ b", "a+ b"},
		{"~\\", "~\\"},
		{"", ""},
	}
	for _, tt := range tests {
		for _, bytewise := range []bool{false, true} {
			var src io.Reader = strings.NewReader(tt.in)
			if bytewise {
				src = iotest.OneByteReader(src)
			}
			r, err := charset.Reader("UTF-7", src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil || string(got) != tt.want {
				t.Errorf("UTF-7 %q (bytewise %v) = %q, %v; want %q", tt.in, bytewise, got, err, tt.want)
			}
		}
	}
	if s, ok := decodeCharset("utf-7", []byte("+ZeVnLIqe-")); !ok || s != "日本語" {
		t.Errorf("decodeCharset = %q %v", s, ok)
	}
}
