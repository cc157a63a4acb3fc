package watcher

import (
	"mailtap/record"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus series of design.md §6, all labelled account
// and mailbox. A nil *Metrics records nothing.
type Metrics struct {
	capturedTotal *prometheus.CounterVec
	bytesTotal    *prometheus.CounterVec
	parseErrors   *prometheus.CounterVec
	reconnects    *prometheus.CounterVec
	authFailures  *prometheus.CounterVec
	state         *prometheus.GaugeVec
	lastCapture   *prometheus.GaugeVec
	latency       *prometheus.HistogramVec
	checkpointLag *prometheus.GaugeVec
}

// NewMetrics creates the series and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	l := []string{"account", "mailbox"}
	m := &Metrics{
		capturedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailtap_messages_captured_total",
			Help: "Messages written as durable JSON records."}, l),
		bytesTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailtap_bytes_written_total",
			Help: "Bytes of records and raw copies written."}, l),
		parseErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailtap_parse_errors_total",
			Help: "Malformed-content findings recorded in parse_errors."}, l),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailtap_reconnects_total",
			Help: "Reconnect attempts after a lost connection or on request."}, l),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mailtap_auth_failures_total",
			Help: "Logins refused by the server, or whose password source failed."}, l),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mailtap_mailbox_state",
			Help: "1 for the state each mailbox is in, 0 for the others."}, append(l, "state")),
		lastCapture: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mailtap_last_capture_timestamp_seconds",
			Help: "Unix time of the last durable capture."}, l),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mailtap_capture_latency_seconds",
			Help:    "From the server's new-mail notification to the durable record.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, l),
		checkpointLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mailtap_checkpoint_lag_messages",
			Help: "Messages on the server above the checkpoint, at the last check."}, l),
	}
	reg.MustRegister(m.capturedTotal, m.bytesTotal, m.parseErrors, m.reconnects, m.authFailures,
		m.state, m.lastCapture, m.latency, m.checkpointLag)
	return m
}

// init creates every series of one mailbox at its zero value, so that a
// scrape before the first event already has them: rate() and increase()
// need a sample before the first reconnect or auth failure, and an alert
// on a missing series cannot tell "none yet" from "not exported". The last
// capture starts at 0 ("none this run").
func (m *Metrics) init(id MailboxID) {
	if m == nil {
		return
	}
	a, mb := id.Account, id.Mailbox
	for _, c := range []*prometheus.CounterVec{m.capturedTotal, m.bytesTotal, m.parseErrors, m.reconnects, m.authFailures} {
		c.WithLabelValues(a, mb)
	}
	m.lastCapture.WithLabelValues(a, mb)
	m.latency.WithLabelValues(a, mb)
	m.checkpointLag.WithLabelValues(a, mb)
	m.setState(id, StateStopped)
}

func (m *Metrics) setState(id MailboxID, st State) {
	if m == nil {
		return
	}
	for _, s := range AllStates {
		v := 0.0
		if s == st {
			v = 1
		}
		m.state.WithLabelValues(id.Account, id.Mailbox, string(s)).Set(v)
	}
}

func (m *Metrics) captured(id MailboxID, sum record.Summary, notified, now time.Time) {
	if m == nil {
		return
	}
	m.capturedTotal.WithLabelValues(id.Account, id.Mailbox).Inc()
	m.parseErrors.WithLabelValues(id.Account, id.Mailbox).Add(float64(sum.ParseErrors))
	m.lastCapture.WithLabelValues(id.Account, id.Mailbox).Set(float64(now.UnixNano()) / 1e9)
	if !notified.IsZero() {
		m.latency.WithLabelValues(id.Account, id.Mailbox).Observe(now.Sub(notified).Seconds())
	}
}

func (m *Metrics) bytes(id MailboxID, n int64) {
	if m == nil || n == 0 {
		return
	}
	m.bytesTotal.WithLabelValues(id.Account, id.Mailbox).Add(float64(n))
}

func (m *Metrics) reconnect(id MailboxID) {
	if m != nil {
		m.reconnects.WithLabelValues(id.Account, id.Mailbox).Inc()
	}
}

func (m *Metrics) authFailure(id MailboxID) {
	if m != nil {
		m.authFailures.WithLabelValues(id.Account, id.Mailbox).Inc()
	}
}

func (m *Metrics) lag(id MailboxID, n int) {
	if m != nil {
		m.checkpointLag.WithLabelValues(id.Account, id.Mailbox).Set(float64(n))
	}
}
