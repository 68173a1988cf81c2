package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
)

// record records a batch that must be accepted.
func record(t *testing.T, db *DB, b oncall.AlertBatch) RecordResult {
	t.Helper()
	res, err := db.RecordBatch(t.Context(), b)
	if err != nil {
		t.Fatalf("batch %s: %v", b.ID, err)
	}
	return res
}

// sourceBatch is what a source sends to act on the open incident of a
// group of prom: no alerts, only an action and/or a note.
func sourceBatch(id, group string, a oncall.Action, note string, at time.Time) oncall.AlertBatch {
	b := batch(id, "prom", group, oncall.AlertFiring, oncall.SeverityWarning)
	b.Action, b.Note, b.ReceivedAt = a, note, at
	return b
}

// heartbeat is a heartbeat batch of integration, as ingest makes it.
func heartbeat(id, integration string, at time.Time) oncall.AlertBatch {
	b := oncall.HeartbeatBatch(integration)
	b.ID, b.Kind, b.ReceivedAt = id, "webhook", at
	return b
}

func outcomeOf(t *testing.T, db *DB, batchID string) oncall.BatchOutcome {
	t.Helper()
	o, err := db.BatchOutcome(t.Context(), batchID)
	if err != nil {
		t.Fatalf("outcome of %s: %v", batchID, err)
	}
	return o
}

// lastEvent returns the latest event of an incident.
func lastEvent(t *testing.T, db *DB, incidentID int64) oncall.Event {
	t.Helper()
	evs, err := db.Events(t.Context(), incidentID)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		t.Fatalf("incident %d has no events", incidentID)
	}
	return evs[len(evs)-1]
}

func deliveryStatuses(t *testing.T, db *DB, ids ...int64) []oncall.DeliveryStatus {
	t.Helper()
	var out []oncall.DeliveryStatus
	for _, id := range ids {
		out = append(out, getDelivery(t, db, id).Status)
	}
	return out
}

func TestRecordBatchSourceAction(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	opened := record(t, db, batch("open", "prom", "g", oncall.AlertFiring, oncall.SeverityError, alert("a", oncall.AlertFiring)))
	id := opened.IncidentID
	pending := addDelivery(t, db, plan(id, 0, 0, "UBOB", oncall.NotifySMS, received.Add(5*time.Minute)))
	queued := plan(id, 0, 0, "UBOB", oncall.NotifySlack, received)
	queued.Status = oncall.DeliveryQueued
	queuedID := addDelivery(t, db, queued)

	// The source acknowledges: the chain stops and its pages are cancelled.
	if got := record(t, db, sourceBatch("ack-1", "g", oncall.ActionAcknowledge, "", received.Add(time.Minute))); got != (RecordResult{IncidentID: id}) {
		t.Errorf("acknowledge: %+v, want it applied to incident %d", got, id)
	}
	inc, err := db.Incident(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Status != oncall.StatusAcknowledged || inc.AckedBy != oncall.ActorSource || inc.AckedAt.IsZero() ||
		inc.AlertCount != 1 || inc.Title != "title of open" {
		t.Errorf("after the source's acknowledge: %s by %q at %s, %d alerts, title %q; "+
			"want acknowledged by the source, 1 alert, title of open", inc.Status, inc.AckedBy, inc.AckedAt, inc.AlertCount, inc.Title)
	}
	if ev := lastEvent(t, db, id); ev.Kind != oncall.EventAcknowledged || ev.Actor != oncall.ActorSource {
		t.Errorf("last event %s by %q, want acknowledged by the source", ev.Kind, ev.Actor)
	}
	esc, err := db.Escalation(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if esc.State != EscalationStopped || !esc.NextRunAt.IsZero() {
		t.Errorf("escalation after the acknowledge: %s due %s, want stopped, nothing due", esc.State, esc.NextRunAt)
	}
	want := []oncall.DeliveryStatus{oncall.DeliveryCancelled, oncall.DeliveryCancelled}
	if got := deliveryStatuses(t, db, pending, queuedID); !slices.Equal(got, want) {
		t.Errorf("pending and queued pages after the acknowledge: %v, want %v", got, want)
	}
	if o := outcomeOf(t, db, "ack-1"); o.Action != "acknowledged" || o.IncidentID != id {
		t.Errorf("outcome of the acknowledge: %+v", o)
	}

	// Acknowledged again: nothing changes.
	events := len(eventKinds(t, db, id))
	record(t, db, sourceBatch("ack-2", "g", oncall.ActionAcknowledge, "", received.Add(2*time.Minute)))
	if o := outcomeOf(t, db, "ack-2"); o.Action != "unchanged" || o.IncidentID != id {
		t.Errorf("outcome of a second acknowledge: %+v, want unchanged on incident %d", o, id)
	}
	if n := len(eventKinds(t, db, id)); n != events {
		t.Errorf("a second acknowledge added %d events", n-events)
	}

	// Unacknowledged: triggered again, the chain runs from its first step
	// as a new repeat, due when the batch was received.
	unackAt := received.Add(3 * time.Minute)
	record(t, db, sourceBatch("unack-1", "g", oncall.ActionUnacknowledge, "", unackAt))
	if inc, err = db.Incident(ctx, id); err != nil {
		t.Fatal(err)
	}
	if inc.Status != oncall.StatusTriggered || !inc.AckedAt.IsZero() || inc.AckedBy != "" {
		t.Errorf("after the source's unacknowledge: %s, acked by %q at %s; want triggered, not acked",
			inc.Status, inc.AckedBy, inc.AckedAt)
	}
	if ev := lastEvent(t, db, id); ev.Kind != oncall.EventUnacknowledged || ev.Actor != oncall.ActorSource {
		t.Errorf("last event %s by %q, want unacknowledged by the source", ev.Kind, ev.Actor)
	}
	if esc, err = db.Escalation(ctx, id); err != nil {
		t.Fatal(err)
	}
	if esc.State != EscalationRunning || esc.Step != 0 || esc.Repeat != 1 || esc.BaseRepeat != 1 ||
		!esc.NextRunAt.Equal(unackAt) {
		t.Errorf("escalation after the unacknowledge: %+v; want running from step 0 of repeat 1, due %s", esc, unackAt)
	}
	if o := outcomeOf(t, db, "unack-1"); o.Action != "unacknowledged" {
		t.Errorf("outcome of the unacknowledge: %q", o.Action)
	}
	record(t, db, sourceBatch("unack-2", "g", oncall.ActionUnacknowledge, "", received.Add(4*time.Minute)))
	if o := outcomeOf(t, db, "unack-2"); o.Action != "unchanged" {
		t.Errorf("outcome of an unacknowledge of a triggered incident: %q, want unchanged", o.Action)
	}
	if esc2, err := db.Escalation(ctx, id); err != nil || esc2.Repeat != 1 {
		t.Errorf("a second unacknowledge restarted the chain: repeat %d (%v), want 1", esc2.Repeat, err)
	}

	// Nothing open: an action opens nothing.
	resolve := batch("resolve", "prom", "g", oncall.AlertResolved, oncall.SeverityError, alert("a", oncall.AlertResolved))
	resolve.ReceivedAt = received.Add(5 * time.Minute)
	if got := record(t, db, resolve); !got.Resolved {
		t.Fatalf("resolve: %+v", got)
	}
	for _, b := range []oncall.AlertBatch{
		sourceBatch("ack-resolved", "g", oncall.ActionAcknowledge, "", received.Add(10*time.Minute)),
		sourceBatch("ack-absent", "absent", oncall.ActionAcknowledge, "", received.Add(10*time.Minute)),
		sourceBatch("unack-absent", "absent", oncall.ActionUnacknowledge, "", received.Add(10*time.Minute)),
	} {
		if got := record(t, db, b); got != (RecordResult{}) {
			t.Errorf("%s: %+v, want no incident", b.ID, got)
		}
		if o := outcomeOf(t, db, b.ID); o.Action != "no_incident" || o.IncidentID != 0 {
			t.Errorf("outcome of %s: %+v, want no_incident", b.ID, o)
		}
	}
	if n := scalar[int](t, db, `SELECT count(*) FROM incidents`); n != 1 {
		t.Errorf("%d incidents, want 1: a source's action opened one", n)
	}

	// An action a source cannot take is refused whole.
	batches := scalar[int](t, db, `SELECT count(*) FROM alert_batches`)
	for _, a := range []oncall.Action{oncall.ActionResolve, oncall.ActionEscalate, "snooze"} {
		b := sourceBatch("bad-"+string(a), "g", a, "", received)
		if _, err := db.RecordBatch(ctx, b); err == nil {
			t.Errorf("batch with action %q was accepted", a)
		}
		if _, err := db.BatchOutcome(ctx, b.ID); !errors.Is(err, oncall.ErrNotFound) {
			t.Errorf("outcome of the refused batch with action %q: %v, want ErrNotFound", a, err)
		}
	}
	if n := scalar[int](t, db, `SELECT count(*) FROM alert_batches`); n != batches {
		t.Errorf("refused batches left %d rows", n-batches)
	}
}

func TestRecordBatchNote(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()

	// No incident open: a note alone opens none.
	if got := record(t, db, sourceBatch("note-0", "g", "", "nobody listens", received)); got != (RecordResult{}) {
		t.Errorf("note without an open incident: %+v, want no incident", got)
	}
	if o := outcomeOf(t, db, "note-0"); o.Action != "no_incident" {
		t.Errorf("outcome of a note without an open incident: %q, want no_incident", o.Action)
	}
	if n := scalar[int](t, db, `SELECT count(*) FROM incidents`); n != 0 {
		t.Fatalf("a note opened %d incidents", n)
	}

	id := record(t, db, batch("open", "prom", "g", oncall.AlertFiring, oncall.SeverityError, alert("a", oncall.AlertFiring))).IncidentID
	got := record(t, db, sourceBatch("note-1", "g", "", "restarted the pod", received.Add(time.Minute)))
	if got != (RecordResult{IncidentID: id}) {
		t.Errorf("note: %+v, want it on incident %d", got, id)
	}
	ev := lastEvent(t, db, id)
	if ev.Kind != oncall.EventNote || ev.Actor != oncall.ActorSource || ev.Note != "restarted the pod" {
		t.Errorf("last event: %s by %q %q, want the source's note", ev.Kind, ev.Actor, ev.Note)
	}
	inc, err := db.Incident(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Status != oncall.StatusTriggered || inc.AlertCount != 1 || inc.Title != "title of open" {
		t.Errorf("after a note: %s with %d alerts, title %q; want it as it was", inc.Status, inc.AlertCount, inc.Title)
	}
	if o := outcomeOf(t, db, "note-1"); o.Action != "noted" || o.IncidentID != id {
		t.Errorf("outcome of the note: %+v, want noted on %d", o, id)
	}

	// A note on a batch of alerts: the alerts join, then the note.
	b := batch("alert-note", "prom", "g", oncall.AlertFiring, oncall.SeverityError, alert("b", oncall.AlertFiring))
	b.Note, b.ReceivedAt = "template title failed", received.Add(2*time.Minute)
	record(t, db, b)
	wantKinds := []oncall.EventKind{oncall.EventCreated, oncall.EventNote, oncall.EventAlert, oncall.EventNote}
	if kinds := eventKinds(t, db, id); !slices.Equal(kinds, wantKinds) {
		t.Errorf("events %v, want %v", kinds, wantKinds)
	}
	if ev := lastEvent(t, db, id); ev.Note != "template title failed" {
		t.Errorf("last note %q, want the batch's", ev.Note)
	}
	if inc, err = db.Incident(ctx, id); err != nil || inc.AlertCount != 2 || inc.Firing != 2 {
		t.Errorf("after a batch with a note: %d alerts, %d firing (%v); want 2, 2", inc.AlertCount, inc.Firing, err)
	}
	if o := outcomeOf(t, db, "alert-note"); o.Action != "joined" {
		t.Errorf("outcome of alerts with a note: %q, want joined", o.Action)
	}

	// A note on the batch that opens an incident follows its created event.
	b = batch("new-note", "prom", "other", oncall.AlertFiring, oncall.SeverityError, alert("c", oncall.AlertFiring))
	b.Note = "raw payload kept"
	other := record(t, db, b).IncidentID
	if kinds := eventKinds(t, db, other); !slices.Equal(kinds, []oncall.EventKind{oncall.EventCreated, oncall.EventNote}) {
		t.Errorf("events of an incident opened with a note: %v", kinds)
	}
}

func TestRecordBatchHeartbeat(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	last := func() map[string]time.Time {
		t.Helper()
		hb, err := db.LastHeartbeats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return hb
	}
	if hb := last(); len(hb) != 0 {
		t.Errorf("heartbeats of a new database: %v", hb)
	}

	if got := record(t, db, heartbeat("hb-1", "hook", received)); got != (RecordResult{}) {
		t.Errorf("heartbeat with nothing open: %+v, want no incident", got)
	}
	if o := outcomeOf(t, db, "hb-1"); o.Action != "heartbeat" || o.GroupKey != oncall.HeartbeatGroupKey {
		t.Errorf("outcome of a heartbeat: %+v", o)
	}
	if hb := last(); len(hb) != 1 || !hb["hook"].Equal(received) {
		t.Errorf("heartbeats %v, want hook at %s", hb, received)
	}
	// One delivered late does not move the last heartbeat back.
	record(t, db, heartbeat("hb-0", "hook", received.Add(-time.Minute)))
	if hb := last(); !hb["hook"].Equal(received) {
		t.Errorf("after a late heartbeat: hook at %s, want %s", hb["hook"], received)
	}

	// A missed heartbeat opened an incident; the next heartbeat resolves it.
	missed := oncall.AlertBatch{
		ID: "missed", Integration: "hook", Kind: "webhook", ReceivedAt: received.Add(10 * time.Minute),
		GroupKey: oncall.HeartbeatGroupKey, Status: oncall.AlertFiring, Title: "No heartbeat from hook",
		Severity: oncall.SeverityCritical,
		Alerts: []oncall.Alert{{Fingerprint: oncall.HeartbeatGroupKey, Status: oncall.AlertFiring,
			Title: "No heartbeat from hook"}},
	}
	id := record(t, db, missed).IncidentID
	if id == 0 {
		t.Fatal("the missed heartbeat opened no incident")
	}
	at := received.Add(11 * time.Minute)
	if got := record(t, db, heartbeat("hb-2", "hook", at)); got != (RecordResult{IncidentID: id, Resolved: true}) {
		t.Errorf("heartbeat with a missed-heartbeat incident open: %+v, want it resolved", got)
	}
	inc, err := db.Incident(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Status != oncall.StatusResolved || inc.ResolvedBy != oncall.ActorSource {
		t.Errorf("missed-heartbeat incident after a heartbeat: %s by %q, want resolved by the source", inc.Status, inc.ResolvedBy)
	}
	if o := outcomeOf(t, db, "hb-2"); o.Action != "resolved" || o.IncidentID != id {
		t.Errorf("outcome of the resolving heartbeat: %+v", o)
	}
	if hb := last(); len(hb) != 1 || !hb["hook"].Equal(at) {
		t.Errorf("heartbeats %v, want only hook at %s", hb, at)
	}

	// Heartbeats are per integration.
	record(t, db, heartbeat("prom-1", "prom", at.Add(time.Minute)))
	if hb := last(); len(hb) != 2 || !hb["prom"].Equal(at.Add(time.Minute)) || !hb["hook"].Equal(at) {
		t.Errorf("heartbeats %v, want hook at %s and prom a minute later", hb, at)
	}
}

func TestRecordBatchMaintenance(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	// open records a batch of prom, whose chain is "default", and
	// reports whether its new incident got a chain and a maintenance note.
	open := func(group string, maintenance bool) (chain, note bool) {
		t.Helper()
		b := batch("b-"+group, "prom", group, oncall.AlertFiring, oncall.SeverityCritical, alert("a", oncall.AlertFiring))
		b.Maintenance = maintenance
		res := record(t, db, b)
		if !res.Created {
			t.Fatalf("batch of group %s: %+v, want a new incident", group, res)
		}
		_, escErr := db.Escalation(ctx, res.IncidentID)
		if escErr != nil && !errors.Is(escErr, oncall.ErrNotFound) {
			t.Fatal(escErr)
		}
		evs, err := db.Events(ctx, res.IncidentID)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Kind == oncall.EventNote && ev.Actor == oncall.ActorSystem && ev.Note != "" {
				note = true
			}
		}
		return escErr == nil, note
	}

	if chain, note := open("config-window", true); chain || !note {
		t.Errorf("batch marked in maintenance: chain %v, note %v; want no chain, a note", chain, note)
	}

	now := time.Now()
	if err := db.StartMaintenance(ctx, "prom", now.Add(time.Hour), oncall.SlackActor("U1")); err != nil {
		t.Fatal(err)
	}
	ws, err := db.Maintenance(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].Integration != "prom" || ws[0].StartedBy != oncall.SlackActor("U1") ||
		ws[0].Until.Sub(now.Add(time.Hour)).Abs() > time.Millisecond {
		t.Errorf("maintenance windows %+v, want prom's for an hour by slack:U1", ws)
	}
	if chain, note := open("slack-window", false); chain || !note {
		t.Errorf("batch in a window started from Slack: chain %v, note %v; want no chain, a note", chain, note)
	}
	if ws, err := db.Maintenance(ctx, now.Add(2*time.Hour)); err != nil || len(ws) != 0 {
		t.Errorf("maintenance windows after the end: %+v (%v), want none", ws, err)
	}

	// A time in the past ends the window.
	if err := db.StartMaintenance(ctx, "prom", now.Add(-time.Minute), oncall.SlackActor("U2")); err != nil {
		t.Fatal(err)
	}
	if chain, note := open("after-window", false); !chain || note {
		t.Errorf("batch after the window: chain %v, note %v; want a chain, no note", chain, note)
	}
	if ws, err := db.Maintenance(ctx, time.Now()); err != nil || len(ws) != 0 {
		t.Errorf("maintenance windows after it ended: %+v (%v), want none", ws, err)
	}
	if err := db.StartMaintenance(ctx, "prom\x00", now, oncall.ActorSystem); !errors.Is(err, ErrInvalidText) {
		t.Errorf("maintenance of an invalid name: %v, want ErrInvalidText", err)
	}
}

func TestBatchOutcome(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	const (
		F = oncall.AlertFiring
		R = oncall.AlertResolved
	)
	at := func(minutes int, b oncall.AlertBatch) oncall.AlertBatch {
		b.ReceivedAt = received.Add(time.Duration(minutes) * time.Minute)
		return b
	}
	steps := []struct {
		batch    oncall.AlertBatch
		action   string
		incident bool // touched the incident of group g
	}{
		{at(0, batch("created", "prom", "g", F, oncall.SeverityError, alert("a", F))), "created", true},
		{at(1, batch("joined", "prom", "g", F, oncall.SeverityError, alert("a", F))), "joined", true},
		{sourceBatch("acknowledged", "g", oncall.ActionAcknowledge, "", received.Add(2*time.Minute)), "acknowledged", true},
		{sourceBatch("noted", "g", "", "a note", received.Add(3*time.Minute)), "noted", true},
		{at(4, batch("resolved", "prom", "g", R, oncall.SeverityError, alert("a", R))), "resolved", true},
		{at(5, batch("no_incident", "prom", "g", R, oncall.SeverityError, alert("a", R))), "no_incident", false},
		// Received before the resolve above: it opens nothing.
		{at(3, batch("stale", "prom", "g", F, oncall.SeverityError, alert("a", F))), "stale", false},
		{heartbeat("heartbeat", "hook", received), "heartbeat", false},
		// A duplicate keeps what the batch did the first time.
		{at(0, batch("created", "prom", "g", F, oncall.SeverityError, alert("a", F))), "created", true},
	}
	var incident int64
	for _, s := range steps {
		res := record(t, db, s.batch)
		if s.batch.ID == "created" && incident == 0 {
			incident = res.IncidentID
		}
		o, err := db.BatchOutcome(ctx, s.batch.ID)
		if err != nil {
			t.Fatalf("%s: %v", s.batch.ID, err)
		}
		want := oncall.BatchOutcome{Processed: true, GroupKey: s.batch.GroupKey, Action: s.action,
			ProcessedAt: o.ProcessedAt}
		if s.incident {
			want.IncidentID = incident
		}
		if o != want || o.ProcessedAt.IsZero() {
			t.Errorf("%s: outcome %+v, want %+v processed at some time", s.batch.ID, o, want)
		}
	}
	if o, err := db.BatchOutcome(ctx, "never-seen"); !errors.Is(err, oncall.ErrNotFound) || o.Processed {
		t.Errorf("outcome of an unknown batch: %+v, %v; want ErrNotFound", o, err)
	}
}

func TestSilence(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	alice := oncall.SlackActor("UALICE")
	id := openEscIncident(t, db, "s")
	if _, err := db.StartEscalation(ctx, id, "default", escT0); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i, st := range []oncall.DeliveryStatus{oncall.DeliveryPending, oncall.DeliveryQueued, oncall.DeliverySending,
		oncall.DeliverySent} {
		d := plan(id, 0, 0, fmt.Sprintf("U%d", i), oncall.NotifySMS, escT0)
		d.Status = st
		ids = append(ids, addDelivery(t, db, d))
	}
	escalation := func() EscalationState {
		t.Helper()
		esc, err := db.Escalation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return esc
	}
	count := func(kind oncall.EventKind) int {
		t.Helper()
		return scalar[int](t, db, `SELECT count(*) FROM incident_events WHERE incident_id = $1 AND kind = $2`, id, kind)
	}

	until := escT0.Add(time.Hour)
	inc, changed, err := db.Silence(ctx, id, until, alice, "silence-1")
	if err != nil || !changed {
		t.Fatalf("silence: changed %v, %v", changed, err)
	}
	if !inc.SilencedUntil.Equal(until) || !inc.Silenced(escT0) || inc.Silenced(until) {
		t.Errorf("silenced until %s, want %s", inc.SilencedUntil, until)
	}
	if ev := lastEvent(t, db, id); ev.Kind != oncall.EventSilenced || ev.Actor != alice ||
		ev.Note != "until 2026-03-02T11:00:00Z" {
		t.Errorf("last event %s by %q %q, want silenced by alice until 11:00", ev.Kind, ev.Actor, ev.Note)
	}
	want := []oncall.DeliveryStatus{oncall.DeliveryCancelled, oncall.DeliveryCancelled, oncall.DeliverySending,
		oncall.DeliverySent}
	if got := deliveryStatuses(t, db, ids...); !slices.Equal(got, want) {
		t.Errorf("pages after the silence: %v, want %v (what is on its way stays)", got, want)
	}
	// The chain keeps its due time: a step due meanwhile is postponed by
	// the engine, one due after the silence is not brought forward.
	if esc := escalation(); esc.State != EscalationRunning || esc.Step != 0 || !esc.NextRunAt.Equal(escT0) {
		t.Errorf("escalation: %s at step %d due %s, want running at step 0 due %s (unchanged)", esc.State, esc.Step,
			esc.NextRunAt, escT0)
	}

	// The same request again changes nothing.
	if inc, changed, err := db.Silence(ctx, id, until.Add(time.Hour), alice, "silence-1"); err != nil || changed ||
		!inc.SilencedUntil.Equal(until) {
		t.Errorf("repeated silence: changed %v, until %s (%v); want unchanged", changed, inc.SilencedUntil, err)
	}
	if n := count(oncall.EventSilenced); n != 1 {
		t.Errorf("%d silenced events, want 1", n)
	}

	// Until resolved: the engine will find the step silenced, and leave
	// nothing due until it is unsilenced.
	if inc, changed, err = db.Silence(ctx, id, oncall.UntilResolved, alice, "silence-2"); err != nil || !changed {
		t.Fatalf("silence until resolved: changed %v, %v", changed, err)
	}
	if !inc.SilencedUntil.Equal(oncall.UntilResolved) || !inc.Silenced(escT0.AddDate(100, 0, 0)) {
		t.Errorf("silenced until %s, want until resolved", inc.SilencedUntil)
	}
	if ev := lastEvent(t, db, id); ev.Note != "until resolved" {
		t.Errorf("silence event note %q, want until resolved", ev.Note)
	}
	if esc := escalation(); esc.State != EscalationRunning || !esc.NextRunAt.Equal(escT0) {
		t.Errorf("escalation silenced until resolved: %s due %s, want running, due unchanged", esc.State, esc.NextRunAt)
	}

	// Unsilenced: the chain is due now.
	if inc, changed, err = db.Unsilence(ctx, id, alice, "unsilence-1"); err != nil || !changed {
		t.Fatalf("unsilence: changed %v, %v", changed, err)
	}
	if !inc.SilencedUntil.IsZero() || inc.Silenced(escT0) {
		t.Errorf("after unsilence: silenced until %s, want not silenced", inc.SilencedUntil)
	}
	if ev := lastEvent(t, db, id); ev.Kind != oncall.EventUnsilenced || ev.Actor != alice {
		t.Errorf("last event %s by %q, want unsilenced by alice", ev.Kind, ev.Actor)
	}
	if esc := escalation(); esc.State != EscalationRunning || esc.Step != 0 || esc.NextRunAt.IsZero() ||
		esc.NextRunAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("escalation after unsilence: %s at step %d due %s, want running at step 0, due now",
			esc.State, esc.Step, esc.NextRunAt)
	}
	// Not silenced: unsilencing changes nothing.
	if _, changed, err = db.Unsilence(ctx, id, alice, "unsilence-2"); err != nil || changed {
		t.Errorf("unsilence of an incident not silenced: changed %v, %v; want unchanged", changed, err)
	}
	if n := count(oncall.EventUnsilenced); n != 1 {
		t.Errorf("%d unsilenced events, want 1", n)
	}

	// Resolved: nothing to silence.
	act(t, db, id, oncall.ActionResolve)
	if inc, changed, err = db.Silence(ctx, id, until, alice, "silence-3"); err != nil || changed || !inc.SilencedUntil.IsZero() {
		t.Errorf("silence of a resolved incident: changed %v, until %s (%v); want unchanged", changed, inc.SilencedUntil, err)
	}
	if n := count(oncall.EventSilenced); n != 2 {
		t.Errorf("%d silenced events, want 2", n)
	}

	if _, _, err := db.Silence(ctx, 99999, until, alice, ""); !errors.Is(err, oncall.ErrNotFound) {
		t.Errorf("silence of a missing incident: %v, want ErrNotFound", err)
	}
	if _, _, err := db.Unsilence(ctx, 99999, alice, ""); !errors.Is(err, oncall.ErrNotFound) {
		t.Errorf("unsilence of a missing incident: %v, want ErrNotFound", err)
	}
	if _, _, err := db.Silence(ctx, id, until, oncall.Actor("slack:\x00"), ""); !errors.Is(err, ErrInvalidText) {
		t.Errorf("silence by an invalid actor: %v, want ErrInvalidText", err)
	}
}

// TestDeliveriesOfSilencedIncidents: pages planned while an incident is
// silenced wait in pending until the silence ends; one taken by a worker
// meanwhile is cancelled.
func TestDeliveriesOfSilencedIncidents(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	until := escT0.Add(time.Hour)
	silenced := func(group string, until time.Time) int64 {
		t.Helper()
		id := openEscIncident(t, db, group)
		if _, changed, err := db.Silence(ctx, id, until, oncall.SlackActor("U1"), ""); err != nil || !changed {
			t.Fatalf("silence: changed %v, %v", changed, err)
		}
		return id
	}
	var (
		loud    = plan(openEscIncident(t, db, "loud"), 0, 0, "UBOB", oncall.NotifySlack, escT0)
		quiet   = plan(silenced("quiet", until), 0, 0, "UBOB", oncall.NotifySlack, escT0)
		forever = plan(silenced("forever", oncall.UntilResolved), 0, 0, "UBOB", oncall.NotifySlack, escT0)
	)
	for _, d := range []oncall.Delivery{loud, quiet, forever} {
		addDelivery(t, db, d)
	}
	claim := func(now time.Time) []string {
		t.Helper()
		var keys []string
		if _, err := db.ClaimDueDeliveries(ctx, now, 10, func(_ context.Context, ds []oncall.Delivery) error {
			for _, d := range ds {
				keys = append(keys, d.Key)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return keys
	}
	if got := claim(until.Add(-time.Second)); !slices.Equal(got, []string{loud.Key}) {
		t.Errorf("claimed while silenced: %q, want only %q", got, loud.Key)
	}
	if got := scalar[string](t, db, `SELECT status FROM deliveries WHERE key = $1`, quiet.Key); got != "pending" {
		t.Errorf("page of the silenced incident is %s, want pending", got)
	}
	if got := claim(until); !slices.Equal(got, []string{quiet.Key}) {
		t.Errorf("claimed when the silence ends: %q, want %q", got, quiet.Key)
	}
	if got := claim(escT0.AddDate(10, 0, 0)); len(got) != 0 {
		t.Errorf("claimed from an incident silenced until resolved: %q", got)
	}

	// A page a worker takes while its incident is silenced is cancelled.
	id := silenced("taken", until)
	taken := plan(id, 0, 0, "UBOB", oncall.NotifySMS, escT0)
	taken.Status = oncall.DeliveryQueued
	later := plan(id, 0, 0, "UCAROL", oncall.NotifySMS, escT0)
	later.Status = oncall.DeliveryQueued
	takenID, laterID := addDelivery(t, db, taken), addDelivery(t, db, later)
	c, err := db.BeginDelivery(ctx, takenID, until.Add(-time.Second), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c.Step != DeliverySkip || c.Delivery.Status != oncall.DeliveryCancelled {
		t.Errorf("begin while silenced: step %d, %s; want skipped and cancelled", c.Step, c.Delivery.Status)
	}
	if got := getDelivery(t, db, takenID); got.Status != oncall.DeliveryCancelled || got.Attempts != 0 {
		t.Errorf("stored %s after %d attempts, want cancelled, never tried", got.Status, got.Attempts)
	}
	beginSend(t, db, laterID, until) // the silence is over
}

// A group gathering alerts of several fingerprints (a group_key template,
// a shared title) resolves with the last of them: the resolve of one alert
// while another still fires leaves the incident open.
func TestResolveOfOneAlertWhileOthersFire(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	res := record(t, db, batch("fire-a", "hook", "g", oncall.AlertFiring, oncall.SeverityError, alert("a", oncall.AlertFiring)))
	record(t, db, batch("fire-b", "hook", "g", oncall.AlertFiring, oncall.SeverityError, alert("b", oncall.AlertFiring)))

	if r := record(t, db, batch("resolve-a", "hook", "g", oncall.AlertResolved, oncall.SeverityError,
		alert("a", oncall.AlertResolved))); r.Resolved || r.IncidentID != res.IncidentID {
		t.Errorf("resolve of a while b fires: %+v, want the incident joined, not resolved", r)
	}
	inc, err := db.Incident(ctx, res.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Status != oncall.StatusTriggered || inc.Firing != 1 || inc.Resolved != 1 {
		t.Errorf("after a's resolve: %s, %d firing, %d resolved; want triggered, 1 and 1", inc.Status, inc.Firing, inc.Resolved)
	}
	if r := record(t, db, batch("resolve-b", "hook", "g", oncall.AlertResolved, oncall.SeverityError,
		alert("b", oncall.AlertResolved))); !r.Resolved {
		t.Errorf("resolve of the last firing alert: %+v, want resolved", r)
	}
}
