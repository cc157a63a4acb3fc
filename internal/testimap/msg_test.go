package testimap

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-message/mail"
)

func TestMsg_isValidAndUnique(t *testing.T) {
	a, b := Msg("Grüße 📬", 3), Msg("Grüße 📬", 3)
	ids := map[string]bool{}
	for _, raw := range [][]byte{a, b} {
		if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
			t.Fatalf("bare LF in %q", raw)
		}
		r, err := mail.CreateReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		subject, err := r.Header.Subject()
		if err != nil || subject != "Grüße 📬" {
			t.Fatalf("subject = %q, %v", subject, err)
		}
		if raw := r.Header.Get("Subject"); !strings.HasPrefix(raw, "=?utf-8?") {
			t.Fatalf("non-ASCII subject not RFC 2047 encoded: %q", raw)
		}
		date, err := r.Header.Date()
		if err != nil || !date.Equal(MsgDate(3)) {
			t.Fatalf("date = %v, %v; want %v", date, err, MsgDate(3))
		}
		id, err := r.Header.MessageID()
		if err != nil || id == "" {
			t.Fatalf("message-id = %q, %v", id, err)
		}
		ids[id] = true
		from, err := r.Header.AddressList("From")
		if err != nil || len(from) != 1 {
			t.Fatalf("from = %v, %v", from, err)
		}
	}
	if len(ids) != 2 {
		t.Fatalf("two Msg calls share a Message-ID: %v", ids)
	}
}

func TestMsgSized(t *testing.T) {
	raw := MsgSized("big", 1, 100_000)
	if len(raw) < 100_000 || len(raw) > 100_100 {
		t.Fatalf("MsgSized(100000) is %d bytes", len(raw))
	}
	if _, err := mail.CreateReader(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
}

func TestAppendUIDs(t *testing.T) {
	tests := []struct {
		line    string
		want    []uint32
		wantErr bool
	}{
		{"b0 OK [APPENDUID 1700000000 5:8] Append completed.", []uint32{5, 6, 7, 8}, false},
		{"b0 OK [APPENDUID 1 3,9:10] done", []uint32{3, 9, 10}, false},
		{"b0 OK [APPENDUID 1 12] done", []uint32{12}, false},
		{"b0 OK Append completed.", nil, true},
		{"b0 OK [APPENDUID 1 x:y] done", nil, true},
	}
	for _, tt := range tests {
		got, err := appendUIDs(tt.line)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("appendUIDs(%q) = %v, %v; want %v (error %v)", tt.line, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseStatus(t *testing.T) {
	st, err := parseStatus("mailbox\tmessages\tuidnext\tuidvalidity\nINBOX\t3\t4\t1700000000\n")
	if err != nil || st != (MailboxStatus{Messages: 3, UIDNext: 4, UIDValidity: 1700000000}) {
		t.Fatalf("parseStatus = %+v, %v", st, err)
	}
	for _, bad := range []string{"", "messages\tuidnext\n3\n", "messages\tuidnext\tuidvalidity\n3\tx\t1\n", "messages\n3\n"} {
		if _, err := parseStatus(bad); err == nil {
			t.Errorf("parseStatus(%q) succeeded", bad)
		}
	}
}

func TestQuoted(t *testing.T) {
	if got := quoted(`a "b" \c`); got != `"a \"b\" \\c"` {
		t.Fatalf("quoted = %s", got)
	}
}
