package bench

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
)

// DefaultSeed is the seed of the published figures.
const DefaultSeed = 20240301

// Corpus returns messages 0 … n-1 of the corpus for seed. Message i depends
// only on (seed, i), so a prefix of a larger corpus is the smaller corpus.
func Corpus(seed uint64, n int) [][]byte {
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = Message(seed, i)
	}
	return msgs
}

// Kind is the shape of a generated message.
type Kind int

// The shapes, with the share of the corpus each takes (see pickKind).
const (
	KindPlain       Kind = iota // text/plain only
	KindHTML                    // text/html only
	KindAlternative             // multipart/alternative: text + html
	KindAttachments             // multipart/mixed: a body and 1-2 attachments
	KindLarge                   // multipart/mixed with one 300 KB-1 MB attachment
	KindForward                 // multipart/mixed with a forwarded message/rfc822
)

var kindNames = [...]string{"plain", "html", "alternative", "attachments", "large", "forward"}

func (k Kind) String() string { return kindNames[k] }

// KindOf reports the shape message i of seed has, without building it.
func KindOf(seed uint64, i int) Kind {
	return pickKind(newRand(seed, i))
}

func newRand(seed uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(i)*0x9e3779b97f4a7c15+1))
}

// pickKind must be the first draw of a message's generator.
func pickKind(r *rand.Rand) Kind {
	switch x := r.Float64(); {
	case x < 0.46:
		return KindPlain
	case x < 0.58:
		return KindHTML
	case x < 0.87:
		return KindAlternative
	case x < 0.972:
		return KindAttachments
	case x < 0.975:
		return KindLarge
	default:
		return KindForward
	}
}

// Message builds message i of the corpus for seed: an RFC 5322 message with
// CRLF line ends and the headers real mail carries (Received chains, DKIM,
// list headers), in one of the shapes of Kind, about a third of them with
// non-ASCII text in UTF-8, ISO-8859-1, KOI8-R or ISO-2022-JP, in 8bit,
// quoted-printable or base64. The average size is about 20 KB.
func Message(seed uint64, i int) []byte {
	r := newRand(seed, i)
	g := &gen{r: r, seed: seed, i: i}
	kind := pickKind(r)
	g.lang = g.pickLang()
	var b bytes.Buffer
	b.Grow(32 << 10)
	g.topHeader(&b)
	switch kind {
	case KindPlain:
		g.plainPart(&b, g.paragraphs(g.textSize()))
	case KindHTML:
		g.htmlPart(&b, g.paragraphs(g.textSize()))
	case KindAlternative:
		g.alternative(&b)
	case KindAttachments:
		g.mixed(&b, 1+r.IntN(4)/3, false)
	case KindLarge:
		g.mixed(&b, 1, true)
	case KindForward:
		g.forward(&b)
	}
	return b.Bytes()
}

type gen struct {
	r    *rand.Rand
	seed uint64
	i    int
	lang *language
	nb   int // boundaries made
}

// ---- languages and text ----

type language struct {
	name    string
	words   []string
	charset []string            // charsets this language is sent in, first is the usual
	enc     []encoding.Encoding // matching charset (nil: UTF-8)
}

var languages = []*language{
	{name: "en", words: strings.Fields(`the of and to a in is it you that he was for on are with as I his they be at one have this from
		or had by hot word but what some we can out other were all there when up use your how said an each she which do their time if
		will way about many then them write would like so these her long make thing see him two has look more day could go come did
		number sound no most people my over know water than call first who may down side been now find any new work part take get place
		made live where after back little only round man year came show every good me give our under name very through just form sentence
		great think say help low line differ turn cause much mean before move right boy old too same tell does set three want air well
		also play small end put home read hand port large spell add even land here must big high such follow act why ask men change went
		light kind off need house picture try us again animal point mother world near build self earth father invoice meeting schedule
		report quarterly budget deadline project review release deployment server customer account password reminder shipment order`),
		charset: []string{"us-ascii", "utf-8"}, enc: []encoding.Encoding{nil, nil}},
	{name: "de", words: strings.Fields(`der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an werden aus er hat
		daß sie nach wird bei einer um am sind noch wie einem über einen so zum war haben nur oder aber vor zur bis mehr durch man sein
		wurde sei Grüße Rechnung Besprechung Überweisung Größe Straße Bestätigung Lieferung Tschüß schöne Woche Mädchen Bücher Häuser
		zurück möglich natürlich Frühstück Geschäftsführer Änderung`),
		charset: []string{"iso-8859-1", "utf-8"}, enc: []encoding.Encoding{charmap.ISO8859_1, nil}},
	{name: "fr", words: strings.Fields(`le la les de des du un une et est à en que qui dans pour pas sur au avec ce il elle nous vous être avoir
		fait très été déjà où même après réunion facture été prévu reçu élève hôtel forêt garçon français naïve cœur noël à bientôt
		cordialement merci beaucoup problème réponse équipe`),
		charset: []string{"utf-8", "iso-8859-1"}, enc: []encoding.Encoding{nil, charmap.ISO8859_1}},
	{name: "ru", words: strings.Fields(`и в не на я быть он с что а по это она этот к но они мы как из у который то за свой весь год от так о
		для ты же все тот мочь вы человек такой его сказать только или еще бы себя один как уже до время если сам когда другой вот
		счёт встреча отчёт пожалуйста спасибо здравствуйте`),
		charset: []string{"utf-8", "koi8-r"}, enc: []encoding.Encoding{nil, charmap.KOI8R}},
	{name: "ja", words: strings.Fields(`これは テスト の メール です 会議 資料 添付 確認 お願い します 今週 来週 予定 変更 ありがとう ございます
		よろしく お願いいたします 請求書 見積書 納期 担当 部長 東京 大阪 株式会社 お世話 になって おります`),
		charset: []string{"utf-8", "iso-2022-jp"}, enc: []encoding.Encoding{nil, japanese.ISO2022JP}},
}

func (g *gen) pickLang() *language {
	switch x := g.r.Float64(); {
	case x < 0.68:
		return languages[0]
	case x < 0.80:
		return languages[1]
	case x < 0.88:
		return languages[2]
	case x < 0.94:
		return languages[3]
	default:
		return languages[4]
	}
}

// textSize is a body size in bytes: log-normal around 3 KB, 200 B … 60 KB.
func (g *gen) textSize() int {
	n := int(3000 * math.Exp(g.r.NormFloat64()*0.9))
	return min(max(n, 200), 60_000)
}

// paragraphs is about n bytes of text in the message's language.
func (g *gen) paragraphs(n int) []string {
	var paras []string
	total := 0
	for total < n {
		var p strings.Builder
		words := 20 + g.r.IntN(80)
		for w := 0; w < words; w++ {
			word := g.lang.words[g.r.IntN(len(g.lang.words))]
			if w == 0 && g.lang.name != "ja" {
				c, size := utf8.DecodeRuneInString(word)
				word = string(unicode.ToUpper(c)) + word[size:]
			}
			p.WriteString(word)
			switch {
			case g.lang.name == "ja":
				if g.r.IntN(6) == 0 {
					p.WriteString("。")
				}
			case g.r.IntN(12) == 0:
				p.WriteString(". ")
			case g.r.IntN(15) == 0:
				p.WriteString(", ")
			default:
				p.WriteByte(' ')
			}
		}
		s := strings.TrimSpace(p.String())
		if g.lang.name != "ja" {
			s += "."
		}
		paras = append(paras, s)
		total += len(s) + 2
	}
	return paras
}

// wrap breaks a paragraph into lines of about 72 bytes at spaces (long
// runs without spaces, as in Japanese, are left to the encoding).
func wrap(p string) string {
	var b strings.Builder
	line := 0
	for i, w := range strings.Split(p, " ") {
		if i > 0 {
			if line+1+len(w) > 72 {
				b.WriteString("\r\n")
				line = 0
			} else {
				b.WriteByte(' ')
				line++
			}
		}
		b.WriteString(w)
		line += len(w)
	}
	return b.String()
}

// ---- people ----

var (
	firstNames = []string{"Alice", "Bob", "Carol", "David", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Niaj",
		"Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Jürgen", "François", "Zoë", "Søren", "José", "Дмитрий", "Анна", "太郎", "花子"}
	lastNames = []string{"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Müller", "Dupont", "Ødegaard",
		"García", "Иванов", "Петрова", "田中", "鈴木", "O'Brien", "van der Berg"}
	domains = []string{"example.com", "example.org", "example.net", "mail.example.com", "corp.example", "lists.example.org", "shop.example"}
)

type person struct{ name, addr string }

func (g *gen) person() person {
	f, l := firstNames[g.r.IntN(len(firstNames))], lastNames[g.r.IntN(len(lastNames))]
	local := strings.ToLower(asciiOnly(f) + "." + asciiOnly(l))
	if strings.Trim(local, ".") == "" || strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") {
		local = fmt.Sprintf("user%d", g.r.IntN(10000))
	}
	return person{name: f + " " + l, addr: local + "@" + domains[g.r.IntN(len(domains))]}
}

func asciiOnly(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c < 0x80 && c != ' ' && c != '\'' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

func (g *gen) formatPerson(p person) string {
	if isASCII(p.name) {
		if strings.ContainsAny(p.name, "'.") {
			return fmt.Sprintf("%q <%s>", p.name, p.addr)
		}
		return p.name + " <" + p.addr + ">"
	}
	enc := mime.QEncoding
	if g.r.IntN(2) == 0 {
		enc = mime.BEncoding
	}
	return enc.Encode("utf-8", p.name) + " <" + p.addr + ">"
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// ---- headers ----

var subjects = []string{"Re: %s", "Fwd: %s", "%s", "%s", "[list] %s", "Invoice %d: %s", "Your order #%d: %s", "Meeting: %s"}

func (g *gen) subject() string {
	words := make([]string, 3+g.r.IntN(6))
	for i := range words {
		words[i] = g.lang.words[g.r.IntN(len(g.lang.words))]
	}
	topic := strings.Join(words, " ")
	tmpl := subjects[g.r.IntN(len(subjects))]
	if strings.Contains(tmpl, "%d") {
		return fmt.Sprintf(tmpl, 10000+g.r.IntN(90000), topic)
	}
	return fmt.Sprintf(tmpl, topic)
}

// encodeHeaderText is RFC 2047 for non-ASCII text, sometimes in the
// language's legacy charset.
func (g *gen) encodeHeaderText(s string) string {
	if isASCII(s) {
		return s
	}
	cs, enc := g.charset()
	raw := s
	if enc != nil {
		if b, err := enc.NewEncoder().String(s); err == nil {
			raw = b
		} else {
			cs = "utf-8"
		}
	}
	if cs == "us-ascii" {
		cs = "utf-8"
	}
	if g.r.IntN(2) == 0 {
		return mime.QEncoding.Encode(cs, raw)
	}
	return mime.BEncoding.Encode(cs, raw)
}

func (g *gen) charset() (string, encoding.Encoding) {
	j := 0
	if g.r.IntN(4) == 0 {
		j = 1
	}
	return g.lang.charset[j], g.lang.enc[j]
}

var zones = []string{"+0000", "-0500", "+0100", "+0200", "+0900", "-0800", "+0530"}

func (g *gen) date() time.Time {
	base := time.Date(2024, time.January, 1, 8, 0, 0, 0, time.UTC)
	return base.Add(time.Duration(g.i)*47*time.Minute + time.Duration(g.r.IntN(3600))*time.Second)
}

func (g *gen) topHeader(b *bytes.Buffer) {
	from, to := g.person(), g.person()
	d := g.date()
	zone := zones[g.r.IntN(len(zones))]
	loc, _ := time.Parse("-0700", zone)
	local := d.In(loc.Location())
	host := domains[g.r.IntN(len(domains))]
	msgID := fmt.Sprintf("%d.%x.%d@%s", g.i, g.r.Uint32(), g.seed, host)

	fmt.Fprintf(b, "Return-Path: <%s>\r\n", from.addr)
	fmt.Fprintf(b, "Delivered-To: %s\r\n", to.addr)
	hops := 2 + g.r.IntN(4)
	for h := 0; h < hops; h++ {
		t := d.Add(-time.Duration(hops-h) * time.Duration(1+g.r.IntN(5)) * time.Second)
		fmt.Fprintf(b, "Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\r\n\tby mail%d.%s (Postfix) with ESMTPS id %X\r\n\tfor <%s>; %s\r\n",
			h, host, h, host, 1+g.r.IntN(254), h, domains[g.r.IntN(len(domains))], g.r.Uint64(), to.addr, t.Format(time.RFC1123Z))
	}
	if g.r.IntN(10) < 6 {
		sig := make([]byte, 256)
		g.fill(sig)
		bh := make([]byte, 32)
		g.fill(bh)
		fmt.Fprintf(b, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=s%d;\r\n\th=from:to:subject:date:message-id:mime-version:content-type;\r\n\tbh=%s;\r\n\tb=%s\r\n",
			host, 2020+g.r.IntN(5), base64.StdEncoding.EncodeToString(bh), foldBase64(base64.StdEncoding.EncodeToString(sig), "\t  "))
		fmt.Fprintf(b, "Authentication-Results: mail.%s; dkim=pass header.d=%s; spf=pass smtp.mailfrom=%s; dmarc=pass\r\n", host, host, from.addr)
	}
	fmt.Fprintf(b, "From: %s\r\n", g.formatPerson(from))
	fmt.Fprintf(b, "To: %s", g.formatPerson(to))
	for n := g.r.IntN(3); n > 0; n-- {
		fmt.Fprintf(b, ",\r\n %s", g.formatPerson(g.person()))
	}
	b.WriteString("\r\n")
	if g.r.IntN(10) < 3 {
		fmt.Fprintf(b, "Cc: %s, %s\r\n", g.formatPerson(g.person()), g.formatPerson(g.person()))
	}
	fmt.Fprintf(b, "Subject: %s\r\n", g.encodeHeaderText(g.subject()))
	fmt.Fprintf(b, "Date: %s\r\n", local.Format("Mon, 2 Jan 2006 15:04:05 -0700"))
	fmt.Fprintf(b, "Message-ID: <%s>\r\n", msgID)
	if g.r.IntN(10) < 3 {
		refs := make([]string, 1+g.r.IntN(6))
		for k := range refs {
			refs[k] = fmt.Sprintf("<%d.%x@%s>", g.i-k-1, g.r.Uint32(), host)
		}
		fmt.Fprintf(b, "In-Reply-To: %s\r\n", refs[0])
		fmt.Fprintf(b, "References: %s\r\n", strings.Join(refs, "\r\n "))
	}
	if g.r.IntN(10) < 2 {
		fmt.Fprintf(b, "List-Id: Weekly news <news.%s>\r\nList-Unsubscribe: <https://%s/unsubscribe?u=%x>, <mailto:unsubscribe@%s>\r\nPrecedence: bulk\r\n",
			host, host, g.r.Uint64(), host)
	}
	fmt.Fprintf(b, "X-Mailer: %s\r\n", []string{"Thunderbird 115.8.0", "Apple Mail (2.3774)", "Microsoft Outlook 16.0", "Roundcube Webmail/1.6.5", "mutt/2.2.12"}[g.r.IntN(5)])
	b.WriteString("MIME-Version: 1.0\r\n")
}

func foldBase64(s, indent string) string {
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64])
		b.WriteString("\r\n")
		b.WriteString(indent)
		s = s[64:]
	}
	b.WriteString(s)
	return b.String()
}

// ---- parts ----

func (g *gen) boundary() string {
	g.nb++
	return fmt.Sprintf("----=_Part_%d_%d.%x", g.i, g.nb, g.r.Uint32())
}

// encodeText writes text in charset cs with a transfer encoding suited to
// it, and returns the Content-Transfer-Encoding used.
func (g *gen) encodeText(text string, enc encoding.Encoding) (cte string, body []byte) {
	raw := []byte(text)
	if enc != nil {
		if b, err := enc.NewEncoder().Bytes(raw); err == nil {
			raw = b
		}
	}
	ascii := isASCII(string(raw))
	switch x := g.r.IntN(10); {
	case ascii && x < 8:
		return "7bit", raw
	case enc == japanese.ISO2022JP:
		return "7bit", raw // ISO-2022-JP is 7-bit by design
	case x < 4:
		return "8bit", raw
	case x < 8:
		var b bytes.Buffer
		w := quotedprintable.NewWriter(&b)
		w.Write(raw)
		w.Close()
		return "quoted-printable", b.Bytes()
	default:
		return "base64", base64Lines(raw)
	}
}

func (g *gen) plainPart(b *bytes.Buffer, paras []string) {
	lines := make([]string, len(paras))
	for k, p := range paras {
		lines[k] = wrap(p)
	}
	g.textPart(b, "text/plain", strings.Join(lines, "\r\n\r\n")+"\r\n")
}

func (g *gen) textPart(b *bytes.Buffer, mediatype, text string) {
	cs, enc := g.charset()
	if isASCII(text) {
		cs, enc = "us-ascii", nil
		if g.r.IntN(2) == 0 {
			cs = "utf-8"
		}
	} else if cs == "us-ascii" {
		cs = "utf-8"
	}
	cte, body := g.encodeText(text, enc)
	fmt.Fprintf(b, "Content-Type: %s; charset=%s\r\nContent-Transfer-Encoding: %s\r\n\r\n", mediatype, cs, cte)
	b.Write(body)
	if !bytes.HasSuffix(body, []byte("\r\n")) {
		b.WriteString("\r\n")
	}
}

var htmlHead = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<style type="text/css">
body { margin: 0; padding: 0; font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222222; }
table.main { width: 100%; max-width: 640px; margin: 0 auto; border-collapse: collapse; }
td.content { padding: 24px 32px; font-size: 15px; line-height: 1.5; }
a.button { display: inline-block; padding: 10px 18px; background: #2b6cb0; color: #ffffff; text-decoration: none; border-radius: 4px; }
.footer { color: #888888; font-size: 12px; padding: 16px 32px; }
</style></head>
<body><table class="main" role="presentation" cellpadding="0" cellspacing="0"><tr><td class="content">
`

func (g *gen) html(paras []string) string {
	var b strings.Builder
	b.WriteString(htmlHead)
	for k, p := range paras {
		fmt.Fprintf(&b, "<p style=\"margin:0 0 12px 0\">%s</p>\n", htmlEscape(p))
		if k%3 == 1 {
			fmt.Fprintf(&b, "<p><a class=\"button\" href=\"https://%s/c/%x?utm_source=newsletter&amp;utm_medium=email&amp;utm_campaign=%d\">%s</a></p>\n",
				domains[g.r.IntN(len(domains))], g.r.Uint64(), g.i, htmlEscape(g.lang.words[g.r.IntN(len(g.lang.words))]))
		}
		if k%5 == 4 {
			fmt.Fprintf(&b, "<table width=\"100%%\"><tr><td><img src=\"https://cdn.%s/img/%x.png\" width=\"600\" height=\"200\" alt=\"\" style=\"display:block\"></td></tr></table>\n",
				domains[g.r.IntN(len(domains))], g.r.Uint64())
		}
	}
	fmt.Fprintf(&b, "</td></tr><tr><td class=\"footer\">You receive this because you signed up at %s. <a href=\"https://%s/unsubscribe?u=%x\">Unsubscribe</a></td></tr></table></body></html>\n",
		domains[g.r.IntN(len(domains))], domains[g.r.IntN(len(domains))], g.r.Uint64())
	return strings.ReplaceAll(b.String(), "\n", "\r\n")
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

func (g *gen) htmlPart(b *bytes.Buffer, paras []string) {
	h := g.html(paras)
	// HTML goes out as quoted-printable (long lines) or base64, like most
	// mailers send it; legacy charsets are rarer here.
	cs, enc := "utf-8", encoding.Encoding(nil)
	if !isASCII(h) && g.r.IntN(5) == 0 {
		cs, enc = g.charset()
		if cs == "us-ascii" {
			cs, enc = "utf-8", nil
		}
	}
	raw := []byte(h)
	if enc != nil {
		if e, err := enc.NewEncoder().Bytes(raw); err == nil {
			raw = e
		} else {
			cs = "utf-8"
		}
	}
	cte := "quoted-printable"
	var body []byte
	if enc != japanese.ISO2022JP && g.r.IntN(4) == 0 {
		cte, body = "base64", base64Lines(raw)
	} else if enc == japanese.ISO2022JP {
		cte, body = "7bit", raw
	} else {
		var qb bytes.Buffer
		w := quotedprintable.NewWriter(&qb)
		w.Write(raw)
		w.Close()
		body = qb.Bytes()
	}
	fmt.Fprintf(b, "Content-Type: text/html; charset=%s\r\nContent-Transfer-Encoding: %s\r\n\r\n", cs, cte)
	b.Write(body)
	if !bytes.HasSuffix(body, []byte("\r\n")) {
		b.WriteString("\r\n")
	}
}

func (g *gen) alternative(b *bytes.Buffer) {
	bd := g.boundary()
	fmt.Fprintf(b, "Content-Type: multipart/alternative; boundary=%q\r\n\r\n", bd)
	paras := g.paragraphs(g.textSize())
	fmt.Fprintf(b, "--%s\r\n", bd)
	g.plainPart(b, paras)
	fmt.Fprintf(b, "--%s\r\n", bd)
	g.htmlPart(b, paras)
	fmt.Fprintf(b, "--%s--\r\n", bd)
}

// body writes the readable part of a mixed message: plain or alternative.
func (g *gen) body(b *bytes.Buffer) {
	if g.r.IntN(2) == 0 {
		g.plainPart(b, g.paragraphs(g.textSize()/2))
		return
	}
	g.alternative(b)
}

type attachmentKind struct {
	mediatype, ext string
	magic          string
	text           bool
}

var attachmentKinds = []attachmentKind{
	{"application/pdf", "pdf", "%PDF-1.7\n", false},
	{"image/png", "png", "\x89PNG\r\n\x1a\n", false},
	{"image/jpeg", "jpg", "\xff\xd8\xff\xe0\x00\x10JFIF", false},
	{"application/zip", "zip", "PK\x03\x04", false},
	{"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", "PK\x03\x04", false},
	{"text/csv", "csv", "", true},
	{"text/calendar", "ics", "", true},
}

var fileStems = []string{"invoice", "report-Q3", "photo", "scan", "Übersicht", "présentation", "отчёт", "資料", "minutes", "contract draft"}

// attachmentSize is log-uniform 10 KB … 100 KB, or 300 KB … 1 MB for large.
func (g *gen) attachmentSize(large bool) int {
	lo, hi := 10e3, 100e3
	if large {
		lo, hi = 300e3, 1e6
	}
	return int(lo * math.Exp(g.r.Float64()*math.Log(hi/lo)))
}

func (g *gen) mixed(b *bytes.Buffer, attachments int, large bool) {
	bd := g.boundary()
	fmt.Fprintf(b, "Content-Type: multipart/mixed; boundary=%q\r\n\r\nThis is a multi-part message in MIME format.\r\n", bd)
	fmt.Fprintf(b, "--%s\r\n", bd)
	g.body(b)
	for a := 0; a < attachments; a++ {
		fmt.Fprintf(b, "--%s\r\n", bd)
		g.attachment(b, g.attachmentSize(large))
	}
	fmt.Fprintf(b, "--%s--\r\n", bd)
}

func (g *gen) attachment(b *bytes.Buffer, size int) {
	k := attachmentKinds[g.r.IntN(len(attachmentKinds))]
	stem := fileStems[g.r.IntN(len(fileStems))]
	name := fmt.Sprintf("%s-%d.%s", stem, g.i, k.ext)
	disp := "attachment"
	if strings.HasPrefix(k.mediatype, "image/") && g.r.IntN(3) == 0 {
		disp = "inline"
	}
	if isASCII(name) {
		fmt.Fprintf(b, "Content-Type: %s; name=%q\r\nContent-Disposition: %s; filename=%q\r\n", k.mediatype, name, disp, name)
	} else if g.r.IntN(2) == 0 {
		// RFC 2231, as Thunderbird and most current mailers send it.
		fmt.Fprintf(b, "Content-Type: %s\r\nContent-Disposition: %s;\r\n filename*=utf-8''%s\r\n", k.mediatype, disp, url.PathEscape(name))
	} else {
		// RFC 2047 inside a quoted parameter, as Outlook and Gmail send it.
		enc := mime.BEncoding.Encode("utf-8", name)
		fmt.Fprintf(b, "Content-Type: %s; name=\"%s\"\r\nContent-Disposition: %s; filename=\"%s\"\r\n", k.mediatype, enc, disp, enc)
	}
	if disp == "inline" {
		fmt.Fprintf(b, "Content-ID: <img%d.%x@bench>\r\n", g.i, g.r.Uint32())
	}
	var data []byte
	if k.text {
		var t strings.Builder
		for t.Len() < size {
			fmt.Fprintf(&t, "%d,%s,%s,%d.%02d\r\n", t.Len(), g.lang.words[g.r.IntN(len(g.lang.words))], g.lang.words[g.r.IntN(len(g.lang.words))], g.r.IntN(10000), g.r.IntN(100))
		}
		data = []byte(t.String())
	} else {
		data = make([]byte, size)
		g.fill(data)
		copy(data, k.magic)
	}
	b.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
	b.Write(base64Lines(data))
}

// forward is a short note with a forwarded message (message/rfc822) that
// itself has an attachment.
func (g *gen) forward(b *bytes.Buffer) {
	bd := g.boundary()
	fmt.Fprintf(b, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", bd)
	fmt.Fprintf(b, "--%s\r\n", bd)
	g.plainPart(b, g.paragraphs(300))
	fmt.Fprintf(b, "--%s\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"forwarded.eml\"\r\n\r\n", bd)
	inner := &gen{r: g.r, seed: g.seed, i: g.i, lang: g.lang, nb: g.nb + 10}
	inner.topHeader(b)
	inner.mixed(b, 1, false)
	g.nb = inner.nb
	fmt.Fprintf(b, "--%s--\r\n", bd)
}

// fill writes pseudo-random bytes (incompressible, like real PDFs and
// JPEGs).
func (g *gen) fill(p []byte) {
	for len(p) >= 8 {
		v := g.r.Uint64()
		for k := 0; k < 8; k++ {
			p[k] = byte(v >> (8 * k))
		}
		p = p[8:]
	}
	for k := range p {
		p[k] = byte(g.r.Uint32())
	}
}

// base64Lines is RFC 2045 base64: 76-character lines, CRLF.
func base64Lines(data []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(data)
	out := make([]byte, 0, len(enc)+len(enc)/76*2+2)
	for len(enc) > 76 {
		out = append(out, enc[:76]...)
		out = append(out, '\r', '\n')
		enc = enc[76:]
	}
	out = append(out, enc...)
	return append(out, '\r', '\n')
}

// LargeMessage is one message of about size bytes whose bulk is a single
// base64 attachment (the 100 MB memory benchmark).
func LargeMessage(seed uint64, size int) []byte {
	r := newRand(seed, -1)
	g := &gen{r: r, seed: seed, i: 0, lang: languages[0]}
	var b bytes.Buffer
	b.Grow(size + 64<<10)
	g.topHeader(&b)
	bd := g.boundary()
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n--%s\r\n", bd, bd)
	g.plainPart(&b, g.paragraphs(2000))
	fmt.Fprintf(&b, "--%s\r\nContent-Type: application/octet-stream; name=\"disk-image.bin\"\r\nContent-Disposition: attachment; filename=\"disk-image.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", bd)
	// base64 with CRLF every 76 characters is 78/57 of the decoded size.
	raw := (size - b.Len() - 64) / 78 * 57
	data := make([]byte, max(raw, 0))
	g.fill(data)
	b.Write(base64Lines(data))
	fmt.Fprintf(&b, "--%s--\r\n", bd)
	return b.Bytes()
}
