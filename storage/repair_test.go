package storage

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
)

// A page whose queue message may be lost is published again: queued long
// ago, or sending with a lease long run out; not one in flight.
func TestRequeueStuckDeliveries(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	id := openEscIncident(t, db, "g")
	now := time.Now()
	rows := []struct {
		person             string
		status             oncall.DeliveryStatus
		queuedAgo, leaseIn time.Duration // lease end from now; 0: none
		want               bool
	}{
		{"queued-long-ago", oncall.DeliveryQueued, time.Hour, 0, true},
		{"queued-just-now", oncall.DeliveryQueued, time.Second, 0, false},
		{"sending-lease-long-over", oncall.DeliverySending, time.Hour, -time.Hour, true},
		{"sending-lease-running", oncall.DeliverySending, time.Hour, time.Minute, false},
		{"sending-lease-just-over", oncall.DeliverySending, time.Hour, -time.Second, false},
		{"sent", oncall.DeliverySent, time.Hour, 0, false},
		{"pending", oncall.DeliveryPending, 0, 0, false},
	}
	var want []string
	for _, r := range rows {
		d := plan(id, 0, 0, r.person, oncall.NotifySlack, now)
		d.Status = r.status
		did := addDelivery(t, db, d)
		var lease *time.Time
		if r.leaseIn != 0 {
			l := now.Add(r.leaseIn)
			lease = &l
		}
		var queued *time.Time
		if r.queuedAgo != 0 {
			q := now.Add(-r.queuedAgo)
			queued = &q
		}
		if _, err := db.pool.Exec(ctx, `UPDATE deliveries SET queued_at = $2, lease_until = $3 WHERE id = $1`,
			did, queued, lease); err != nil {
			t.Fatal(err)
		}
		if r.want {
			want = append(want, d.Key)
		}
	}
	requeue := func() []string {
		var got []string
		n, err := db.RequeueStuckDeliveries(ctx, 5*time.Minute, 10, func(_ context.Context, ds []oncall.Delivery) error {
			for _, d := range ds {
				got = append(got, d.Key)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != len(got) {
			t.Errorf("requeued %d, published %d", n, len(got))
		}
		slices.Sort(got)
		return got
	}
	slices.Sort(want)
	if got := requeue(); !slices.Equal(got, want) {
		t.Errorf("requeued %q, want %q", got, want)
	}
	if got := requeue(); len(got) != 0 {
		t.Errorf("requeued again at once: %q, want nothing (their queued_at moved on)", got)
	}
}

func TestProviderIDTaken(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	id := openEscIncident(t, db, "g")
	a := addDelivery(t, db, plan(id, 0, 0, "alice", oncall.NotifySMS, time.Now()))
	b := addDelivery(t, db, plan(id, 2, 0, "alice", oncall.NotifySMS, time.Now()))
	if _, err := db.pool.Exec(ctx, `UPDATE deliveries SET provider_id = 'SM1' WHERE id = $1`, a); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		sid  string
		of   int64
		want bool
	}{{"SM1", b, true}, {"SM1", a, false}, {"SM2", b, false}} {
		got, err := db.ProviderIDTaken(ctx, tt.sid, tt.of)
		if err != nil || got != tt.want {
			t.Errorf("ProviderIDTaken(%s, %d) = %v, %v; want %v", tt.sid, tt.of, got, err, tt.want)
		}
	}
}

// A triggered incident whose chain was left stopped with nothing due (a
// lost restart) runs again; acknowledged and resolved ones, a chain
// stopped just now, and one waiting for its acknowledgement to time out are
// left alone.
func TestRepairEscalations(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	start := func(group string) int64 {
		id := openEscIncident(t, db, group)
		if _, err := db.StartEscalation(ctx, id, "default", escT0); err != nil {
			t.Fatal(err)
		}
		return id
	}
	stop := func(id int64, wake time.Time, ago time.Duration) {
		if _, err := db.StopEscalation(ctx, id, wake); err != nil {
			t.Fatal(err)
		}
		if _, err := db.pool.Exec(ctx, `UPDATE incident_escalations SET updated_at = now() - $2::interval
			WHERE incident_id = $1`, id, ago); err != nil {
			t.Fatal(err)
		}
	}
	lost := start("lost-restart") // unacknowledged; the restart never came
	stop(lost, time.Time{}, time.Hour)
	recent := start("recent") // its restart may still be on its way
	stop(recent, time.Time{}, time.Second)
	acked := start("acked")
	act(t, db, acked, oncall.ActionAcknowledge)
	stop(acked, time.Time{}, time.Hour)
	timeout := start("ack-timeout") // triggered, and due anyway
	stop(timeout, escT0.Add(time.Hour), time.Hour)
	running := start("running")

	at := escT0.Add(2 * time.Hour)
	ids, err := db.RepairEscalations(ctx, at, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []int64{lost}) {
		t.Errorf("repaired %v, want [%d]", ids, lost)
	}
	esc, err := db.Escalation(ctx, lost)
	if err != nil {
		t.Fatal(err)
	}
	if esc.State != EscalationRunning || esc.Step != 0 || esc.Repeat != 1 || esc.BaseRepeat != 1 ||
		!esc.NextRunAt.Equal(at) {
		t.Errorf("repaired escalation %+v; want running from step 0 as a new run, due %s", esc, at)
	}
	for _, id := range []int64{recent, acked, timeout, running} {
		before, _ := db.Escalation(ctx, id)
		if before.Repeat != 0 {
			t.Errorf("incident %d: repeat %d, want 0 (left alone)", id, before.Repeat)
		}
	}
}

// A restart of a chain that is running already (the engine restarted it
// as someone unacknowledged) changes nothing: a second run would page
// everyone twice.
func TestRestartLeavesARunningChain(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	id := openEscIncident(t, db, "g")
	if _, err := db.StartEscalation(ctx, id, "default", escT0); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.RestartEscalation(ctx, id, escT0.Add(time.Minute)); err != nil || ok {
		t.Errorf("restart of a running chain: %v, %v; want false, nil", ok, err)
	}
	if _, err := db.StopEscalation(ctx, id, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if ok, err := db.RestartEscalation(ctx, id, escT0.Add(time.Minute)); err != nil || !ok {
		t.Errorf("restart of a stopped chain: %v, %v; want true, nil", ok, err)
	}
	esc, _ := db.Escalation(ctx, id)
	if esc.Repeat != 1 || esc.State != EscalationRunning {
		t.Errorf("after the restart: %+v, want running at repeat 1", esc)
	}
}
