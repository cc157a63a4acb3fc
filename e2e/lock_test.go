package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailtap/internal/testimap"
)

// TestLock_secondInstanceRefused: a second mailtap on the same output dir
// exits 2 at once with a message naming the dir and the pid holding it; the
// first keeps capturing.
func TestLock_secondInstanceRefused(t *testing.T) {
	binary(t)
	t.Parallel()
	srv := testimap.StartMem(t)
	out := filepath.Join(t.TempDir(), "out")
	cfg := baseConfig(srv, out).Write(t)
	first := headless(t, cfg)
	first.waitLog(0, 20*time.Second, "state=idle", stateIs("idle"))

	for _, mode := range [][]string{{"--headless"}, {"--once"}} {
		args := append(mode, "--log-format", "json", "-c", cfg)
		second := startMailtap(t, runOpts{args: args})
		if code := second.exitCode(10 * time.Second); code != 2 {
			t.Errorf("second instance (%s) exited %d, want 2", mode[0], code)
		}
		msg := second.logs.text()
		abs, _ := filepath.Abs(out)
		for _, want := range []string{abs, fmt.Sprintf("pid %d", first.pid()), "another mailtap"} {
			if !strings.Contains(msg, want) {
				t.Errorf("second instance (%s) says %q; want it to mention %q", mode[0], strings.TrimSpace(msg), want)
			}
		}
	}

	// The first one is unaffected: still running, still capturing.
	uid := srv.Deliver(t, "INBOX", testimap.Msg("after the second instance was refused", 1))
	first.waitLog(0, 10*time.Second, fmt.Sprintf("captured uid=%d", uid), capturedUID(uid))
	first.stop()
	if recs := readRecords(t, out); len(recs) != 1 {
		t.Errorf("%d records, want 1", len(recs))
	}
}
