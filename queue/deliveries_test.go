package queue

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/oncallbot/oncall"
)

// idCollector records the ids a consumer was handed.
type idCollector struct {
	mu  sync.Mutex
	ids []int64
}

func (c *idCollector) handle(_ context.Context, id int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, id)
	return nil
}

func (c *idCollector) got() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(slices.Values(c.ids))
}

// Deliveries and incident changes share the NOTIFY stream; each consumer
// gets only its own, and a delivery published twice is stored once.
func TestDeliveriesAndIncidentChangesKeepApart(t *testing.T) {
	q := openQueue(t, t.TempDir(), 0)
	ds := []oncall.Delivery{{ID: 11, Key: "7:0:0:alice:slack"}, {ID: 12, Key: "7:0:0:alice:sms"}}
	if err := q.PublishDeliveries(t.Context(), ds); err != nil {
		t.Fatalf("PublishDeliveries: %v", err)
	}
	if err := q.PublishDeliveries(t.Context(), ds[:1]); err != nil { // a claim published again
		t.Fatalf("PublishDeliveries again: %v", err)
	}
	if err := q.PublishIncidentChanged(t.Context(), 7); err != nil {
		t.Fatalf("PublishIncidentChanged: %v", err)
	}
	if n := streamMsgs(t, q, streamNotify); n != 3 {
		t.Fatalf("NOTIFY holds %d messages, want 3 (two deliveries, one change)", n)
	}

	deliveries, changes := &idCollector{}, &idCollector{}
	consuming(t, func(ctx context.Context) error { return q.ConsumeDeliveries(ctx, deliveries.handle) })
	consuming(t, func(ctx context.Context) error { return q.ConsumeIncidentChanges(ctx, changes.handle) })
	waitDrained(t, q, streamNotify)
	waitFor(t, "both consumers handled theirs", func() bool {
		return len(deliveries.got()) == 2 && len(changes.got()) == 1
	})
	if got := deliveries.got(); !slices.Equal(got, []int64{11, 12}) {
		t.Errorf("pager got %v, want [11 12]", got)
	}
	if got := changes.got(); !slices.Equal(got, []int64{7}) {
		t.Errorf("notifier got %v, want [7]", got)
	}
}

// A delivery handler's RetryDelay decides when the message comes back.
func TestDeliveryRetriedAfterItsDelay(t *testing.T) {
	q := openQueue(t, t.TempDir(), 0)
	if err := q.PublishDeliveries(t.Context(), []oncall.Delivery{{ID: 5, Key: "k"}}); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		calls []time.Time
	)
	consuming(t, func(ctx context.Context) error {
		return q.ConsumeDeliveries(ctx, func(context.Context, int64) error {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, time.Now())
			if len(calls) == 1 {
				return rateLimited{after: 300 * time.Millisecond}
			}
			return nil
		})
	})
	waitDrained(t, q, streamNotify)
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 {
		t.Fatalf("handler called %d times, want 2", len(calls))
	}
	// A lower bound only: the server must not redeliver before the delay.
	if gap := calls[1].Sub(calls[0]); gap < 300*time.Millisecond {
		t.Errorf("redelivered after %s, before the 300ms the handler asked for", gap)
	}
}

// A "notifier" consumer made by an earlier version took every subject of
// NOTIFY; Open narrows it, or the pager could not be created next to it.
func TestOpenNarrowsAnEarlierNotifier(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, 0)
	_, err := q.js.CreateOrUpdateConsumer(t.Context(), streamNotify, jetstream.ConsumerConfig{
		Durable: notifierSpec.durable, AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatalf("create an unfiltered notifier: %v", err)
	}
	q.Close()

	q = openQueue(t, dir, 0)
	c, err := q.js.Consumer(t.Context(), streamNotify, notifierSpec.durable)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CachedInfo().Config.FilterSubject; got != notifierSpec.filter {
		t.Errorf("notifier filter after Open = %q, want %q", got, notifierSpec.filter)
	}
	deliveries := &idCollector{}
	consuming(t, func(ctx context.Context) error { return q.ConsumeDeliveries(ctx, deliveries.handle) })
	if err := q.PublishDeliveries(t.Context(), []oncall.Delivery{{ID: 3, Key: "k3"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pager consumes next to the narrowed notifier", func() bool {
		return slices.Equal(deliveries.got(), []int64{3})
	})
}
