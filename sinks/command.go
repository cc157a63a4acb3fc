package sinks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"mailtap/config"
)

// maxStderrLogged caps what a failing command's stderr puts in the log.
const maxStderrLogged = 2048

type command struct {
	cfg     config.Sink
	timeout time.Duration
}

func newCommand(cfg config.Sink) *command { return &command{cfg: cfg, timeout: cfg.Timeout.Duration} }

func (c *command) close() {}

func (c *command) deliver(ctx context.Context, d *delivery) result {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.cfg.Command[0], c.cfg.Command[1:]...)
	cmd.Stdin = bytes.NewReader(d.body)
	cmd.Env = append(os.Environ(), "MAILTAP_RECORD_ID="+d.id, "MAILTAP_RECORD_PATH="+d.absPath,
		"MAILTAP_SINK="+c.cfg.Name, fmt.Sprintf("MAILTAP_ATTEMPT=%d", d.attempt))
	var stderr capWriter
	stderr.max = maxStderrLogged
	cmd.Stderr = &stderr
	ownGroup(cmd)
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if err == nil {
		return result{}
	}
	msg := strings.TrimSpace(stderr.String())
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("%s: killed after %s", c.cfg.Command[0], c.timeout)
	case errors.As(err, &ee):
		err = fmt.Errorf("%s: %s", c.cfg.Command[0], ee.ProcessState)
	default:
		err = fmt.Errorf("run %s: %w", c.cfg.Command[0], err)
	}
	if msg != "" {
		err = fmt.Errorf("%w; stderr: %s", err, answerText([]byte(msg)))
	}
	return result{err: err}
}

// capWriter keeps the first max bytes written to it.
type capWriter struct {
	buf bytes.Buffer
	max int
	cut bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room < len(p) {
		w.cut = true
		if room > 0 {
			w.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return w.buf.Write(p)
}

func (w *capWriter) String() string {
	if w.cut {
		return w.buf.String() + "…"
	}
	return w.buf.String()
}
