package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailtap/internal/testimap"
	"mailtap/jsonstore"
)

// seedEnv fixes the random schedules of the tests (kill moments), to replay
// a failure: the seed is logged by every test that uses one.
const seedEnv = "MAILTAP_E2E_SEED"

func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(seedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", seedEnv, s, err)
		}
		seed = v
	}
	t.Logf("random seed %d (%s=%d replays this schedule)", seed, seedEnv, seed)
	return seed
}

var messageIDHeader = regexp.MustCompile(`(?m)^Message-ID: <([^>]+)>\r?$`)

// messageID is the Message-ID of a testimap.Msg message, without brackets.
func messageID(t *testing.T, raw []byte) string {
	t.Helper()
	m := messageIDHeader.FindSubmatch(raw)
	if m == nil {
		t.Fatalf("test message without Message-ID: %.200q", raw)
	}
	return string(m[1])
}

// TestCrash_sigkillDuringBackfill: a 3,000-message backfill is killed with
// SIGKILL at 20 random moments and restarted each time. After every kill the
// checkpoint is covered by durable records and nothing but finished records
// is visible; at the end there is exactly one complete record per message.
// It runs twice: on the store's Linux fast path (unnamed temp files linked
// into place, syncfs) and on the portable path every other OS takes (named
// temp files, fsync, rename, directory fsync), which jsonstore.PortableEnv
// turns on in the binary. The subtests run one after the other, as each
// is heavy on the disk.
func TestCrash_sigkillDuringBackfill(t *testing.T) {
	binary(t)
	t.Parallel()
	t.Run("fast", func(t *testing.T) { testCrashDuringBackfill(t, nil) })
	t.Run("portable", func(t *testing.T) { testCrashDuringBackfill(t, []string{jsonstore.PortableEnv + "=1"}) })
}

func testCrashDuringBackfill(t *testing.T, env []string) {
	headless := func(t *testing.T, cfgPath string) *proc {
		t.Helper()
		return startMailtap(t, runOpts{args: []string{"--headless", "--log-format", "json", "-c", cfgPath}, env: env})
	}
	rng := rand.New(rand.NewPCG(testSeed(t), 0x6d61696c746170))
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{})

	const n, kills = 3000, 20
	msgs := make([][]byte, n)
	for i := range msgs {
		// 1–24 KB: enough that a kill often lands inside a body.
		msgs[i] = testimap.MsgSized(fmt.Sprintf("crash test %d", i+1), i+1, 1000+rng.IntN(23000))
	}
	uids := dc.DeliverMany(t, "INBOX", msgs)
	wantID := make(map[uint32]string, n)
	for i, u := range uids {
		wantID[u] = messageID(t, msgs[i])
	}
	maxUID := uids[len(uids)-1]

	out := filepath.Join(t.TempDir(), "out")
	cfg := baseConfig(dc, out).Write(t)

	// rate is records per second of a run, startup included; it spreads
	// the random kills over the run time still expected. It starts near
	// what this machine does and follows what the runs show.
	rate := 2000.0
	seen := map[string]bool{}
	midCapture, inCommit, progressed := 0, 0, 0
	for k := 1; k <= kills; k++ {
		before := countRecords(out)
		dirStamp := modTime(mailboxDir(out))
		p := headless(t, cfg)
		started := time.Now()
		var phase string
		switch r := rng.IntN(10); {
		case before == n || r < 2:
			// Startup: lock, temp cleanup, checkpoint, login, EXAMINE,
			// search, the first FETCH.
			phase = "startup"
			time.Sleep(time.Duration(rng.Int64N(int64(250 * time.Millisecond))))
		case r < 5:
			// Commit: the moment records start appearing (renames, the
			// directory fsync, the checkpoint write) is the narrowest
			// and most delicate window, so aim at it.
			phase = "commit"
			deadline := time.Now().Add(30 * time.Second)
			for p.running() && time.Now().Before(deadline) {
				if st := modTime(mailboxDir(out)); !st.Equal(dirStamp) {
					// A commit that only replaces the records an earlier
					// kill left visible (the re-capture of a batch) is
					// not the one to aim at, or a store slow to place a
					// batch would never get past it: wait for new ones.
					if countRecords(out) > before {
						break
					}
					dirStamp = st
				}
				time.Sleep(200 * time.Microsecond)
			}
			time.Sleep(time.Duration(rng.Int64N(int64(3 * time.Millisecond))))
		default:
			// Anywhere in the run still expected, at most 1.5 s in so that
			// one bad rate estimate cannot use up the backfill.
			phase = "random"
			left := float64(n-before) / rate
			window := min(2*left/float64(kills-k+1), 1.5)
			time.Sleep(time.Duration(rng.Float64() * window * float64(time.Second)))
		}
		atKill := countRecords(out)
		p.kill()
		lived := time.Since(started)
		after := countRecords(out)
		if atKill < n {
			midCapture++
		}
		if phase == "commit" && after > before {
			inCommit++
		}
		if after > before {
			progressed++
		}
		// Only a run killed at a random moment, long enough to amortise
		// most of its startup, says how fast a run goes; a commit kill
		// does not.
		if phase == "random" && after > before && lived > 200*time.Millisecond {
			rate = float64(after-before) / lived.Seconds()
		}
		_, last, _ := readCheckpoint(t, out)
		t.Logf("kill %2d: %-7s after %-8s records %4d → %4d, checkpoint %d",
			k, phase, lived.Round(time.Millisecond), before, after, last)

		assertCheckpointCovered(t, out, uids)
		assertOnlyRecords(t, out)
		checkNewRecords(t, out, seen, wantID)
		assertNoPanic(t, p)
		if t.Failed() {
			t.FailNow()
		}
		p.quiet = true // its log is of no interest once its kill passed
	}
	if midCapture < kills/2 {
		t.Errorf("only %d of %d kills landed before the backfill was complete; the schedule does not test what it should", midCapture, kills)
	}
	if progressed < 2 {
		t.Errorf("only %d of %d runs got records written before their kill; the schedule does not test what it should", progressed, kills)
	}

	// The last run finishes the job and exits cleanly on SIGTERM.
	p := headless(t, cfg)
	p.waitLog(0, 60*time.Second, "state=idle after the backfill", stateIs("idle"))
	portableLog := func(l logLine) bool { return strings.Contains(l.str("msg"), "portable write path") }
	if env != nil {
		p.waitLog(0, time.Second, "saying the store took its portable path", portableLog)
	} else if _, ok := p.logs.waitFrom(0, 0, portableLog); ok {
		t.Error("the store took its portable path without being asked")
	}
	waitRecords(t, p, out, n, time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, last, _ := readCheckpoint(t, out); last == maxUID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint did not reach uid %d", maxUID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.stop()
	assertNoPanic(t, p)

	recs := readRecords(t, out)
	if len(recs) != n {
		t.Errorf("%d records, want %d", len(recs), n)
	}
	byUID := map[uint32]bool{}
	ids := map[string]uint32{}
	for _, r := range recs {
		if byUID[r.UID] {
			t.Errorf("uid %d has two records", r.UID)
		}
		byUID[r.UID] = true
		if prev, dup := ids[r.MessageID]; dup {
			t.Errorf("message_id %q captured twice (uids %d and %d)", r.MessageID, prev, r.UID)
		}
		ids[r.MessageID] = r.UID
		if want, ok := wantID[r.UID]; !ok || want != r.MessageID {
			t.Errorf("uid %d: message_id %q, want %q", r.UID, r.MessageID, want)
		}
	}
	for u, id := range wantID {
		if !byUID[u] {
			t.Errorf("message uid %d (%s) was never captured", u, id)
		}
	}
	assertCheckpointCovered(t, out, uids)
	assertOnlyRecords(t, out)
	if left, _ := os.ReadDir(filepath.Join(out, ".mailtap", "tmp")); len(left) > 0 {
		t.Errorf("%d temp files left in .mailtap/tmp after a clean stop, e.g. %s", len(left), left[0].Name())
	}
	t.Logf("%d of %d kills landed mid-backfill, %d of them while a batch was being committed, %d after records were written; ≈ %.0f records/s per run",
		midCapture, kills, inCommit, progressed, rate)
}

// modTime is a directory's mtime (zero if it does not exist): it changes
// when a commit renames the first record of a batch into it.
func modTime(dir string) time.Time {
	fi, err := os.Stat(dir)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// checkNewRecords parses the records not seen before (records are
// immutable once visible, so each is parsed once) and checks each is the
// message its UID names.
func checkNewRecords(t *testing.T, out string, seen map[string]bool, wantID map[uint32]string) {
	t.Helper()
	entries, err := os.ReadDir(mailboxDir(out))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if seen[e.Name()] || !recordName.MatchString(e.Name()) {
			continue
		}
		seen[e.Name()] = true
		r := parseRecordFile(t, filepath.Join(mailboxDir(out), e.Name()))
		if r == nil {
			continue
		}
		if want := wantID[r.UID]; r.MessageID != want {
			t.Errorf("%s: message_id %q, want %q", e.Name(), r.MessageID, want)
		}
	}
}
