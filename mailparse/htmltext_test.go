package mailparse

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestHTMLToText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"paragraphs", "<p>One</p><p>Two</p>", "One\n\nTwo"},
		{"br", "a<br>b<br/>c", "a\nb\nc"},
		{"collapse", "  lots \n\t of   <b>space</b>  ", "lots of space"},
		{"entities", "&lt;tag&gt; &amp; &quot;q&quot; &euro;&nbsp;5 &#x1F600;", `<tag> & "q" € 5 😀`},
		{"drop head script style", "<html><head><title>T</title><style>p{}</style></head><body><script>x()</script><p>body</p></body></html>", "body"},
		{"unclosed head ends at body", "<head><title>T</title><body>text", "text"},
		{"link with other text", `<a href="https://x.example/p">Click</a>`, "Click (https://x.example/p)"},
		{"link same as text", `<a href="https://x.example/">https://x.example</a>`, "https://x.example"},
		{"mailto same as text", `<a href="mailto:a@b.example">a@b.example</a>`, "a@b.example"},
		{"anchor and javascript links", `<a href="#top">Top</a> <a href="javascript:void(0)">JS</a>`, "Top JS"},
		{"image link", `<a href="https://x.example/"><img src="i.png"></a>`, "https://x.example/"},
		{"list", "<ul><li>a</li><li>b</li></ul>after", "- a\n- b\n\nafter"},
		{"table", "<table><tr><td>1</td><td>2</td></tr><tr><td>3</td><td>4</td></tr></table>", "1 2\n3 4"},
		{"pre keeps spaces", "<pre>  a\n    b</pre>c", "  a\n    b\n\nc"},
		{"img alt", `<p>Logo: <img alt="ACME" src="x"></p>`, "Logo: ACME"},
		{"comments and doctype", "<!DOCTYPE html><!-- hidden -->shown", "shown"},
		{"broken markup", "<p>unclosed <b>bold <i>text", "unclosed bold text"},
		{"unclosed script swallows the rest", "before<script>never closed", "before"},
		{"blank lines capped", "<p></p><p></p><div></div><br><br><br>x", "x"},
		{"not html", "plain & simple", "plain & simple"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := htmlToText(tt.in, 1000); got != tt.want {
				t.Errorf("htmlToText(%q) =\n%q\nwant\n%q", tt.in, got, tt.want)
			}
		})
	}
}

func TestHTMLToText_max(t *testing.T) {
	in := "<p>" + strings.Repeat("日本語 ", 100) + "</p>"
	for max := 0; max < 40; max++ {
		got := htmlToText(in, max)
		if len(got) > max || !utf8.ValidString(got) || !strings.HasPrefix("日本語 日本語 日本語 日本語 日本語 日本語", got) {
			t.Errorf("max %d: %q", max, got)
		}
	}
}

func TestSniffHTMLCharset(t *testing.T) {
	tests := []struct{ in, want string }{
		{`<meta charset="windows-1251"><p>x`, "windows-1251"},
		{`<html><head><META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=ISO-8859-2"></head>`, "iso-8859-2"},
		{"\xef\xbb\xbf<p>bom", "utf-8"},
		{"\xff\xfe<\x00p\x00", "utf-16le"},
		{"<p>no declaration</p>", ""},
		{strings.Repeat(" ", 1100) + `<meta charset="koi8-r">`, ""}, // only the first 1024 bytes count
	}
	for _, tt := range tests {
		if got := sniffHTMLCharset([]byte(tt.in)); got != tt.want {
			t.Errorf("sniffHTMLCharset(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
