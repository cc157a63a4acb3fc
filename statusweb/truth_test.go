package statusweb

import (
	"io"
	"net/http"
	"regexp"
	"testing"

	"mailtap/internal/testimap"
)

// Every time in the API has the records' one format: RFC 3339, three
// fractional digits, UTC.
func TestAPI_timesInOneFormat(t *testing.T) {
	r := startRig(t)
	r.imap.Deliver(t, "INBOX", testimap.Msg("timed", 1))
	r.waitCaptured("timed")
	resp := r.do("GET", "/api/status", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/status = %d", resp.StatusCode)
	}
	body, _ := io.ReadAll(resp.Body)
	anyTime := regexp.MustCompile(`"[0-9]{4}-[0-9]{2}-[0-9]{2}T[^"]*"`)
	fixed := regexp.MustCompile(`^"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"$`)
	times := anyTime.FindAllString(string(body), -1)
	if len(times) < 5 { // started, now, since, last_capture, date, captured_at
		t.Fatalf("only %d times in /api/status:\n%s", len(times), body)
	}
	for _, tm := range times {
		if !fixed.MatchString(tm) {
			t.Errorf("time %s is not RFC 3339 with milliseconds in UTC", tm)
		}
	}
}
