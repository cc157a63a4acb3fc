package mailparse

import (
	"bufio"
	"bytes"
	"io"
	"strings"
)

// uuReader decodes a uuencoded body (Content-Transfer-Encoding x-uuencode,
// uuencode, x-uue; the POSIX uuencode format): lines before "begin MODE
// NAME" are skipped, each data line's first character gives its byte
// count, and a zero-length line or "end" ends the data. It is lenient the
// way decoders in mail readers are: a line cut short (trailing spaces
// stripped in transit) is padded, characters past the count (a checksum)
// are ignored, lines that are not uuencode are skipped and counted, and a
// body with no "begin" line is decoded from its first data line.
type uuReader struct {
	br      *bufio.Reader
	name    string // from the begin line
	begun   bool
	ended   bool
	noBegin bool  // data came before any begin line
	bad     int64 // lines skipped as not uuencode
	out     []byte
	obuf    [64]byte
	err     error
}

func newUUReader(r io.Reader) *uuReader {
	u := &uuReader{br: bufio.NewReaderSize(r, 4096)}
	u.prime()
	return u
}

// prime reads up to the begin line (or the first data line), so the file
// name is known before the first Read.
func (u *uuReader) prime() {
	for !u.begun && u.err == nil {
		line, err := u.peekLine()
		if err != nil && len(line) == 0 {
			u.err = err
			return
		}
		t := strings.TrimRight(string(line), " \t\r\n")
		if rest, ok := strings.CutPrefix(t, "begin "); ok {
			u.readLine()
			// "begin 644 file name.txt": the mode, then the name (which may hold spaces).
			if _, name, ok := strings.Cut(strings.TrimLeft(rest, " "), " "); ok {
				u.name = strings.TrimSpace(name)
			}
			u.begun = true
			return
		}
		if isUULine(t) && len(t) > 1 {
			u.begun, u.noBegin = true, true // data without a begin line
			return
		}
		u.readLine() // preamble text
	}
}

func (u *uuReader) peekLine() ([]byte, error) {
	b, err := u.br.Peek(u.br.Size())
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i+1], nil
	}
	if err == bufio.ErrBufferFull {
		err = nil
	}
	return b, err
}

// readLine returns the next line (cut at the buffer size, the rest
// dropped), or an error with no bytes at the end.
func (u *uuReader) readLine() ([]byte, error) {
	line, err := u.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		for err == bufio.ErrBufferFull {
			_, err = u.br.ReadSlice('\n')
		}
		u.bad++
		return nil, nil // far longer than any uuencode line: not one
	}
	if len(line) > 0 {
		return line, nil
	}
	return nil, err
}

// isUULine reports whether s (without its line end) can be a data line:
// every character is in the uuencode alphabet " " … "`".
func isUULine(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '`' {
			return false
		}
	}
	return true
}

func (u *uuReader) Read(p []byte) (int, error) {
	for len(u.out) == 0 {
		if u.err != nil {
			return 0, u.err
		}
		if u.ended {
			// Drain what follows "end", so the part is read to its end.
			if _, err := io.Copy(io.Discard, u.br); err != nil {
				u.err = err
			} else {
				u.err = io.EOF
			}
			continue
		}
		line, err := u.readLine()
		if err != nil {
			u.err = err
			continue
		}
		if line == nil {
			continue
		}
		u.decodeLine(strings.TrimRight(string(line), "\r\n"))
	}
	n := copy(p, u.out)
	u.out = u.out[n:]
	return n, nil
}

func (u *uuReader) decodeLine(s string) {
	t := strings.TrimRight(s, " \t")
	switch {
	case t == "end":
		u.ended = true
		return
	case s == "":
		return // blank lines between data lines: seen in the wild, harmless
	case t == "":
		u.ended = true // " ", the zero-length line, its padding stripped
		return
	}
	if !isUULine(t) {
		u.bad++
		return
	}
	n := int((s[0] - ' ') & 63)
	if n == 0 {
		u.ended = true // the zero-length line before "end"
		return
	}
	data := s[1:]
	out := u.obuf[:0]
	for i := 0; len(out) < n; i += 4 {
		var q [4]byte
		for k := range q {
			if i+k < len(data) {
				q[k] = (data[i+k] - ' ') & 63
			}
		}
		out = append(out, q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2, q[2]<<6|q[3])
	}
	u.out = out[:n]
}
