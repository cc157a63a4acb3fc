package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// usageHead is the top of --help: the modes, as the README lists them.
const usageHead = `mailtap watches IMAP mailboxes and writes every new email as a JSON file.

Usage:
  mailtap [flags]                 TUI monitor (default when stdout is a terminal)
  mailtap --headless              no UI; structured logs on stderr (Docker, systemd)
  mailtap --demo                  embedded IMAP server + generated mail; needs no account
  mailtap --once                  catch up every watched mailbox, write, exit 0 (cron)
  mailtap check                   validate config, connect, log in, examine; report; exit 0/1
  mailtap healthcheck             exit 0 iff the local status endpoint reports healthy
  mailtap help | version          this text (also --help) | the version (also --version)

Flags:
`

// flagOrder is the order --help lists the flags in; "c" is shown with
// "config".
var flagOrder = []string{"config", "out", "http", "ssh", "headless", "demo", "once", "log-format", "log-level", "version"}

// printUsage writes --help: the modes, then every flag in its --double-dash
// form with its argument and default, then the exit codes.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	var b strings.Builder
	b.WriteString(usageHead)
	for _, name := range flagOrder {
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		arg, help := flag.UnquoteUsage(f)
		spec := "--" + f.Name
		if name == "config" {
			spec = "-c, --config"
		}
		if arg != "" {
			spec += " " + arg
		}
		if f.DefValue != "" && f.DefValue != "false" {
			help += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(&b, "  %-34s %s\n", spec, help)
	}
	b.WriteString(`
Exit codes: 0 ok, 1 runtime failure, 2 bad usage, invalid config or an
output dir or status address already in use.
`)
	io.WriteString(w, b.String())
}

// flagError rewrites the flag package's message in the --double-dash form
// the help uses, once, with a pointer to --help.
func flagError(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return fmt.Errorf("unknown flag %s (see mailtap --help)", dashes(name))
	}
	for _, pre := range []string{"flag needs an argument: "} {
		if name, ok := strings.CutPrefix(msg, pre); ok {
			return fmt.Errorf("%s needs a value (see mailtap --help)", dashes(name))
		}
	}
	// "invalid value "x" for flag -n: …"
	if i := strings.Index(msg, " for flag -"); i >= 0 {
		rest := msg[i+len(" for flag "):]
		name, tail, _ := strings.Cut(rest, ":")
		return fmt.Errorf("%s%s%s (see mailtap --help)", msg[:i+len(" for flag ")], dashes(name), tail)
	}
	return fmt.Errorf("%s (see mailtap --help)", msg)
}

// dashes turns the flag package's "-name" into "--name" ("-c" stays).
func dashes(s string) string {
	s = strings.TrimLeft(s, "-")
	if len(s) == 1 {
		return "-" + s
	}
	return "--" + s
}

// reporter prints what stops mailtap before (or instead of) its logger:
// a "mailtap: …" line, or with --log-format json one JSON log line, so a
// log collector never sees a stray line of text.
type reporter struct {
	w    io.Writer
	json bool
}

func (r reporter) fail(err error) {
	if r.json {
		slog.New(slog.NewJSONHandler(r.w, nil)).Error("mailtap cannot continue", "err", err.Error())
		return
	}
	fmt.Fprintln(r.w, "mailtap:", err)
}

// errHelpShown ends run after printing help.
var errHelpShown = errors.New("help shown")
