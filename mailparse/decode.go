package mailparse

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
)

func init() {
	// Mail clients have long read ISO-8859-1 and US-ASCII-labelled 8-bit
	// text as Windows-1252 (so do browsers, per WHATWG): the C1 range of
	// Latin-1 is never meant as control characters but as curly quotes and
	// dashes sent by Outlook under the Latin-1 label.
	for _, name := range []string{"iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1", "cp819", "ibm819", "csisolatin1", "iso_8859-1:1987", "iso-ir-100"} {
		charset.RegisterEncoding(name, charmap.Windows1252)
	}
	// Microsoft code page names seen in the wild that x/text indexes don't know.
	charset.RegisterEncoding("cp932", japanese.ShiftJIS)
	charset.RegisterEncoding("ms932", japanese.ShiftJIS)
	charset.RegisterEncoding("cp949", korean.EUCKR) // x/text's EUC-KR is the UHC superset
	charset.RegisterEncoding("ks_c_5601", korean.EUCKR)
	charset.RegisterEncoding("ks_c_5601-1989", korean.EUCKR)
	// htmlindex maps these to the WHATWG "replacement" encoding, which turns a
	// whole body into a single U+FFFD. Disabling them makes them unknown
	// charsets instead: the (7-bit) bytes are kept and a parse error says so.
	for _, name := range []string{"iso-2022-kr", "csiso2022kr", "iso-2022-cn", "iso-2022-cn-ext"} {
		charset.RegisterEncoding(name, nil)
	}
}

// isUTF8Label reports whether a charset label means bytes that are used as
// UTF-8 directly. US-ASCII is a subset; when 8-bit bytes appear anyway,
// toUTF8 reads them as Windows-1252.
func isUTF8Label(cs string) bool {
	switch cs {
	case "", "utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us", "csascii", "x-utf_8j", "unicode-1-1-utf-8":
		return true
	}
	return false
}

// normCharset lowercases a charset label and drops quotes and an RFC 2231
// language suffix ("utf-8*en").
func normCharset(cs string) string {
	cs = strings.ToLower(strings.Trim(strings.TrimSpace(cs), `"'`))
	if i := strings.IndexByte(cs, '*'); i >= 0 {
		cs = cs[:i]
	}
	return strings.TrimSpace(cs)
}

// decodeCharset converts b from the labelled charset to UTF-8. Unknown
// labels return the bytes made valid (toUTF8) and ok=false.
func decodeCharset(cs string, b []byte) (s string, ok bool) {
	cs = normCharset(cs)
	if isUTF8Label(cs) {
		s, _ = toUTF8(string(b))
		return s, true
	}
	r, err := charset.Reader(cs, bytes.NewReader(b))
	if err != nil {
		s, _ = toUTF8(string(b))
		return s, false
	}
	out, err := io.ReadAll(r)
	if err != nil {
		s, _ = toUTF8(string(b))
		return s, false
	}
	s, _ = toUTF8(string(out))
	return s, true
}

// toUTF8 returns s as valid UTF-8. Valid multi-byte sequences are kept;
// each byte that is not part of one is read as Windows-1252, the most
// common source of raw 8-bit bytes in mail. bad reports whether any byte
// needed that treatment.
func toUTF8(s string) (out string, bad bool) {
	if utf8.ValidString(s) {
		return s, false
	}
	var sb strings.Builder
	sb.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			sb.WriteRune(charmap.Windows1252.DecodeByte(s[i]))
		} else {
			sb.WriteString(s[i : i+size])
		}
		i += size
	}
	return sb.String(), true
}

// bomCharset names the charset a byte order mark at the start of b
// announces, or "".
func bomCharset(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\xef\xbb\xbf")):
		return "utf-8"
	case bytes.HasPrefix(b, []byte("\xff\xfe")):
		return "utf-16le"
	case bytes.HasPrefix(b, []byte("\xfe\xff")):
		return "utf-16be"
	}
	return ""
}

// trimPartialRune drops an incomplete UTF-8 sequence at the end of b, left
// by a cut at a byte limit.
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

// cutUTF8 cuts s to at most n bytes without splitting a rune.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// srcReader wraps the message source and remembers its first error other
// than io.EOF. Decoders and charset readers may wrap or replace read
// errors, so Parse asks this reader, not an error chain, whether the
// source itself failed.
type srcReader struct {
	r   io.Reader
	err error
}

func (s *srcReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// errMemo remembers the first non-EOF error of a part's raw reader, so the
// walker can describe a broken part once, however many decoders sit on top.
type errMemo struct {
	r   io.Reader
	err error
}

func (m *errMemo) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF && m.err == nil {
		m.err = err
	}
	return n, err
}

// base64Reader decodes base64 (RFC 2045 §6.8) leniently and the same way
// however the input is chunked (the standard library's decoder is strict,
// and after a "=" in mid-stream its result depends on read sizes). Line
// breaks and whitespace are skipped; other bytes outside the alphabet are
// skipped and counted; padding ends a group early, after which decoding
// resumes (some mailers concatenate encoded chunks); a group cut short at
// the end yields the bytes it holds. Only a single leftover character
// carries no byte, and is counted.
type base64Reader struct {
	r        io.Reader
	in       []byte
	obuf     []byte  // backing array of out
	out      []byte  // decoded bytes not yet returned
	q        [4]byte // sextets of the current group
	nq       int
	junk     int64 // bytes outside the alphabet
	midPad   int64 // groups ended early by '=' before more data
	padEnded bool  // the last group was closed by '='
	dangling bool  // one sextet left at the end
	err      error
}

var b64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = byte(i)
	}
	return t
}()

var (
	base64Readers = sync.Pool{New: func() any { return &base64Reader{in: make([]byte, 4096)} }}
	qpReaders     = sync.Pool{New: func() any {
		return &qpReader{br: bufio.NewReaderSize(nil, 4096), obuf: make([]byte, 0, 8192)}
	}}
)

// newBase64Reader takes a decoder from the pool; releaseDecoders returns it.
func newBase64Reader(r io.Reader) *base64Reader {
	d := base64Readers.Get().(*base64Reader)
	in, obuf := d.in, d.obuf
	*d = base64Reader{r: r, in: in, obuf: obuf[:0]}
	return d
}

// releaseDecoders returns decoders (either may be nil) to their pools once
// nothing reads through them any more.
func releaseDecoders(b64 *base64Reader, qp *qpReader) {
	if b64 != nil {
		b64.r, b64.out = nil, nil
		base64Readers.Put(b64)
	}
	if qp != nil {
		qp.br.Reset(nil)
		qp.out = nil
		qpReaders.Put(qp)
	}
}

func (d *base64Reader) Read(p []byte) (int, error) {
	for len(d.out) == 0 && d.err == nil {
		n, err := d.r.Read(d.in)
		d.decode(d.in[:n])
		if err != nil {
			d.flush()
			d.err = err
		}
	}
	if len(d.out) > 0 {
		n := copy(p, d.out)
		d.out = d.out[n:]
		return n, nil
	}
	return 0, d.err
}

func (d *base64Reader) decode(b []byte) {
	// Every 4 input bytes give at most 3 output bytes; a group carried in
	// from the last call and one flushed at the end add at most 5.
	if need := len(b)/4*3 + 5; cap(d.obuf) < need {
		d.obuf = make([]byte, 0, need)
	}
	out := d.obuf[:cap(d.obuf)]
	o := 0
	for i := 0; i < len(b); {
		// Fast path: whole groups of four alphabet bytes, which is all
		// of a well-formed line. Valid values are below 64, so one OR
		// tells whether any of the four is outside the alphabet.
		if d.nq == 0 && !d.padEnded {
			for ; i+8 <= len(b); i += 8 {
				q := b[i : i+8 : i+8]
				v0, v1, v2, v3 := b64Value[q[0]], b64Value[q[1]], b64Value[q[2]], b64Value[q[3]]
				v4, v5, v6, v7 := b64Value[q[4]], b64Value[q[5]], b64Value[q[6]], b64Value[q[7]]
				if (v0|v1|v2|v3|v4|v5|v6|v7)&0x80 != 0 {
					break
				}
				n := uint64(v0)<<42 | uint64(v1)<<36 | uint64(v2)<<30 | uint64(v3)<<24 |
					uint64(v4)<<18 | uint64(v5)<<12 | uint64(v6)<<6 | uint64(v7)
				w := out[o : o+6 : o+6]
				w[0], w[1], w[2], w[3], w[4], w[5] = byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
				o += 6
			}
			for ; i+4 <= len(b); i += 4 {
				a, b1, c, e := b64Value[b[i]], b64Value[b[i+1]], b64Value[b[i+2]], b64Value[b[i+3]]
				if (a|b1|c|e)&0x80 != 0 {
					break
				}
				out[o] = a<<2 | b1>>4
				out[o+1] = b1<<4 | c>>2
				out[o+2] = c<<6 | e
				o += 3
			}
			if i == len(b) {
				break
			}
		}
		c := b[i]
		i++
		v := b64Value[c]
		if v == 0xff {
			switch c {
			case '=':
				if d.nq >= 2 {
					d.out = out[:o]
					d.flush()
					o = len(d.out)
					d.padEnded = true
				}
			case ' ', '\t', '\r', '\n':
			default:
				d.junk++
			}
			continue
		}
		if d.padEnded {
			d.midPad++
			d.padEnded = false
		}
		d.q[d.nq] = v
		d.nq++
		if d.nq == 4 {
			out[o] = d.q[0]<<2 | d.q[1]>>4
			out[o+1] = d.q[1]<<4 | d.q[2]>>2
			out[o+2] = d.q[2]<<6 | d.q[3]
			o += 3
			d.nq = 0
		}
	}
	d.out = out[:o]
}

// flush emits a partial group: 2 sextets hold 1 byte, 3 hold 2.
func (d *base64Reader) flush() {
	switch d.nq {
	case 1:
		d.dangling = true
	case 2:
		d.out = append(d.out, d.q[0]<<2|d.q[1]>>4)
	case 3:
		d.out = append(d.out, d.q[0]<<2|d.q[1]>>4, d.q[1]<<4|d.q[2]>>2)
	}
	d.nq = 0
}

// qpReader decodes quoted-printable (RFC 2045 §6.7) leniently, the way mail
// readers do: "=" not followed by two hex digits or a line break is kept
// as is, lowercase hex is accepted, control characters and 8-bit bytes
// pass through, and whitespace before a line break is dropped. The
// standard library's reader fails on the first control character instead.
type qpReader struct {
	br   *bufio.Reader
	ws   []byte // pending spaces and tabs, dropped if a line break follows
	obuf []byte // backing array of out
	out  []byte // decoded bytes not yet returned
	err  error
	bad  int64 // "=" not starting a hex pair or a soft line break
}

// newQPReader takes a decoder from the pool; releaseDecoders returns it.
func newQPReader(r io.Reader) *qpReader {
	q := qpReaders.Get().(*qpReader)
	br, ws, obuf := q.br, q.ws, q.obuf
	br.Reset(r)
	*q = qpReader{br: br, ws: ws[:0], obuf: obuf[:0]}
	return q
}

// maxPendingWS bounds the whitespace held back while waiting to see
// whether a line break follows it.
const maxPendingWS = 1024

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func (q *qpReader) Read(p []byte) (int, error) {
	for len(q.out) == 0 && q.err == nil {
		q.out = q.obuf[:0]
		q.step()
		q.obuf = q.out[:0]
	}
	if len(q.out) > 0 {
		n := copy(p, q.out)
		q.out = q.out[n:]
		return n, nil
	}
	return 0, q.err
}

// step decodes up to one buffer of input into q.out.
func (q *qpReader) step() {
	for len(q.out) < 4096 {
		// Fast path over what is buffered: runs of ordinary bytes and
		// complete "=XX" escapes. Anything needing look-ahead past the
		// buffer goes the byte-by-byte way below.
		buf, _ := q.br.Peek(q.br.Buffered())
		// Decoded output is never longer than its input plus the held
		// whitespace, so room for both lets the loop index instead of append.
		if need := len(q.out) + len(q.ws) + len(buf); cap(q.out) < need {
			q.out = append(make([]byte, 0, need+need/2), q.out...)
		}
		out := q.out[:cap(q.out)]
		o := len(q.out)
		if len(q.ws) > 0 && len(buf) > 0 {
			// Whitespace held back by the slow path: what follows decides.
			switch c := buf[0]; {
			case c == '\n' || c == '\r' && len(buf) > 1 && buf[1] == '\n':
				q.ws = q.ws[:0]
			case c == ' ' || c == '\t' || c == '\r':
				buf = nil // more of it, or a lone CR: the slow path decides
			default: // text or "="
				o += copy(out[o:], q.ws)
				q.ws = q.ws[:0]
			}
		}
		i := 0
		for i < len(buf) {
			c := buf[i]
			if !qpSpecial[c] {
				start := i
				for i++; i < len(buf) && !qpSpecial[buf[i]]; i++ {
				}
				o += copy(out[o:], buf[start:i])
				continue
			}
			if c == ' ' || c == '\t' {
				// Whitespace is dropped only before a line break, so a
				// run followed by anything else in the buffer is text.
				j := i + 1
				for j < len(buf) && (buf[j] == ' ' || buf[j] == '\t') {
					j++
				}
				if j == len(buf) || buf[j] == '\r' && j+1 == len(buf) {
					break // cannot tell yet: the slow path holds it
				}
				if buf[j] == '\n' || buf[j] == '\r' && buf[j+1] == '\n' {
					i = j // trailing whitespace: dropped
					continue
				}
				o += copy(out[o:], buf[i:j])
				i = j
				continue
			}
			if c == '\r' && i+1 < len(buf) && buf[i+1] == '\n' {
				out[o], out[o+1] = '\r', '\n'
				o += 2
				i += 2
				continue
			}
			if c == '\n' {
				out[o] = '\n'
				o++
				i++
				continue
			}
			if c == '=' && i+2 < len(buf) {
				hi, ok1 := unhex(buf[i+1])
				lo, ok2 := unhex(buf[i+2])
				if ok1 && ok2 {
					out[o] = hi<<4 | lo
					o++
					i += 3
					continue
				}
			}
			break
		}
		q.out = out[:o]
		if i > 0 {
			q.br.Discard(i)
			continue
		}
		c, err := q.br.ReadByte()
		if err != nil {
			q.ws = q.ws[:0] // trailing whitespace at the end is dropped too
			q.err = err
			return
		}
		switch c {
		case ' ', '\t':
			q.ws = append(q.ws, c)
			if len(q.ws) > maxPendingWS {
				q.flushWS()
			}
		case '\n':
			q.ws = q.ws[:0]
			q.out = append(q.out, '\n')
		case '\r':
			if next, err := q.br.Peek(1); err == nil && next[0] == '\n' {
				q.br.ReadByte()
				q.ws = q.ws[:0]
				q.out = append(q.out, '\r', '\n')
			} else {
				q.flushWS()
				q.out = append(q.out, '\r')
			}
		case '=':
			q.flushWS()
			q.escape()
		default:
			q.flushWS()
			q.out = append(q.out, c)
		}
	}
}

// qpSpecial are the bytes step handles one by one.
var qpSpecial = [256]bool{' ': true, '\t': true, '\r': true, '\n': true, '=': true}

func (q *qpReader) flushWS() {
	if len(q.ws) > 0 {
		q.out = append(q.out, q.ws...)
		q.ws = q.ws[:0]
	}
}

// escape handles what follows an "=": a hex pair, a soft line break
// (possibly with trailing whitespace before it), or nothing special.
func (q *qpReader) escape() {
	peek, _ := q.br.Peek(2)
	if len(peek) == 0 {
		return // "=" at the very end: a soft break before EOF
	}
	if len(peek) == 2 {
		if hi, ok := unhex(peek[0]); ok {
			if lo, ok := unhex(peek[1]); ok {
				q.br.Discard(2)
				q.out = append(q.out, hi<<4|lo)
				return
			}
		}
	}
	// Soft line break: "=" then optional whitespace, then CRLF, LF or EOF.
	look, _ := q.br.Peek(80)
	i := 0
	for i < len(look) && (look[i] == ' ' || look[i] == '\t') {
		i++
	}
	switch {
	case i < len(look) && look[i] == '\n':
		q.br.Discard(i + 1)
		return
	case i+1 < len(look) && look[i] == '\r' && look[i+1] == '\n':
		q.br.Discard(i + 2)
		return
	case i == len(look) && len(look) < 80:
		q.br.Discard(i) // only whitespace until EOF
		return
	}
	q.bad++
	q.out = append(q.out, '=')
}

// transferDecoder returns a reader of the decoded body for a
// Content-Transfer-Encoding. Unknown encodings return the raw bytes and
// known=false.
func transferDecoder(cte string, r io.Reader) (dec io.Reader, ds decoders, known bool) {
	switch strings.ToLower(strings.Trim(strings.TrimSpace(cte), `"`)) {
	case "", "7bit", "8bit", "binary", "7-bit", "8-bit":
		return r, ds, true
	case "quoted-printable":
		ds.qp = newQPReader(r)
		return ds.qp, ds, true
	case "base64":
		ds.b64 = newBase64Reader(r)
		return ds.b64, ds, true
	case "x-uuencode", "uuencode", "x-uue", "uue":
		ds.uu = newUUReader(r)
		return ds.uu, ds, true
	}
	return r, ds, false
}

// decoders are the transfer decoders of one part (at most one is set),
// kept to read their problems afterwards.
type decoders struct {
	b64 *base64Reader
	qp  *qpReader
	uu  *uuReader
}
