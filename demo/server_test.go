package demo

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

const waitFor = 5 * time.Second

func startDemo(t *testing.T, ctx context.Context, opts Options) *Server {
	t.Helper()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func login(t *testing.T, s *Server, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	if opts == nil {
		opts = &imapclient.Options{}
	}
	opts.Dialer = &net.Dialer{Timeout: waitFor}
	c, err := imapclient.DialInsecure(s.Addr(), opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(s.Username(), s.Password()).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

func TestStart_seedsAndDeliversToIdleClients(t *testing.T) {
	s := startDemo(t, context.Background(), Options{Interval: 20 * time.Millisecond, Seed: 42})
	if s.Username() != "demo" || len(s.Password()) < 16 {
		t.Fatalf("credentials %q / %q", s.Username(), s.Password())
	}
	if host := s.Host(); host != "127.0.0.1" || s.Port() == 0 {
		t.Fatalf("listening on %s", s.Addr())
	}
	if got := s.Mailboxes(); !slices.Equal(got, []string{"INBOX", "Lists/golang"}) {
		t.Fatalf("Mailboxes() = %v", got)
	}

	exists := make(chan uint32, 64)
	c := login(t, s, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				select {
				case exists <- *d.NumMessages:
				default:
				}
			}
		},
	}})
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Mailbox)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"INBOX", "Lists/golang"}) {
		t.Fatalf("LIST = %v", names)
	}

	data, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	// The first five (seeds) are: plain, alternative, German, PDF, list.
	if data.NumMessages < 4 {
		t.Fatalf("INBOX starts with %d messages, want the 4 seeded ones at least", data.NumMessages)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(waitFor)
	for got := data.NumMessages; got < data.NumMessages+3; {
		select {
		case got = <-exists:
		case <-deadline:
			t.Fatalf("INBOX grew only to %d in %v", got, waitFor)
		}
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}

	// Seeded mail is back-dated, like a mailbox that was already in use.
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true, InternalDate: true}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("fetch 1: %v", err)
	}
	if age := time.Since(msgs[0].InternalDate); age < time.Hour {
		t.Errorf("first seeded message is %v old, want hours", age)
	}
	if msgs[0].Envelope.Subject == "" || len(msgs[0].Envelope.From) == 0 {
		t.Errorf("first message envelope %+v", msgs[0].Envelope)
	}
}

func TestStart_wrongPasswordRefused(t *testing.T) {
	s := startDemo(t, context.Background(), Options{Initial: -1})
	c, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("demo", "demo").Wait(); err == nil {
		t.Fatal("login with a guessed password succeeded")
	}
	if err := c.Login("demo", s.Password()).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	data, err := c.Select("INBOX", nil).Wait()
	if err != nil || data.NumMessages != 0 {
		t.Fatalf("Initial -1: INBOX has %d messages (%v), want 0", data.NumMessages, err)
	}
	other, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.Password() == s.Password() {
		t.Fatal("two runs share a password")
	}
}

func TestStart_ctxCancelStopsGenerator(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := startDemo(t, ctx, Options{Interval: 10 * time.Millisecond, Seed: 1})
	deadline := time.Now().Add(waitFor)
	for s.Delivered() < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages delivered in %v", s.Delivered(), waitFor)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-s.genDone:
	case <-time.After(waitFor):
		t.Fatal("generator still running after ctx was cancelled")
	}
	n := s.Delivered()

	// The server outlives ctx until Close, so clients wind down cleanly,
	// and nothing more arrives.
	c := login(t, s, nil)
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	lists, err := c.Status("Lists/golang", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := int(*st.NumMessages + *lists.NumMessages); got != n || s.Delivered() != n {
		t.Fatalf("server holds %d messages, Delivered %d → %d", got, n, s.Delivered())
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-c.Closed():
	case <-time.After(waitFor):
		t.Fatal("Close left a client connected")
	}
	if conn, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		conn.Close()
		t.Fatal("closed server still accepts connections")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestClose_stopsGeneratorWithoutCancel(t *testing.T) {
	s, err := Start(context.Background(), Options{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitFor):
		t.Fatal("Close hangs")
	}
	select {
	case <-s.genDone:
	default:
		t.Fatal("Close returned with the generator running")
	}
}

func TestStart_badAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Start(context.Background(), Options{Addr: ln.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("Start on a taken port: err = %v, want one naming the address", err)
	}
}

// Each start is a new server: its mailboxes must not report the
// UIDVALIDITY of the last one, or a second `mailtap --demo` on the same
// output dir waits for UIDs above its old checkpoint and captures nothing.
func TestStart_freshUIDValidityEachStart(t *testing.T) {
	seen := map[uint32]bool{}
	for range 3 {
		s := startDemo(t, context.Background(), Options{Interval: time.Hour, Seed: 7})
		c := login(t, s, nil)
		sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.Status("Lists/golang", &imap.StatusOptions{UIDValidity: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if sel.UIDValidity == 0 || sel.UIDValidity == st.UIDValidity {
			t.Errorf("UIDVALIDITY INBOX %d, Lists/golang %d: want distinct non-zero", sel.UIDValidity, st.UIDValidity)
		}
		if seen[sel.UIDValidity] {
			t.Errorf("a later start reused UIDVALIDITY %d", sel.UIDValidity)
		}
		seen[sel.UIDValidity] = true
		s.Close()
	}
}
