package queue

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// backlogDesc describes the messages waiting in each stream: alerts not yet
// stored (a backlog here while the database is down is by design) and
// incident changes not yet sent to Slack.
var backlogDesc = prometheus.NewDesc("oncall_queue_messages",
	"Messages waiting in a JetStream stream (ALERTS: accepted alerts not yet stored; NOTIFY: changes not yet sent).",
	[]string{"stream"}, nil)

// Collector reports the streams' backlogs when Prometheus scrapes.
func (q *Queue) Collector() prometheus.Collector { return backlogCollector{q} }

type backlogCollector struct{ q *Queue }

func (c backlogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- backlogDesc }

func (c backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, name := range []string{streamAlerts, streamNotify} {
		s, err := c.q.js.Stream(ctx, name)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(backlogDesc, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(s.CachedInfo().State.Msgs), name)
	}
}
