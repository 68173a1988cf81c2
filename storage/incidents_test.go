package storage

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
)

var received = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func alert(fp string, status oncall.AlertStatus) oncall.Alert {
	return oncall.Alert{
		Fingerprint: fp, Status: status, Title: "alert " + fp, Severity: oncall.SeverityWarning,
		Labels: map[string]string{"alertname": fp}, Annotations: map[string]string{"summary": "about " + fp},
		StartsAt: received.Add(-time.Minute),
	}
}

func batch(id, integration, group string, status oncall.AlertStatus, sev oncall.Severity, alerts ...oncall.Alert) oncall.AlertBatch {
	return oncall.AlertBatch{
		ID: id, Integration: integration, Kind: "alertmanager", ReceivedAt: received, GroupKey: group,
		Status: status, Title: "title of " + id, Message: "message of " + id, Severity: sev,
		Link: "https://example.com/" + id, ImageURL: "https://example.com/" + id + ".png",
		Labels: map[string]string{"batch": id}, Alerts: alerts, Raw: []byte(`{"id":"` + id + `"}`),
	}
}

func eventKinds(t *testing.T, db *DB, incidentID int64) []oncall.EventKind {
	t.Helper()
	evs, err := db.Events(t.Context(), incidentID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []oncall.EventKind
	for _, e := range evs {
		kinds = append(kinds, e.Kind)
	}
	return kinds
}

// TestRecordBatch plays a sequence of batches against one database. Incidents
// are named by letter; the steps check which incident each batch went to and
// the state of that incident afterwards.
func TestRecordBatch(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	const (
		F = oncall.AlertFiring
		R = oncall.AlertResolved
	)
	type want struct {
		status          oncall.IncidentStatus
		severity        oncall.Severity
		title           string
		count, fir, res int
	}
	steps := []struct {
		name     string
		batch    oncall.AlertBatch
		incident string // letter of the incident, "" for none
		result   RecordResult
		want     want
	}{
		{"first alert opens", batch("b1", "prom", "g1", F, oncall.SeverityWarning, alert("a", F)),
			"A", RecordResult{Created: true},
			want{oncall.StatusTriggered, oncall.SeverityWarning, "title of b1", 1, 1, 0}},
		{"more alerts join and raise severity", batch("b2", "prom", "g1", F, oncall.SeverityCritical, alert("a", F), alert("b", F)),
			"A", RecordResult{},
			want{oncall.StatusTriggered, oncall.SeverityCritical, "title of b2", 3, 2, 0}},
		{"lower severity keeps the highest", batch("b3", "prom", "g1", F, oncall.SeverityInfo, alert("a", R)),
			"A", RecordResult{},
			want{oncall.StatusTriggered, oncall.SeverityCritical, "title of b3", 4, 1, 1}},
		{"other group opens another", batch("b4", "prom", "g2", F, oncall.SeverityError, alert("c", F)),
			"B", RecordResult{Created: true},
			want{oncall.StatusTriggered, oncall.SeverityError, "title of b4", 1, 1, 0}},
		{"resolved batch resolves", batch("b5", "prom", "g1", R, oncall.SeverityInfo, alert("b", R)),
			"A", RecordResult{Resolved: true},
			want{oncall.StatusResolved, oncall.SeverityCritical, "title of b3", 5, 0, 2}},
		{"resolved with nothing open", batch("b6", "prom", "g1", R, oncall.SeverityInfo, alert("b", R)),
			"", RecordResult{}, want{}},
		{"firing after resolve opens a new one", batch("b7", "prom", "g1", F, oncall.SeverityInfo, alert("a", F)),
			"C", RecordResult{Created: true},
			want{oncall.StatusTriggered, oncall.SeverityInfo, "title of b7", 1, 1, 0}},
		{"same group of another integration is separate", batch("b8", "hook", "g1", F, oncall.SeverityError, alert("a", F)),
			"D", RecordResult{Created: true},
			want{oncall.StatusTriggered, oncall.SeverityError, "title of b8", 1, 1, 0}},
		{"duplicate changes nothing", batch("b2", "prom", "g1", F, oncall.SeverityCritical, alert("a", F), alert("b", F)),
			"A", RecordResult{Duplicate: true},
			want{oncall.StatusResolved, oncall.SeverityCritical, "title of b3", 5, 0, 2}},
		{"duplicate of a batch with no incident", batch("b6", "prom", "g1", R, oncall.SeverityInfo),
			"", RecordResult{Duplicate: true}, want{}},
	}
	ids := map[string]int64{}
	for _, st := range steps {
		got, err := db.RecordBatch(t.Context(), st.batch)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.incident != "" {
			id, seen := ids[st.incident]
			if !seen {
				for letter, other := range ids {
					if other == got.IncidentID {
						t.Fatalf("%s: went to incident %s, want a new one", st.name, letter)
					}
				}
				id = got.IncidentID
				ids[st.incident] = id
			}
			st.result.IncidentID = id
		}
		if got != st.result {
			t.Fatalf("%s: RecordBatch = %+v, want %+v", st.name, got, st.result)
		}
		if st.incident == "" {
			continue
		}
		inc, err := db.Incident(t.Context(), got.IncidentID)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		gotState := want{inc.Status, inc.Severity, inc.Title, inc.AlertCount, inc.Firing, inc.Resolved}
		if gotState != st.want {
			t.Errorf("%s: incident %s = %+v, want %+v", st.name, st.incident, gotState, st.want)
		}
	}

	a, err := db.Incident(t.Context(), ids["A"])
	if err != nil {
		t.Fatal(err)
	}
	if a.Integration != "prom" || a.Kind != "alertmanager" || a.Channel != "C0PROM" || a.Escalation != "default" ||
		a.GroupKey != "g1" || a.Labels["batch"] != "b3" || a.Link != "https://example.com/b3" ||
		a.ResolvedBy != oncall.ActorSource || a.ResolvedAt.IsZero() || !a.AckedAt.IsZero() {
		t.Errorf("incident A = %+v", a)
	}
	if d, _ := db.Incident(t.Context(), ids["D"]); d.Integration != "hook" || d.Kind != "webhook" || d.Escalation != "" {
		t.Errorf("incident D = %+v, want integration hook of kind webhook without escalation", d)
	}
	wantEvents := []oncall.EventKind{oncall.EventCreated, oncall.EventAlert, oncall.EventAlert, oncall.EventResolved}
	if got := eventKinds(t, db, ids["A"]); !slices.Equal(got, wantEvents) {
		t.Errorf("events of A = %v, want %v", got, wantEvents)
	}
	if n := scalar[int](t, db, `SELECT count(*) FROM alerts WHERE incident_id = $1`, ids["A"]); n != 5 {
		t.Errorf("incident A has %d alert rows, want 5", n)
	}
	if n := scalar[int](t, db, `SELECT count(*) FROM alert_batches`); n != 8 {
		t.Errorf("%d batches recorded, want 8", n)
	}
	if raw := scalar[[]byte](t, db, `SELECT raw FROM alert_batches WHERE id = 'b6'`); string(raw) != `{"id":"b6"}` {
		t.Errorf("raw of b6 = %q", raw)
	}
}

// TestRecordBatchConcurrentNewGroup: batches of the same new group from many
// goroutines at once end in one incident that counts every alert.
func TestRecordBatchConcurrentNewGroup(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	const n = 8
	results := make([]RecordResult, n)
	errs := make([]error, n)
	race(t, db, "incidents", n, func(i int) {
		b := batch(fmt.Sprint("c", i), "prom", "busy", oncall.AlertFiring, oncall.SeverityWarning,
			alert(fmt.Sprint("fp", i), oncall.AlertFiring), alert("shared", oncall.AlertFiring))
		results[i], errs[i] = db.RecordBatch(t.Context(), b)
	})
	created := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("batch %d: %v", i, errs[i])
		}
		if results[i].IncidentID != results[0].IncidentID {
			t.Errorf("batch %d went to incident %d, batch 0 to %d", i, results[i].IncidentID, results[0].IncidentID)
		}
		if results[i].Created {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d batches created an incident, want 1", created)
	}
	if got := scalar[int](t, db, `SELECT count(*) FROM incidents`); got != 1 {
		t.Errorf("%d incidents, want 1", got)
	}
	inc, err := db.Incident(t.Context(), results[0].IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	if inc.AlertCount != 2*n || inc.Firing != n+1 || inc.Resolved != 0 {
		t.Errorf("alert count %d, firing %d, resolved %d; want %d, %d, 0", inc.AlertCount, inc.Firing, inc.Resolved, 2*n, n+1)
	}
	kinds := eventKinds(t, db, inc.ID)
	if len(kinds) != n || kinds[0] != oncall.EventCreated || slices.Index(kinds[1:], oncall.EventCreated) >= 0 {
		t.Errorf("events %v, want one created and %d alert", kinds, n-1)
	}
}

// TestRecordBatchConcurrentDuplicates: redeliveries of one batch at once
// record it once.
func TestRecordBatchConcurrentDuplicates(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	const n = 4
	b := batch("again", "prom", "g", oncall.AlertFiring, oncall.SeverityError, alert("a", oncall.AlertFiring))
	results := make([]RecordResult, n)
	errs := make([]error, n)
	race(t, db, "alert_batches", n, func(i int) { results[i], errs[i] = db.RecordBatch(t.Context(), b) })
	duplicates := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if results[i].Duplicate {
			duplicates++
		}
		if results[i].IncidentID != results[0].IncidentID {
			t.Errorf("delivery %d went to incident %d, delivery 0 to %d", i, results[i].IncidentID, results[0].IncidentID)
		}
	}
	if duplicates != n-1 {
		t.Errorf("%d deliveries were duplicates, want %d", duplicates, n-1)
	}
	if got := scalar[int](t, db, `SELECT alert_count FROM incidents`); got != 1 {
		t.Errorf("alert count %d, want 1", got)
	}
}

func TestRecordBatchRejects(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	valid := func() oncall.AlertBatch {
		return batch("bad", "prom", "g", oncall.AlertFiring, oncall.SeverityError, alert("a", oncall.AlertFiring))
	}
	tests := []struct {
		name   string
		modify func(*oncall.AlertBatch)
		is     error // nil: any error
	}{
		{"NUL in title", func(b *oncall.AlertBatch) { b.Title = "a\x00b" }, ErrInvalidText},
		{"invalid UTF-8 in group key", func(b *oncall.AlertBatch) { b.GroupKey = "g\xff" }, ErrInvalidText},
		{"NUL in label value", func(b *oncall.AlertBatch) { b.Labels = map[string]string{"k": "\x00"} }, ErrInvalidText},
		{"invalid UTF-8 in alert annotation key", func(b *oncall.AlertBatch) {
			b.Alerts[0].Annotations = map[string]string{"\xc3": "v"}
		}, ErrInvalidText},
		{"NUL in alert fingerprint", func(b *oncall.AlertBatch) { b.Alerts[0].Fingerprint = "\x00" }, ErrInvalidText},
		{"NUL in kind", func(b *oncall.AlertBatch) { b.Integration, b.Kind = "nope", "web\x00hook" }, ErrInvalidText},
		{"empty id", func(b *oncall.AlertBatch) { b.ID = "" }, nil},
		{"bad batch status", func(b *oncall.AlertBatch) { b.Status = "pending" }, nil},
		{"bad alert status", func(b *oncall.AlertBatch) { b.Alerts[0].Status = "" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := valid()
			tt.modify(&b)
			_, err := db.RecordBatch(t.Context(), b)
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("RecordBatch = %v, want error %v", err, tt.is)
			}
		})
	}
	if n := scalar[int](t, db, `SELECT count(*) FROM alert_batches`); n != 0 {
		t.Errorf("rejected batches left %d rows", n)
	}
	// The valid batch goes through: the rejections were about the changes.
	if _, err := db.RecordBatch(t.Context(), valid()); err != nil {
		t.Errorf("valid batch: %v", err)
	}
}

// newIncident opens an incident in a group of its own.
func newIncident(t *testing.T, db *DB, group string) int64 {
	t.Helper()
	res, err := db.RecordBatch(t.Context(), batch("open-"+group, "prom", group, oncall.AlertFiring,
		oncall.SeverityError, alert("a", oncall.AlertFiring)))
	if err != nil {
		t.Fatal(err)
	}
	return res.IncidentID
}

func TestTransitionRules(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	const (
		ack      = oncall.ActionAcknowledge
		unack    = oncall.ActionUnacknowledge
		resolve  = oncall.ActionResolve
		reopen   = oncall.ActionReopen
		escalate = oncall.ActionEscalate
	)
	alice, bob := oncall.SlackActor("UALICE"), oncall.SlackActor("UBOB")
	tests := []struct {
		name    string
		before  []oncall.Action // by alice, each must change the incident
		action  oncall.Action   // by bob
		changed bool
		status  oncall.IncidentStatus
		ackedBy oncall.Actor
		event   oncall.EventKind // written when changed
	}{
		{"acknowledge triggered", nil, ack, true, oncall.StatusAcknowledged, bob, oncall.EventAcknowledged},
		{"acknowledge twice", []oncall.Action{ack}, ack, false, oncall.StatusAcknowledged, alice, ""},
		{"acknowledge resolved", []oncall.Action{resolve}, ack, false, oncall.StatusResolved, "", ""},
		{"unacknowledge acknowledged", []oncall.Action{ack}, unack, true, oncall.StatusTriggered, "", oncall.EventUnacknowledged},
		{"unacknowledge triggered", nil, unack, false, oncall.StatusTriggered, "", ""},
		{"unacknowledge resolved", []oncall.Action{ack, resolve}, unack, false, oncall.StatusResolved, alice, ""},
		{"resolve triggered", nil, resolve, true, oncall.StatusResolved, "", oncall.EventResolved},
		{"resolve acknowledged keeps who acked", []oncall.Action{ack}, resolve, true, oncall.StatusResolved, alice, oncall.EventResolved},
		{"resolve resolved", []oncall.Action{resolve}, resolve, false, oncall.StatusResolved, "", ""},
		{"reopen resolved", []oncall.Action{ack, resolve}, reopen, true, oncall.StatusTriggered, "", oncall.EventReopened},
		{"reopen triggered", nil, reopen, false, oncall.StatusTriggered, "", ""},
		{"reopen acknowledged", []oncall.Action{ack}, reopen, false, oncall.StatusAcknowledged, alice, ""},
		{"escalate triggered", nil, escalate, true, oncall.StatusTriggered, "", oncall.EventEscalated},
		{"escalate acknowledged", []oncall.Action{ack}, escalate, true, oncall.StatusAcknowledged, alice, oncall.EventEscalated},
		{"escalate resolved", []oncall.Action{resolve}, escalate, false, oncall.StatusResolved, "", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newIncident(t, db, fmt.Sprint("rules-", i))
			for _, a := range tt.before {
				if _, changed, err := db.Transition(t.Context(), id, a, alice, ""); err != nil || !changed {
					t.Fatalf("setup %s: changed %v, %v", a, changed, err)
				}
			}
			eventsBefore := eventKinds(t, db, id)

			inc, changed, err := db.Transition(t.Context(), id, tt.action, bob, "")
			if err != nil {
				t.Fatal(err)
			}
			if changed != tt.changed || inc.Status != tt.status || inc.AckedBy != tt.ackedBy {
				t.Errorf("changed %v, status %s, acked by %q; want %v, %s, %q",
					changed, inc.Status, inc.AckedBy, tt.changed, tt.status, tt.ackedBy)
			}
			if (inc.AckedBy != "") == inc.AckedAt.IsZero() {
				t.Errorf("acked by %q at %v: both or neither", inc.AckedBy, inc.AckedAt)
			}
			if (inc.Status == oncall.StatusResolved) == inc.ResolvedAt.IsZero() {
				t.Errorf("status %s with resolved at %v", inc.Status, inc.ResolvedAt)
			}
			if tt.action == resolve && changed && inc.ResolvedBy != bob {
				t.Errorf("resolved by %q, want %q", inc.ResolvedBy, bob)
			}
			want := eventsBefore
			if tt.changed {
				want = append(slices.Clone(eventsBefore), tt.event)
			}
			if got := eventKinds(t, db, id); !slices.Equal(got, want) {
				t.Errorf("events %v, want %v", got, want)
			}
			if stored, err := db.Incident(t.Context(), id); err != nil || stored.Status != inc.Status {
				t.Errorf("stored status %s (%v), returned %s", stored.Status, err, inc.Status)
			}
			wantEscalations := 0
			if tt.action == escalate && tt.changed {
				wantEscalations = 1
			}
			if inc.Escalations != wantEscalations {
				t.Errorf("%d escalations, want %d", inc.Escalations, wantEscalations)
			}
		})
	}

	if _, _, err := db.Transition(t.Context(), 1<<40, ack, bob, ""); !errors.Is(err, oncall.ErrNotFound) {
		t.Errorf("Transition of a missing incident: %v, want ErrNotFound", err)
	}
	if _, err := db.Incident(t.Context(), 1<<40); !errors.Is(err, oncall.ErrNotFound) {
		t.Errorf("Incident of a missing incident: %v, want ErrNotFound", err)
	}
	if _, _, err := db.Transition(t.Context(), 1, "snooze", bob, ""); err == nil {
		t.Error("Transition accepted an unknown action")
	}
	if _, _, err := db.Transition(t.Context(), 1, ack, "slack:\x00", ""); !errors.Is(err, ErrInvalidText) {
		t.Errorf("Transition with a NUL in the actor: %v, want ErrInvalidText", err)
	}
}

func TestTransitionIdempotencyKey(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	bob := oncall.SlackActor("UBOB")
	id := newIncident(t, db, "keys")
	other := newIncident(t, db, "other")

	steps := []struct {
		id      int64
		action  oncall.Action
		key     string
		changed bool
		status  oncall.IncidentStatus
	}{
		{id, oncall.ActionAcknowledge, "click-1", true, oncall.StatusAcknowledged},
		{id, oncall.ActionUnacknowledge, "click-2", true, oncall.StatusTriggered},
		{id, oncall.ActionAcknowledge, "click-1", false, oncall.StatusTriggered}, // retried delivery of click-1
		{id, oncall.ActionAcknowledge, "click-3", true, oncall.StatusAcknowledged},
		{other, oncall.ActionAcknowledge, "click-3", false, oncall.StatusTriggered}, // keys are global
		{other, oncall.ActionAcknowledge, "", true, oncall.StatusAcknowledged},
	}
	for i, st := range steps {
		inc, changed, err := db.Transition(t.Context(), st.id, st.action, bob, st.key)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if changed != st.changed || inc.Status != st.status {
			t.Errorf("step %d (%s %q): changed %v, status %s; want %v, %s", i, st.action, st.key, changed, inc.Status, st.changed, st.status)
		}
	}

	// The same key on several incidents at once: one of them changes.
	ids := []int64{newIncident(t, db, "race-1"), newIncident(t, db, "race-2"), newIncident(t, db, "race-3")}
	changed := make([]bool, len(ids))
	errs := make([]error, len(ids))
	race(t, db, "incident_events", len(ids), func(i int) {
		_, changed[i], errs[i] = db.Transition(t.Context(), ids[i], oncall.ActionAcknowledge, bob, "race-key")
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := len(slices.DeleteFunc(changed, func(c bool) bool { return !c })); n != 1 {
		t.Errorf("%d incidents changed with one key, want 1", n)
	}
	if n := scalar[int](t, db, `SELECT count(*) FROM incidents WHERE status = 'acknowledged' AND group_key LIKE 'race-%'`); n != 1 {
		t.Errorf("%d incidents acknowledged with one key, want 1", n)
	}
}

func TestTransitionReopenConflict(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	bob := oncall.SlackActor("UBOB")
	old := newIncident(t, db, "g")
	if _, _, err := db.Transition(t.Context(), old, oncall.ActionResolve, bob, ""); err != nil {
		t.Fatal(err)
	}
	res, err := db.RecordBatch(t.Context(), batch("newer", "prom", "g", oncall.AlertFiring, oncall.SeverityError,
		alert("a", oncall.AlertFiring)))
	if err != nil || !res.Created {
		t.Fatalf("new firing batch: %+v, %v; want a new incident", res, err)
	}

	_, changed, err := db.Transition(t.Context(), old, oncall.ActionReopen, bob, "reopen-1")
	if !errors.Is(err, oncall.ErrConflict) || changed {
		t.Fatalf("reopen with another open incident: changed %v, %v; want ErrConflict", changed, err)
	}
	if inc, _ := db.Incident(t.Context(), old); inc.Status != oncall.StatusResolved {
		t.Errorf("after the conflict, status %s, want resolved", inc.Status)
	}

	// Once the newer one is resolved, the old one can be reopened, with the
	// same key: the failed attempt did not record it.
	if _, _, err := db.Transition(t.Context(), res.IncidentID, oncall.ActionResolve, bob, ""); err != nil {
		t.Fatal(err)
	}
	inc, changed, err := db.Transition(t.Context(), old, oncall.ActionReopen, bob, "reopen-1")
	if err != nil || !changed || inc.Status != oncall.StatusTriggered || !inc.ResolvedAt.IsZero() || inc.ResolvedBy != "" {
		t.Fatalf("reopen: %+v, changed %v, %v", inc, changed, err)
	}
	// And a batch of the group joins the reopened incident.
	joined, err := db.RecordBatch(t.Context(), batch("after-reopen", "prom", "g", oncall.AlertFiring,
		oncall.SeverityError, alert("a", oncall.AlertFiring)))
	if err != nil || joined.IncidentID != old || joined.Created {
		t.Errorf("batch after reopen: %+v, %v; want to join incident %d", joined, err, old)
	}
}

// TestRecordBatchOutOfOrder: the queue may deliver a group's batches in
// another order than they were received. A firing batch older than a
// resolved batch already recorded must not open an incident that nothing
// would resolve; a firing batch newer than it is a real re-fire.
func TestRecordBatchOutOfOrder(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	const (
		F = oncall.AlertFiring
		R = oncall.AlertResolved
	)
	type step struct {
		id          string // unique within the case
		integration string // "" is prom
		group       string // "" is the case's group
		status      oncall.AlertStatus
		at          time.Duration // received at: received + at
		incident    string        // letter of the incident it goes to, "" for none
		result      RecordResult  // IncidentID is filled from incident
	}
	tests := []struct {
		name  string
		steps []step
		open  int // open incidents of the case's group at the end
	}{
		{"resolved before an older firing", []step{
			{id: "r", status: R, at: time.Minute},
			{id: "f", status: F, at: 0, result: RecordResult{Stale: true}},
		}, 0},
		{"firing, resolved, firing again is a re-fire", []step{
			{id: "f1", status: F, at: 0, incident: "A", result: RecordResult{Created: true}},
			{id: "r", status: R, at: time.Minute, incident: "A", result: RecordResult{Resolved: true}},
			{id: "f2", status: F, at: 2 * time.Minute, incident: "B", result: RecordResult{Created: true}},
		}, 1},
		{"firing delayed past the resolve of its incident", []step{
			{id: "f1", status: F, at: 0, incident: "A", result: RecordResult{Created: true}},
			{id: "r", status: R, at: 2 * time.Minute, incident: "A", result: RecordResult{Resolved: true}},
			{id: "f2", status: F, at: time.Minute, result: RecordResult{Stale: true}},
		}, 0},
		{"firing received with the resolved is not stale", []step{
			{id: "r", status: R, at: time.Minute},
			{id: "f", status: F, at: time.Minute, incident: "A", result: RecordResult{Created: true}},
		}, 1},
		{"older firing joins an open incident", []step{
			{id: "r", status: R, at: time.Minute},
			{id: "f2", status: F, at: 2 * time.Minute, incident: "A", result: RecordResult{Created: true}},
			{id: "f1", status: F, at: 0, incident: "A", result: RecordResult{}},
		}, 1},
		{"resolved of another group does not count", []step{
			{id: "r", group: "elsewhere", status: R, at: time.Minute},
			{id: "f", status: F, at: 0, incident: "A", result: RecordResult{Created: true}},
		}, 1},
		{"resolved of another integration does not count", []step{
			{id: "r", integration: "hook", status: R, at: time.Minute},
			{id: "f", status: F, at: 0, incident: "A", result: RecordResult{Created: true}},
		}, 1},
		{"stale batch delivered again", []step{
			{id: "r", status: R, at: time.Minute},
			{id: "f", status: F, at: 0, result: RecordResult{Stale: true}},
			{id: "f", status: F, at: 0, result: RecordResult{Duplicate: true}},
		}, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			group := fmt.Sprint("order-", i)
			ids := map[string]int64{}
			for _, st := range tt.steps {
				integration, g := cmp.Or(st.integration, "prom"), cmp.Or(st.group, group)
				b := batch(group+"-"+st.id, integration, g, st.status, oncall.SeverityError, alert("a", st.status))
				b.ReceivedAt = received.Add(st.at)
				got, err := db.RecordBatch(t.Context(), b)
				if err != nil {
					t.Fatalf("batch %s: %v", st.id, err)
				}
				want := st.result
				if st.incident != "" {
					if _, seen := ids[st.incident]; !seen {
						if slices.Contains(slices.Collect(maps.Values(ids)), got.IncidentID) {
							t.Fatalf("batch %s went to incident %d, want a new one", st.id, got.IncidentID)
						}
						ids[st.incident] = got.IncidentID
					}
					want.IncidentID = ids[st.incident]
				}
				if got != want {
					t.Fatalf("batch %s: RecordBatch = %+v, want %+v", st.id, got, want)
				}
			}
			open := scalar[int](t, db, `
				SELECT count(*) FROM incidents i JOIN integrations g ON g.id = i.integration_id
				WHERE g.name = 'prom' AND i.group_key = $1 AND i.status <> 'resolved'`, group)
			if open != tt.open {
				t.Errorf("%d open incidents, want %d", open, tt.open)
			}
		})
	}

	// A stale batch is kept (with its raw body) but belongs to no incident.
	var (
		incidentID       *int64
		groupKey, status string
		raw              []byte
	)
	err := db.pool.QueryRow(t.Context(), `SELECT incident_id, group_key, status, raw FROM alert_batches WHERE id = 'order-0-f'`).
		Scan(&incidentID, &groupKey, &status, &raw)
	if err != nil {
		t.Fatal(err)
	}
	if incidentID != nil || groupKey != "order-0" || status != "firing" || string(raw) != `{"id":"order-0-f"}` {
		t.Errorf("stale batch row: incident %v, group %q, status %q, raw %q", incidentID, groupKey, status, raw)
	}
	if n := scalar[int](t, db, `SELECT count(*) FROM alerts WHERE batch_id = 'order-0-f'`); n != 0 {
		t.Errorf("stale batch has %d alert rows, want 0", n)
	}
}

// TestRecordBatchResolvedOutOfOrder: a resolved batch received before the
// latest firing batch of the open incident of its group (delivered late by
// a retry, or by a slower worker) leaves the incident open; it is recorded
// on the incident, and its alerts counted, as Stale.
func TestRecordBatchResolvedOutOfOrder(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	const (
		F = oncall.AlertFiring
		R = oncall.AlertResolved
	)
	type step struct {
		id       string // unique within the case
		group    string // "" is the case's group
		status   oncall.AlertStatus
		at       time.Duration // received at: received + at
		incident string        // letter of the incident it goes to, "" for none
		result   RecordResult  // IncidentID is filled from incident
	}
	type want struct {
		status            oncall.IncidentStatus
		alerts            int // alert_count
		firing            int // distinct alerts whose latest status is firing
		resolved          int
		resolvedEvents    int
		alertRows, linked int // alert rows of the incident, and batches linked to it
	}
	tests := []struct {
		name  string
		steps []step
		last  want // of the incident of the last step
	}{
		{"resolved after the firing resolves", []step{
			{id: "f", status: F, at: 0, incident: "A", result: RecordResult{Created: true}},
			{id: "r", status: R, at: time.Minute, incident: "A", result: RecordResult{Resolved: true}},
		}, want{oncall.StatusResolved, 2, 0, 1, 1, 2, 2}},
		{"resolved received with the firing resolves", []step{
			{id: "f", status: F, at: time.Minute, incident: "A", result: RecordResult{Created: true}},
			{id: "r", status: R, at: time.Minute, incident: "A", result: RecordResult{Resolved: true}},
		}, want{oncall.StatusResolved, 2, 0, 1, 1, 2, 2}},
		{"resolved older than the firing that opened the incident", []step{
			{id: "f", status: F, at: 2 * time.Minute, incident: "A", result: RecordResult{Created: true}},
			{id: "r", status: R, at: time.Minute, incident: "A", result: RecordResult{Stale: true}},
		}, want{oncall.StatusTriggered, 2, 1, 0, 0, 2, 2}},
		{"resolved older than a firing that joined", []step{
			{id: "f1", status: F, at: 0, incident: "A", result: RecordResult{Created: true}},
			{id: "f2", status: F, at: 2 * time.Minute, incident: "A", result: RecordResult{}},
			{id: "r", status: R, at: time.Minute, incident: "A", result: RecordResult{Stale: true}},
		}, want{oncall.StatusTriggered, 3, 1, 0, 0, 3, 3}},
		{"a later resolved resolves after a stale one", []step{
			{id: "f1", status: F, at: 0, incident: "A", result: RecordResult{Created: true}},
			{id: "f2", status: F, at: 2 * time.Minute, incident: "A", result: RecordResult{}},
			{id: "r1", status: R, at: time.Minute, incident: "A", result: RecordResult{Stale: true}},
			{id: "r3", status: R, at: 3 * time.Minute, incident: "A", result: RecordResult{Resolved: true}},
		}, want{oncall.StatusResolved, 4, 0, 1, 1, 4, 4}},
		{"old resolved of the group does not resolve its re-fired incident", []step{
			{id: "f1", status: F, at: 0, incident: "A", result: RecordResult{Created: true}},
			{id: "r1", status: R, at: time.Minute, incident: "A", result: RecordResult{Resolved: true}},
			{id: "f3", status: F, at: 3 * time.Minute, incident: "B", result: RecordResult{Created: true}},
			{id: "r2", status: R, at: 2 * time.Minute, incident: "B", result: RecordResult{Stale: true}},
		}, want{oncall.StatusTriggered, 2, 1, 0, 0, 2, 2}},
		{"stale resolved delivered again", []step{
			{id: "f", status: F, at: 2 * time.Minute, incident: "A", result: RecordResult{Created: true}},
			{id: "r", status: R, at: time.Minute, incident: "A", result: RecordResult{Stale: true}},
			{id: "r", status: R, at: time.Minute, incident: "A", result: RecordResult{Duplicate: true}},
		}, want{oncall.StatusTriggered, 2, 1, 0, 0, 2, 2}},
		{"a later firing of another group does not count", []step{
			{id: "g", group: "elsewhere", status: F, at: 5 * time.Minute, incident: "X", result: RecordResult{Created: true}},
			{id: "f", status: F, at: 0, incident: "A", result: RecordResult{Created: true}},
			{id: "r", status: R, at: time.Minute, incident: "A", result: RecordResult{Resolved: true}},
		}, want{oncall.StatusResolved, 2, 0, 1, 1, 2, 2}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			group := fmt.Sprint("late-resolve-", i)
			ids := map[string]int64{}
			var last int64
			for _, st := range tt.steps {
				g := group
				if st.group != "" {
					g += "-" + st.group
				}
				b := batch(group+"-"+st.id, "prom", g, st.status, oncall.SeverityError, alert("a", st.status))
				b.ReceivedAt = received.Add(st.at)
				got, err := db.RecordBatch(t.Context(), b)
				if err != nil {
					t.Fatalf("batch %s: %v", st.id, err)
				}
				want := st.result
				if st.incident != "" {
					if _, seen := ids[st.incident]; !seen {
						if slices.Contains(slices.Collect(maps.Values(ids)), got.IncidentID) {
							t.Fatalf("batch %s went to incident %d, want a new one", st.id, got.IncidentID)
						}
						ids[st.incident] = got.IncidentID
					}
					want.IncidentID = ids[st.incident]
				}
				if got != want {
					t.Fatalf("batch %s: RecordBatch = %+v, want %+v", st.id, got, want)
				}
				last = got.IncidentID
			}

			inc, err := db.Incident(t.Context(), last)
			if err != nil {
				t.Fatal(err)
			}
			got := want{
				status: inc.Status, alerts: inc.AlertCount, firing: inc.Firing, resolved: inc.Resolved,
				resolvedEvents: scalar[int](t, db, `SELECT count(*) FROM incident_events WHERE incident_id = $1 AND kind = 'resolved'`, last),
				alertRows:      scalar[int](t, db, `SELECT count(*) FROM alerts WHERE incident_id = $1`, last),
				linked:         scalar[int](t, db, `SELECT count(*) FROM alert_batches WHERE incident_id = $1`, last),
			}
			if got != tt.last {
				t.Errorf("incident %d = %+v, want %+v", last, got, tt.last)
			}
		})
	}
}

// TestRecordBatchConcurrentOutOfOrder: a firing batch and a later resolved
// batch of the same group processed at once leave nothing open, whichever
// goes first.
func TestRecordBatchConcurrentOutOfOrder(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	const groups = 6
	results := make([]RecordResult, 2*groups)
	errs := make([]error, 2*groups)
	race(t, db, "alert_batches", 2*groups, func(i int) {
		status, at := oncall.AlertFiring, time.Duration(0)
		if i%2 == 1 {
			status, at = oncall.AlertResolved, time.Minute
		}
		b := batch(fmt.Sprint("race-", i), "prom", fmt.Sprint("race-", i/2), status, oncall.SeverityError, alert("a", status))
		b.ReceivedAt = received.Add(at)
		results[i], errs[i] = db.RecordBatch(t.Context(), b)
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for g := range groups {
		firing, resolved := results[2*g], results[2*g+1]
		firingFirst := firing.Created && resolved.Resolved && resolved.IncidentID == firing.IncidentID
		resolvedFirst := firing == RecordResult{Stale: true} && resolved == RecordResult{}
		if !firingFirst && !resolvedFirst {
			t.Errorf("group %d: firing %+v, resolved %+v; want either opened then resolved, or nothing and stale",
				g, firing, resolved)
		}
	}
	if n := scalar[int](t, db, `SELECT count(*) FROM incidents WHERE status <> 'resolved'`); n != 0 {
		t.Errorf("%d incidents left open, want 0", n)
	}
}

// TestRecordBatchRoute: a new incident goes to the batch's channel and
// escalation (from the route ingest chose), else to the integration's; a
// batch joining an open incident does not move it.
func TestRecordBatchRoute(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	tests := []struct {
		name                string
		channel, escalation string // of the batch
		wantChan, wantEscal string // of the incident
		joinChan, joinEscal string // of a second batch of the group
	}{
		{"route sets both", "C0PAYMENTS", "payments", "C0PAYMENTS", "payments", "", ""},
		{"route sets the channel", "C0PAYMENTS", "", "C0PAYMENTS", "default", "", ""},
		{"route sets the escalation", "", "payments", "C0PROM", "payments", "", ""},
		{"no route", "", "", "C0PROM", "default", "", ""},
		{"a joining batch keeps the incident where it is", "", "", "C0PROM", "default", "C0ELSEWHERE", "other"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			group := fmt.Sprint("route-", i)
			b := batch(group+"-1", "prom", group, oncall.AlertFiring, oncall.SeverityError, alert("a", oncall.AlertFiring))
			b.Channel, b.Escalation = tt.channel, tt.escalation
			res, err := db.RecordBatch(t.Context(), b)
			if err != nil || !res.Created {
				t.Fatalf("RecordBatch = %+v, %v; want a new incident", res, err)
			}
			if tt.joinChan != "" || tt.joinEscal != "" {
				b := batch(group+"-2", "prom", group, oncall.AlertFiring, oncall.SeverityError, alert("a", oncall.AlertFiring))
				b.Channel, b.Escalation = tt.joinChan, tt.joinEscal
				joined, err := db.RecordBatch(t.Context(), b)
				if err != nil || joined.IncidentID != res.IncidentID {
					t.Fatalf("second batch: %+v, %v; want to join incident %d", joined, err, res.IncidentID)
				}
			}
			inc, err := db.Incident(t.Context(), res.IncidentID)
			if err != nil {
				t.Fatal(err)
			}
			if inc.Channel != tt.wantChan || inc.Escalation != tt.wantEscal {
				t.Errorf("incident in channel %q with escalation %q, want %q and %q",
					inc.Channel, inc.Escalation, tt.wantChan, tt.wantEscal)
			}
		})
	}

	b := batch("bad-route", "prom", "g", oncall.AlertFiring, oncall.SeverityError, alert("a", oncall.AlertFiring))
	b.Channel = "C0\x00"
	if _, err := db.RecordBatch(t.Context(), b); !errors.Is(err, ErrInvalidText) {
		t.Errorf("RecordBatch with a NUL in the channel: %v, want ErrInvalidText", err)
	}
}

// TestRecordBatchUnknownIntegration: a batch whose integration left the
// config before it was processed is recorded under a disabled integration
// of its name, with no token and no channel, rather than refused forever.
func TestRecordBatchUnknownIntegration(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	type integration struct {
		kind, channel string
		enabled       bool
		hash          []byte
	}
	load := func(name string) integration {
		t.Helper()
		var it integration
		err := db.pool.QueryRow(t.Context(), `SELECT kind, channel, enabled, token_hash FROM integrations WHERE name = $1`,
			name).Scan(&it.kind, &it.channel, &it.enabled, &it.hash)
		if err != nil {
			t.Fatalf("integration %q: %v", name, err)
		}
		return it
	}
	record := func(b oncall.AlertBatch) RecordResult {
		t.Helper()
		res, err := db.RecordBatch(t.Context(), b)
		if err != nil {
			t.Fatalf("batch %s: %v", b.ID, err)
		}
		return res
	}
	gone := func(id, group, channel string) oncall.AlertBatch {
		b := batch(id, "gone", group, oncall.AlertFiring, oncall.SeverityError, alert("a", oncall.AlertFiring))
		b.Kind, b.Channel = "webhook", channel
		return b
	}

	first := record(gone("g1", "g", ""))
	if want := (RecordResult{IncidentID: first.IncidentID, Created: true, UnknownIntegration: true}); first.IncidentID == 0 || first != want {
		t.Fatalf("first batch: %+v, want a new incident of an unknown integration", first)
	}
	if got := load("gone"); got.kind != "webhook" || got.channel != "" || got.enabled || len(got.hash) != 0 {
		t.Errorf("created integration = %+v, want a disabled webhook without token or channel", got)
	}
	inc, err := db.Incident(t.Context(), first.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Integration != "gone" || inc.Kind != "webhook" || inc.Channel != "" || inc.AlertCount != 1 {
		t.Errorf("incident = %s/%s in channel %q with %d alerts, want gone/webhook, no channel, 1 alert",
			inc.Integration, inc.Kind, inc.Channel, inc.AlertCount)
	}

	// Later batches find the integration and say it is unknown too; a
	// batch's route still chooses a channel.
	if got := record(gone("g2", "g", "")); got != (RecordResult{IncidentID: first.IncidentID, UnknownIntegration: true}) {
		t.Errorf("second batch of the group: %+v, want it joined with UnknownIntegration", got)
	}
	if got := record(gone("g1", "g", "")); got != (RecordResult{IncidentID: first.IncidentID, Duplicate: true, UnknownIntegration: true}) {
		t.Errorf("first batch again: %+v, want a duplicate", got)
	}
	routed := record(gone("r1", "routed", "C0ROUTE"))
	if inc, err := db.Incident(t.Context(), routed.IncidentID); err != nil || inc.Channel != "C0ROUTE" {
		t.Errorf("routed batch: incident in channel %q (%v), want C0ROUTE", inc.Channel, err)
	}

	// Batches of another unknown integration at once create it once.
	const n = 4
	errs := make([]error, n)
	race(t, db, "integrations", n, func(i int) {
		b := batch(fmt.Sprint("race-", i), "vanished", fmt.Sprint("race-", i), oncall.AlertFiring, oncall.SeverityError,
			alert("a", oncall.AlertFiring))
		var res RecordResult
		res, errs[i] = db.RecordBatch(t.Context(), b)
		if errs[i] == nil && (!res.Created || !res.UnknownIntegration) {
			errs[i] = fmt.Errorf("batch %d: %+v, want a new incident of an unknown integration", i, res)
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := scalar[int](t, db, `SELECT count(*) FROM integrations WHERE name = 'vanished'`); n != 1 {
		t.Errorf("%d integrations named vanished, want 1", n)
	}

	// The config without it leaves it disabled; the config with it again
	// enables it with its token, and it is no longer unknown.
	if err := db.SyncIntegrations(t.Context(), testIntegrations); err != nil {
		t.Fatal(err)
	}
	if got := load("gone"); got.enabled || len(got.hash) != 0 {
		t.Errorf("after a sync without it: %+v, want disabled without a token", got)
	}
	back := oncall.Integration{Name: "gone", Kind: "webhook", Token: "back-token", Channel: "C0BACK"}
	if err := db.SyncIntegrations(t.Context(), append(slices.Clone(testIntegrations), back)); err != nil {
		t.Fatal(err)
	}
	if got, hash := load("gone"), sha256.Sum256([]byte("back-token")); !got.enabled || got.channel != "C0BACK" || !bytes.Equal(got.hash, hash[:]) {
		t.Errorf("after a sync with it: %+v, want enabled in C0BACK with its token's hash", got)
	}
	if got := record(gone("g3", "new", "")); !got.Created || got.UnknownIntegration {
		t.Errorf("batch after the integration came back: %+v, want a new incident, not unknown", got)
	}
}
