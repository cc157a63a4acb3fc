package memimap

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

const waitFor = 5 * time.Second

// upstream serves imapmemserver's own sessions instead of Session, to show
// that TestSession_idleNeverMissesDeliveryRightAfterIdling catches the bug:
// go test -race -run RightAfterIdling -upstream ./internal/memimap
var upstream = flag.Bool("upstream", false, "serve imapmemserver's sessions without this package's Idle")

// loginSession is the smallest session around Session, as demo and
// testimap build theirs: Login sets UserSession.
type loginSession struct {
	Session
	user *imapmemserver.User
}

func (s *loginSession) Login(username, password string) (err error) {
	s.UserSession, err = logIn(s.user, username, password)
	return err
}

// upstreamSession is imapmemserver's session without this package, the
// control that shows the lost wake-up.
type upstreamSession struct {
	*imapmemserver.UserSession
	user *imapmemserver.User
}

func (s *upstreamSession) Login(username, password string) (err error) {
	s.UserSession, err = logIn(s.user, username, password)
	return err
}

// logIn accepts user/pass for the one account.
func logIn(user *imapmemserver.User, username, password string) (*imapmemserver.UserSession, error) {
	if username != "user" || password != "pass" {
		return nil, imapserver.ErrAuthFailed
	}
	return imapmemserver.NewUserSession(user), nil
}

// store is a running server: its backend and the Changes its sessions
// share.
type store struct {
	addr    string
	user    *imapmemserver.User
	changes *Changes
}

// startServer serves an INBOX and an Archive on loopback until the test
// ends.
func startServer(t *testing.T) *store {
	t.Helper()
	st := &store{user: imapmemserver.NewUser("user", "pass"), changes: new(Changes)}
	for _, name := range []string{"INBOX", "Archive"} {
		if err := st.user.Create(name, nil); err != nil {
			t.Fatalf("create %q: %v", name, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st.addr = ln.Addr().String()
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			if *upstream {
				return &upstreamSession{user: st.user}, nil, nil
			}
			return &loginSession{Session: NewSession(st.changes), user: st.user}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapMove: {}, imap.CapUIDPlus: {}},
		Logger:       log.New(io.Discard, "", 0), // clients going away at cleanup
		InsecureAuth: true,
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return st
}

// deliver appends a message behind the sessions' back, as demo and
// testimap deliver mail, and tells the sessions.
func (st *store) deliver(t *testing.T, mailbox string) {
	t.Helper()
	raw := "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n"
	if _, err := st.user.Append(mailbox, strings.NewReader(raw), &imap.AppendOptions{}); err != nil {
		t.Fatalf("append to %q: %v", mailbox, err)
	}
	st.changes.Notify()
}

// dial logs in and returns the client and the unilateral updates it gets,
// as lines like "EXISTS 3", "EXPUNGE 1" or "FETCH 1 FLAGS [\Seen]".
func dial(t *testing.T, addr string) (*imapclient.Client, <-chan string) {
	t.Helper()
	updates := make(chan string, 1024)
	c, err := imapclient.DialInsecure(addr, &imapclient.Options{
		Dialer: &net.Dialer{Timeout: waitFor},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					updates <- fmt.Sprintf("EXISTS %d", *d.NumMessages)
				}
			},
			Expunge: func(seq uint32) { updates <- fmt.Sprintf("EXPUNGE %d", seq) },
			Fetch: func(msg *imapclient.FetchMessageData) {
				buf, err := msg.Collect()
				if err != nil {
					updates <- fmt.Sprintf("FETCH %d error %v", msg.SeqNum, err)
					return
				}
				flags := slices.Clone(buf.Flags)
				slices.Sort(flags)
				updates <- fmt.Sprintf("FETCH %d FLAGS %v", buf.SeqNum, flags)
			},
		},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login("user", "pass").Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c, updates
}

// waitUpdate waits for the update want, skipping others.
func waitUpdate(t *testing.T, updates <-chan string, want, during string) {
	t.Helper()
	deadline := time.After(waitFor)
	var seen []string
	for {
		select {
		case u := <-updates:
			if u == want {
				return
			}
			seen = append(seen, u)
		case <-deadline:
			t.Fatalf("%s: no %q in %v (got %q)", during, want, waitFor, seen)
		}
	}
}

func stopIdle(t *testing.T, idle *imapclient.IdleCommand) {
	t.Helper()
	if err := idle.Close(); err != nil {
		t.Fatalf("stop idle: %v", err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("idle: %v", err)
	}
}

// The bug this package works around: a delivery right after "+ idling"
// (c.Idle returns once the client has read it) must still be announced.
// Each round has one chance to fall into the gap before the server's IDLE
// goroutine registers; with imapmemserver's own Idle (-upstream) some
// round waits forever.
func TestSession_idleNeverMissesDeliveryRightAfterIdling(t *testing.T) {
	st := startServer(t)
	c, updates := dial(t, st.addr)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("select: %v", err)
	}
	const rounds = 200
	for i := 1; i <= rounds; i++ {
		idle, err := c.Idle()
		if err != nil {
			t.Fatalf("round %d: idle: %v", i, err)
		}
		st.deliver(t, "INBOX")
		waitUpdate(t, updates, fmt.Sprintf("EXISTS %d", i), fmt.Sprintf("round %d of %d", i, rounds))
		stopIdle(t, idle)
	}
}

// Mail delivered before IDLE, while the client was busy, is announced when
// IDLE starts rather than with the next change.
func TestSession_idleAnnouncesEarlierDelivery(t *testing.T) {
	st := startServer(t)
	c, updates := dial(t, st.addr)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("select: %v", err)
	}
	// Delivered without Notify: only Idle's first Poll can find it.
	raw := "Subject: quiet\r\n\r\nhi\r\n"
	if _, err := st.user.Append("INBOX", strings.NewReader(raw), &imap.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatalf("idle: %v", err)
	}
	waitUpdate(t, updates, "EXISTS 1", "idle after a quiet delivery")
	stopIdle(t, idle)
}

// IDLE without a selected mailbox has nothing to report, but still waits
// for DONE and survives deliveries.
func TestSession_idleWithoutMailbox(t *testing.T) {
	st := startServer(t)
	c, _ := dial(t, st.addr)
	idle, err := c.Idle()
	if err != nil {
		t.Fatalf("idle: %v", err)
	}
	st.deliver(t, "INBOX")
	st.deliver(t, "INBOX")
	stopIdle(t, idle)
	if err := c.Noop().Wait(); err != nil {
		t.Fatalf("noop after idle: %v", err)
	}
}

// Idle listens to Changes only, so each command that changes a mailbox
// must fire it for another session's IDLE to hear of the change.
func TestSession_commandsWakeOtherSessionsIdle(t *testing.T) {
	seqOne := imap.SeqSetNum(1)
	tests := []struct {
		name   string
		sel    string // mailbox the acting client selects first
		act    func(c *imapclient.Client) error
		update string // what the client idling on INBOX must get
	}{
		{"append", "", func(c *imapclient.Client) error {
			raw := "Subject: appended\r\n\r\nhi\r\n"
			cmd := c.Append("INBOX", int64(len(raw)), nil)
			if _, err := io.WriteString(cmd, raw); err != nil {
				return err
			}
			if err := cmd.Close(); err != nil {
				return err
			}
			_, err := cmd.Wait()
			return err
		}, "EXISTS 3"},
		{"copy", "Archive", func(c *imapclient.Client) error {
			_, err := c.Copy(seqOne, "INBOX").Wait()
			return err
		}, "EXISTS 3"},
		{"move", "Archive", func(c *imapclient.Client) error {
			_, err := c.Move(seqOne, "INBOX").Wait()
			return err
		}, "EXISTS 3"},
		{"store", "INBOX", func(c *imapclient.Client) error {
			return c.Store(seqOne, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close()
		}, `FETCH 1 FLAGS [\Flagged]`},
		{"fetch sets seen", "INBOX", func(c *imapclient.Client) error {
			_, err := c.Fetch(seqOne, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
			return err
		}, `FETCH 1 FLAGS [\Seen]`},
		{"expunge", "INBOX", func(c *imapclient.Client) error {
			if err := c.Store(seqOne, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
				return err
			}
			return c.Expunge().Close()
		}, "EXPUNGE 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := startServer(t)
			st.deliver(t, "INBOX")
			st.deliver(t, "Archive")

			idler, updates := dial(t, st.addr)
			if _, err := idler.Select("INBOX", nil).Wait(); err != nil {
				t.Fatalf("select: %v", err)
			}
			idle, err := idler.Idle()
			if err != nil {
				t.Fatalf("idle: %v", err)
			}
			// Once this delivery is announced, the idler's Idle is past
			// its first Poll, waiting for a Notify: no later Poll can pick
			// up the action's change by luck.
			st.deliver(t, "INBOX")
			waitUpdate(t, updates, "EXISTS 2", "delivery during idle")

			actor, _ := dial(t, st.addr)
			if tt.sel != "" {
				if _, err := actor.Select(tt.sel, nil).Wait(); err != nil {
					t.Fatalf("select %q: %v", tt.sel, err)
				}
			}
			if err := tt.act(actor); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			waitUpdate(t, updates, tt.update, tt.name+" by another session")
			stopIdle(t, idle)
		})
	}
}

func TestChanges_notifyWakesEveryWaiterOnce(t *testing.T) {
	var c Changes
	c.Notify() // nobody waits: a no-op, not a panic

	a, b := c.next(), c.next()
	select {
	case <-a:
		t.Fatal("closed before Notify")
	default:
	}
	c.Notify()
	for i, ch := range []<-chan struct{}{a, b} {
		select {
		case <-ch:
		default:
			t.Fatalf("waiter %d not woken", i)
		}
	}
	next := c.next()
	select {
	case <-next:
		t.Fatal("a wait after Notify is already woken")
	default:
	}
	c.Notify()
	c.Notify()
	<-next
}
