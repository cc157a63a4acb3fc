package watcher

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// ErrServerBusy marks a login the server refused for a reason that is not
// the credentials: too many connections of this user (Dovecot's
// mail_max_userip_connections, Gmail's 15 per account), a backend that is
// temporarily unavailable, or a server that hangs up at the greeting or
// during login. It is a signal about the connection budget, not about the
// password: never auth_failed, never counted in mailtap_auth_failures_total,
// retried with its own slow jittered backoff (busyRetryMin … busyRetryMax)
// so connections freed elsewhere (the user's phone, another folder) are
// picked up without hammering the server.
var ErrServerBusy = errors.New("server refused the connection")

// busyRetryMin is the first delay after a budget refusal; it doubles up to
// busyRetryMax. Slower than network backoff (a refused login costs the
// server a login process, and an immediate retry is refused again), far
// faster than a wrong password's: the password is right, and a connection
// may free up any moment.
var (
	busyRetryMin = 10 * time.Second
	busyRetryMax = 5 * time.Minute
)

// busyTexts are fragments of refusals that mean "too many connections" on
// servers that say so without a response code, or with a code that is not
// specific (ALERT, or none). Lowercase; matched against the lowercased text.
var busyTexts = []string{
	"too many simultaneous connections", // Gmail: NO [ALERT] Too many simultaneous connections. (Failure)
	"too many connections",
	"maximum number of connections", // Dovecot: NO [LIMIT] Maximum number of connections from user+IP exceeded
	"connection limit",
	"try again later", // Courier, Cyrus: temporary refusals
}

// classifyLogin turns the error of a LOGIN/AUTHENTICATE command into what
// the session acts on: ErrServerBusy for a budget refusal, ErrAuth for
// refused credentials, else the error itself (a network failure, retried
// with the normal backoff). Error texts carry the server's words, never
// the secret (servers do not echo it).
func classifyLogin(username string, err error) error {
	if err == nil {
		return nil
	}
	var ie *imap.Error
	if errors.As(err, &ie) {
		if busyResponse(ie) {
			return fmt.Errorf("%w for %q: %s (too many connections or temporarily unavailable; retrying slowly)", ErrServerBusy, username, responseText(ie))
		}
		if ie.Type == imap.StatusResponseTypeNo || ie.Code == imap.ResponseCodeAuthenticationFailed {
			return fmt.Errorf("%w for %q: %s", ErrAuth, username, ie.Text)
		}
		return fmt.Errorf("login as %q: %w", username, err)
	}
	// The server closed the connection before answering the login: an
	// untagged "* BYE" followed by EOF (imapclient keeps no text of a BYE
	// after the greeting), the way servers at their connection limit drop
	// a client. A wrong password is answered with NO, not a hang-up.
	if hungUp(err) {
		return fmt.Errorf("%w for %q: the server closed the connection during login (often: too many connections; retrying slowly): %v", ErrServerBusy, username, err)
	}
	return fmt.Errorf("login as %q: %w", username, err)
}

// classifyGreeting marks a greeting of "* BYE" (a server that refuses the
// connection before login, e.g. at its per-IP limit) as ErrServerBusy; other
// greeting errors are returned as they are.
func classifyGreeting(err error) error {
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeBye {
		return fmt.Errorf("%w at the greeting: %s (too many connections or temporarily unavailable; retrying slowly)", ErrServerBusy, responseText(ie))
	}
	return err
}

// busyResponse reports whether a status response refuses for lack of
// connections or availability rather than for the credentials. A BYE is
// always one: a server that rejects a password answers NO and keeps the
// connection.
func busyResponse(ie *imap.Error) bool {
	if ie.Code == imap.ResponseCodeAuthenticationFailed || ie.Code == imap.ResponseCodeAuthorizationFailed {
		return false
	}
	switch {
	case ie.Type == imap.StatusResponseTypeBye:
		return true
	case ie.Code == imap.ResponseCodeUnavailable, ie.Code == imap.ResponseCodeLimit, ie.Code == "TOOMANY":
		return true
	}
	text := strings.ToLower(ie.Text)
	for _, s := range busyTexts {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// responseText is the server's text with its response code, as in
// "[LIMIT] Maximum number of connections…".
func responseText(ie *imap.Error) string {
	if ie.Code != "" {
		return "[" + string(ie.Code) + "] " + ie.Text
	}
	return ie.Text
}

func hungUp(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "connection reset by peer")
}
