package main

// The sinks' part of main: wiring the sink manager into a watch run, and
// the `mailtap sinks` and `mailtap replay` commands.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailtap/config"
	"mailtap/jsonstore"
	"mailtap/sinks"
)

// newSinks builds the configured sinks without starting them, so the
// status page can be given their status before anything runs. It returns
// nil without sinks.
func newSinks(cfg *config.Config, store *jsonstore.Store, reg prometheus.Registerer, log *slog.Logger) (*sinks.Manager, error) {
	if len(cfg.Sinks) == 0 {
		return nil, nil
	}
	m, err := sinks.New(cfg.Sinks, store.Dir(), store, &sinks.Options{Logger: log, Metrics: sinks.NewMetrics(reg), Version: version})
	if err != nil {
		return nil, err
	}
	for _, s := range cfg.Sinks {
		log.Info("sink", "sink", s)
	}
	return m, nil
}

// runSinks runs m (nil: nothing) beside capture until runCtx ends; wg
// tracks the goroutines. With once, capture ending does not stop them:
// they go on until every backlog is delivered or a delivery fails (the
// rest waits for the next run), or until ctx (the signals) ends.
func runSinks(ctx, runCtx context.Context, once bool, m *sinks.Manager, log *slog.Logger, wg *sync.WaitGroup) {
	if m == nil {
		return
	}
	sinkCtx := runCtx
	if once {
		var stop context.CancelFunc
		sinkCtx, stop = context.WithCancel(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer stop()
			select {
			case <-sinkCtx.Done():
				return
			case <-runCtx.Done(): // capture is over
			}
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for !m.Settled() {
				select {
				case <-sinkCtx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := m.Run(sinkCtx); err != nil {
			log.Error("sinks", "err", err)
		}
	}()
}

// runSinkCommand runs `mailtap sinks` and `mailtap replay`, which take
// flags of their own.
func runSinkCommand(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mailtap "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f flags
	fs.StringVar(&f.config, "config", "", "config file (default ./config.json, then $XDG_CONFIG_HOME/mailtap/config.json)")
	fs.StringVar(&f.config, "c", "", "shorthand for --config")
	fs.StringVar(&f.out, "out", "", "output dir (overrides output.dir)")
	var sink, since, id string
	var dead bool
	if cmd == "replay" {
		fs.StringVar(&sink, "sink", "", "the sink to deliver to (required)")
		fs.StringVar(&since, "since", "", "re-deliver every record committed since this RFC 3339 time")
		fs.StringVar(&id, "id", "", "re-deliver the record with this id")
		fs.BoolVar(&dead, "dead", false, "re-deliver the sink's dead letters (removed once delivered)")
	}
	fs.Usage = func() {
		if cmd == "replay" {
			fmt.Fprintln(stderr, "Usage:\n  mailtap replay --sink NAME (--since RFC3339 | --id ID | --dead) [-c config] [--out DIR]\n\nFlags:")
		} else {
			fmt.Fprintln(stderr, "Usage:\n  mailtap sinks [-c config] [--out DIR]   each sink's backlog, last delivery, last error, dead letters\n\nFlags:")
		}
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mailtap %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return exitUsage
	}
	cfg, err := loadConfig(&f, nil, func(string) {})
	if err != nil {
		fmt.Fprintln(stderr, "mailtap:", err)
		return exitUsage
	}
	out, err := filepath.Abs(cfg.Output.Dir)
	if err != nil {
		fmt.Fprintln(stderr, "mailtap:", err)
		return exitUsage
	}
	if cmd == "sinks" {
		return listSinks(cfg, out, stdout, stderr)
	}

	var sel sinks.Selection
	n := 0
	if since != "" {
		n++
		if sel.Since, err = time.Parse(time.RFC3339, since); err != nil {
			fmt.Fprintf(stderr, "mailtap replay: --since must be an RFC 3339 time like 2026-01-02T15:04:05Z (got %q)\n", since)
			return exitUsage
		}
	}
	if id != "" {
		n++
		sel.ID = id
	}
	if dead {
		n++
		sel.Dead = true
	}
	if n != 1 || sink == "" {
		fmt.Fprintln(stderr, "mailtap replay: give --sink NAME and exactly one of --since, --id, --dead (see mailtap replay --help)")
		return exitUsage
	}
	var sc *config.Sink
	var names []string
	for i := range cfg.Sinks {
		names = append(names, cfg.Sinks[i].Name)
		if cfg.Sinks[i].Name == sink {
			sc = &cfg.Sinks[i]
		}
	}
	if sc == nil {
		fmt.Fprintf(stderr, "mailtap replay: no sink %q in %s (sinks: %s)\n", sink, cfg.Source, strings.Join(names, ", "))
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ok, failed, err := sinks.Replay(ctx, *sc, out, sel, &sinks.Options{Logger: log, Version: version}, func(r sinks.ReplayResult) {
		if r.Err != nil {
			fmt.Fprintf(stdout, "FAIL %s: %v\n", r.ID, r.Err)
		} else {
			fmt.Fprintf(stdout, "ok   %s\n", r.ID)
		}
	})
	fmt.Fprintf(stdout, "replayed to %s: %d delivered, %d failed\n", sink, ok, failed)
	if err != nil {
		fmt.Fprintln(stderr, "mailtap replay:", err)
		return exitFailure
	}
	if failed > 0 {
		return exitFailure
	}
	return exitOK
}

func listSinks(cfg *config.Config, out string, stdout, stderr io.Writer) int {
	if len(cfg.Sinks) == 0 {
		fmt.Fprintf(stdout, "no sinks in %s\n", cfg.Source)
		return exitOK
	}
	if pid := runningPid(out); pid != "" {
		fmt.Fprintf(stdout, "mailtap is running on %s (pid %s); figures are as of its last cursor save\n", out, pid)
	} else {
		fmt.Fprintf(stdout, "mailtap is not running on %s\n", out)
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SINK\tTYPE\tTARGET\tBACKLOG\tDELIVERED\tDEAD\tLAST DELIVERY\tLAST ERROR")
	code := exitOK
	for _, s := range cfg.Sinks {
		st, err := sinks.Snapshot(s, out)
		if err != nil {
			fmt.Fprintf(stderr, "mailtap sinks: %s: %v\n", s.Name, err)
			code = exitFailure
			continue
		}
		last := "never"
		if !st.LastDelivery.IsZero() {
			last = st.LastDelivery.Local().Format(time.DateTime)
		}
		lastErr := "-"
		if st.LastError != "" && st.LastErrorAt.After(st.LastDelivery) {
			lastErr = st.LastErrorAt.Local().Format(time.DateTime) + " " + st.LastError
		}
		backlog := strconv.FormatInt(st.Backlog, 10)
		if st.State == "new" {
			backlog = "(not started)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Name, s.Type, st.Target, backlog, st.Delivered, st.DeadLetters, last, lastErr)
	}
	tw.Flush()
	return code
}

// runningPid is the pid in <out>/.mailtap/lock if that process lives.
func runningPid(out string) string {
	b, err := os.ReadFile(filepath.Join(out, ".mailtap", "lock"))
	if err != nil {
		return ""
	}
	pid := strings.TrimSpace(string(b))
	if _, err := strconv.Atoi(pid); err != nil {
		return ""
	}
	if _, err := os.Stat(filepath.Join("/proc", pid)); err != nil {
		return ""
	}
	return pid
}
