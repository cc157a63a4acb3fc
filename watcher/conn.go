package watcher

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"mailtap/config"
)

// ErrAuth marks a login the server refused. Sessions retry it slowly so a
// wrong password never hammers an account into lockout.
var ErrAuth = errors.New("authentication failed")

// deadlineConn enforces mailtap's own read deadline, so a peer that stops
// answering (while still ACKing TCP keepalives) is noticed: no byte within
// the allowed silence fails the read, which closes the IMAP client. The
// silence is measured from the last byte received or from the last expect
// call, whichever is later. The session switches it between
// response_timeout (a command is outstanding) and idle_refresh +
// response_timeout (IDLE, where silence is normal until the next refresh).
//
// imapclient sets deadlines of its own (30 s, none while idle); they are
// ignored here because this policy must win. A failed read is not re-armed:
// the decoder retries reads after an error, and each retry would otherwise
// wait a full timeout again.
type deadlineConn struct {
	net.Conn
	writeTimeout time.Duration

	mu      sync.Mutex // orders timeout changes against re-arming
	timeout time.Duration

	// contact, if set, gets the time of every read that brought bytes:
	// the proof that the server is there (last_server_contact).
	contact *atomic.Int64
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if c.contact != nil {
			c.contact.Store(time.Now().UnixNano())
		}
		c.mu.Lock()
		c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
		c.mu.Unlock()
	}
	return n, err
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if c.writeTimeout > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	return c.Conn.Write(p)
}

// SetReadDeadline ignores the library's deadlines; see the type comment.
func (c *deadlineConn) SetReadDeadline(time.Time) error { return nil }

// SetDeadline only passes on the write half, for the same reason.
func (c *deadlineConn) SetDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(t) }

// expect allows d of silence from now on, also for a Read already blocked.
func (c *deadlineConn) expect(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timeout = d
	c.Conn.SetReadDeadline(time.Now().Add(d))
}

// tlsConfig builds the client TLS config of an account: system roots plus
// ca_file, verification on unless tls_skip_verify.
func tlsConfig(acct *config.Account) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: acct.Host, MinVersion: tls.VersionTLS12}
	if acct.TLSSkipVerify {
		cfg.InsecureSkipVerify = true
	}
	if acct.CAFile != "" {
		pem, err := os.ReadFile(acct.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", acct.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// dialCause strips what a dial error repeats ("dial tcp 10.0.0.1:993:
// connect:"), so the cause ("connection refused") survives where a status
// line cuts the end off. The chain is kept: errors.Is still sees ECONNREFUSED.
func dialCause(err error) error {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Err == nil {
		return err
	}
	var se *os.SyscallError
	if errors.As(oe.Err, &se) && se.Err != nil {
		return se.Err
	}
	return oe.Err
}

// dial connects, secures and greets. The returned client is not logged in.
// contact (may be nil) records when the server last sent anything.
func dial(ctx context.Context, acct *config.Account, w *config.Watch, opts *imapclient.Options, contact *atomic.Int64) (*imapclient.Client, *deadlineConn, error) {
	addr := net.JoinHostPort(acct.Host, strconv.Itoa(acct.Port))
	d := net.Dialer{Timeout: w.ResponseTimeout.Duration, KeepAlive: 30 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", addr, dialCause(err))
	}
	dc := &deadlineConn{Conn: raw, writeTimeout: w.ResponseTimeout.Duration, contact: contact}
	dc.expect(w.ResponseTimeout.Duration)

	var c *imapclient.Client
	switch acct.TLS {
	case "implicit", "":
		cfg, err := tlsConfig(acct)
		if err != nil {
			raw.Close()
			return nil, nil, err
		}
		tc := tls.Client(dc, cfg)
		hctx, cancel := context.WithTimeout(ctx, w.ResponseTimeout.Duration)
		err = tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			raw.Close()
			return nil, nil, tlsError(addr, err)
		}
		c = imapclient.New(tc, opts)
	case "starttls":
		cfg, err := tlsConfig(acct)
		if err != nil {
			raw.Close()
			return nil, nil, err
		}
		o := *opts
		o.TLSConfig = cfg
		c, err = imapclient.NewStartTLS(dc, &o)
		if err != nil {
			raw.Close()
			return nil, nil, tlsError(addr, fmt.Errorf("starttls: %w", err))
		}
	case "none":
		c = imapclient.New(dc, opts)
	default:
		raw.Close()
		return nil, nil, fmt.Errorf("unknown tls mode %q", acct.TLS)
	}
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("greeting from %s: %w", addr, classifyGreeting(err))
	}
	return c, dc, nil
}

// tlsError adds what to do next when the certificate is the problem.
func tlsError(addr string, err error) error {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var verr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown), errors.As(err, &verr) && errors.As(verr.Err, &unknown):
		return fmt.Errorf("tls with %s: certificate not trusted: %w (if the server uses a self-signed or private CA, set the account's ca_file to that CA's PEM file)", addr, err)
	case errors.As(err, &host):
		return fmt.Errorf("tls with %s: %w (the certificate does not name this host; connect by a name it lists)", addr, err)
	}
	return fmt.Errorf("tls with %s: %w", addr, err)
}

// login authenticates with the account's mechanism.
func login(c *imapclient.Client, acct *config.Account, secret string) error {
	var err error
	switch acct.Auth {
	case "login":
		err = c.Login(acct.Username, secret).Wait()
	case "xoauth2":
		err = c.Authenticate(&xoauth2Client{user: acct.Username, token: secret})
	case "oauthbearer":
		err = c.Authenticate(oauthBearerClient{sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
			Username: acct.Username, Token: secret, Host: acct.Host, Port: acct.Port})})
	default: // plain
		if c.Caps().Has(imap.AuthCap(sasl.Plain)) {
			err = c.Authenticate(sasl.NewPlainClient("", acct.Username, secret))
		} else {
			err = c.Login(acct.Username, secret).Wait()
		}
	}
	return classifyLogin(acct.Username, err)
}

// xoauth2Client is the SASL XOAUTH2 mechanism (Google, Microsoft), which
// go-sasl does not ship.
type xoauth2Client struct{ user, token string }

func (x *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

// Next answers the server's error challenge with an empty response, as the
// mechanism requires, so the server sends its tagged NO.
func (x *xoauth2Client) Next([]byte) ([]byte, error) { return []byte{}, nil }

// oauthBearerClient answers the server's error challenge with the dummy
// %x01 of RFC 7628 §3.2.3, so the server ends the exchange with a tagged NO
// (an auth failure, retried slowly); go-sasl's client aborts client-side
// instead, which would look like a network error and be retried fast.
type oauthBearerClient struct{ sasl.Client }

func (oauthBearerClient) Next([]byte) ([]byte, error) { return []byte{0x01}, nil }
