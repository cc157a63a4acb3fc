package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"mailtap/internal/testimap"
)

// hostileMsg is one message of the hostile corpus. Its name says what is
// due: "bad-…" must carry parse_errors, "ok-…" must not, "odd-…" and
// "gen-…" may go either way but must still yield one sane record.
type hostileMsg struct {
	name string
	raw  []byte
}

// hostileCorpus is testdata/hostile/*.eml plus messages too big to keep as
// files, generated here.
func hostileCorpus(t *testing.T, canary string) []hostileMsg {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "hostile", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 40 {
		t.Fatalf("hostile corpus has %d files, want ≥ 40", len(paths))
	}
	var msgs []hostileMsg
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, hostileMsg{strings.TrimSuffix(filepath.Base(p), ".eml"), raw})
	}
	hdr := func(subject string) string {
		return "From: gen@example.com\nTo: rcpt@example.com\nSubject: " + subject +
			"\nMessage-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@hostile.example>\nMIME-Version: 1.0\n"
	}
	attach := func(b *strings.Builder, boundary, disp, body string) {
		fmt.Fprintf(b, "--%s\nContent-Type: application/octet-stream\nContent-Disposition: attachment; %s\n\n%s\n", boundary, disp, body)
	}

	// 60 multiparts deep, the text at the bottom.
	var b strings.Builder
	b.WriteString(hdr("deep nesting 60") + "Content-Type: multipart/mixed; boundary=\"d0\"\n\n")
	for i := 1; i < 60; i++ {
		fmt.Fprintf(&b, "--d%d\nContent-Type: multipart/mixed; boundary=\"d%d\"\n\n", i-1, i)
	}
	b.WriteString("--d59\nContent-Type: text/plain\n\nthe deepest part\n")
	for i := 59; i >= 0; i-- {
		fmt.Fprintf(&b, "--d%d--\n", i)
	}
	msgs = append(msgs, hostileMsg{"gen-deep-multipart-60", []byte(b.String())})

	// 60 forwarded messages deep.
	inner := "From: bottom@example.com\nSubject: bottom\n\nthe bottom message\n"
	for i := 1; i < 60; i++ {
		inner = fmt.Sprintf("From: level%d@example.com\nSubject: level %d\nMIME-Version: 1.0\nContent-Type: message/rfc822\n\n%s", i, i, inner)
	}
	msgs = append(msgs, hostileMsg{"gen-deep-rfc822-60", []byte(hdr("deep rfc822 60") + "Content-Type: message/rfc822\n\n" + inner)})

	// 200 attachments.
	b.Reset()
	b.WriteString(hdr("200 attachments") + "Content-Type: multipart/mixed; boundary=\"m\"\n\n--m\nContent-Type: text/plain\n\nmany\n")
	for i := 0; i < 200; i++ {
		attach(&b, "m", fmt.Sprintf("filename=\"file%03d.bin\"", i), fmt.Sprintf("content of attachment %d", i))
	}
	b.WriteString("--m--\n")
	msgs = append(msgs, hostileMsg{"gen-200-attachments", []byte(b.String())})

	// A 20,000-character line.
	msgs = append(msgs, hostileMsg{"gen-20000-char-line", []byte(hdr("long line") + "Content-Type: text/plain\n\n" + longLine + "\n")})

	// 1,000-byte names: ASCII, multi-byte UTF-8, RFC 2231 continuations.
	b.Reset()
	b.WriteString(hdr("1000 byte names") + "Content-Type: multipart/mixed; boundary=\"n\"\n\n--n\nContent-Type: text/plain\n\nnames\n")
	attach(&b, "n", "filename=\""+strings.Repeat("a", 996)+".txt\"", "ascii")
	attach(&b, "n", "filename*=UTF-8''"+strings.Repeat("%C3%A9", 498)+".txt", "two-byte runes")
	var cont strings.Builder
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&cont, "; filename*%d=\"%s\"", i, strings.Repeat("c", 50))
	}
	attach(&b, "n", strings.TrimPrefix(cont.String(), "; "), "continuations")
	b.WriteString("--n--\n")
	msgs = append(msgs, hostileMsg{"gen-1000-byte-names", []byte(b.String())})

	// A huge header: 5,000 fields and one of 200 KB.
	b.Reset()
	b.WriteString(hdr("huge header"))
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, "X-Filler-%d: %d\n", i, i)
	}
	b.WriteString("X-Huge: " + strings.Repeat("h", 200<<10) + "\n\nbody after a huge header\n")
	msgs = append(msgs, hostileMsg{"gen-huge-header", []byte(b.String())})

	// 64 KB of random bytes with a fixed seed.
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	msgs = append(msgs, hostileMsg{"gen-binary-garbage-64k", garbage})

	// Names aimed at a canary path outside the output dir: absolute and
	// relative. The canary must never exist afterwards.
	b.Reset()
	b.WriteString(hdr("escape canary") + "Content-Type: multipart/mixed; boundary=\"c\"\n\n--c\nContent-Type: text/plain\n\ncanary\n")
	attach(&b, "c", "filename=\""+canary+"/pwned\"", "absolute")
	attach(&b, "c", "filename=\""+strings.Repeat("../", 30)+strings.TrimPrefix(canary, "/")+"/pwned\"", "relative")
	attach(&b, "c", "filename*=UTF-8''"+strings.ReplaceAll(strings.Repeat("../", 30)+strings.TrimPrefix(canary, "/")+"/pwned2", "/", "%2F"), "encoded")
	b.WriteString("--c--\n")
	msgs = append(msgs, hostileMsg{"gen-escape-canary", []byte(b.String())})
	return msgs
}

var longLine = strings.Repeat("0123456789", 2000)

// hostileChecks are what particular messages must come out as, besides
// what every record must satisfy.
var hostileChecks = map[string]func(t *testing.T, r *hostileRecord){
	"ok-latin1-qp": func(t *testing.T, r *hostileRecord) {
		wantEq(t, "subject", r.Subject, "Café crème")
		wantIn(t, "text", r.Text, "Viele Grüße aus Köln")
	},
	"ok-windows1252": func(t *testing.T, r *hostileRecord) { wantIn(t, "text", r.Text, "“quoted” € euro …") },
	"ok-koi8r": func(t *testing.T, r *hostileRecord) {
		wantEq(t, "subject", r.Subject, "Привет")
		wantIn(t, "text", r.Text, "Привет, мир")
	},
	"ok-iso2022jp": func(t *testing.T, r *hostileRecord) {
		wantEq(t, "subject", r.Subject, "テスト")
		wantIn(t, "text", r.Text, "日本語のテキスト")
	},
	"ok-gb2312": func(t *testing.T, r *hostileRecord) {
		wantEq(t, "subject", r.Subject, "中文")
		wantIn(t, "text", r.Text, "中文邮件")
	},
	"ok-utf8-raw-headers": func(t *testing.T, r *hostileRecord) {
		wantIn(t, "subject", r.Subject, "Grüße, 世界")
		if len(r.From) != 1 || r.From[0].Name != "Jörg Müller" {
			t.Errorf("from %+v, want Jörg Müller", r.From)
		}
	},
	"ok-html-only": func(t *testing.T, r *hostileRecord) {
		wantIn(t, "html", r.HTML, "<h1>Title</h1>")
		wantIn(t, "text", r.Text, "Title")
		wantIn(t, "text", r.Text, "bold")
	},
	"ok-alternative": func(t *testing.T, r *hostileRecord) {
		wantIn(t, "text", r.Text, "plain part")
		wantIn(t, "html", r.HTML, "html part")
	},
	"ok-rfc2231-filename": func(t *testing.T, r *hostileRecord) {
		wantAttachments(t, r, 1)
		wantEq(t, "filename", r.Attachments[0].Filename, "€ rates ü.pdf")
	},
	"ok-forwarded-rfc822": func(t *testing.T, r *hostileRecord) {
		wantAttachments(t, r, 1)
		wantEq(t, "content_type", r.Attachments[0].ContentType, "message/rfc822")
	},
	"ok-inline-image-cid": func(t *testing.T, r *hostileRecord) {
		wantAttachments(t, r, 1)
		wantEq(t, "content_id", r.Attachments[0].ContentID, "img1@x")
		wantEq(t, "content_type", r.Attachments[0].ContentType, "image/png")
	},
	"odd-attach-dotdot":                    func(t *testing.T, r *hostileRecord) { wantAttachments(t, r, 3) },
	"odd-attach-etc-passwd":                func(t *testing.T, r *hostileRecord) { wantAttachments(t, r, 3) },
	"odd-attach-windows-devices":           func(t *testing.T, r *hostileRecord) { wantAttachments(t, r, 5) },
	"odd-attach-duplicate-names":           func(t *testing.T, r *hostileRecord) { wantAttachments(t, r, 3) },
	"odd-attach-hidden":                    func(t *testing.T, r *hostileRecord) { wantAttachments(t, r, 4) },
	"odd-attach-control-chars":             func(t *testing.T, r *hostileRecord) { wantAttachments(t, r, 3) },
	"odd-attach-bidi":                      func(t *testing.T, r *hostileRecord) { wantAttachments(t, r, 2) },
	"odd-attach-nul-in-name":               func(t *testing.T, r *hostileRecord) { wantAttachments(t, r, 2) },
	"odd-attach-dots-only":                 func(t *testing.T, r *hostileRecord) { wantAttachments(t, r, 4) },
	"odd-attach-encoded-word-name":         func(t *testing.T, r *hostileRecord) { wantAttachments(t, r, 1) },
	"odd-attach-name-only-in-content-type": func(t *testing.T, r *hostileRecord) { wantAttachments(t, r, 1) },
	"odd-subject-escapes": func(t *testing.T, r *hostileRecord) {
		wantIn(t, "subject", r.Subject, "red") // decoded, escapes kept as JSON escapes
	},
	"gen-deep-multipart-60": func(t *testing.T, r *hostileRecord) {
		if !strings.Contains(r.Text, "the deepest part") && len(r.ParseErrors) == 0 {
			t.Errorf("60-deep text neither extracted nor reported as a parse error")
		}
	},
	"gen-200-attachments": func(t *testing.T, r *hostileRecord) { wantAttachments(t, r, 200) },
	"gen-20000-char-line": func(t *testing.T, r *hostileRecord) { wantIn(t, "text", r.Text, longLine) },
	"gen-1000-byte-names": func(t *testing.T, r *hostileRecord) { wantAttachments(t, r, 3) },
	"gen-escape-canary":   func(t *testing.T, r *hostileRecord) { wantAttachments(t, r, 3) },
	"gen-huge-header": func(t *testing.T, r *hostileRecord) {
		wantIn(t, "text", r.Text, "body after a huge header")
		wantEq(t, "subject", r.Subject, "huge header")
	},
}

func wantEq(t *testing.T, field, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", field, got, want)
	}
}

func wantIn(t *testing.T, field, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Errorf("%s = %.300q, want it to contain %.100q", field, got, want)
	}
}

func wantAttachments(t *testing.T, r *hostileRecord, n int) {
	t.Helper()
	if len(r.Attachments) != n {
		t.Fatalf("%d attachments, want %d", len(r.Attachments), n)
	}
	for i, a := range r.Attachments {
		if a.SavedAs == nil {
			t.Errorf("attachment %d (%q) not saved with attachments \"save\"", i, a.Filename)
		}
	}
}

// hostileRecord is a record with the fields the hostile checks read.
type hostileRecord struct {
	record
	From []struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	} `json:"from"`
	Attachments []struct {
		Filename    string  `json:"filename"`
		ContentType string  `json:"content_type"`
		ContentID   string  `json:"content_id"`
		Size        int64   `json:"size"`
		SHA256      string  `json:"sha256"`
		SavedAs     *string `json:"saved_as"`
	} `json:"attachments"`
}

// TestHostile_corpusYieldsSaneRecords delivers ≥ 40 malformed and
// malicious messages straight into Dovecot's maildir (the way an MDA
// would, so Dovecot's APPEND checks do not filter them), runs
// `mailtap --once` with attachments saved and raw copies kept, and checks:
// exit 0 and no panic; exactly one record per message, valid against
// docs/record.schema.json, valid UTF-8 with control characters only as
// escapes; parse_errors where due; every saved file inside
// <out>/<account>/<mailbox>/, matching its record's size and sha256; and
// nothing written anywhere else.
func TestHostile_corpusYieldsSaneRecords(t *testing.T) {
	binary(t)
	t.Parallel()
	canary := filepath.Join("/tmp", fmt.Sprintf("mailtap-e2e-canary-%d", time.Now().UnixNano()))
	t.Cleanup(func() { os.RemoveAll(canary) })
	msgs := hostileCorpus(t, canary)
	passwd := fileSum(t, "/etc/passwd")

	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})
	byUID := map[uint32]hostileMsg{}
	for _, m := range msgs {
		maildirDeliver(t, dc, m.raw)
		st := dc.Status(t, "INBOX") // makes Dovecot pick the file up
		uid := st.UIDNext - 1
		if _, dup := byUID[uid]; dup || st.Messages != uint32(len(byUID)+1) {
			t.Fatalf("%s: Dovecot did not take it as message %d (status %+v)", m.name, len(byUID)+1, st)
		}
		byUID[uid] = m
	}
	uv := dc.Status(t, "INBOX").UIDValidity

	// Output three levels below the sandbox, so "../../x" has somewhere to
	// land if it escapes.
	sandbox := t.TempDir()
	out := filepath.Join(sandbox, "a", "b", "c", "out")
	cfg := baseConfig(dc, out)
	cfg.Output.Attachments, cfg.Output.SaveRaw = "save", true
	started := time.Now()
	p := startMailtap(t, runOpts{args: []string{"--once", "--log-format", "json", "-c", cfg.Write(t)}})
	if code := p.exitCode(3 * time.Minute); code != 0 {
		t.Fatalf("mailtap --once exited %d on the hostile corpus", code)
	}
	t.Logf("%d hostile messages captured by --once in %s", len(msgs), time.Since(started).Round(time.Millisecond))
	assertNoPanic(t, p)

	schema := compileSchema(t)
	recs := readRecords(t, out)
	if len(recs) != len(msgs) {
		t.Errorf("%d records for %d messages", len(recs), len(msgs))
	}
	seen := map[uint32]bool{}
	for _, r := range recs {
		m, ok := byUID[r.UID]
		if !ok || r.UIDValidity != uv {
			t.Errorf("record %s for no delivered message", r.path)
			continue
		}
		seen[r.UID] = true
		t.Run(m.name, func(t *testing.T) {
			checkHostileRecord(t, schema, out, r, m)
		})
	}
	for uid, m := range byUID {
		if !seen[uid] {
			t.Errorf("%s (uid %d): no record", m.name, uid)
		}
	}

	assertOnlyRecords(t, out)
	// Nothing outside the output dir: the sandbox holds only a/b/c/out.
	filepath.WalkDir(sandbox, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		if p == out {
			return fs.SkipDir
		}
		if rel, _ := filepath.Rel(sandbox, p); !slices.Contains([]string{".", "a", "a/b", "a/b/c"}, rel) {
			t.Errorf("written outside the output dir: %s", p)
		}
		return nil
	})
	if _, err := os.Stat(canary); err == nil {
		t.Errorf("an attachment name escaped to %s", canary)
	}
	if fileSum(t, "/etc/passwd") != passwd {
		t.Errorf("/etc/passwd changed while mailtap captured a message with an attachment named /etc/passwd")
	}
}

func checkHostileRecord(t *testing.T, schema *jsonschema.Schema, out string, r record, m hostileMsg) {
	raw := r.raw
	if !utf8.Valid(raw) {
		t.Errorf("record is not valid UTF-8")
	}
	for i, c := range string(raw) {
		if c != '\n' && unicode.Is(unicode.Cc, c) {
			t.Errorf("raw control character %U at byte %d: %.80q", c, i, raw[max(0, i-40):min(len(raw), i+40)])
			break
		}
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(v); err != nil {
		t.Errorf("record does not match docs/record.schema.json: %v", err)
	}
	var hr hostileRecord
	if err := json.Unmarshal(raw, &hr); err != nil {
		t.Fatal(err)
	}
	hr.record = r
	switch {
	case strings.HasPrefix(m.name, "bad-") && len(hr.ParseErrors) == 0:
		t.Errorf("malformed message without parse_errors")
	case strings.HasPrefix(m.name, "ok-") && len(hr.ParseErrors) > 0:
		t.Errorf("well-formed message with parse_errors %q", hr.ParseErrors)
	}

	base := fmt.Sprintf("%d-%010d", r.UIDValidity, r.UID)
	prefix := path.Join(testAccount, "INBOX", base) + "/"
	names := map[string]bool{}
	for i, a := range hr.Attachments {
		if a.SavedAs == nil {
			continue
		}
		rel := *a.SavedAs
		name := strings.TrimPrefix(rel, prefix)
		if !strings.HasPrefix(rel, prefix) || path.Clean(rel) != rel || strings.Contains(name, "/") || name == "" || name == "." || name == ".." {
			t.Errorf("attachment %d (%q) saved_as %q, want a plain name in %s", i, a.Filename, rel, prefix)
			continue
		}
		if len(name) > 255 {
			t.Errorf("attachment %d: saved name is %d bytes, more than filesystems allow", i, len(name))
		}
		if names[strings.ToLower(name)] {
			t.Errorf("attachment %d: saved_as %q used twice", i, rel)
		}
		names[strings.ToLower(name)] = true
		data, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(rel)))
		if err != nil {
			t.Errorf("attachment %d: %v", i, err)
			continue
		}
		sum := sha256.Sum256(data)
		if int64(len(data)) != a.Size || hex.EncodeToString(sum[:]) != a.SHA256 {
			t.Errorf("attachment %d: file has %d bytes sha256 %x, record says %d bytes %s", i, len(data), sum, a.Size, a.SHA256)
		}
	}
	if eml, err := os.Stat(filepath.Join(mailboxDir(out), base+".eml")); err != nil {
		t.Errorf("raw copy: %v", err)
	} else if eml.Size() != hr.Size {
		t.Errorf("raw copy has %d bytes, record size is %d", eml.Size(), hr.Size)
	}
	if check := hostileChecks[m.name]; check != nil {
		check(t, &hr)
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	s, err := c.Compile(filepath.Join("..", "docs", "record.schema.json"))
	if err != nil {
		t.Fatalf("compile the record schema: %v", err)
	}
	return s
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
