package testimap

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// HabitProxy is a loopback proxy in front of a real IMAP server that gives
// it the habits of another one, for behaviour no server in the suite has:
// GNU Mailutils imap4d answering "UID SEARCH UID n:*" with nothing, a
// server (or a provider's middlebox) that never pushes in IDLE, a session
// that stays on a recreated mailbox without a word. Both directions are
// read line by line with IMAP literals passed through untouched, so
// message bodies are never mistaken for commands.
//
// Cleartext only (a proxy cannot see into TLS).
type HabitProxy struct {
	ln     net.Listener
	target string
	habits Habits

	mu       sync.Mutex
	commands []string
	conns    map[*habitConn]bool
	closed   bool
	wg       sync.WaitGroup
}

// Habits are the hooks of a HabitProxy; nil ones change nothing.
type Habits struct {
	// Answer sees every command line the client sends (without CRLF,
	// tag included, no literal in it). A non-nil result is sent to the
	// client instead of forwarding the command: lines without CRLF, in
	// which "$TAG" stands for the command's tag.
	Answer func(line string) []string
	// Drop sees every line the server sends (without CRLF) and whether
	// the client is in IDLE; true drops it. Lines that announce a literal
	// are never offered.
	Drop func(line string, idling bool) bool
	// Rewrite sees every line the server sends (without CRLF, not one
	// that announces a literal) and returns it, changed or not.
	Rewrite func(line string) string
}

type habitConn struct {
	client, server net.Conn

	mu       sync.Mutex // guards writes to client and the fields below
	boundary *sync.Cond // signalled when the client stream is between lines
	inLit    bool       // a server literal is half written to the client
	idling   bool
}

// StartHabitProxy proxies to target ("host:port") until the test ends.
func StartHabitProxy(t testing.TB, target string, habits Habits) *HabitProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &HabitProxy{ln: ln, target: target, habits: habits, conns: map[*habitConn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Host is the proxy's listening IP.
func (p *HabitProxy) Host() string { return "127.0.0.1" }

// Port is the proxy's listening port.
func (p *HabitProxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Commands returns the command lines clients sent so far (tags included).
func (p *HabitProxy) Commands() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.commands...)
}

// Inject sends line (without CRLF) to every connected client, between two
// server responses, as if the server had sent it.
func (p *HabitProxy) Inject(line string) {
	p.mu.Lock()
	conns := make([]*habitConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		for c.inLit {
			c.boundary.Wait()
		}
		c.client.Write([]byte(line + "\r\n"))
		c.mu.Unlock()
	}
}

// Conns counts the connections open now.
func (p *HabitProxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close stops accepting, cuts every connection and waits for its goroutines.
func (p *HabitProxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.client.Close()
		c.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *HabitProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		c := &habitConn{client: client, server: server}
		c.boundary = sync.NewCond(&c.mu)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			client.Close()
			server.Close()
			return
		}
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.fromClient(c)
		go p.fromServer(c)
	}
}

func (p *HabitProxy) done(c *habitConn) {
	c.client.Close()
	c.server.Close()
	c.mu.Lock()
	c.inLit = false
	c.boundary.Broadcast()
	c.mu.Unlock()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// fromClient forwards commands, answering those the habits claim.
func (p *HabitProxy) fromClient(c *habitConn) {
	defer p.wg.Done()
	defer p.done(c)
	f := lineFilter{rewrite: func(line []byte) []byte {
		text := string(bytes.TrimRight(line, "\r\n"))
		if literalSize(line) > 0 {
			return line
		}
		p.mu.Lock()
		p.commands = append(p.commands, text)
		p.mu.Unlock()
		fields := strings.Fields(text)
		c.mu.Lock()
		switch {
		case len(fields) == 2 && strings.EqualFold(fields[1], "IDLE"):
			c.idling = true
		case strings.EqualFold(text, "DONE"):
			c.idling = false
		}
		c.mu.Unlock()
		if p.habits.Answer == nil || len(fields) == 0 {
			return line
		}
		reply := p.habits.Answer(text)
		if reply == nil {
			return line
		}
		var b bytes.Buffer
		for _, r := range reply {
			b.WriteString(strings.ReplaceAll(r, "$TAG", fields[0]))
			b.WriteString("\r\n")
		}
		c.mu.Lock()
		for c.inLit {
			c.boundary.Wait()
		}
		c.client.Write(b.Bytes())
		c.mu.Unlock()
		return nil
	}}
	buf := make([]byte, 32<<10)
	for {
		n, err := c.client.Read(buf)
		if out := f.feed(buf[:n], nil); len(out) > 0 {
			if _, werr := c.server.Write(out); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// fromServer forwards responses, dropping or rewriting what the habits say.
func (p *HabitProxy) fromServer(c *habitConn) {
	defer p.wg.Done()
	defer p.done(c)
	f := lineFilter{rewrite: func(line []byte) []byte {
		if literalSize(line) > 0 {
			return line
		}
		text := string(bytes.TrimRight(line, "\r\n"))
		c.mu.Lock()
		idling := c.idling
		c.mu.Unlock()
		if p.habits.Drop != nil && p.habits.Drop(text, idling) {
			return nil
		}
		if p.habits.Rewrite != nil {
			if r := p.habits.Rewrite(text); r != text {
				return []byte(r + "\r\n")
			}
		}
		return line
	}}
	buf := make([]byte, 32<<10)
	for {
		n, err := c.server.Read(buf)
		out := f.feed(buf[:n], nil)
		c.mu.Lock()
		if len(out) > 0 {
			if _, werr := c.client.Write(out); werr != nil {
				c.mu.Unlock()
				return
			}
		}
		c.inLit = f.literal > 0
		if !c.inLit {
			c.boundary.Broadcast()
		}
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// UIDSearchOpenEnded reports whether line is "tag UID SEARCH UID n:*" (any
// case), the query imap4d answers with an empty result.
func UIDSearchOpenEnded(line string) bool {
	f := strings.Fields(line)
	if len(f) < 5 || !strings.EqualFold(f[1], "UID") || !strings.EqualFold(f[2], "SEARCH") {
		return false
	}
	for i := 3; i+1 < len(f); i++ {
		if strings.EqualFold(f[i], "UID") && strings.HasSuffix(f[i+1], ":*") {
			return true
		}
	}
	return false
}

// IsExists reports whether line is "* N EXISTS", the push of new mail.
func IsExists(line string) bool {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "*" || !strings.EqualFold(f[2], "EXISTS") {
		return false
	}
	_, err := strconv.ParseUint(f[1], 10, 32)
	return err == nil
}
