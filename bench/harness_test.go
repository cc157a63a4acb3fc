//go:build linux

package bench

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mailtap/internal/testbin"
)

// Environment knobs. Only MAILTAP_BENCH is needed; the others shrink the
// run while the harness is being worked on.
const (
	benchEnv    = "MAILTAP_BENCH"         // "1": run the measurements
	binaryEnv   = "MAILTAP_BENCH_BINARY"  // a prebuilt mailtap instead of building one
	reportEnv   = "MAILTAP_BENCH_REPORT"  // also write the results table (Markdown) here
	profileEnv  = "MAILTAP_BENCH_PROFILE" // write CPU/block profiles of the in-process backfill into this dir
	messagesEnv = "MAILTAP_BENCH_MESSAGES"
	runsEnv     = "MAILTAP_BENCH_RUNS"
	latencyEnv  = "MAILTAP_BENCH_LATENCY_N"
	idleEnv     = "MAILTAP_BENCH_IDLE_SECONDS"
	largeEnv    = "MAILTAP_BENCH_LARGE_MB"
)

var (
	mailtapBin string
	setupErr   error
	results    resultTable
)

func TestMain(m *testing.M) {
	flag.Parse()
	var tmp string
	if enabled() {
		if bin := os.Getenv(binaryEnv); bin != "" {
			mailtapBin = bin
		} else {
			tmp, setupErr = os.MkdirTemp("", "mailtap-bench-bin-")
			if setupErr == nil {
				mailtapBin = filepath.Join(tmp, "mailtap")
				setupErr = buildMailtap(mailtapBin)
			}
		}
	}
	code := m.Run()
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	if len(results.rows) > 0 {
		md := results.markdown()
		fmt.Printf("\n%s\n", md)
		if path := os.Getenv(reportEnv); path != "" {
			if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "write %s: %v\n", path, err)
				code = 1
			}
		}
	}
	os.Exit(code)
}

func enabled() bool {
	v := os.Getenv(benchEnv)
	return v != "" && v != "0"
}

// requireBench skips unless MAILTAP_BENCH is set: these take minutes and
// need root, Dovecot and mbsync.
func requireBench(t *testing.T) string {
	t.Helper()
	if !enabled() {
		t.Skipf("measurement; set %s=1 to run (see bench/run.sh)", benchEnv)
	}
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	if _, err := os.Stat(gnuTime); err != nil {
		t.Fatalf("%s: %v (apt-get install time)", gnuTime, err)
	}
	return mailtapBin
}

// buildMailtap builds the module's main package as a user would.
func buildMailtap(out string) error { return testbin.Build(out, nil) }

func envInt(t testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// ---- results ----

type resultRow struct {
	bench, figure, value, target, met string
}

type resultTable struct {
	mu   sync.Mutex
	rows []resultRow
}

// add records a figure. met is "yes", "no" or "" (no target).
func (r *resultTable) add(bench, figure, value, target, met string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, resultRow{bench, figure, value, target, met})
}

func (r *resultTable) markdown() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), machine())
	b.WriteString("| benchmark | figure | value | target | met |\n|---|---|---|---|---|\n")
	for _, row := range r.rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", row.bench, row.figure, row.value, row.target, row.met)
	}
	return b.String()
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// machine describes where the figures were taken.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if kb, err := strconv.Atoi(f[1]); err == nil {
				mem = fmt.Sprintf(", %.0f GB RAM", float64(kb)/1e6)
			}
		}
	}
	return fmt.Sprintf("%d × %s%s, %s, %s", runtime.NumCPU(), model, mem, runtime.Version(), fsType("/tmp"))
}

// fsType is the filesystem type of the mount holding path (from
// /proc/self/mounts, the longest matching mount point).
func fsType(path string) string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "unknown filesystem"
	}
	abs, _ := filepath.EvalSymlinks(path)
	best, typ, dev := "", "unknown filesystem", ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		if (abs == f[1] || strings.HasPrefix(abs, strings.TrimSuffix(f[1], "/")+"/")) && len(f[1]) >= len(best) {
			best, typ, dev = f[1], f[2], f[0]
		}
	}
	return fmt.Sprintf("%s on %s (%s)", path, typ, dev)
}

// loadAvg is the 1-minute load average.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// ---- mailtap config ----

type server interface {
	Host() string
	Port() int
	Username() string
	Password() string
}

// writeConfig writes the config the benchmarks use (design.md §3): one
// plain-text loopback account, backfill all, pretty records, attachments
// as given, the default watch settings.
func writeConfig(t testing.TB, path string, srv server, out, attachments string, mailboxes ...string) {
	t.Helper()
	if len(mailboxes) == 0 {
		mailboxes = []string{"INBOX"}
	}
	cfg := testbin.Config{
		Accounts: []testbin.Account{{Name: "bench", Host: srv.Host(), Port: srv.Port(), TLS: "none",
			Username: srv.Username(), Password: srv.Password(), Auth: "plain", Mailboxes: mailboxes, Backfill: "all"}},
		Output: testbin.Output{Dir: out, Attachments: attachments, MaxBodyBytes: 1 << 20, Pretty: true},
		Watch:  testbin.Watch{IDLE: true, PollInterval: "60s", MaxBackoff: "5m", IdleRefresh: "5m", ResponseTimeout: "30s"},
	}
	if err := cfg.WriteFile(path); err != nil {
		t.Fatal(err)
	}
}

// ---- processes ----

type procResult struct {
	wall      time.Duration
	user, sys time.Duration
	maxRSS    int64 // bytes, from wait4's rusage
	output    []byte
}

func (p procResult) cpu() time.Duration { return p.user + p.sys }

// runTimed runs a command to completion and reports its wall time, CPU
// time and peak RSS. A non-zero exit fails the test with the output.
//
// Peak RSS comes from GNU time, not from our own wait4: Go starts children
// with vfork (CLONE_VM), and Linux carries the parent's RSS high-water mark
// across exec into the child's ru_maxrss, so a test process holding the
// corpus would be reported as the child's peak. GNU time forks for real, so
// what it reports is the command's own.
func runTimed(t testing.TB, name string, args ...string) procResult {
	t.Helper()
	return runTimedEnv(t, nil, name, args...)
}

// runTimedEnv is runTimed with extra environment variables ("K=V").
func runTimedEnv(t testing.TB, env []string, name string, args ...string) procResult {
	t.Helper()
	rssFile, err := os.CreateTemp("", "mailtap-bench-rss-")
	if err != nil {
		t.Fatal(err)
	}
	rssFile.Close()
	defer os.Remove(rssFile.Name())
	var out bytes.Buffer
	cmd := exec.Command(gnuTime, append([]string{"-f", "%M", "-o", rssFile.Name(), name}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, tail(out.Bytes(), 40))
	}
	// wait4's times include the children time waited for: the command.
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	rssOut, err := os.ReadFile(rssFile.Name())
	if err != nil {
		t.Fatal(err)
	}
	kb, err := strconv.ParseInt(strings.TrimSpace(string(rssOut)), 10, 64)
	if err != nil {
		t.Fatalf("GNU time reported %q: %v", rssOut, err)
	}
	return procResult{
		wall:   wall,
		user:   time.Duration(ru.Utime.Nano()),
		sys:    time.Duration(ru.Stime.Nano()),
		maxRSS: kb * 1024,
		output: out.Bytes(),
	}
}

// gnuTime is GNU time (Debian package "time"), which reports a command's
// peak RSS.
const gnuTime = "/usr/bin/time"

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat; it
// is 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// procCPU is the CPU time (utime+stime, all threads) of a live process.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * clockTick, nil
}

// procMem is VmRSS and VmHWM (peak RSS) of a live process, in bytes.
func procMem(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n * 1024
		case "VmHWM":
			hwm = n * 1024
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("no VmRSS/VmHWM in /proc/%d/status", pid)
	}
	return rss, hwm, nil
}

// ---- files ----

// countFiles counts regular files under dir whose name passes keep,
// skipping directories named skip.
func countFiles(t testing.TB, dir string, keep func(path string) bool, skip ...string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && slices.Contains(skip, d.Name()) {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && keep(path) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("count files in %s: %v", dir, err)
	}
	return n
}

// ---- statistics ----

// percentile is the nearest-rank percentile (p in 0…100) of xs.
func percentile(xs []time.Duration, p float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(p/100*float64(len(s)) + 0.999999)
	return s[min(max(rank, 1), len(s))-1]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func TestPercentile(t *testing.T) {
	xs := make([]time.Duration, 200)
	for i := range xs {
		xs[i] = time.Duration(200-i) * time.Millisecond // 200 … 1 ms, reversed
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 100 * time.Millisecond}, {99, 198 * time.Millisecond}, {100, 200 * time.Millisecond}, {0, time.Millisecond}} {
		if got := percentile(xs, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median = %v, want 2", got)
	}
}

func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	cpu, err := procCPU(pid)
	if err != nil || cpu < 0 {
		t.Fatalf("procCPU = %v, %v", cpu, err)
	}
	rss, hwm, err := procMem(pid)
	if err != nil || rss <= 0 || hwm < rss {
		t.Fatalf("procMem = %d, %d, %v", rss, hwm, err)
	}
	if _, err := procCPU(1 << 30); err == nil {
		t.Fatal("procCPU of a missing pid: no error")
	}
}
