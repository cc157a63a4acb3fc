package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailtap/internal/testimap"
)

// TestAuth_wrongPasswordSlowRetryNoLeak: with a wrong password mailtap
// reports auth_failed, retries at most a few times a minute (never a tight
// loop that gets an account locked), and the password appears nowhere: not
// in any log line, not in the status API, not in the metrics, not in the
// output of `mailtap check`. One account takes its password from the
// config file, the other from the environment.
func TestAuth_wrongPasswordSlowRetryNoLeak(t *testing.T) {
	binary(t)
	t.Parallel()
	const (
		inlineWrong = "Wr0ng-inline-Secret-e2e!"
		envWrong    = "Wr0ng-env-Secret-e2e?"
		envVar      = "MAILTAP_E2E_WRONG_PASSWORD"
	)
	secrets := []string{inlineWrong, envWrong}
	inlineSrv := testimap.StartMem(t, testimap.WithCredentials("user", "the-right-one"))
	envSrv := testimap.StartMem(t, testimap.WithCredentials("user", "the-right-one"))

	out := filepath.Join(t.TempDir(), "out")
	cfg := baseConfig(inlineSrv, out)
	cfg.Accounts[0].Name, cfg.Accounts[0].Password = "inline", inlineWrong
	envAcct := cfg.Accounts[0]
	envAcct.Name, envAcct.Port, envAcct.Password, envAcct.PasswordEnv = "env", envSrv.Port(), "", envVar
	cfg.Accounts = append(cfg.Accounts, envAcct)
	path := cfg.Write(t)
	env := []string{envVar + "=" + envWrong}

	start := time.Now()
	p := startMailtap(t, runOpts{env: env, args: []string{"--headless", "--log-format", "json", "--log-level", "debug", "-c", path, "--http", "127.0.0.1:0"}})
	url := p.waitLog(0, 20*time.Second, "the status page address", msgIs("status page")).str("url")
	waitAuthFailed(p, "inline", "env")
	st, body := authStatus(t, url)
	if len(st.Mailboxes) != 2 {
		t.Fatalf("/api/status lists %d mailboxes, want 2: %s", len(st.Mailboxes), body)
	}
	for _, mb := range st.Mailboxes {
		if mb.State != "auth_failed" || !strings.Contains(strings.ToLower(mb.Error), "auth") {
			t.Errorf("%s: state %q error %q, want auth_failed and an error that says so", mb.ID, mb.State, mb.Error)
		}
		if mb.NextRetry == nil || time.Until(*mb.NextRetry) < 15*time.Second {
			t.Errorf("%s: next retry %v, want a slow retry (≥ 15 s away)", mb.ID, mb.NextRetry)
		}
	}
	leaks := []string{body, httpGet(t, url+"metrics")}

	check := startMailtap(t, runOpts{env: env, args: []string{"check", "--log-format", "json", "-c", path}})
	if code := check.exitCode(20 * time.Second); code != 1 {
		t.Errorf("check with a wrong password exited %d, want 1", code)
	}
	if said := check.output(); !strings.Contains(strings.ToLower(said), "auth") {
		t.Errorf("check does not say authentication failed:\n%s", said)
	}
	leaks = append(leaks, check.output(), check.logs.text())

	// Watch a full minute of retrying.
	time.Sleep(time.Until(start.Add(61 * time.Second)))
	for _, srv := range []struct {
		name string
		m    *testimap.Mem
	}{{"inline", inlineSrv}, {"env", envSrv}} {
		// check made one more attempt against each.
		n := srv.m.AuthAttempts() - 1
		t.Logf("%s: %d login attempts by the watcher in 61 s", srv.name, n)
		if n < 1 || n > 3 {
			t.Errorf("%s: %d login attempts in a minute, want 1 to 3", srv.name, n)
		}
	}
	if !p.running() {
		t.Fatalf("mailtap gave up: %v", p.err)
	}
	leaks = append(leaks, httpGet(t, url+"api/status"))
	p.stop()
	assertNoPanic(t, p)
	leaks = append(leaks, p.logs.text())

	for _, text := range leaks {
		for _, s := range secrets {
			if i := strings.Index(text, s); i >= 0 {
				t.Errorf("the password %q leaked: …%s…", s, text[max(0, i-200):min(len(text), i+len(s)+50)])
			}
		}
	}
	if n := countRecords(out); n != 0 {
		t.Errorf("%d records without a login", n)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v\n%s", url, resp.Status, err, b)
	}
	return string(b)
}

// TestAuth_secretSourceFailsAtLogin: a password_command that fails and a
// password_env whose variable is unset are not "invalid config" (the config
// is valid; the source failed when it was read). mailtap starts, each such
// account is auth_failed with the reason (the command's stderr, capped) and
// a slow retry, and once the source works again the account logs in.
func TestAuth_secretSourceFailsAtLogin(t *testing.T) {
	binary(t)
	t.Parallel()
	const unset = "MAILTAP_E2E_NEVER_SET_PASSWORD"
	srv := testimap.StartMem(t)
	envSrv := testimap.StartMem(t)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	out := filepath.Join(dir, "out")
	cfg := baseConfig(srv, out)
	// The helper fails until pwFile exists, and says why on a stderr line
	// far longer than any status should carry.
	cfg.Accounts[0].Name, cfg.Accounts[0].Password = "cmd", ""
	cfg.Accounts[0].PasswordCommand = []string{"/bin/sh", "-c",
		`if [ -f "$1" ]; then cat "$1"; else printf 'pass: keyring is locked, run pass unlock%01000d\n' 0 >&2; exit 3; fi`,
		"helper", pwFile}
	envAcct := baseConfig(envSrv, out).Accounts[0]
	envAcct.Name, envAcct.Password, envAcct.PasswordEnv = "env", "", unset
	cfg.Accounts = append(cfg.Accounts, envAcct)
	path := cfg.Write(t)

	p := startMailtap(t, runOpts{args: []string{"--headless", "--log-format", "json", "-c", path, "--http", "127.0.0.1:0"}})
	url := p.waitLog(0, 20*time.Second, "the status page address", msgIs("status page")).str("url")
	waitAuthFailed(p, "cmd", "env")
	st, _ := authStatus(t, url)
	want := map[string]string{"cmd/INBOX": "keyring is locked, run pass unlock", "env/INBOX": unset + `" is not set`}
	for _, mb := range st.Mailboxes {
		if mb.State != "auth_failed" || !strings.Contains(mb.Error, want[mb.ID]) {
			t.Errorf("%s: state %q error %q, want auth_failed saying %q", mb.ID, mb.State, mb.Error, want[mb.ID])
		}
		if len(mb.Error) > 400 {
			t.Errorf("%s: the error is %d bytes long; the command's stderr should be capped", mb.ID, len(mb.Error))
		}
		if mb.NextRetry == nil || time.Until(*mb.NextRetry) < 15*time.Second {
			t.Errorf("%s: next retry %v, want the slow auth retry (≥ 15 s away)", mb.ID, mb.NextRetry)
		}
	}

	check := startMailtap(t, runOpts{args: []string{"check", "-c", path}})
	if code := check.exitCode(20 * time.Second); code != 1 {
		t.Errorf("check with failing password sources exited %d, want 1", code)
	}
	if said := check.output(); !strings.Contains(said, "keyring is locked") || !strings.Contains(said, unset) {
		t.Errorf("check does not say why each password could not be read:\n%s", said)
	}

	// The helper works again: a reconnect (instead of the minute of auth
	// backoff) logs in.
	if err := os.WriteFile(pwFile, []byte(srv.Password()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mark := p.logs.Len()
	resp, err := http.Post(url+"api/reconnect?mailbox=cmd/INBOX", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	p.waitLog(mark, 20*time.Second, "cmd state=idle", func(l logLine) bool {
		return stateIs("idle")(l) && l.str("account") == "cmd"
	})
	if !p.running() {
		t.Fatalf("mailtap exited: %v", p.err)
	}
	p.stop()
	assertNoPanic(t, p)
}

// waitAuthFailed waits for each account's auth_failed state in the log.
func waitAuthFailed(p *proc, accounts ...string) {
	for _, acct := range accounts {
		p.waitLog(0, 20*time.Second, acct+" state=auth_failed", func(l logLine) bool {
			return stateIs("auth_failed")(l) && l.str("account") == acct
		})
	}
}

// authMailbox is what the auth tests read of /api/status.
type authMailbox struct {
	ID, State, Error string
	NextRetry        *time.Time `json:"next_retry"`
}

// authStatus reads /api/status under url; body is kept for failures.
func authStatus(t *testing.T, url string) (st struct{ Mailboxes []authMailbox }, body string) {
	t.Helper()
	body = httpGet(t, url+"api/status")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/api/status: %v\n%s", err, body)
	}
	return st, body
}
