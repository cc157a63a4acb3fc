package mailparse

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// htmlToText renders HTML as plain text for the "text" field of an
// HTML-only message: script, style, head and similar content is dropped,
// block elements and <br> become line breaks, list items get "- ", links
// read "text (url)" when the url adds something, entities are decoded and
// whitespace collapses as a browser would (except inside <pre>). The
// result is at most max bytes.
func htmlToText(src string, max int) string {
	z := html.NewTokenizer(strings.NewReader(src))
	w := &textWriter{max: max}
	var (
		skip  []atom.Atom // open elements whose content is dropped
		pre   int
		links []linkState
	)
	for !w.full() {
		tt := z.Next()
		if tt == html.ErrorToken {
			break // io.EOF: the tokenizer never fails otherwise on a string
		}
		switch tt {
		case html.TextToken:
			if len(skip) > 0 {
				continue
			}
			w.text(string(z.Text()), pre > 0)
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			var href, alt string // the only attributes used; the first of each counts
			var seenHref, seenAlt bool
			for hasAttr && (a == atom.A || a == atom.Img) {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				switch {
				case string(k) == "href" && !seenHref:
					href, seenHref = string(v), true
				case string(k) == "alt" && !seenAlt:
					alt, seenAlt = string(v), true
				}
			}
			if a == atom.Body {
				skip = skip[:0] // an unclosed <head> ends where <body> starts
			}
			if dropContent[a] {
				if tt == html.StartTagToken {
					skip = append(skip, a)
				}
				continue
			}
			if len(skip) > 0 {
				continue
			}
			switch {
			case a == atom.Br:
				w.lineBreak()
			case a == atom.Li:
				w.block(1)
				w.literal("- ")
			case a == atom.Td || a == atom.Th:
				w.space()
			case a == atom.Img:
				if alt := strings.TrimSpace(alt); alt != "" {
					w.text(alt, false)
				}
			case a == atom.A && tt == html.StartTagToken && len(links) < maxOpenLinks:
				links = append(links, linkState{href: strings.TrimSpace(href), start: w.b.Len()})
			case paragraph[a]:
				w.block(2)
			case blocks[a]:
				w.block(1)
			}
			if a == atom.Pre && tt == html.StartTagToken {
				pre++
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if len(skip) > 0 {
				if skip[len(skip)-1] == a {
					skip = skip[:len(skip)-1]
				}
				continue
			}
			switch {
			case a == atom.A && len(links) > 0:
				l := links[len(links)-1]
				links = links[:len(links)-1]
				w.link(l)
			case a == atom.Pre && pre > 0:
				pre--
				w.block(2)
			case paragraph[a]:
				w.block(2)
			case blocks[a] || a == atom.Li:
				w.block(1)
			}
		}
	}
	return w.String()
}

// dropContent are elements whose content is not text for a reader.
var dropContent = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Head: true, atom.Title: true,
	atom.Template: true, atom.Noscript: true, atom.Svg: true, atom.Math: true,
	atom.Object: true, atom.Iframe: true, atom.Select: true,
}

// paragraph elements are set off by a blank line.
var paragraph = map[atom.Atom]bool{
	atom.P: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true,
	atom.H5: true, atom.H6: true, atom.Blockquote: true, atom.Table: true,
	atom.Ul: true, atom.Ol: true, atom.Pre: true, atom.Hr: true,
}

// blocks start on a new line.
var blocks = map[atom.Atom]bool{
	atom.Div: true, atom.Tr: true, atom.Section: true, atom.Article: true,
	atom.Header: true, atom.Footer: true, atom.Nav: true, atom.Aside: true,
	atom.Address: true, atom.Dl: true, atom.Dt: true, atom.Dd: true,
	atom.Figure: true, atom.Figcaption: true, atom.Form: true,
	atom.Fieldset: true, atom.Main: true, atom.Center: true, atom.Caption: true,
	atom.Tbody: true, atom.Thead: true, atom.Tfoot: true, atom.Details: true,
	atom.Summary: true, atom.Body: true, atom.Html: true,
}

// maxOpenLinks bounds nested unclosed <a> elements that are tracked.
const maxOpenLinks = 8

type linkState struct {
	href  string
	start int // output offset where the link text begins
}

// textWriter accumulates rendered text with pending whitespace: spaces and
// line breaks are only written once the next visible character comes, so
// runs collapse and nothing trails at line ends or the end.
type textWriter struct {
	b            strings.Builder
	max          int
	pendingSpace bool // a space is pending
	newlines     int  // line breaks pending (0…2)
	truncated    bool
}

func (w *textWriter) full() bool { return w.truncated }

func (w *textWriter) block(n int) {
	w.pendingSpace = false
	if w.b.Len() > 0 && w.newlines < n {
		w.newlines = n
	}
}

func (w *textWriter) lineBreak() {
	w.pendingSpace = false
	if w.b.Len() > 0 && w.newlines < 2 {
		w.newlines++
	}
}

func (w *textWriter) space() {
	if w.b.Len() > 0 && w.newlines == 0 {
		w.pendingSpace = true
	}
}

// emit writes s after any pending whitespace, respecting max.
func (w *textWriter) emit(s string) {
	if w.truncated {
		return
	}
	var pending string
	if w.newlines > 0 {
		pending = strings.Repeat("\n", w.newlines)
	} else if w.pendingSpace {
		pending = " "
	}
	if w.b.Len()+len(pending)+len(s) > w.max {
		rest := w.max - w.b.Len() - len(pending)
		if rest > 0 {
			w.b.WriteString(pending)
			w.b.WriteString(cutUTF8(s, rest))
		}
		w.truncated = true
		return
	}
	w.b.WriteString(pending)
	w.b.WriteString(s)
	w.newlines, w.pendingSpace = 0, false
}

func (w *textWriter) literal(s string) { w.emit(s) }

// text writes character data; outside <pre> whitespace collapses.
func (w *textWriter) text(s string, pre bool) {
	if pre {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		for i, line := range strings.Split(s, "\n") {
			if i > 0 {
				w.lineBreak()
				if w.b.Len() == 0 {
					continue
				}
			}
			if line != "" {
				w.emit(line)
			}
		}
		return
	}
	start := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if isHTMLSpace(r) {
			if i > start {
				w.emit(s[start:i])
			}
			w.space()
			start = i + size
		}
		i += size
	}
	if start < len(s) {
		w.emit(s[start:])
	}
}

func isHTMLSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\f', '\u00a0':
		return true
	}
	return false
}

// link appends " (url)" after a link's text when the url says more than
// the text: not for in-page anchors, javascript:, or a mailto: whose
// address is the text.
func (w *textWriter) link(l linkState) {
	href := l.href
	if href == "" || strings.HasPrefix(href, "#") || strings.HasPrefix(strings.ToLower(href), "javascript:") {
		return
	}
	// Only a text about as long as the url can equal it; longer ones are
	// not compared, which keeps hostile nesting from costing quadratic time.
	var text string
	if n := w.b.Len() - l.start; n >= 0 && n <= len(href)+16 {
		text = strings.TrimSpace(w.b.String()[l.start:])
	} else if n > 0 {
		text = "…"
	}
	bare := href
	if strings.HasPrefix(strings.ToLower(bare), "mailto:") {
		bare = bare[len("mailto:"):]
	}
	if text == href || text == bare || strings.TrimSuffix(text, "/") == strings.TrimSuffix(bare, "/") {
		return
	}
	if text == "" {
		w.emit(href)
		return
	}
	w.space()
	w.emit("(" + href + ")")
}

func (w *textWriter) String() string { return w.b.String() }

// sniffHTMLCharset finds the charset an HTML document declares in its
// first 1024 bytes (a byte order mark, <meta charset> or <meta
// http-equiv="Content-Type" content="…; charset=…">), or "".
func sniffHTMLCharset(b []byte) string {
	if len(b) > 1024 {
		b = b[:1024]
	}
	if cs := bomCharset(b); cs != "" {
		return cs
	}
	z := html.NewTokenizer(bytes.NewReader(b))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			if atom.Lookup(name) != atom.Meta {
				continue
			}
			var httpEquiv, content, cs string
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				switch string(k) {
				case "charset":
					cs = string(v)
				case "http-equiv":
					httpEquiv = strings.ToLower(string(v))
				case "content":
					content = string(v)
				}
			}
			if cs != "" {
				return normCharset(cs)
			}
			if httpEquiv == "content-type" {
				if _, params, _ := parseParamHeader(content); params["charset"] != "" {
					return normCharset(params["charset"])
				}
			}
		}
	}
}
