package queue

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/oncallbot/oncall"
)

func TestBacklogMetric(t *testing.T) {
	q, err := Open(t.Context(), Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(q.Collector())
	for i, id := range []string{"a", "b", "c"} {
		b := oncall.AlertBatch{ID: id, Integration: "hook", Kind: "webhook", ReceivedAt: time.Now(), GroupKey: "g", Status: oncall.AlertFiring}
		if err := q.PublishAlert(context.Background(), b); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if err := q.PublishIncidentChanged(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&out, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{`oncall_queue_messages{stream="ALERTS"} 3`, `oncall_queue_messages{stream="NOTIFY"} 1`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, out.String())
		}
	}
}
