package sinks

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the sinks' Prometheus series, all labelled sink.
type Metrics struct {
	deliveries *prometheus.CounterVec   // result: delivered, retry, dead
	dead       *prometheus.CounterVec   // dead letters written
	backlog    *prometheus.GaugeVec     // journal entries not yet passed
	seconds    *prometheus.HistogramVec // one attempt
}

// Results of mailtap_sink_deliveries_total.
const (
	resultDelivered = "delivered"
	resultRetry     = "retry"
	resultDead      = "dead"
)

// NewMetrics registers the series with reg (nil: not exported).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailtap_sink_deliveries_total",
			Help: "Delivery attempts by sink and result (delivered, retry, dead)."}, []string{"sink", "result"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailtap_sink_dead_letters_total",
			Help: "Records a sink gave up on and put in its dead-letter list."}, []string{"sink"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mailtap_sink_backlog_records",
			Help: "Journal entries a sink has not delivered yet."}, []string{"sink"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mailtap_sink_delivery_seconds",
			Help:    "Duration of one delivery attempt.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"sink"}),
	}
	if reg != nil {
		reg.MustRegister(m.deliveries, m.dead, m.backlog, m.seconds)
	}
	return m
}

// init creates every series of sink at zero (the backlog at backlog), so
// that a scrape before its first delivery already has them: increase()
// needs a sample before the first event, and an alert on a missing series
// cannot tell "none yet" from "not exported".
func (m *Metrics) init(sink string, backlog int64) {
	for _, r := range []string{resultDelivered, resultRetry, resultDead} {
		m.deliveries.WithLabelValues(sink, r)
	}
	m.dead.WithLabelValues(sink)
	m.seconds.WithLabelValues(sink)
	m.backlog.WithLabelValues(sink).Set(float64(backlog))
}
