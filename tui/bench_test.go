package tui

import (
	"fmt"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"mailtap/record"
	"mailtap/watcher"
)

// Frame time and event cost at 100,000 rows. Run:
//
//	go test ./tui -run '^$' -bench 'ListView|ApplyCaptured' -benchmem
//
// BenchmarkListView is one full frame (View) of the list screen at 120×40;
// BenchmarkApplyCaptured is Update for one Captured event, which inserts a
// row; BenchmarkApplyCapturedAndRender adds the frame the program draws
// after it. Each must not grow with the row count: only the visible window
// is drawn, and a new row is an append.

const benchRows = 100_000

func benchSummary(i int) record.Summary {
	subjects := []string{"Your invoice #%d", "Re: meeting notes %d", "会議の議事録 %d について", "🎉 party %d tonight ❤️", "[list] weekly digest %d"}
	box := []string{"INBOX", "Lists/Go", "Archive"}[i%3]
	return record.Summary{
		ID: fmt.Sprintf("acct/%s/1/%d", box, i), Account: "acct", Mailbox: box, UIDValidity: 1, UID: uint32(i),
		From: fmt.Sprintf("Sender Number %d <sender%d@example.com>", i%977, i%977), Subject: fmt.Sprintf(subjects[i%len(subjects)], i),
		Date: testNow.Add(-time.Duration(benchRows-i) * time.Second), Attachments: i % 4 / 3,
		Path: fmt.Sprintf("/out/acct/%s/1-%010d.json", box, i),
	}
}

func benchModel(b *testing.B, filter string) Model {
	b.Helper()
	m := NewModel(newFakeCtrl(), testOptions())
	st := []watcher.MailboxStatus{
		{Mailbox: mbox("acct", "INBOX"), State: watcher.StateIdle},
		{Mailbox: mbox("acct", "Lists/Go"), State: watcher.StateIdle},
		{Mailbox: mbox("acct", "Archive"), State: watcher.StatePaused, Paused: true},
	}
	m = update(b, m, tea.WindowSizeMsg{Width: 120, Height: 40}, statusMsg{at: testNow, st: st})
	evs := make([]watcher.Event, 0, benchRows)
	for i := 1; i <= benchRows; i++ {
		s := benchSummary(i)
		evs = append(evs, watcher.Captured{Mailbox: mbox(s.Account, s.Mailbox), Summary: s, At: testNow.Add(time.Duration(i) * time.Millisecond)})
	}
	m = update(b, m, eventsMsg{events: evs})
	m.list.move(benchRows / 2) // somewhere in the middle, as a user would be
	if filter != "" {
		m.list.setFilter(filter)
	}
	if m.list.len() == 0 {
		b.Fatal("empty list")
	}
	return m
}

func BenchmarkListView(b *testing.B) {
	m := benchModel(b, "")
	if len(m.list.rows) != benchRows {
		b.Fatalf("%d rows", len(m.list.rows))
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = m.View()
	}
}

func BenchmarkListViewFiltered(b *testing.B) {
	m := benchModel(b, "invoice")
	b.ReportAllocs()
	for b.Loop() {
		_ = m.View()
	}
}

func benchApply(b *testing.B, filter string, render bool) {
	m := benchModel(b, filter)
	i := benchRows
	b.ReportAllocs()
	for b.Loop() {
		i++
		s := benchSummary(i)
		nm, _ := m.Update(eventsMsg{events: []watcher.Event{watcher.Captured{Mailbox: mbox(s.Account, s.Mailbox), Summary: s,
			At: testNow.Add(time.Duration(i) * time.Millisecond)}}})
		m = nm.(Model)
		if render {
			_ = m.View()
		}
	}
}

func BenchmarkApplyCaptured(b *testing.B)          { benchApply(b, "", false) }
func BenchmarkApplyCapturedFiltered(b *testing.B)  { benchApply(b, "invoice", false) }
func BenchmarkApplyCapturedAndRender(b *testing.B) { benchApply(b, "", true) }

// BenchmarkFilter100k is one keystroke in the filter box: a scan of every row.
func BenchmarkFilter100k(b *testing.B) {
	m := benchModel(b, "")
	terms := []string{"invoice", "invoic", "party", "sender number 12"}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		m.list.setFilter(terms[n%len(terms)])
		n++
	}
}
