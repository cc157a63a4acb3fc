package tui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
)

func TestLogBuffer_keepsWarningsPassesEverything(t *testing.T) {
	var file bytes.Buffer
	lb := NewLogBuffer(slog.NewTextHandler(&file, &slog.HandlerOptions{Level: slog.LevelInfo}), 3)
	log := slog.New(lb)
	// Two readers (the local TUI and an SSH session) are both woken.
	changed1, changed2 := lb.Changed(), lb.Changed()
	log.Debug("debug dropped by the file handler")
	log.Info("info goes to the file only")
	log.Warn("first warning", "n", 1)
	log.Error("an error", "err", errors.New("boom"))

	if s := file.String(); !strings.Contains(s, "info goes to the file only") || !strings.Contains(s, "first warning") ||
		!strings.Contains(s, "an error") || strings.Contains(s, "debug dropped") {
		t.Errorf("file log:\n%s", s)
	}
	es := lb.Entries()
	if len(es) != 2 || es[0].Message != "first warning" || es[0].Attrs != "n=1" || es[1].Level != slog.LevelError ||
		es[1].Attrs != "err=boom" || es[0].Seq != 1 || es[1].Seq != 2 {
		t.Fatalf("entries = %+v", es)
	}
	for _, ch := range []<-chan struct{}{changed1, changed2} {
		select {
		case <-ch:
		default:
			t.Error("Changed not signalled")
		}
	}
	select {
	case <-lb.Changed():
		t.Error("a fresh Changed channel is already closed")
	default:
	}
}

// The pane keeps warnings even when the file log is set to errors only.
func TestLogBuffer_enabledForWarningsRegardlessOfNext(t *testing.T) {
	var file bytes.Buffer
	lb := NewLogBuffer(slog.NewTextHandler(&file, &slog.HandlerOptions{Level: slog.LevelError}), 10)
	if !lb.Enabled(context.Background(), slog.LevelWarn) || lb.Enabled(context.Background(), slog.LevelInfo) {
		t.Fatal("Enabled wrong")
	}
	slog.New(lb).Warn("kept for the pane")
	if len(lb.Entries()) != 1 || file.Len() != 0 {
		t.Fatalf("entries %d, file %q", len(lb.Entries()), file.String())
	}
	nilNext := NewLogBuffer(nil, 10)
	slog.New(nilNext).Info("nowhere")
	slog.New(nilNext).Warn("kept")
	if len(nilNext.Entries()) != 1 {
		t.Fatal("nil next: warning not kept")
	}
}

func TestLogBuffer_ringKeepsNewest(t *testing.T) {
	lb := NewLogBuffer(nil, 3)
	log := slog.New(lb)
	for i := range 7 {
		log.Warn(fmt.Sprintf("w%d", i))
	}
	es := lb.Entries()
	if len(es) != 3 || es[0].Message != "w4" || es[2].Message != "w6" || es[2].Seq != 7 {
		t.Fatalf("entries = %+v", es)
	}
}

func TestLogBuffer_attrsAndGroups(t *testing.T) {
	var file bytes.Buffer
	lb := NewLogBuffer(slog.NewTextHandler(&file, nil), 10)
	log := slog.New(lb).With("account", "work").WithGroup("imap").With("mailbox", "INBOX")
	log.Warn("state", "state", "reconnecting", slog.Group("retry", "in", 2*time.Second), "msg2", "two words", "empty", "")
	want := `account=work imap.mailbox=INBOX imap.state=reconnecting imap.retry.in=2s imap.msg2="two words" imap.empty=""`
	if got := lb.Entries()[0].Attrs; got != want {
		t.Errorf("attrs\n got %s\nwant %s", got, want)
	}
	if !strings.Contains(file.String(), "imap.retry.in=2s") {
		t.Errorf("next did not get the groups: %s", file.String())
	}
}

func TestLogBuffer_concurrent(t *testing.T) {
	lb := NewLogBuffer(slog.NewTextHandler(&bytes.Buffer{}, nil), 50)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log := slog.New(lb).With("g", g)
			for i := range 200 {
				log.Warn("w", "i", i)
				if i%50 == 0 {
					_ = lb.Entries()
				}
			}
		}()
	}
	wg.Wait()
	es := lb.Entries()
	if len(es) != 50 || es[49].Seq != 1600 {
		t.Fatalf("%d entries, last seq %d", len(es), es[len(es)-1].Seq)
	}
	for i := 1; i < len(es); i++ {
		if es[i].Seq != es[i-1].Seq+1 {
			t.Fatalf("entries out of order at %d", i)
		}
	}
}

// The title bar counts warnings not yet seen; opening the pane marks them
// seen.
func TestModel_unseenWarnings(t *testing.T) {
	lb := NewLogBuffer(nil, 10)
	opts := testOptions()
	opts.Logs = lb
	m := update(t, NewModel(newFakeCtrl(), opts), tea.WindowSizeMsg{Width: 80, Height: 24})
	slog.New(lb).Warn("one")
	slog.New(lb).Warn("two")
	m = update(t, m, logsMsg{entries: lb.Entries()})
	if !strings.Contains(plain(m), "2 warnings (l)") {
		t.Fatalf("no warning count:\n%s", plain(m))
	}
	m = update(t, m, press("l"))
	if fr := plain(m); strings.Contains(fr, "warnings (l)") || !strings.Contains(fr, "WARN  two") {
		t.Fatalf("log pane:\n%s", fr)
	}
	m = update(t, m, press("esc"))
	slog.New(lb).Error("three")
	m = update(t, m, logsMsg{entries: lb.Entries()})
	if !strings.Contains(plain(m), "1 warning (l)") {
		t.Fatalf("after viewing:\n%s", plain(m))
	}
}

// Resizing reflows every view; no frame is ever wider or taller than the
// terminal.
func TestModel_resize(t *testing.T) {
	m := scene(t, 80, 24, testOptions())
	m = update(t, m, press("down"), press("down"), press("enter"), detailFromRecord(sampleRecord(t), detailPath))
	for _, sz := range [][2]int{{120, 40}, {60, 15}, {200, 60}, {80, 24}, {40, 10}} {
		m = update(t, m, tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		checkFrame(t, m.View().Content, sz[0], sz[1])
		if sz[1] >= 24 && !strings.Contains(plain(m), "Dear customer,") {
			t.Errorf("%dx%d: body lost on resize:\n%s", sz[0], sz[1], plain(m))
		}
		if fr := plain(m); !strings.Contains(fr, "Subject:") || !strings.Contains(fr, " body") {
			t.Errorf("%dx%d: detail lost its subject or body:\n%s", sz[0], sz[1], fr)
		}
		back := update(t, m, press("esc"))
		checkFrame(t, back.View().Content, sz[0], sz[1])
		m = update(t, back, press("enter"), detailFromRecord(sampleRecord(t), detailPath))
	}
}
