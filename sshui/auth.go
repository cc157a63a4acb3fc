package sshui

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	gossh "golang.org/x/crypto/ssh"
)

// Failed authentications are slowed per client address: each failed
// attempt (a key not listed, a password, keyboard-interactive) is answered
// only after a delay that doubles with the address's recent failures —
// none for the first, then FailureDelay, 2×, 4× … up to maxFailureDelay.
// An address is forgotten after failureMemory without failures, or at once
// when it authenticates. The delay holds only that connection's handshake
// goroutine; sessions and capture are not affected.
const (
	maxFailureDelay = 30 * time.Second
	failureMemory   = 15 * time.Minute
	// maxTracked bounds the table against an attacker with many addresses;
	// past it the stalest entries go first.
	maxTracked = 4096
)

type limiter struct {
	base time.Duration
	now  func() time.Time

	mu    sync.Mutex
	addrs map[string]*addrFailures
}

type addrFailures struct {
	n    int
	last time.Time
}

func newLimiter(base time.Duration) *limiter {
	return &limiter{base: base, now: time.Now, addrs: map[string]*addrFailures{}}
}

// fail records a failed attempt from ip and returns how long to wait
// before answering it.
func (l *limiter) fail(ip string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	a := l.addrs[ip]
	if a == nil || now.Sub(a.last) > failureMemory {
		a = &addrFailures{}
		l.addrs[ip] = a
		l.prune(now)
	}
	d := time.Duration(0)
	if a.n > 0 {
		d = l.base << min(a.n-1, 16)
		d = min(d, maxFailureDelay)
	}
	a.n++
	a.last = now
	return d
}

// failures is how many recent failures ip has.
func (l *limiter) failures(ip string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.addrs[ip]; a != nil && l.now().Sub(a.last) <= failureMemory {
		return a.n
	}
	return 0
}

func (l *limiter) succeed(ip string) {
	l.mu.Lock()
	delete(l.addrs, ip)
	l.mu.Unlock()
}

func (l *limiter) prune(now time.Time) {
	if len(l.addrs) <= maxTracked {
		return
	}
	var oldest string
	var oldestAt time.Time
	for ip, a := range l.addrs {
		if now.Sub(a.last) > failureMemory {
			delete(l.addrs, ip)
			continue
		}
		if oldest == "" || a.last.Before(oldestAt) {
			oldest, oldestAt = ip, a.last
		}
	}
	if len(l.addrs) > maxTracked {
		delete(l.addrs, oldest)
	}
}

// hostOf is the address part of host:port: failures are per client host,
// whatever source port it uses.
func hostOf(addr net.Addr) string {
	if addr == nil {
		return "unknown"
	}
	h, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return h
}

// attempt is one connection's authentication, for the log line written
// when it ends unauthenticated. The SSH library calls the auth callbacks
// one at a time on the connection's goroutine; the mutex is for the
// close, which can come from another goroutine.
type attempt struct {
	mu           sync.Mutex
	user         string
	methods      []string // every method tried, "none" included
	fingerprints []string // keys offered and refused
	ok           bool
}

func (a *attempt) note(user, method string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.user = user
	a.methods = append(a.methods, method)
	if err == nil {
		a.ok = true
	}
}

func (a *attempt) refusedKey(fp string) {
	a.mu.Lock()
	a.fingerprints = append(a.fingerprints, fp)
	a.mu.Unlock()
}

// sleep waits d, or less if ctx ends or done is closed first.
func sleep(ctx context.Context, done <-chan struct{}, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-done:
	}
}

// metrics are the server's Prometheus series.
type metrics struct {
	authFailures prometheus.Counter
	sessions     prometheus.Gauge
	dropped      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailtap_ssh_auth_failures_total",
			Help: "SSH connections that closed without authenticating after trying at least one method: one per connection, however many keys or methods it tried (a port scan, which tries none, is not counted)."}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mailtap_ssh_sessions",
			Help: "Open SSH sessions (monitor and commands)."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "mailtap_ssh_sessions_dropped_total",
			Help: "SSH sessions dropped because the client stopped reading."}),
	}
	if reg != nil {
		reg.MustRegister(m.authFailures, m.sessions, m.dropped)
	}
	return m
}

// fingerprint is OpenSSH's SHA256:… form, as `ssh-keygen -lf` prints it.
func fingerprint(k gossh.PublicKey) string { return gossh.FingerprintSHA256(k) }
