package tui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/golden"

	"mailtap/jsonstore"
	"mailtap/record"
	"mailtap/watcher"
)

// Golden frames: every component and the whole screen at 80×24 and 120×40,
// drawn through a pinned colour profile (ANSI, 16 colours: what the styles
// use) so the files do not depend on the terminal running the tests.
// Regenerate with: go test ./tui -run Golden -update

var goldenSizes = [][2]int{{80, 24}, {120, 40}}

const detailPath = "/out/personal/INBOX/1-0000000004.json"

// scene is a model in a typical busy state: three mailboxes (one
// reconnecting with a countdown, one paused), records on disk, mail with
// hostile, CJK and emoji subjects, and warnings in the log pane.
func scene(t testing.TB, w, h int, opts Options) Model {
	t.Helper()
	m := NewModel(newFakeCtrl(), opts)
	st := []watcher.MailboxStatus{
		{Mailbox: mbox("personal", "INBOX"), State: watcher.StateIdle, Captured: 4, LastCapture: testNow.Add(-3 * time.Minute)},
		{Mailbox: mbox("work", "INBOX"), State: watcher.StateReconnecting, Err: "connect to imap.work.example.com:993: connection refused",
			NextRetry: testNow.Add(7 * time.Second), Errors: 3, Captured: 1, LastCapture: testNow.Add(-31 * time.Minute)},
		{Mailbox: mbox("work", "Lists/Go"), State: watcher.StatePaused, Paused: true, Captured: 1, LastCapture: testNow.Add(-25 * time.Minute)},
	}
	inv := &jsonstore.Inventory{Mailboxes: map[string]*jsonstore.MailboxFiles{
		"personal/INBOX": {Account: "personal", Mailbox: "INBOX", Count: 3407, MaxUID: map[uint32]uint32{1: 0}},
		"work/INBOX":     {Account: "work", Mailbox: "INBOX", Count: 12, MaxUID: map[uint32]uint32{1: 0}},
	}}
	logs := []LogEntry{
		{Seq: 1, Time: testNow.Add(-40 * time.Minute), Level: slog.LevelWarn, Message: "mailbox state",
			Attrs: `account=work mailbox=INBOX state=reconnecting err="dial tcp 10.0.0.1:993: connect: connection refused"`},
		{Seq: 2, Time: testNow.Add(-39 * time.Minute), Level: slog.LevelError, Message: "server said \x1b]0;pwned\x07\x1b[2Jhello\u202Etxt.exe",
			Attrs: "account=personal mailbox=INBOX"},
	}
	m.opts.Out = "/out" // show the on-disk counters; nothing reads it here
	return update(t, m, tea.WindowSizeMsg{Width: w, Height: h}, statusMsg{at: testNow, st: st},
		inventoryMsg{inv: inv}, capturedEvents(sampleSummaries()), logsMsg{entries: logs})
}

// sampleRecord is the record opened in the detail view, with everything a
// hostile or exotic mail can put in it.
func sampleRecord(t testing.TB) []byte {
	t.Helper()
	date := testNow.Add(-52 * time.Minute).In(time.FixedZone("", 9*3600))
	saved := "personal/INBOX/1-0000000004/invoice\u202Efdp.exe"
	rec := &record.Record{
		SchemaVersion: 1, ID: "personal/INBOX/1/4", Account: "personal", Mailbox: "INBOX", UIDValidity: 1, UID: 4,
		MessageID: "20250610.1234@evil.example",
		Subject:   hostileSubject,
		From:      []record.Address{{Name: "\x1b[31mEvil\x1b[0m", Address: "evil@example.com"}},
		To:        []record.Address{{Name: "山田太郎", Address: "yamada@example.jp"}, {Address: "team@example.com"}},
		Cc:        []record.Address{{Name: "Party Bot 🎉", Address: "bot@example.com"}},
		Date:      &date, InternalDate: testNow, CapturedAt: testNow, Size: 48213,
		Text: "Dear customer,\r\n\r\nPlease find the invoice attached.\x1b[2J\x1b[H\r\n\tAmount:\t€ 1.234,00\r\n" +
			"会議の議事録：第3四半期の売上報告と来期の計画について。🎉👨\u200d👩\u200d👧\r\n" +
			strings.Repeat("A very long line that has to be wrapped by the viewport. ", 4) + "\r\n\r\n-- \r\nEvil Corp\x07\r\n",
		Attachments: []record.Attachment{
			{Filename: "invoice\u202Efdp.exe", ContentType: "application/pdf", Disposition: "attachment", Size: 45120, SavedAs: &saved},
			{Filename: "logo.png", ContentType: "image/png", Disposition: "inline", ContentID: "logo@x", Size: 812},
		},
		ParseErrors: []string{"header \"Date\": unparsable \x1b[31mdate\x1b[0m", "part 3: unknown charset \"x-evil\""},
	}
	rec.Normalize()
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// requireGolden compares s, downsampled to profile, with the golden file.
func requireGolden(t *testing.T, s string, profile colorprofile.Profile) {
	t.Helper()
	var buf bytes.Buffer
	w := &colorprofile.Writer{Forward: &buf, Profile: profile}
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
	golden.RequireEqual(t, buf.Bytes())
}

// checkLines asserts a component's lines fit the width.
func checkLines(t *testing.T, s string, w int) {
	t.Helper()
	for _, l := range strings.Split(s, "\n") {
		checkFrame(t, l, w, 1)
	}
}

func TestGolden(t *testing.T) {
	for _, sz := range goldenSizes {
		w, h := sz[0], sz[1]
		t.Run(fmt.Sprintf("%dx%d", w, h), func(t *testing.T) {
			// The model holds its components by pointer (Bubble Tea keeps
			// only the latest model), so each frame starts from a fresh scene.
			fresh := func(keys ...string) Model {
				m := scene(t, w, h, testOptions())
				for _, k := range keys {
					m = update(t, m, press(k))
				}
				return m
			}
			detailed := func(keys ...string) Model {
				// The third row is the hostile mail, uid 4: detailPath.
				m := update(t, fresh("down", "down", "enter"), detailFromRecord(sampleRecord(t), detailPath))
				for _, k := range keys {
					m = update(t, m, press(k))
				}
				return m
			}
			frames := map[string]string{}
			var b strings.Builder
			hm := fresh()
			hm.renderHeader(&b, w)
			frames["header"] = b.String()
			b.Reset()
			lm := fresh()
			lm.renderList(&b, w)
			frames["list"] = b.String()
			frames["screen"] = fresh().View().Content
			frames["screen_selection"] = fresh("down", "down").View().Content
			frames["screen_filtering"] = fresh("/", "i", "n", "v").View().Content
			frames["screen_filtered"] = fresh("/", "i", "n", "v", "enter").View().Content
			frames["screen_help"] = fresh("?").View().Content
			frames["screen_logs"] = fresh("l").View().Content
			frames["screen_detail_loading"] = fresh("down", "down", "enter").View().Content
			frames["screen_detail"] = detailed().View().Content
			frames["screen_detail_scrolled"] = detailed("down", "down", "down").View().Content
			frames["screen_detail_raw"] = detailed("o").View().Content
			frames["screen_boxes"] = fresh("tab", "down").View().Content
			frames["screen_boxes_filtering"] = fresh("tab", "/", "w", "o").View().Content
			// work/INBOX back: its last error stays in the panel, marked recovered.
			frames["screen_boxes_recovered"] = update(t, fresh(), eventsMsg{events: []watcher.Event{watcher.StateChanged{
				Mailbox: mbox("work", "INBOX"), State: watcher.StateIdle, At: testNow.Add(5 * time.Second)}}},
				press("tab"), press("down")).View().Content
			frames["screen_detail_error"] = update(t, fresh("down", "down", "enter"),
				detailMsg{path: detailPath, err: fmt.Errorf("open %s: no such file or directory", detailPath)}).View().Content

			for _, name := range slices.Sorted(maps.Keys(frames)) {
				t.Run(name, func(t *testing.T) {
					s := frames[name]
					if strings.HasPrefix(name, "screen") {
						checkFrame(t, s, w, h)
					} else {
						checkLines(t, s, w)
					}
					requireGolden(t, s, colorprofile.ANSI)
				})
			}
		})
	}
}

// NO_COLOR: no colour escapes at all, states readable as text, selection
// still visible (reverse video).
func TestGolden_noColor(t *testing.T) {
	opts := testOptions()
	opts.NoColor = true
	m := scene(t, 80, 24, opts)
	s := m.View().Content
	checkFrame(t, s, 80, 24)
	if c := colourSGR(s); c != "" {
		t.Errorf("NO_COLOR frame has a colour escape %q", c)
	}
	for _, want := range []string{"[idle]", "[paused]", "[reconnecting in 7s]", "\x1b[7m"} {
		if !strings.Contains(s, want) {
			t.Errorf("NO_COLOR frame lacks %q", want)
		}
	}
	requireGolden(t, s, colorprofile.ASCII)
}

// ASCII glyphs for terminals whose locale is not UTF-8.
func TestGolden_ascii(t *testing.T) {
	opts := testOptions()
	opts.ASCII = true
	m := scene(t, 80, 24, opts)
	s := m.View().Content
	checkFrame(t, s, 80, 24)
	for _, r := range plain(m) {
		if r > 0x7e && !isFromMail(r) {
			t.Errorf("ASCII frame has chrome glyph %q", r)
		}
	}
	requireGolden(t, s, colorprofile.ANSI)
}

// isFromMail tells the characters that came from the sample mail (allowed
// in ASCII mode: they are content) from the UI's own glyphs.
func isFromMail(r rune) bool {
	for _, s := range sampleSummaries() {
		if strings.ContainsRune(s.Subject+s.From, r) {
			return true
		}
	}
	return false
}

// Every width from tiny to huge: no line ever wider than the terminal, and
// the frame always exactly fills it.
func TestView_fitsEveryWidth(t *testing.T) {
	for _, h := range []int{5, 10, 24} {
		for w := 20; w <= 200; w += 7 {
			for _, keys := range [][]string{nil, {"down", "down", "enter"}, {"l"}, {"?"}, {"/", "x"}, {"tab"}, {"tab", "?"}, {"tab", "/", "w"}} {
				m := scene(t, w, h, testOptions())
				for _, k := range keys {
					m = update(t, m, press(k))
				}
				if m.state == stateDetail {
					m = update(t, m, detailFromRecord(sampleRecord(t), detailPath))
					if m.detail.loading {
						t.Fatal("detail did not load")
					}
				}
				checkFrame(t, m.View().Content, w, h)
			}
		}
	}
}

var sgrRE = regexp.MustCompile(`\x1b\[([0-9;:]*)m`)

// colourSGR returns the first SGR sequence in s that sets a colour.
func colourSGR(s string) string {
	for _, m := range sgrRE.FindAllStringSubmatch(s, -1) {
		for _, p := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ';' || r == ':' }) {
			n, _ := strconv.Atoi(p)
			if (n >= 30 && n <= 49) || (n >= 90 && n <= 107) {
				return m[0]
			}
		}
	}
	return ""
}

// The painted fast path draws exactly what lipgloss would.
func TestPaint_matchesRender(t *testing.T) {
	for _, st := range []Styles{DefaultStyles(), NoColorStyles()} {
		styles := []lipgloss.Style{st.Title, st.TitleDim, st.Warn, st.Mailbox, st.Counter, st.ErrText,
			st.Columns, st.Time, st.From, st.Subject, st.Box, st.Attach, st.Selected, st.Status, st.Notice}
		for _, b := range st.Badge {
			styles = append(styles, b)
		}
		for i, s := range styles {
			for _, text := range []string{"x", " idle ", "会議 🎉 a b"} { // "" paints as "", lipgloss as an empty SGR pair
				if got, want := paintOf(s).render(text), s.Render(text); got != want {
					t.Errorf("style %d: paint %q, Render %q", i, got, want)
				}
			}
		}
	}
}
