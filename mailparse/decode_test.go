package mailparse

import (
	"bytes"
	"encoding/base64"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"testing"
	"testing/iotest"
)

func TestQPReader_matchesStdlibOnValidInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		raw := make([]byte, rng.IntN(3000))
		for j := range raw {
			switch rng.IntN(6) {
			case 0:
				raw[j] = ' '
			case 1:
				raw[j] = '\n'
			case 2:
				raw[j] = byte(rng.IntN(256))
			default:
				raw[j] = byte('a' + rng.IntN(26))
			}
		}
		var enc bytes.Buffer
		w := quotedprintable.NewWriter(&enc)
		w.Write(raw)
		w.Close()
		want, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(enc.Bytes())))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(newQPReader(iotest.HalfReader(bytes.NewReader(enc.Bytes()))))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d: decoded %q, stdlib %q", i, got, want)
		}
	}
}

func TestQPReader_lenient(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a=3Db", "a=b"},
		{"lower =c3=a9", "lower é"},
		{"bad =ZZ and =4", "bad =ZZ and =4"},
		{"soft=\r\nbreak", "softbreak"},
		{"soft=\nLF", "softLF"},
		{"soft with spaces=  \r\nafter", "soft with spacesafter"},
		{"trailing   \r\nspace\t\n", "trailing\r\nspace\n"},
		{"= not a break", "= not a break"},
		{"ends with =", "ends with "},
		{"ctl \x00\x07 and 8-bit \xe9", "ctl \x00\x07 and 8-bit \xe9"},
		{"lone\rCR", "lone\rCR"},
		{"spaces at end   ", "spaces at end"},
		{"x" + strings.Repeat(" ", 2000) + "y", "x" + strings.Repeat(" ", 2000) + "y"},
	}
	for _, tt := range tests {
		for _, mode := range []string{"whole", "one-byte"} {
			var r io.Reader = strings.NewReader(tt.in)
			if mode == "one-byte" {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(newQPReader(r))
			if err != nil || string(got) != tt.want {
				t.Errorf("%s %q: got %q, %v; want %q", mode, tt.in, got, err, tt.want)
			}
		}
	}
}

func TestBase64Reader(t *testing.T) {
	tests := []struct {
		in           string
		want         string
		junk, midPad int64
		dangling     bool
	}{
		{"aGVsbG8=", "hello", 0, 0, false},
		{"aGVs\r\nbG8=\r\n", "hello", 0, 0, false},
		{"aGVsbG8", "hello", 0, 0, false},    // missing padding
		{"aGVsbA", "hell", 0, 0, false},      // missing "=="
		{"aGV sbG8=", "hello", 0, 0, false},  // space as in go-message's quirk
		{"aG!V*sbG8=", "hello", 2, 0, false}, // junk skipped
		{"aGk=aGk=", "hihi", 0, 1, false},    // concatenated chunks
		{"aGVsbG8=X", "hello", 0, 1, true},   // one character left over
		{"====", "", 0, 0, false},
		{"", "", 0, 0, false},
	}
	for _, tt := range tests {
		for _, mode := range []string{"whole", "one-byte"} {
			var r io.Reader = strings.NewReader(tt.in)
			if mode == "one-byte" {
				r = iotest.OneByteReader(r)
			}
			d := newBase64Reader(r)
			got, err := io.ReadAll(d)
			if err != nil || string(got) != tt.want || d.junk != tt.junk || d.midPad != tt.midPad || d.dangling != tt.dangling {
				t.Errorf("%s %q: got %q err %v junk %d midPad %d dangling %v; want %q %d %d %v",
					mode, tt.in, got, err, d.junk, d.midPad, d.dangling, tt.want, tt.junk, tt.midPad, tt.dangling)
			}
		}
	}

	// Random data round-trips whatever the line length.
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 100; i++ {
		raw := make([]byte, rng.IntN(5000))
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		enc := base64.StdEncoding.EncodeToString(raw)
		var wrapped strings.Builder
		step := 1 + rng.IntN(100)
		for len(enc) > step {
			wrapped.WriteString(enc[:step] + "\r\n")
			enc = enc[step:]
		}
		wrapped.WriteString(enc)
		got, err := io.ReadAll(newBase64Reader(iotest.HalfReader(strings.NewReader(wrapped.String()))))
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("round trip %d failed: %v", i, err)
		}
	}
}

func TestToUTF8(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{"plain ascii", "plain ascii", false},
		{"utf-8 été", "utf-8 été", false},
		{"latin-1 \xe9t\xe9", "latin-1 été", true},
		{"cp1252 \x93q\x94 \x80", "cp1252 “q” €", true},
		{"mixed \xc3\xa9 and \xe9", "mixed é and é", true},
		{"cut rune \xe2\x82", "cut rune â‚", true},
		{"nul \x00 kept", "nul \x00 kept", false},
	}
	for _, tt := range tests {
		got, bad := toUTF8(tt.in)
		if got != tt.want || bad != tt.bad {
			t.Errorf("toUTF8(%q) = %q, %v; want %q, %v", tt.in, got, bad, tt.want, tt.bad)
		}
	}
}

func TestDecodeCharset_aliases(t *testing.T) {
	tests := []struct {
		label string
		in    []byte
		want  string
		ok    bool
	}{
		{"ISO-8859-1", []byte("\x93caf\xe9\x94"), "“café”", true}, // read as Windows-1252
		{"latin1", []byte("\xe9"), "é", true},
		{"cp932", []byte("\x93\xfa\x96{"), "日本", true},
		{"ks_c_5601-1987", []byte("\xc7\xd1"), "한", true},
		{"cp949", []byte("\xc7\xd1"), "한", true},
		{"gb2312", []byte("\xd6\xd0"), "中", true},
		{"utf-16", []byte("\xff\xfeh\x00i\x00"), "hi", true},
		{"\"UTF-8\"", []byte("ok"), "ok", true},
		{"utf-8*en", []byte("ok"), "ok", true},
		{"us-ascii", []byte("caf\xe9"), "café", true},
		{"iso-2022-kr", []byte("\x1b$)Cabc"), "\x1b$)Cabc", false}, // disabled, not turned into U+FFFD
		{"x-no-such-charset", []byte("abc\xff"), "abcÿ", false},
		{"utf-7", []byte("+AGEAYgBj-"), "abc", true}, // utf7.go
	}
	for _, tt := range tests {
		got, ok := decodeCharset(tt.label, tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("decodeCharset(%q, %q) = %q, %v; want %q, %v", tt.label, tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCutUTF8(t *testing.T) {
	s := "aé日𠀀"
	for n := 0; n <= len(s)+1; n++ {
		got := cutUTF8(s, n)
		if len(got) > n || !strings.HasPrefix(s, got) || !utf8ValidString(got) {
			t.Errorf("cutUTF8(%q, %d) = %q", s, n, got)
		}
	}
	if got := string(trimPartialRune([]byte("aé日"[:5]))); got != "aé" {
		t.Errorf("trimPartialRune = %q", got)
	}
	if got := string(trimPartialRune([]byte("a\xff"))); got != "a\xff" {
		t.Errorf("trimPartialRune must leave invalid bytes to toUTF8, got %q", got)
	}
}

func utf8ValidString(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestParseParamHeader(t *testing.T) {
	tests := []struct {
		in       string
		value    string
		params   map[string]string
		problems int
	}{
		{`text/plain; charset="utf-8"`, "text/plain", map[string]string{"charset": "utf-8"}, 0},
		{`Multipart/Mixed; BOUNDARY=----=_Part_123_456.789`, "multipart/mixed", map[string]string{"boundary": "----=_Part_123_456.789"}, 0},
		{`text/plain; charset=utf-8;`, "text/plain", map[string]string{"charset": "utf-8"}, 0},
		{`attachment; filename="a \"quoted\" name.txt"`, "attachment", map[string]string{"filename": `a "quoted" name.txt`}, 0},
		{`attachment; filename="unclosed.txt`, "attachment", map[string]string{"filename": "unclosed.txt"}, 1},
		{`attachment; filename=a.txt; filename=b.txt`, "attachment", map[string]string{"filename": "a.txt"}, 1},
		{`attachment; junk; filename=a.txt`, "attachment", map[string]string{"filename": "a.txt"}, 1},
		{`attachment; filename*=UTF-8''%E2%82%AC%20x.pdf`, "attachment", map[string]string{"filename": "€ x.pdf"}, 0},
		{`attachment; filename*=iso-8859-1'de'M%FCller.txt`, "attachment", map[string]string{"filename": "Müller.txt"}, 0},
		{`attachment; filename*=''bare%20name`, "attachment", map[string]string{"filename": "bare name"}, 0},
		{`attachment; filename*0*=utf-8''%E6%97%A5; filename*1*=%E6%9C%AC; filename*2=.txt`, "attachment", map[string]string{"filename": "日本.txt"}, 0},
		{`attachment; filename*1="b"; filename*0="a"`, "attachment", map[string]string{"filename": "ab"}, 0},
		{`attachment; filename*0="a"; filename*2="c"`, "attachment", map[string]string{"filename": "a"}, 1},
		{`attachment; filename="fallback"; filename*=utf-8''wins`, "attachment", map[string]string{"filename": "wins"}, 0},
		{`attachment; filename="=?utf-8?B?w6l0w6kudHh0?="`, "attachment", map[string]string{"filename": "été.txt"}, 0},
		{`attachment; filename*=utf-8''100%`, "attachment", map[string]string{"filename": "100%"}, 0},
		{`inline`, "inline", map[string]string{}, 0},
		{``, "", map[string]string{}, 0},
		{"attachment; filename=caf\xe9.txt", "attachment", map[string]string{"filename": "café.txt"}, 0},
	}
	for _, tt := range tests {
		value, params, problems := parseParamHeader(tt.in)
		if value != tt.value || len(problems) != tt.problems || len(params) != len(tt.params) {
			t.Errorf("parseParamHeader(%q) = %q %q %q; want %q %q, %d problems", tt.in, value, params, problems, tt.value, tt.params, tt.problems)
			continue
		}
		for k, v := range tt.params {
			if params[k] != v {
				t.Errorf("parseParamHeader(%q)[%q] = %q, want %q", tt.in, k, params[k], v)
			}
		}
	}
}

// TestDecoders_sameResultHoweverChunked feeds random, mostly malformed
// input through each decoder whole (the fast paths see long runs) and one
// byte at a time (only the byte-by-byte paths run): output and the
// problem counts must not depend on the chunking.
func TestDecoders_sameResultHoweverChunked(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	pick := func(alphabet string) []byte {
		b := make([]byte, rng.IntN(9000))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return b
	}
	type result struct {
		out               string
		junk, midPad, bad int64
		dangling          bool
	}
	chunkings := map[string]func(io.Reader) io.Reader{
		"one-byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"whole":    func(r io.Reader) io.Reader { return r },
	}
	for i := 0; i < 300; i++ {
		b64in := pick("QUJDRA==\r\n \t!aZ09+/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		qpin := pick("ab c\t=\r\n3DfFzZ \xe9\x00abcdefghijklmnopqrstuvwxyz  ==\r\n")
		var want [2]*result
		for _, name := range []string{"one-byte", "half", "whole"} {
			chunk := chunkings[name]
			d := newBase64Reader(chunk(bytes.NewReader(b64in)))
			out, err := io.ReadAll(d)
			if err != nil {
				t.Fatal(err)
			}
			q := newQPReader(chunk(bytes.NewReader(qpin)))
			qout, err := io.ReadAll(q)
			if err != nil {
				t.Fatal(err)
			}
			got := [2]*result{
				{out: string(out), junk: d.junk, midPad: d.midPad, dangling: d.dangling},
				{out: string(qout), bad: q.bad},
			}
			if want[0] == nil {
				want = got
				continue
			}
			for k, kind := range []string{"base64", "quoted-printable"} {
				if *got[k] != *want[k] {
					t.Fatalf("case %d %s read %s: %+v, one byte at a time: %+v", i, kind, name, *got[k], *want[k])
				}
			}
		}
	}
}

func TestCRLFToLF(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "",
		"no breaks":        "no breaks",
		"a\r\nb\r\n":       "a\nb\n",
		"\r\r\n\r":         "\r\n\r",
		"lone\rcr\n\r\n\n": "lone\rcr\n\n\n",
		"\r\n\r\n\r\n":     "\n\n\n",
	} {
		if got := string(crlfToLF([]byte(in))); got != want {
			t.Errorf("crlfToLF(%q) = %q, want %q", in, got, want)
		}
	}
}
