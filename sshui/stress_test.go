package sshui

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/prometheus/client_golang/prometheus/testutil"
	gossh "golang.org/x/crypto/ssh"

	"mailtap/internal/testimap"
)

// goClient logs in with a key file over addr (the server, or a proxy in
// front of it), checking the host key.
func (r *rig) goClient(t testing.TB, addr, keyFile string) *gossh.Client {
	t.Helper()
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, _, _, _, err := gossh.ParseAuthorizedKey([]byte(hostPublicKey(t, r.srv.opts.StateDir+"/"+HostKeyName)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{
		User: "operator", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.FixedHostKey(hostKey), Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh dial: %v", err)
	}
	return c
}

// monitorSession opens the monitor in a w×h terminal; its output goes to
// out.
func monitorSession(t testing.TB, c *gossh.Client, w, h int, out io.Writer) (*gossh.Session, io.WriteCloser) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	s.Stdout = out
	in, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestPty("xterm-256color", h, w, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	return s, in
}

// countWriter counts bytes and keeps the recent output, to look for text
// on the screen.
type countWriter struct {
	n    atomic.Int64
	mu   sync.Mutex
	tail []byte
}

// tailMax bounds the output kept: several full frames of a 300×100
// terminal, so that a frame's first lines are still there when its last
// arrives.
const tailMax = 1 << 20

func (w *countWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	w.mu.Lock()
	w.tail = append(w.tail, p...)
	if len(w.tail) > tailMax {
		w.tail = append([]byte(nil), w.tail[len(w.tail)-tailMax/2:]...)
	}
	w.mu.Unlock()
	return len(p), nil
}

// screenContains reports whether s was drawn: it looks in the output with
// the escape sequences stripped, since the renderer puts colours inside a
// line's text. Text the renderer completes around cells already on the
// screen (cursor moves over them) is not found: look for text drawn at
// once, such as one word in one style.
func (w *countWriter) screenContains(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Contains(ansi.Strip(string(w.tail)), s)
}

// waitScreen waits for s on the screen; it reports false when 30 s pass.
// It may run on any goroutine (it does not stop the test).
func (w *countWriter) waitScreen(s string) bool {
	deadline := time.Now().Add(30 * time.Second)
	for !w.screenContains(s) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// Sessions open and close, monitors and commands, while mail is being
// captured: everything is captured, every session's resources go, and
// -race has something to look at.
func TestSSH_sessionsDuringCapture(t *testing.T) {
	r := startRig(t, rigOptions{mailboxes: 2})
	const total = 400
	var delivering sync.WaitGroup
	delivering.Go(func() {
		for i := 0; i < total; i += 20 {
			var msgs [][]byte
			for j := i; j < i+20; j++ {
				msgs = append(msgs, testimap.Msg(fmt.Sprintf("during sessions %d", j), j+1))
			}
			box := "INBOX"
			if i%40 == 20 {
				box = "Box1"
			}
			r.imap.DeliverMany(t, box, msgs)
			time.Sleep(5 * time.Millisecond)
		}
	})
	var clients sync.WaitGroup
	for g := range 4 {
		clients.Go(func() {
			for range 3 {
				c := r.goClient(t, "127.0.0.1:"+r.port, r.fullKey)
				out := &countWriter{}
				s, in := monitorSession(t, c, 100, 30, out)
				// "INBOX", not "test/INBOX": the first frame may know only
				// test/Box1, and the redraw then skips the "test/" it
				// already drew with a cursor move (ESC[7G), which no
				// stripping of escapes can join back. A word in one style,
				// drawn for the first time, is contiguous.
				if !out.waitScreen("INBOX") {
					t.Errorf("session %d: the monitor did not show INBOX within 30s (%d bytes)", g, out.n.Load())
					c.Close()
					return
				}
				s.WindowChange(24+g, 80)
				time.Sleep(20 * time.Millisecond)
				if g%2 == 0 {
					in.Write([]byte("q")) // quit from the keyboard
					s.Wait()
				} else {
					c.Close() // vanish: the connection just ends
				}
				c.Close()
			}
		})
		clients.Go(func() {
			for range 3 {
				c := r.goClient(t, "127.0.0.1:"+r.port, r.roKey)
				s, _ := c.NewSession()
				b, err := s.Output("status")
				if err != nil || !strings.Contains(string(b), `"mailboxes"`) {
					t.Errorf("status: %v %q", err, b)
				}
				c.Close()
			}
		})
	}
	clients.Wait()
	delivering.Wait()
	r.waitFor("every message captured", func() bool { return r.captured() == total })
	r.waitFor("every session closed", func() bool {
		n := 0
		r.srv.monitors.Range(func(any, any) bool { n++; return true })
		return n == 0 && testutil.ToFloat64(r.srv.metrics.sessions) == 0
	})
}

// freezeProxy forwards a TCP connection, and on freeze stops reading what
// the server sends (a client whose terminal froze, a dead link) while
// still passing what the client sends.
type freezeProxy struct {
	ln     net.Listener
	frozen chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
}

func startFreezeProxy(t *testing.T, target string) *freezeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, frozen: make(chan struct{})}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.wg.Go(func() { io.Copy(s, c); s.Close() })
			p.wg.Go(func() {
				buf := make([]byte, 4096)
				for {
					select {
					case <-p.frozen:
						// Read nothing more; the server's writes back up.
						<-make(chan struct{})
					default:
					}
					n, err := s.Read(buf)
					if n > 0 {
						c.Write(buf[:n])
					}
					if err != nil {
						c.Close()
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() { ln.Close() })
	return p
}

func (p *freezeProxy) freeze() { p.once.Do(func() { close(p.frozen) }) }

// A session whose client stops reading is dropped within about 1.25 ×
// the write timeout of the first output it did not read, while capture
// and another session go on. The output after the freeze is little (a
// message every 200 ms): far from filling the SSH window and the TCP
// buffers, so only the unanswered keepalive can drop the session in time.
func TestSSH_stalledClientDropped(t *testing.T) {
	const writeTimeout = time.Second
	r := startRig(t, rigOptions{writeTimeout: writeTimeout})
	proxy := startFreezeProxy(t, "127.0.0.1:"+r.port)
	c := r.goClient(t, proxy.ln.Addr().String(), r.fullKey)
	defer c.Close()
	out := &countWriter{}
	_, _ = monitorSession(t, c, 300, 100, out)
	if !out.waitScreen("INBOX") {
		t.Fatalf("the monitor did not show INBOX within 30s (%d bytes)", out.n.Load())
	}

	proxy.freeze()
	frozeAt := time.Now()
	atFreeze := out.n.Load()
	dropped := func() bool { return testutil.ToFloat64(r.srv.metrics.dropped) == 1 }
	// 1.25 × the timeout is the bound; the rest is slack for a loaded
	// machine under -race. Filling 2 MB of window at this rate takes
	// minutes.
	const limit = 15 * time.Second
	for i := 0; !dropped(); i++ {
		if time.Since(frozeAt) > limit {
			t.Fatalf("the stalled session was not dropped within %s (%d bytes reached the client)", limit, out.n.Load())
		}
		r.imap.Deliver(t, "INBOX", testimap.Msg(fmt.Sprintf("while stalled %d", i), i+1))
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("dropped %s after the freeze (write timeout %s); %d bytes had reached the client, %d of them after the freeze",
		time.Since(frozeAt).Round(time.Millisecond), writeTimeout, out.n.Load(), out.n.Load()-atFreeze)
	if !strings.Contains(r.logs.String(), "ssh: session dropped: the client stopped reading") {
		t.Errorf("the drop is not logged")
	}
	// Others are served, and capture went on throughout.
	if _, stderr, code := r.ssh(r.fullKey, nil, "status"); code != 0 {
		t.Errorf("status beside a stalled session: exit %d %q", code, stderr)
	}
	before := r.captured()
	r.imap.Deliver(t, "INBOX", testimap.Msg("after the drop", 99999))
	r.waitFor("capture after the drop", func() bool { return r.captured() > before })
	t.Logf("capture checked %s after the freeze", time.Since(frozeAt).Round(time.Millisecond))
	r.waitFor("the dropped session's monitor gone", func() bool {
		n := 0
		r.srv.monitors.Range(func(any, any) bool { n++; return true })
		return n == 0
	})
}
