package watcher

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2/imapclient"

	"mailtap/config"
)

// NOTIFY (RFC 5465) lets one connection hear of new mail in every mailbox
// of the account: after NOTIFY SET, the server sends "* STATUS <mailbox>
// (UIDNEXT … MESSAGES …)" for a mailbox that is not selected. imapclient
// (go-imap v2 beta.8) can neither send NOTIFY nor hand unsolicited STATUS
// to its caller, so the shared connection carries a tap between imapclient
// and TLS (tapConn): it rewrites one NOOP of ours into the NOTIFY SET
// command, under the same tag, so imapclient sees its own NOOP complete;
// and it reads the plain-text stream for STATUS lines, skipping literals,
// to learn which mailbox changed. What imapclient reads is untouched.

// tapConn sits between imapclient and the (TLS) connection.
type tapConn struct {
	net.Conn
	r io.Reader // what imapclient reads: Conn, maybe behind a greeting

	mu      sync.Mutex
	rewrite string // replaces the next NOOP's command line, once
	rewrote bool

	scan statusScanner
}

// newTapConn reports every STATUS line to onStatus, the answers to our own
// STATUS commands too: each carries the UIDNEXT it was computed with, so
// the lane can tell news from what it already has by comparing numbers,
// never by guessing which line answers which command.
func newTapConn(c net.Conn, prefix []byte, onStatus func(statusNews)) *tapConn {
	t := &tapConn{Conn: c, r: c}
	if len(prefix) > 0 {
		t.r = io.MultiReader(bytes.NewReader(prefix), c)
	}
	t.scan.on = onStatus
	return t
}

func (t *tapConn) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.scan.feed(p[:n])
	}
	return n, err
}

func (t *tapConn) Write(p []byte) (int, error) {
	t.mu.Lock()
	rw := t.rewrite
	t.mu.Unlock()
	if rw != "" {
		if tag, ok := noopTag(p); ok {
			t.mu.Lock()
			t.rewrite, t.rewrote = "", true
			t.mu.Unlock()
			if _, err := t.Conn.Write([]byte(tag + " " + rw + "\r\n")); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return t.Conn.Write(p)
}

// noopTag returns the tag of a write that is exactly one NOOP command.
func noopTag(p []byte) (string, bool) {
	tag, ok := bytes.CutSuffix(p, []byte(" NOOP\r\n"))
	if !ok || len(tag) == 0 || len(tag) > 32 {
		return "", false
	}
	for _, b := range tag {
		if b <= ' ' || b >= 0x7f || b == '(' || b == ')' || b == '{' || b == '"' || b == '\\' || b == '%' || b == '*' || b == '+' {
			return "", false
		}
	}
	return string(tag), true
}

// sendNotify sets NOTIFY for names (mailboxes that exist): new mail and
// expunges of each, and of the selected mailbox, are announced.
func sendNotify(c *imapclient.Client, t *tapConn, names []string) error {
	cmd, err := notifyCommand(names)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.rewrite, t.rewrote = cmd, false
	t.mu.Unlock()
	err = c.Noop().Wait()
	t.mu.Lock()
	rewrote := t.rewrote
	t.rewrite = ""
	t.mu.Unlock()
	if err != nil {
		return fmt.Errorf("notify set: %w", err)
	}
	if !rewrote {
		return errors.New("notify set: the command could not be sent")
	}
	return nil
}

// notifyCommand builds NOTIFY SET for names (RFC 5465 §6 syntax).
func notifyCommand(names []string) (string, error) {
	var b strings.Builder
	b.WriteString("NOTIFY SET (selected (MessageNew MessageExpunge))")
	if len(names) > 0 {
		b.WriteString(" (mailboxes (")
		for i, n := range names {
			if i > 0 {
				b.WriteByte(' ')
			}
			q, err := quoteMailbox(n)
			if err != nil {
				return "", err
			}
			b.WriteString(q)
		}
		b.WriteString(") (MessageNew MessageExpunge))")
	}
	return b.String(), nil
}

// quoteMailbox encodes a mailbox name for the wire: modified UTF-7
// (RFC 3501 §5.1.3) in a quoted string.
func quoteMailbox(name string) (string, error) {
	enc := encodeModifiedUTF7(name)
	if strings.ContainsAny(enc, "\r\n\x00") {
		return "", fmt.Errorf("mailbox name %q cannot be sent in a quoted string", name)
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(enc) + `"`, nil
}

// encodeModifiedUTF7 is RFC 3501 §5.1.3: printable ASCII stays, "&"
// becomes "&-", anything else is UTF-16 in base64 with "," for "/"
// between "&" and "-".
func encodeModifiedUTF7(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"
	var b strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		b.WriteByte('&')
		var bits, n uint32
		for _, u := range run {
			for _, by := range []byte{byte(u >> 8), byte(u)} {
				bits = bits<<8 | uint32(by)
				n += 8
				for n >= 6 {
					n -= 6
					b.WriteByte(alphabet[(bits>>n)&0x3f])
				}
			}
		}
		if n > 0 {
			b.WriteByte(alphabet[(bits<<(6-n))&0x3f])
		}
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		if r == utf8.RuneError {
			r = '\uFFFD'
		}
		run = utf16.AppendRune(run, r)
	}
	flush()
	return b.String()
}

// statusScanner finds the untagged STATUS responses in the server's
// stream. It sees the bytes as they are read, in pieces of any size, and
// skips literals ({n} at a line's end), so a message body that happens to
// hold "* STATUS" is never taken for one.
type statusScanner struct {
	on   func(statusNews)
	head []byte // the current line's start, capped
	tail []byte // its last bytes, for the literal marker
	skip int64  // literal bytes still to pass over
	cont bool   // this line continues a response after a literal
}

const (
	scanHeadMax = 512
	scanTailMax = 24
)

func (sc *statusScanner) feed(p []byte) {
	for len(p) > 0 {
		if sc.skip > 0 {
			n := min(int64(len(p)), sc.skip)
			p, sc.skip = p[n:], sc.skip-n
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			sc.add(p)
			return
		}
		sc.add(p[:i+1])
		p = p[i+1:]
		sc.endLine()
	}
}

func (sc *statusScanner) add(p []byte) {
	if room := scanHeadMax - len(sc.head); room > 0 {
		sc.head = append(sc.head, p[:min(room, len(p))]...)
	}
	sc.tail = append(sc.tail, p...)
	if len(sc.tail) > scanTailMax {
		sc.tail = append(sc.tail[:0], sc.tail[len(sc.tail)-scanTailMax:]...)
	}
}

func (sc *statusScanner) endLine() {
	start := !sc.cont
	head := sc.head
	lit, isLit := literalSize(sc.tail)
	if start && bytes.HasPrefix(head, []byte("* STATUS ")) && sc.on != nil {
		var news statusNews
		name, rest, ok := statusMailbox(head[len("* STATUS "):])
		if ok && !isLit {
			news.mailbox = string(name)
			news.uidNext, news.uidValidity = statusNumbers(rest)
		}
		sc.on(news)
	}
	sc.head, sc.tail = sc.head[:0], sc.tail[:0]
	sc.cont = isLit
	if isLit {
		sc.skip = lit
	}
}

// literalSize reads "{n}\r\n" or "{n+}\r\n" at the end of a line.
func literalSize(tail []byte) (int64, bool) {
	t, ok := bytes.CutSuffix(tail, []byte("}\r\n"))
	if !ok {
		return 0, false
	}
	i := bytes.LastIndexByte(t, '{')
	if i < 0 {
		return 0, false
	}
	digits := bytes.TrimSuffix(t[i+1:], []byte("+"))
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// statusNews is one STATUS line: its mailbox ("" when it could not be
// read: check every mailbox) and the UIDNEXT and UIDVALIDITY it gave (0
// when absent; RFC 5465's announcements carry UIDNEXT and MESSAGES).
type statusNews struct {
	mailbox     string
	uidNext     uint32
	uidValidity uint32
}

// statusMailbox reads the mailbox of a STATUS line, a quoted string or an
// atom, and returns what follows it. A name in modified UTF-7 (with "&")
// is reported as unreadable, which makes the caller check every mailbox:
// correct, only slower.
func statusMailbox(p []byte) (name, rest []byte, ok bool) {
	if len(p) > 0 && p[0] == '"' {
		esc := false
		end := -1
		for i, b := range p[1:] {
			switch {
			case esc:
				name, esc = append(name, b), false
			case b == '\\':
				esc = true
			case b == '"':
				end = i + 2
			default:
				name = append(name, b)
			}
			if end >= 0 {
				break
			}
		}
		if end < 0 {
			return nil, nil, false
		}
		rest = p[end:]
	} else {
		i := bytes.IndexAny(p, " \r\n")
		if i <= 0 {
			return nil, nil, false
		}
		name, rest = p[:i], p[i:]
	}
	if bytes.IndexByte(name, '&') >= 0 {
		return nil, nil, false
	}
	for _, b := range name {
		if b < 0x20 || b >= 0x7f {
			return nil, nil, false
		}
	}
	return name, rest, true
}

// statusNumbers reads UIDNEXT and UIDVALIDITY from a STATUS line's
// attribute list, "(MESSAGES 3 UIDNEXT 4)"; 0 for one that is absent or
// not a number.
func statusNumbers(p []byte) (uidNext, uidValidity uint32) {
	open, end := bytes.IndexByte(p, '('), bytes.IndexByte(p, ')')
	if open < 0 || end < open {
		return 0, 0
	}
	f := bytes.Fields(p[open+1 : end])
	for i := 0; i+1 < len(f); i += 2 {
		n, err := strconv.ParseUint(string(f[i+1]), 10, 32)
		if err != nil {
			continue
		}
		switch {
		case bytes.EqualFold(f[i], []byte("UIDNEXT")):
			uidNext = uint32(n)
		case bytes.EqualFold(f[i], []byte("UIDVALIDITY")):
			uidValidity = uint32(n)
		}
	}
	return uidNext, uidValidity
}

// dialTapped is dial for the shared connection: the same steps, with a
// tapConn above TLS. STARTTLS is done here, not by imapclient (which would
// put TLS above the tap): the greeting is read, STARTTLS sent and
// answered, then imapclient starts on the TLS connection with a greeting
// of our own, and asks for the capabilities again as RFC 3501 §6.2.1
// requires.
func dialTapped(ctx context.Context, acct *config.Account, w *config.Watch, opts *imapclient.Options, contact *atomic.Int64, onStatus func(statusNews)) (*imapclient.Client, *deadlineConn, *tapConn, error) {
	addr := net.JoinHostPort(acct.Host, strconv.Itoa(acct.Port))
	d := net.Dialer{Timeout: w.ResponseTimeout.Duration, KeepAlive: 30 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to %s: %w", addr, dialCause(err))
	}
	dc := &deadlineConn{Conn: raw, writeTimeout: w.ResponseTimeout.Duration, contact: contact}
	dc.expect(w.ResponseTimeout.Duration)
	fail := func(err error) (*imapclient.Client, *deadlineConn, *tapConn, error) {
		raw.Close()
		return nil, nil, nil, err
	}
	handshake := func(under net.Conn) (*tls.Conn, error) {
		cfg, err := tlsConfig(acct)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(under, cfg)
		hctx, cancel := context.WithTimeout(ctx, w.ResponseTimeout.Duration)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			return nil, tlsError(addr, err)
		}
		return tc, nil
	}
	var tap *tapConn
	switch acct.TLS {
	case "implicit", "":
		tc, err := handshake(dc)
		if err != nil {
			return fail(err)
		}
		tap = newTapConn(tc, nil, onStatus)
	case "starttls":
		br := bufio.NewReader(dc)
		greeting, err := br.ReadString('\n')
		if err != nil {
			return fail(fmt.Errorf("greeting from %s: %w", addr, err))
		}
		if g := strings.ToUpper(greeting); strings.HasPrefix(g, "* BYE") {
			return fail(fmt.Errorf("greeting from %s: %w at the greeting: %s (too many connections or temporarily unavailable; retrying slowly)",
				addr, ErrServerBusy, strings.TrimSpace(greeting[min(len(greeting), 6):])))
		} else if !strings.HasPrefix(g, "* OK") {
			return fail(fmt.Errorf("greeting from %s: unexpected %q", addr, strings.TrimSpace(greeting)))
		}
		if _, err := dc.Write([]byte("M0 STARTTLS\r\n")); err != nil {
			return fail(fmt.Errorf("starttls with %s: %w", addr, err))
		}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return fail(fmt.Errorf("starttls with %s: %w", addr, err))
			}
			if strings.HasPrefix(line, "* ") {
				continue
			}
			if !strings.HasPrefix(strings.ToUpper(line), "M0 OK") {
				return fail(tlsError(addr, fmt.Errorf("starttls: server answered %q", strings.TrimSpace(line))))
			}
			break
		}
		if br.Buffered() > 0 {
			// Bytes before the handshake would be read as if protected by
			// TLS: the plaintext-injection attack of RFC 2595 §2.
			return fail(fmt.Errorf("starttls with %s: server sent data before the TLS handshake", addr))
		}
		tc, err := handshake(dc)
		if err != nil {
			return fail(err)
		}
		tap = newTapConn(tc, []byte("* OK TLS started\r\n"), onStatus)
	case "none":
		tap = newTapConn(dc, nil, onStatus)
	default:
		return fail(fmt.Errorf("unknown tls mode %q", acct.TLS))
	}
	c := imapclient.New(tap, opts)
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, nil, nil, fmt.Errorf("greeting from %s: %w", addr, classifyGreeting(err))
	}
	return c, dc, tap, nil
}
