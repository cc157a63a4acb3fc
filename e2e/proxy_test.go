package e2e

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// faultProxy is a loopback TCP proxy between mailtap and an IMAP server
// that can fail the ways networks do without telling anyone:
//
//   - Freeze: every connection, existing and new, stops forwarding in both
//     directions but stays open. The kernel still ACKs what arrives (until
//     the buffers fill), so the client sees a peer that is there and says
//     nothing: a NAT that dropped its mapping, a server that hung.
//   - Restore: new connections forward again; frozen ones stay frozen
//     forever, as a half-open connection does.
//   - CutServerAfter(n): the next n bytes from the server are forwarded,
//     then both sides are closed: a connection lost in the middle of a
//     literal.
type faultProxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu        sync.Mutex
	conns     map[*proxyConn]bool
	frozen    bool
	cutArmed  bool
	cutAfter  int64
	accepted  int
	cutsDone  atomic.Int32
	closed    bool
	closeOnce sync.Once
	wg        sync.WaitGroup
}

type proxyConn struct {
	client, server net.Conn
	frozen         chan struct{} // closed when frozen
	freezeOnce     sync.Once
	done           chan struct{} // closed when the proxy shuts down
	cutAfter       atomic.Int64  // >0: bytes from the server still to forward before cutting
}

func startProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, ln: ln, target: target, conns: map[*proxyConn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *faultProxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *faultProxy) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Port())) }

// Accepted counts the connections made through the proxy.
func (p *faultProxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Cuts counts the connections cut by CutServerAfter.
func (p *faultProxy) Cuts() int { return int(p.cutsDone.Load()) }

func (p *faultProxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = true
	for c := range p.conns {
		c.freeze()
	}
}

func (p *faultProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = false
}

// CutServerAfter arms a one-shot cut: the next connection to carry more
// than n bytes from the server (counted from now on open connections, from
// the greeting on new ones) is closed after exactly n of them.
func (p *faultProxy) CutServerAfter(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutArmed, p.cutAfter = true, n
	for c := range p.conns {
		c.cutAfter.Store(n)
	}
}

func (p *faultProxy) accept() {
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
		c := &proxyConn{client: client, server: server, frozen: make(chan struct{}), done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			client.Close()
			server.Close()
			return
		}
		p.accepted++
		p.conns[c] = true
		if p.frozen {
			c.freeze()
		}
		if p.cutArmed {
			c.cutAfter.Store(p.cutAfter)
		}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, c.client, c.server, false)
		go p.pipe(c, c.server, c.client, true)
	}
}

func (c *proxyConn) freeze() { c.freezeOnce.Do(func() { close(c.frozen) }) }

func (c *proxyConn) isFrozen() bool {
	select {
	case <-c.frozen:
		return true
	default:
		return false
	}
}

// pipe copies src to dst. Frozen, it stops reading and holds what it has:
// nothing is closed, the sender's data just stops arriving.
func (p *faultProxy) pipe(c *proxyConn, src, dst net.Conn, fromServer bool) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		if c.isFrozen() {
			<-c.done
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			if c.isFrozen() {
				<-c.done
				return
			}
			if fromServer {
				if left := c.cutAfter.Load(); left > 0 {
					if int64(n) >= left && p.disarmCut() {
						dst.Write(buf[:left])
						c.client.Close()
						c.server.Close()
						return
					}
					c.cutAfter.Store(max(0, left-int64(n)))
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.logf("proxy: %v", err)
			}
			// Half-close would keep a dead session around; close both
			// sides like a real peer does when its socket dies.
			c.client.Close()
			c.server.Close()
			return
		}
	}
}

// disarmCut makes the cut one-shot across connections; false if another
// connection already took it.
func (p *faultProxy) disarmCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.cutArmed {
		return false
	}
	p.cutArmed = false
	for c := range p.conns {
		c.cutAfter.Store(0)
	}
	p.cutsDone.Add(1)
	return true
}

func (p *faultProxy) logf(format string, args ...any) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if !closed {
		p.t.Logf(format, args...)
	}
}

func (p *faultProxy) close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.ln.Close()
		for c := range p.conns {
			close(c.done)
			c.client.Close()
			c.server.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
}
