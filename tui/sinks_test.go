package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"mailtap/sinks"
)

func TestHeader_sinkSummary(t *testing.T) {
	m := scene(t, 160, 24, testOptions())
	if strings.Contains(m.View().Content, "sinks:") {
		t.Fatal("sinks shown without any")
	}
	st := []sinks.Status{
		{Name: "tickets", State: sinks.StateRetrying, Backlog: 120, DeadLetters: 2, FailingSince: testNow.Add(-11 * time.Minute)},
		{Name: "index", State: sinks.StateRetrying, FailingSince: testNow.Add(-time.Minute)},
		{Name: "arch\x1b[2Jive", State: sinks.StateIdle},
	}
	m = update(t, m, sinksMsg{st: st})
	title := strings.SplitN(m.View().Content, "\n", 2)[0]
	for _, want := range []string{"sinks: tickets FAILING 120 behind 2 dead", "index retrying", "archive ok"} {
		if !strings.Contains(ansi.Strip(title), want) {
			t.Errorf("title %q lacks %q", ansi.Strip(title), want)
		}
	}
	checkFrame(t, m.View().Content, 160, 24)
	m = update(t, m, sinksMsg{st: st})
	checkFrame(t, update(t, scene(t, 40, 10, testOptions()), sinksMsg{st: st}).View().Content, 40, 10)
}
