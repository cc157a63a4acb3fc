//go:build linux

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"golang.org/x/sys/unix"

	"mailtap/config"
	"mailtap/internal/testimap"
	"mailtap/jsonstore"
	"mailtap/mailparse"
	"mailtap/watcher"
)

// TestBenchBackfill: the corpus in a private Dovecot, then `mailtap --once`
// (backfill all) and mbsync (Sync Pull into a Maildir) alternately, each
// into an empty dir, median of MAILTAP_BENCH_RUNS runs. Then, to explain
// the figures, the same work split up in-process: a raw FETCH, the parser
// alone, the store alone (parse, then group commit), and watcher.Manager as
// main wires it, with CPU and block profiles if MAILTAP_BENCH_PROFILE is set.
func TestBenchBackfill(t *testing.T) {
	bin := requireBench(t)
	mbsync, err := exec.LookPath("mbsync")
	if err != nil {
		t.Fatal("mbsync not found (apt-get install isync)")
	}
	n := envInt(t, messagesEnv, 10_000)
	runs := envInt(t, runsEnv, 3)

	genStart := time.Now()
	msgs := Corpus(DefaultSeed, n)
	var total int64
	for _, m := range msgs {
		total += int64(len(m))
	}
	t.Logf("corpus: %d messages, %s (average %d bytes), generated in %v", n, mb(total), total/int64(n), time.Since(genStart).Round(time.Millisecond))

	srv := testimap.StartDovecot(t, testimap.DovecotOptions{})
	delStart := time.Now()
	srv.DeliverMany(t, "INBOX", msgs)
	t.Logf("delivered to Dovecot in %v", time.Since(delStart).Round(time.Millisecond))

	// A raw FETCH first: it warms Dovecot's index and cache files and the
	// page cache for every contender alike, and is the floor: no client
	// can be faster than the server sends.
	fetch := rawFetch(t, srv, n)
	results.add("backfill", fmt.Sprintf("Dovecot raw UID FETCH 1:* BODY.PEEK[] of %d messages (imapclient, bodies discarded)", n),
		fmt.Sprintf("%.0f msgs/s, %.1f MB/s (%.2f s)", float64(n)/fetch.Seconds(), float64(total)/1e6/fetch.Seconds(), fetch.Seconds()), "", "")

	// Outputs are kept until the test ends: on ext4 without a journal
	// (this VM's root), creating a file skips every inode of its block
	// group deleted in the last ~30 s (ext4 recently_deleted()), so deleting
	// 10,000 files right before a run makes the next run's file creation
	// several times dearer.
	work := t.TempDir()
	cfgPath := filepath.Join(work, "config.json")
	rcPath := filepath.Join(work, "mbsyncrc")
	var mtRates, mbRates []float64
	var mtRuns, mbRuns []string
	var mtCPU, mbCPU []float64
	var mtRSS, mbRSS int64
	// Files deleted by whatever ran before (a previous test's temp dirs)
	// make file creation dearer for ~30 s on this filesystem; wait it out.
	time.Sleep(quietWait)
	for run := 1; run <= runs; run++ {
		// mailtap
		out := filepath.Join(work, fmt.Sprintf("mailtap-%d", run))
		writeConfig(t, cfgPath, srv, out, "metadata")
		settle()
		load := loadAvg()
		res := runTimed(t, bin, "--once", "-c", cfgPath, "--log-level", "warn")
		if got := countFiles(t, out, func(p string) bool { return strings.HasSuffix(p, ".json") }, ".mailtap"); got != n {
			t.Fatalf("mailtap run %d wrote %d records, want %d\n%s", run, got, n, tail(res.output, 20))
		}
		rate := float64(n) / res.wall.Seconds()
		mtRates = append(mtRates, rate)
		mtCPU = append(mtCPU, res.cpu().Seconds())
		mtRSS = max(mtRSS, res.maxRSS)
		mtRuns = append(mtRuns, fmt.Sprintf("%.0f", rate))
		t.Logf("run %d mailtap: %v, %.0f msgs/s, cpu %v (user %v, sys %v), maxrss %s, load %s", run, res.wall.Round(time.Millisecond), rate, res.cpu().Round(time.Millisecond), res.user.Round(time.Millisecond), res.sys.Round(time.Millisecond), mb(res.maxRSS), load)

		// mbsync
		maildir := filepath.Join(work, fmt.Sprintf("maildir-%d", run))
		if err := os.Mkdir(maildir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeMbsyncrc(t, rcPath, srv, maildir)
		settle()
		load = loadAvg()
		res = runTimed(t, mbsync, "-c", rcPath, "-a", "-q")
		if got := countFiles(t, maildir, func(p string) bool {
			d := filepath.Base(filepath.Dir(p))
			return d == "cur" || d == "new"
		}); got != n {
			t.Fatalf("mbsync run %d stored %d messages, want %d\n%s", run, got, n, tail(res.output, 20))
		}
		rate = float64(n) / res.wall.Seconds()
		mbRates = append(mbRates, rate)
		mbCPU = append(mbCPU, res.cpu().Seconds())
		mbRSS = max(mbRSS, res.maxRSS)
		mbRuns = append(mbRuns, fmt.Sprintf("%.0f", rate))
		t.Logf("run %d mbsync:  %v, %.0f msgs/s, cpu %v (user %v, sys %v), maxrss %s, load %s", run, res.wall.Round(time.Millisecond), rate, res.cpu().Round(time.Millisecond), res.user.Round(time.Millisecond), res.sys.Round(time.Millisecond), mb(res.maxRSS), load)
	}
	mt, mbs := median(mtRates), median(mbRates)
	mbPerMsg := float64(total) / 1e6 / float64(n)
	cpuPer := func(cpu []float64) string {
		return fmt.Sprintf("%.1f s CPU (%.0f µs/msg)", median(cpu), median(cpu)*1e6/float64(n))
	}
	results.add("backfill", fmt.Sprintf("`mailtap --once`, backfill all, %d msgs (median of %d; runs %s msgs/s)", n, runs, strings.Join(mtRuns, ", ")),
		fmt.Sprintf("**%.0f msgs/s, %.1f MB/s**; %s; peak RSS %s", mt, mt*mbPerMsg, cpuPer(mtCPU), mb(mtRSS)), "", "")
	results.add("backfill", fmt.Sprintf("mbsync (isync %s), Sync Pull into a Maildir (median of %d; runs %s msgs/s)", mbsyncVersion(mbsync), runs, strings.Join(mbRuns, ", ")),
		fmt.Sprintf("**%.0f msgs/s, %.1f MB/s**; %s; peak RSS %s", mbs, mbs*mbPerMsg, cpuPer(mbCPU), mb(mbRSS)), "", "")
	results.add("backfill", "mailtap ÷ mbsync, messages/s", fmt.Sprintf("**%.2f×**", mt/mbs), "≥ 3×", yesNo(mt/mbs >= 3))
	breakdown(t, srv, cfgPath, filepath.Join(work, "inproc"), msgs, total)
}

// quietWait is how long ext4 without a journal keeps skipping deleted
// inodes when it allocates new ones (vm.dirty_expire_centisecs, 30 s, plus
// 5 s for a dirty inode table block).
const quietWait = 36 * time.Second

// settle flushes dirty pages of the previous run (and its deletion) so
// each run starts with a clean page cache to write into.
func settle() {
	unix.Sync()
	time.Sleep(500 * time.Millisecond)
}

// rawFetch fetches every message body once over one connection and throws
// the bytes away.
func rawFetch(t *testing.T, srv server, n int) time.Duration {
	t.Helper()
	c, err := imapclient.DialInsecure(fmt.Sprintf("%s:%d", srv.Host(), srv.Port()), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(srv.Username(), srv.Password()).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cmd := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	got := 0
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			if body, ok := item.(imapclient.FetchItemDataBodySection); ok && body.Literal != nil {
				io.Copy(io.Discard, body.Literal)
			}
		}
		got++
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	if got != n {
		t.Fatalf("raw fetch returned %d messages, want %d", got, n)
	}
	c.Logout().Wait()
	return d
}

// writeMbsyncrc configures mbsync as its manual suggests for a one-way
// copy: Far is the IMAP account, Near a Maildir, Sync Pull, Create Near;
// everything else (PipelineDepth unlimited, FSync yes) at its default.
func writeMbsyncrc(t testing.TB, path string, srv server, maildir string) {
	t.Helper()
	rc := fmt.Sprintf(`IMAPAccount far
Host %s
Port %d
User %s
Pass %s
SSLType None
AuthMechs PLAIN LOGIN

IMAPStore far
Account far

MaildirStore near
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel bench
Far :far:
Near :near:
Patterns INBOX
Sync Pull
Create Near
SyncState *
`, srv.Host(), srv.Port(), srv.Username(), srv.Password(), maildir, maildir)
	if err := os.WriteFile(path, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mbsyncVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(out))
	return f[len(f)-1]
}

// breakdown measures where mailtap's backfill time goes, in this process:
//   - parse: mailparse.Parse of every message from memory, one goroutine;
//   - store: jsonstore batches as the watcher builds them (Parse + Finish
//     per message, Commit per 200) from memory, without IMAP, sequential,
//     timing Parse and Commit apart;
//   - manager: watcher.Manager in once mode against the same Dovecot,
//     wired as main wires it, with CPU and block profiles written to
//     MAILTAP_BENCH_PROFILE if set.
func breakdown(t *testing.T, srv server, cfgPath, dir string, msgs [][]byte, total int64) {
	n := len(msgs)
	rate := func(d time.Duration) string {
		return fmt.Sprintf("%.0f msgs/s, %.1f MB/s (%.2f s)", float64(n)/d.Seconds(), float64(total)/1e6/d.Seconds(), d.Seconds())
	}

	start := time.Now()
	for i, m := range msgs {
		if _, err := mailparse.Parse(bytes.NewReader(m), mailparse.ParseOptions{MaxBodyBytes: 1 << 20}); err != nil {
			t.Fatalf("parse message %d: %v", i, err)
		}
	}
	parse := time.Since(start)
	results.add("backfill, in-process split", "mailparse.Parse alone, from memory, 1 goroutine", rate(parse), "", "")

	settle()
	storeDir := filepath.Join(dir, "store")
	st, err := jsonstore.Open(storeDir, jsonstore.Options{Pretty: true, MaxBodyBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var parseT, commitT time.Duration
	start = time.Now()
	const batchSize = 200
	for lo := 0; lo < n; lo += batchSize {
		b := st.NewBatch("bench", "INBOX", 1, '/')
		t0 := time.Now()
		for i := lo; i < min(lo+batchSize, n); i++ {
			p, err := b.Parse(uint32(i+1), bytes.NewReader(msgs[i]))
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Finish(p, jsonstore.Meta{UID: uint32(i + 1), InternalDate: time.Now(), Size: int64(len(msgs[i]))}); err != nil {
				t.Fatal(err)
			}
		}
		t1 := time.Now()
		if _, err := b.Commit(uint32(min(lo+batchSize, n))); err != nil {
			t.Fatal(err)
		}
		parseT += t1.Sub(t0)
		commitT += time.Since(t1)
	}
	storeT := time.Since(start)
	st.Close()
	results.add("backfill, in-process split", "jsonstore batches from memory, no IMAP, no overlap: Parse+Finish / Commit (encode, write, sync, rename, checkpoint)",
		fmt.Sprintf("%s; Parse %.2f s (%.0f%%), Commit %.2f s (%.0f%%)", rate(storeT), parseT.Seconds(), 100*parseT.Seconds()/storeT.Seconds(), commitT.Seconds(), 100*commitT.Seconds()/storeT.Seconds()), "", "")

	// watcher.Manager, as main wires it.
	settle()
	out := filepath.Join(dir, "manager")
	writeConfig(t, cfgPath, srv, out, "metadata")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	store, err := jsonstore.Open(out, jsonstore.Options{Pretty: true, MaxBodyBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	mgr := watcher.New(cfg, store, &watcher.Options{Once: true, Logger: slog.New(slog.DiscardHandler)})
	profDir := os.Getenv(profileEnv)
	if profDir != "" {
		if err := os.MkdirAll(profDir, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(profDir, "backfill.cpu.pprof"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
	}
	var ru0, ru1 unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru0)
	start = time.Now()
	err = mgr.Run(context.Background())
	mgrT := time.Since(start)
	unix.Getrusage(unix.RUSAGE_SELF, &ru1)
	if profDir != "" {
		pprof.StopCPUProfile()
		runtime.SetBlockProfileRate(0)
		f, err := os.Create(filepath.Join(profDir, "backfill.block.pprof"))
		if err != nil {
			t.Fatal(err)
		}
		pprof.Lookup("block").WriteTo(f, 0)
		f.Close()
		t.Logf("profiles in %s: go tool pprof -top %s", profDir, filepath.Join(profDir, "backfill.cpu.pprof"))
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := countFiles(t, out, func(p string) bool { return strings.HasSuffix(p, ".json") }, ".mailtap"); got != n {
		t.Fatalf("in-process manager wrote %d records, want %d", got, n)
	}
	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	results.add("backfill, in-process split", "watcher.Manager{Once} in the test process (as main wires it)",
		fmt.Sprintf("%s; CPU %.2f s (%.0f%% of 2 cores)", rate(mgrT), cpu.Seconds(), 100*cpu.Seconds()/mgrT.Seconds()/float64(runtime.NumCPU())), "", "")
}
