package escalation_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/escalation"
)

// fakeHeartbeats is a HeartbeatStore the test sets.
type fakeHeartbeats struct {
	mu   sync.Mutex
	last map[string]time.Time
	err  error
}

func (s *fakeHeartbeats) LastHeartbeats(context.Context) (map[string]time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.last), s.err
}

func (s *fakeHeartbeats) beat(integration string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last[integration] = at
}

// recordedBatches is a process function that keeps the batches it is
// given, failing while fail is set.
type recordedBatches struct {
	mu      sync.Mutex
	batches []oncall.AlertBatch
	fail    error
}

func (r *recordedBatches) process(_ context.Context, b oncall.AlertBatch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.batches = append(r.batches, b)
	return nil
}

// take returns the IDs of the batches processed since the last call.
func (r *recordedBatches) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, b := range r.batches {
		ids = append(ids, b.ID)
	}
	r.batches = nil
	return ids
}

func missID(integration string, last time.Time) string {
	return fmt.Sprintf("heartbeat-missed:%s:%d", integration, last.UnixNano())
}

func TestHeartbeatWatcherCheck(t *testing.T) {
	t.Parallel()
	store := &fakeHeartbeats{last: map[string]time.Time{
		"cron":  t0.Add(-time.Minute),
		"plain": t0.Add(-24 * time.Hour), // not watched: no timeout
	}}
	rec := &recordedBatches{}
	clock := &fakeClock{now: t0}
	w := escalation.NewHeartbeatWatcher(store, []oncall.Integration{
		{Name: "db", Kind: "webhook", Heartbeat: 5 * time.Minute},
		{Name: "cron", Kind: "alertmanager", Heartbeat: 10 * time.Minute},
		{Name: "plain", Kind: "webhook"},
	}, rec.process, clock, nil)

	boom := errors.New("database down")
	steps := []struct {
		name      string
		at        time.Duration // clock, from t0
		beat      string        // integration that sends a heartbeat at this time, before the check
		fail      error         // process fails
		storeFail error
		want      []string // batch IDs processed
	}{
		{name: "nobody late yet: db is counted from the start", at: 5*time.Minute - time.Second},
		{name: "db never heard from is late", at: 5 * time.Minute, want: []string{missID("db", t0)}},
		{name: "the same miss is recorded once", at: 6 * time.Minute},
		{name: "cron is late after its own timeout", at: 9 * time.Minute, want: []string{missID("cron", t0.Add(-time.Minute))}},
		{name: "db sends a heartbeat", at: 10 * time.Minute, beat: "db"},
		{name: "db within its timeout again", at: 15*time.Minute - time.Second},
		{name: "processing the new miss fails", at: 15 * time.Minute, fail: boom},
		{name: "the failed miss is tried again", at: 16 * time.Minute, want: []string{missID("db", t0.Add(10*time.Minute))}},
		{name: "the store fails", at: 17 * time.Minute, storeFail: boom},
		{name: "much later, nothing new", at: 30 * time.Minute},
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		clock.Set(now)
		if s.beat != "" {
			store.beat(s.beat, now)
		}
		rec.fail, store.err = s.fail, s.storeFail
		err := w.Check(t.Context())
		if wantErr := s.fail != nil || s.storeFail != nil; (err != nil) != wantErr || wantErr && !errors.Is(err, boom) {
			t.Errorf("%s: Check = %v, want error %v", s.name, err, wantErr)
		}
		if got := rec.take(); !slices.Equal(got, s.want) {
			t.Errorf("%s: processed %q, want %q", s.name, got, s.want)
		}
	}
}

func TestHeartbeatWatcherBatch(t *testing.T) {
	t.Parallel()
	rec := &recordedBatches{}
	clock := &fakeClock{now: t0}
	last := t0.Add(-time.Hour)
	store := &fakeHeartbeats{last: map[string]time.Time{"db": last}}
	w := escalation.NewHeartbeatWatcher(store, []oncall.Integration{{Name: "db", Kind: "webhook", Heartbeat: 10 * time.Minute}},
		rec.process, clock, slog.New(slog.DiscardHandler))
	if err := w.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(rec.batches) != 1 {
		t.Fatalf("processed %d batches, want 1", len(rec.batches))
	}
	title := "No heartbeat from db for 10m0s"
	want := oncall.AlertBatch{
		ID: missID("db", last), Integration: "db", Kind: "webhook", ReceivedAt: last, // any later heartbeat resolves it
		GroupKey: oncall.HeartbeatGroupKey, Status: oncall.AlertFiring, Severity: oncall.SeverityCritical,
		Title: title, Message: "The last heartbeat of db was at 2026-03-02T09:00:00Z.",
		Alerts: []oncall.Alert{{Fingerprint: oncall.HeartbeatGroupKey, Status: oncall.AlertFiring, Title: title,
			StartsAt: last.Add(10 * time.Minute)}},
	}
	if got := rec.batches[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("batch of a missed heartbeat:\n got %+v\nwant %+v", got, want)
	}
}

// TestHeartbeatMissOpensAndHeartbeatResolves runs the watcher with the
// real service and database: a miss opens an incident of the heartbeat
// group, the next heartbeat resolves it, and a later miss opens another.
func TestHeartbeatMissOpensAndHeartbeatResolves(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, _ := newEngineDB(t)
	notifier := &recordingNotifier{}
	svc := escalation.NewService(db, notifier, nil, slog.New(slog.DiscardHandler), nil)
	clock := &fakeClock{now: t0}
	hook := oncall.Integration{Name: "hook", Kind: "webhook", Heartbeat: time.Minute}
	w := escalation.NewHeartbeatWatcher(db, []oncall.Integration{hook}, svc.Process, clock, nil)

	heartbeat := func(id string, at time.Time) {
		t.Helper()
		b := oncall.HeartbeatBatch("hook")
		b.ID, b.Kind, b.ReceivedAt = id, "webhook", at
		if err := svc.Process(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	check := func(at time.Duration) {
		t.Helper()
		clock.Set(t0.Add(at))
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	outcome := func(batchID string) oncall.BatchOutcome {
		t.Helper()
		o, err := db.BatchOutcome(ctx, batchID)
		if err != nil {
			t.Fatalf("outcome of %s: %v", batchID, err)
		}
		return o
	}

	heartbeat("hb-1", t0)
	check(59 * time.Second)
	if _, err := db.BatchOutcome(ctx, missID("hook", t0)); !errors.Is(err, oncall.ErrNotFound) {
		t.Fatalf("a miss recorded within the timeout: %v", err)
	}

	check(time.Minute)
	miss := outcome(missID("hook", t0))
	if miss.Action != "created" || miss.IncidentID == 0 {
		t.Fatalf("the missed heartbeat: %+v, want a new incident", miss)
	}
	inc, err := db.Incident(ctx, miss.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Integration != "hook" || inc.GroupKey != oncall.HeartbeatGroupKey || inc.Status != oncall.StatusTriggered ||
		inc.Severity != oncall.SeverityCritical || inc.Title != "No heartbeat from hook for 1m0s" {
		t.Errorf("missed-heartbeat incident: %s/%s %s %s %q", inc.Integration, inc.GroupKey, inc.Status, inc.Severity, inc.Title)
	}
	if n := notifier.count(miss.IncidentID); n != 1 {
		t.Errorf("the new incident was announced %d times, want 1", n)
	}

	heartbeat("hb-2", t0.Add(90*time.Second))
	if o := outcome("hb-2"); o.Action != "resolved" || o.IncidentID != miss.IncidentID {
		t.Errorf("the heartbeat after the miss: %+v, want it to resolve incident %d", o, miss.IncidentID)
	}
	if inc, err = db.Incident(ctx, miss.IncidentID); err != nil || inc.Status != oncall.StatusResolved {
		t.Errorf("missed-heartbeat incident after a heartbeat: %s (%v), want resolved", inc.Status, err)
	}
	if n := notifier.count(miss.IncidentID); n != 2 {
		t.Errorf("the incident was announced %d times, want 2 (opened, resolved)", n)
	}

	// Within the timeout of the new heartbeat: nothing; past it: another
	// incident.
	check(2*time.Minute + 29*time.Second)
	if _, err := db.BatchOutcome(ctx, missID("hook", t0.Add(90*time.Second))); !errors.Is(err, oncall.ErrNotFound) {
		t.Errorf("a miss recorded within the timeout of the last heartbeat: %v", err)
	}
	check(2*time.Minute + 30*time.Second)
	again := outcome(missID("hook", t0.Add(90*time.Second)))
	if again.Action != "created" || again.IncidentID == miss.IncidentID {
		t.Errorf("the second miss: %+v, want a new incident", again)
	}
}
