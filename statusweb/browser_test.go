package statusweb

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"mailtap/internal/testimap"
	"mailtap/watcher"
)

// chromiumPath finds Debian's chromium, or skips the test (fails it when
// MAILTAP_REQUIRE_BROWSER=1, as CI sets).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("MAILTAP_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "chromium not found (apt-get install chromium, or set MAILTAP_CHROMIUM); browser checks of the status page skipped"
	if os.Getenv("MAILTAP_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg + " — but MAILTAP_REQUIRE_BROWSER=1")
	}
	t.Skip(msg)
	return ""
}

// browser is a headless chromium with a fresh profile. It collects what
// the pages write to the console, so a test can assert that no script
// failed and nothing broke the Content-Security-Policy.
type browser struct {
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	profile := t.TempDir()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.WindowSize(1200, 900),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	// Registered after TempDir, so it runs first: the browser is gone
	// before its profile is removed.
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{ctx: ctx}
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b.listen(ctx)
	return b
}

// tab opens a new tab that shares the browser.
func (b *browser) tab(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	b.listen(ctx)
	return ctx
}

func (b *browser) listen(ctx context.Context) {
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
}

// checkConsole fails on exceptions, CSP violations and other errors.
func (b *browser) checkConsole(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		bad := m.IsException() || strings.Contains(m.Text, "Content Security Policy")
		// A refused control request is logged by the browser as a failed
		// resource load; the tests provoke one (401) on purpose, and the
		// "gone" test a refused connection.
		if m.Type == chromedp.ConsoleError && !strings.Contains(m.Text, "401") && !strings.Contains(m.Text, "ERR_CONNECTION_REFUSED") {
			bad = true
		}
		if bad {
			t.Errorf("browser console: %s (%s:%d)", m, m.URL, m.Line)
		}
	}
}

// do runs steps with a deadline, naming the step on failure.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		// Say what the page showed, for a failure seen only in CI.
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		text, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("%s: %v\npage text:\n%s", what, err, text)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS waits until the JavaScript expression is truthy.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second))
}

func badgeIs(id, state string) chromedp.Action[chromedp.Void] {
	return waitJS(fmt.Sprintf(`document.querySelector('article[data-mailbox=%q] .badge')?.textContent === %q`, id, strings.ReplaceAll(state, "_", " ")))
}

func listed(subject string) chromedp.Action[chromedp.Void] {
	return waitJS(fmt.Sprintf(`[...document.querySelectorAll('#recent .subject')].some(e => e.textContent.includes(%q))`, subject))
}

func controlButton(action, id string) chromedp.CSS {
	return chromedp.CSS(fmt.Sprintf(`button[data-action=%q][data-mailbox=%q]`, action, id))
}

// saveScreenshot writes png to t.TempDir() (and to MAILTAP_SCREENSHOT_DIR,
// when set, to keep it after the test) and returns the path.
func saveScreenshot(t *testing.T, name string, png []byte) string {
	t.Helper()
	if len(png) == 0 {
		t.Fatalf("screenshot %s is empty", name)
	}
	path := filepath.Join(t.TempDir(), name)
	if keep := os.Getenv("MAILTAP_SCREENSHOT_DIR"); keep != "" {
		if err := os.MkdirAll(keep, 0o755); err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(keep, name)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Size() == 0 {
		t.Fatalf("screenshot %s not written: %v", path, err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, st.Size())
	return path
}

func TestBrowser_statusPage(t *testing.T) {
	b := newBrowser(t)

	t.Run("live", func(t *testing.T) {
		r := startRig(t)
		ctx := b.tab(t)
		do(t, ctx, "open the page", chromedp.Navigate(r.base+"/"), badgeIs(inbox, "idle"),
			waitJS(`document.getElementById('conn').textContent === 'live'`))
		if v := eval[string](t, ctx, `document.getElementById('version').textContent`); v != "v0.0.0-test" {
			t.Errorf("version shown = %q", v)
		}

		// Arrives without a reload; the subject is shown as text, not HTML.
		const hostile = `<img src=x onerror="window.pwned=1">Hello from the browser test`
		r.imap.Deliver(t, "INBOX", testimap.Msg(hostile, 1))
		do(t, ctx, "mail appears live", listed("Hello from the browser test"))
		if h := eval[string](t, ctx, `document.getElementById('recent-head').textContent`); !strings.HasPrefix(h, "Captured") {
			t.Errorf("the recent list's time column is labelled %q, want Captured (the TUI's meaning too)", h)
		}
		if n := eval[int](t, ctx, `document.querySelectorAll('#recent img').length`); n != 0 {
			t.Errorf("subject was rendered as HTML: %d img elements", n)
		}
		if got := eval[string](t, ctx, `document.querySelector('#recent .subject').firstChild.textContent`); got != hostile {
			t.Errorf("subject shown = %q, want it verbatim", got)
		}
		if eval[bool](t, ctx, `window.pwned === 1`) {
			t.Error("a subject ran script")
		}
		do(t, ctx, "counter", waitJS(`document.querySelector('article[data-mailbox="test/INBOX"] dd:nth-of-type(2)').textContent.startsWith('1 this run')`))
		// A malformed mail is captured (and counted) and counted as malformed,
		// not as a connection error.
		r.imap.Deliver(t, "INBOX", []byte("From: a@example.com\r\nSubject: Bad charset\r\nMessage-ID: <bad@x>\r\n"+
			"Content-Type: text/plain; charset=x-unknown-charset\r\n\r\ncaf\xe9\r\n"))
		do(t, ctx, "malformed counter", listed("Bad charset"),
			waitJS(`document.querySelector('article[data-mailbox="test/INBOX"] dd:nth-of-type(2)').textContent === '2 this run · 1 malformed'`),
			waitJS(`document.querySelector('article[data-mailbox="test/INBOX"] dd:nth-of-type(3)').textContent === '0 failed connections'`))

		// Pause from the page, mail arrives, Resume: captured and listed.
		do(t, ctx, "pause", chromedp.Click(controlButton("pause", inbox)), badgeIs(inbox, "paused"),
			waitJS(`document.querySelector('button[data-action="pause"][data-mailbox="test/INBOX"]').disabled`))
		if !r.paused(inbox) {
			t.Fatal("the page's Pause did not pause the watcher")
		}
		r.imap.Deliver(t, "INBOX", testimap.Msg("Delivered while paused", 2))
		do(t, ctx, "resume", chromedp.Click(controlButton("resume", inbox)), listed("Delivered while paused"), badgeIs(inbox, "idle"))
		if n := eval[int](t, ctx, `document.querySelectorAll('#recent li').length`); n != 3 {
			t.Errorf("recent list has %d entries, want 3", n)
		}

		// Reconnect all, from the header.
		do(t, ctx, "reconnect all", chromedp.Click(controlButton("reconnect", "")))
		if !eventually(func() bool { return counter(t, r, "mailtap_reconnects_total") >= 1 }) {
			t.Error("Reconnect all did not reconnect")
		}
		do(t, ctx, "back to idle", badgeIs(inbox, "idle"))

		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		saveScreenshot(t, "status-page.png", png)

		// Readable on a phone: nothing wider than the screen.
		do(t, ctx, "phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		if !eval[bool](t, ctx, `document.documentElement.scrollWidth <= window.innerWidth`) {
			t.Errorf("page scrolls sideways on a 390px screen (scrollWidth %d)", eval[int](t, ctx, `document.documentElement.scrollWidth`))
		}
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		saveScreenshot(t, "status-page-phone.png", png)

		// Dark mode follows the system setting.
		light := eval[string](t, ctx, `getComputedStyle(document.body).backgroundColor`)
		do(t, ctx, "dark mode", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
			})
			return err
		}))
		if dark := eval[string](t, ctx, `getComputedStyle(document.body).backgroundColor`); dark == light {
			t.Errorf("background stays %s in dark mode", dark)
		}
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		saveScreenshot(t, "status-page-phone-dark.png", png)
	})

	t.Run("token", func(t *testing.T) {
		const token = "page-token-5d1e"
		r := startRig(t, withOptions(Options{Addr: "127.0.0.1:0", Token: token}))
		ctx := b.tab(t)
		do(t, ctx, "open the page", chromedp.Navigate(r.base+"/"), badgeIs(inbox, "idle"),
			waitJS(`!document.getElementById('auth').hidden`))

		do(t, ctx, "pause without token", chromedp.Click(controlButton("pause", inbox)),
			waitJS(`document.getElementById('notice').textContent.includes('token')`))
		if r.paused(inbox) {
			t.Fatal("paused without the token")
		}
		do(t, ctx, "enter token",
			chromedp.SendKeys(chromedp.CSS("#token"), token),
			chromedp.Click(chromedp.CSS(`#auth button[type="submit"]`)),
			waitJS(`document.getElementById('auth').hidden`))
		if v := eval[string](t, ctx, `document.getElementById('token').value`); v != "" {
			t.Error("the token stays in the input after use")
		}
		do(t, ctx, "pause with token", chromedp.Click(controlButton("pause", inbox)), badgeIs(inbox, "paused"),
			waitJS(`document.getElementById('notice').hidden`))
		if !r.paused(inbox) {
			t.Fatal("the page's Pause with the token did not pause")
		}
		if strings.Contains(eval[string](t, ctx, `document.body.innerText`), token) {
			t.Error("the page shows the token")
		}
	})

	// mailtap goes away with the page open: nothing may keep looking live.
	// A second status server in front of the rig's watcher is stopped and
	// later started again on the same port, as a restarted mailtap would be.
	t.Run("gone", func(t *testing.T) {
		r := startRig(t)
		serve := func(addr string) (stop func(), base string) {
			srv, err := New(r.mgr, Options{Addr: addr, Gatherer: r.reg, Logger: quietLogger(t), Version: "v0.0.0-test"})
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Listen(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx) }()
			var once sync.Once
			stop = func() {
				once.Do(func() {
					cancel()
					select {
					case <-done:
					case <-time.After(10 * time.Second):
						t.Error("status server did not stop")
					}
				})
			}
			t.Cleanup(stop)
			return stop, "http://" + srv.Addr()
		}
		stop, base := serve("127.0.0.1:0")
		ctx := b.tab(t)
		r.imap.Deliver(t, "INBOX", testimap.Msg("Before the outage", 1))
		do(t, ctx, "open the page", chromedp.Navigate(base+"/"), badgeIs(inbox, "idle"), listed("Before the outage"),
			waitJS(`document.getElementById('conn').textContent === 'live'`))
		if eval[bool](t, ctx, `document.body.classList.contains('stale')`) {
			t.Fatal("the page is marked stale while mailtap answers")
		}

		stop()
		do(t, ctx, "the page notices", waitJS(`document.body.classList.contains('stale')`))
		do(t, ctx, "states unknown", badgeIs(inbox, "unknown"))
		if n := eval[int](t, ctx, `[...document.querySelectorAll('button[data-action]')].filter(b => !b.disabled).length`); n != 0 {
			t.Errorf("%d control buttons stay clickable while mailtap is gone", n)
		}
		lost := eval[string](t, ctx, `document.getElementById('lost').hidden ? '' : document.getElementById('lost').textContent`)
		if !strings.Contains(lost, "since") {
			t.Errorf("the page does not say since when mailtap is gone: %q", lost)
		}
		if c := eval[string](t, ctx, `document.getElementById('conn').textContent`); !strings.Contains(c, "since") {
			t.Errorf("connection indicator = %q, want it to say since when", c)
		}
		if last := eval[string](t, ctx, `document.querySelector('article[data-mailbox="test/INBOX"] dd:nth-of-type(4)').textContent`); strings.Contains(last, "ago") {
			t.Errorf("last capture still counts (%q) while mailtap is gone", last)
		}
		if op := eval[string](t, ctx, `getComputedStyle(document.querySelector('.card')).opacity`); op == "1" {
			t.Error("the cards are not greyed out")
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		saveScreenshot(t, "status-page-gone.png", png)

		_, _ = serve(strings.TrimPrefix(base, "http://"))
		do(t, ctx, "restored", waitJS(`!document.body.classList.contains('stale')`), badgeIs(inbox, "idle"),
			waitJS(`document.getElementById('lost').hidden`),
			waitJS(`!document.querySelector('button[data-action="pause"][data-mailbox="test/INBOX"]').disabled`),
			waitJS(`!document.querySelector('header button[data-action="reconnect"]').disabled`))
		if last := eval[string](t, ctx, `document.querySelector('article[data-mailbox="test/INBOX"] dd:nth-of-type(4)').textContent`); !strings.Contains(last, "ago") {
			t.Errorf("last capture = %q after the restore, want it counting again", last)
		}
	})

	// The network path to mailtap goes dead without closing: no error, no
	// end of stream, just silence. The page must notice by the missing
	// pings, and come back when the path does.
	t.Run("stalled", func(t *testing.T) {
		const interval = time.Second // the page gives up after 2.5 of these
		r := startRig(t, withKeepalive(interval))
		p := startStallProxy(t, strings.TrimPrefix(r.base, "http://"))
		ctx := b.tab(t)
		do(t, ctx, "open the page", chromedp.Navigate(p.base()+"/"), badgeIs(inbox, "idle"),
			waitJS(`document.getElementById('conn').textContent === 'live'`))

		// Quiet but alive: pings keep the page live on its first stream,
		// for longer than the watchdog's 2.5 intervals.
		if !eventually(func() bool { return p.pings.Load() >= 4 }) {
			t.Fatalf("%d pings reached the page in 10s, want 4 at an interval of %s", p.pings.Load(), interval)
		}
		if eval[bool](t, ctx, `document.body.classList.contains('stale')`) || p.streams.Load() != 1 {
			t.Fatalf("a quiet stream with pings was taken for dead (stale %v, %d streams opened)",
				eval[bool](t, ctx, `document.body.classList.contains('stale')`), p.streams.Load())
		}

		p.stall()
		do(t, ctx, "the page notices the silence", waitJS(`document.body.classList.contains('stale')`), badgeIs(inbox, "unknown"))
		if n := eval[int](t, ctx, `[...document.querySelectorAll('button[data-action]')].filter(b => !b.disabled).length`); n != 0 {
			t.Errorf("%d control buttons stay clickable on a dead stream", n)
		}
		if lost := eval[string](t, ctx, `document.getElementById('lost').hidden ? '' : document.getElementById('lost').textContent`); !strings.Contains(lost, "since") {
			t.Errorf("the page does not say since when it heard nothing: %q", lost)
		}
		if c := eval[string](t, ctx, `document.querySelector('article[data-mailbox="test/INBOX"] dd:nth-of-type(6)').textContent`); strings.Contains(c, "ago") {
			t.Errorf("server contact still counts (%q) on a dead stream", c)
		}

		p.resume()
		do(t, ctx, "restored", waitJS(`!document.body.classList.contains('stale')`), badgeIs(inbox, "idle"),
			waitJS(`document.getElementById('lost').hidden`),
			waitJS(`document.getElementById('conn').textContent === 'live'`),
			waitJS(`!document.querySelector('button[data-action="pause"][data-mailbox="test/INBOX"]').disabled`))
	})

	// A warning from the server cross-check, the last server contact, and
	// the other connected states.
	t.Run("warning and contact", func(t *testing.T) {
		var d *dressed
		r := startRig(t, withKeepalive(500*time.Millisecond),
			withWatcher(func(m *watcher.Manager) Watcher { d = &dressed{Manager: m}; return d }))
		contact := time.Now().Add(-5 * time.Second).UTC()
		d.set(func(d *dressed) { d.contact = contact })
		ctx := b.tab(t)
		do(t, ctx, "open the page", chromedp.Navigate(r.base+"/"), badgeIs(inbox, "idle"))
		const card = `document.querySelector('article[data-mailbox="test/INBOX"] `
		if !eval[bool](t, ctx, card+`.warn').hidden`) {
			t.Error("a warning line shows without a warning")
		}

		// Contact: relative, counting with the tick, absolute UTC in the title.
		secs := `parseInt(` + card + `dd:nth-of-type(6)').textContent)`
		do(t, ctx, "server contact shown", waitJS(card+`dd:nth-of-type(6)').textContent.match(/^\d+s ago$/)`))
		first := eval[int](t, ctx, secs)
		if first < 4 || first > 30 {
			t.Errorf("server contact 5 s ago shown as %q", eval[string](t, ctx, card+`dd:nth-of-type(6)').textContent`))
		}
		do(t, ctx, "server contact counts on", waitJS(fmt.Sprintf(`%s > %d`, secs, first)))
		want := contact.Format("2006-01-02 15:04:05") + " UTC"
		if title := eval[string](t, ctx, card+`dd:nth-of-type(6)').title`); title != want {
			t.Errorf("server contact title = %q, want %q", title, want)
		}
		if dt := eval[string](t, ctx, card+`dt:nth-of-type(6)').textContent`); dt != "Server contact" {
			t.Errorf("sixth row is labelled %q", dt)
		}

		// A warning set without any event reaches the page with the next
		// ping, visibly.
		const warning = "the catch-up query UID FETCH 6:* found no message, but the server's UIDNEXT is 9"
		warnedAt := time.Now().UTC()
		d.set(func(d *dressed) { d.warning, d.warningAt = warning, warnedAt })
		do(t, ctx, "warning shown", waitJS(card+`.warn').textContent.includes("UIDNEXT is 9")`))
		if !eval[bool](t, ctx, `(() => { const w = `+card+`.warn'); return !w.hidden && w.offsetHeight > 0 && getComputedStyle(w).display !== 'none'; })()`) {
			t.Error("the warning line is not visible")
		}
		if title := eval[string](t, ctx, card+`.warn').title`); !strings.Contains(title, warnedAt.Format("2006-01-02 15:04")) || !strings.HasSuffix(title, "UTC") {
			t.Errorf("warning title = %q, want when it was seen, in UTC", title)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		saveScreenshot(t, "status-page-warning.png", png)

		// notify and polling are connected, watching states: shown like
		// idle, by name, with what they mean in the tooltip.
		idleColor := eval[string](t, ctx, `getComputedStyle(`+card+`.badge')).color`)
		for _, st := range []watcher.State{watcher.StateNotify, watcher.StatePolling} {
			d.set(func(d *dressed) { d.state = st })
			do(t, ctx, "reload as "+string(st), chromedp.Reload(), badgeIs(inbox, string(st)))
			if c := eval[string](t, ctx, `getComputedStyle(`+card+`.badge')).color`); c != idleColor {
				t.Errorf("%s badge colour %s, idle's is %s", st, c, idleColor)
			}
			if title := eval[string](t, ctx, card+`.badge').title`); !strings.Contains(title, "connected and watching") {
				t.Errorf("%s badge title = %q", st, title)
			}
			if !eval[bool](t, ctx, card+`.err').hidden`) {
				t.Errorf("%s shows an error line", st)
			}
		}
	})

	b.checkConsole(t)
}

// dressed is the manager with parts of its status replaced, for states
// and warnings the in-memory server cannot provoke.
type dressed struct {
	*watcher.Manager
	mu        sync.Mutex
	state     watcher.State // "": the real one
	contact   time.Time
	warning   string
	warningAt time.Time
}

func (d *dressed) set(f func(*dressed)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(d)
}

func (d *dressed) Status() []watcher.MailboxStatus {
	sts := d.Manager.Status()
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range sts {
		if d.state != "" {
			sts[i].State = d.state
		}
		if !d.contact.IsZero() {
			sts[i].LastServerContact = d.contact
		}
		if d.warning != "" {
			sts[i].Warning, sts[i].WarningAt = d.warning, d.warningAt
		}
	}
	return sts
}
