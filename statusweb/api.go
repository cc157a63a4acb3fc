package statusweb

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mailtap/watcher"
)

// routes builds the handler: every route behind the common headers and the
// Host check, control routes also behind the origin and token checks.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveAsset("index.html", "text/html; charset=utf-8"))
	mux.HandleFunc("GET /app.js", s.serveAsset("app.js", "text/javascript; charset=utf-8"))
	mux.HandleFunc("GET /style.css", s.serveAsset("style.css", "text/css; charset=utf-8"))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })

	mux.HandleFunc("GET /api/status", s.handleStatus)
	mux.HandleFunc("GET /api/events", s.handleEvents)
	mux.Handle("POST /api/pause", s.control("pause", s.w.Pause))
	mux.Handle("POST /api/resume", s.control("resume", s.w.Resume))
	mux.Handle("POST /api/reconnect", s.control("reconnect", s.w.Reconnect))

	mux.HandleFunc("GET /healthz", s.probe("unhealthy", s.w.Healthy))
	mux.HandleFunc("GET /readyz", s.probe("not_ready", s.w.Ready))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{s},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	return s.secure(mux)
}

// statusJSON is the body of GET /api/status and of the "status" event.
type statusJSON struct {
	Version string `json:"version"`
	Started string `json:"started"`
	// Now is the server's clock, so the page can count down next_retry
	// even when the browser's clock is off.
	Now string `json:"now"`
	// TokenRequired tells the page to ask for the control token.
	TokenRequired bool          `json:"token_required"`
	Mailboxes     []mailboxJSON `json:"mailboxes"`
	Recent        []recentItem  `json:"recent"` // newest first
}

type mailboxJSON struct {
	ID          string     `json:"id"` // "account/mailbox", the ?mailbox= value
	Account     string     `json:"account"`
	Mailbox     string     `json:"mailbox"`
	State       string     `json:"state"`
	Since       *time.Time `json:"since"`
	Error       string     `json:"error"`
	NextRetry   *time.Time `json:"next_retry"`
	Paused      bool       `json:"paused"`
	Captured    int64      `json:"captured"`
	Errors      int64      `json:"errors"`
	LastCapture *time.Time `json:"last_capture"`
	UIDValidity uint32     `json:"uid_validity"`
	LastUID     uint32     `json:"last_uid"`
}

// recentItem is one captured mail as the page lists it.
type recentItem struct {
	ID          string     `json:"id"`
	Mailbox     string     `json:"mailbox"` // "account/mailbox"
	UID         uint32     `json:"uid"`
	From        string     `json:"from"`
	Subject     string     `json:"subject"`
	Date        *time.Time `json:"date"`
	CapturedAt  time.Time  `json:"captured_at"`
	Size        int64      `json:"size"`
	Attachments int        `json:"attachments"`
	Path        string     `json:"path,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func mailboxOf(st watcher.MailboxStatus) mailboxJSON {
	return mailboxJSON{
		ID: st.Mailbox.String(), Account: st.Mailbox.Account, Mailbox: st.Mailbox.Mailbox,
		State: string(st.State), Since: optTime(st.Since), Error: st.Err,
		NextRetry: optTime(st.NextRetry), Paused: st.Paused,
		Captured: st.Captured, Errors: st.Errors, LastCapture: optTime(st.LastCapture),
		UIDValidity: st.UIDValidity, LastUID: st.LastUID,
	}
}

func itemOf(c watcher.Captured) recentItem {
	sum := c.Summary
	return recentItem{
		ID: sum.ID, Mailbox: c.Mailbox.String(), UID: sum.UID,
		From: sum.From, Subject: sum.Subject, Date: optTime(sum.Date), CapturedAt: c.At,
		Size: sum.Size, Attachments: sum.Attachments, Path: sum.Path,
	}
}

func (s *Server) mailboxes() []mailboxJSON { return s.snap.mailboxes() }

// status is the full snapshot.
func (s *Server) status() statusJSON { return s.snap.status() }

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.status())
}

// control handles POST /api/<action>[?mailbox=account/mailbox]. Without the
// parameter the action applies to every mailbox.
func (s *Server) control(action string, do func(id string) error) http.Handler {
	h := func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		id := q.Get("mailbox")
		if q.Has("mailbox") && id == "" {
			// Most likely a bug in a script; acting on every mailbox would
			// be a surprising reading of it.
			writeError(w, http.StatusBadRequest, "mailbox is empty: give account/mailbox, or leave the parameter out to mean every mailbox")
			return
		}
		if err := do(id); err != nil {
			if errors.Is(err, watcher.ErrUnknownMailbox) {
				writeError(w, http.StatusNotFound, fmt.Sprintf("unknown mailbox %q", id))
				return
			}
			s.log.Error("control failed", "action", action, "mailbox", id, "err", err)
			writeError(w, http.StatusInternalServerError, action+": "+err.Error())
			return
		}
		target := id
		if target == "" {
			target = "all"
		}
		s.log.Info("control", "action", action, "mailbox", target, "remote", r.RemoteAddr)
		mbs := s.mailboxes()
		if id != "" {
			for _, mb := range mbs {
				if mb.ID == id {
					mbs = []mailboxJSON{mb}
					break
				}
			}
		}
		writeJSON(w, http.StatusOK, struct {
			OK        bool          `json:"ok"`
			Action    string        `json:"action"`
			Mailbox   string        `json:"mailbox"` // "" = all
			Mailboxes []mailboxJSON `json:"mailboxes"`
		}{true, action, id, mbs})
	}
	return s.requireSameOrigin(s.requireToken(http.HandlerFunc(h)))
}

// probe serves /healthz and /readyz: 200 {"status":"ok"} or 503 with
// status bad, both with the watcher's reason.
func (s *Server) probe(bad string, check func() (bool, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ok, reason := check()
		code, status := http.StatusOK, "ok"
		if !ok {
			code, status = http.StatusServiceUnavailable, bad
		}
		writeJSON(w, code, struct {
			Status string `json:"status"`
			Reason string `json:"reason"`
		}{status, reason})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"encode response"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, struct {
		Error string `json:"error"`
	}{msg})
}

// slogPrinter adapts the logger to promhttp's Println-style ErrorLog.
type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Warn("metrics: " + fmt.Sprint(v...)) }

// recentRing holds the last recentSize captured mails.
type recentRing struct {
	mu    sync.Mutex
	items [recentSize]recentItem
	head  int // next slot to write
	n     int
}

func (r *recentRing) add(it recentItem) {
	r.mu.Lock()
	r.items[r.head] = it
	r.head = (r.head + 1) % recentSize
	if r.n < recentSize {
		r.n++
	}
	r.mu.Unlock()
}

// list returns the ring newest first.
func (r *recentRing) list() []recentItem {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]recentItem, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.items[(r.head-i+recentSize)%recentSize])
	}
	return out
}
