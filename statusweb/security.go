package statusweb

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// contentSecurityPolicy allows only the server's own script and style:
// no inline code, no external assets, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// secure sets the common response headers and, on a loopback bind, refuses
// requests that name a non-loopback Host: a page on another site that
// rebinds its DNS name to 127.0.0.1 would otherwise be "same origin" with
// this server, and able to read it and steer it.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		// Everything here is live state; the page and its assets are tiny
		// and must match the running version.
		h.Set("Cache-Control", "no-store")
		if s.loopback && !loopbackHostHeader(r.Host) {
			writeError(w, http.StatusMisdirectedRequest, "this server only answers to localhost or a loopback address")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHostHeader reports whether a Host header ("localhost:8025",
// "127.0.0.1", "[::1]:8025") names this machine's loopback interface.
func loopbackHostHeader(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return isLoopbackHost(host)
}

// requireSameOrigin refuses state-changing requests sent by a browser on
// behalf of another site. Browsers set Sec-Fetch-Site (same-origin for our
// own page, none for a typed URL) and Origin on POSTs; non-browser clients
// such as curl set neither and pass, and are held off by the token.
func (s *Server) requireSameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			s.log.Warn("refused cross-site control request", "path", r.URL.Path, "sec_fetch_site", site, "remote", r.RemoteAddr)
			writeError(w, http.StatusForbidden, "cross-site request refused")
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			u, err := url.Parse(origin)
			// "null" (sandboxed frames, file: pages) parses with no host.
			if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
				s.log.Warn("refused cross-origin control request", "path", r.URL.Path, "origin", origin, "remote", r.RemoteAddr)
				writeError(w, http.StatusForbidden, "cross-origin request refused")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// requireToken checks "Authorization: Bearer <token>" when a token is set.
// Both sides are hashed first so the comparison takes the same time
// whatever the length of the guess.
func (s *Server) requireToken(next http.Handler) http.Handler {
	if s.opts.Token == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.opts.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearer(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			s.log.Warn("refused control request: missing or wrong token", "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="mailtap"`)
			writeError(w, http.StatusUnauthorized, "this control needs the token from http.token_env (Authorization: Bearer …)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer extracts the token from an Authorization header value; the scheme
// is case-insensitive (RFC 9110 §11.1).
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
