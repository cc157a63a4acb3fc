package sinks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"mailtap/config"
)

// result is what one attempt did.
type result struct {
	err        error         // nil: delivered
	permanent  bool          // will never succeed: dead-letter at once
	retryAfter time.Duration // the receiver's Retry-After, if any
	status     int           // HTTP status, if any
}

type deliverer interface {
	deliver(ctx context.Context, d *delivery) result
	close()
}

// delivery is one attempt at one record.
type delivery struct {
	id      string
	absPath string // of the record file
	body    []byte // the envelope
	attempt int    // 1, 2, …
}

// Signature is the Mailtap-Signature header value for body and secret.
func Signature(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

type webhook struct {
	cfg     config.Sink
	url     string
	header  http.Header
	secret  []byte
	client  *http.Client
	agent   string
	timeout time.Duration
}

func newWebhook(cfg config.Sink, version string) (*webhook, error) {
	secret, err := cfg.Secret()
	if err != nil {
		return nil, err
	}
	tlsCfg := &tls.Config{InsecureSkipVerify: cfg.TLSSkipVerify} //nolint:gosec // the user asked for it
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("sink %q: ca_file: %w", cfg.Name, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sink %q: ca_file %s holds no PEM certificate", cfg.Name, cfg.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	// Keep a connection per worker alive between deliveries.
	tr.MaxIdleConnsPerHost = cfg.Concurrency
	tr.MaxConnsPerHost = cfg.Concurrency
	tr.IdleConnTimeout = 90 * time.Second
	tr.ResponseHeaderTimeout = cfg.Timeout.Duration
	return &webhook{cfg: cfg, url: cfg.URL, header: cfg.HTTPHeader(), secret: []byte(secret), agent: "mailtap/" + version,
		timeout: cfg.Timeout.Duration,
		client: &http.Client{Transport: tr,
			// A redirect of a POST is a configuration problem: say so
			// rather than follow it somewhere with the record.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

func (w *webhook) close() { w.client.CloseIdleConnections() }

// maxAnswerLogged is how much of a refusal's body goes into logs and dead
// letters; maxAnswerDrained how much is read so the connection can be reused.
const (
	maxAnswerLogged  = 256
	maxAnswerDrained = 64 << 10
)

func (w *webhook) deliver(ctx context.Context, d *delivery) result {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(d.body))
	if err != nil {
		return result{err: fmt.Errorf("build request: %w", err), permanent: true}
	}
	for k, v := range w.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.agent)
	req.Header.Set("Idempotency-Key", d.id)
	req.Header.Set("Mailtap-Attempt", strconv.Itoa(d.attempt))
	if len(w.secret) > 0 {
		req.Header.Set("Mailtap-Signature", Signature(w.secret, d.body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return result{err: w.scrub(err)}
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerLogged))
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerDrained))
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return result{status: code}
	}
	err = fmt.Errorf("%s answered %s: %s", w.cfg.Target(), resp.Status, answerText(head))
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return result{err: err, status: code, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	default:
		// Other 4xx (and 3xx, 1xx): it will never succeed as sent.
		return result{err: err, status: code, permanent: true}
	}
}

// scrub keeps the URL (which may carry a token in its query) out of an
// error from the HTTP client.
func (w *webhook) scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(ue.Err, context.DeadlineExceeded) || ue.Timeout() {
			return fmt.Errorf("%s %s: no answer within %s", ue.Op, w.cfg.Target(), w.timeout)
		}
		return fmt.Errorf("%s %s: %w", ue.Op, w.cfg.Target(), ue.Err)
	}
	return err
}

// answerText makes the first bytes of an answer fit for a log line.
func answerText(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(b) == maxAnswerLogged {
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return strconv.Quote(s)
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return min(time.Duration(n)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}
