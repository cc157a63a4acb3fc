package bench

import (
	"os"
	"testing"
	"time"

	"mailtap/internal/testimap"
)

func TestZZServe(t *testing.T) {
	if os.Getenv("ZZ_SERVE") == "" {
		t.Skip()
	}
	srv := testimap.StartDovecot(t, testimap.DovecotOptions{})
	srv.DeliverMany(t, "INBOX", Corpus(DefaultSeed, 10000))
	rawFetch(t, srv, 10000)
	writeConfig(t, "/tmp/zz/config.json", srv, "/tmp/zz/out", "metadata")
	os.WriteFile("/tmp/zz/ready", []byte("ok"), 0o644)
	time.Sleep(40 * time.Minute)
}
