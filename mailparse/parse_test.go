package mailparse

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"mailtap/record"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden/*.json from the current parser")

// fixtureNames lists testdata/*.eml without the extension.
func fixtureNames(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimSuffix(filepath.Base(p), ".eml")
	}
	return names
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".eml"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseFixture(t testing.TB, name string, opts ParseOptions) *record.Record {
	t.Helper()
	rec, err := Parse(bytes.NewReader(readFixture(t, name)), opts)
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return rec
}

func marshalGolden(t testing.TB, rec *record.Record) []byte {
	t.Helper()
	// The bytes the store writes, so a golden shows a record as it is on
	// disk (times in record.TimeLayout, HTML not escaped).
	b, err := record.Append(nil, rec, true)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// TestParse_golden parses every fixture and compares the record with
// testdata/golden/<name>.json (go test ./mailparse -run TestParse -update
// rewrites them; review the diff).
func TestParse_golden(t *testing.T) {
	for _, name := range fixtureNames(t) {
		t.Run(name, func(t *testing.T) {
			rec := parseFixture(t, name, ParseOptions{})
			checkRecord(t, rec)
			got := marshalGolden(t, rec)
			path := filepath.Join("testdata", "golden", name+".json")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("record differs from %s (run with -update and review the diff):\n%s", path, lineDiff(string(want), string(got)))
			}
		})
	}
}

// lineDiff shows the first differing lines of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", i+1, wl, gl)
			if shown++; shown == 5 {
				break
			}
		}
	}
	return b.String()
}

// checkRecord asserts what must hold for every record: valid UTF-8 in
// every string, no nil slices, attachments well formed, and JSON output.
func checkRecord(t testing.TB, rec *record.Record) {
	t.Helper()
	if rec == nil {
		t.Fatal("nil record")
	}
	if rec.SchemaVersion != record.SchemaVersion {
		t.Errorf("schema_version = %d", rec.SchemaVersion)
	}
	walkStrings(reflect.ValueOf(rec).Elem(), "record", func(path, s string) {
		if !utf8.ValidString(s) {
			t.Errorf("%s is not valid UTF-8: %q", path, s)
		}
	})
	v := reflect.ValueOf(rec).Elem()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Slice && f.IsNil() {
			t.Errorf("%s is nil, want []", v.Type().Field(i).Name)
		}
	}
	for i, a := range rec.Attachments {
		if len(a.SHA256) != 64 || a.Size < 0 {
			t.Errorf("attachment %d: sha256 %q size %d", i, a.SHA256, a.Size)
		}
		if a.ContentType != strings.ToLower(a.ContentType) || strings.ContainsAny(a.ContentType, "; ") {
			t.Errorf("attachment %d: content_type %q is not a bare lowercase media type", i, a.ContentType)
		}
		if strings.ContainsAny(a.ContentID, "<>") {
			t.Errorf("attachment %d: content_id %q has angle brackets", i, a.ContentID)
		}
	}
	for _, id := range append(append([]string{rec.MessageID}, rec.InReplyTo...), rec.References...) {
		if strings.HasPrefix(id, "<") && strings.HasSuffix(id, ">") {
			t.Errorf("message id %q keeps its angle brackets", id)
		}
	}
	for _, e := range rec.ParseErrors {
		if strings.HasPrefix(e, "internal error") {
			t.Errorf("the parser panicked: %s", e) // recovered, but a bug
		}
	}
	if _, err := json.Marshal(rec); err != nil {
		t.Errorf("json.Marshal: %v", err)
	}
}

// walkStrings calls fn for every string reachable from v.
func walkStrings(v reflect.Value, path string, fn func(path, s string)) {
	switch v.Kind() {
	case reflect.String:
		fn(path, v.String())
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkStrings(v.Elem(), path, fn)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				walkStrings(v.Field(i), path+"."+v.Type().Field(i).Name, fn)
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			walkStrings(v.Index(i), fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func hasErr(rec *record.Record, substr string) bool {
	for _, e := range rec.ParseErrors {
		if strings.Contains(e, substr) {
			return true
		}
	}
	return false
}

func headerValue(rec *record.Record, name string) string {
	for _, h := range rec.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

func filenames(rec *record.Record) []string {
	var out []string
	for _, a := range rec.Attachments {
		out = append(out, a.Filename)
	}
	return out
}

// TestParse_expectations states, per fixture, the facts the golden files
// must keep showing, so a careless -update cannot bless a regression.
func TestParse_expectations(t *testing.T) {
	type check func(t *testing.T, r *record.Record)
	subjectText := func(subject, textPart string) check {
		return func(t *testing.T, r *record.Record) {
			if r.Subject != subject {
				t.Errorf("subject = %q, want %q", r.Subject, subject)
			}
			if !strings.Contains(r.Text, textPart) {
				t.Errorf("text = %q, want it to contain %q", r.Text, textPart)
			}
			if len(r.ParseErrors) != 0 {
				t.Errorf("parse errors: %q", r.ParseErrors)
			}
		}
	}
	tests := map[string]check{
		"plain": func(t *testing.T, r *record.Record) {
			want := record.Record{
				MessageID:  "20240305130322.GA1234@example.org",
				InReplyTo:  []string{"CAF=abc123@mail.example.com"},
				References: []string{"first@example.com", "CAF=abc123@mail.example.com"},
				From:       []record.Address{{Name: "Alice Example", Address: "alice@example.org"}},
				To:         []record.Address{{Name: "Bob", Address: "bob@example.com"}, {Name: "", Address: "carol@example.com"}},
				Cc:         []record.Address{{Name: "Dave, the Builder", Address: "dave@example.net"}},
			}
			if r.MessageID != want.MessageID || !reflect.DeepEqual(r.InReplyTo, want.InReplyTo) ||
				!reflect.DeepEqual(r.References, want.References) || !reflect.DeepEqual(r.From, want.From) ||
				!reflect.DeepEqual(r.To, want.To) || !reflect.DeepEqual(r.Cc, want.Cc) {
				t.Errorf("ids/addresses = %q %q %q %v %v %v", r.MessageID, r.InReplyTo, r.References, r.From, r.To, r.Cc)
			}
			if r.Date == nil || r.Date.Format(time.RFC3339) != "2024-03-05T14:03:22+01:00" {
				t.Errorf("date = %v", r.Date)
			}
			if !strings.HasPrefix(r.Text, "Hi Bob,\n\nare we") || r.HTML != "" || len(r.Attachments) != 0 || len(r.ParseErrors) != 0 {
				t.Errorf("text %q html %q attachments %d errors %q", r.Text, r.HTML, len(r.Attachments), r.ParseErrors)
			}
			if got := headerValue(r, "Received"); !strings.Contains(got, "[192.0.2.10]) by imap.example.com") {
				t.Errorf("Received not unfolded: %q", got)
			}
		},
		"charset_iso2022jp":     subjectText("会議の議事録", "会議の議事録を送ります。"),
		"charset_shift_jis":     subjectText("見積書の送付", "よろしくお願いいたします。"),
		"charset_euc_kr":        subjectText("회의 일정 안내", "다음 주 회의 일정을 안내드립니다."),
		"charset_gb2312":        subjectText("会议通知", "明天上午十点开会。"),
		"charset_gb18030":       subjectText("年度报告𠀀", "年度报告已完成。𠀀"),
		"charset_big5":          subjectText("會議紀錄", "附上會議紀錄。"),
		"charset_koi8r":         subjectText("Отчёт за март", "С уважением, бухгалтерия."),
		"charset_windows1251":   subjectText("Привет из Москвы", "Это письмо в кодировке windows-1251."),
		"charset_windows1252":   subjectText("Café “Olé” – €5", "café “olé” – €5 … naïve."),
		"charset_iso8859_1":     subjectText("Crème brûlée für Straße", "Ça coûte 5 EUR"),
		"charset_iso8859_2":     subjectText("Zażółć gęślą jaźń", "Příliš žluťoučký kůň úpěl ďábelské ódy."),
		"charset_iso8859_15":    subjectText("Prix: 5 € œuvre", "Le prix est de 5 €, une œuvre."),
		"charset_latin1_cp1252": subjectText("“Smart” quotes cost € 5", "“Smart” quotes – and the euro sign €"),
		"charset_utf16_bom":     subjectText("UTF-16 body", "Unicode text in UTF-16 with a BOM: Ωμέγα, 日本語.\n"),
		"rfc2047_subjects": func(t *testing.T, r *record.Record) {
			if want := "Привет mixed café😂glued text (€) 日本語です"; r.Subject != want {
				t.Errorf("subject = %q, want %q", r.Subject, want)
			}
			if want := []record.Address{{Name: "Müller, Hans", Address: "hans@example.de"}, {Name: "Keith Moore", Address: "moore@cs.utk.edu"}}; !reflect.DeepEqual(r.To, want) {
				t.Errorf("to = %v", r.To)
			}
			if r.From[0].Name != "André Pirard" || r.Cc[0].Name != "Zoë" {
				t.Errorf("from %v cc %v", r.From, r.Cc)
			}
			if got := headerValue(r, "X-Split-Char"); got != "€" {
				t.Errorf("a character split across two encoded words = %q, want €", got)
			}
			if got := headerValue(r, "X-Bad-Word"); got != "=?utf-8?B?!!!notbase64?= ok" || !hasErr(r, "malformed encoded word") {
				t.Errorf("bad word kept as %q, errors %q", got, r.ParseErrors)
			}
		},
		"rfc2231_filenames": func(t *testing.T, r *record.Record) {
			want := []string{"€ rates 2024.pdf", "café crème.txt", "日本語の長い.bin", "first-half-second-half.dat",
				"Отчёт за март.doc", "preferred é.zip", "été.zip"}
			if got := filenames(r); !reflect.DeepEqual(got, want) {
				t.Errorf("filenames = %q, want %q", got, want)
			}
			if !hasErr(r, `unknown charset "x-unknown"`) {
				t.Errorf("errors %q", r.ParseErrors)
			}
		},
		"html_only": func(t *testing.T, r *record.Record) {
			want := "Spring sale – up to 50% off\n\nDear customer,\nour spring sale starts today.\n\n- Shoes & boots\n- Jackets\n\n" +
				"Visit our shop (https://shop.example/sale?utm=nl) or write to help@shop.example.\n\nItem Price\nBoots €49\n\n© 2024 Shop <Example>"
			if r.Text != want {
				t.Errorf("text =\n%q\nwant\n%q", r.Text, want)
			}
			if !strings.Contains(r.HTML, `<a href="https://shop.example/sale?utm=nl">`) {
				t.Errorf("html not decoded: %q", r.HTML)
			}
		},
		"alternative": func(t *testing.T, r *record.Record) {
			if !strings.Contains(r.Text, "Grüße aus München – sehr lange Zeile, die weich umbrochen wurde.") ||
				!strings.Contains(r.HTML, "<p>Jörg</p>") || len(r.Attachments) != 0 || r.From[0].Name != "Jörg Müller" {
				t.Errorf("text %q html %q attachments %v from %v", r.Text, r.HTML, r.Attachments, r.From)
			}
		},
		"mixed_attachments": func(t *testing.T, r *record.Record) {
			if r.Text != "Please find the invoice attached." || r.HTML != "<p>Please find the <b>invoice</b> attached.</p>" {
				t.Errorf("text %q html %q", r.Text, r.HTML)
			}
			var types []string
			for _, a := range r.Attachments {
				types = append(types, a.ContentType+" "+a.Disposition+" "+a.Filename)
			}
			want := []string{"application/pdf attachment invoice-2024-031.pdf", "text/csv attachment items.csv", "text/plain inline "}
			if !reflect.DeepEqual(types, want) {
				t.Errorf("attachments = %q, want %q", types, want)
			}
			if r.Attachments[1].Size != 25 {
				t.Errorf("csv size %d: the charset of a text attachment must not be converted", r.Attachments[1].Size)
			}
		},
		"inline_image": func(t *testing.T, r *record.Record) {
			a := r.Attachments
			if len(a) != 1 || a[0].ContentID != "logo.png@01DA7" || a[0].Disposition != "inline" || a[0].ContentType != "image/png" || a[0].Size != 70 {
				t.Errorf("attachments %+v", a)
			}
		},
		"nested": func(t *testing.T, r *record.Record) {
			if r.Text == "" || !strings.Contains(r.HTML, "cid:beach1") || len(r.Attachments) != 2 || r.Attachments[0].ContentID != "beach1" {
				t.Errorf("text %q html %q attachments %+v", r.Text, r.HTML, r.Attachments)
			}
		},
		"forwarded_rfc822": func(t *testing.T, r *record.Record) {
			if len(r.Attachments) != 1 || r.Attachments[0].ContentType != "message/rfc822" {
				t.Fatalf("attachments %+v", r.Attachments)
			}
			if strings.Contains(r.Text, "Inner text") || r.Text != "See the forwarded message below." {
				t.Errorf("text %q", r.Text)
			}
		},
		"calendar": func(t *testing.T, r *record.Record) {
			if len(r.Attachments) != 2 || r.Attachments[0].ContentType != "text/calendar" || r.Attachments[1].Filename != "invite.ics" {
				t.Errorf("attachments %+v", r.Attachments)
			}
		},
		"unclosed_boundary": func(t *testing.T, r *record.Record) {
			if len(r.Attachments) != 1 || r.Attachments[0].Size != 33 || !hasErr(r, "closing boundary") {
				t.Errorf("attachments %+v errors %q", r.Attachments, r.ParseErrors)
			}
		},
		"bad_base64": func(t *testing.T, r *record.Record) {
			if r.Text != "Hello, this text has no padding" {
				t.Errorf("unpadded base64 text = %q", r.Text)
			}
			// junk skipped; decoding goes on after padding in mid-stream
			if r.Attachments[0].Size != 15 || r.Attachments[1].Size != 10 || r.Attachments[2].Size != 42 {
				t.Errorf("attachments %+v", r.Attachments)
			}
			if !hasErr(r, "9 bytes outside the base64 alphabet") || !hasErr(r, "padding before its end") {
				t.Errorf("errors %q", r.ParseErrors)
			}
		},
		"unknown_charset": func(t *testing.T, r *record.Record) {
			if r.Subject != "=?x-unknown-charset?Q?caf=E9?= and café" || r.Text != "Café crème brûlée, and some UTF-8 too: été.\n" {
				t.Errorf("subject %q text %q", r.Subject, r.Text)
			}
			if !hasErr(r, `unknown charset "x-unknown-charset"; text kept as is`) || !hasErr(r, "in encoded word") {
				t.Errorf("errors %q", r.ParseErrors)
			}
		},
		"unknown_encoding": func(t *testing.T, r *record.Record) {
			if r.Text != "Text in a made-up transfer encoding." || hasErr(r, `"x-uuencode"`) || !hasErr(r, `"x-bogus"`) {
				t.Errorf("text %q errors %q", r.Text, r.ParseErrors)
			}
			if a := r.Attachments; len(a) != 1 || a[0].Size != 3 || a[0].SHA256 != hexSHA256([]byte("abc")) {
				t.Errorf("uuencoded attachment %+v", a)
			}
		},
		"encoded_word_raw_8bit": func(t *testing.T, r *record.Record) {
			// UTF-8 bytes inside a Latin-1 Q word stay UTF-8; the =XX escapes
			// beside them are still Latin-1; raw bytes that are not UTF-8
			// are read in the word's charset.
			if r.Subject != "Frösche und Kröten" || headerValue(r, "X-Latin") != "café crème" {
				t.Errorf("subject %q x-latin %q", r.Subject, headerValue(r, "X-Latin"))
			}
			want := [][]record.Address{{{Name: "Jürgen Müller", Address: "j@example.de"}},
				{{Name: "André", Address: "a@example.org"}, {Name: "Zoë", Address: "z@example.org"}}, {{Name: "café", Address: "c@example.org"}}}
			if got := [][]record.Address{r.From, r.To, r.Cc}; !reflect.DeepEqual(got, want) {
				t.Errorf("addresses %v", got)
			}
			if got := filenames(r); !reflect.DeepEqual(got, []string{"Prüfbericht.pdf"}) {
				t.Errorf("filenames %q", got)
			}
			if !hasErr(r, `header "Subject": encoded word`) || !hasErr(r, "kept as UTF-8") || !hasErr(r, "read as iso-8859-1") {
				t.Errorf("errors %q", r.ParseErrors)
			}
		},
		"charset_utf7": func(t *testing.T, r *record.Record) {
			if r.Subject != "Grüße – 日本語" || r.From[0].Name != "Zoë Ünal" {
				t.Errorf("subject %q from %v", r.Subject, r.From)
			}
			if r.Text != "Hallo Zoë,\n1 + 1 = 2, and 5 € for the café ☕.\nSee you – 日本語.\n" ||
				r.HTML != "<p>Grüße aus Köln – <b>Ünal</b> + friends</p>\n" {
				t.Errorf("text %q html %q", r.Text, r.HTML)
			}
			if got := filenames(r); !reflect.DeepEqual(got, []string{"résumé 2024.txt"}) || len(r.ParseErrors) != 0 {
				t.Errorf("filenames %q errors %q", got, r.ParseErrors)
			}
		},
		"address_comments": func(t *testing.T, r *record.Record) {
			want := map[string][]record.Address{
				"from":     {{Name: "Marta", Address: "marta@office.example"}},
				"sender":   {{Name: "Marta Ortiz", Address: "marta@office.example"}},
				"to":       {{Name: "Lee Wong", Address: "lee@dev.example"}, {Name: "", Address: "sam.k@dev.example"}, {Name: "Ana", Address: "ana@dev.example"}},
				"cc":       nil,
				"bcc":      nil,
				"reply_to": {{Name: "", Address: "replies@office.example"}},
			}
			got := map[string][]record.Address{"from": r.From, "sender": r.Sender, "to": r.To, "cc": r.Cc, "bcc": r.Bcc, "reply_to": r.ReplyTo}
			for k := range want {
				if len(want[k]) == 0 && len(got[k]) == 0 {
					continue
				}
				if !reflect.DeepEqual(got[k], want[k]) {
					t.Errorf("%s = %v, want %v", k, got[k], want[k])
				}
			}
			// All of it is RFC 5322 (with §4) but the Cc of only a comment.
			if len(r.ParseErrors) != 1 || !hasErr(r, `header "Cc"`) {
				t.Errorf("errors %q", r.ParseErrors)
			}
		},
		"inline_named_text": func(t *testing.T, r *record.Record) {
			// An explicitly inline text with a file name is the body while
			// no body has been chosen; after that, and without "inline", a
			// named part is a file.
			if r.Text != "Shopping: milk, bread, coffee." || r.HTML != "" {
				t.Errorf("text %q html %q", r.Text, r.HTML)
			}
			if got := filenames(r); !reflect.DeepEqual(got, []string{"receipt.pdf", "later.txt", "readme.txt"}) || len(r.ParseErrors) != 0 {
				t.Errorf("filenames %q errors %q", got, r.ParseErrors)
			}
		},
		"inline_named_alternative": func(t *testing.T, r *record.Record) {
			// Alternatives are bodies whatever their names.
			if r.Text != "The report is attached." || r.HTML != "<p>The <b>report</b> is attached.</p>" {
				t.Errorf("text %q html %q", r.Text, r.HTML)
			}
			if got := filenames(r); !reflect.DeepEqual(got, []string{"report.txt"}) {
				t.Errorf("filenames %q", got)
			}
		},
		"unnamed_attachments": func(t *testing.T, r *record.Record) {
			// The parser keeps the empty names; jsonstore names the saved
			// files from the media type (TestStore_unnamedAttachmentsGetExtensions).
			var got []string
			for _, a := range r.Attachments {
				got = append(got, a.Filename+"|"+a.ContentType)
			}
			want := []string{"|text/calendar", "|image/png", "|message/rfc822", "|application/x-never-heard-of"}
			if !reflect.DeepEqual(got, want) || r.Text != "Three parts without a file name follow." {
				t.Errorf("attachments %q text %q", got, r.Text)
			}
		},
		"boundary_doubled": func(t *testing.T, r *record.Record) {
			// Each doubled delimiter gives an empty part, skipped; nothing after it is lost.
			if r.Text != "The report is attached; two boundary lines came in a row before this part." || r.HTML != "<p>The report is attached.</p>" {
				t.Errorf("text %q html %q", r.Text, r.HTML)
			}
			if got := filenames(r); !reflect.DeepEqual(got, []string{"report.pdf"}) || r.Attachments[0].Size != 111 {
				t.Errorf("attachments %+v", r.Attachments)
			}
			want := []string{"part 1 is empty (two boundary lines in a row); skipped", "part 2.2 is empty (two boundary lines in a row); skipped",
				"part 3 is empty (two boundary lines in a row); skipped", "part 5 is empty (two boundary lines in a row); skipped"}
			if !reflect.DeepEqual(r.ParseErrors, want) {
				t.Errorf("errors %q", r.ParseErrors)
			}
		},
		"part_header_broken_fold": func(t *testing.T, r *record.Record) {
			// Folds that lost their whitespace are read as folds, so the
			// charset, the names and the parts after them survive.
			if r.Text != "Grüße, the scan is attached." {
				t.Errorf("text %q", r.Text)
			}
			var got []string
			for _, a := range r.Attachments {
				got = append(got, fmt.Sprintf("%s|%s|%s|%s|%d", a.Filename, a.ContentType, a.Disposition, a.ContentID, a.Size))
			}
			want := []string{"Scan 2024-03-25.pdf|application/pdf|attachment||111", "totals.csv|text/csv|attachment||21", "logo.png|image/png|inline|logo@example.com|70"}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("attachments %q", got)
			}
			if !hasErr(r, `part 2: header line "filename=\"Scan 2024-03-25.pdf\"" continues a field`) || !hasErr(r, "part 3: header starts with an indented line") {
				t.Errorf("errors %q", r.ParseErrors)
			}
		},
		"nested_prefix_boundary_outer_first": func(t *testing.T, r *record.Record) {
			// b1 > b1-1 > b1-1-1: "--b1-1" is no delimiter of "b1".
			if r.Text != "Spring news: the garden opens on Saturday." || !strings.Contains(r.HTML, `<img src="cid:flower">`) {
				t.Errorf("text %q html %q", r.Text, r.HTML)
			}
			if a := r.Attachments; len(a) != 2 || a[0].ContentID != "flower" || a[0].Size != 70 || a[1].Filename != "opening.ics" || len(r.ParseErrors) != 0 {
				t.Errorf("attachments %+v errors %q", a, r.ParseErrors)
			}
		},
		"nested_prefix_boundary_inner_first": func(t *testing.T, r *record.Record) {
			// =_abc_2 > =_abc: "--=_abc_2" is no delimiter of "=_abc".
			if r.Text != "Your order 1234 has shipped." || r.HTML != "<p>Your order <b>1234</b> has shipped.</p>" {
				t.Errorf("text %q html %q", r.Text, r.HTML)
			}
			if got := filenames(r); !reflect.DeepEqual(got, []string{"invoice-1234.pdf"}) || len(r.ParseErrors) != 0 {
				t.Errorf("filenames %q errors %q", got, r.ParseErrors)
			}
		},
		"empty_nested_multipart": func(t *testing.T, r *record.Record) {
			// A blank multipart, one with no parts and one whose only
			// text is blank give no body; the real text after them is chosen.
			if r.Text != "Name: Ada\nMessage: the real text comes after three empty multiparts." || r.HTML != "<p>Name: Ada</p>" || len(r.Attachments) != 0 {
				t.Errorf("text %q html %q attachments %+v", r.Text, r.HTML, r.Attachments)
			}
			if !hasErr(r, `part 1: multipart/alternative is empty`) || !hasErr(r, "part 2: multipart/related has no parts") {
				t.Errorf("errors %q", r.ParseErrors)
			}
		},
		"nested_multipart_no_boundary_param": func(t *testing.T, r *record.Record) {
			// Nested multiparts that cannot be split are no body
			// candidates: a blank one is dropped, one with text is kept
			// whole as an attachment; the real text after them is chosen.
			if r.Text != "The real text, after three multiparts that cannot be split." || r.HTML != "<p>The real text.</p>" {
				t.Errorf("text %q html %q", r.Text, r.HTML)
			}
			if len(r.Attachments) != 2 || r.Attachments[0].ContentType != "multipart/alternative" || r.Attachments[0].Size != 44 ||
				r.Attachments[0].SHA256 != hexSHA256([]byte("This is a multi-part message in MIME format.")) ||
				r.Attachments[1].ContentType != "multipart/alternative" || r.Attachments[1].Size != 2083 {
				t.Errorf("attachments %+v", r.Attachments)
			}
			want := []string{"part 1: multipart/alternative without a boundary parameter; kept as an attachment",
				"part 2: multipart/related without a boundary parameter is blank; no body taken from it",
				"part 3: multipart/alternative with a boundary longer than 1000 bytes; kept as an attachment"}
			if !reflect.DeepEqual(r.ParseErrors, want) {
				t.Errorf("errors %q", r.ParseErrors)
			}
		},
		"boundary_blank_parts": func(t *testing.T, r *record.Record) {
			// A part with no header and only blank lines is empty, like
			// two boundary lines in a row: skipped and reported. A part
			// with a header and no body is still a part.
			if r.Text != "The text, after parts that hold only blank lines." || r.HTML != "<p>The text.</p>" {
				t.Errorf("text %q html %q", r.Text, r.HTML)
			}
			if got := filenames(r); !reflect.DeepEqual(got, []string{"empty.txt"}) || r.Attachments[0].Size != 0 {
				t.Errorf("attachments %+v", r.Attachments)
			}
			var want []string
			for _, n := range []string{"1", "2.1", "2.4", "4"} {
				want = append(want, "part "+n+" is empty (no header, only blank lines before the next boundary line); skipped")
			}
			if !reflect.DeepEqual(r.ParseErrors, want) {
				t.Errorf("errors %q", r.ParseErrors)
			}
		},
		"uuencode": func(t *testing.T, r *record.Record) {
			data1 := make([]byte, 300)
			for i := range data1 {
				data1[i] = byte((i*37 + 11) % 256)
			}
			data3 := make([]byte, 256)
			for i := range data3 {
				data3[i] = byte(i)
			}
			want := []record.Attachment{
				{Filename: "table.bin", ContentType: "application/octet-stream", Disposition: "attachment", Size: 300, SHA256: hexSHA256(data1)},
				{Filename: "notes from the meeting.txt", ContentType: "text/plain", Size: 47, SHA256: hexSHA256([]byte("Meeting notes\nline two with trailing spaces   \n"))},
				{Filename: "bytes.dat", ContentType: "application/octet-stream", Disposition: "attachment", Size: 256, SHA256: hexSHA256(data3)},
			}
			if !reflect.DeepEqual(r.Attachments, want) {
				t.Errorf("attachments\n%+v\nwant\n%+v", r.Attachments, want)
			}
			if r.Text != "Three files, uuencoded the old way." || len(r.ParseErrors) != 0 {
				t.Errorf("text %q errors %q", r.Text, r.ParseErrors)
			}
		},
		"deep_nesting": func(t *testing.T, r *record.Record) {
			last := r.Attachments[len(r.Attachments)-1]
			if r.Text != "Text at level 0." || last.ContentType != "multipart/mixed" || !hasErr(r, "nested more than 32 levels") {
				t.Errorf("text %q last attachment %+v errors %q", r.Text, last, r.ParseErrors)
			}
		},
		"nul_bytes": func(t *testing.T, r *record.Record) {
			if r.Subject != "Null\x00byte in the subject" || !strings.Contains(r.Text, "NUL \x00 byte") {
				t.Errorf("subject %q text %q", r.Subject, r.Text)
			}
			b, _ := json.Marshal(r)
			if !bytes.Contains(b, []byte(`Null\u0000byte`)) {
				t.Errorf("NUL not escaped in JSON: %s", b)
			}
		},
		"hostile_names": func(t *testing.T, r *record.Record) {
			want := []string{"../../x", "/etc/passwd", "CON", strings.Repeat("A", 996) + ".txt", "invoice\u202efdp.exe", "..", "../evil/=?.sh"}
			if got := filenames(r); !reflect.DeepEqual(got, want) {
				t.Errorf("filenames = %q, want them as sent (SafeName makes them safe on disk)", got)
			}
		},
		"subject_escapes": func(t *testing.T, r *record.Record) {
			if !strings.HasPrefix(r.Subject, "\x1b[2J\x1b[1;1HCleared screen \x07 and an encoded \x1b]0;title\x07 \r CR") {
				t.Errorf("subject %q", r.Subject)
			}
			b, _ := json.Marshal(r.Subject)
			if bytes.ContainsAny(b, "\x1b\x07\r") {
				t.Errorf("control characters not escaped: %s", b)
			}
		},
		"missing_headers": func(t *testing.T, r *record.Record) {
			if r.Date != nil || len(r.From) != 0 || r.Subject != "" || r.MessageID != "" || len(r.ParseErrors) != 0 || r.Text == "" {
				t.Errorf("%+v", r)
			}
		},
		"bad_date": func(t *testing.T, r *record.Record) {
			if r.Date != nil || !hasErr(r, "unparsable date") {
				t.Errorf("date %v errors %q", r.Date, r.ParseErrors)
			}
		},
		"lenient_date": func(t *testing.T, r *record.Record) {
			if r.Date == nil || r.Date.Format(time.RFC3339) != "2024-03-14T15:04:05+05:30" || !hasErr(r, "read leniently") {
				t.Errorf("date %v errors %q", r.Date, r.ParseErrors)
			}
		},
		"obsolete_date": func(t *testing.T, r *record.Record) {
			if r.Date == nil || r.Date.Format(time.RFC3339) != "2024-03-14T15:04:05-05:00" || len(r.ParseErrors) != 0 {
				t.Errorf("date %v errors %q", r.Date, r.ParseErrors)
			}
		},
		"bare_lf": func(t *testing.T, r *record.Record) {
			if r.Text != "backup finished: 3 files" || len(r.Attachments) != 1 || r.Attachments[0].Size != int64(len("line 1\nline 2")) {
				t.Errorf("text %q attachments %+v", r.Text, r.Attachments)
			}
		},
		"long_lines": func(t *testing.T, r *record.Record) {
			if len(r.References) != 900 || len(r.Text) != 20005 || r.Truncated {
				t.Errorf("references %d text %d truncated %v", len(r.References), len(r.Text), r.Truncated)
			}
		},
		"many_attachments": func(t *testing.T, r *record.Record) {
			if len(r.Attachments) != 200 || r.Attachments[199].Filename != "page-199.png" || len(r.ParseErrors) != 0 {
				t.Errorf("attachments %d errors %q", len(r.Attachments), r.ParseErrors)
			}
		},
		"raw_8bit_headers": func(t *testing.T, r *record.Record) {
			if r.Subject != "Raw Latin-1 café and raw UTF-8 été" || r.From[0].Name != "André Latin" || r.To[0].Name != "Jürgen Utf8" {
				t.Errorf("subject %q from %v to %v", r.Subject, r.From, r.To)
			}
		},
		"bad_addresses": func(t *testing.T, r *record.Record) {
			if want := []record.Address{{Name: "Broken Sender", Address: "no-at-sign"}}; !reflect.DeepEqual(r.From, want) {
				t.Errorf("from %v", r.From)
			}
			if len(r.To) != 0 || len(r.ReplyTo) != 3 || len(r.Cc) != 3 || r.Sender[0].Address != "sender@example.com" {
				t.Errorf("to %v reply-to %v cc %v sender %v", r.To, r.ReplyTo, r.Cc, r.Sender)
			}
			for _, h := range []string{"From", "Sender", "Reply-To", "Cc", "Bcc"} {
				if !hasErr(r, fmt.Sprintf("header %q", h)) {
					t.Errorf("no parse error for %s: %q", h, r.ParseErrors)
				}
			}
		},
		"no_boundary_lines": func(t *testing.T, r *record.Record) {
			if !strings.HasPrefix(r.Text, "This body claims to be multipart\n") || !hasErr(r, "no boundary line") {
				t.Errorf("text %q errors %q", r.Text, r.ParseErrors)
			}
		},
		"multipart_no_boundary_param": func(t *testing.T, r *record.Record) {
			if r.Text != "Text in a multipart without a boundary parameter.\n" || !hasErr(r, "without a boundary parameter") {
				t.Errorf("text %q errors %q", r.Text, r.ParseErrors)
			}
		},
		"header_no_blank_line": func(t *testing.T, r *record.Record) {
			if !strings.HasPrefix(r.Text, "This line starts the body") || r.Subject != "No separator" || r.Date == nil {
				t.Errorf("text %q subject %q", r.Text, r.Subject)
			}
		},
		"html_meta_charset": func(t *testing.T, r *record.Record) {
			if r.Text != "Привет, мир!\n\n  preformatted\n    text" {
				t.Errorf("text %q", r.Text)
			}
		},
		"msgid_garbage": func(t *testing.T, r *record.Record) {
			if r.MessageID != "no-brackets-id@example.com" || !reflect.DeepEqual(r.References, []string{"a@example.com", "b@example.com", "no-at-sign", "c@example.com"}) {
				t.Errorf("message-id %q references %q", r.MessageID, r.References)
			}
		},
		"empty": func(t *testing.T, r *record.Record) {
			if !hasErr(r, "message is empty") {
				t.Errorf("errors %q", r.ParseErrors)
			}
		},
		"digest": func(t *testing.T, r *record.Record) {
			if len(r.Attachments) != 2 || r.Attachments[0].ContentType != "message/rfc822" {
				t.Errorf("attachments %+v", r.Attachments)
			}
		},
		"folded_headers": func(t *testing.T, r *record.Record) {
			if r.Subject != "This subject is folded across two lines" || len(r.To) != 2 || r.From[0].Address != "alice@example.org" {
				t.Errorf("subject %q to %v from %v", r.Subject, r.To, r.From)
			}
		},
	}
	names := fixtureNames(t)
	for _, name := range names {
		if tests[name] == nil {
			t.Errorf("fixture %s has no expectations here", name)
		}
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) {
			rec := parseFixture(t, name, ParseOptions{})
			checkRecord(t, rec)
			fn(t, rec)
		})
	}
}

// TestParse_chunking parses every fixture one byte per Read, and with
// data and io.EOF returned together: boundaries, header lines and base64
// groups cut at every position must give the same record.
func TestParse_chunking(t *testing.T) {
	for _, name := range fixtureNames(t) {
		data := readFixture(t, name)
		want := marshalGolden(t, parseFixture(t, name, ParseOptions{}))
		for _, mode := range []string{"one-byte", "data-err"} {
			var r io.Reader = bytes.NewReader(data)
			if mode == "one-byte" {
				r = iotest.OneByteReader(r)
			} else {
				r = iotest.DataErrReader(r)
			}
			rec, err := Parse(r, ParseOptions{})
			if err != nil {
				t.Fatalf("%s/%s: %v", name, mode, err)
			}
			if got := marshalGolden(t, rec); !bytes.Equal(got, want) {
				t.Errorf("%s/%s: record differs:\n%s", name, mode, lineDiff(string(want), string(got)))
			}
		}
	}
}

func TestParse_truncation(t *testing.T) {
	msg := func(ctype, cte, body string) string {
		return "From: a@example.com\r\nSubject: t\r\nContent-Type: " + ctype + "\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n" + body
	}
	tests := []struct {
		name      string
		raw       string
		max       int64
		text      string
		html      string
		truncated bool
	}{
		{"exact fit is not truncated", msg("text/plain; charset=utf-8", "8bit", "0123456789"), 10, "0123456789", "", false},
		{"one byte over", msg("text/plain; charset=utf-8", "8bit", "0123456789X"), 10, "0123456789", "", true},
		{"cut before a split rune", msg("text/plain; charset=utf-8", "8bit", "ééééé"), 5, "éé", "", true},
		{"cut in a converted charset", msg("text/plain; charset=iso-8859-1", "quoted-printable", "=E9=E9=E9=E9=E9"), 5, "éé", "", true},
		{"cp1252 fallback expands past max", msg("text/plain", "8bit", "\xe9\xe9\xe9\xe9"), 5, "éé", "", true},
		{"CRLF counts before normalising", msg("text/plain", "8bit", "a\r\nb\r\nc\r\nd"), 6, "a\nb\n", "", true},
		{"no half CRLF at the cut", msg("text/plain", "8bit", "a\r\nb\r\nc\r\nd"), 5, "a\nb", "", true},
		{"html and its rendering", msg("text/html; charset=utf-8", "8bit", "<p>"+strings.Repeat("word ", 40)+"</p>"), 30, "word word word word word wo", "<p>word word word word word wo", true},
		{"base64 body", msg("text/plain; charset=utf-8", "base64", base64.StdEncoding.EncodeToString([]byte(strings.Repeat("abc", 100)))), 7, "abcabca", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := Parse(strings.NewReader(tt.raw), ParseOptions{MaxBodyBytes: tt.max})
			if err != nil {
				t.Fatal(err)
			}
			checkRecord(t, rec)
			if rec.Text != tt.text || rec.HTML != tt.html || rec.Truncated != tt.truncated {
				t.Errorf("text %q html %q truncated %v; want %q %q %v", rec.Text, rec.HTML, rec.Truncated, tt.text, tt.html, tt.truncated)
			}
			if int64(len(rec.Text)) > tt.max || int64(len(rec.HTML)) > tt.max {
				t.Errorf("text %d / html %d bytes exceed max %d", len(rec.Text), len(rec.HTML), tt.max)
			}
		})
	}

	// Every fixture at a small limit: still valid, within the limit, and a
	// prefix of the full text whenever the text was cut as is.
	for _, name := range fixtureNames(t) {
		full := parseFixture(t, name, ParseOptions{})
		rec := parseFixture(t, name, ParseOptions{MaxBodyBytes: 16})
		checkRecord(t, rec)
		if len(rec.Text) > 16 || len(rec.HTML) > 16 {
			t.Errorf("%s: text %d html %d bytes, max 16", name, len(rec.Text), len(rec.HTML))
		}
		if !strings.HasPrefix(full.HTML, rec.HTML) {
			t.Errorf("%s: html %q is not a prefix of %q", name, rec.HTML, full.HTML)
		}
		if rec.Truncated != (len(full.Text) > 16 || len(full.HTML) > 16) && full.HTML == "" {
			t.Errorf("%s: truncated = %v for a %d-byte text", name, rec.Truncated, len(full.Text))
		}
	}
}

// fileSink saves attachments as files under dir, as the store does.
type fileSink struct {
	dir   string
	calls []string
	fail  func(index int) error // Save error
	wrap  func(index int, w io.WriteCloser) io.WriteCloser
}

func (s *fileSink) Save(index int, filename, contentType string) (io.WriteCloser, string, error) {
	s.calls = append(s.calls, fmt.Sprintf("%d %s %s", index, contentType, filename))
	if s.fail != nil {
		if err := s.fail(index); err != nil {
			return nil, "", err
		}
	}
	rel := fmt.Sprintf("att/%03d", index)
	f, err := os.Create(filepath.Join(s.dir, rel))
	if err != nil {
		return nil, "", err
	}
	if s.wrap != nil {
		return s.wrap(index, f), rel, nil
	}
	return f, rel, nil
}

func TestParse_sink(t *testing.T) {
	for _, name := range []string{"mixed_attachments", "bad_base64", "rfc2231_filenames", "hostile_names", "many_attachments", "forwarded_rfc822", "unclosed_boundary", "deep_nesting"} {
		t.Run(name, func(t *testing.T) {
			sink := &fileSink{dir: t.TempDir()}
			if err := os.Mkdir(filepath.Join(sink.dir, "att"), 0o755); err != nil {
				t.Fatal(err)
			}
			rec := parseFixture(t, name, ParseOptions{Attachments: sink})
			checkRecord(t, rec)
			if len(sink.calls) != len(rec.Attachments) {
				t.Fatalf("%d Save calls for %d attachments", len(sink.calls), len(rec.Attachments))
			}
			for i, a := range rec.Attachments {
				if want := fmt.Sprintf("%d %s %s", i, a.ContentType, a.Filename); sink.calls[i] != want {
					t.Errorf("Save call %q, want %q", sink.calls[i], want)
				}
				if a.SavedAs == nil || *a.SavedAs != fmt.Sprintf("att/%03d", i) {
					t.Fatalf("attachment %d saved_as %v", i, a.SavedAs)
				}
				data, err := os.ReadFile(filepath.Join(sink.dir, *a.SavedAs))
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(data)) != a.Size || hexSHA256(data) != a.SHA256 {
					t.Errorf("attachment %d: file has %d bytes sha %s, record says %d %s", i, len(data), hexSHA256(data), a.Size, a.SHA256)
				}
			}
			// Without a sink the metadata is the same, saved_as aside.
			plain := parseFixture(t, name, ParseOptions{})
			for i := range plain.Attachments {
				a := rec.Attachments[i]
				a.SavedAs = nil
				if a != plain.Attachments[i] {
					t.Errorf("attachment %d differs with a sink: %+v vs %+v", i, a, plain.Attachments[i])
				}
			}
			switch name {
			case "bad_base64":
				got, _ := os.ReadFile(filepath.Join(sink.dir, "att/002"))
				if want := "Bad escapes: =ZZ =4 and a NUL \x00 and = done"; string(got) != want {
					t.Errorf("lenient quoted-printable = %q, want %q", got, want)
				}
			case "mixed_attachments":
				got, _ := os.ReadFile(filepath.Join(sink.dir, "att/001"))
				if want := "name;amount\nM\xfcller;12,50\n"; string(got) != want {
					t.Errorf("csv = %q, want the original ISO-8859-1 bytes %q", got, want)
				}
			case "forwarded_rfc822":
				got, _ := os.ReadFile(filepath.Join(sink.dir, "att/000"))
				if !bytes.HasPrefix(got, []byte("From: Accounting <billing@example.com>\r\n")) || !bytes.Contains(got, []byte("--inner-mix--")) {
					t.Errorf("forwarded message saved as %q", got)
				}
			}
		})
	}
}

var errDiskFull = errors.New("no space left on device")

type failingWriter struct {
	w         io.WriteCloser
	failAfter int // bytes accepted before failing; -1 never
	closeErr  error
	n         int
}

func (f *failingWriter) Write(b []byte) (int, error) {
	if f.failAfter >= 0 && f.n+len(b) > f.failAfter {
		return 0, errDiskFull
	}
	f.n += len(b)
	return f.w.Write(b)
}

func (f *failingWriter) Close() error {
	err := f.w.Close()
	if f.closeErr != nil {
		return f.closeErr
	}
	return err
}

func TestParse_sinkErrors(t *testing.T) {
	tests := []struct {
		name string
		sink func(dir string) *fileSink
	}{
		{"save fails", func(dir string) *fileSink {
			return &fileSink{dir: dir, fail: func(i int) error {
				if i == 1 {
					return errDiskFull
				}
				return nil
			}}
		}},
		{"write fails", func(dir string) *fileSink {
			return &fileSink{dir: dir, wrap: func(i int, w io.WriteCloser) io.WriteCloser { return &failingWriter{w: w, failAfter: 10} }}
		}},
		{"close fails", func(dir string) *fileSink {
			return &fileSink{dir: dir, wrap: func(i int, w io.WriteCloser) io.WriteCloser {
				return &failingWriter{w: w, failAfter: -1, closeErr: errDiskFull}
			}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.Mkdir(filepath.Join(dir, "att"), 0o755)
			rec, err := Parse(bytes.NewReader(readFixture(t, "mixed_attachments")), ParseOptions{Attachments: tt.sink(dir)})
			if !errors.Is(err, errDiskFull) || rec != nil {
				t.Fatalf("Parse = %v, %v; want nil and an error wrapping %v", rec, err, errDiskFull)
			}
			if !strings.Contains(err.Error(), "attachment") {
				t.Errorf("error %q does not say what failed", err)
			}
		})
	}

	t.Run("nil writer skips saving", func(t *testing.T) {
		rec, err := Parse(bytes.NewReader(readFixture(t, "mixed_attachments")), ParseOptions{Attachments: nilSink{}})
		if err != nil {
			t.Fatal(err)
		}
		want := parseFixture(t, "mixed_attachments", ParseOptions{})
		if !reflect.DeepEqual(rec, want) {
			t.Errorf("record with a skipping sink differs")
		}
	})
}

type panicSink struct{}

func (panicSink) Save(int, string, string) (io.WriteCloser, string, error) { panic("sink bug") }

// TestParse_sinkPanicPropagates: Parse absorbs its own panics into
// parse_errors, but a bug in the caller's sink must surface.
func TestParse_sinkPanicPropagates(t *testing.T) {
	defer func() {
		if v := recover(); v != "sink bug" {
			t.Errorf("recovered %v, want the sink's panic", v)
		}
	}()
	Parse(bytes.NewReader(readFixture(t, "mixed_attachments")), ParseOptions{Attachments: panicSink{}})
	t.Error("Parse returned")
}

type nilSink struct{}

func (nilSink) Save(int, string, string) (io.WriteCloser, string, error) { return nil, "", nil }

var errConnReset = errors.New("connection reset by peer")

// TestParse_readerError cuts the source with an error at many points: the
// error must come back (go-message would fold it into a parse problem) and
// no record.
func TestParse_readerError(t *testing.T) {
	for _, name := range []string{"mixed_attachments", "plain", "nested", "bare_lf", "deep_nesting"} {
		data := readFixture(t, name)
		for _, cut := range []int{0, 1, 30, len(data) / 3, len(data) / 2, len(data) - 40, len(data) - 1, len(data)} {
			r := io.MultiReader(bytes.NewReader(data[:cut]), iotest.ErrReader(errConnReset))
			rec, err := Parse(r, ParseOptions{})
			if !errors.Is(err, errConnReset) || rec != nil {
				t.Errorf("%s cut at %d/%d: Parse = %v, %v; want nil and %v", name, cut, len(data), rec != nil, err, errConnReset)
			}
		}
	}
}

// genMessage streams a message with a short text part and one base64
// attachment of n pseudo-random bytes, generated as it is read, so the
// test itself holds no copy of it. sum is the attachment's SHA-256.
type genMessage struct {
	stage     int
	remaining int64
	rng       uint64
	buf       []byte // unread part of back
	back      []byte
	raw       [57]byte
	h         hash.Hash
}

const genHead = "From: Big Sender <big@example.com>\r\nTo: bob@example.com\r\nSubject: A big attachment\r\n" +
	"Date: Mon, 18 Mar 2024 10:00:00 +0000\r\nMessage-ID: <big@example.com>\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"big-boundary\"\r\n\r\n" +
	"--big-boundary\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe backup is attached.\r\n" +
	"--big-boundary\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"backup.tar\"\r\n" +
	"Content-Transfer-Encoding: base64\r\n\r\n"

const genTail = "--big-boundary--\r\n"

func newGenMessage(n int64) *genMessage {
	return &genMessage{remaining: n, rng: 0x9e3779b97f4a7c15, h: sha256.New(), back: make([]byte, 0, 80<<10)}
}

func (g *genMessage) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		switch g.stage {
		case 0:
			g.buf = append(g.back[:0], genHead...)
			g.stage++
		case 1:
			g.buf = g.back[:0]
			for g.remaining > 0 && len(g.buf) < 64<<10 {
				n := int64(len(g.raw))
				if g.remaining < n {
					n = g.remaining
				}
				for i := range g.raw[:n] {
					g.rng ^= g.rng << 13
					g.rng ^= g.rng >> 7
					g.rng ^= g.rng << 17
					g.raw[i] = byte(g.rng)
				}
				g.h.Write(g.raw[:n])
				g.remaining -= n
				g.buf = base64.StdEncoding.AppendEncode(g.buf, g.raw[:n])
				g.buf = append(g.buf, '\r', '\n')
			}
			g.back = g.buf[:0]
			if g.remaining == 0 {
				g.stage++
			}
		case 2:
			g.buf = append(g.back[:0], genTail...)
			g.stage++
		default:
			return 0, io.EOF
		}
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

// TestParse_streamingMemory parses a generated 100 MB message and checks
// that the heap never holds more than a small fraction of it. The race
// detector slows this 30-fold, so under -race the message is 4 MB.
func TestParse_streamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("parses 100 MB; skipped with -short")
	}
	size := int64(100 << 20) // decoded attachment bytes; the message is 4/3 of it
	if raceEnabled {
		size = 4 << 20
	}
	limit := min(uint64(size)/2, 16<<20)
	gen := newGenMessage(size)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var max uint64
		var m runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				peak <- max
				return
			case <-tick.C:
				runtime.ReadMemStats(&m)
				if m.HeapInuse > max {
					max = m.HeapInuse
				}
			}
		}
	}()
	start := time.Now()
	rec, err := Parse(gen, ParseOptions{})
	elapsed := time.Since(start)
	close(done)
	peakInuse := <-peak
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Attachments) != 1 || rec.Attachments[0].Size != size || rec.Attachments[0].SHA256 != hex.EncodeToString(gen.h.Sum(nil)) {
		t.Fatalf("attachment %+v does not match the generated %d bytes", rec.Attachments, size)
	}
	if rec.Text != "The backup is attached." {
		t.Errorf("text %q", rec.Text)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d MiB attachment (%.0f MiB message) in %v: peak heap in use %.1f MiB (%.1f MiB before), %.1f MiB allocated in total",
		size>>20, float64(size)*4/3/(1<<20), elapsed.Round(time.Millisecond), float64(peakInuse)/(1<<20), float64(before.HeapInuse)/(1<<20), float64(allocated)/(1<<20))
	if peakInuse > before.HeapInuse+limit {
		t.Errorf("peak heap in use grew by %d MiB while parsing; want < %d MiB", (peakInuse-before.HeapInuse)>>20, limit>>20)
	}
	if allocated > limit {
		t.Errorf("parsing allocated %d MiB in total; want < %d MiB (is something buffering the attachment?)", allocated>>20, limit>>20)
	}
}

// benchMessage is a realistic ~20 KB message: quoted-printable text and
// HTML alternatives, an inline image and a PDF attachment.
func benchMessage() []byte {
	var b bytes.Buffer
	b.WriteString("Return-Path: <alice@example.org>\r\nReceived: from mx.example.net by imap.example.com; Tue, 5 Mar 2024 14:03:22 +0100\r\n" +
		"From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>\r\nTo: Bob <bob@example.com>, carol@example.com\r\n" +
		"Subject: =?UTF-8?Q?Quartalsbericht_Q1_=E2=80=93_Entwurf?=\r\nDate: Tue, 5 Mar 2024 14:03:22 +0100\r\n" +
		"Message-ID: <bench@example.de>\r\nReferences: <a@example.com> <b@example.com>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n" +
		"--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	para := "Hallo zusammen, anbei der Entwurf des Quartalsberichts. Gr=C3=BC=C3=9Fe aus M=C3=BCnchen =E2=80=93 bis bald.=\r\n"
	for i := 0; i < 50; i++ {
		b.WriteString(para)
	}
	b.WriteString("\r\n--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<html><body>")
	for i := 0; i < 40; i++ {
		b.WriteString("<p>Hallo zusammen, anbei der <b>Entwurf</b> des Quartalsberichts. Gr=C3=BC=C3=9Fe</p>=\r\n")
	}
	b.WriteString("</body></html>\r\n--alt--\r\n--mix\r\nContent-Type: application/pdf; name=\"bericht.pdf\"\r\n" +
		"Content-Disposition: attachment; filename=\"bericht.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	pdf := bytes.Repeat([]byte("%PDF-1.4 stream of a quarterly report\n"), 170)
	enc := base64.StdEncoding.EncodeToString(pdf)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--mix--\r\n")
	return b.Bytes()
}

func BenchmarkParse(b *testing.B) {
	msg := benchMessage()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(msg), ParseOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParse_hostileInputsStayLinear feeds inputs built to trigger
// quadratic behaviour (each about 1 MB, 128 KB under -race). Linear
// parsing takes well under a second; quadratic would take minutes, so the
// bound is loose enough for a loaded machine and still catches regressions.
func TestParse_hostileInputsStayLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 1 MB inputs")
	}
	n := 900 << 10 // under the 1 MiB header cap, so header cases reach their parsers
	if raceEnabled {
		n = 128 << 10
	}
	head := "From: a@example.com\r\nSubject: s\r\n"
	rep := func(s string) string { return strings.Repeat(s, n/len(s)) }
	tests := map[string]string{
		"unterminated encoded words": head + "X-Words: " + rep("=?a?q?a") + "\r\n\r\nbody",
		"encoded words without '?'":  head + "X-Words: " + rep("=?abcdefgh") + "\r\n\r\nbody",
		"many short fields":          rep("A: b\r\n") + "\r\nbody",
		"msg-id brackets":            head + "References: " + rep("<") + "\r\n\r\n",
		"msg-id comments":            head + "References: " + rep("(") + "\r\n\r\n",
		"address list":               head + "To: " + rep("a@b, ") + "\r\n\r\n",
		"broken address list":        head + "To: " + rep("\"a <") + "\r\n\r\n",
		"parameters":                 head + "Content-Type: text/plain" + rep("; a=b") + "\r\n\r\nbody",
		"rfc2231 sections":           head + "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Disposition: attachment" + rep("; f*1=x") + "\r\n\r\nx\r\n--b--\r\n",
		"nested links":               head + "Content-Type: text/html\r\n\r\n" + strings.Repeat("<a href=x>", n/20) + "text" + strings.Repeat("</a>", n/20),
		"tiny parts":                 head + "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + rep("--b\r\n\r\nx\r\n") + "--b--\r\n",
		"doubled delimiters":         head + "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + rep("--b\r\n") + "--b--\r\n",
		"delimiter padding":          head + "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b" + rep(" ") + "\r\ny\r\n--b--\r\n",
		"broken folds":               head + "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n" + rep("x=y\r\n") + "\r\nbody\r\n--b--\r\n",
		"near delimiters":            head + "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n" + rep("\r\n--b-") + "\r\n--b--\r\n",
		"deep preamble":              head + "Content-Type: multipart/mixed; boundary=b\r\n\r\n" + rep("no boundary here\r\n"),
		"long boundary prefixes":     head + "Content-Type: multipart/mixed; boundary=" + strings.Repeat("b", 900) + "\r\n\r\n" + rep("\r\n--"+strings.Repeat("b", 899)+"X"),
		"qp soft breaks":             head + "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + rep("=\r\n"),
		"qp whitespace":              head + "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + rep(" \t"),
		"base64 padding":             head + "Content-Type: application/x\r\nContent-Transfer-Encoding: base64\r\n\r\n" + rep("QQ=="),
		"date":                       head + "Date: " + rep("((") + "\r\n\r\n",
	}
	for name, msg := range tests {
		start := time.Now()
		rec, err := Parse(strings.NewReader(msg), ParseOptions{})
		elapsed := time.Since(start)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		checkRecord(t, rec)
		t.Logf("%-28s %8v  %d attachments, %d parse errors", name, elapsed.Round(time.Millisecond), len(rec.Attachments), len(rec.ParseErrors))
		if elapsed > 10*time.Second {
			t.Errorf("%s: %v for %d bytes; something is quadratic", name, elapsed, len(msg))
		}
		if b, _ := json.Marshal(rec); len(b) > 16*len(msg)+(1<<20) { // "<" becomes "\u003c"
			t.Errorf("%s: record is %d bytes for a %d-byte message", name, len(b), len(msg))
		}
	}
}

func TestParse_multipartEdgeCases(t *testing.T) {
	head := "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
	part := func(ctype, body string) string {
		return "--b\r\nContent-Type: " + ctype + "\r\n\r\n" + body + "\r\n"
	}
	tests := []struct {
		name    string
		raw     string
		max     int64
		text    string
		attach  int
		errPart string // substring of a parse error, "" for none
	}{
		{"long preamble line", head + strings.Repeat("p", 20000) + "\r\n" + part("text/plain", "hi") + part("image/png", "x") + "--b--\r\n", 0, "hi", 1, ""},
		{"boundary with trailing space", head + "--b  \r\n\r\nhi\r\n--b--\r\n", 0, "hi", 0, ""},
		{"no boundary, over max", head + strings.Repeat("x", 100), 10, "xxxxxxxxxx", 0, "no boundary line"},
		{"only the final boundary", head + "--b--\r\n", 0, "", 0, "has no parts"},
		{"part without header", head + "--b\r\n\r\nbare\r\n--b--\r\n", 0, "bare", 0, ""},
		{"epilogue ignored", head + part("text/plain", "hi") + "--b--\r\nepilogue --b\r\n", 0, "hi", 0, ""},
		{"malformed part header", head + part("text/plain", "kept") + "--b\r\nno colon here\r\n\r\nnot lost\r\n--b--\r\n", 0, "kept", 1, "part 2: header line \"no colon here\" is not a field; skipped"},
		{"huge part header", head + part("text/plain", "kept") + "--b\r\n" + strings.Repeat("X-A: b\r\n", 200000) + "\r\nnot lost\r\n--b--\r\n", 0, "kept", 1, "part 2: header larger than"},
		{"inner multipart reusing the boundary", head + "--b\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n" + part("text/plain", "inner") + "--b--\r\n", 0, "inner", 0, "part 1: multipart/alternative is empty"},
		{"doubled boundary line", head + "--b\r\n" + part("text/plain", "after") + part("image/png", "x") + "--b--\r\n", 0, "after", 1, "part 1 is empty"},
		{"boundary then close", head + part("text/plain", "hi") + "--b\r\n--b--\r\n", 0, "hi", 0, "part 2 is empty"},
		{"inner boundary extends the outer", "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n" +
			"Content-Type: multipart/alternative; boundary=\"b1-1\"\r\n\r\n--b1-1\r\nContent-Type: text/plain\r\n\r\ninner text\r\n" +
			"--b1-1\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b1-1--\r\n\r\n--b1\r\nContent-Type: image/png\r\n\r\npng\r\n--b1--\r\n", 0, "inner text", 1, ""},
		{"outer boundary extends the inner", "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"b1-1\"\r\n\r\n--b1-1\r\n" +
			"Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\ninner text\r\n" +
			"--b1\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b1--\r\n\r\n--b1-1\r\nContent-Type: image/png\r\n\r\npng\r\n--b1-1--\r\n", 0, "inner text", 1, ""},
		{"broken fold in a part header", head + "--b\r\nContent-Type: text/plain;\r\ncharset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n" + part("image/png", "x") + "--b--\r\n", 0, "hi", 1, "read as a fold"},
		{"part body without a blank line", head + "--b\r\nContent-Type: text/plain\r\nthe body\r\n--b--\r\n", 0, "the body", 0, "read as the start of the body"},
		{"part body without a blank line, two lines", head + "--b\r\nContent-Type: text/plain\r\nline 1\r\nline 2\r\n--b--\r\n", 0, "line 1\nline 2", 0, "read as the start of the body"},
		{"delimiter at the end without a line break", head + part("text/plain", "hi") + "--b--", 0, "hi", 0, ""},
		{"part header ends the message", head + part("text/plain", "hi") + "--b\r\nContent-Type: text/plain", 0, "hi", 0, "ends inside the header of part 2"},
		{"empty nested alternative before the text", head + "--b\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\r\n" + part("text/plain", "real text") + "--b--\r\n", 0, "real text", 0, "part 1: multipart/alternative is empty"},
		{"nested multipart with text but no boundary line", head + "--b\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\nstray text\r\n" + part("text/plain", "real text") + "--b--\r\n", 0, "real text", 1, "kept as an attachment"},
		{"blank part without header", head + "--b\r\n\r\n\r\n" + part("text/plain", "hi") + "--b--\r\n", 0, "hi", 0, "part 1 is empty (no header, only blank lines"},
		{"blank part without header at the end", head + part("text/plain", "hi") + "--b\r\n\r\n--b--\r\n", 0, "hi", 0, "part 2 is empty (no header"},
		{"blank part without header, message cut", head + part("text/plain", "hi") + "--b\r\n\r\n  \r\n", 0, "hi", 1, "message ends inside part 2"},
		{"blank headerless digest part", "From: a@example.com\r\nContent-Type: multipart/digest; boundary=b\r\n\r\n--b\r\n\r\n--b--\r\n", 0, "", 0, "part 1 is empty (no header"},
		{"nested multipart without boundary parameter", head + "--b\r\nContent-Type: multipart/alternative\r\n\r\npreamble\r\n" + part("text/plain", "real text") + "--b--\r\n", 0, "real text", 1, "part 1: multipart/alternative without a boundary parameter; kept as an attachment"},
		{"blank nested multipart without boundary parameter", head + "--b\r\nContent-Type: multipart/alternative\r\n\r\n \r\n\r\n" + part("text/plain", "real text") + "--b--\r\n", 0, "real text", 0, "without a boundary parameter is blank; no body taken from it"},
		{"blank message without boundary parameter", "From: a@example.com\r\nContent-Type: multipart/mixed\r\n\r\n\r\n \r\n", 0, "", 0, "body: multipart/mixed without a boundary parameter is blank; no body taken from it"},
		{"message with a boundary over 1000 bytes", "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=" + strings.Repeat("x", 1001) + "\r\n\r\nsome text\r\n", 0, "some text\n", 0, "with a boundary longer than 1000 bytes; body kept as text"},
		{"CR before a near-delimiter", head + part("text/plain", "a\r\n--bx\r\r\n--b\rx") + "--b--\r\n", 0, "a\n--bx\r\n--b\rx", 0, ""},
		{"bare LF delimiters", "From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nlf text\n--b--\n", 0, "lf text", 0, ""},
		{"base64-encoded multipart", "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: base64\r\n\r\nLS1iDQpDb250ZW50LVR5cGU6IHRleHQvcGxhaW4NCg0KZW5jb2RlZCBtdWx0aXBhcnQNCi0tYg0KQ29udGVudC1UeXBlOiBpbWFnZS9wbmcNCg0KcG5nDQotLWItLQ0K\r\n", 0, "encoded multipart", 1, "not allowed for multiparts"},
		// RFC 2046 §5.1.1: only linear whitespace may follow a delimiter.
		{"garbage after a boundary", head + part("text/plain", "hi") + "--b garbage\r\n\r\nx\r\n--b--\r\n", 0, "hi\n--b garbage\n\nx", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := Parse(strings.NewReader(tt.raw), ParseOptions{MaxBodyBytes: tt.max})
			if err != nil {
				t.Fatal(err)
			}
			checkRecord(t, rec)
			if rec.Text != tt.text || len(rec.Attachments) != tt.attach {
				t.Errorf("text %q, %d attachments; want %q, %d (errors %q)", rec.Text, len(rec.Attachments), tt.text, tt.attach, rec.ParseErrors)
			}
			if (tt.errPart == "") != (len(rec.ParseErrors) == 0) || (tt.errPart != "" && !hasErr(rec, tt.errPart)) {
				t.Errorf("parse errors %q, want one containing %q", rec.ParseErrors, tt.errPart)
			}
			bytewise, err := Parse(iotest.OneByteReader(strings.NewReader(tt.raw)), ParseOptions{MaxBodyBytes: tt.max})
			if err != nil {
				t.Fatal(err)
			}
			if a, b := marshalGolden(t, rec), marshalGolden(t, bytewise); !bytes.Equal(a, b) {
				t.Errorf("record depends on read sizes:\n%s", lineDiff(string(a), string(b)))
			}
		})
	}
}
