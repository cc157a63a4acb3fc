package record

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Append appends r as JSON to dst: the bytes encoding/json's Encoder
// writes for a Record (SetEscapeHTML(false), SetIndent("", "  ") when
// pretty, a final newline), except that DEL and the C1 controls
// U+0080–U+009F are escaped too, so no terminal control can reach a
// reader of the file. It is written out field by field because reflection
// made encoding a tenth of the backfill's CPU time; TestMarshal_*,
// TestAppendQuoted_* and FuzzParse hold it to encoding/json's output.
func Append(dst []byte, r *Record, pretty bool) ([]byte, error) {
	e := recordEncoder{b: dst, pretty: pretty}
	e.open('{')
	e.intField("schema_version", int64(r.SchemaVersion))
	e.stringField("id", r.ID)
	e.stringField("account", r.Account)
	e.stringField("mailbox", r.Mailbox)
	e.intField("uid_validity", int64(r.UIDValidity))
	e.intField("uid", int64(r.UID))
	e.stringField("message_id", r.MessageID)
	e.key("in_reply_to")
	e.strings(r.InReplyTo)
	e.key("references")
	e.strings(r.References)
	e.stringField("subject", r.Subject)
	for _, l := range []struct {
		name string
		list []Address
	}{{"from", r.From}, {"sender", r.Sender}, {"reply_to", r.ReplyTo}, {"to", r.To}, {"cc", r.Cc}, {"bcc", r.Bcc}} {
		e.key(l.name)
		e.addresses(l.list)
	}
	e.key("date")
	if r.Date == nil {
		e.raw("null")
	} else {
		e.time(*r.Date) // the sender's offset is information: kept
	}
	e.key("internal_date")
	e.time(r.InternalDate.UTC())
	e.key("captured_at")
	e.time(r.CapturedAt.UTC())
	e.key("flags")
	e.strings(r.Flags)
	e.intField("size", r.Size)
	e.stringField("text", r.Text)
	e.stringField("html", r.HTML)
	e.key("truncated")
	e.bool(r.Truncated)
	e.key("attachments")
	e.attachments(r.Attachments)
	e.key("headers")
	e.open('[')
	for _, h := range r.Headers {
		e.next()
		e.open('{')
		e.stringField("name", h.Name)
		e.stringField("value", h.Value)
		e.close('}')
	}
	e.close(']')
	e.key("parse_errors")
	e.strings(r.ParseErrors)
	e.close('}')
	if e.err != nil {
		return dst, e.err
	}
	return append(e.b, '\n'), nil
}

// recordEncoder appends JSON values, tracking the indentation and whether
// a container has had a member yet (for commas, and for "[]" staying on
// one line).
type recordEncoder struct {
	b      []byte
	pretty bool
	depth  int
	empty  bool // nothing written yet in the innermost open container
	err    error
}

func (e *recordEncoder) open(c byte) {
	e.b = append(e.b, c)
	e.depth++
	e.empty = true
}

func (e *recordEncoder) close(c byte) {
	e.depth--
	if !e.empty {
		e.newline()
	}
	e.b = append(e.b, c)
	e.empty = false // the container just closed is a member of its parent
}

// next starts a member of the innermost container.
func (e *recordEncoder) next() {
	if !e.empty {
		e.b = append(e.b, ',')
	}
	e.empty = false
	e.newline()
}

func (e *recordEncoder) newline() {
	if !e.pretty {
		return
	}
	e.b = append(e.b, '\n')
	for range e.depth {
		e.b = append(e.b, ' ', ' ')
	}
}

// key starts an object member; names are plain ASCII.
func (e *recordEncoder) key(name string) {
	e.next()
	e.b = append(e.b, '"')
	e.b = append(e.b, name...)
	e.b = append(e.b, '"', ':')
	if e.pretty {
		e.b = append(e.b, ' ')
	}
}

func (e *recordEncoder) stringField(name, v string) {
	e.key(name)
	e.string(v)
}

func (e *recordEncoder) intField(name string, n int64) {
	e.key(name)
	e.int(n)
}

func (e *recordEncoder) raw(s string)    { e.b = append(e.b, s...) }
func (e *recordEncoder) int(n int64)     { e.b = strconv.AppendInt(e.b, n, 10) }
func (e *recordEncoder) bool(v bool)     { e.b = strconv.AppendBool(e.b, v) }
func (e *recordEncoder) string(s string) { e.b = appendQuoted(e.b, s) }

func (e *recordEncoder) time(t time.Time) {
	// The range is encoding/json's (MarshalJSON refuses years past 9999).
	if y := t.Year(); y < 0 || y > 9999 {
		e.err = errors.Join(e.err, fmt.Errorf("time %v: year outside [0,9999]", y))
		e.raw("null")
		return
	}
	e.b = append(e.b, '"')
	e.b = t.AppendFormat(e.b, TimeLayout)
	e.b = append(e.b, '"')
}

func (e *recordEncoder) strings(list []string) {
	e.open('[')
	for _, s := range list {
		e.next()
		e.string(s)
	}
	e.close(']')
}

func (e *recordEncoder) addresses(list []Address) {
	e.open('[')
	for _, a := range list {
		e.next()
		e.open('{')
		e.stringField("name", a.Name)
		e.stringField("address", a.Address)
		e.close('}')
	}
	e.close(']')
}

func (e *recordEncoder) attachments(list []Attachment) {
	e.open('[')
	for _, a := range list {
		e.next()
		e.open('{')
		e.stringField("filename", a.Filename)
		e.stringField("content_type", a.ContentType)
		e.stringField("disposition", a.Disposition)
		e.stringField("content_id", a.ContentID)
		e.intField("size", a.Size)
		e.stringField("sha256", a.SHA256)
		e.key("saved_as")
		if a.SavedAs == nil {
			e.raw("null")
		} else {
			e.string(*a.SavedAs)
		}
		e.close('}')
	}
	e.close(']')
}

// plainByte marks the bytes a JSON string holds as they are: printable
// ASCII other than the quote and the backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string the way encoding/json does
// without HTML escaping (short escapes for \b \f \n \r \t, \u00XX for other
// C0 controls, U+FFFD for each invalid UTF-8 byte, \u2028 and \u2029
// escaped), and also escapes DEL and C1 controls as \u00XX.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0 // s[start:i] is pending, to be copied as it is
	for i := 0; i < len(s); {
		c := s[i]
		if plainByte[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			invalid := r == utf8.RuneError && size == 1
			if !invalid && r != '\u2028' && r != '\u2029' && (r < 0x80 || r > 0x9f) {
				i += size
				continue
			}
			b = append(b, s[start:i]...)
			switch {
			case invalid:
				b = append(b, `\ufffd`...)
			case r == '\u2028' || r == '\u2029':
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			default: // C1 controls
				b = append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
			}
			i += size
			start = i
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default: // other C0 controls and DEL
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
