package bench

import (
	"bytes"
	"mailtap/mailparse"
	"testing"
)

func TestCorpus_deterministic(t *testing.T) {
	a, b := Message(DefaultSeed, 7), Message(DefaultSeed, 7)
	if !bytes.Equal(a, b) {
		t.Fatal("message 7 differs between two calls with the same seed")
	}
	if bytes.Equal(Message(DefaultSeed, 7), Message(DefaultSeed+1, 7)) {
		t.Fatal("message 7 is the same under two seeds")
	}
	if bytes.Equal(Message(DefaultSeed, 7), Message(DefaultSeed, 8)) {
		t.Fatal("messages 7 and 8 are equal")
	}
}

// TestCorpus_shape checks the first 1,000 messages: every one parses
// without parse errors, the mix contains every kind, non-ASCII text and
// attachments, and the average size is near 20 KB.
func TestCorpus_shape(t *testing.T) {
	const n = 1000
	var total int
	kinds := map[Kind]int{}
	var nonASCII, withAttachments int
	for i := 0; i < n; i++ {
		m := Message(DefaultSeed, i)
		total += len(m)
		kinds[KindOf(DefaultSeed, i)]++
		if !bytes.Contains(m, []byte("\r\n")) || bytes.Contains(bytes.ReplaceAll(m, []byte("\r\n"), nil), []byte("\n")) {
			t.Fatalf("message %d: line ends are not all CRLF", i)
		}
		rec, err := mailparse.Parse(bytes.NewReader(m), mailparse.ParseOptions{})
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if len(rec.ParseErrors) > 0 {
			t.Fatalf("message %d (%s): parse errors %q\n%s", i, KindOf(DefaultSeed, i), rec.ParseErrors, head(m))
		}
		if rec.Subject == "" || len(rec.From) != 1 || rec.Date == nil {
			t.Fatalf("message %d: subject %q, from %v, date %v", i, rec.Subject, rec.From, rec.Date)
		}
		if rec.Text == "" {
			t.Fatalf("message %d (%s): no text", i, KindOf(DefaultSeed, i))
		}
		if !isASCII(rec.Text + rec.Subject) {
			nonASCII++
		}
		if len(rec.Attachments) > 0 {
			withAttachments++
		}
	}
	for k := KindPlain; k <= KindForward; k++ {
		if kinds[k] == 0 {
			t.Errorf("no message of kind %s in %d", k, n)
		}
	}
	avg := total / n
	t.Logf("%d messages: average %d bytes, kinds %v, %d non-ASCII, %d with attachments", n, avg, kinds, nonASCII, withAttachments)
	if avg < 14_000 || avg > 28_000 {
		t.Errorf("average size %d bytes, want about 20 KB", avg)
	}
	if nonASCII < n/5 {
		t.Errorf("%d of %d messages have non-ASCII text, want about a third", nonASCII, n)
	}
}

func TestLargeMessage(t *testing.T) {
	const size = 3 << 20
	m := LargeMessage(DefaultSeed, size)
	if len(m) < size*99/100 || len(m) > size {
		t.Fatalf("LargeMessage(%d) is %d bytes", size, len(m))
	}
	rec, err := mailparse.Parse(bytes.NewReader(m), mailparse.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Attachments) != 1 || rec.Attachments[0].Size < size*7/10 || len(rec.ParseErrors) > 0 {
		t.Fatalf("attachments %+v, parse errors %q", rec.Attachments, rec.ParseErrors)
	}
}

func head(m []byte) []byte {
	if len(m) > 3000 {
		return m[:3000]
	}
	return m
}
