package mailparse

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"mailtap/record"
	"strconv"
	"strings"
	"sync"

	"github.com/emersion/go-message/charset"
)

// DefaultMaxBodyBytes is used when ParseOptions.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 1 << 20

// ParseOptions controls Parse.
type ParseOptions struct {
	// MaxBodyBytes cuts text and html (each) at this many bytes, on a UTF-8
	// boundary, and sets Record.Truncated. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Attachments, if non-nil, receives the decoded bytes of every attachment
	// (output.attachments = "save"). Nil means metadata only.
	Attachments AttachmentSink
}

// AttachmentSink stores decoded attachments while they stream by.
type AttachmentSink interface {
	// Save is called once per attachment, in record order (index is its
	// position in Record.Attachments). It returns where to write the decoded
	// bytes and the path, relative to <out>, that the file will have once the
	// record is committed (Attachment.SavedAs). The parser closes w.
	// A nil w (with a nil error) skips saving that attachment.
	Save(index int, filename, contentType string) (w io.WriteCloser, savedAs string, err error)
}

// Limits that keep a hostile message from costing more than a bounded
// amount of memory or record size. Each one that bites leaves a parse error.
const (
	// maxDepth is how deep multiparts nest before the rest of a branch is
	// kept as one opaque attachment.
	maxDepth = 32
	// maxAttachments is how many attachments a record lists.
	maxAttachments = 1000
	// maxParseErrors is how many parse errors a record lists; one more
	// entry says how many were left out.
	maxParseErrors = 100
	// maxPartHeaderBytes bounds a part's header.
	maxPartHeaderBytes = 1 << 20
	// maxBoundaryLen is far above RFC 2046's 70 but keeps a whole
	// delimiter line within the scanner's 4 KiB look-ahead.
	maxBoundaryLen = 1000
)

// Parse reads one RFC 5322 message from r in a single streaming pass and
// fills the content fields of a Record: message ids, subject, addresses,
// date, text, html, truncated, attachments, headers, parse_errors. The
// session fields (id, account, mailbox, uid_validity, uid, internal_date,
// captured_at, flags, size) are left for the caller.
//
// Malformed content never fails: it is described in ParseErrors and the
// record is still usable. The error is non-nil only when reading r itself
// failed (a dropped connection) or the AttachmentSink failed (a full disk);
// then the record must not be written.
//
// Memory stays bounded whatever the message size: only the top-level
// header (up to 1 MiB) and text and html (up to MaxBodyBytes each) are
// held; attachments stream through SHA-256 and the sink. r is read to its
// end.
func Parse(r io.Reader, opts ParseOptions) (rec *record.Record, err error) {
	p := &parser{
		opts: opts,
		max:  opts.MaxBodyBytes,
		rec:  &record.Record{SchemaVersion: record.SchemaVersion},
		src:  &srcReader{r: r},
	}
	if p.max <= 0 {
		p.max = DefaultMaxBodyBytes
	}
	defer func() {
		// A panic is a bug in this package or a library; the message is
		// still described rather than lost, unless the source failed. A
		// panic in the caller's sink is the caller's and goes on up.
		if v := recover(); v != nil {
			if sp, ok := v.(sinkPanic); ok {
				panic(sp.v)
			}
			p.errorf("internal error: parser panicked (%v); the record may be incomplete", v)
		}
		switch {
		case p.fatal != nil:
			rec, err = nil, p.fatal
		case p.src.err != nil:
			rec, err = nil, fmt.Errorf("read message: %w", p.src.err)
		default:
			rec, err = p.finish(), nil
		}
	}()
	p.parse()
	return nil, nil // replaced by the deferred function
}

type parser struct {
	opts ParseOptions
	max  int64
	rec  *record.Record
	src  *srcReader

	fatal        error // sink failure: abort
	haveText     bool
	haveHTML     bool
	errCount     int
	attachCapped bool
}

// errorf adds a parse error (up to maxParseErrors of them).
func (p *parser) errorf(format string, args ...any) {
	p.errCount++
	if len(p.rec.ParseErrors) < maxParseErrors {
		p.rec.ParseErrors = append(p.rec.ParseErrors, clean(fmt.Sprintf(format, args...)))
	}
}

// stopped reports whether parsing must end: the source or the sink failed.
func (p *parser) stopped() bool { return p.fatal != nil || p.src.err != nil }

func (p *parser) finish() *record.Record {
	if p.errCount > len(p.rec.ParseErrors) {
		p.rec.ParseErrors = append(p.rec.ParseErrors,
			fmt.Sprintf("… and %d more parse errors", p.errCount-len(p.rec.ParseErrors)))
	}
	if p.haveHTML && strings.TrimSpace(p.rec.Text) == "" {
		p.rec.Text = htmlToText(p.rec.HTML, int(p.max))
	}
	p.rec.Normalize()
	return p.rec
}

func (p *parser) parse() {
	br := getReader(&topReaders, p.src)
	defer putReader(&topReaders, br)
	fields, rest := p.readTopHeader(br)
	if p.stopped() {
		return
	}
	if len(fields) == 0 && len(rest) == 0 {
		if _, err := br.Peek(1); err == io.EOF {
			p.errorf("message is empty")
			return
		}
	}
	p.headerFields(fields)

	var body io.Reader = br
	if len(rest) > 0 {
		body = io.MultiReader(bytes.NewReader(rest), br)
	}
	raw := &errMemo{r: body}
	p.walk(entity{
		get:         func(name string) string { v, _ := field(fields, name); return v },
		body:        raw,
		raw:         raw,
		defaultType: "text/plain",
	})
	if p.stopped() {
		return
	}
	// Read what the walk left (a top-level multipart's epilogue, a part
	// abandoned after an error), so the source is consumed and a
	// connection dropped near the end still counts as a failure.
	io.Copy(io.Discard, raw)
	if raw.err != nil && !p.stopped() {
		p.errorf("body: %v", raw.err)
	}
}

// headerFields fills headers[], subject, ids, addresses and date.
func (p *parser) headerFields(fields []rawField) {
	subjectSeen := false
	for _, f := range fields {
		val, problems := headerText(f.value)
		for _, pr := range problems {
			p.errorf("header %q: %s", f.name, pr)
		}
		p.rec.Headers = append(p.rec.Headers, record.Header{Name: f.name, Value: val})
		if !subjectSeen && strings.EqualFold(f.name, "Subject") {
			p.rec.Subject, subjectSeen = val, true
		}
	}

	for _, f := range fields {
		if !strings.EqualFold(f.name, "Message-Id") {
			continue
		}
		ids, bad := parseMsgIDs(clean(f.value))
		if len(ids) > 0 {
			p.rec.MessageID = ids[0]
		}
		if bad || len(ids) != 1 {
			p.errorf("header %q: malformed msg-id %s", f.name, quoteShort(f.value))
		}
		break
	}
	for _, name := range []string{"In-Reply-To", "References"} {
		var all []string
		for _, f := range fields {
			if !strings.EqualFold(f.name, name) {
				continue
			}
			ids, bad := parseMsgIDs(clean(f.value))
			if bad {
				p.errorf("header %q: malformed msg-id list %s; kept %d id(s)", f.name, quoteShort(f.value), len(ids))
			}
			all = append(all, ids...)
		}
		if name == "In-Reply-To" {
			p.rec.InReplyTo = all
		} else {
			p.rec.References = all
		}
	}

	p.rec.From = p.addressList(fields, "From")
	p.rec.Sender = p.addressList(fields, "Sender")
	p.rec.ReplyTo = p.addressList(fields, "Reply-To")
	p.rec.To = p.addressList(fields, "To")
	p.rec.Cc = p.addressList(fields, "Cc")
	p.rec.Bcc = p.addressList(fields, "Bcc")

	if v, ok := field(fields, "Date"); ok {
		t, lenient, err := parseDate(clean(v))
		switch {
		case err != nil:
			p.errorf("header \"Date\": %v", err)
		default:
			p.rec.Date = &t
			if lenient {
				p.errorf("header \"Date\": %s is not RFC 5322; read leniently", quoteShort(v))
			}
		}
	}
}

// entity is a message or a body part about to be walked.
type entity struct {
	get         func(name string) string // header field value, "" if absent
	body        io.Reader                // raw body, transfer-encoded
	raw         *errMemo                 // the part's own reader, for its errors
	depth       int                      // multipart nesting
	path        string                   // IMAP-style part number, "" for the message body
	defaultType string                   // text/plain, or message/rfc822 in a digest
	parent      string                   // media type of the enclosing multipart, "" for the message
}

func (e entity) where() string {
	if e.path == "" {
		return "body"
	}
	return "part " + e.path
}

// walk dispatches an entity: multiparts are descended, everything else is
// a leaf (a body or an attachment).
func (p *parser) walk(e entity) {
	if p.stopped() {
		return
	}
	mediatype, params := p.contentType(e)
	if strings.HasPrefix(mediatype, "multipart/") {
		boundary := params["boundary"]
		switch {
		case e.depth >= maxDepth:
			p.errorf("%s: multipart nested more than %d levels deep; kept as one attachment", e.where(), maxDepth)
		case boundary == "":
			p.unsplittable(e, mediatype, params, "without a boundary parameter")
			return
		case len(boundary) > maxBoundaryLen:
			p.unsplittable(e, mediatype, params, fmt.Sprintf("with a boundary longer than %d bytes", maxBoundaryLen))
			return
		default:
			p.multipart(e, mediatype, boundary)
			return
		}
	}
	p.leaf(e, mediatype, params)
}

// unsplittable handles a multipart whose parts cannot be found: it has no
// boundary parameter, or one too long to look for. The rule is that of a
// multipart with no boundary line (noDelimiter): a blank body gives no body
// candidate; any other is kept whole, as the text when it is the message's
// only body, else as one attachment of its multipart type, so that no
// content is lost and a preamble never takes the place of the real text.
func (p *parser) unsplittable(e entity, mediatype string, params map[string]string, why string) {
	head, blank, _ := readBlank(e.body, maxPreambleKeep)
	if p.stopped() {
		return
	}
	if blank {
		p.errorf("%s: %s %s is blank; no body taken from it", e.where(), mediatype, why)
		return
	}
	e.body = io.MultiReader(bytes.NewReader(head), e.body)
	if e.path == "" {
		p.errorf("%s: %s %s; body kept as text", e.where(), mediatype, why)
		p.leaf(e, "text/plain", nil)
		return
	}
	p.errorf("%s: %s %s; kept as an attachment", e.where(), mediatype, why)
	p.leaf(e, mediatype, params)
}

// readBlank reads r while what it gives is blank (isBlank), up to max
// bytes. It returns what it read, whether r ended (err is then its error,
// io.EOF at a clean end) with nothing but blanks, and that error.
func readBlank(r io.Reader, max int) (head []byte, blank bool, err error) {
	var buf [512]byte
	for len(head) < max {
		n, err := r.Read(buf[:])
		head = append(head, buf[:n]...)
		if !isBlank(buf[:n]) {
			return head, false, nil
		}
		if err != nil {
			return head, true, err
		}
	}
	return head, false, nil
}

// isBlank reports whether b holds only ASCII whitespace. Only ASCII, so
// that the answer for a body read in pieces never depends on where a piece
// ends.
func isBlank(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n', '\v', '\f':
		default:
			return false
		}
	}
	return true
}

// contentType returns the bare lowercase media type and the parameters of
// an entity. A missing Content-Type means the default type; an invalid one
// means text/plain (RFC 2045 §5.2).
func (p *parser) contentType(e entity) (string, map[string]string) {
	raw := e.get("Content-Type")
	if strings.TrimSpace(raw) == "" {
		return e.defaultType, map[string]string{}
	}
	mt, params, problems := parseParamHeader(raw)
	for _, pr := range problems {
		p.errorf("%s: Content-Type: %s", e.where(), pr)
	}
	if !validMediaType(mt) {
		p.errorf("%s: invalid Content-Type %s; read as text/plain", e.where(), quoteShort(raw))
		mt = "text/plain"
	}
	return mt, params
}

func validMediaType(mt string) bool {
	typ, sub, ok := strings.Cut(mt, "/")
	if !ok || typ == "" || sub == "" {
		return false
	}
	for _, c := range []byte(mt) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"[]?=`, c) >= 0 {
			return false
		}
	}
	return strings.Count(mt, "/") == 1
}

// contentID reads a Content-ID (RFC 2045 §7, a msg-id) without its angle
// brackets: what is inside the first non-empty "<…>", else the whole value; stray
// brackets are dropped, since "cid:" URLs cannot hold them.
func contentID(v string) string {
	v = strings.TrimSpace(clean(v))
	if lt := strings.IndexByte(v, '<'); lt >= 0 {
		if gt := strings.IndexByte(v[lt+1:], '>'); gt > 0 {
			v = v[lt+1 : lt+1+gt]
		}
	}
	return strings.TrimSpace(strings.NewReplacer("<", "", ">", "").Replace(v))
}

// isAttachment applies the body rule (docs/record.schema.json, README):
// a part with disposition "attachment" is an attachment; so is one with a
// file name, unless its disposition is explicitly "inline" and it is an
// alternative of a multipart/alternative or no text or html body has been
// chosen yet (a mailer that names the only text "notes.txt"). Everything
// else is a body candidate: the first inline text/plain and text/html.
func (p *parser) isAttachment(e entity, disp, filename string) bool {
	switch {
	case disp == "attachment":
		return true
	case filename == "":
		return false
	case disp == "inline":
		return e.parent != "multipart/alternative" && (p.haveText || p.haveHTML)
	}
	return true
}

// leaf handles a non-multipart entity (or one kept opaque): the first
// inline text/plain and text/html become the bodies, everything else is an
// attachment.
func (p *parser) leaf(e entity, mediatype string, params map[string]string) {
	where := e.where()
	disp, dparams, problems := parseParamHeader(e.get("Content-Disposition"))
	for _, pr := range problems {
		p.errorf("%s: Content-Disposition: %s", where, pr)
	}
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	isAttachment := p.isAttachment(e, disp, filename)

	body := e.body
	var ds decoders
	if !strings.HasPrefix(mediatype, "multipart/") {
		cte := e.get("Content-Transfer-Encoding")
		dec, d, known := transferDecoder(cte, e.body)
		if !known {
			p.errorf("%s: unknown Content-Transfer-Encoding %s; kept encoded", where, quoteShort(cte))
		}
		body, ds = dec, d
		defer releaseDecoders(ds.b64, ds.qp)
		if ds.uu != nil && filename == "" && ds.uu.name != "" {
			filename = ds.uu.name // "begin 644 name"
			isAttachment = p.isAttachment(e, disp, filename)
		}
	}

	var err error
	switch {
	// A body that is empty or only whitespace does not hold its place:
	// the next candidate of its type replaces it (an empty text/plain
	// alternative must not push the real text into attachments).
	case mediatype == "text/plain" && !isAttachment && !p.haveText:
		p.rec.Text, err = p.readText(body, params["charset"], mediatype, where)
		p.haveText = strings.TrimSpace(p.rec.Text) != ""
	case mediatype == "text/html" && !isAttachment && !p.haveHTML:
		p.rec.HTML, err = p.readText(body, params["charset"], mediatype, where)
		p.haveHTML = strings.TrimSpace(p.rec.HTML) != ""
	default:
		cid := contentID(e.get("Content-Id"))
		err = p.attachment(body, record.Attachment{
			Filename:    clean(filename),
			ContentType: mediatype,
			Disposition: disp,
			ContentID:   cid,
		})
	}
	if p.stopped() {
		return
	}
	if uu := ds.uu; uu != nil {
		if uu.noBegin {
			p.errorf("%s: uuencoded body has no \"begin\" line; decoded from its first data line", where)
		}
		if uu.bad > 0 {
			p.errorf("%s: uuencoded body has %d line(s) that are not uuencode; skipped", where, uu.bad)
		}
		if !uu.begun {
			p.errorf("%s: uuencoded body holds no uuencoded data", where)
		} else if !uu.ended {
			p.errorf("%s: uuencoded body ends without its \"end\" line", where)
		}
	}
	if b64 := ds.b64; b64 != nil {
		if b64.junk > 0 {
			p.errorf("%s: base64 body has %d bytes outside the base64 alphabet; skipped", where, b64.junk)
		}
		if b64.midPad > 0 {
			p.errorf("%s: base64 body has padding before its end; decoding went on after it", where)
		}
		if b64.dangling {
			p.errorf("%s: base64 body ends with an incomplete group", where)
		}
	}
	if qp := ds.qp; qp != nil && qp.bad > 0 {
		p.errorf("%s: quoted-printable body has %d malformed escape(s); kept as is", where, qp.bad)
	}
	// A failing raw reader is reported by the multipart walker; here only
	// what the decoders found.
	if err != nil && (e.raw == nil || e.raw.err == nil) {
		p.errorf("%s: decoding: %v", where, err)
	}
}

// readText decodes a text body to UTF-8 and keeps at most p.max bytes of it
// (the rest is read and dropped, and Truncated set). Line breaks become
// "\n". A missing charset is sniffed from a byte order mark, or for HTML a
// <meta> declaration; otherwise UTF-8 is assumed, with stray 8-bit bytes
// read as Windows-1252.
// Buffers every message needs are recycled across messages: allocated per
// message and part, they were most of the parser's garbage. A buffer goes
// back to its pool only when the function that took it returns, after the
// last read through it.
var (
	topReaders  = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}
	partReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	copyBuffers = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}
)

func getReader(pool *sync.Pool, r io.Reader) *bufio.Reader {
	br := pool.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func putReader(pool *sync.Pool, br *bufio.Reader) {
	br.Reset(nil) // drop the source
	pool.Put(br)
}

// textBuffers recycles the buffers text bodies are read into (the result is
// copied into a string), which were the parser's largest allocation:
// bytes.Buffer grows by doubling from 512 bytes for every part.
var textBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledText keeps a rare huge body's buffer from being held forever.
const maxPooledText = 4 << 20

func (p *parser) readText(body io.Reader, csParam, mediatype, where string) (string, error) {
	cs := normCharset(csParam)
	label := "no charset declared"
	if cs != "" {
		label = "charset " + strconv.Quote(cs)
	}
	r := body
	if cs == "" {
		br := getReader(&partReaders, body)
		defer putReader(&partReaders, br)
		head, _ := br.Peek(1024) // a read error comes back from Read below
		if mediatype == "text/html" {
			cs = sniffHTMLCharset(head)
		} else {
			cs = bomCharset(head)
		}
		if cs != "" {
			label = "sniffed charset " + strconv.Quote(cs)
		}
		r = br
	}
	reportBad := true // stray 8-bit bytes in what should be UTF-8 or ASCII
	if !isUTF8Label(cs) {
		reportBad = false // converted text is valid; unknown is reported here
		if cr, err := charset.Reader(cs, r); err != nil {
			p.errorf("%s: unknown charset %q; text kept as is", where, cs)
		} else {
			r = cr
		}
	}

	buf := textBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledText {
			textBuffers.Put(buf)
		}
	}()
	_, err := buf.ReadFrom(io.LimitReader(r, p.max+1))
	data := buf.Bytes()
	if int64(len(data)) > p.max {
		data = trimPartialRune(data[:p.max])
		data = bytes.TrimSuffix(data, []byte("\r")) // half a CRLF
		p.rec.Truncated = true
		if _, derr := io.Copy(io.Discard, r); err == nil {
			err = derr
		}
	}
	// Line breaks become "\n" in the pooled buffer, before the one copy
	// into a string; a stray byte is mapped on its own, so doing this
	// before toUTF8 gives the same text.
	s, bad := toUTF8(string(crlfToLF(data)))
	if bad && reportBad {
		p.errorf("%s: text is not valid UTF-8 (%s); stray bytes read as Windows-1252", where, label)
	}
	s = strings.TrimPrefix(s, "\ufeff")
	if int64(len(s)) > p.max {
		s = cutUTF8(s, int(p.max))
		p.rec.Truncated = true
	}
	return s, err
}

// crlfToLF replaces every "\r\n" in b with "\n", in place.
func crlfToLF(b []byte) []byte {
	out := b[:0]
	for {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			return append(out, b...)
		}
		out = append(out, b[:i]...) // moves bytes left within b's array
		b = b[i+1:]
	}
}

// attachment streams a decoded attachment through SHA-256, a byte count
// and the sink, and lists it. It returns the read error (a decoding
// problem); sink failures are fatal.
func (p *parser) attachment(body io.Reader, a record.Attachment) error {
	if len(p.rec.Attachments) >= maxAttachments {
		if !p.attachCapped {
			p.attachCapped = true
			p.errorf("more than %d attachments; the rest are not listed", maxAttachments)
		}
		_, err := io.Copy(io.Discard, body)
		return err
	}
	idx := len(p.rec.Attachments)
	tw := &teeWriter{h: sha256.New()}
	var sink io.WriteCloser
	if p.opts.Attachments != nil {
		w, savedAs, err := p.save(idx, a.Filename, a.ContentType)
		if err != nil {
			p.fatal = fmt.Errorf("attachment %d: %w", idx, err)
			return nil
		}
		if w != nil {
			sink = sinkWriter{w}
			tw.w = sink
			a.SavedAs = &savedAs
		}
	}
	cb := copyBuffers.Get().(*[]byte)
	_, err := io.CopyBuffer(tw, body, *cb)
	copyBuffers.Put(cb)
	if tw.werr != nil {
		err = nil // not a read error
	}
	if sink != nil {
		cerr := sink.Close()
		switch {
		case tw.werr != nil:
			p.fatal = fmt.Errorf("attachment %d: write: %w", idx, tw.werr)
		case cerr != nil:
			p.fatal = fmt.Errorf("attachment %d: close: %w", idx, cerr)
		}
		if p.fatal != nil {
			return nil
		}
	}
	a.Size = tw.n
	a.SHA256 = hex.EncodeToString(tw.h.Sum(nil))
	p.rec.Attachments = append(p.rec.Attachments, a)
	return err
}

// sinkPanic carries a panic raised by the AttachmentSink through Parse's
// recover, which only absorbs the parser's own panics.
type sinkPanic struct{ v any }

func (p *parser) save(index int, filename, contentType string) (w io.WriteCloser, savedAs string, err error) {
	defer func() {
		if v := recover(); v != nil {
			panic(sinkPanic{v})
		}
	}()
	return p.opts.Attachments.Save(index, filename, contentType)
}

// sinkWriter marks panics of a sink's writer as the sink's.
type sinkWriter struct{ w io.WriteCloser }

func (s sinkWriter) Write(b []byte) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			panic(sinkPanic{v})
		}
	}()
	return s.w.Write(b)
}

func (s sinkWriter) Close() (err error) {
	defer func() {
		if v := recover(); v != nil {
			panic(sinkPanic{v})
		}
	}()
	return s.w.Close()
}

// capRecorder keeps the first max bytes read through it.
type capRecorder struct {
	r   io.Reader
	buf []byte
	max int64
}

func (c *capRecorder) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if room := c.max - int64(len(c.buf)); room > 0 {
		c.buf = append(c.buf, b[:min(int64(n), room)]...)
	}
	return n, err
}

// teeWriter hashes and counts what it is given and passes it on to w.
type teeWriter struct {
	h    hash.Hash
	n    int64
	w    io.Writer
	werr error
}

func (t *teeWriter) Write(b []byte) (int, error) {
	if t.w != nil {
		n, err := t.w.Write(b)
		if err == nil && n < len(b) {
			err = io.ErrShortWrite
		}
		if err != nil {
			t.werr = err
			return n, err
		}
	}
	t.h.Write(b)
	t.n += int64(len(b))
	return len(b), nil
}
