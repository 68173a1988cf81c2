package integrations

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests *prometheus.CounterVec   // kind, code
	alerts   *prometheus.CounterVec   // integration
	duration *prometheus.HistogramVec // kind
	limited  *prometheus.CounterVec   // integration
}

// newMetrics creates the ingest metrics and registers them on reg unless it
// is nil. Collectors already registered there (by an earlier Handler) are
// reused.
func newMetrics(log *slog.Logger, reg prometheus.Registerer) metrics {
	m := metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oncall_ingest_requests_total",
			Help: "Requests to the ingest endpoints (/integrations, /v2/enqueue, /v2/alerts) by kind and HTTP status code.",
		}, []string{"kind", "code"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oncall_ingest_alerts_total",
			Help: "Alerts accepted and queued, by integration.",
		}, []string{"integration"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "oncall_ingest_duration_seconds",
			Help:    "Time to answer an ingest request, queueing included, by kind.",
			Buckets: prometheus.DefBuckets,
		}, []string{"kind"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oncall_ingest_rate_limited_total",
			Help: "Requests refused with 429 because their integration was over its rate limit, by integration.",
		}, []string{"integration"}),
	}
	if reg == nil {
		return m
	}
	m.requests = register(log, reg, m.requests)
	m.alerts = register(log, reg, m.alerts)
	m.duration = register(log, reg, m.duration)
	m.limited = register(log, reg, m.limited)
	return m
}

func register[C prometheus.Collector](log *slog.Logger, reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	log.Warn("register ingest metric", "err", err)
	return c
}
