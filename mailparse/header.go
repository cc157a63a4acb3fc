package mailparse

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"mailtap/record"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	gomail "github.com/emersion/go-message/mail"
)

// maxHeaderBytes caps the top-level header block kept in a record. Fields
// past it are dropped (with a parse error); the body is still parsed.
const maxHeaderBytes = 1 << 20

// rawField is one top-level header field: its name as written and its
// value unfolded (RFC 5322 §2.2.3), with the bytes as they came.
type rawField struct {
	name, value string
}

// readTopHeader reads the message header from br leniently:
//   - an mbox "From " line before the first field is skipped;
//   - a line without a colon ends the header (a missing blank line, as
//     Python's email package treats it) and is returned as the body's first
//     line (rest);
//   - a field whose name has invalid bytes is skipped;
//   - past maxHeaderBytes, fields are read and dropped until the blank line.
//
// Lines may end in CRLF or a bare LF.
func (p *parser) readTopHeader(br *bufio.Reader) (fields []rawField, rest []byte) {
	var (
		total    int64
		over     bool
		cur      *rawField
		curValue []byte
		lineBuf  []byte // reused by readLine: each line is copied out before the next
		first    = true
	)
	flush := func() {
		if cur != nil {
			cur.value = string(curValue)
			fields = append(fields, *cur)
			cur, curValue = nil, curValue[:0] // the string is a copy; reuse the bytes
		}
	}
	// addLine unfolds as part headers are (multipart.go): each
	// physical line is trimmed and the non-empty ones are joined by one
	// space, so a fold reads as a space whatever whitespace surrounded it.
	addLine := func(l []byte) {
		l = bytes.Trim(l, " \t")
		if len(l) == 0 {
			return
		}
		if len(curValue) > 0 {
			curValue = append(curValue, ' ')
		}
		curValue = append(curValue, l...)
	}
	for {
		budget := int64(maxHeaderBytes) - total
		if over {
			budget = 0
		}
		line, n, eol, err := readLine(br, budget, lineBuf[:0])
		lineBuf = line
		total += n
		if !over && total > maxHeaderBytes {
			over = true
			if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
				cur = nil // the field this continuation belongs to is cut
			}
			flush()
			p.errorf("header: larger than %d bytes; fields after the first %d were dropped", maxHeaderBytes, len(fields))
		}
		if n == 0 && err != nil {
			break // EOF (or a source error, which Parse reports) ends the header
		}
		if len(line) == 0 && !over && n == int64(len(eol)) {
			break // the blank line
		}
		if over {
			if n == int64(len(eol)) {
				break
			}
			continue
		}
		isFirst := first
		first = false
		if isFirst && bytes.HasPrefix(line, []byte("From ")) {
			continue // mbox separator line
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur == nil {
				if isFirst {
					p.errorf("header: starts with a continuation line %s; skipped", quoteShort(line))
				}
				continue // continuation of a skipped field
			}
			addLine(line)
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			flush()
			if isFirst {
				p.errorf("header: message has no header fields (first line %s)", quoteShort(line))
			} else {
				p.errorf("header: line %s has no colon and no blank line precedes it; read as the start of the body", quoteShort(line))
			}
			rest = append(append([]byte{}, line...), eol...)
			return fields, rest
		}
		flush()
		name := bytes.TrimRight(line[:colon], " \t")
		if !validFieldName(name) {
			p.errorf("header: malformed field name %s; field skipped", quoteShort(name))
			continue
		}
		cur = &rawField{name: string(name)}
		curValue = curValue[:0]
		addLine(line[colon+1:])
	}
	flush()
	return fields, nil
}

func validFieldName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// readLine reads one line from br, keeping at most keep bytes of it (the
// rest is read and dropped). It returns the line without its ending, the
// number of bytes consumed, the ending ("\r\n", "\n" or "" at EOF) and
// the read error, if any. The line is appended to buf[:0] (which may be nil).
func readLine(br *bufio.Reader, keep int64, buf []byte) (line []byte, n int64, eol string, err error) {
	line = buf
	var last2 [2]byte // the last two bytes consumed, kept or not
	for {
		chunk, e := br.ReadSlice('\n')
		n += int64(len(chunk))
		switch len(chunk) {
		case 0:
		case 1:
			last2 = [2]byte{last2[1], chunk[0]}
		default:
			last2 = [2]byte{chunk[len(chunk)-2], chunk[len(chunk)-1]}
		}
		if int64(len(line)) < keep {
			c := chunk
			if room := keep - int64(len(line)); int64(len(c)) > room {
				c = c[:room]
			}
			line = append(line, c...)
		}
		if e == bufio.ErrBufferFull {
			continue
		}
		if e == nil {
			eol = "\n"
			if last2 == [2]byte{'\r', '\n'} {
				eol = "\r\n"
			}
			line = bytes.TrimSuffix(line, []byte("\n"))
			line = bytes.TrimSuffix(line, []byte("\r"))
		}
		return line, n, eol, e
	}
}

// quoteShort quotes at most 60 bytes of b for a parse error message.
func quoteShort[T string | []byte](b T) string {
	s, _ := toUTF8(string(b))
	if len(s) > 60 {
		return fmt.Sprintf("%q…", cutUTF8(s, 60))
	}
	return fmt.Sprintf("%q", s)
}

// headerText turns a raw header value into display text: bytes that are
// not UTF-8 are read as Windows-1252, raw ISO-2022-JP (old Japanese
// mailers) is decoded, and RFC 2047 encoded words are decoded. Problems
// are returned as messages for parse_errors.
//
// Encoded words are found in the raw bytes, so that 8-bit bytes a sender
// put inside one are read as what they are (see parseEncodedWord); the
// text around them is made valid UTF-8 afterwards.
func headerText(raw string) (string, []string) {
	var problems []string
	s := raw
	if strings.IndexByte(s, 0x1b) >= 0 && (strings.Contains(s, "\x1b$B") || strings.Contains(s, "\x1b$@") || strings.Contains(s, "\x1b(J")) {
		if dec, ok := decodeCharset("iso-2022-jp", []byte(s)); ok && !strings.ContainsRune(dec, '\uFFFD') {
			s = dec
			problems = append(problems, "raw ISO-2022-JP without RFC 2047 encoding; decoded")
		}
	}
	var bad bool
	if strings.Contains(s, "=?") {
		var more []string
		s, more, bad = decodeWords(s)
		problems = append(problems, more...)
	} else {
		s, bad = toUTF8(s)
	}
	if bad {
		problems = append([]string{"not valid UTF-8; 8-bit bytes read as Windows-1252"}, problems...)
	}
	return s, problems
}

// encodedWord is one RFC 2047 "=?charset?enc?text?=" found by decodeWords.
type encodedWord struct {
	raw     string // as written
	charset string
	bytes   []byte // after Q/B decoding, before charset conversion
	ok      bool   // Q/B decoding worked
	text    string // converted text, valid if converted
	conv    bool
	raw8    string // "" for a 7-bit word; else how its raw 8-bit bytes were read
}

// decodeWords decodes RFC 2047 encoded words anywhere in s (also inside
// quotes and glued to other text, as broken mailers write them).
// Whitespace between two decoded words is dropped (§6.2), and the bytes of
// adjacent words in one charset are joined before conversion, so a
// character split across two words (common with B encoding) survives.
// A word that cannot be decoded (unknown charset, bad base64) is kept as
// written and reported. s may hold any bytes; the result is valid UTF-8,
// and bad reports bytes outside encoded words that were not.
func decodeWords(s string) (out string, problems []string, bad bool) {
	type seg struct {
		lit  string
		word *encodedWord
	}
	var segs []seg
	// Every '?' position, so each candidate word is checked in constant
	// time: scanning ahead for "?=" from each "=?" would be quadratic on a
	// hostile header full of "=?".
	var qs []int
	for i := 0; i < len(s); i++ {
		if s[i] == '?' {
			qs = append(qs, i)
		}
	}
	qi := 0 // index into qs of the first '?' at or after the current start
	lit := 0
	for start := 0; start+1 < len(s); {
		k := strings.Index(s[start:], "=?")
		if k < 0 {
			break
		}
		start += k
		for qi < len(qs) && qs[qi] <= start+1 {
			qi++
		}
		w, n := parseEncodedWord(s, start, qs[qi:])
		if w == nil {
			start += 2
			continue
		}
		if start > lit {
			segs = append(segs, seg{lit: s[lit:start]})
		}
		segs = append(segs, seg{word: w})
		start += n
		lit = start
	}
	if lit < len(s) {
		segs = append(segs, seg{lit: s[lit:]})
	}

	// Convert runs of adjacent words (only whitespace between them) that
	// share a charset as one byte string.
	for i := 0; i < len(segs); i++ {
		w := segs[i].word
		if w == nil || !w.ok {
			continue
		}
		group := []*encodedWord{w}
		j := i + 1
		for j < len(segs) {
			if segs[j].word != nil && segs[j].word.ok && strings.EqualFold(segs[j].word.charset, w.charset) {
				group = append(group, segs[j].word)
				j++
				continue
			}
			if segs[j].lit != "" && strings.Trim(segs[j].lit, " \t") == "" &&
				j+1 < len(segs) && segs[j+1].word != nil && segs[j+1].word.ok &&
				strings.EqualFold(segs[j+1].word.charset, w.charset) {
				j++
				continue
			}
			break
		}
		var all []byte
		for _, g := range group {
			all = append(all, g.bytes...)
		}
		text, ok := decodeCharset(w.charset, all)
		if !ok {
			problems = append(problems, fmt.Sprintf("unknown charset %q in encoded word; kept as written", w.charset))
			for _, g := range group {
				g.ok = false
			}
		} else {
			w.text, w.conv = text, true
			for _, g := range group[1:] {
				g.text, g.conv = "", true
			}
		}
		i = j - 1
	}

	var b strings.Builder
	write := func(s string) {
		s, isBad := toUTF8(s)
		bad = bad || isBad
		b.WriteString(s)
	}
	for i, sg := range segs {
		if sg.word != nil {
			if sg.word.conv {
				b.WriteString(sg.word.text)
			} else {
				write(sg.word.raw)
			}
			continue
		}
		if strings.Trim(sg.lit, " \t") == "" && i > 0 && i+1 < len(segs) &&
			segs[i-1].word != nil && segs[i-1].word.conv &&
			segs[i+1].word != nil && segs[i+1].word.conv {
			continue
		}
		write(sg.lit)
	}
	for _, sg := range segs {
		w := sg.word
		switch {
		case w == nil:
		case !w.ok && !w.conv && w.bytes == nil:
			problems = append(problems, fmt.Sprintf("malformed encoded word %s; kept as written", quoteShort(w.raw)))
		case w.raw8 != "":
			problems = append(problems, fmt.Sprintf("encoded word %s holds raw 8-bit bytes; %s", quoteShort(w.raw), w.raw8))
		}
	}
	if len(problems) > 3 {
		problems = append(problems[:3], fmt.Sprintf("%d more problems with encoded words", len(problems)-3))
	}
	return b.String(), problems, bad
}

// parseEncodedWord parses an encoded word at s[start:] ("=?" already
// seen) and returns it with its length, or nil. qs are the positions of
// the '?' after start+1. The encoded text may contain spaces (some
// mailers forget to encode them) but not '?'.
func parseEncodedWord(s string, start int, qs []int) (*encodedWord, int) {
	if len(qs) < 3 {
		return nil, 0
	}
	q1, q2, q3 := qs[0], qs[1], qs[2]
	cs := s[start+2 : q1]
	if cs == "" || len(cs) > 64 || strings.ContainsAny(cs, " \t\"()<>@,;:/[]=") {
		return nil, 0
	}
	if q2 != q1+2 || q3+1 >= len(s) || s[q3+1] != '=' {
		return nil, 0
	}
	enc := s[q1+1]
	text := s[q2+1 : q3]
	n := q3 + 2 - start
	w := &encodedWord{raw: s[start : start+n], charset: normCharset(cs)}
	switch enc {
	case 'B', 'b':
		t := strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, text)
		b, err := base64.StdEncoding.DecodeString(t)
		if err != nil {
			b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(t, "="))
		}
		if err != nil {
			return w, n // ok=false, bytes=nil: reported as malformed
		}
		w.bytes, w.ok = b, true
	case 'Q', 'q':
		if hasHighBit(text) {
			raw8Word(w, text)
			return w, n
		}
		b := qDecode(make([]byte, 0, len(text)), text)
		w.bytes, w.ok = b, true
	default:
		return nil, 0
	}
	if w.bytes == nil {
		w.bytes = []byte{}
	}
	return w, n
}

// qDecode decodes RFC 2047 Q text leniently: "_" is a space, "=XX" a
// byte, anything else (a lone "=") itself.
func qDecode(b []byte, text string) []byte {
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '_':
			b = append(b, ' ')
		case c == '=' && i+2 < len(text):
			hi, ok1 := unhex(text[i+1])
			lo, ok2 := unhex(text[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				i += 2
			} else {
				b = append(b, c)
			}
		default:
			b = append(b, c)
		}
	}
	return b
}

func hasHighBit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// raw8Word decodes Q text that holds raw 8-bit bytes, which RFC 2047
// forbids. Mail readers keep bytes that form valid UTF-8 as UTF-8 (a
// sender wrote UTF-8 text under a Latin-1 label): so do we, converting
// only the =XX escapes and ASCII around them from the word's charset, and
// the word then counts as UTF-8. Bytes that are not valid UTF-8 are taken
// as bytes of the labelled charset, as if they had been escaped.
func raw8Word(w *encodedWord, text string) {
	if !utf8.ValidString(text) {
		w.bytes, w.ok = qDecode(make([]byte, 0, len(text)), text), true
		w.raw8 = "read as " + w.charset
		return
	}
	var out, run []byte
	flush := func() {
		if len(run) > 0 {
			s, _ := decodeCharset(w.charset, run)
			out = append(out, s...)
			run = run[:0]
		}
	}
	for i := 0; i < len(text); {
		if text[i] < 0x80 {
			j := i
			for j < len(text) && text[j] < 0x80 {
				j++
			}
			run = qDecode(run, text[i:j])
			i = j
			continue
		}
		flush()
		_, size := utf8.DecodeRuneInString(text[i:])
		out = append(out, text[i:i+size]...)
		i += size
	}
	flush()
	w.bytes, w.ok, w.charset = out, true, "utf-8"
	w.raw8 = "kept as UTF-8"
}

// field returns the first field named name (case-insensitive) and whether
// there is one.
func field(fields []rawField, name string) (string, bool) {
	for _, f := range fields {
		if strings.EqualFold(f.name, name) {
			return f.value, true
		}
	}
	return "", false
}

// addressList parses every field named name (To may appear more than
// once) into addresses. A value net/mail cannot parse is split leniently
// and reported, never dropped.
func (p *parser) addressList(fields []rawField, name string) []record.Address {
	var out []record.Address
	for _, f := range fields {
		if !strings.EqualFold(f.name, name) {
			continue
		}
		v, _ := toUTF8(f.value) // headerText reported bad bytes already
		if strings.TrimSpace(v) == "" {
			continue
		}
		list, err := gomail.ParseAddressList(v)
		if err == nil {
			for _, a := range list {
				out = append(out, record.Address{Name: displayName(a.Name), Address: clean(a.Address)})
			}
			continue
		}
		// net/mail rejects comments inside an address, routes and
		// some groups, which RFC 5322 allows: only what even §4 does
		// not allow is a parse error.
		lenient, loose := lenientAddresses(v)
		if loose {
			p.errorf("header %q: %v; read leniently as %d address(es)", f.name, err, len(lenient))
		}
		out = append(out, lenient...)
	}
	return out
}

// displayName decodes what net/mail leaves encoded: RFC 2047 words inside
// a quoted display name ("=?utf-8?B?...?=" in quotes is forbidden by RFC
// 2047 §5 but common, and every mail reader decodes it).
func displayName(name string) string {
	name = clean(name)
	if strings.Contains(name, "=?") {
		name, _, _ = decodeWords(name)
	}
	return name
}

// clean makes a string from a library valid UTF-8 (it is, but the record
// guarantees it, so it is checked where text enters).
func clean(s string) string {
	s, _ = toUTF8(s)
	return s
}

// parseMsgIDs reads a msg-id list (Message-ID, In-Reply-To, References)
// without angle brackets. Comments are skipped and whitespace inside an id
// (left by folding) removed. Text outside brackets is garbage: it is
// dropped when bracketed ids exist, else its words are kept as ids.
// malformed reports anything that is not a clean "<left@right>" list.
func parseMsgIDs(v string) (ids []string, malformed bool) {
	var bare []string
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case c == ' ' || c == '\t' || c == ',' || c == '\r' || c == '\n':
			i++
		case c == '(':
			depth := 0
			for i < len(v) {
				switch v[i] {
				case '\\':
					i++
				case '(':
					depth++
				case ')':
					depth--
				}
				i++
				if depth == 0 {
					break
				}
			}
		case c == '<':
			end := strings.IndexByte(v[i+1:], '>')
			var id string
			if end < 0 {
				id, i = v[i+1:], len(v)
				malformed = true
			} else {
				id, i = v[i+1:i+1+end], i+2+end
			}
			id = strings.Join(strings.Fields(id), "")
			if id == "" {
				malformed = true
				continue
			}
			if !strings.Contains(id, "@") {
				malformed = true
			}
			ids = append(ids, id)
		default:
			j := i
			for j < len(v) && !strings.ContainsRune(" \t,<(\r\n", rune(v[j])) {
				j++
			}
			bare = append(bare, v[i:j])
			malformed = true
			i = j
		}
	}
	if len(ids) == 0 {
		ids = bare
	}
	return ids, malformed
}

// obsZones maps RFC 5322 §4.3 obsolete zone names, and a few unambiguous
// ones seen in the wild, to offsets. time.Parse would otherwise resolve
// them against the machine's local zone, so records would depend on TZ.
var obsZones = map[string]string{
	"UT": "+0000", "GMT": "+0000", "UTC": "+0000", "Z": "+0000",
	"EST": "-0500", "EDT": "-0400", "CST": "-0600", "CDT": "-0500",
	"MST": "-0700", "MDT": "-0600", "PST": "-0800", "PDT": "-0700",
	"CET": "+0100", "CEST": "+0200", "MET": "+0100", "MEST": "+0200",
	"EET": "+0200", "EEST": "+0300", "WET": "+0000", "WEST": "+0100",
	"JST": "+0900", "KST": "+0900", "HKT": "+0800", "SGT": "+0800",
	"AEST": "+1000", "AEDT": "+1100",
}

// lenientDateLayouts are tried, after normalising, when net/mail rejects a
// Date header; all have a numeric zone or none (then UTC is assumed).
var lenientDateLayouts = []string{
	"2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04 -0700",
	"2 Jan 06 15:04:05 -0700",
	"2 Jan 06 15:04 -0700",
	"2 January 2006 15:04:05 -0700",
	"2-Jan-2006 15:04:05 -0700",
	"Jan 2 2006 15:04:05 -0700",
	"Jan 2 15:04:05 2006 -0700",
	"Jan 2 15:04:05 -0700 2006",
	"2006-01-02 15:04:05 -0700",
	time.RFC3339,
	"2 Jan 2006 15:04:05 -07:00",
	"2 Jan 2006 15:04:05",
	"2 Jan 2006 15:04",
	"Jan 2 15:04:05 2006",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
}

// parseDate reads a Date header: strictly (net/mail, RFC 5322 with
// obsolete forms) or else leniently; lenient reports the second case. The
// result always marshals as RFC 3339: a year outside 0…9999 is an error,
// an impossible zone offset is replaced by UTC.
func parseDate(v string) (t time.Time, lenient bool, err error) {
	v = strings.TrimSpace(v)
	norm := normalizeDate(v)
	t, err = mail.ParseDate(norm)
	if err != nil {
		lenient = true
		var ok bool
		for _, layout := range lenientDateLayouts {
			if t, err = time.Parse(layout, norm); err == nil {
				ok = true
				break
			}
		}
		if !ok {
			return time.Time{}, false, fmt.Errorf("unparsable date %s", quoteShort(v))
		}
	}
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, false, fmt.Errorf("date %s is outside years 0-9999", quoteShort(v))
	}
	if _, err := t.MarshalJSON(); err != nil {
		t = t.UTC()
	}
	if _, offset := t.Zone(); offset == 0 {
		t = t.UTC() // "+0000" and "UT" read the same, whatever the local zone
	}
	return t, lenient, nil
}

// normalizeDate removes comments, a weekday, a trailing dot and doubled
// zones, and replaces zone names by offsets.
func normalizeDate(v string) string {
	var b strings.Builder
	depth := 0
	for _, r := range v {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case depth > 0:
		default:
			b.WriteRune(r)
		}
	}
	f := strings.Fields(strings.ReplaceAll(b.String(), ",", " "))
	if len(f) > 0 && len(f[0]) >= 3 && isWeekday(f[0]) {
		f = f[1:]
	}
	for i, w := range f {
		w = strings.TrimSuffix(w, ".")
		if z, ok := obsZones[strings.ToUpper(w)]; ok && i > 0 {
			w = z
		}
		f[i] = w
	}
	// "+0000 +0000" or "-0500 EST" (now "-0500 -0500"): keep the first zone.
	if n := len(f); n >= 2 && isNumericZone(f[n-1]) && isNumericZone(f[n-2]) {
		f = f[:n-1]
	}
	return strings.Join(f, " ")
}

func isWeekday(w string) bool {
	w = strings.ToLower(strings.TrimSuffix(w, "."))
	for _, d := range []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"} {
		if strings.HasPrefix(d, w) && len(w) >= 3 {
			return true
		}
	}
	return false
}

func isNumericZone(w string) bool {
	if len(w) != 5 || (w[0] != '+' && w[0] != '-') {
		return false
	}
	for _, c := range w[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
