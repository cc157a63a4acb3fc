package sshui

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The host key is generated once, 0600, and the same key is read back on
// the next start.
func TestHostKey_generatedOnce(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := loadHostKey("", dir, log)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, HostKeyName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("host key mode %o, want 600", st.Mode().Perm())
	}
	b, err := loadHostKey("", dir, log)
	if err != nil {
		t.Fatal(err)
	}
	if fingerprint(a.PublicKey()) != fingerprint(b.PublicKey()) || a.PublicKey().Type() != "ssh-ed25519" {
		t.Errorf("second start: %s %s, first %s", b.PublicKey().Type(), fingerprint(b.PublicKey()), fingerprint(a.PublicKey()))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left: %v", entries)
	}
	if _, err := loadHostKey(filepath.Join(dir, "missing"), dir, log); err == nil {
		t.Error("a missing ssh.host_key was accepted")
	}
}

// Delays double per address from the second failure, cap at 30 s, and a
// login or 15 quiet minutes forget them.
func TestLimiter_delays(t *testing.T) {
	now := time.Unix(1e9, 0)
	l := newLimiter(time.Second)
	l.now = func() time.Time { return now }
	var got []time.Duration
	for range 8 {
		got = append(got, l.fail("192.0.2.1"))
	}
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	if d := l.fail("192.0.2.2"); d != 0 {
		t.Errorf("another address starts delayed: %s", d)
	}
	l.succeed("192.0.2.1")
	if d := l.fail("192.0.2.1"); d != 0 {
		t.Errorf("after a login: %s", d)
	}
	now = now.Add(failureMemory + time.Second)
	if d := l.fail("192.0.2.2"); d != 0 {
		t.Errorf("after 15 quiet minutes: %s", d)
	}
}

// A write blocked past the timeout fails, later writes fail at once, and
// stall runs once.
func TestWatchdogWriter_stall(t *testing.T) {
	r, w := io.Pipe() // nobody reads
	defer r.Close()
	stalls := 0
	ww := newWatchdogWriter(w, 50*time.Millisecond, nil, func() { stalls++ })
	if _, err := ww.Write([]byte("frame")); err != errStalled {
		t.Fatalf("blocked write: %v", err)
	}
	if _, err := ww.Write([]byte("next")); err != errStalled {
		t.Fatalf("write after a stall: %v", err)
	}
	w.CloseWithError(io.ErrClosedPipe) // the connection goes: the pump ends
	ww.Close()
	if stalls != 1 {
		t.Errorf("stall ran %d times", stalls)
	}
}

// Output that the client never reads, though every write succeeds (the
// SSH window is not full yet), is found by the unanswered probe: stall
// runs once, within about 1.25 × the timeout. Answered probes never stall.
func TestWatchdogWriter_unansweredProbe(t *testing.T) {
	const timeout = 100 * time.Millisecond
	for _, tc := range []struct {
		name     string
		answered bool
	}{{"answered", true}, {"unanswered", false}} {
		t.Run(tc.name, func(t *testing.T) {
			never := make(chan struct{})
			defer close(never)
			probes := make(chan struct{}, 100)
			probe := func() error {
				probes <- struct{}{}
				if !tc.answered {
					<-never
				}
				return nil
			}
			stalled := make(chan time.Time, 1)
			ww := newWatchdogWriter(io.Discard, timeout, probe, func() { stalled <- time.Now() })
			defer ww.Close()
			start := time.Now()
			// Ten timeouts of steady, accepted output.
			for time.Since(start) < 10*timeout {
				if _, err := ww.Write([]byte("frame")); err != nil {
					if tc.answered {
						t.Fatalf("write: %v", err)
					}
					break
				}
				time.Sleep(timeout / 10)
			}
			select {
			case at := <-stalled:
				if tc.answered {
					t.Fatalf("stalled with every probe answered")
				}
				if d := at.Sub(start); d < timeout || d > 5*timeout {
					t.Errorf("stalled after %s; want about %s", d, timeout+timeout/4)
				}
			default:
				if !tc.answered {
					t.Fatalf("output never read for %s, and no stall", 10*timeout)
				}
				// Paced: at most one probe per timeout/4, plus the first.
				if n := len(probes); n < 2 || n > 41 {
					t.Errorf("%d probes in %s", n, 10*timeout)
				}
			}
		})
	}
}
