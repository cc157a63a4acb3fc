package testimap

import (
	"testing"
)

// recordTB records Skipf/Fatalf instead of ending the test.
type recordTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordTB) Skipf(format string, args ...any)  { r.skipped = format }
func (r *recordTB) Fatalf(format string, args ...any) { r.failed = format }

func TestUnavailable_skipsUnlessRequired(t *testing.T) {
	for _, tt := range []struct {
		env      string
		wantSkip bool
	}{{"", true}, {"0", true}, {"1", false}, {"yes", false}} {
		t.Setenv(RequireDovecotEnv, tt.env)
		r := &recordTB{TB: t}
		unavailable(r, "dovecot not installed")
		if skipped := r.skipped != ""; skipped != tt.wantSkip || (r.failed != "") == tt.wantSkip {
			t.Errorf("%s=%q: skipped %q, failed %q", RequireDovecotEnv, tt.env, r.skipped, r.failed)
		}
	}
}

func TestTraversableTempBase(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // 0700: nobody cannot enter
	if got := traversableTempBase(); got != "/tmp" {
		t.Fatalf("traversableTempBase with a private TMPDIR = %q, want /tmp", got)
	}
	t.Setenv("TMPDIR", "/tmp")
	if got := traversableTempBase(); got != "/tmp" {
		t.Fatalf("traversableTempBase = %q", got)
	}
}
