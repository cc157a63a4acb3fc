package statusweb

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// stallProxy forwards loopback TCP to a backend. stall makes it a network
// path that went dead without closing: nothing is forwarded in either
// direction, on open connections or new ones, and nothing is closed, so
// neither end notices. resume lets everything held back through.
type stallProxy struct {
	t       *testing.T
	ln      net.Listener
	backend string

	pings   atomic.Int64 // "event: ping" forwarded to clients
	streams atomic.Int64 // GET /api/events forwarded to the backend

	mu    sync.Mutex
	open  chan struct{} // closed while forwarding
	conns []net.Conn
}

func startStallProxy(t *testing.T, backend string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{t: t, ln: ln, backend: backend, open: make(chan struct{})}
	close(p.open)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.resume() // releases the pipes, which then see closed connections
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

func (p *stallProxy) base() string { return "http://" + p.ln.Addr().String() }

func (p *stallProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.backend)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, b)
		p.mu.Unlock()
		go p.pipe(b, c, &p.streams, "GET /api/events ")
		go p.pipe(c, b, &p.pings, "event: ping\n")
	}
}

// pipe copies src to dst, waiting at the gate before each write, and
// counts mark in what it forwards (chunks are whole events and requests
// on loopback, in practice).
func (p *stallProxy) pipe(dst, src net.Conn, n *atomic.Int64, mark string) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			p.mu.Lock()
			gate := p.open
			p.mu.Unlock()
			<-gate
			n.Add(int64(bytes.Count(buf[:k], []byte(mark))))
			if _, err := dst.Write(buf[:k]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
		p.open = make(chan struct{})
	default: // already stalled
	}
}

func (p *stallProxy) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
	default:
		close(p.open)
	}
}
