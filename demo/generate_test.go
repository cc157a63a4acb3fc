package demo

import (
	"bytes"
	"errors"
	"image/png"
	"io"
	"mime"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
)

var t0 = time.Date(2025, time.June, 3, 14, 30, 0, 0, time.UTC)

func generate(seed uint64, n int) []Message {
	g := NewGenerator(seed)
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = g.Next(t0.Add(time.Duration(i) * time.Minute))
	}
	return msgs
}

func TestGenerator_deterministic(t *testing.T) {
	a, b, c := generate(7, 60), generate(7, 60), generate(8, 60)
	same := 0
	for i := range a {
		if !bytes.Equal(a[i].Raw, b[i].Raw) || a[i].Kind != b[i].Kind || a[i].Mailbox != b[i].Mailbox {
			t.Fatalf("message %d differs between two generators with seed 7", i)
		}
		if bytes.Equal(a[i].Raw, c[i].Raw) {
			same++
		}
	}
	if same == len(a) {
		t.Fatal("seeds 7 and 8 generate the same messages")
	}
}

// Every kind shows up soon, so a demo of a minute or two shows them all.
func TestGenerator_coversAllKinds(t *testing.T) {
	want := []string{
		"plain", "multipart-alternative", "iso-8859-1", "pdf-attachment", "mailing-list",
		"html-only", "iso-2022-jp", "forwarded-rfc822", "utf-8-emoji", "calendar-invite", "inline-image",
		"malformed-base64", "malformed-unclosed-boundary", "malformed-unknown-charset", "malformed-headers",
	}
	seen := map[string]int{}
	msgs := generate(1, 150)
	for _, m := range msgs {
		seen[m.Kind]++
	}
	for _, k := range want {
		if seen[k] == 0 {
			t.Errorf("kind %q not generated in %d messages (seen %v)", k, len(msgs), seen)
		}
	}
	for i, m := range msgs[:5] {
		if strings.HasPrefix(m.Kind, "malformed") {
			t.Errorf("message %d is %s; the first five should be clean", i, m.Kind)
		}
	}
}

func TestGenerator_wireFormat(t *testing.T) {
	for i, m := range generate(3, 150) {
		if bytes.Contains(bytes.ReplaceAll(m.Raw, []byte("\r\n"), nil), []byte("\n")) {
			t.Errorf("message %d (%s) has a bare LF", i, m.Kind)
		}
		for _, line := range bytes.Split(m.Raw, []byte("\r\n")) {
			if len(line) > 998 {
				t.Errorf("message %d (%s) has a %d-byte line", i, m.Kind, len(line))
			}
		}
		if m.Kind != "mailing-list" && m.Mailbox != "INBOX" || m.Kind == "mailing-list" && m.Mailbox != "Lists/golang" {
			t.Errorf("message %d (%s) goes to %q", i, m.Kind, m.Mailbox)
		}
	}
}

// walk parses raw the way a consumer would and returns the decoded leaf
// parts by media type, and the first error met.
func walk(raw []byte) (parts map[string][]byte, subject string, err error) {
	parts = map[string][]byte{}
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) {
		return parts, "", err
	}
	subject, serr := r.Header.Subject()
	var first error
	if err != nil {
		first = err
	} else if serr != nil {
		first = serr
	}
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil && !message.IsUnknownCharset(err) {
			return parts, subject, errors.Join(first, err)
		}
		if err != nil && first == nil {
			first = err
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		body, err := io.ReadAll(p.Body)
		if err != nil && first == nil {
			first = err
		}
		parts[ct] = append(parts[ct], body...)
	}
	return parts, subject, first
}

func TestGenerator_wellFormedKindsParse(t *testing.T) {
	byKind := map[string]Message{}
	for _, m := range generate(5, 150) {
		byKind[m.Kind] = m
	}
	tests := []struct {
		kind        string
		subject     string // substring of the decoded subject
		part        string // a media type that must be present
		partContent string // substring of that part's decoded content
	}{
		{"plain", "", "text/plain", "\r\n\r\n"}, // paragraphs survive QP
		{"multipart-alternative", "has shipped", "text/html", "Track your parcel"},
		{"iso-8859-1", "Grüße aus München", "text/plain", "können wir die Besprechung"},
		{"iso-2022-jp", "会議の議事録について", "text/plain", "議事録を共有いたします"},
		{"utf-8-emoji", "", "text/plain", "\r\n\r\n"},
		{"html-only", "The Weekly Gopher", "text/html", "Unsubscribe"},
		{"pdf-attachment", "Invoice", "application/pdf", "%PDF-1.4"},
		{"inline-image", "coverage report", "image/png", "\x89PNG"},
		{"forwarded-rfc822", "Fwd: Quarterly numbers", "message/rfc822", "Subject: Quarterly numbers"},
		{"calendar-invite", "Invitation:", "text/calendar", "METHOD:REQUEST"},
		{"mailing-list", "context cancellation", "text/plain", "golang-nuts"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			m, ok := byKind[tt.kind]
			if !ok {
				t.Fatalf("no %s message generated", tt.kind)
			}
			parts, subject, err := walk(m.Raw)
			if err != nil {
				t.Fatalf("parse: %v\n%s", err, m.Raw)
			}
			if !strings.Contains(subject, tt.subject) {
				t.Errorf("subject %q does not contain %q", subject, tt.subject)
			}
			if !strings.Contains(string(parts[tt.part]), tt.partContent) {
				t.Errorf("%s part %q does not contain %q", tt.part, parts[tt.part], tt.partContent)
			}
			h, err := mail.CreateReader(bytes.NewReader(m.Raw))
			if err != nil {
				t.Fatal(err)
			}
			if d, err := h.Header.Date(); err != nil || d.IsZero() {
				t.Errorf("Date header: %v, %v", d, err)
			}
			if id, err := h.Header.MessageID(); err != nil || id == "" {
				t.Errorf("Message-ID: %q, %v", id, err)
			}
		})
	}
}

func TestGenerator_malformedKindsAreMalformed(t *testing.T) {
	byKind := map[string]Message{}
	for _, m := range generate(9, 300) {
		byKind[m.Kind] = m
	}
	for _, kind := range []string{"malformed-base64", "malformed-unclosed-boundary", "malformed-unknown-charset", "malformed-headers"} {
		t.Run(kind, func(t *testing.T) {
			m, ok := byKind[kind]
			if !ok {
				t.Fatalf("no %s message generated", kind)
			}
			_, _, err := walk(m.Raw)
			if kind == "malformed-headers" {
				h, herr := mail.CreateReader(bytes.NewReader(m.Raw))
				if herr != nil {
					return
				}
				if _, derr := h.Header.Date(); derr == nil {
					t.Error("broken Date header parses")
				}
				if _, aerr := h.Header.AddressList("From"); aerr == nil {
					t.Error("broken From header parses")
				}
				return
			}
			if err == nil {
				t.Fatalf("a consumer parses %s without any error:\n%s", kind, m.Raw)
			}
			if kind == "malformed-unknown-charset" && !message.IsUnknownCharset(err) {
				t.Errorf("error %v is not an unknown-charset error", err)
			}
		})
	}
}

func TestPDFDocument_xrefIsRight(t *testing.T) {
	doc := pdfDocument("Invoice (draft) \\ 1")
	m := regexp.MustCompile(`startxref\n(\d+)\n%%EOF\n$`).FindSubmatch(doc)
	if m == nil {
		t.Fatalf("no startxref trailer:\n%s", doc)
	}
	off, _ := strconv.Atoi(string(m[1]))
	if !bytes.HasPrefix(doc[off:], []byte("xref\n")) {
		t.Fatalf("startxref %d does not point at the xref table", off)
	}
	for i, e := range regexp.MustCompile(`(\d{10}) 00000 n `).FindAllSubmatch(doc, -1) {
		o, _ := strconv.Atoi(string(e[1]))
		if want := strconv.Itoa(i+1) + " 0 obj"; !bytes.HasPrefix(doc[o:], []byte(want)) {
			t.Errorf("xref entry %d points at %q, want %q", i+1, doc[o:o+10], want)
		}
	}
	if !bytes.Contains(doc, []byte(`(Invoice \(draft\) \\ 1)`)) {
		t.Error("title not escaped as a PDF string")
	}
}

func TestPNGImage_decodes(t *testing.T) {
	img, err := png.Decode(bytes.NewReader(pngImage(NewGenerator(1).rng)))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 48 || b.Dy() != 32 {
		t.Fatalf("image is %v", b)
	}
}

func TestFoldICS(t *testing.T) {
	long := "ATTENDEE;CN=Demo User;ROLE=REQ-PARTICIPANT;RSVP=TRUE:mailto:demo@mailtap.example;X-NOTE=Grüße aus München und Köln"
	folded := foldICS("BEGIN:VEVENT\n" + long + "\nEND:VEVENT\n")
	for _, line := range strings.Split(strings.TrimSuffix(folded, "\r\n"), "\r\n") {
		if len(line) > 75 {
			t.Errorf("line of %d octets: %q", len(line), line)
		}
	}
	if unfolded := strings.ReplaceAll(folded, "\r\n ", ""); unfolded != "BEGIN:VEVENT\r\n"+long+"\r\nEND:VEVENT\r\n" {
		t.Errorf("unfolding does not restore the text:\n%q", unfolded)
	}
}

// Subjects and bodies belong together: each plain and emoji mail carries
// the body written for its subject (the first mail a new user opens).
func TestGenerator_subjectsMatchBodies(t *testing.T) {
	topic := map[string]string{
		"Lunch on Friday?":                "lunch on Friday",
		"Notes from today's standup":      "notes from today's standup",
		"Quick question about the deploy": "the deploy yesterday",
		"Re: weekend hike":                "ridge trail",
		"Draft for review":                "draft of the release announcement",
		"🎉 We shipped it!":                "the release is out",
		"Coffee ☕ or tea 🍵?":              "coffee ☕ or tea 🍵",
		"🚀 Launch checklist ✅":            "launch checklist",
	}
	seen := map[string]bool{}
	for _, m := range generate(7, 600) {
		if m.Kind != "plain" && m.Kind != "utf-8-emoji" {
			continue
		}
		parts, subject, err := walk(m.Raw)
		if err != nil {
			t.Fatal(err)
		}
		want, ok := topic[subject]
		if !ok {
			t.Errorf("%s mail with unexpected subject %q", m.Kind, subject)
			continue
		}
		seen[subject] = true
		if body := string(parts["text/plain"]); !strings.Contains(body, want) {
			t.Errorf("subject %q carries a body about something else:\n%s", subject, body)
		}
	}
	if len(seen) != len(topic) {
		t.Errorf("only %d of %d subjects generated in 600 mails", len(seen), len(topic))
	}
}
