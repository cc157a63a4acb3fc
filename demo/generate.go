package demo

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
)

// Message is one generated email.
type Message struct {
	Mailbox string    // where it is delivered: "INBOX" or "Lists/golang"
	Kind    string    // what it exercises, e.g. "multipart-alternative", "malformed-base64"
	Date    time.Time // its Date header, also used as the server's internal date
	Raw     []byte    // RFC 5322, CRLF line ends
}

// Generator makes a realistic stream of email: plain text, HTML only,
// multipart/alternative, PDF and inline PNG attachments, RFC 2047 subjects in
// German (ISO-8859-1), Japanese (ISO-2022-JP) and emoji (UTF-8), a forwarded
// message/rfc822, a calendar invitation, mailing-list threads, and now and
// then a malformed message (bad base64, an unclosed multipart boundary, an
// unknown charset, broken headers). The sequence depends only on the seed
// and the times passed to Next.
//
// A Generator is not safe for concurrent use.
type Generator struct {
	seed   uint64
	rng    *rand.Rand
	n      int      // messages made so far
	thread []string // Message-IDs of the current list thread
}

// NewGenerator returns a generator for seed.
func NewGenerator(seed uint64) *Generator {
	return &Generator{seed: seed, rng: rand.New(rand.NewPCG(seed, 0x6d61696c746170))}
}

// kinds is the rotation of well-formed messages.
var kinds = []func(*Generator, time.Time) Message{
	(*Generator).plain,
	(*Generator).alternative,
	(*Generator).german,
	(*Generator).pdfAttachment,
	(*Generator).list,
	(*Generator).htmlOnly,
	(*Generator).japanese,
	(*Generator).forwarded,
	(*Generator).emoji,
	(*Generator).calendar,
	(*Generator).inlineImage,
	(*Generator).list,
}

var malformed = []func(*Generator, time.Time) Message{
	(*Generator).badBase64,
	(*Generator).unclosedBoundary,
	(*Generator).unknownCharset,
	(*Generator).brokenHeaders,
}

// Next makes the next message, dated now.
func (g *Generator) Next(now time.Time) Message {
	defer func() { g.n++ }()
	// After the first few (a clean first impression), about one in eight
	// is malformed, as in a real mailbox fed by many senders.
	if g.n >= 5 && g.rng.IntN(8) == 0 {
		return malformed[g.rng.IntN(len(malformed))](g, now)
	}
	return kinds[g.n%len(kinds)](g, now)
}

// person is a sender; tz is their UTC offset in minutes, used for the Date
// header as their mail client would.
type person struct {
	name, addr string
	tz         int
}

func (p person) String() string { return (&mail.Address{Name: p.name, Address: p.addr}).String() }

var (
	demoUser = person{"Demo User", "demo@mailtap.example", 0}
	people   = []person{
		{"Priya Raman", "priya.raman@example.com", 330},
		{"Lena Okafor", "lena.okafor@example.org", 60},
		{"Tomás Herrera", "tomas@example.net", -180},
		{"Sam Whitfield", "sam.whitfield@example.com", -300},
		{"Chen Wei", "chen.wei@example.org", 480},
	}
	juergen = person{"Jürgen Müller", "juergen.mueller@example.de", 120}
	yamada  = person{"山田 太郎", "taro.yamada@example.jp", 540}
	shop    = person{"Acme Outdoor", "orders@shop.example.com", 0}
	news    = person{"The Weekly Gopher", "newsletter@news.example.net", -420}
	ci      = person{"CI Robot", "noreply@ci.example.com", 0}
	gophers = []person{
		{"Russ Example", "russ@example.com", -240},
		{"Ana Lima", "ana.lima@example.org", -180},
		{"Kofi Mensah", "kofi@example.net", 0},
	}
)

// zone is p's time zone; fixed zones need no tzdata.
func (p person) zone() *time.Location { return time.FixedZone("", p.tz*60) }

func pick[T any](g *Generator, l []T) T { return l[g.rng.IntN(len(l))] }

// header starts a message: trace and origin headers as an MTA would leave
// them. Values must already be RFC 2047 encoded where needed.
func (g *Generator) header(b *bytes.Buffer, from person, subject string, date time.Time, extra ...string) string {
	date = date.In(from.zone()).Truncate(time.Second)
	id := fmt.Sprintf("<%x.%d.%s@%s>", g.seed, g.n, g.token(6), domainOf(from.addr))
	fmt.Fprintf(b, "Return-Path: <%s>\r\n", from.addr)
	fmt.Fprintf(b, "Received: from mail.%s (mail.%s [192.0.2.%d])\r\n\tby mx.mailtap.example with ESMTPS id %s\r\n\tfor <%s>; %s\r\n",
		domainOf(from.addr), domainOf(from.addr), 10+g.rng.IntN(200), g.token(10), demoUser.addr, date.Format(time.RFC1123Z))
	fmt.Fprintf(b, "Date: %s\r\n", date.Format(time.RFC1123Z))
	fmt.Fprintf(b, "From: %s\r\n", from)
	fmt.Fprintf(b, "To: %s\r\n", demoUser)
	fmt.Fprintf(b, "Subject: %s\r\n", subject)
	fmt.Fprintf(b, "Message-ID: %s\r\n", id)
	for i := 0; i+1 < len(extra); i += 2 {
		fmt.Fprintf(b, "%s: %s\r\n", extra[i], extra[i+1])
	}
	b.WriteString("MIME-Version: 1.0\r\n")
	return id
}

func domainOf(addr string) string { return addr[strings.IndexByte(addr, '@')+1:] }

const tokenChars = "abcdefghijklmnopqrstuvwxyz0123456789"

func (g *Generator) token(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = tokenChars[g.rng.IntN(len(tokenChars))]
	}
	return string(b)
}

func (g *Generator) boundary() string { return "=_mailtap_" + g.token(16) }

func utf8Subject(s string) string { return mime.QEncoding.Encode("utf-8", s) }

// qp is s quoted-printable encoded with CRLF line ends.
func qp(s []byte) string {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	w.Write(bytes.ReplaceAll(s, []byte("\r\n"), []byte("\n")))
	w.Close()
	return b.String()
}

// b64 is data base64 encoded in 76-character lines.
func b64(data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.String()
}

func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

func msg(mailbox, kind string, date time.Time, b *bytes.Buffer) Message {
	return Message{Mailbox: mailbox, Kind: kind, Date: date, Raw: b.Bytes()}
}

// plainMails pair each subject with its body: the first mail a new user
// opens must read like a mail. %s is the sender's first name.
var plainMails = []struct{ subject, body string }{
	{"Lunch on Friday?", "Hi,\n\nare we still on for lunch on Friday? The new ramen place near the station opens at 11:30 — I can book a table for four.\n\nCheers,\n%s\n"},
	{"Notes from today's standup", "Hello,\n\nhere are my notes from today's standup:\n\n  * the import job is green again\n  * release candidate goes out Thursday\n  * we still need someone to own the flaky retry test\n\nThanks,\n%s\n"},
	{"Quick question about the deploy", "Hey,\n\nquick one: did the deploy yesterday include the config change for the cache TTL? Staging still shows 300s.\n\n— %s\n"},
	{"Re: weekend hike", "Hi,\n\nSaturday works for me. Shall we take the ridge trail this time? I'll bring the map; the weather looks dry until 4 pm.\n\n%s\n"},
	{"Draft for review", "Hi,\n\nhere is the draft of the release announcement for review. Comments inline are welcome; I'd like to send it out on Wednesday.\n\nBest,\n%s\n"},
}

// emojiMails are the emoji-heavy subjects, each with its own body.
var emojiMails = []struct{ subject, body string }{
	{"🎉 We shipped it!", "Team,\n\nthe release is out 🎉 Thanks everyone 🙏\nDrinks on me tonight 🍻\n"},
	{"Coffee ☕ or tea 🍵?", "Hi all,\n\nI'm ordering for the office: coffee ☕ or tea 🍵? Reply by noon 🕛\n"},
	{"🚀 Launch checklist ✅", "Team,\n\nlaunch checklist for tomorrow 🚀\n✅ docs\n✅ release notes\n⬜ status page\n"},
}

func (g *Generator) plain(now time.Time) Message {
	from := pick(g, people)
	m := pick(g, plainMails)
	var b bytes.Buffer
	g.header(&b, from, utf8Subject(m.subject), now)
	b.WriteString("Content-Type: text/plain; charset=utf-8; format=flowed\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	b.WriteString(qp([]byte(fmt.Sprintf(m.body, strings.Fields(from.name)[0]))))
	return msg("INBOX", "plain", now, &b)
}

func (g *Generator) alternative(now time.Time) Message {
	order := fmt.Sprintf("AO-%06d", g.rng.IntN(1_000_000))
	total := fmt.Sprintf("%d.%02d", 20+g.rng.IntN(300), g.rng.IntN(100))
	bd := g.boundary()
	var b bytes.Buffer
	g.header(&b, shop, utf8Subject("Your order "+order+" has shipped"), now)
	fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", bd)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", bd)
	b.WriteString(qp([]byte(fmt.Sprintf("Good news! Your order %s is on its way.\n\n1 × Trail running shoes, size 42\n1 × Merino socks (3-pack)\n\nTotal: €%s\n\nTrack your parcel: https://shop.example.com/track/%s\n", order, total, order))))
	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n", bd)
	html := fmt.Sprintf(`<!DOCTYPE html><html><body style="font-family:sans-serif"><h1>Your order is on its way</h1><p>Order <b>%s</b> has shipped.</p><table><tr><td>1 &times; Trail running shoes, size 42</td></tr><tr><td>1 &times; Merino socks (3-pack)</td></tr></table><p>Total: <b>&euro;%s</b></p><p><a href="https://shop.example.com/track/%s">Track your parcel</a></p></body></html>`, order, total, order)
	b.WriteString(b64([]byte(html)))
	fmt.Fprintf(&b, "--%s--\r\n", bd)
	return msg("INBOX", "multipart-alternative", now, &b)
}

func (g *Generator) german(now time.Time) Message {
	latin1 := charmap.ISO8859_1.NewEncoder()
	subject, _ := latin1.String("Grüße aus München: Besprechung am Donnerstag")
	body, _ := latin1.String(crlf("Hallo,\n\nkönnen wir die Besprechung auf Donnerstag, 14:00 Uhr verschieben? Ich bringe die Unterlagen für das Büro in Köln mit.\n\nViele Grüße\nJürgen Müller\n"))
	var b bytes.Buffer
	g.header(&b, juergen, mime.QEncoding.Encode("iso-8859-1", subject), now)
	b.WriteString("Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	b.WriteString(qp([]byte(body)))
	return msg("INBOX", "iso-8859-1", now, &b)
}

func (g *Generator) japanese(now time.Time) Message {
	enc := japanese.ISO2022JP.NewEncoder()
	subject, _ := enc.String("会議の議事録について")
	body, _ := enc.String(crlf("田中様\n\nお疲れ様です。山田です。\n本日の会議の議事録を共有いたします。\nご確認のほど、よろしくお願いいたします。\n\n山田 太郎\n"))
	var b bytes.Buffer
	g.header(&b, yamada, mime.BEncoding.Encode("ISO-2022-JP", subject), now)
	b.WriteString("Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
	b.WriteString(body)
	return msg("INBOX", "iso-2022-jp", now, &b)
}

func (g *Generator) emoji(now time.Time) Message {
	from := pick(g, people)
	m := pick(g, emojiMails)
	var b bytes.Buffer
	g.header(&b, from, mime.BEncoding.Encode("utf-8", m.subject), now)
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	b.WriteString(b64([]byte(crlf(m.body))))
	return msg("INBOX", "utf-8-emoji", now, &b)
}

func (g *Generator) htmlOnly(now time.Time) Message {
	issue := 100 + g.n
	var b bytes.Buffer
	g.header(&b, news, utf8Subject(fmt.Sprintf("The Weekly Gopher #%d: generics in practice", issue)), now,
		"List-Unsubscribe", "<https://news.example.net/unsubscribe?u=demo>")
	b.WriteString("Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	html := fmt.Sprintf("<!DOCTYPE html>\n<html><head><title>The Weekly Gopher #%d</title></head>\n<body>\n<h1>The Weekly Gopher</h1>\n<p>Issue #%d &mdash; this week: generics in practice, a faster <code>encoding/json</code>, and a profiler walkthrough.</p>\n<ul>\n<li><a href=\"https://news.example.net/a/1\">Type parameters without tears</a></li>\n<li><a href=\"https://news.example.net/a/2\">Reading pprof flame graphs</a></li>\n</ul>\n<p style=\"color:#888\">You get this because you subscribed. <a href=\"https://news.example.net/unsubscribe?u=demo\">Unsubscribe</a>.</p>\n</body></html>\n", issue, issue)
	b.WriteString(qp([]byte(html)))
	return msg("INBOX", "html-only", now, &b)
}

func (g *Generator) pdfAttachment(now time.Time) Message {
	from := pick(g, people)
	invoice := fmt.Sprintf("2024-%04d", g.rng.IntN(10000))
	bd := g.boundary()
	var b bytes.Buffer
	g.header(&b, from, utf8Subject("Invoice "+invoice), now)
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n", bd)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n", bd)
	fmt.Fprintf(&b, "Hi,\r\n\r\nplease find invoice %s attached.\r\n\r\nBest regards,\r\n%s\r\n\r\n", invoice, from.name)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: application/pdf; name=\"invoice-%s.pdf\"\r\nContent-Disposition: attachment; filename=\"invoice-%s.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", bd, invoice, invoice)
	b.WriteString(b64(pdfDocument("Invoice " + invoice)))
	fmt.Fprintf(&b, "--%s--\r\n", bd)
	return msg("INBOX", "pdf-attachment", now, &b)
}

func (g *Generator) inlineImage(now time.Time) Message {
	bd, rel := g.boundary(), g.boundary()
	cid := fmt.Sprintf("chart.%s@ci.example.com", g.token(8))
	var b bytes.Buffer
	g.header(&b, ci, utf8Subject("Build #"+fmt.Sprint(4000+g.n)+" passed: coverage report"), now)
	fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", bd)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBuild passed. Coverage 81.4%% (+0.3).\r\n\r\n", bd)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: multipart/related; boundary=\"%s\"; type=\"text/html\"\r\n\r\n", bd, rel)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Build passed. Coverage <b>81.4%%</b> (+0.3).</p><img src=\"cid:%s\" alt=\"coverage chart\"></body></html>\r\n\r\n", rel, cid)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: image/png\r\nContent-Disposition: inline; filename=\"coverage.png\"\r\nContent-ID: <%s>\r\nContent-Transfer-Encoding: base64\r\n\r\n", rel, cid)
	b.WriteString(b64(pngImage(g.rng)))
	fmt.Fprintf(&b, "--%s--\r\n\r\n--%s--\r\n", rel, bd)
	return msg("INBOX", "inline-image", now, &b)
}

func (g *Generator) forwarded(now time.Time) Message {
	from, orig := pick(g, people), pick(g, people)
	bd := g.boundary()
	origDate := now.Add(-26 * time.Hour).In(orig.zone()).Truncate(time.Second)
	var b bytes.Buffer
	g.header(&b, from, utf8Subject("Fwd: Quarterly numbers"), now)
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", bd)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nFYI, see below.\r\n\r\n", bd)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n", bd)
	fmt.Fprintf(&b, "Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: Quarterly numbers\r\nMessage-ID: <q3.%s@%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		origDate.Format(time.RFC1123Z), orig, from, g.token(8), domainOf(orig.addr))
	b.WriteString("Hi,\r\n\r\nrevenue is up 12% on last quarter; costs flat. Full deck on Monday.\r\n\r\n")
	fmt.Fprintf(&b, "--%s--\r\n", bd)
	return msg("INBOX", "forwarded-rfc822", now, &b)
}

func (g *Generator) calendar(now time.Time) Message {
	organizer := pick(g, people)
	start := time.Date(now.Year(), now.Month(), now.Day(), 10, 0, 0, 0, time.UTC).AddDate(0, 0, 2)
	const ics = "20060102T150405Z"
	uid := fmt.Sprintf("%x-%d@mailtap.example", g.seed, g.n)
	event := foldICS(fmt.Sprintf(`BEGIN:VCALENDAR
PRODID:-//mailtap//demo//EN
VERSION:2.0
METHOD:REQUEST
BEGIN:VEVENT
UID:%s
DTSTAMP:%s
DTSTART:%s
DTEND:%s
SUMMARY:Design review: storage layer
LOCATION:Room 4.12 / video link in description
ORGANIZER;CN=%s:mailto:%s
ATTENDEE;CN=Demo User;ROLE=REQ-PARTICIPANT;RSVP=TRUE:mailto:%s
END:VEVENT
END:VCALENDAR
`, uid, now.UTC().Format(ics), start.Format(ics), start.Add(time.Hour).Format(ics), organizer.name, organizer.addr, demoUser.addr))
	bd := g.boundary()
	var b bytes.Buffer
	g.header(&b, organizer, utf8Subject("Invitation: Design review: storage layer @ "+start.Format("Mon Jan 2, 15:04 MST")), now)
	fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", bd)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYou have been invited to \"Design review: storage layer\" on %s.\r\n\r\n", bd, start.Format(time.RFC1123))
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\r\nContent-Transfer-Encoding: 7bit\r\n\r\n%s\r\n", bd, event)
	fmt.Fprintf(&b, "--%s--\r\n", bd)
	return msg("INBOX", "calendar-invite", now, &b)
}

func (g *Generator) list(now time.Time) Message {
	from := pick(g, gophers)
	subject := "context cancellation and IMAP IDLE"
	bodies := []string{
		"imapclient has no contexts, so I close the IDLE command from a goroutine that waits on ctx.Done(). Is that the idiomatic way?",
		"> close the IDLE command from a goroutine\r\n\r\nYes, and close the client too: a peer that never answers DONE would block you otherwise.",
		"Keep the unilateral handler non-blocking; do the FETCH from your own loop after leaving IDLE.",
	}
	body := bodies[0]
	var extra []string
	if len(g.thread) > 0 && g.rng.IntN(4) != 0 {
		subject = "Re: " + subject
		body = pick(g, bodies[1:])
		extra = []string{"In-Reply-To", g.thread[len(g.thread)-1], "References", strings.Join(g.thread, " ")}
	} else {
		g.thread = g.thread[:0]
	}
	extra = append(extra,
		"List-Id", "golang-nuts <golang-nuts.googlegroups.com>",
		"List-Post", "<mailto:golang-nuts@googlegroups.com>",
		"List-Unsubscribe", "<mailto:golang-nuts+unsubscribe@googlegroups.com>",
		"Precedence", "list")
	var b bytes.Buffer
	id := g.header(&b, from, utf8Subject(subject), now, extra...)
	g.thread = append(g.thread, id)
	if len(g.thread) > 8 {
		g.thread = g.thread[len(g.thread)-8:]
	}
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	fmt.Fprintf(&b, "%s\r\n\r\n-- \r\nYou received this message because you are subscribed to the Google Groups \"golang-nuts\" group.\r\n", body)
	return msg("Lists/golang", "mailing-list", now, &b)
}

func (g *Generator) badBase64(now time.Time) Message {
	from := pick(g, people)
	bd := g.boundary()
	var b bytes.Buffer
	g.header(&b, from, utf8Subject("Scan from the office printer"), now)
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", bd)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nScanned document attached.\r\n\r\n", bd)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: application/pdf; name=\"scan.pdf\"\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", bd)
	// Valid start, then characters outside the alphabet and bad padding.
	enc := base64.StdEncoding.EncodeToString(pdfDocument("Scan"))[:120]
	fmt.Fprintf(&b, "%s\r\n%s!!*not*base64*at*all~~\r\n==A=\r\n", enc[:76], enc[76:])
	fmt.Fprintf(&b, "--%s--\r\n", bd)
	return msg("INBOX", "malformed-base64", now, &b)
}

func (g *Generator) unclosedBoundary(now time.Time) Message {
	from := pick(g, people)
	bd := g.boundary()
	var b bytes.Buffer
	g.header(&b, from, utf8Subject("Re: agenda (sent from a flaky client)"), now)
	fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", bd)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAgenda:\r\n1. Status\r\n2. Risks\r\n\r\n", bd)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Agenda:</p><ol><li>Status</li><li>Risks", bd)
	// The message ends here: no closing "--boundary--", HTML cut short.
	b.WriteString("\r\n")
	return msg("INBOX", "malformed-unclosed-boundary", now, &b)
}

func (g *Generator) unknownCharset(now time.Time) Message {
	from := pick(g, people)
	var b bytes.Buffer
	g.header(&b, from, "=?x-mailtap-unknown?Q?Status_=E4_report?=", now)
	b.WriteString("Content-Type: text/plain; charset=\"x-mailtap-unknown\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.Write([]byte("Status: all systems nominal \xe4\xf6\xfc \xff\xfe\r\n"))
	return msg("INBOX", "malformed-unknown-charset", now, &b)
}

func (g *Generator) brokenHeaders(now time.Time) Message {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Date: Someday, 32 Foo %d 25:61:00 +9999\r\n", now.Year())
	b.WriteString("From: \"Unterminated <broken@@example..com\r\n")
	fmt.Fprintf(&b, "To: %s\r\n", demoUser)
	b.WriteString("Subject: =?utf-8?B?not base64 at all?=\r\n")
	fmt.Fprintf(&b, "Message-ID: no-angle-brackets-%d@example.com\r\n", g.n)
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString("Headers above are broken on purpose: bad date, bad address, bad encoded word.\r\n")
	return msg("INBOX", "malformed-headers", now, &b)
}

// foldICS gives text CRLF line ends and folds lines longer than 75 octets
// (RFC 5545 §3.1) with CRLF and a space, never inside a UTF-8 sequence.
func foldICS(text string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(crlf(text), "\r\n"), "\r\n") {
		for limit := 75; len(line) > limit; limit = 74 {
			cut := limit
			for cut > 0 && !utf8.RuneStart(line[cut]) {
				cut--
			}
			b.WriteString(line[:cut] + "\r\n ")
			line = line[cut:]
		}
		b.WriteString(line + "\r\n")
	}
	return b.String()
}

// pdfDocument is a minimal valid one-page PDF showing title (ASCII), with a
// correct cross-reference table.
func pdfDocument(title string) []byte {
	title = strings.NewReplacer(`\`, `\\`, `(`, `\(`, `)`, `\)`).Replace(title)
	content := fmt.Sprintf("BT /F1 24 Tf 72 760 Td (%s) Tj ET", title)
	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objects))
	for i, o := range objects {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return b.Bytes()
}

// pngImage is a small bar chart in seeded colours.
func pngImage(rng *rand.Rand) []byte {
	const w, h = 48, 32
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	bg := color.RGBA{250, 250, 250, 255}
	bar := color.RGBA{uint8(rng.IntN(200)), uint8(80 + rng.IntN(150)), uint8(rng.IntN(255)), 255}
	for x := 0; x < w; x++ {
		top := h - (x/8+1)*h/7
		for y := 0; y < h; y++ {
			if x%8 < 6 && y >= top {
				img.Set(x, y, bar)
			} else {
				img.Set(x, y, bg)
			}
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}
