package tui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"mailtap/mailparse"
	"mailtap/record"
)

// detailMsg carries a record read from disk by loadDetail. Everything in it
// is already sanitized: the update loop only wraps lines to the width.
type detailMsg struct {
	path  string
	meta  [][2]string // label, value
	info  []string    // parse errors and truncation, one line each, above the body
	body  string
	after []string // forwarded messages and attachments, below the body; pathMark lines are paths
	raw   string   // the file, indented, for "o"
	err   error
}

// loadDetail reads and decodes a record file off the update loop.
func loadDetail(path string) tea.Cmd {
	return func() tea.Msg {
		data, err := os.ReadFile(path)
		if err != nil {
			return detailMsg{path: path, err: err}
		}
		return detailFromRecord(data, path)
	}
}

// detailFromRecord prepares a record file's bytes for the detail view.
func detailFromRecord(data []byte, path string) detailMsg {
	rec, err := record.DecodeRecord(data, path)
	if err != nil {
		return detailMsg{path: path, err: err}
	}
	msg := detailMsg{path: path}
	msg.meta = recordMeta(rec, path)
	msg.info = recordInfo(rec)
	msg.body = sanitizeText(rec.Text)
	if msg.body == "" && rec.HTML != "" {
		msg.body = "(no text part; the HTML part is in the record's \"html\" field: press o)"
	}
	msg.after = append(forwarded(rec, path), attachmentLines(rec, path)...)
	var ind bytes.Buffer
	if json.Indent(&ind, data, "", "  ") == nil {
		data = ind.Bytes()
	}
	msg.raw = sanitizeText(string(data))
	return msg
}

func recordMeta(rec *record.Record, path string) [][2]string {
	addrs := func(as []record.Address) string {
		parts := make([]string, len(as))
		for i, a := range as {
			parts[i] = a.Display()
		}
		return sanitizeLine(strings.Join(parts, ", "))
	}
	date := "(none)"
	if rec.Date != nil {
		date = rec.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700")
	}
	meta := [][2]string{
		{"From", addrs(rec.From)},
		{"To", addrs(rec.To)},
	}
	if len(rec.Cc) > 0 {
		meta = append(meta, [2]string{"Cc", addrs(rec.Cc)})
	}
	meta = append(meta,
		[2]string{"Date", date},
		[2]string{"Captured", rec.CapturedAt.Format("Mon, 02 Jan 2006 15:04:05 -0700")},
		[2]string{"Subject", sanitizeLine(rec.Subject)},
		[2]string{"Message-ID", sanitizeLine(rec.MessageID)},
		[2]string{"Mailbox", sanitizeLine(rec.Account + "/" + rec.Mailbox + " uid " + strconv.FormatUint(uint64(rec.UID), 10))},
		[2]string{"File", sanitizeLine(path)},
	)
	return meta
}

// savedPath is where an attachment was saved, absolute like the record's
// own path (one rule for every path shown): saved_as is relative to the
// output dir, which is the record's folder minus its account/mailbox part.
func savedPath(recPath, savedAs string) string {
	recDir := filepath.Dir(recPath)
	rel := filepath.Dir(filepath.Dir(filepath.FromSlash(savedAs))) // <account>/<mailbox>
	if out, ok := strings.CutSuffix(recDir, rel); ok && filepath.IsAbs(recPath) {
		return filepath.Join(out, filepath.FromSlash(savedAs))
	}
	return savedAs
}

// attachmentLines lists the attachments, after the body, under a heading.
func attachmentLines(rec *record.Record, path string) []string {
	if len(rec.Attachments) == 0 {
		return nil
	}
	lines := []string{"", fmt.Sprintf("Attachments (%d):", len(rec.Attachments))}
	for _, a := range rec.Attachments {
		name := sanitizeLine(a.Filename)
		if name == "" {
			name = "(unnamed)"
		}
		lines = append(lines, fmt.Sprintf("  %s  %s  %s", name, sanitizeLine(a.ContentType), humanSize(a.Size)))
		if a.SavedAs != nil {
			lines = append(lines, pathMark+"    "+sanitizeLine(savedPath(path, *a.SavedAs)))
		}
	}
	return lines
}

// pathMark starts a line of detailMsg.after that is a path: wrapped at the
// width exactly, never at a hyphen, so that it copies back whole.
const pathMark = "\x00path"

// maxForwardedBytes bounds the forwarded message read for the detail view.
const maxForwardedBytes = 4 << 20

// forwarded shows each forwarded message (message/rfc822) the record
// saved: its From, Date and Subject, and, when it is inline (the body's
// continuation: "FYI, see below."), its text, indented. Reading the saved
// file happens here, in loadDetail's command, never on the update loop.
func forwarded(rec *record.Record, path string) []string {
	var lines []string
	for _, a := range rec.Attachments {
		if a.ContentType != "message/rfc822" {
			continue
		}
		lines = append(lines, "", "---------- Forwarded message ----------")
		if a.SavedAs == nil {
			lines = append(lines, `(not saved: with output.attachments "save" it is shown here)`)
			continue
		}
		fwd, err := readForwarded(savedPath(path, *a.SavedAs))
		if err != nil {
			lines = append(lines, "(cannot read it: "+sanitizeLine(err.Error())+")")
			continue
		}
		meta := recordMeta(fwd, "")
		for _, kv := range meta {
			switch kv[0] {
			case "From", "Date", "Subject", "To":
				if kv[1] != "" {
					lines = append(lines, pad(kv[0]+":", 9)+kv[1])
				}
			}
		}
		if a.Disposition != "attachment" {
			lines = append(lines, "")
			for l := range strings.Lines(sanitizeText(fwd.Text)) {
				lines = append(lines, "    "+strings.TrimRight(l, "\n"))
			}
		}
	}
	return lines
}

func readForwarded(path string) (*record.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return mailparse.Parse(io.LimitReader(f, maxForwardedBytes), mailparse.ParseOptions{})
}

func recordInfo(rec *record.Record) []string {
	var info []string
	if len(rec.ParseErrors) > 0 {
		info = append(info, fmt.Sprintf("Parse errors (%d):", len(rec.ParseErrors)))
		for _, e := range rec.ParseErrors {
			info = append(info, "  "+sanitizeLine(e))
		}
	}
	if rec.Truncated {
		info = append(info, "Body truncated at output.max_body_bytes.")
	}
	return info
}

func humanSize(n int64) string {
	switch {
	case n < 1024:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1024*1024:
		return strconv.FormatFloat(float64(n)/1024, 'f', 1, 64) + " KiB"
	default:
		return strconv.FormatFloat(float64(n)/(1024*1024), 'f', 1, 64) + " MiB"
	}
}

// detail is the view of one record: fixed header fields, then a scrollable
// viewport with attachments, parse errors and the text body (or, after
// "o", the raw JSON).
type detail struct {
	row     *row // the list row it was opened from
	path    string
	loading bool
	msg     detailMsg
	showRaw bool
	vp      viewport.Model
	width   int
	height  int // lines for the whole detail view
}

func newDetail(r *row, width, height int) *detail {
	d := &detail{row: r, path: r.sum.Path, loading: true}
	d.vp = viewport.New()
	d.vp.SoftWrap = false
	d.setSize(width, height)
	return d
}

// metaLines is how many fixed lines sit above the viewport: the fields that
// fit and a rule.
func (d *detail) metaLines() int {
	if d.loading || d.msg.err != nil {
		return 0
	}
	return len(d.metaRows()) + 1
}

// metaRows is the shown fields as screen lines: label and value, the value
// cut to the width, except File's, which wraps onto more lines (it is what
// people copy, and a cut path is no path).
func (d *detail) metaRows() [][2]string {
	meta := d.shownMeta()
	labelW := 0
	for _, kv := range meta {
		labelW = max(labelW, len(kv[0]))
	}
	room := max(d.width-labelW-3, 8) // " Label: "
	var rows [][2]string
	for _, kv := range meta {
		label := " " + pad(kv[0]+":", labelW+1) + " "
		if kv[0] != "File" {
			rows = append(rows, [2]string{label, kv[1]}) // cut by the renderer
			continue
		}
		for i, l := range hardWrap(kv[1], room) {
			if i > 0 {
				label = strings.Repeat(" ", len(label))
			}
			rows = append(rows, [2]string{label, l})
		}
	}
	return rows
}

// metaRank orders the header fields by how much they matter when a short
// terminal cannot show them all.
var metaRank = map[string]int{"Subject": 0, "From": 1, "Date": 2, "File": 3, "To": 4, "Message-ID": 5, "Cc": 6, "Mailbox": 7, "Captured": 8}

// shownMeta is the fields that fit in half the view, most important first
// kept, shown in their usual order.
func (d *detail) shownMeta() [][2]string {
	limit := max((d.height-1)/2, 2)
	if len(d.msg.meta) <= limit {
		return d.msg.meta
	}
	var out [][2]string
	for _, kv := range d.msg.meta {
		if metaRank[kv[0]] < limit {
			out = append(out, kv)
		}
	}
	return out
}

func (d *detail) setSize(width, height int) {
	d.width, d.height = width, height
	d.vp.SetWidth(width)
	d.vp.SetHeight(max(height-d.metaLines(), 1))
	d.fill()
}

func (d *detail) loaded(msg detailMsg) {
	d.loading = false
	d.msg = msg
	d.setSize(d.width, d.height)
	d.vp.GotoTop()
}

// fill wraps the viewport's content to the current width.
func (d *detail) fill() {
	if d.loading || d.msg.err != nil {
		d.vp.SetContentLines(nil)
		return
	}
	w := max(d.width-1, 1)
	var lines []string
	if d.showRaw {
		lines = wrapLines(d.msg.raw, w)
	} else {
		for _, l := range d.msg.info {
			// Continuation lines of an attachment or error indent past
			// its "  " bullet.
			for i, wl := range wrapLines(l, max(w-4, 10)) {
				if i > 0 {
					wl = "    " + wl
				}
				lines = append(lines, wl)
			}
		}
		if len(d.msg.info) > 0 {
			lines = append(lines, "")
		}
		lines = append(lines, wrapLines(d.msg.body, w)...)
		for _, l := range d.msg.after {
			if p, ok := strings.CutPrefix(l, pathMark); ok {
				lines = append(lines, hardWrap(p, w)...)
				continue
			}
			lines = append(lines, wrapIndented(l, w)...)
		}
	}
	y := d.vp.YOffset()
	d.vp.SetContentLines(lines)
	d.vp.SetYOffset(y)
}

func (d *detail) toggleRaw() {
	d.showRaw = !d.showRaw
	d.fill()
	d.vp.GotoTop()
}

// wrapIndented wraps a line and indents its continuation lines as far as
// the line itself is indented, plus two.
func wrapIndented(l string, w int) []string {
	ind := len(l) - len(strings.TrimLeft(l, " "))
	out := wrapLines(l, max(w-ind-2, 10))
	for i := 1; i < len(out); i++ {
		out[i] = strings.Repeat(" ", ind+2) + out[i]
	}
	return out
}

// hardWrap cuts a path (after its indent) into lines of exactly w columns,
// continuation lines indented like the first.
func hardWrap(s string, w int) []string {
	ind := len(s) - len(strings.TrimLeft(s, " "))
	body := s[ind:]
	room := max(w-ind, 8)
	var out []string
	for _, l := range strings.Split(ansi.Hardwrap(body, room, false), "\n") {
		out = append(out, strings.Repeat(" ", ind)+l)
	}
	return out
}

// wrapLines wraps sanitized text to w columns, breaking long words.
func wrapLines(s string, w int) []string {
	if s == "" {
		return []string{""}
	}
	return strings.Split(ansi.Wrap(s, w, ""), "\n")
}

func (m *model) renderDetail(b *strings.Builder, width, height int) {
	d, st, g := m.detail, &m.styles, m.glyphs
	switch {
	case d.loading:
		b.WriteString(truncate(" Loading "+sanitizeLine(d.path)+g.Ellipsis, width))
		b.WriteString(strings.Repeat("\n", max(height-1, 0)))
		return
	case d.msg.err != nil:
		b.WriteString(st.ParseErr.Render(truncate(" Cannot show this mail: "+sanitizeLine(d.msg.err.Error()), width, g.Ellipsis)))
		b.WriteString("\n")
		b.WriteString(st.Empty.Render(truncate(" It may have been moved or deleted since it was captured. esc: back", width, g.Ellipsis)))
		b.WriteString(strings.Repeat("\n", max(height-2, 0)))
		return
	}
	for _, row := range d.metaRows() {
		b.WriteString(st.Label.Render(row[0]))
		b.WriteString(st.Value.Render(truncate(row[1], width-len(row[0]), g.Ellipsis)))
		b.WriteString("\n")
	}
	rule := " body"
	if d.showRaw {
		rule = " raw JSON record"
	}
	if total := d.vp.TotalLineCount(); total > d.vp.Height() {
		rule += fmt.Sprintf(" (%d%%)", int(d.vp.ScrollPercent()*100))
	}
	b.WriteString(st.Section.Render(pad(rule, width)))
	b.WriteString("\n")
	b.WriteString(d.vp.View())
}
