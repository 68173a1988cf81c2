package escalation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/escalation"
	"github.com/oncallbot/oncall/internal/pgtest"
	"github.com/oncallbot/oncall/queue"
	"github.com/oncallbot/oncall/storage"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// lockedBuffer is a log destination that goroutines share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the JSON log records written so far.
func (b *lockedBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

type harness struct {
	logs *lockedBuffer // the service's log, as JSON
	db   *storage.DB
	q    *queue.Queue
	svc  *escalation.Service
	reg  *prometheus.Registry
	// announced receives every incident id published to NOTIFY.
	announced chan int64
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := t.Context()
	db, err := storage.Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	hook := oncall.Integration{Name: "hook", Kind: "webhook", Token: "hook-token-0123456789", Channel: "C0HOOK"}
	if err := db.SyncIntegrations(ctx, []oncall.Integration{hook}); err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(ctx, queue.Options{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	h := &harness{logs: &lockedBuffer{}, db: db, q: q, reg: prometheus.NewRegistry(), announced: make(chan int64, 100)}
	h.svc = escalation.NewService(db, q, nil, slog.New(slog.NewJSONHandler(h.logs, nil)), h.reg)

	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = q.ConsumeIncidentChanges(cctx, func(_ context.Context, id int64) error {
			h.announced <- id
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// nextAnnounced waits for the next NOTIFY message.
func (h *harness) nextAnnounced(t *testing.T) int64 {
	t.Helper()
	select {
	case id := <-h.announced:
		return id
	case <-time.After(20 * time.Second):
		t.Fatal("no incident change was announced")
		return 0
	}
}

func batch(id, groupKey string, status oncall.AlertStatus) oncall.AlertBatch {
	return oncall.AlertBatch{
		ID: id, Integration: "hook", Kind: "webhook", ReceivedAt: time.Now().UTC(),
		GroupKey: groupKey, Status: status, Title: "Disk full", Severity: oncall.SeverityCritical,
		Alerts: []oncall.Alert{{Fingerprint: groupKey, Status: status, Title: "Disk full"}},
	}
}

func TestProcessStoresAndAnnounces(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()

	steps := []struct {
		name       string
		batch      oncall.AlertBatch
		wantStatus oncall.IncidentStatus
		wantAlerts int
	}{
		{"new alert opens an incident", batch("b1", "disk", oncall.AlertFiring), oncall.StatusTriggered, 1},
		{"a repeat joins it", batch("b2", "disk", oncall.AlertFiring), oncall.StatusTriggered, 2},
		{"a redelivered batch changes nothing", batch("b2", "disk", oncall.AlertFiring), oncall.StatusTriggered, 2},
		{"the source resolves it", batch("b3", "disk", oncall.AlertResolved), oncall.StatusResolved, 3},
	}
	var incident int64
	for _, s := range steps {
		if err := h.svc.Process(ctx, s.batch); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		// Every batch is announced, a redelivered one too: the first
		// announcement may have been lost in the crash that caused it.
		id := h.nextAnnounced(t)
		if incident == 0 {
			incident = id
		}
		if id != incident {
			t.Fatalf("%s: announced incident %d, want %d", s.name, id, incident)
		}
		inc, err := h.db.Incident(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if inc.Status != s.wantStatus || inc.AlertCount != s.wantAlerts {
			t.Errorf("%s: status %s with %d alerts, want %s with %d", s.name, inc.Status, inc.AlertCount, s.wantStatus, s.wantAlerts)
		}
	}

	// A resolve with nothing open stores nothing and announces nothing.
	if err := h.svc.Process(ctx, batch("b4", "other", oncall.AlertResolved)); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-h.announced:
		t.Errorf("a resolve without an open incident announced incident %d", id)
	case <-time.After(300 * time.Millisecond):
	}

	for outcome, want := range map[string]float64{"created": 1, "joined": 1, "duplicate": 1, "resolved": 1, "no_incident": 1} {
		c, err := h.processed(outcome)
		if err != nil || c != want {
			t.Errorf("oncall_alert_batches_processed_total{outcome=%q} = %v (%v), want %v", outcome, c, err, want)
		}
	}
}

// processed reads oncall_alert_batches_processed_total{outcome=...}.
func (h *harness) processed(outcome string) (float64, error) {
	families, err := h.reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, f := range families {
		if f.GetName() != "oncall_alert_batches_processed_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue(), nil
				}
			}
		}
	}
	return 0, nil
}

func TestActAnnouncesEveryAction(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	if err := h.svc.Process(ctx, batch("b1", "disk", oncall.AlertFiring)); err != nil {
		t.Fatal(err)
	}
	id := h.nextAnnounced(t)
	alice := oncall.SlackActor("U0ALICE")

	inc, err := h.svc.Act(ctx, id, oncall.ActionAcknowledge, alice, "click-1")
	if err != nil || inc.Status != oncall.StatusAcknowledged {
		t.Fatalf("acknowledge: %s, %v", inc.Status, err)
	}
	h.nextAnnounced(t)
	// The same click again changes nothing, but is announced so that a lost
	// first announcement is repaired.
	if inc, err := h.svc.Act(ctx, id, oncall.ActionAcknowledge, alice, "click-1"); err != nil || inc.Status != oncall.StatusAcknowledged {
		t.Fatalf("repeated acknowledge: %s, %v", inc.Status, err)
	}
	h.nextAnnounced(t)
	events, err := h.db.Events(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[1].Kind != oncall.EventAcknowledged {
		t.Errorf("events = %+v, want created and one acknowledged", events)
	}

	if _, err := h.svc.Act(ctx, 1<<40, oncall.ActionResolve, alice, ""); !errors.Is(err, oncall.ErrNotFound) {
		t.Errorf("act on a missing incident: %v, want ErrNotFound", err)
	}
}

// TestProcessOutOfTheOrdinary: batches that cannot do what they ask are
// stored, announced and said so in the log, never refused.
func TestProcessOutOfTheOrdinary(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()

	// An integration removed from the config while its alert was queued.
	retired := batch("gone-1", "disk", oncall.AlertFiring)
	retired.Integration = "retired"
	if err := h.svc.Process(ctx, retired); err != nil {
		t.Fatalf("batch of an integration no longer configured: %v", err)
	}
	id := h.nextAnnounced(t)
	inc, err := h.db.Incident(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Integration != "retired" || inc.Channel != "" || inc.Status != oncall.StatusTriggered {
		t.Errorf("incident of the retired integration: %s in channel %q, %s; want retired, no channel, triggered",
			inc.Integration, inc.Channel, inc.Status)
	}
	var warned bool
	for _, rec := range h.logs.records(t) {
		if rec["level"] == "WARN" && rec["integration"] == "retired" &&
			rec["msg"] == "alert for an integration that is no longer configured; stored, not posted" {
			warned = true
		}
	}
	if !warned {
		t.Error("no warning that the alert's integration is no longer configured")
	}

	// A resolve received before the latest firing alert of the incident
	// (delivered late) leaves it open.
	firing := batch("late-1", "cpu", oncall.AlertFiring)
	if err := h.svc.Process(ctx, firing); err != nil {
		t.Fatal(err)
	}
	open := h.nextAnnounced(t)
	late := batch("late-0", "cpu", oncall.AlertResolved)
	late.ReceivedAt = firing.ReceivedAt.Add(-time.Minute)
	if err := h.svc.Process(ctx, late); err != nil {
		t.Fatal(err)
	}
	if got := h.nextAnnounced(t); got != open {
		t.Errorf("the late resolve announced incident %d, want %d", got, open)
	}
	if inc, err := h.db.Incident(ctx, open); err != nil || inc.Status != oncall.StatusTriggered || inc.AlertCount != 2 {
		t.Errorf("after a late resolve: %s with %d alerts (%v), want triggered with 2", inc.Status, inc.AlertCount, err)
	}
	if c, err := h.processed("stale"); err != nil || c != 1 {
		t.Errorf("oncall_alert_batches_processed_total{outcome=\"stale\"} = %v (%v), want 1", c, err)
	}
}
