package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/oncallbot/oncall"
)

// waitLimit bounds every wait for something the server does; it is a guard
// against hanging, never an assertion about speed.
const waitLimit = 20 * time.Second

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// openQueue opens a queue on an embedded server with its files in dir.
func openQueue(t *testing.T, dir string, workers int) *Queue {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	q, err := Open(ctx, Options{DataDir: dir, Workers: workers, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(q.Close)
	return q
}

// consuming runs consume in the background; the returned function stops
// it and returns what it returned.
func consuming(t *testing.T, consume func(ctx context.Context) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- consume(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(waitLimit):
				err = errors.New("consumer did not return after its context was cancelled")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// waitFor polls cond until it holds, failing the test after waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// receive returns the next value from ch, failing the test after waitLimit.
func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatal("timed out waiting for a message")
		panic("unreachable")
	}
}

// streamMsgs is the number of messages stored on a stream.
func streamMsgs(t *testing.T, q *Queue, stream string) uint64 {
	t.Helper()
	s, err := q.js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	return info.State.Msgs
}

// waitDrained waits until every message on stream has been acked or
// terminated (a work-queue stream then holds nothing).
func waitDrained(t *testing.T, q *Queue, stream string) {
	t.Helper()
	waitFor(t, "stream "+stream+" to be empty", func() bool { return streamMsgs(t, q, stream) == 0 })
}

func batch(id string) oncall.AlertBatch {
	return oncall.AlertBatch{
		ID:          id,
		Integration: "prometheus",
		Kind:        "alertmanager",
		ReceivedAt:  time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC),
		GroupKey:    "{}:{alertname=\"HighLatency\"}",
		Status:      oncall.AlertFiring,
		Title:       "HighLatency " + id,
		Severity:    oncall.SeverityCritical,
		Labels:      map[string]string{"team": "payments"},
		Alerts: []oncall.Alert{{
			Fingerprint: "f1",
			Status:      oncall.AlertFiring,
			Title:       "HighLatency",
			Labels:      map[string]string{"alertname": "HighLatency"},
			StartsAt:    time.Date(2026, 3, 1, 12, 29, 0, 0, time.UTC),
		}},
		Raw: json.RawMessage(`{"status":"firing"}`),
	}
}

// collector is an alert handler that records what it was given.
type collector struct {
	mu    sync.Mutex
	calls map[string]int
	got   chan oncall.AlertBatch
}

func newCollector() *collector {
	return &collector{calls: map[string]int{}, got: make(chan oncall.AlertBatch, 100)}
}

func (c *collector) handle(_ context.Context, b oncall.AlertBatch) error {
	c.mu.Lock()
	c.calls[b.ID]++
	c.mu.Unlock()
	c.got <- b
	return nil
}

func (c *collector) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[id]
}

func TestPublishConsumeRoundTrip(t *testing.T) {
	q := openQueue(t, t.TempDir(), 0)
	want := batch("b1")
	if err := q.PublishAlert(t.Context(), want); err != nil {
		t.Fatalf("PublishAlert: %v", err)
	}

	// Stored under alerts.<kind> with the batch ID as message ID.
	s, err := q.js.Stream(t.Context(), streamAlerts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(t.Context(), "alerts.alertmanager")
	if err != nil {
		t.Fatalf("message on alerts.alertmanager: %v", err)
	}
	if got := raw.Header.Get(jetstream.MsgIDHeader); got != want.ID {
		t.Errorf("Nats-Msg-Id = %q, want %q", got, want.ID)
	}

	c := newCollector()
	stop := consuming(t, func(ctx context.Context) error { return q.ConsumeAlerts(ctx, c.handle) })
	got := receive(t, c.got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("consumed batch differs:\n got %+v\nwant %+v", got, want)
	}
	waitDrained(t, q, streamAlerts)
	if err := stop(); err != nil {
		t.Errorf("ConsumeAlerts returned %v, want nil", err)
	}
}

func TestPublishAlertSubjectOfUnsafeKind(t *testing.T) {
	q := openQueue(t, t.TempDir(), 0)
	b := batch("b1")
	b.Kind = "alert.manager>*"
	if err := q.PublishAlert(t.Context(), b); err != nil {
		t.Fatalf("PublishAlert: %v", err)
	}
	s, err := q.js.Stream(t.Context(), streamAlerts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLastMsgForSubject(t.Context(), "alerts.other"); err != nil {
		t.Errorf("message on alerts.other: %v", err)
	}
}

func TestPublishAlertWithoutID(t *testing.T) {
	q := openQueue(t, t.TempDir(), 0)
	if err := q.PublishAlert(t.Context(), batch("")); err == nil {
		t.Fatal("PublishAlert of a batch without id: got nil error")
	}
	if n := streamMsgs(t, q, streamAlerts); n != 0 {
		t.Errorf("stream holds %d messages, want 0", n)
	}
}

// TestPublishAlertData checks that a batch the caller encoded is stored as
// given, under its kind's subject with its id as message ID, that it
// deduplicates with PublishAlert by id, and that it needs an id.
func TestPublishAlertData(t *testing.T) {
	q := openQueue(t, t.TempDir(), 0)
	want := batch("pre-encoded")
	want.Kind = "webhook"
	data, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.PublishAlertData(t.Context(), "", want.Kind, data); err == nil {
		t.Error("PublishAlertData without id: got nil error")
	}
	if err := q.PublishAlertData(t.Context(), want.ID, want.Kind, data); err != nil {
		t.Fatalf("PublishAlertData: %v", err)
	}
	// The same id through PublishAlert is a duplicate, not a second message.
	if err := q.PublishAlert(t.Context(), want); err != nil {
		t.Fatalf("PublishAlert of the same id: %v", err)
	}
	if n := streamMsgs(t, q, streamAlerts); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}

	s, err := q.js.Stream(t.Context(), streamAlerts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(t.Context(), "alerts.webhook")
	if err != nil {
		t.Fatalf("message on alerts.webhook: %v", err)
	}
	if got := raw.Header.Get(jetstream.MsgIDHeader); got != want.ID {
		t.Errorf("Nats-Msg-Id = %q, want %q", got, want.ID)
	}
	if string(raw.Data) != string(data) {
		t.Errorf("stored %s, want the bytes given %s", raw.Data, data)
	}

	c := newCollector()
	consuming(t, func(ctx context.Context) error { return q.ConsumeAlerts(ctx, c.handle) })
	if got := receive(t, c.got); !reflect.DeepEqual(got, want) {
		t.Errorf("consumed batch differs:\n got %+v\nwant %+v", got, want)
	}
	waitDrained(t, q, streamAlerts)
}

func TestPublishSameIDStoredOnce(t *testing.T) {
	q := openQueue(t, t.TempDir(), 0)
	first := batch("dup")
	again := batch("dup")
	again.Title = "a retry of the same request"
	for _, b := range []oncall.AlertBatch{first, again, batch("other")} {
		if err := q.PublishAlert(t.Context(), b); err != nil {
			t.Fatalf("PublishAlert %s: %v", b.ID, err)
		}
	}
	if n := streamMsgs(t, q, streamAlerts); n != 2 {
		t.Fatalf("stream holds %d messages, want 2", n)
	}

	c := newCollector()
	consuming(t, func(ctx context.Context) error { return q.ConsumeAlerts(ctx, c.handle) })
	waitDrained(t, q, streamAlerts)
	waitFor(t, "both batches handled", func() bool { return c.count("other") == 1 })
	if n := c.count("dup"); n != 1 {
		t.Errorf("batch dup handled %d times, want 1", n)
	}
}

func TestHandlerErrorIsRetried(t *testing.T) {
	q := openQueue(t, t.TempDir(), 0)
	var calls atomic.Int32
	done := make(chan struct{})
	consuming(t, func(ctx context.Context) error {
		return q.ConsumeAlerts(ctx, func(context.Context, oncall.AlertBatch) error {
			switch calls.Add(1) {
			case 1, 2:
				return errors.New("database unavailable")
			case 3:
				close(done)
			}
			return nil
		})
	})
	if err := q.PublishAlert(t.Context(), batch("b1")); err != nil {
		t.Fatal(err)
	}
	receive(t, done)
	waitDrained(t, q, streamAlerts) // acked after the third call
	if n := calls.Load(); n != 3 {
		t.Errorf("handler called %d times, want 3", n)
	}
}

func TestUndecodableMessagesAreTerminated(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		subject string
		body    string
		consume func(q *Queue, ctx context.Context, handled chan<- string) error
		publish func(q *Queue) error
		want    string
	}{
		{
			name:    "alerts",
			stream:  streamAlerts,
			subject: "alerts.webhook",
			body:    `{"id": "broken`,
			consume: func(q *Queue, ctx context.Context, handled chan<- string) error {
				return q.ConsumeAlerts(ctx, func(_ context.Context, b oncall.AlertBatch) error {
					handled <- b.ID
					return nil
				})
			},
			publish: func(q *Queue) error { return q.PublishAlert(context.Background(), batch("good")) },
			want:    "good",
		},
		{
			name:    "incident changes",
			stream:  streamNotify,
			subject: "notify.incident.x",
			body:    `{"incident_id": "seven"}`,
			consume: func(q *Queue, ctx context.Context, handled chan<- string) error {
				return q.ConsumeIncidentChanges(ctx, func(_ context.Context, id int64) error {
					handled <- fmt.Sprint(id)
					return nil
				})
			},
			publish: func(q *Queue) error { return q.PublishIncidentChanged(context.Background(), 7) },
			want:    "7",
		},
		{
			name:    "incident change without id",
			stream:  streamNotify,
			subject: "notify.incident.0",
			body:    `{}`,
			consume: func(q *Queue, ctx context.Context, handled chan<- string) error {
				return q.ConsumeIncidentChanges(ctx, func(_ context.Context, id int64) error {
					handled <- fmt.Sprint(id)
					return nil
				})
			},
			publish: func(q *Queue) error { return q.PublishIncidentChanged(context.Background(), 8) },
			want:    "8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One worker: the bad message, first in line, must not hold up
			// the good one behind it.
			q := openQueue(t, t.TempDir(), 1)
			if _, err := q.js.Publish(t.Context(), tt.subject, []byte(tt.body)); err != nil {
				t.Fatal(err)
			}
			if err := tt.publish(q); err != nil {
				t.Fatal(err)
			}
			handled := make(chan string, 10)
			stop := consuming(t, func(ctx context.Context) error { return tt.consume(q, ctx, handled) })
			if got := receive(t, handled); got != tt.want {
				t.Errorf("handled %q, want %q", got, tt.want)
			}
			waitDrained(t, q, tt.stream) // the bad one is gone, not waiting for redelivery
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if len(handled) != 0 {
				t.Errorf("handler also got %q", <-handled)
			}
		})
	}
}

func TestMessagesSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	q := openQueue(t, dir, 0)
	ids := []string{"b1", "b2", "b3"}
	for _, id := range ids {
		if err := q.PublishAlert(t.Context(), batch(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.PublishIncidentChanged(t.Context(), 42); err != nil {
		t.Fatal(err)
	}
	q.Close()
	if _, err := os.Stat(filepath.Join(dir, "jetstream")); err != nil {
		t.Errorf("JetStream files not under the data dir: %v", err)
	}

	q = openQueue(t, dir, 0)
	c := newCollector()
	consuming(t, func(ctx context.Context) error { return q.ConsumeAlerts(ctx, c.handle) })
	changed := make(chan int64, 1)
	consuming(t, func(ctx context.Context) error {
		return q.ConsumeIncidentChanges(ctx, func(_ context.Context, id int64) error {
			changed <- id
			return nil
		})
	})
	for range ids {
		receive(t, c.got)
	}
	for _, id := range ids {
		if n := c.count(id); n != 1 {
			t.Errorf("batch %s handled %d times after reopen, want 1", id, n)
		}
	}
	if id := receive(t, changed); id != 42 {
		t.Errorf("incident change %d, want 42", id)
	}
}

func TestStopLetsRunningHandlerFinish(t *testing.T) {
	tests := []struct {
		name string
		// stop stops consuming while a handler runs and returns once the
		// stop has begun; finished reports when it is complete.
		stop func(q *Queue, cancelConsumer func() error) (finished <-chan error)
	}{
		{
			name: "context cancelled",
			stop: func(_ *Queue, cancelConsumer func() error) <-chan error {
				finished := make(chan error, 1)
				go func() { finished <- cancelConsumer() }()
				return finished
			},
		},
		{
			name: "queue closed",
			stop: func(q *Queue, _ func() error) <-chan error {
				finished := make(chan error, 1)
				go func() { q.Close(); finished <- nil }()
				<-q.stopping.Done()
				return finished
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			q := openQueue(t, dir, 0)
			started := make(chan struct{})
			release := make(chan struct{})
			var finished atomic.Bool
			var handlerCtxErr error
			cancelConsumer := consuming(t, func(ctx context.Context) error {
				return q.ConsumeAlerts(ctx, func(hctx context.Context, _ oncall.AlertBatch) error {
					close(started)
					<-release
					handlerCtxErr = hctx.Err()
					finished.Store(true)
					return nil
				})
			})
			if err := q.PublishAlert(t.Context(), batch("b1")); err != nil {
				t.Fatal(err)
			}
			receive(t, started)
			stopped := tt.stop(q, cancelConsumer)
			close(release)
			if err := receive(t, stopped); err != nil {
				t.Fatalf("stop: %v", err)
			}
			if !finished.Load() {
				t.Fatal("stop returned before the running handler finished")
			}
			if handlerCtxErr != nil {
				t.Errorf("handler context was cancelled by the stop: %v", handlerCtxErr)
			}
			// The message was acked: nothing is left for the next start.
			q.Close()
			q = openQueue(t, dir, 0)
			if n := streamMsgs(t, q, streamAlerts); n != 0 {
				t.Errorf("stream holds %d messages after the handler finished, want 0", n)
			}
		})
	}
}

func TestReplicasShareConsumer(t *testing.T) {
	first := openQueue(t, t.TempDir(), 1)
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	second, err := Open(ctx, Options{URL: first.ClientURL(), Workers: 1, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open with URL %s: %v", first.ClientURL(), err)
	}
	t.Cleanup(second.Close)
	if second.ClientURL() != "" {
		t.Errorf("ClientURL of a connection to an external server = %q, want empty", second.ClientURL())
	}

	// Each replica's first handler call waits until both replicas hold a
	// message, so the work must be split between them.
	var mu sync.Mutex
	calls := map[string]int{}
	handledBy := map[string]int{}
	bothBusy := make(chan struct{})
	var busy sync.WaitGroup
	busy.Add(2)
	go func() { busy.Wait(); close(bothBusy) }()
	handler := func(replica string) func(context.Context, oncall.AlertBatch) error {
		var once sync.Once
		return func(_ context.Context, b oncall.AlertBatch) error {
			once.Do(func() {
				busy.Done()
				select {
				case <-bothBusy:
				case <-time.After(waitLimit):
				}
			})
			mu.Lock()
			defer mu.Unlock()
			calls[b.ID]++
			handledBy[replica]++
			return nil
		}
	}
	consuming(t, func(ctx context.Context) error { return first.ConsumeAlerts(ctx, handler("first")) })
	consuming(t, func(ctx context.Context) error { return second.ConsumeAlerts(ctx, handler("second")) })

	const n = 20
	for i := range n {
		if err := second.PublishAlert(t.Context(), batch(fmt.Sprintf("b%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitDrained(t, first, streamAlerts)
	waitFor(t, "all batches handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) == n
	})

	mu.Lock()
	defer mu.Unlock()
	for id, c := range calls {
		if c != 1 {
			t.Errorf("batch %s handled %d times, want 1", id, c)
		}
	}
	if handledBy["first"] == 0 || handledBy["second"] == 0 {
		t.Errorf("work not shared: handled per replica %v", handledBy)
	}
}

func TestPingAndPublishAfterClose(t *testing.T) {
	q := openQueue(t, t.TempDir(), 0)
	if err := q.Ping(t.Context()); err != nil {
		t.Fatalf("Ping of an open queue: %v", err)
	}
	q.Close()
	if err := q.Ping(t.Context()); err == nil {
		t.Error("Ping of a closed queue: got nil error")
	}
	if err := q.PublishAlert(t.Context(), batch("b1")); err == nil {
		t.Error("PublishAlert on a closed queue: got nil error")
	}
}

func TestOpenUnreachableURL(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	q, err := Open(ctx, Options{URL: "nats://user:secret@127.0.0.1:1", Logger: testLogger(t)})
	if err == nil {
		q.Close()
		t.Fatal("Open of an unreachable server: got nil error")
	}
	if got := err.Error(); !strings.Contains(got, "127.0.0.1:1") || strings.Contains(got, "secret") {
		t.Errorf("error %q should name the server and hide the password", got)
	}
}

func TestOpenWithoutDataDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	q, err := Open(ctx, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	dir := q.tempDir
	if dir == "" {
		t.Fatal("no temporary data dir recorded")
	}
	if _, err := os.Stat(filepath.Join(dir, "jetstream")); err != nil {
		t.Errorf("JetStream files not in the temporary dir: %v", err)
	}
	q.Close()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary data dir %s still there after Close (stat: %v)", dir, err)
	}
}

func TestConsumeAfterClose(t *testing.T) {
	q := openQueue(t, t.TempDir(), 0)
	q.Close()
	err := q.ConsumeAlerts(t.Context(), func(context.Context, oncall.AlertBatch) error { return nil })
	if err == nil {
		t.Fatal("ConsumeAlerts on a closed queue: got nil error")
	}
}

func TestConsumerRecreatedAfterDeletion(t *testing.T) {
	q := openQueue(t, t.TempDir(), 0)
	c := newCollector()
	consuming(t, func(ctx context.Context) error { return q.ConsumeAlerts(ctx, c.handle) })
	if err := q.PublishAlert(t.Context(), batch("before")); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, c.got); got.ID != "before" {
		t.Fatalf("handled %q, want before", got.ID)
	}
	waitDrained(t, q, streamAlerts)

	if err := q.js.DeleteConsumer(t.Context(), streamAlerts, "processor"); err != nil {
		t.Fatalf("delete consumer: %v", err)
	}
	if err := q.PublishAlert(t.Context(), batch("after")); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, c.got); got.ID != "after" {
		t.Fatalf("handled %q, want after", got.ID)
	}
}
