package watcher

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailtap/config"
)

func TestClassifyLogin_table(t *testing.T) {
	no := func(code imap.ResponseCode, text string) error {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
	}
	for _, c := range []struct {
		name string
		err  error
		want error // ErrServerBusy, ErrAuth or nil (neither)
	}{
		{"dovecot userip limit", no(imap.ResponseCodeLimit, "Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)"), ErrServerBusy},
		{"gmail too many", no(imap.ResponseCodeAlert, "Too many simultaneous connections. (Failure)"), ErrServerBusy},
		{"unavailable", no(imap.ResponseCodeUnavailable, "Backend not available"), ErrServerBusy},
		{"toomany code", no("TOOMANY", "slow down"), ErrServerBusy},
		{"text only", no("", "Too many connections from your IP"), ErrServerBusy},
		{"try again later", no("", "Temporary problem, please try again later"), ErrServerBusy},
		{"bye tagged as error", &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down"}, ErrServerBusy},
		{"wrapped", fmt.Errorf("authenticate: %w", no(imap.ResponseCodeLimit, "limit")), ErrServerBusy},
		{"hang-up during login", io.ErrUnexpectedEOF, ErrServerBusy},
		{"dovecot wrong password", no(imap.ResponseCodeAuthenticationFailed, "Authentication failed."), ErrAuth},
		{"plain NO", no("", "Invalid credentials (Failure)"), ErrAuth},
		{"authenticationfailed wins over busy text", no(imap.ResponseCodeAuthenticationFailed, "too many connections"), ErrAuth},
		{"authorizationfailed", no(imap.ResponseCodeAuthorizationFailed, "not allowed"), ErrAuth},
		{"bad", &imap.Error{Type: imap.StatusResponseTypeBad, Text: "syntax"}, nil},
		{"timeout", fmt.Errorf("read: %w", &net.OpError{Op: "read", Err: errTimeout{}}), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := classifyLogin("me@example.com", c.err)
			isBusy, isAuth := errors.Is(got, ErrServerBusy), errors.Is(got, ErrAuth)
			switch {
			case c.want == ErrServerBusy && (!isBusy || isAuth),
				c.want == ErrAuth && (!isAuth || isBusy),
				c.want == nil && (isBusy || isAuth):
				t.Fatalf("classifyLogin(%v) = %v; want %v", c.err, got, c.want)
			}
			if !strings.Contains(got.Error(), "me@example.com") {
				t.Errorf("error %q does not name the user", got)
			}
		})
	}
	if classifyLogin("u", nil) != nil {
		t.Error("classifyLogin(nil) != nil")
	}
}

type errTimeout struct{}

func (errTimeout) Error() string { return "i/o timeout" }
func (errTimeout) Timeout() bool { return true }

func TestClassifyGreeting_bye(t *testing.T) {
	bye := &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Too many connections"}
	if err := classifyGreeting(bye); !errors.Is(err, ErrServerBusy) || !strings.Contains(err.Error(), "Too many connections") {
		t.Errorf("classifyGreeting(BYE) = %v", err)
	}
	other := errors.New("connection closed before greeting")
	if err := classifyGreeting(other); err != other {
		t.Errorf("classifyGreeting(other) = %v", err)
	}
}

// scriptedServer accepts one connection on loopback, greets with greeting
// and answers the first command with reply (tag substituted for %s), then
// closes if hangUp.
func scriptedServer(t *testing.T, greeting, reply string) (host string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(c, greeting)
		if strings.HasPrefix(greeting, "* BYE") {
			return
		}
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			tag, rest, _ := strings.Cut(line, " ")
			if strings.HasPrefix(strings.ToUpper(rest), "CAPABILITY") {
				fmt.Fprintf(c, "* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\n%s OK done\r\n", tag)
				continue
			}
			if reply == "" { // untagged BYE then hang up
				fmt.Fprint(c, "* BYE Too many connections, bye\r\n")
				return
			}
			fmt.Fprintf(c, reply, tag)
			return
		}
	}()
	a := ln.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

// TestLogin_realClient drives dial and login with go-imap's client against
// scripted replies, so the classification sees what imapclient really
// returns (an *imap.Error for tagged NO and a BYE greeting, a bare EOF for
// an untagged BYE during login).
func TestLogin_realClient(t *testing.T) {
	const ok = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n"
	for _, c := range []struct {
		name, greeting, reply string
		want                  error
	}{
		{"dovecot limit", ok, "%s NO [LIMIT] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=2)\r\n", ErrServerBusy},
		{"gmail alert", ok, "%s NO [ALERT] Too many simultaneous connections. (Failure)\r\n", ErrServerBusy},
		{"unavailable", ok, "%s NO [UNAVAILABLE] Internal error occurred. Refer to server log for more information.\r\n", ErrServerBusy},
		{"bye during login", ok, "", ErrServerBusy},
		{"bye greeting", "* BYE Too many connections from your IP\r\n", "", ErrServerBusy},
		{"wrong password", ok, "%s NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", ErrAuth},
	} {
		t.Run(c.name, func(t *testing.T) {
			host, port := scriptedServer(t, c.greeting, c.reply)
			acct := &config.Account{Name: "a", Host: host, Port: port, TLS: "none", Username: "me", Auth: "plain"}
			w := &config.Watch{ResponseTimeout: config.Duration{Duration: 5 * time.Second}}
			cl, _, err := dial(context.Background(), acct, w, &imapclient.Options{}, new(atomic.Int64))
			if err == nil {
				defer cl.Close()
				err = login(cl, acct, "s3cret-password")
			}
			isBusy, isAuth := errors.Is(err, ErrServerBusy), errors.Is(err, ErrAuth)
			if (c.want == ErrServerBusy) != isBusy || (c.want == ErrAuth) != isAuth {
				t.Fatalf("err = %v; want %v", err, c.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error %q holds the secret", err)
			}
		})
	}
}
