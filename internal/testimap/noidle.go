package testimap

import (
	"bytes"
	"net"
	"strconv"
	"sync"
)

// imapserver always offers IDLE to IMAP4rev1 clients (it is not part of
// Options.Caps), so a server without IDLE is made one level down: noIdleConn
// sits between the TCP connection and imapserver, drops the IDLE atom from
// every CAPABILITY list the server sends, and turns a client's IDLE command
// into an unknown one, which the server answers with BAD — what a server
// without the extension does. Both directions track IMAP literals ({N} at a
// line end) so message bytes pass through untouched.
//
// It only works on cleartext, hence WithoutIdle cannot be combined with
// WithTLS (STARTTLS would put the TLS layer above this filter).
type noIdleConn struct {
	net.Conn

	rmu     sync.Mutex
	in      lineFilter
	pending []byte // filtered client bytes not yet handed to imapserver
	rerr    error

	wmu sync.Mutex
	out lineFilter
}

func newNoIdleConn(c net.Conn) *noIdleConn {
	return &noIdleConn{
		Conn: c,
		in:   lineFilter{rewrite: rejectIdleCommand},
		out:  lineFilter{rewrite: dropIdleCapability},
	}
}

func (c *noIdleConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	buf := make([]byte, 4096)
	for len(c.pending) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		n, err := c.Conn.Read(buf)
		c.pending = c.in.feed(buf[:n], c.pending)
		if err != nil {
			// Hand over a line cut short by EOF as it is; imapserver
			// reports it the way it would without the filter.
			c.pending = append(c.pending, c.in.flush()...)
			c.rerr = err
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *noIdleConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	out := c.out.feed(p, nil)
	if len(out) == 0 {
		return len(p), nil
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// lineFilter rewrites a byte stream line by line, passing literal data
// through unchanged. A partial line is held until its end arrives: both IMAP
// peers finish a line before they wait for the other side, so holding it
// never stalls the protocol.
type lineFilter struct {
	rewrite func(line []byte) []byte // gets and returns a line with its LF
	literal int64                    // literal bytes still to pass through
	partial []byte
}

func (f *lineFilter) feed(p, out []byte) []byte {
	for len(p) > 0 {
		if f.literal > 0 {
			n := int(min(int64(len(p)), f.literal))
			out = append(out, p[:n]...)
			p = p[n:]
			f.literal -= int64(n)
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			f.partial = append(f.partial, p...)
			break
		}
		line := append(f.partial, p[:i+1]...)
		f.partial = nil
		p = p[i+1:]
		line = f.rewrite(line)
		out = append(out, line...)
		f.literal = literalSize(line)
	}
	return out
}

func (f *lineFilter) flush() []byte {
	p := f.partial
	f.partial = nil
	return p
}

// literalSize returns N when line ends with an IMAP literal announcement:
// {N}, {N+} or {N-} (LITERAL+/LITERAL-), possibly ~-prefixed (BINARY).
func literalSize(line []byte) int64 {
	line = bytes.TrimRight(line, "\r\n")
	if !bytes.HasSuffix(line, []byte("}")) {
		return 0
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0
	}
	digits := bytes.TrimRight(line[open+1:len(line)-1], "+-")
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// rejectIdleCommand renames "tag IDLE" so imapserver answers "tag BAD
// Unknown command".
func rejectIdleCommand(line []byte) []byte {
	fields := bytes.Fields(line)
	if len(fields) == 2 && bytes.EqualFold(fields[1], []byte("IDLE")) {
		return append(append(fields[0], " XIDLE"...), "\r\n"...)
	}
	return line
}

// dropIdleCapability removes the IDLE atom from "* CAPABILITY …" and from a
// "[CAPABILITY …]" response code.
func dropIdleCapability(line []byte) []byte {
	i := bytes.Index(line, []byte("CAPABILITY "))
	if i <= 0 || (line[i-1] != ' ' && line[i-1] != '[') {
		return line
	}
	start := i + len("CAPABILITY ")
	end := len(bytes.TrimRight(line, "\r\n"))
	if line[i-1] == '[' {
		if j := bytes.IndexByte(line[start:], ']'); j >= 0 {
			end = start + j
		}
	}
	var caps [][]byte
	for _, c := range bytes.Fields(line[start:end]) {
		if !bytes.EqualFold(c, []byte("IDLE")) {
			caps = append(caps, c)
		}
	}
	out := append([]byte{}, line[:start]...)
	out = append(out, bytes.Join(caps, []byte(" "))...)
	return append(out, line[end:]...)
}
