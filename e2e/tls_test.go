package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailtap/internal/testimap"
)

// TestTLS_selfSignedNeedsCAFile: a server with a self-signed certificate is
// refused by default (implicit TLS and STARTTLS), with an error that says
// to set ca_file, in `mailtap check` and in the headless log; with ca_file
// it is trusted and mail is captured.
func TestTLS_selfSignedNeedsCAFile(t *testing.T) {
	binary(t)
	t.Parallel()
	dc := testimap.StartDovecot(t, testimap.DovecotOptions{TLS: true})
	out := filepath.Join(t.TempDir(), "out")

	modes := []struct {
		tls  string
		port int
	}{{"implicit", dc.TLSPort()}, {"starttls", dc.Port()}}
	for _, m := range modes {
		cfg := baseConfig(dc, out)
		cfg.Accounts[0].TLS, cfg.Accounts[0].Port = m.tls, m.port
		path := cfg.Write(t)

		check := startMailtap(t, runOpts{args: []string{"check", "-c", path}})
		if code := check.exitCode(20 * time.Second); code != 1 {
			t.Errorf("check (%s, untrusted certificate) exited %d, want 1", m.tls, code)
		}
		said := check.output() + check.logs.text()
		if !strings.Contains(said, "ca_file") || !strings.Contains(said, "certificate") {
			t.Errorf("check (%s) does not say how to trust the certificate:\n%s", m.tls, said)
		}

		cfg.Accounts[0].CAFile = dc.CAFile()
		check = startMailtap(t, runOpts{args: []string{"check", "-c", cfg.Write(t)}})
		if code := check.exitCode(20 * time.Second); code != 0 {
			t.Errorf("check (%s) with ca_file exited %d, want 0:\n%s%s", m.tls, code, check.output(), check.logs.text())
		}
	}

	// Headless: the refusal is a reconnecting state whose error names
	// ca_file, and nothing is captured.
	cfg := baseConfig(dc, out)
	cfg.Accounts[0].TLS, cfg.Accounts[0].Port = "implicit", dc.TLSPort()
	p := headless(t, cfg.Write(t))
	p.waitLog(0, 20*time.Second, "state=reconnecting with an error naming ca_file", func(l logLine) bool {
		return stateIs("reconnecting")(l) && strings.Contains(l.str("err"), "ca_file")
	})
	uid := dc.Deliver(t, "INBOX", testimap.Msg("over TLS", 1))
	p.stop()
	if n := countRecords(out); n != 0 {
		t.Errorf("%d records written through an untrusted connection", n)
	}

	cfg.Accounts[0].CAFile = dc.CAFile()
	p = headless(t, cfg.Write(t))
	p.waitLog(0, 20*time.Second, fmt.Sprintf("captured uid=%d over trusted TLS", uid), capturedUID(uid))
	p.stop()
	if recs := readRecords(t, out); len(recs) != 1 || recs[0].Subject != "over TLS" {
		t.Errorf("records after TLS with ca_file: %+v", recs)
	}
}
