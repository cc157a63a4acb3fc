// Package statusweb owns mailtap's optional status web server, the role
// Monit's web page plays in the original Docker design: a small live page
// (GET /), the same data as JSON (GET /api/status) and as a Server-Sent
// Events stream (GET /api/events), the control API (POST /api/pause,
// /api/resume, /api/reconnect), health and readiness probes (GET /healthz,
// /readyz) and Prometheus metrics (GET /metrics). It also provides Check,
// the client side of `mailtap healthcheck`.
//
// It steers the watcher only through watcher.Controller, the same
// controller and events the TUI uses, and never changes state on GET.
//
// Security model: the server binds where it is told, and to 127.0.0.1 when
// only a port is given. On a loopback bind, requests must name a loopback
// host (so a web page cannot reach it by DNS rebinding). On any other bind a
// bearer token is mandatory, and the control endpoints require it
// (constant-time compare); reads (page, status, events, probes, metrics) stay
// open so that probes and Prometheus work without credentials — they carry
// mailbox names, states, and the sender and subject of recent mail, never a
// secret. Cross-origin POSTs are refused by their Origin and Sec-Fetch-Site
// headers.
package statusweb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailtap/watcher"
)

// DefaultAddr is where the status server is suggested to listen, and where
// Check looks when given no address.
const DefaultAddr = "127.0.0.1:8025"

// shutdownGrace bounds graceful shutdown: in-flight requests get this long
// before connections are closed (SIGTERM must end the process within 10 s).
const shutdownGrace = 5 * time.Second

// Watcher is what the status server needs from the watcher;
// *watcher.Manager implements it.
type Watcher interface {
	watcher.Controller
	Healthy() (bool, string)
	Ready() (bool, string)
}

// Options configure a Server.
type Options struct {
	// Addr is host:port to listen on; ":8025" means 127.0.0.1:8025. Port 0
	// picks a free port (see Server.Addr).
	Addr string
	// Token is the bearer token the control endpoints require when not
	// empty (from http.token_env). Mandatory when Addr is not loopback.
	Token string
	// Gatherer serves /metrics; nil means prometheus.DefaultGatherer. Pass
	// the registry given to watcher.NewMetrics.
	Gatherer prometheus.Gatherer
	// Logger receives control actions and server errors; nil means
	// slog.Default().
	Logger *slog.Logger
	// Version is shown on the page and in /api/status.
	Version string
	// Sinks, if set, gives the sinks' state for the page (sinks.go).
	Sinks SinkStatus
	// Snapshots, if set, is the status shared with other readers; its owner
	// runs it. Nil: the server makes its own (with Version and Token) and
	// feeds it while Serve runs.
	Snapshots *Snapshots
}

// Server is the status web server. New does no I/O; Listen binds, Serve
// serves until its context ends. Run does both.
type Server struct {
	w        Watcher
	opts     Options
	log      *slog.Logger
	addr     string // normalised listen address
	loopback bool   // addr is a loopback address: check Host headers
	handler  http.Handler

	snap    *Snapshots
	ownSnap bool // snap is the server's own: Serve feeds it

	streams   chan struct{} // semaphore: open SSE streams
	keepalive time.Duration // longest silence on a stream: streamKeepalive; tests shorten it

	// closing ends when shutdown begins, so that SSE streams (which never
	// end on their own) let http.Server.Shutdown finish.
	closing      context.Context
	beginClosing context.CancelFunc

	mu sync.Mutex
	ln net.Listener
}

// maxStreams caps concurrent SSE clients; more get 503 and fall back to
// polling. Each costs a goroutine and a subscription.
const maxStreams = 64

// recentSize is how many captured mails /api/status and the page show.
const recentSize = 50

// New checks opts and prepares a server for w. It fails when Addr is
// malformed, or when Addr is not loopback and Token is empty.
func New(w Watcher, opts Options) (*Server, error) {
	if w == nil {
		return nil, errors.New("status server: no watcher")
	}
	addr, loopback, err := normalizeAddr(opts.Addr)
	if err != nil {
		return nil, err
	}
	if strings.ContainsFunc(opts.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, errors.New("status server: the token (http.token_env) must not contain spaces or control characters")
	}
	if !loopback && opts.Token == "" {
		return nil, fmt.Errorf("status server: %s is reachable from other machines, so the control API needs a token: "+
			"set http.token_env to the name of an environment variable holding it (MAILTAP_HTTP_TOKEN in Docker), "+
			"or bind to 127.0.0.1", addr)
	}
	if opts.Gatherer == nil {
		opts.Gatherer = prometheus.DefaultGatherer
	}
	s := &Server{
		w: w, opts: opts, log: opts.Logger, addr: addr, loopback: loopback,
		streams: make(chan struct{}, maxStreams), keepalive: streamKeepalive,
	}
	s.closing, s.beginClosing = context.WithCancel(context.Background())
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "statusweb")
	s.handler = s.routes()
	s.snap = opts.Snapshots
	if s.snap == nil {
		s.snap = NewSnapshots(w, SnapshotOptions{Version: opts.Version, TokenRequired: opts.Token != "", Logger: s.log, Sinks: opts.Sinks})
		s.ownSnap = true
	}
	return s, nil
}

// normalizeAddr turns ":8025" into "127.0.0.1:8025" and reports whether the
// address is loopback. Host names other than localhost count as
// non-loopback: deciding would need a DNS lookup, and erring towards
// "needs a token" is the safe side.
func normalizeAddr(addr string) (string, bool, error) {
	if addr == "" {
		return "", false, errors.New("status server: no listen address (http.addr or --http)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false, fmt.Errorf("status server: address %q: must be host:port or :port, like %s", addr, DefaultAddr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", false, fmt.Errorf("status server: address %q: port must be a number 0..65535", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), isLoopbackHost(host), nil
}

// isLoopbackHost reports whether host (no port) is "localhost" or a loopback
// IP literal.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}

// Handler returns the server's HTTP handler (all routes and security
// checks). The recent-mail list is only fed while Serve or Run runs.
func (s *Server) Handler() http.Handler { return s.handler }

// Listen binds the listen address. Call it before Serve to learn the real
// address of port 0 from Addr.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("status server: listen on %s: %w", s.addr, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address after Listen, else the address to be bound.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.addr
}

// Run is Serve, which binds first when Listen was not called.
func (s *Server) Run(ctx context.Context) error { return s.Serve(ctx) }

// Serve serves on the listener from Listen (binding first if needed) until
// ctx ends, then shuts down gracefully: open event streams are ended, and
// in-flight requests get up to 5 s. It returns nil after a shutdown caused
// by ctx, or the error that stopped the server. Call it once.
func (s *Server) Serve(ctx context.Context) error {
	feedCtx, stopFeed := context.WithCancel(context.WithoutCancel(ctx))
	var feeding sync.WaitGroup
	if s.ownSnap {
		feeding.Go(func() { s.snap.Run(feedCtx) })
	}
	defer func() {
		stopFeed()
		feeding.Wait()
	}()
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second, // SSE streams set their own per-write deadlines
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(s.beginClosing)
	defer s.beginClosing()

	s.log.Info("status server listening", "addr", ln.Addr().String(), "control_token", s.opts.Token != "")
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		s.beginClosing()
		return fmt.Errorf("status server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-served // http.ErrServerClosed once Shutdown began
	if err != nil {
		// Grace period over: cut the stragglers.
		srv.Close()
		s.log.Warn("status server: forced close after grace period", "err", err)
	}
	return nil
}

// Check asks the status server at addr for /healthz and returns nil iff it
// answers 200 within 3 s. addr is host:port; "" means DefaultAddr, and an
// empty or unspecified host (":8025", "0.0.0.0:8025") means loopback, so
// `mailtap healthcheck` works with the same http.addr the server binds.
func Check(ctx context.Context, addr string) error {
	if addr == "" {
		addr = DefaultAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("healthcheck: address %q: must be host:port", addr)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::", "[::]":
		host = "::1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"

	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	// No proxy: HTTP_PROXY in a container must not reroute a local probe.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
