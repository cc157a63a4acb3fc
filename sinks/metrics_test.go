package sinks

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"mailtap/config"
)

// series is one sample of a gathered family: its labels and value (a
// histogram's value is its sample count).
type series struct {
	labels map[string]string
	value  float64
}

func gather(t *testing.T, reg *prometheus.Registry) map[string][]series {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]series{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			s := series{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s.value = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s.value = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				s.value = float64(m.GetHistogram().GetSampleCount())
			}
			out[f.GetName()] = append(out[f.GetName()], s)
		}
	}
	return out
}

// value finds the series of name with exactly labels; ok is false when
// there is none.
func value(got map[string][]series, name string, labels map[string]string) (float64, bool) {
	for _, s := range got[name] {
		if len(s.labels) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if s.labels[k] != v {
				match = false
			}
		}
		if match {
			return s.value, true
		}
	}
	return 0, false
}

// Every series of every configured sink exists at zero before its first
// event, so increase() sees the first one.
func TestMetrics_seriesAtZeroFromStart(t *testing.T) {
	e := newEnv(t)
	e.commit("INBOX", 2)
	reg := prometheus.NewRegistry()
	a, b := webhookCfg("http://127.0.0.1:1/"), webhookCfg("http://127.0.0.1:1/")
	b.Name = "other"
	o := e.opts()
	o.Metrics = NewMetrics(reg)
	if _, err := New([]config.Sink{a, b}, e.out, e.store, o); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	for _, name := range []string{"hook", "other"} {
		for _, r := range []string{"delivered", "retry", "dead"} {
			if v, ok := value(got, "mailtap_sink_deliveries_total", map[string]string{"sink": name, "result": r}); !ok || v != 0 {
				t.Errorf("mailtap_sink_deliveries_total{sink=%q,result=%q} = %v, present %v", name, r, v, ok)
			}
		}
		for _, m := range []string{"mailtap_sink_dead_letters_total", "mailtap_sink_delivery_seconds", "mailtap_sink_backlog_records"} {
			if v, ok := value(got, m, map[string]string{"sink": name}); !ok || v != 0 {
				t.Errorf("%s{sink=%q} = %v, present %v", m, name, v, ok)
			}
		}
	}
}

// The series count what the sink did, with the labels the README names.
func TestMetrics_countDeliveries(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	seen := map[string]int{}
	rc := newReceiver(t, func(_ int, r *http.Request) (int, http.Header) {
		id := r.Header.Get("Idempotency-Key")
		mu.Lock()
		seen[id]++
		n := seen[id]
		mu.Unlock()
		switch {
		case id == "acct/INBOX/1/1" && n == 1:
			return 503, nil
		case id == "acct/INBOX/1/2":
			return 400, nil
		}
		return 200, nil
	})
	reg := prometheus.NewRegistry()
	o := e.opts()
	o.Metrics = NewMetrics(reg)
	m, err := New([]config.Sink{webhookCfg(rc.srv.URL)}, e.out, e.store, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	e.commit("INBOX", 3)
	waitFor(t, "2 deliveries, 1 dead letter, no backlog", func() bool {
		st := statusOf(m)
		return st.Delivered == 2 && st.DeadLetters == 1 && st.Backlog == 0
	})
	cancel()
	<-done
	got := gather(t, reg)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"mailtap_sink_deliveries_total", map[string]string{"sink": "hook", "result": "delivered"}, 2},
		{"mailtap_sink_deliveries_total", map[string]string{"sink": "hook", "result": "retry"}, 1},
		{"mailtap_sink_deliveries_total", map[string]string{"sink": "hook", "result": "dead"}, 1},
		{"mailtap_sink_dead_letters_total", map[string]string{"sink": "hook"}, 1},
		{"mailtap_sink_delivery_seconds", map[string]string{"sink": "hook"}, 4}, // one per attempt
		{"mailtap_sink_backlog_records", map[string]string{"sink": "hook"}, 0},
	} {
		if v, ok := value(got, c.name, c.labels); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	var names []string
	for n := range got {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"mailtap_sink_backlog_records", "mailtap_sink_dead_letters_total", "mailtap_sink_deliveries_total", "mailtap_sink_delivery_seconds"}; !slices.Equal(names, want) {
		t.Errorf("families %v, want %v", names, want)
	}
}
