package sinks

import (
	"strings"
	"testing"
	"time"

	"mailtap/config"
)

// A command that floods stderr is not blocked by it, and only the first
// maxStderrLogged bytes reach the log, the status and the dead letter.
func TestCommand_stderrCapped(t *testing.T) {
	e := newEnv(t)
	cfg := config.Sink{Name: "cmd", Type: config.SinkCommand,
		Command: []string{"sh", "-c", `cat >/dev/null; printf start >&2; head -c 1000000 /dev/zero | tr '\0' x >&2; printf TAIL >&2; exit 3`},
		Timeout: config.Duration{Duration: 30 * time.Second}, Concurrency: 1, MaxAttempts: 1,
		MaxBackoff: config.Duration{Duration: time.Minute}, MaxBodyBytes: config.DefaultSinkMaxBody}
	m, _ := e.start(cfg)
	e.commit("INBOX", 1)
	waitFor(t, "a dead letter", func() bool { st := statusOf(m); return st.DeadLetters == 1 && st.LastError != "" })
	st := statusOf(m)
	if !strings.Contains(st.LastError, "exit status 3") || !strings.Contains(st.LastError, "startxxx") || !strings.Contains(st.LastError, "…") {
		t.Errorf("last error %.300q", st.LastError)
	}
	const room = 512 // the message around the stderr
	if len(st.LastError) > maxStderrLogged+room || strings.Contains(st.LastError, "TAIL") {
		t.Errorf("last error is %d bytes, want at most %d", len(st.LastError), maxStderrLogged+room)
	}
	dead, err := ReadDeadLetters(e.out, "cmd")
	if err != nil || len(dead) != 1 || len(dead[0].Error) > maxStderrLogged+room {
		t.Errorf("dead letters %d, %v", len(dead), err)
	}
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if len(line) > maxStderrLogged+2*room || strings.Contains(line, "TAIL") {
			t.Errorf("a log line of %d bytes: %.200s", len(line), line)
		}
	}
}
