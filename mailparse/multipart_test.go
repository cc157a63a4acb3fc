package mailparse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readParts splits body with a boundaryScanner, reading each part with
// reads of at most step bytes, and returns the preamble and the part bodies.
func readParts(t *testing.T, src io.Reader, boundary string, step int) (pre string, parts []string, closed bool) {
	t.Helper()
	s := newBoundaryScanner(bufio.NewReaderSize(src, 4096), boundary)
	read := func(r io.Reader) (string, error) {
		var out bytes.Buffer
		buf := make([]byte, step)
		for {
			n, err := r.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return out.String(), err
			}
		}
	}
	pre, err := read(&partBody{s: s, start: true})
	if !errors.Is(err, io.EOF) {
		t.Fatalf("preamble: %v", err)
	}
	for !s.closed {
		h := s.readHeader()
		if h.eof {
			break
		}
		b := &partBody{s: s, start: true, prefix: h.prefix, pendEOL: h.pendEOL}
		if h.delimiter {
			b.done, b.err = true, io.EOF
		}
		body, err := read(b)
		parts = append(parts, body)
		if err != io.EOF {
			break
		}
	}
	return pre, parts, s.closed
}

func TestBoundaryScanner_readSizes(t *testing.T) {
	long := strings.Repeat("0123456789abcdef", 700) // longer than the buffer
	body := "preamble\r\n--b\r\n\r\n" + long + "\r\n--b-x\r\n--bb\r\n\r\n--b \t\r\nX-A: 1\r\n\r\ntwo\r\n\r\n--b\r\n\r\n\n--b--\r\nepilogue"
	for _, step := range []int{1, 2, 3, 7, 64, 4096, 10000} {
		for _, bytewise := range []bool{false, true} {
			var src io.Reader = strings.NewReader(body)
			if bytewise {
				src = iotest.OneByteReader(src)
			}
			pre, parts, closed := readParts(t, src, "b", step)
			want := []string{long + "\r\n--b-x\r\n--bb\r\n", "two\r\n", ""}
			if pre != "preamble" || !closed || len(parts) != len(want) {
				t.Fatalf("step %d: preamble %q closed %v %d parts", step, pre, closed, len(parts))
			}
			for i := range want {
				if parts[i] != want[i] {
					t.Errorf("step %d bytewise %v: part %d = %.40q…, want %.40q…", step, bytewise, i, parts[i], want[i])
				}
			}
		}
	}
}

func TestMatchDelimiter(t *testing.T) {
	tests := []struct {
		in      string
		eof     bool
		v       delimVerdict
		n       int
		closing bool
	}{
		{"--b\r\n", false, delimYes, 5, false},
		{"--b\n", false, delimYes, 4, false},
		{"--b--\r\n", false, delimYes, 7, true},
		{"--b  \t\r\n", false, delimYes, 8, false},
		{"--b-- \r\nx", false, delimYes, 8, true},
		{"--b", true, delimYes, 3, false},
		{"--b--", true, delimYes, 5, true},
		{"--b", false, delimMore, 0, false},
		{"--b-", false, delimMore, 0, false},
		{"--b\r", false, delimMore, 0, false},
		{"--", false, delimMore, 0, false},
		{"--b1\r\n", false, delimNo, 0, false},
		{"--b-1\r\n", false, delimNo, 0, false},
		{"--b--x\r\n", false, delimNo, 0, false},
		{"--b x\r\n", false, delimNo, 0, false},
		{"--b\rx", false, delimNo, 0, false},
		{"-b\r\n", false, delimNo, 0, false},
		{"--b-", true, delimNo, 0, false},
	}
	for _, tt := range tests {
		v, n, closing := matchDelimiter([]byte(tt.in), []byte("--b"), tt.eof)
		if v != tt.v || n != tt.n || closing != tt.closing {
			t.Errorf("matchDelimiter(%q, eof %v) = %v %d %v; want %v %d %v", tt.in, tt.eof, v, n, closing, tt.v, tt.n, tt.closing)
		}
	}
}
