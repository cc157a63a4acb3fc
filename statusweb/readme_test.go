package statusweb

import (
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// readmeMetrics reads the README's metrics table: name → type.
func readmeMetrics(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(mailtap_[a-z_]+)` \\| (counter|gauge|histogram) \\|")
	out := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = m[2]
	}
	if len(out) == 0 {
		t.Fatal("README.md has no metrics table")
	}
	return out
}

// The README's metrics table and /metrics agree, and every series exists
// for the mailbox before anything has happened to it: no reconnect, no
// auth failure, yet both counters are there at 0.
func TestREADME_metricsMatchEndpoint(t *testing.T) {
	r := startRig(t)
	resp := r.do("GET", "/metrics", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	doc := readmeMetrics(t)
	types := map[dto.MetricType]string{dto.MetricType_COUNTER: "counter", dto.MetricType_GAUGE: "gauge", dto.MetricType_HISTOGRAM: "histogram"}
	for _, name := range slices.Sorted(maps.Keys(doc)) {
		f, ok := fams[name]
		if !ok {
			t.Errorf("README documents %s; /metrics of a fresh mailtap does not have it", name)
			continue
		}
		if got := types[f.GetType()]; got != doc[name] {
			t.Errorf("%s is a %s; README says %s", name, got, doc[name])
		}
		found := false
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			found = found || (l["account"] == "test" && l["mailbox"] == "INBOX")
		}
		if !found {
			t.Errorf("%s has no series for test/INBOX", name)
		}
	}
	for name := range fams {
		if strings.HasPrefix(name, "mailtap_") && doc[name] == "" {
			t.Errorf("/metrics has %s; README's metrics table does not list it", name)
		}
	}
	if v := counter(t, r, "mailtap_auth_failures_total"); v != 0 {
		t.Errorf("mailtap_auth_failures_total = %v, want 0", v)
	}
}
