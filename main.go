// Command mailtap watches IMAP mailboxes and writes every new email as a JSON
// file. main owns flags, config loading, wiring, signals and exit codes; the
// work happens in config, watcher, jsonstore, tui, statusweb and demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/term"

	"mailtap/config"
	"mailtap/demo"
	"mailtap/jsonstore"
	"mailtap/statusweb"
	"mailtap/tui"
	"mailtap/watcher"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes (design.md §2).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	if os.Getenv("GOGC") == "" {
		// Capture allocates briskly and keeps little: collecting four times
		// less often measured 10% less CPU and 15% more throughput for a
		// peak of tens of MB; GOGC in the environment still wins.
		debug.SetGCPercent(400)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// flags are the command-line options shared by every mode.
type flags struct {
	config    string
	out       string
	http      string
	ssh       string
	headless  bool
	demo      bool
	once      bool
	logFormat string
	logLevel  string
	version   bool
}

// newFlagSet registers every flag on f. Backquoted words in the usage are
// the argument's name in --help.
func newFlagSet(f *flags) *flag.FlagSet {
	fs := flag.NewFlagSet("mailtap", flag.ContinueOnError)
	// Errors and help are printed by run, once, in the --double-dash form.
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.config, "config", "", "config file at `PATH` (default ./config.json, then $XDG_CONFIG_HOME/mailtap/config.json)")
	fs.StringVar(&f.config, "c", "", "shorthand for --config")
	fs.StringVar(&f.out, "out", "", "write records under `DIR` (overrides output.dir)")
	fs.StringVar(&f.http, "http", "", "status page, health, metrics and control API on `ADDR`, e.g. 127.0.0.1:8025 (default off)")
	fs.StringVar(&f.ssh, "ssh", "", "serve the monitor over SSH on `ADDR`, e.g. :2222 (needs ssh.authorized_keys; default off)")
	fs.BoolVar(&f.headless, "headless", false, "no UI; structured logs on stderr (Docker, systemd)")
	fs.BoolVar(&f.demo, "demo", false, "watch an embedded IMAP server with generated mail; needs no account")
	fs.BoolVar(&f.once, "once", false, "catch up every watched mailbox, write, exit (cron)")
	fs.StringVar(&f.logFormat, "log-format", "text", "format of the log lines, `text|json`")
	fs.StringVar(&f.logLevel, "log-level", "info", "lowest level logged, `debug|info|warn|error`")
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	return fs
}

func parseFlags(args []string, stdout io.Writer) (*flags, []string, error) {
	f := &flags{}
	fs := newFlagSet(f)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs)
			return nil, nil, errHelpShown
		}
		return nil, nil, flagError(err)
	}
	switch f.logFormat {
	case "text", "json":
	default:
		return nil, nil, fmt.Errorf("--log-format must be text or json (got %q)", f.logFormat)
	}
	if _, err := parseLevel(f.logLevel); err != nil {
		return nil, nil, err
	}
	return f, fs.Args(), nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level must be debug, info, warn or error (got %q)", s)
	}
	return l, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "help":
		printUsage(stdout, newFlagSet(&flags{}))
		return exitOK
	case "version":
		cmd = ""
		args = append([]string{"--version"}, args...)
	case "sinks", "replay": // sinkcmd.go: flags of their own
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runSinkCommand(ctx, cmd, args, stdout, stderr)
	}
	f, rest, err := parseFlags(args, stdout)
	if errors.Is(err, errHelpShown) {
		return exitOK
	}
	rep := reporter{w: stderr, json: f != nil && f.logFormat == "json"}
	if err != nil {
		rep.json = jsonRequested(args)
		rep.fail(err)
		return exitUsage
	}
	if len(rest) > 0 {
		rep.fail(fmt.Errorf("unexpected argument %q (see mailtap --help)", rest[0]))
		return exitUsage
	}
	if f.version {
		fmt.Fprintln(stdout, "mailtap", version)
		return exitOK
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch cmd {
	case "":
		return runWatch(ctx, f, stdout, stderr)
	case "check":
		return runCheck(ctx, f, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, f, stderr)
	default:
		rep.fail(fmt.Errorf("unknown command %q (commands: check, healthcheck, help, version; see mailtap --help)", cmd))
		return exitUsage
	}
}

// jsonRequested tells whether args ask for JSON logs, for reporting a
// flag error when parsing failed before --log-format was read.
func jsonRequested(args []string) bool {
	for i, a := range args {
		switch {
		case a == "--log-format=json", a == "-log-format=json":
			return true
		case (a == "--log-format" || a == "-log-format") && i+1 < len(args) && args[i+1] == "json":
			return true
		}
	}
	return false
}

// loadConfig resolves the config (file, or MAILTAP_* env; with --demo the
// demo's, with the same env on top), applies flag overrides and validates.
// Every failure here is exit 2. note receives what came from where.
func loadConfig(f *flags, demoSrv *demo.Server, note func(string)) (*config.Config, error) {
	var cfg *config.Config
	var notes []string
	var err error
	if demoSrv != nil {
		cfg = demoConfig(demoSrv)
		notes, err = config.ApplyEnv(cfg, os.Getenv)
	} else {
		cfg, notes, err = config.Resolve(f.config, os.Getenv)
	}
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		note(n)
	}
	if f.out != "" {
		cfg.Output.Dir = f.out
		note("output.dir from --out")
	}
	if f.http != "" {
		cfg.HTTP.Addr = f.http
		note("http.addr from --http")
	}
	if f.ssh != "" {
		cfg.SSH.Addr = f.ssh
		note("ssh.addr from --ssh")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(cfg.Output.Dir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("output dir %s is a file, not a directory: give a directory with --out or output.dir", cfg.Output.Dir)
	}
	return cfg, nil
}

func newLogHandler(w io.Writer, format string, level slog.Level) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

func runWatch(ctx context.Context, f *flags, stdout, stderr io.Writer) int {
	level, _ := parseLevel(f.logLevel)
	useTUI := !f.headless && !f.once && isTerminal(stdout)
	rep := reporter{w: stderr, json: f.logFormat == "json"}
	// Until the output dir is known, log to stderr.
	bootLog := slog.New(newLogHandler(stderr, f.logFormat, level))
	if !f.headless && !f.once && !isTerminal(stdout) {
		bootLog.Info("stdout is not a terminal: running headless (pass --headless to silence this)")
	}

	var demoSrv *demo.Server
	if f.demo {
		var err error
		demoSrv, err = demo.Start(ctx, demo.Options{})
		if err != nil {
			rep.fail(fmt.Errorf("start the demo server: %w", err))
			return exitFailure
		}
		defer demoSrv.Close()
	}
	cfg, err := loadConfig(f, demoSrv, func(n string) { bootLog.Info("config", "note", n) })
	if err != nil {
		rep.fail(err)
		return exitUsage
	}
	// Secrets are not resolved here: a source that fails (a helper without
	// its keyring, an unset variable) is that account's auth_failed state,
	// retried, while the other accounts run. Only a config that cannot be
	// valid (no source, two sources) is exit 2, from Validate.

	portableStore := os.Getenv(jsonstore.PortableEnv) == "1" // test-only, see its doc
	store, err := jsonstore.Open(cfg.Output.Dir, jsonstore.Options{
		Pretty: cfg.Output.Pretty, SaveAttachments: cfg.Output.Attachments == "save",
		SaveRaw: cfg.Output.SaveRaw, MaxBodyBytes: cfg.Output.MaxBodyBytes,
		Portable: portableStore,
	})
	if errors.Is(err, jsonstore.ErrLocked) {
		rep.fail(err)
		return exitUsage
	}
	if err != nil {
		rep.fail(err)
		return exitFailure
	}
	defer store.Close()

	// In the TUI the terminal belongs to the UI: logs go to a file.
	var logBuf *tui.LogBuffer
	var log *slog.Logger
	logPath := filepath.Join(store.StateDir(), "mailtap.log")
	if useTUI {
		lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			rep.fail(fmt.Errorf("open the log file: %w", err))
			return exitFailure
		}
		defer lf.Close()
		logBuf = tui.NewLogBuffer(newLogHandler(lf, f.logFormat, level), 200)
		log = slog.New(logBuf)
	} else {
		log = slog.New(newLogHandler(stderr, f.logFormat, level))
		if cfg.SSH.Addr != "" && !f.once { // SSH sessions' log pane
			logBuf = tui.NewLogBuffer(log.Handler(), 200)
			log = slog.New(logBuf)
		}
	}
	slog.SetDefault(log)
	if portableStore {
		log.Warn("store forced onto its portable write path (test-only " + jsonstore.PortableEnv + ")")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mgr := watcher.New(cfg, store, &watcher.Options{Logger: log, Metrics: watcher.NewMetrics(reg), Once: f.once})

	sinkMgr, err := newSinks(cfg, store, reg, log)
	if err != nil {
		rep.fail(err)
		return exitUsage
	}

	// The status address is bound before anything starts, so a busy port
	// is one clear line and exit 2, like a busy output dir.
	var srv *statusweb.Server
	if cfg.HTTP.Addr != "" && !f.once {
		token, err := cfg.HTTP.Token()
		if err != nil {
			rep.fail(err)
			return exitUsage
		}
		srv, err = statusweb.New(mgr, statusweb.Options{Addr: cfg.HTTP.Addr, Token: token, Gatherer: reg, Logger: log, Version: version, Sinks: sinkMgr.StatusFunc()})
		if err != nil {
			rep.fail(err)
			return exitUsage
		}
		if err := srv.Listen(); err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				err = fmt.Errorf("status page address %s is already in use (another mailtap?): choose another with --http or http.addr", cfg.HTTP.Addr)
			}
			rep.fail(err)
			return exitUsage
		}
	}
	log.Info("mailtap starting", "version", version, "out", store.Dir(), "config", cfg.Source)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	runSinks(ctx, runCtx, f.once, sinkMgr, log, &wg)

	if srv != nil {
		log.Info("status page", "url", "http://"+srv.Addr()+"/")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(runCtx); err != nil {
				log.Error("status server", "err", err)
			}
		}()
	}

	if !f.once {
		if code, err := startSSH(runCtx, &wg, cfg, mgr, reg, log, store, logBuf, logPath, sinkMgr.StatusFunc()); err != nil {
			rep.fail(err)
			return code
		}
	}

	capErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		capErr <- mgr.Run(runCtx)
		cancel() // capture ended (once mode, or shutdown): stop the rest
	}()

	if useTUI {
		if err := tui.Run(runCtx, mgr, tui.Options{Out: store.Dir(), Logs: logBuf, LogPath: logPath, Version: version, Sinks: sinkMgr.StatusFunc()}); err != nil {
			log.Error("tui", "err", err)
		}
		cancel() // the user quit: finish the record in flight, checkpoint, exit
	}
	err = <-capErr
	wg.Wait()
	if useTUI {
		// The screen is the user's again: say what happened and where.
		var n int64
		for _, st := range mgr.Status() {
			n += st.Captured
		}
		fmt.Fprintf(stdout, "mailtap: %d captured this run; records are in %s\nlog: %s\n", n, store.Dir(), logPath)
	}
	if err != nil {
		log.Error("capture failed", "err", err)
		if useTUI { // the log went to a file; say it where the user looks
			rep.fail(err)
		}
		return exitFailure
	}
	log.Info("mailtap stopped cleanly")
	return exitOK
}

// demoConfig watches the embedded demo server like any account. The
// environment (MAILTAP_OUT, MAILTAP_HTTP, MAILTAP_HTTP_TOKEN) and the flags
// apply on top of it as on any config (loadConfig).
func demoConfig(srv *demo.Server) *config.Config {
	cfg := config.Defaults()
	cfg.Source = "demo"
	cfg.Accounts = []config.Account{{
		Name: "demo", Host: "127.0.0.1", Port: srv.Port(), TLS: "none",
		Username: srv.Username(), Password: srv.Password(), Auth: "plain",
		Mailboxes: srv.Mailboxes(), Backfill: "all",
	}}
	cfg.Output.Dir = "./mailtap-demo"
	cfg.Output.Attachments = "save"
	cfg.Watch.MaxBackoff = config.Duration{Duration: 10 * time.Second}
	return cfg
}

// runCheck prints a report for people on stdout; nothing else (no log
// lines). With --demo it checks the demo server, as --demo would watch it.
func runCheck(ctx context.Context, f *flags, stdout, stderr io.Writer) int {
	rep := reporter{w: stderr, json: f.logFormat == "json"}
	var demoSrv *demo.Server
	if f.demo {
		var err error
		if demoSrv, err = demo.Start(ctx, demo.Options{}); err != nil {
			rep.fail(fmt.Errorf("start the demo server: %w", err))
			return exitFailure
		}
		defer demoSrv.Close()
	}
	var notes []string
	cfg, err := loadConfig(f, demoSrv, func(n string) { notes = append(notes, n) })
	if err != nil {
		rep.fail(err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "config %s: ok (%s)\n", cfg.Source, plural(len(cfg.Accounts), "account"))
	for _, n := range notes {
		fmt.Fprintf(stdout, "  note: %s\n", n)
	}
	failed := 0
	for _, r := range watcher.Check(ctx, cfg) {
		if r.Err != nil {
			failed++
			fmt.Fprintf(stdout, "FAIL %s: %v\n", r.Mailbox, r.Err)
			continue
		}
		if r.NoMatch {
			fmt.Fprintf(stdout, "WARN %s: %s\n", r.Mailbox, r.Warning)
			continue
		}
		fmt.Fprintf(stdout, "ok   %s: %d messages, uidvalidity %d, %s (%s)\n", r.Mailbox, r.Messages, r.UIDValidity, r.Mode, r.Elapsed.Round(time.Millisecond))
		printCatchUpCheck(stdout, r)
	}
	if failed > 0 {
		return exitFailure
	}
	return exitOK
}

func plural(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %ss", n, one)
}

func runHealthcheck(ctx context.Context, f *flags, stderr io.Writer) int {
	addr := f.http
	if addr == "" {
		addr = os.Getenv("MAILTAP_HTTP")
	}
	if addr == "" {
		if cfg, _, err := config.Resolve(f.config, os.Getenv); err == nil && cfg.HTTP.Addr != "" {
			addr = cfg.HTTP.Addr
		}
	}
	if addr == "" {
		addr = "127.0.0.1:8025"
	}
	if err := statusweb.Check(ctx, addr); err != nil {
		// statusweb.Check's errors already begin with "healthcheck:".
		reporter{w: stderr, json: f.logFormat == "json"}.fail(err)
		return exitFailure
	}
	return exitOK
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
