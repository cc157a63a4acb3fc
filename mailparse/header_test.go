package mailparse

import (
	"bufio"
	"mailtap/record"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeWords(t *testing.T) {
	tests := []struct {
		in, want string
		problems int
	}{
		{"plain text", "plain text", 0},
		{"=?utf-8?q?caf=C3=A9?=", "café", 0},
		{"=?UTF-8?Q?a_b?= =?UTF-8?Q?_c?=", "a b c", 0},                // whitespace between words dropped
		{"=?utf-8?b?w6k=?=  \t =?iso-8859-1?q?=E9?=", "éé", 0},        // across charsets too
		{"x =?utf-8?q?y?= z", "x y z", 0},                             // around text it stays
		{"=?utf-8?B?4oK=?= =?utf-8?B?rA==?=", "€", 0},                 // a rune split across words
		{"=?utf-8?q?a?==?utf-8?q?b?=", "ab", 0},                       // glued
		{"pre=?utf-8?q?fix?=", "prefix", 0},                           // glued to text
		{"=?utf-8*en?q?lang?=", "lang", 0},                            // RFC 2231 language
		{"=?utf-8?q?with space?=", "with space", 0},                   // unencoded space
		{"=?x-nope?q?abc?= =?utf-8?q?ok?=", "=?x-nope?q?abc?= ok", 1}, // unknown charset kept
		{"=?utf-8?b?!!!?=", "=?utf-8?b?!!!?=", 1},                     // bad base64 kept
		{"=?utf-8?x?abc?=", "=?utf-8?x?abc?=", 0},                     // not an encoded word
		{"=?utf-8?q?unterminated", "=?utf-8?q?unterminated", 0},
		{"what =? is ?= this", "what =? is ?= this", 0},
		{"=?ISO-2022-JP?B?GyRCMnE1RBsoQg==?=", "会議", 0},
		{"=?utf-8?q?=FF?=", "ÿ", 0}, // invalid UTF-8 in a UTF-8 word, read as Windows-1252
		{"=??q?x?=", "=??q?x?=", 0},
		// Raw 8-bit bytes inside a Q word (forbidden by RFC 2047 §5).
		{"=?iso-8859-1?q?Fr\xc3\xb6sche?=", "Frösche", 1},           // valid UTF-8: kept as such
		{"=?iso-8859-1?q?Fr\xc3\xb6sche_=F6?=", "Frösche ö", 1},     // escapes still in the label's charset
		{"=?iso-8859-1?q?caf\xe9?=", "café", 1},                     // not UTF-8: the label's charset
		{"=?koi8-r?q?\xf0\xd2\xc9?=", "При", 1},                     // idem, a non-Latin charset
		{"=?iso-8859-1?q?\xc3\xa9?= =?iso-8859-1?q?=E9?=", "éé", 1}, // joins its neighbours
		{"=?utf-8?b?w6k=?= raw \xe9 text", "é raw é text", 0},       // outside words: Windows-1252 (headerText reports it)
	}
	for _, tt := range tests {
		got, problems, _ := decodeWords(tt.in)
		if got != tt.want || len(problems) != tt.problems {
			t.Errorf("decodeWords(%q) = %q %q; want %q with %d problems", tt.in, got, problems, tt.want, tt.problems)
		}
	}
}

func TestHeaderText(t *testing.T) {
	got, problems := headerText("\x1b$B2q5D\x1b(B report")
	if got != "会議 report" || len(problems) != 1 {
		t.Errorf("raw ISO-2022-JP = %q %q", got, problems)
	}
	got, problems = headerText("\x1b[31mred\x1b[0m")
	if got != "\x1b[31mred\x1b[0m" || len(problems) != 0 {
		t.Errorf("ANSI escapes must be kept as text (JSON escapes them): %q %q", got, problems)
	}
}

func TestReadTopHeader(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		fields []rawField
		rest   string
		errs   int
	}{
		{"crlf", "A: 1\r\nB: 2\r\n\r\nbody", []rawField{{"A", "1"}, {"B", "2"}}, "", 0},
		{"lf", "A: 1\nB: 2\n\nbody", []rawField{{"A", "1"}, {"B", "2"}}, "", 0},
		{"folded", "A: one\r\n  two \r\n\tthree\r\n\r\n", []rawField{{"A", "one two three"}}, "", 0},
		{"empty value", "X-Empty:\r\nB: 2\r\n\r\n", []rawField{{"X-Empty", ""}, {"B", "2"}}, "", 0},
		{"space before colon", "Subject : hi\r\n\r\n", []rawField{{"Subject", "hi"}}, "", 0},
		{"mbox From line", "From sender Mon Jan  1 00:00:00 2024\r\nA: 1\r\n\r\n", []rawField{{"A", "1"}}, "", 0},
		{"no blank line", "A: 1\r\nbody starts\r\nmore\r\n", []rawField{{"A", "1"}}, "body starts\r\n", 1},
		{"no header", "just text\n", nil, "just text\n", 1},
		{"bad name skipped with its continuation", "A: 1\r\nB\x00d: x\r\n y\r\nC: 3\r\n\r\n", []rawField{{"A", "1"}, {"C", "3"}}, "", 1},
		{"leading continuation", " x\r\nA: 1\r\n\r\n", []rawField{{"A", "1"}}, "", 1},
		{"header only, no newline", "A: 1", []rawField{{"A", "1"}}, "", 0},
		{"raw bytes kept", "S: caf\xe9\r\n\r\n", []rawField{{"S", "caf\xe9"}}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &parser{rec: &record.Record{}}
			fields, rest := p.readTopHeader(bufio.NewReaderSize(strings.NewReader(tt.in), 16))
			if !reflect.DeepEqual(fields, tt.fields) || string(rest) != tt.rest || len(p.rec.ParseErrors) != tt.errs {
				t.Errorf("got %q rest %q errors %q; want %q rest %q, %d errors", fields, rest, p.rec.ParseErrors, tt.fields, tt.rest, tt.errs)
			}
		})
	}

	t.Run("over the limit", func(t *testing.T) {
		in := "A: 1\r\nBig: " + strings.Repeat("x", maxHeaderBytes) + "\r\nC: 3\r\n\r\nbody"
		p := &parser{rec: &record.Record{}}
		br := bufio.NewReader(strings.NewReader(in))
		fields, _ := p.readTopHeader(br)
		if len(fields) != 1 || fields[0].name != "A" || len(p.rec.ParseErrors) != 1 {
			t.Errorf("fields %d, errors %q", len(fields), p.rec.ParseErrors)
		}
		if rest, _ := br.ReadString(0); rest != "body" {
			t.Errorf("body after an oversized header = %q", rest)
		}
	})
}

func TestParseMsgIDs(t *testing.T) {
	tests := []struct {
		in        string
		ids       []string
		malformed bool
	}{
		{"<a@b>", []string{"a@b"}, false},
		{"<a@b> <c@d>\t<e@f>", []string{"a@b", "c@d", "e@f"}, false},
		{"<a@b>,<c@d>", []string{"a@b", "c@d"}, false},
		{"<a@b> (a (nested) comment) <c@d>", []string{"a@b", "c@d"}, false},
		{"<a @ b>", []string{"a@b"}, false},
		{"a@b", []string{"a@b"}, true},
		{"<nodomain>", []string{"nodomain"}, true},
		{"junk <a@b>", []string{"a@b"}, true},
		{"<a@b", []string{"a@b"}, true},
		{"<>", nil, true},
		{"", nil, false},
		{"(unclosed comment <a@b>", nil, false},
	}
	for _, tt := range tests {
		ids, malformed := parseMsgIDs(tt.in)
		if !reflect.DeepEqual(ids, tt.ids) || malformed != tt.malformed {
			t.Errorf("parseMsgIDs(%q) = %q, %v; want %q, %v", tt.in, ids, malformed, tt.ids, tt.malformed)
		}
	}
}

func TestLenientAddresses(t *testing.T) {
	tests := []struct {
		in   string
		want []record.Address
	}{
		{`Broken <no-at>`, []record.Address{{Name: "Broken", Address: "no-at"}}},
		{`"Unbalanced <x@y>`, []record.Address{{Name: "Unbalanced", Address: "x@y"}}},
		{`a@b, "C, D" <c@d>; e@f`, []record.Address{{Name: "", Address: "a@b"}, {Name: "C, D", Address: "c@d"}, {Name: "", Address: "e@f"}}},
		{`Team: x@y, z@w;`, []record.Address{{Name: "", Address: "x@y"}, {Name: "", Address: "z@w"}}},
		{`=?utf-8?q?J=C3=B6rg?= <j@x> (comment, with comma)`, []record.Address{{Name: "Jörg", Address: "j@x"}}},
		{`<>`, nil},
		// RFC 5322 §3.4 comments, §4.4 obsolete syntax.
		{`pete(his account)@silly.test(his host)`, []record.Address{{Name: "his host", Address: "pete@silly.test"}}},
		{`Pete(A nice \) chap) <pete(his account)@silly.test(his host)>`, []record.Address{{Name: "Pete", Address: "pete@silly.test"}}},
		{`(A comment) <x@y.test>`, []record.Address{{Name: "A comment", Address: "x@y.test"}}},
		{`(comment only)`, nil},
		{`(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;`, nil},
		{`<@route1,@route2:user@host.test>`, []record.Address{{Name: "", Address: "user@host.test"}}},
		{`Name <@r1.example,@r2.example:u@h.example>, v@w.test`, []record.Address{{Name: "Name", Address: "u@h.example"}, {Name: "", Address: "v@w.test"}}},
		{`A Group(Some people):Chris Jones <c@(Chris's host.)public.example>, joe@example.org, John <jdoe@one.test> (my dear friend); (the end of the group)`,
			[]record.Address{{Name: "Chris Jones", Address: "c@public.example"}, {Name: "", Address: "joe@example.org"}, {Name: "John", Address: "jdoe@one.test"}}},
		{`John Doe <jdoe@machine(comment).  example>`, []record.Address{{Name: "John Doe", Address: "jdoe@machine.example"}}},
		{`"Joe & J. Harvey" <ddd @Org>, JJV @ BBN`, []record.Address{{Name: "Joe & J. Harvey", Address: "ddd@Org"}, {Name: "", Address: "JJV@BBN"}}},
		{`john . q . public @ example . com`, []record.Address{{Name: "", Address: "john.q.public@example.com"}}},
		{`John Smith john@example.com`, []record.Address{{Name: "John Smith", Address: "john@example.com"}}},
		{`"john doe"@example.com (J)`, []record.Address{{Name: "J", Address: `"john doe"@example.com`}}},
		{`Empty Group:;, (just a comment), a@b.test`, []record.Address{{Name: "", Address: "a@b.test"}}},
		{`=?utf-8?q?Zo=C3=AB?= (=?utf-8?q?ignored?=) <z@x.test>`, []record.Address{{Name: "Zoë", Address: "z@x.test"}}},
		{`<z@x.test> (=?utf-8?q?Zo=C3=AB?=)`, []record.Address{{Name: "Zoë", Address: "z@x.test"}}},
	}
	for _, tt := range tests {
		if got, _ := lenientAddresses(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("lenientAddresses(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in      string
		want    string // RFC 3339, "" for an error
		lenient bool
	}{
		{"Tue, 5 Mar 2024 14:03:22 +0100", "2024-03-05T14:03:22+01:00", false},
		{"5 Mar 2024 14:03:22 -0000", "2024-03-05T14:03:22Z", false},
		{"Tue, 05 Mar 2024 14:03:22 +0000 (UTC)", "2024-03-05T14:03:22Z", false},
		{"Tue, 5 Mar 2024 14:03:22 GMT", "2024-03-05T14:03:22Z", false},
		{"Tue, 5 Mar 2024 14:03:22 PDT", "2024-03-05T14:03:22-07:00", false},
		{"Tue, 5 Mar 2024 14:03:22 CEST", "2024-03-05T14:03:22+02:00", false},
		{"Tue, 5 Mar 2024 14:03:22 -0500 (EST)", "2024-03-05T14:03:22-05:00", false},
		{"Tue, 5 Mar 2024 14:03:22 +0100 +0100", "2024-03-05T14:03:22+01:00", false},
		{"Tuesday, 5 Mar 2024 14:03 +0100", "2024-03-05T14:03:00+01:00", false},
		{"Tue, 5 Mar 24 14:03:22 +0100", "2024-03-05T14:03:22+01:00", false},
		{"2024-03-05 14:03:22 +0100", "2024-03-05T14:03:22+01:00", true},
		{"2024-03-05T14:03:22Z", "2024-03-05T14:03:22Z", true},
		{"Tue Mar  5 14:03:22 2024", "2024-03-05T14:03:22Z", true},
		{"5 Mar 2024 14:03:22", "2024-03-05T14:03:22Z", true},
		{"yesterday", "", false},
		{"", "", false},
		{"Tue, 5 Mar 12024 14:03:22 +0100", "", false},
	}
	for _, tt := range tests {
		got, lenient, err := parseDate(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("parseDate(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got.Format(time.RFC3339) != tt.want || lenient != tt.lenient {
			t.Errorf("parseDate(%q) = %v, %v, %v; want %s, %v", tt.in, got.Format(time.RFC3339), lenient, err, tt.want, tt.lenient)
		}
		if _, err := got.MarshalJSON(); err != nil {
			t.Errorf("parseDate(%q) does not marshal: %v", tt.in, err)
		}
	}
}

func TestContentID(t *testing.T) {
	for in, want := range map[string]string{
		"<logo@x>": "logo@x", " <logo@x> (comment)": "logo@x", "logo@x": "logo@x",
		">00": "00", "<>00": "00", "<a<b>": "ab", "": "",
	} {
		if got := contentID(in); got != want {
			t.Errorf("contentID(%q) = %q, want %q", in, got, want)
		}
	}
}
