package watcher

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestEncodeModifiedUTF7(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"INBOX", "INBOX"},
		{"Lists/golang", "Lists/golang"},
		{"Tom & Jerry", "Tom &- Jerry"},
		// RFC 3501 §5.1.3's example.
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"Entwürfe", "Entw&APw-rfe"},
		{"😀", "&2D3eAA-"},
	} {
		if got := encodeModifiedUTF7(tc.in); got != tc.want {
			t.Errorf("encodeModifiedUTF7(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNotifyCommand(t *testing.T) {
	got, err := notifyCommand([]string{"INBOX", `a "quoted" \name`, "Entwürfe"})
	if err != nil {
		t.Fatal(err)
	}
	want := `NOTIFY SET (selected (MessageNew MessageExpunge)) (mailboxes ("INBOX" "a \"quoted\" \\name" "Entw&APw-rfe") (MessageNew MessageExpunge))`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// A hostile name cannot break the command line: controls are encoded.
	if got, err := notifyCommand([]string{"bad\r\nname"}); err != nil || strings.ContainsAny(got, "\r\n") {
		t.Errorf("a name with CRLF gave %q, %v", got, err)
	}
}

func TestNoopTag(t *testing.T) {
	for in, want := range map[string]string{"T12 NOOP\r\n": "T12", "A1.2 NOOP\r\n": "A1.2"} {
		if got, ok := noopTag([]byte(in)); !ok || got != want {
			t.Errorf("noopTag(%q) = %q, %v", in, got, ok)
		}
	}
	for _, in := range []string{"T1 NOOP", "T1 IDLE\r\n", " NOOP\r\n", "T1 X NOOP\r\n", "T1 NOOP\r\nT2 NOOP\r\n"} {
		if _, ok := noopTag([]byte(in)); ok {
			t.Errorf("noopTag(%q) took it for one NOOP", in)
		}
	}
}

// TestStatusScanner feeds a server stream in every split and checks that
// only real untagged STATUS responses are reported: never one inside a
// literal (a message body), nor a continuation line after a literal.
func TestStatusScanner(t *testing.T) {
	body := "Subject: x\r\n\r\n* STATUS \"Fake\" (UIDNEXT 9)\r\n"
	stream := "* OK [CAPABILITY IMAP4rev1 NOTIFY] hi\r\n" +
		"* STATUS \"INBOX\" (MESSAGES 3 UIDNEXT 4)\r\n" +
		"* 3 FETCH (UID 3 BODY[] {" + strconv.Itoa(len(body)) + "}\r\n" + body + ")\r\n" +
		"* STATUS Lists/golang (UIDNEXT 7 uidvalidity 42)\r\n" +
		"* STATUS \"a \\\"q\\\" b\" (UIDNEXT 2)\r\n" +
		"* STATUS \"Entw&APw-rfe\" (UIDNEXT 5)\r\n" +
		"* STATUS {5}\r\nSent! (UIDNEXT 2)\r\n" +
		"T4 OK done\r\n"
	want := []statusNews{{"INBOX", 4, 0}, {"Lists/golang", 7, 42}, {`a "q" b`, 2, 0}, {}, {}}
	for split := 1; split <= len(stream); split++ {
		var got []statusNews
		sc := statusScanner{on: func(n statusNews) { got = append(got, n) }}
		for i := 0; i < len(stream); i += split {
			sc.feed([]byte(stream[i:min(i+split, len(stream))]))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pieces of %d bytes: reported %+v, want %+v", split, got, want)
		}
	}
}

func TestConnBudget(t *testing.T) {
	b := newConnBudget(3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rel []func()
	for range 3 {
		r, err := b.acquire(ctx, func() {})
		if err != nil {
			t.Fatal(err)
		}
		rel = append(rel, r)
	}
	// A fourth waits until one is released, even released twice.
	got := make(chan func(), 1)
	go func() {
		r, err := b.acquire(ctx, func() {})
		if err == nil {
			got <- r
		}
	}()
	select {
	case <-got:
		t.Fatal("a fourth connection was allowed with a budget of 3")
	case <-time.After(50 * time.Millisecond):
	}
	rel[0]()
	rel[0]()
	r4 := <-got
	if _, inUse, _ := b.snapshot(); inUse != 3 {
		t.Fatalf("in use %d after a double release, want 3", inUse)
	}
	// Refused while holding 3: the server allows 2.
	now := time.Unix(1000, 0)
	b.refused(now)
	if limit, _, _ := b.snapshot(); limit != 2 {
		t.Fatalf("limit %d after a refusal at 3 in use, want 2", limit)
	}
	if b.regrow(now.Add(regrowAfter - time.Second)) {
		t.Fatal("grew back before regrowAfter")
	}
	if !b.regrow(now.Add(regrowAfter)) {
		t.Fatal("did not grow back after regrowAfter")
	}
	if limit, _, _ := b.snapshot(); limit != 3 {
		t.Fatalf("limit %d after growing back, want 3", limit)
	}
	// Never below one.
	for range 5 {
		b.refused(now)
	}
	if limit, _, _ := b.snapshot(); limit != 1 {
		t.Fatalf("limit %d after many refusals, want 1", limit)
	}
	r4()
	rel[1]()
	rel[2]()
}
