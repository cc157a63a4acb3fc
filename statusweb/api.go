package statusweb

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mailtap/record"
	"mailtap/watcher"
)

// routes builds the handler: every route behind the common headers and the
// Host check, control routes also behind the origin and token checks.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// Every path also gets a method-less pattern answering 405 in JSON
	// (ServeMux's own 404 and 405 are plain text), and "/" a JSON 404.
	allowed := map[string][]string{}
	handle := func(method, path string, h http.Handler) {
		mux.Handle(method+" "+path, h)
		if method == http.MethodGet {
			allowed[path] = append(allowed[path], http.MethodGet, http.MethodHead)
		} else {
			allowed[path] = append(allowed[path], method)
		}
	}
	handle("GET", "/{$}", s.serveAsset("index.html", "text/html; charset=utf-8"))
	handle("GET", "/app.js", s.serveAsset("app.js", "text/javascript; charset=utf-8"))
	handle("GET", "/style.css", s.serveAsset("style.css", "text/css; charset=utf-8"))
	handle("GET", "/favicon.ico", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))

	handle("GET", "/api/status", http.HandlerFunc(s.handleStatus))
	handle("GET", "/api/events", http.HandlerFunc(s.handleEvents))
	handle("POST", "/api/pause", s.control("pause", s.w.Pause))
	handle("POST", "/api/resume", s.control("resume", s.w.Resume))
	handle("POST", "/api/reconnect", s.control("reconnect", s.w.Reconnect))

	handle("GET", "/healthz", s.probe("unhealthy", s.w.Healthy))
	handle("GET", "/readyz", s.probe("not_ready", s.w.Ready))
	handle("GET", "/metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{s},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	for path, methods := range allowed {
		allow := strings.Join(methods, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s is not allowed; use %s", r.Method, r.URL.Path, allow))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such page: %s (see / for the status page, /api/status for JSON)", r.URL.Path))
	})
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
	Sinks         []sinkJSON    `json:"sinks"`
}

type mailboxJSON struct {
	ID          string   `json:"id"` // "account/mailbox", the ?mailbox= value
	Account     string   `json:"account"`
	Mailbox     string   `json:"mailbox"`
	State       string   `json:"state"`
	Since       *apiTime `json:"since"`
	Error       string   `json:"error"`
	NextRetry   *apiTime `json:"next_retry"`
	Paused      bool     `json:"paused"`
	Captured    int64    `json:"captured"`
	Malformed   int64    `json:"malformed"` // captured with parse_errors
	Errors      int64    `json:"errors"`    // failed connection attempts
	LastCapture *apiTime `json:"last_capture"`
	UIDValidity uint32   `json:"uid_validity"`
	LastUID     uint32   `json:"last_uid"`
	// LastServerContact is when the server last sent anything for this
	// mailbox; /readyz fails when it is older than two refreshes.
	LastServerContact *apiTime `json:"last_server_contact"`
	// Warning is the latest sign that the server's word was wrong (see
	// the README's "Server habits and cross-checks"), "" if none.
	Warning   string   `json:"warning"`
	WarningAt *apiTime `json:"warning_at"`
}

// recentItem is one captured mail as the page lists it.
type recentItem struct {
	ID          string   `json:"id"`
	Mailbox     string   `json:"mailbox"` // "account/mailbox"
	UID         uint32   `json:"uid"`
	From        string   `json:"from"`
	Subject     string   `json:"subject"`
	Date        *apiTime `json:"date"`
	CapturedAt  apiTime  `json:"captured_at"`
	Size        int64    `json:"size"`
	Attachments int      `json:"attachments"`
	Path        string   `json:"path,omitempty"`
}

// apiTime is a time as the API writes it: record.TimeLayout in UTC, the
// format of the records, so every time mailtap shows has one form.
type apiTime struct{ time.Time }

func (t apiTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + record.FormatTime(t.Time) + `"`), nil
}

func optTime(t time.Time) *apiTime {
	if t.IsZero() {
		return nil
	}
	return &apiTime{t}
}

func mailboxOf(st watcher.MailboxStatus) mailboxJSON {
	return mailboxJSON{
		ID: st.Mailbox.String(), Account: st.Mailbox.Account, Mailbox: st.Mailbox.Mailbox,
		State: string(st.State), Since: optTime(st.Since), Error: st.Err,
		NextRetry: optTime(st.NextRetry), Paused: st.Paused,
		Captured: st.Captured, Malformed: st.Malformed, Errors: st.Errors, LastCapture: optTime(st.LastCapture),
		UIDValidity: st.UIDValidity, LastUID: st.LastUID,
		LastServerContact: optTime(st.LastServerContact),
		Warning:           st.Warning, WarningAt: optTime(st.WarningAt),
	}
}

func itemOf(c watcher.Captured) recentItem {
	sum := c.Summary
	return recentItem{
		ID: sum.ID, Mailbox: c.Mailbox.String(), UID: sum.UID,
		From: sum.From, Subject: sum.Subject, Date: optTime(sum.Date), CapturedAt: apiTime{c.At},
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
		// ?mailbox= may be repeated: the action applies to each, after all
		// of them are known to exist (nothing happens for a typo).
		ids := r.URL.Query()["mailbox"]
		if slices.Contains(ids, "") {
			// Most likely a bug in a script; acting on every mailbox would
			// be a surprising reading of it.
			writeError(w, http.StatusBadRequest, "mailbox is empty: give account/mailbox, or leave the parameter out to mean every mailbox")
			return
		}
		ids = slices.Compact(slices.Sorted(slices.Values(ids)))
		all := s.mailboxes()
		known := make([]string, len(all))
		for i, mb := range all {
			known[i] = mb.ID
		}
		for _, id := range ids {
			if !slices.Contains(known, id) {
				writeJSON(w, http.StatusNotFound, struct {
					Error string   `json:"error"`
					Valid []string `json:"valid"`
				}{fmt.Sprintf("unknown mailbox %q; valid: %s", id, listIDs(known)), known})
				return
			}
		}
		targets := ids
		if len(targets) == 0 {
			targets = []string{""} // every mailbox
		}
		for _, id := range targets {
			if err := do(id); err != nil {
				if errors.Is(err, watcher.ErrUnknownMailbox) {
					writeError(w, http.StatusNotFound, fmt.Sprintf("unknown mailbox %q; valid: %s", id, listIDs(known)))
					return
				}
				s.log.Error("control failed", "action", action, "mailbox", id, "err", err)
				writeError(w, http.StatusInternalServerError, action+": "+err.Error())
				return
			}
		}
		target := strings.Join(ids, ",")
		if target == "" {
			target = "all"
		}
		s.log.Info("control", "action", action, "mailbox", target, "remote", r.RemoteAddr)
		mbs := s.mailboxes()
		if len(ids) > 0 {
			mbs = slices.DeleteFunc(mbs, func(mb mailboxJSON) bool { return !slices.Contains(ids, mb.ID) })
		}
		one := ""
		if len(ids) == 1 {
			one = ids[0]
		}
		if ids == nil {
			ids = []string{}
		}
		writeJSON(w, http.StatusOK, struct {
			OK        bool          `json:"ok"`
			Action    string        `json:"action"`
			Mailbox   string        `json:"mailbox"` // the one target; "" = all, or several (see targets)
			Targets   []string      `json:"targets"` // every ?mailbox= given; [] = all
			Mailboxes []mailboxJSON `json:"mailboxes"`
		}{true, action, one, ids, mbs})
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

// listIDs names mailbox ids for an error message, the first 20 of them.
func listIDs(ids []string) string {
	if len(ids) > 20 {
		return strings.Join(ids[:20], ", ") + fmt.Sprintf(" and %d more (GET /api/status lists them all)", len(ids)-20)
	}
	return strings.Join(ids, ", ")
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
