package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
)

var escT0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// openEscIncident opens an incident of an integration without a chain,
// so that the test starts its escalation itself.
func openEscIncident(t *testing.T, db *DB, group string) int64 {
	t.Helper()
	res, err := db.RecordBatch(t.Context(), batch("b-"+group, "hook", group, oncall.AlertFiring, oncall.SeverityWarning,
		alert(group, oncall.AlertFiring)))
	if err != nil {
		t.Fatal(err)
	}
	return res.IncidentID
}

func delivery(incidentID int64, person string, ch oncall.NotifyChannel, due time.Time) oncall.Delivery {
	return oncall.Delivery{
		Key: fmt.Sprintf("%d:0:0:%s:%s", incidentID, person, ch), IncidentID: incidentID, Person: person,
		Channel: ch, DueAt: due,
	}
}

func TestStartEscalationIsIdempotent(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	id := openEscIncident(t, db, "g")
	for i, want := range []bool{true, false} {
		started, err := db.StartEscalation(t.Context(), id, "default", escT0.Add(time.Duration(i)*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if started != want {
			t.Errorf("start %d: started = %v, want %v", i, started, want)
		}
	}
	esc, err := db.Escalation(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !esc.NextRunAt.Equal(escT0) || esc.State != EscalationRunning || esc.Step != 0 {
		t.Errorf("escalation after two starts: %+v; want running at step 0 due %s", esc, escT0)
	}
	if _, err := db.StartEscalation(t.Context(), 999, "default", escT0); !errors.Is(err, oncall.ErrNotFound) {
		t.Errorf("start for a missing incident: %v, want ErrNotFound", err)
	}
	if _, err := db.Escalation(t.Context(), 999); !errors.Is(err, oncall.ErrNotFound) {
		t.Errorf("escalation of a missing incident: %v, want ErrNotFound", err)
	}
}

func TestRecordBatchStartsAndStopsTheChain(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	res, err := db.RecordBatch(ctx, batch("b1", "prom", "g", oncall.AlertFiring, oncall.SeverityWarning,
		alert("a", oncall.AlertFiring)))
	if err != nil {
		t.Fatal(err)
	}
	esc, err := db.Escalation(ctx, res.IncidentID)
	if err != nil {
		t.Fatalf("the new incident of an integration with a chain has no escalation: %v", err)
	}
	if esc.Chain != "default" || esc.State != EscalationRunning || !esc.NextRunAt.Equal(received) {
		t.Errorf("escalation = %+v, want chain default running, due at its batch's receipt %s", esc, received)
	}
	if _, err := db.RecordBatch(ctx, batch("b2", "prom", "g", oncall.AlertResolved, oncall.SeverityWarning,
		alert("a", oncall.AlertResolved))); err != nil {
		t.Fatal(err)
	}
	if esc, err = db.Escalation(ctx, res.IncidentID); err != nil {
		t.Fatal(err)
	}
	if esc.State != EscalationStopped || !esc.NextRunAt.IsZero() {
		t.Errorf("after the source resolved it: %+v, want stopped with nothing due", esc)
	}
}

func TestProcessDueEscalations(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	id := openEscIncident(t, db, "g")
	if _, err := db.StartEscalation(ctx, id, "default", escT0); err != nil {
		t.Fatal(err)
	}
	var calls []EscalationState
	fn := func(_ context.Context, esc EscalationState) (EscalationUpdate, []oncall.Delivery, error) {
		calls = append(calls, esc)
		d := delivery(esc.IncidentID, "UBOB", oncall.NotifySlack, escT0)
		return EscalationUpdate{State: EscalationRunning, Step: esc.Step + 2, NextRunAt: esc.NextRunAt.Add(5 * time.Minute)},
			[]oncall.Delivery{d, d}, nil // the same key twice is one delivery
	}
	steps := []struct {
		name      string
		now       time.Time
		processed int
		step      int
		changed   []int64 // incidents with a new delivery
	}{
		{"not due yet", escT0.Add(-time.Second), 0, 0, nil},
		{"due", escT0, 1, 2, []int64{id}},
		{"a stale wake-up at the same time does nothing", escT0, 0, 2, nil},
		{"due again after the wait; its delivery exists already", escT0.Add(5 * time.Minute), 1, 4, nil},
	}
	for _, s := range steps {
		before := len(calls)
		n, changed, err := db.ProcessDueEscalations(ctx, s.now, 10, fn)
		if !slices.Equal(changed, s.changed) {
			t.Errorf("%s: changed %v, want %v", s.name, changed, s.changed)
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if n != s.processed || len(calls)-before != s.processed {
			t.Errorf("%s: processed %d, fn called %d times; want %d", s.name, n, len(calls)-before, s.processed)
		}
		if s.processed == 1 {
			if got := calls[len(calls)-1].Incident; got.ID != id || got.Status != oncall.StatusTriggered {
				t.Errorf("%s: fn saw incident %d %s, want %d triggered", s.name, got.ID, got.Status, id)
			}
		}
		esc, err := db.Escalation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if esc.Step != s.step {
			t.Errorf("%s: step %d, want %d", s.name, esc.Step, s.step)
		}
	}
	ds, err := db.Deliveries(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Status != oncall.DeliveryPending || ds[0].Person != "UBOB" {
		t.Errorf("deliveries %+v, want one pending for UBOB", ds)
	}
}

func TestProcessDueEscalationsRetriesAFailure(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	bad, good := openEscIncident(t, db, "bad"), openEscIncident(t, db, "good")
	for _, id := range []int64{bad, good} {
		if _, err := db.StartEscalation(ctx, id, "default", escT0); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("boom")
	fn := func(_ context.Context, esc EscalationState) (EscalationUpdate, []oncall.Delivery, error) {
		d := delivery(esc.IncidentID, "UBOB", oncall.NotifySlack, escT0)
		if esc.IncidentID == bad {
			return EscalationUpdate{State: EscalationExhausted}, []oncall.Delivery{d}, boom
		}
		return EscalationUpdate{State: EscalationExhausted}, []oncall.Delivery{d}, nil
	}
	n, changed, err := db.ProcessDueEscalations(ctx, escT0, 10, fn)
	if !errors.Is(err, boom) {
		t.Errorf("error %v, want boom", err)
	}
	if n != 2 || !slices.Equal(changed, []int64{good}) {
		t.Errorf("processed %d, changed %v; want 2 and [%d]", n, changed, good)
	}
	esc, err := db.Escalation(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	if want := escT0.Add(EscalationRetryDelay); esc.State != EscalationRunning || !esc.NextRunAt.Equal(want) {
		t.Errorf("failed escalation %s due %s, want running due %s", esc.State, esc.NextRunAt, want)
	}
	if ds, err := db.Deliveries(ctx, bad); err != nil || len(ds) != 0 {
		t.Errorf("failed escalation left deliveries %v (%v), want none", ds, err)
	}
}

// TestProcessDueEscalationsConcurrently: replicas processing at once take
// each due row once.
func TestProcessDueEscalationsConcurrently(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	const rows = 60
	for i := range rows {
		id := openEscIncident(t, db, fmt.Sprintf("g%d", i))
		if _, err := db.StartEscalation(ctx, id, "default", escT0); err != nil {
			t.Fatal(err)
		}
	}
	var calls atomic.Int64
	fn := func(_ context.Context, esc EscalationState) (EscalationUpdate, []oncall.Delivery, error) {
		calls.Add(1)
		return EscalationUpdate{State: EscalationExhausted}, nil, nil
	}
	var (
		wg    sync.WaitGroup
		total atomic.Int64
	)
	for range 4 {
		wg.Go(func() {
			for {
				n, _, err := db.ProcessDueEscalations(ctx, escT0, 7, fn)
				if err != nil {
					t.Error(err)
					return
				}
				total.Add(int64(n))
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	if calls.Load() != rows || total.Load() != rows {
		t.Errorf("fn called %d times, %d processed; want %d each", calls.Load(), total.Load(), rows)
	}
}

func TestDeliveriesClaimAndCancel(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	id, acked := openEscIncident(t, db, "g"), openEscIncident(t, db, "acked")
	for _, inc := range []int64{id, acked} {
		if _, err := db.StartEscalation(ctx, inc, "default", escT0); err != nil {
			t.Fatal(err)
		}
	}
	fn := func(_ context.Context, esc EscalationState) (EscalationUpdate, []oncall.Delivery, error) {
		return EscalationUpdate{State: EscalationExhausted}, []oncall.Delivery{
			delivery(esc.IncidentID, "UBOB", oncall.NotifySlack, escT0),
			delivery(esc.IncidentID, "UBOB", oncall.NotifySMS, escT0.Add(5*time.Minute)),
			delivery(esc.IncidentID, "UBOB", oncall.NotifyCall, escT0.Add(10*time.Minute)),
		}, nil
	}
	if _, _, err := db.ProcessDueEscalations(ctx, escT0, 10, fn); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Transition(ctx, acked, oncall.ActionAcknowledge, oncall.SlackActor("U1"), ""); err != nil {
		t.Fatal(err)
	}

	claim := func(at time.Duration) []string {
		var keys []string
		n, err := db.ClaimDueDeliveries(ctx, escT0.Add(at), 10, func(_ context.Context, ds []oncall.Delivery) error {
			for _, d := range ds {
				keys = append(keys, d.Key)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != len(keys) {
			t.Errorf("claimed %d, published %d", n, len(keys))
		}
		for _, k := range keys {
			if got := scalar[string](t, db, `SELECT status FROM deliveries WHERE key = $1`, k); got != "queued" {
				t.Errorf("claimed %s is %s, want queued", k, got)
			}
		}
		return keys
	}
	key := func(ch oncall.NotifyChannel) string { return fmt.Sprintf("%d:0:0:UBOB:%s", id, ch) }
	if got, want := claim(5*time.Minute), []string{key(oncall.NotifySlack), key(oncall.NotifySMS)}; !slices.Equal(got, want) {
		t.Errorf("claim at 5m: %q, want %q (nothing of the acknowledged incident)", got, want)
	}
	if got := claim(5 * time.Minute); len(got) != 0 {
		t.Errorf("second claim at 5m: %q, want nothing", got)
	}

	// The worker has sent the slack one; stopping cancels the queued sms
	// and the pending call, not what was sent.
	if _, err := db.pool.Exec(ctx, `UPDATE deliveries SET status = 'sent' WHERE key = $1`, key(oncall.NotifySlack)); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.StopEscalation(ctx, id, time.Time{}); err != nil || !ok {
		t.Fatalf("stop: %v, %v", ok, err)
	}
	ds, err := db.Deliveries(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var statuses []oncall.DeliveryStatus
	for _, d := range ds {
		statuses = append(statuses, d.Status)
	}
	want := []oncall.DeliveryStatus{oncall.DeliverySent, oncall.DeliveryCancelled, oncall.DeliveryCancelled}
	if !slices.Equal(statuses, want) {
		t.Errorf("after stop: %v, want %v", statuses, want)
	}
	if got := claim(time.Hour); len(got) != 0 {
		t.Errorf("claim after stop: %q, want nothing", got)
	}
	esc, err := db.Escalation(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if esc.State != EscalationStopped || !esc.NextRunAt.IsZero() {
		t.Errorf("after stop: %s due %s, want stopped and not due", esc.State, esc.NextRunAt)
	}

	// Restart and EscalateNow make it due again; restart opens a new repeat.
	if ok, err := db.RestartEscalation(ctx, id, escT0.Add(time.Hour)); err != nil || !ok {
		t.Fatalf("restart: %v, %v", ok, err)
	}
	if ok, err := db.EscalateNow(ctx, id, escT0.Add(2*time.Hour)); err != nil || !ok {
		t.Fatalf("escalate: %v, %v", ok, err)
	}
	esc, err = db.Escalation(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if esc.State != EscalationRunning || esc.Repeat != 1 || esc.BaseRepeat != 1 || !esc.Escalate ||
		!esc.NextRunAt.Equal(escT0.Add(2*time.Hour)) {
		t.Errorf("after restart and escalate: %+v", esc)
	}
	if ok, err := db.RestartEscalation(ctx, 999, escT0); err != nil || ok {
		t.Errorf("restart of a missing escalation: %v, %v; want false, nil", ok, err)
	}
}
