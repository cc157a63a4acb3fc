package testimap

import (
	"bytes"
	"fmt"
	"mime"
	"strings"
	"sync/atomic"
	"time"
)

var (
	msgSeq atomic.Uint64
	// msgEpoch keeps Message-IDs unique across test processes too, so two
	// runs writing into one output dir never collide on message_id.
	msgEpoch = time.Now().UnixNano()
)

// MsgDate is the Date header of message n built by Msg: a fixed base plus n
// minutes, so records made from these messages are reproducible.
func MsgDate(n int) time.Time {
	return time.Date(2024, time.March, 1, 9, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Minute)
}

// Msg builds a small valid RFC 5322 message (CRLF line ends, text/plain
// UTF-8) with the given subject and sequence number n. The subject is RFC
// 2047 encoded when it is not ASCII. Every call gets a unique Message-ID
// (<n.seq.epoch@testimap.example>); everything else depends only on subject
// and n.
func Msg(subject string, n int) []byte {
	return MsgBody(subject, n, fmt.Sprintf("This is test message %d.\r\n", n))
}

// MsgBody is Msg with a caller-chosen text/plain body. Bare LF line ends in
// body are turned into CRLF.
func MsgBody(subject string, n int, body string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Test Sender <sender@example.com>\r\n")
	fmt.Fprintf(&b, "To: Test Recipient <rcpt@example.com>\r\n")
	fmt.Fprintf(&b, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&b, "Date: %s\r\n", MsgDate(n).Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%d.%d.%d@testimap.example>\r\n", n, msgSeq.Add(1), msgEpoch)
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\n")
	fmt.Fprintf(&b, "Content-Transfer-Encoding: 8bit\r\n")
	b.WriteString("\r\n")
	body = strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n")
	b.WriteString(body)
	return b.Bytes()
}

// MsgSized is Msg padded with text lines until the message is at least size
// bytes, for throughput and memory tests.
func MsgSized(subject string, n int, size int) []byte {
	const line = "0123456789 the quick brown fox jumps over the lazy dog 0123456789\r\n"
	head := Msg(subject, n)
	if len(head) >= size {
		return head
	}
	var b bytes.Buffer
	b.Grow(size + len(line))
	b.Write(head)
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()
}

// testMsgs builds n messages with subjects "test message i", i = 1..n.
func testMsgs(n int) [][]byte {
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = Msg(fmt.Sprintf("test message %d", i+1), i+1)
	}
	return msgs
}
