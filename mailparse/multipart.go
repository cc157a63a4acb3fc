package mailparse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// multipart walks the parts of a multipart entity with a boundaryScanner.
//
// What RFC 2046 §5.1.1 leaves to the reader is decided the way mail
// readers do: a delimiter is "--boundary" at the start of a line, followed
// by "--" (the close delimiter) or neither, then only linear whitespace up
// to the line end; so "--b1-1" is not a delimiter of "b1", whatever the
// nesting order. Two delimiters in a row, or with only blank lines
// between them, give an empty part, which is skipped and reported. (A part
// with a header but no body is a part: an empty text is no body
// candidate, an empty attachment is listed.) A multipart with no delimiter at all gives no body
// candidate: when blank it is reported and dropped, when it holds text it
// is kept (as the text of a message whose only body it is, else as an
// attachment of its multipart type).
func (p *parser) multipart(e entity, mediatype, boundary string) {
	body := e.body
	// RFC 2045 §6.4 forbids encoding a multipart, but some mailers
	// base64-encode one anyway; its delimiters are then only in the
	// decoded bytes.
	switch cte := strings.ToLower(strings.TrimSpace(e.get("Content-Transfer-Encoding"))); cte {
	case "base64", "quoted-printable":
		dec, ds, _ := transferDecoder(cte, body)
		defer releaseDecoders(ds.b64, ds.qp)
		p.errorf("%s: %s with Content-Transfer-Encoding %s (not allowed for multiparts); decoded", e.where(), mediatype, cte)
		body = dec
	}
	br := getReader(&partReaders, body)
	defer putReader(&partReaders, br)
	s := newBoundaryScanner(br, boundary)

	// The preamble is kept (to a cap) in case no delimiter ever comes.
	keep := max(p.max, maxPreambleKeep) + 1
	pre := &capRecorder{r: &partBody{s: s, start: true}, max: keep}
	_, err := io.Copy(io.Discard, pre)
	if p.stopped() {
		return
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		p.noDelimiter(e, mediatype, s.dash, pre.buf, keep)
		return
	}
	pre.buf = nil
	if s.closed {
		p.errorf("%s: %s has no parts", e.where(), mediatype)
		return
	}

	childType := "text/plain"
	if mediatype == "multipart/digest" {
		childType = "message/rfc822" // RFC 2046 §5.1.5
	}
	for n := 1; !s.closed; n++ {
		path := strconv.Itoa(n)
		if e.path != "" {
			path = e.path + "." + path
		}
		h := s.readHeader()
		if p.stopped() {
			return
		}
		for _, pr := range h.problems {
			p.errorf("part %s: %s", path, pr)
		}
		if h.eof {
			p.errorf("%s: message ends inside the header of part %s (closing boundary of %s missing)", e.where(), path, mediatype)
			return
		}
		if h.delimiter && h.lines == 0 {
			p.errorf("part %s is empty (two boundary lines in a row); skipped", path)
			continue
		}
		body := &partBody{s: s, start: true, prefix: h.prefix, pendEOL: h.pendEOL}
		if h.delimiter {
			body.done, body.err = true, io.EOF
		} else if h.lines == 0 && len(h.prefix) == 0 {
			// No header: the part is empty too when only blank lines
			// separate the two delimiters.
			head, blank, err := readBlank(body, maxEmptyPartScan)
			if p.stopped() {
				return
			}
			if blank && err == io.EOF {
				p.errorf("part %s is empty (no header, only blank lines before the next boundary line); skipped", path)
				continue
			}
			body.prefix = head // given again, before the rest
		}
		raw := &errMemo{r: body}
		fields := h.fields
		child := entity{
			get:         func(name string) string { v, _ := field(fields, name); return v },
			body:        raw,
			raw:         raw,
			depth:       e.depth + 1,
			path:        path,
			defaultType: childType,
			parent:      mediatype,
		}
		p.walk(child)
		if p.stopped() {
			return
		}
		// Drain what the leaf left after a decoding error, so the next
		// header is read from the next delimiter on.
		io.Copy(io.Discard, raw)
		if p.stopped() {
			return
		}
		if raw.err != nil {
			if errors.Is(raw.err, io.ErrUnexpectedEOF) {
				p.errorf("%s: message ends inside part %s (closing boundary of %s missing)", e.where(), path, mediatype)
			} else {
				p.errorf("%s: part %s: %v; the rest of the multipart is skipped", e.where(), path, raw.err)
			}
			return
		}
	}
}

// maxEmptyPartScan is how much blank input a part with no header may start
// with and still be found empty.
const maxEmptyPartScan = 64 << 10

// maxPreambleKeep is how much of a multipart body is kept while looking
// for its first delimiter, to be shown when there is none.
const maxPreambleKeep = 1 << 20

// noDelimiter handles a multipart body in which no delimiter line came.
func (p *parser) noDelimiter(e entity, mediatype string, dash, kept []byte, keep int64) {
	if isBlank(kept) {
		p.errorf("%s: %s is empty (no boundary line %q); no body taken from it", e.where(), mediatype, dash)
		return
	}
	body := entity{get: func(string) string { return "" }, body: bytes.NewReader(kept), raw: e.raw,
		depth: e.depth, path: e.path, defaultType: "text/plain"}
	if e.path == "" {
		// The message's only content: shown as its text.
		p.errorf("%s: %s has no boundary line %q; body kept as text", e.where(), mediatype, dash)
		p.leaf(body, "text/plain", nil)
		return
	}
	if int64(len(kept)) >= keep {
		p.errorf("%s: %s has no boundary line %q; kept as an attachment (its first %d bytes)", e.where(), mediatype, dash, keep-1)
		kept = kept[:keep-1]
		body.body = bytes.NewReader(kept)
	} else {
		p.errorf("%s: %s has no boundary line %q; kept as an attachment", e.where(), mediatype, dash)
	}
	body.get = e.get
	p.leaf(body, mediatype, nil)
}

// boundaryScanner splits one multipart body into delimiter-separated
// parts, reading through br, which no other reader shares. It replaces
// go-message's textproto multipart reader, which loses the rest of a
// multipart on a doubled delimiter, a broken fold in a part header, or an
// inner boundary that starts with the outer one. Memory stays bounded: a
// body streams through br's buffer, and only a part header's Content-*
// fields (up to maxPartHeaderBytes) are kept.
type boundaryScanner struct {
	br       *bufio.Reader
	nlDash   []byte // "\n--" + boundary
	dash     []byte // "--" + boundary
	closed   bool   // the last delimiter read was the close delimiter
	eof      bool   // br's source has ended
	skipLine bool   // a delimiter's padding outran the buffer; drop the rest of its line
	line     []byte // reused by readHeader
}

func newBoundaryScanner(br *bufio.Reader, boundary string) *boundaryScanner {
	nl := make([]byte, 0, 3+len(boundary))
	nl = append(append(nl, "\n--"...), boundary...)
	return &boundaryScanner{br: br, nlDash: nl, dash: nl[1:]}
}

type delimVerdict int

const (
	delimNo delimVerdict = iota
	delimYes
	delimMore // more input is needed to tell
)

// matchDelimiter tells whether buf starts with a delimiter line ("--"
// boundary, optional "--", linear whitespace, a line end or the end of
// input) and how long it is.
func matchDelimiter(buf, dash []byte, atEOF bool) (v delimVerdict, n int, closing bool) {
	if len(buf) < len(dash) {
		if !atEOF && bytes.HasPrefix(dash, buf) {
			return delimMore, 0, false
		}
		return delimNo, 0, false
	}
	if !bytes.HasPrefix(buf, dash) {
		return delimNo, 0, false
	}
	i := len(dash)
	if i < len(buf) && buf[i] == '-' {
		if i+1 == len(buf) {
			if atEOF {
				return delimNo, 0, false
			}
			return delimMore, 0, false
		}
		if buf[i+1] != '-' {
			return delimNo, 0, false
		}
		closing = true
		i += 2
	}
	for i < len(buf) && (buf[i] == ' ' || buf[i] == '\t') {
		i++
	}
	if i == len(buf) {
		if atEOF {
			return delimYes, i, closing
		}
		return delimMore, 0, false
	}
	switch buf[i] {
	case '\n':
		return delimYes, i + 1, closing
	case '\r':
		if i+1 == len(buf) {
			if atEOF {
				return delimYes, i + 1, closing
			}
			return delimMore, 0, false
		}
		if buf[i+1] == '\n' {
			return delimYes, i + 2, closing
		}
	}
	return delimNo, 0, false
}

// isDelimiterLine is matchDelimiter for a whole line without its ending.
func (s *boundaryScanner) isDelimiterLine(line []byte) (ok, closing bool) {
	v, _, closing := matchDelimiter(line, s.dash, true)
	return v == delimYes, closing
}

// delimiterAt tells whether the buffered input from offset off on starts
// a delimiter line, reading more as needed, and if so consumes input up to
// the line's end. Only a source error (not io.EOF) is returned.
func (s *boundaryScanner) delimiterAt(off int) (bool, error) {
	for {
		buf, _ := s.br.Peek(s.br.Buffered())
		v, n, closing := matchDelimiter(buf[off:], s.dash, s.eof)
		switch {
		case v == delimNo:
			return false, nil
		case v == delimMore && len(buf) >= s.br.Size():
			// Whitespace padding longer than the buffer: still a delimiter.
			v, n, s.skipLine = delimYes, len(buf)-off, true
			closing = bytes.HasPrefix(buf[off+len(s.dash):], []byte("--"))
		case v == delimMore:
			if _, err := s.br.Peek(len(buf) + 1); err != nil {
				if err != io.EOF {
					return false, err
				}
				s.eof = true
			}
			continue
		}
		s.closed = closing
		s.br.Discard(off + n)
		if s.skipLine {
			s.skipLine = false
			for {
				if _, err := s.br.ReadSlice('\n'); err != bufio.ErrBufferFull {
					break
				}
			}
		}
		return true, nil
	}
}

// buffered returns what br holds, reading once if it holds nothing; the
// error is io.EOF or a source error, and only with no bytes.
func (s *boundaryScanner) buffered() ([]byte, error) {
	if s.br.Buffered() == 0 {
		if _, err := s.br.Peek(1); err != nil {
			if err == io.EOF {
				s.eof = true
			}
			return nil, err
		}
	}
	buf, _ := s.br.Peek(s.br.Buffered())
	return buf, nil
}

// partBody reads one part's body (or the preamble) up to the next
// delimiter, which it consumes. It ends with io.EOF at a delimiter and
// io.ErrUnexpectedEOF when the input ends first. The line break before a
// delimiter belongs to the delimiter (RFC 2046 §5.1.1), so it is held back
// until the next line is known not to be one.
type partBody struct {
	s       *boundaryScanner
	prefix  []byte // body bytes the header reader took (a body with no blank line before it)
	pendEOL string // the line break after prefix, given only if no delimiter follows
	start   bool   // at a line start not preceded by a held-back line break
	safe    int    // buffered bytes already known to be content
	done    bool
	err     error
}

func (b *partBody) finish(err error) (int, error) {
	b.done, b.err = true, err
	return 0, err
}

func (b *partBody) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(b.prefix) > 0 {
		n := copy(p, b.prefix)
		b.prefix = b.prefix[n:]
		return n, nil
	}
	if b.done {
		return 0, b.err
	}
	s := b.s
	if b.safe > 0 {
		// Scanned by an earlier Read whose p was too short for them.
		buf, _ := s.br.Peek(b.safe)
		n := copy(p, buf)
		s.br.Discard(n)
		b.safe -= n
		return n, nil
	}
	for {
		if b.start {
			ok, err := s.delimiterAt(0)
			if err != nil {
				return b.finish(err)
			}
			if ok {
				return b.finish(io.EOF)
			}
			if s.eof && s.br.Buffered() == 0 && b.pendEOL == "" {
				return b.finish(io.ErrUnexpectedEOF)
			}
			b.start = false
			if b.pendEOL != "" {
				n := copy(p, b.pendEOL)
				b.pendEOL = b.pendEOL[n:]
				return n, nil
			}
		}
		buf, err := s.buffered()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return b.finish(err)
		}
		end := len(buf)
		if i := bytes.Index(buf, s.nlDash); i >= 0 {
			end = i
			if end > 0 && buf[end-1] == '\r' {
				end--
			}
			if end == 0 {
				// A candidate delimiter right here, after its line break.
				eol := i + 1
				ok, err := s.delimiterAt(eol)
				if err != nil {
					return b.finish(err)
				}
				if ok {
					return b.finish(io.EOF)
				}
				// Not one: the line break is content. Peek again, as
				// delimiterAt may have moved the buffer.
				lb, _ := s.br.Peek(eol)
				n := copy(p, lb)
				s.br.Discard(n)
				return n, nil
			}
		} else if !s.eof {
			// Hold back what may be the start of a delimiter: a last
			// line break followed by a prefix of "--boundary", or a CR.
			if k := bytes.LastIndexByte(buf, '\n'); k >= 0 && len(buf)-k < len(s.nlDash) && bytes.HasPrefix(s.nlDash, buf[k:]) {
				end = k
			}
			if end > 0 && buf[end-1] == '\r' {
				end--
			}
			if end == 0 {
				if _, err := s.br.Peek(len(buf) + 1); err != nil {
					if err != io.EOF {
						return b.finish(err)
					}
					s.eof = true
				}
				continue
			}
		}
		n := copy(p, buf[:end])
		s.br.Discard(n)
		b.safe = end - n
		return n, nil
	}
}

// maxPartHeaderProblems bounds the parse errors one part header gives.
const maxPartHeaderProblems = 10

// partHeader is what readHeader found before a part's body.
type partHeader struct {
	fields    []rawField // the Content-* fields, unfolded
	problems  []string
	delimiter bool   // the header ended at a delimiter: the part has no body
	eof       bool   // the input ended inside the header
	prefix    []byte // the body's first line, when no blank line came before it
	pendEOL   string // its line break
	lines     int    // header lines read before the blank line or delimiter
}

// readHeader reads a part header leniently:
//   - a line that starts with whitespace continues the field before it;
//   - a line that is not a field ("name:" with a token name) continues the
//     field before it when the header goes on after it (a fold that lost
//     its leading whitespace), is skipped when no field precedes it, and
//     otherwise starts the body (a missing blank line);
//   - a delimiter line ends the header and the part, which has no body;
//   - only Content-* fields are kept, and past maxPartHeaderBytes none.
func (s *boundaryScanner) readHeader() (h partHeader) {
	var (
		total    int64
		over     bool
		cur      *rawField
		dropping bool // continuation lines belong to a field not kept
		value    []byte
	)
	flush := func() {
		if cur != nil {
			cur.value = string(value)
			h.fields = append(h.fields, *cur)
			cur = nil
		}
		dropping = false
	}
	problem := func(format string, args ...any) {
		if len(h.problems) < maxPartHeaderProblems {
			h.problems = append(h.problems, fmt.Sprintf(format, args...))
		} else if len(h.problems) == maxPartHeaderProblems {
			h.problems = append(h.problems, "more malformed header lines")
		}
	}
	addLine := func(l []byte) {
		if cur == nil {
			return
		}
		l = bytes.Trim(l, " \t")
		if len(l) == 0 {
			return
		}
		if len(value) > 0 {
			value = append(value, ' ')
		}
		value = append(value, l...)
	}
	for first := true; ; first = false {
		keep := int64(maxPartHeaderBytes) - total
		if over {
			keep = int64(len(s.dash)) + 80 // enough to see a delimiter
		}
		line, n, eol, err := readLine(s.br, max(keep, int64(len(s.dash))+80), s.line[:0])
		s.line = line
		total += n
		if n == 0 && err != nil {
			if err == io.EOF {
				s.eof = true
			}
			h.eof = true
			flush()
			return h
		}
		if ok, closing := s.isDelimiterLine(line); ok {
			s.closed = closing
			h.delimiter = true
			flush()
			return h
		}
		if len(line) == 0 && n == int64(len(eol)) {
			flush()
			return h // the blank line
		}
		h.lines++
		if over {
			continue
		}
		if total > maxPartHeaderBytes {
			over = true
			if line[0] != ' ' && line[0] != '\t' {
				flush()
			}
			cur, dropping = nil, true
			problem("header larger than %d bytes; its later fields were dropped", maxPartHeaderBytes)
			continue
		}
		if first && (line[0] == ' ' || line[0] == '\t') {
			if t := bytes.TrimLeft(line, " \t"); isFieldLine(t) {
				// Indented, but a field: read as one (its text is not a
				// continuation of anything).
				problem("header starts with an indented line %s; read as a field", quoteShort(line))
				line = t
			} else {
				problem("header starts with a continuation line %s; skipped", quoteShort(line))
				continue
			}
		}
		switch {
		case line[0] == ' ' || line[0] == '\t':
			addLine(line)
		case isFieldLine(line):
			flush()
			colon := bytes.IndexByte(line, ':')
			name := bytes.TrimRight(line[:colon], " \t")
			if len(name) < 8 || !strings.EqualFold(string(name[:8]), "content-") {
				dropping = true
				continue
			}
			cur = &rawField{name: string(name)}
			value = value[:0]
			addLine(line[colon+1:])
		case s.headerGoesOn():
			if cur != nil || dropping {
				problem("header line %s continues a field without leading whitespace; read as a fold", quoteShort(line))
				addLine(line)
			} else {
				problem("header line %s is not a field; skipped", quoteShort(line))
			}
		default:
			flush()
			problem("header line %s is not a field and no blank line precedes it; read as the start of the body", quoteShort(line))
			h.prefix = append([]byte(nil), line...)
			h.pendEOL = eol
			if eol == "" {
				s.eof = true
			}
			return h
		}
	}
}

// isFieldLine reports whether line starts a header field: a token (RFC
// 7230 tchar, which all real field names are), optional whitespace, ':'.
func isFieldLine(line []byte) bool {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return false
	}
	name := bytes.TrimRight(line[:colon], " \t")
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// headerGoesOn looks at the next line without consuming it: a field, a
// continuation or the blank line mean the header is not over.
func (s *boundaryScanner) headerGoesOn() bool {
	buf, err := s.br.Peek(min(s.br.Size(), 1024))
	if err == io.EOF {
		s.eof = true
	}
	if len(buf) == 0 {
		return false
	}
	switch buf[0] {
	case ' ', '\t', '\n':
		return true
	case '\r':
		return len(buf) > 1 && buf[1] == '\n'
	}
	line := buf
	if k := bytes.IndexByte(buf, '\n'); k >= 0 {
		line = bytes.TrimSuffix(buf[:k], []byte("\r"))
	}
	if ok, _ := s.isDelimiterLine(line); ok {
		return false
	}
	return isFieldLine(line)
}
