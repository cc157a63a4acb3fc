package testimap

import (
	"net"
	"sync"
)

// gate lets Mem freeze its connections: while frozen, reads and writes
// block (the kernel still ACKs TCP, so the peer sees a live but silent
// server — the half-open case keepalives cannot detect).
type gate struct {
	mu     sync.Mutex
	frozen chan struct{} // non-nil while frozen; closed by thaw
}

func (g *gate) freeze() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.frozen == nil {
		g.frozen = make(chan struct{})
	}
}

func (g *gate) thaw() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.frozen != nil {
		close(g.frozen)
		g.frozen = nil
	}
}

// wait blocks while the gate is frozen. It fails once done is closed.
func (g *gate) wait(done <-chan struct{}) error {
	g.mu.Lock()
	ch := g.frozen
	g.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-done:
		return net.ErrClosed
	}
}

// trackedConn is a server-side TCP connection Mem can freeze and drop.
type trackedConn struct {
	net.Conn
	gate    *gate
	done    chan struct{}
	once    sync.Once
	onClose func(*trackedConn)
}

func (c *trackedConn) Read(p []byte) (int, error) {
	if err := c.gate.wait(c.done); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	// Hold bytes that arrived while freezing, so a frozen server processes
	// nothing it reads.
	if gerr := c.gate.wait(c.done); gerr != nil {
		return 0, gerr
	}
	return n, err
}

func (c *trackedConn) Write(p []byte) (int, error) {
	if err := c.gate.wait(c.done); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *trackedConn) Close() error {
	err := net.ErrClosed
	c.once.Do(func() {
		close(c.done)
		err = c.Conn.Close()
		c.onClose(c)
	})
	return err
}

// trackingListener wraps every accepted connection in a trackedConn
// registered with its Mem, so Stop and Kick can drop live sessions (go-imap's
// Server.Close cannot be undone, and Kick must keep listening).
type trackingListener struct {
	net.Listener
	accepted func(net.Conn) net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.accepted(c), nil
}
