package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
)

// plan is a delivery of person by ch at step and repeat of an incident,
// with the key the engine gives it.
func plan(incidentID int64, step, repeat int, person string, ch oncall.NotifyChannel, due time.Time) oncall.Delivery {
	return oncall.Delivery{
		Key: fmt.Sprintf("%d:%d:%d:%s:%s", incidentID, step, repeat, person, ch), IncidentID: incidentID,
		Step: step, Repeat: repeat, Person: person, Channel: ch, DueAt: due,
	}
}

// addDelivery inserts d as it is (pending when it has no status), as if
// the engine had planned it and workers had moved it on.
func addDelivery(t *testing.T, db *DB, d oncall.Delivery) int64 {
	t.Helper()
	var id int64
	err := db.pool.QueryRow(t.Context(), `
		INSERT INTO deliveries (key, incident_id, step, repeat, person, channel, due_at, status)
		VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE(NULLIF($8, ''), 'pending'))
		RETURNING id`,
		d.Key, d.IncidentID, d.Step, d.Repeat, d.Person, d.Channel, d.DueAt, d.Status).Scan(&id)
	if err != nil {
		t.Fatalf("insert delivery %s: %v", d.Key, err)
	}
	return id
}

func act(t *testing.T, db *DB, incidentID int64, a oncall.Action) {
	t.Helper()
	if _, changed, err := db.Transition(t.Context(), incidentID, a, oncall.SlackActor("U1"), ""); err != nil || !changed {
		t.Fatalf("%s incident %d: changed %v, %v", a, incidentID, changed, err)
	}
}

func getDelivery(t *testing.T, db *DB, id int64) oncall.Delivery {
	t.Helper()
	d, err := db.Delivery(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// beginSend takes a delivery to send it, as a worker does.
func beginSend(t *testing.T, db *DB, id int64, now time.Time) DeliveryClaim {
	t.Helper()
	c, err := db.BeginDelivery(t.Context(), id, now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c.Step != DeliverySend {
		t.Fatalf("begin delivery %d: step %d, want DeliverySend", id, c.Step)
	}
	return c
}

// pageEvent is what a paging event says.
type pageEvent struct {
	Kind    oncall.EventKind
	Target  string
	Channel oncall.NotifyChannel
	Note    string
}

// pageEvents returns the paging events of an incident, oldest first.
func pageEvents(t *testing.T, db *DB, incidentID int64) []pageEvent {
	t.Helper()
	evs, err := db.Events(t.Context(), incidentID)
	if err != nil {
		t.Fatal(err)
	}
	var out []pageEvent
	for _, e := range evs {
		switch e.Kind {
		case oncall.EventPaged, oncall.EventPageDelivered, oncall.EventPageFailed:
			if e.Actor != oncall.ActorSystem {
				t.Errorf("%s event by %q, want the system", e.Kind, e.Actor)
			}
			out = append(out, pageEvent{e.Kind, e.Target, e.Channel, e.Note})
		}
	}
	return out
}

func TestClaimDueDeliveries(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	id := openEscIncident(t, db, "g")
	var (
		bobSlack = plan(id, 0, 0, "UBOB", oncall.NotifySlack, escT0)
		bobCall  = plan(id, 0, 0, "UBOB", oncall.NotifyCall, escT0.Add(time.Minute))
		bobSMS   = plan(id, 0, 0, "UBOB", oncall.NotifySMS, escT0.Add(2*time.Minute))
		alice    = plan(id, 1, 0, "UALICE", oncall.NotifySlack, escT0.Add(10*time.Minute))
		carol    = plan(id, 0, 0, "UCAROL", oncall.NotifySMS, escT0)
	)
	carol.Status = oncall.DeliverySent // not pending: never claimed
	// Inserted out of due order, so that the order published is due_at's.
	for _, d := range []oncall.Delivery{bobSMS, alice, bobCall, carol, bobSlack} {
		addDelivery(t, db, d)
	}
	boom := errors.New("queue down")
	steps := []struct {
		name        string
		now         time.Time
		limit       int
		publishFail bool
		want        []string // keys published, in order
	}{
		{"nothing due yet", escT0.Add(-time.Second), 10, false, nil},
		{"publish fails", escT0.Add(5 * time.Minute), 2, true, []string{bobSlack.Key, bobCall.Key}},
		{"earliest first, up to the limit", escT0.Add(5 * time.Minute), 2, false, []string{bobSlack.Key, bobCall.Key}},
		{"the rest of what is due", escT0.Add(5 * time.Minute), 10, false, []string{bobSMS.Key}},
		{"queued ones are not claimed again", escT0.Add(5 * time.Minute), 10, false, nil},
		{"due later", escT0.Add(time.Hour), 10, false, []string{alice.Key}},
	}
	for _, s := range steps {
		var published []string
		n, err := db.ClaimDueDeliveries(ctx, s.now, s.limit, func(_ context.Context, ds []oncall.Delivery) error {
			for _, d := range ds {
				if d.Status != oncall.DeliveryPending || d.ID == 0 {
					t.Errorf("%s: published %s with status %s, id %d; want pending with its id", s.name, d.Key, d.Status, d.ID)
				}
				published = append(published, d.Key)
			}
			if s.publishFail {
				return boom
			}
			return nil
		})
		if !slices.Equal(published, s.want) {
			t.Errorf("%s: published %q, want %q", s.name, published, s.want)
		}
		wantStatus, wantN := "queued", len(s.want)
		if s.publishFail {
			wantStatus, wantN = "pending", 0
			if !errors.Is(err, boom) {
				t.Errorf("%s: error %v, want the publish error", s.name, err)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if n != wantN {
			t.Errorf("%s: claimed %d, want %d", s.name, n, wantN)
		}
		for _, k := range published {
			if got := scalar[string](t, db, `SELECT status FROM deliveries WHERE key = $1`, k); got != wantStatus {
				t.Errorf("%s: %s is %s, want %s", s.name, k, got, wantStatus)
			}
			queued := scalar[bool](t, db, `SELECT queued_at IS NOT NULL FROM deliveries WHERE key = $1`, k)
			if queued != !s.publishFail {
				t.Errorf("%s: %s has queued_at set %v, want %v", s.name, k, queued, !s.publishFail)
			}
		}
	}
	if got := scalar[string](t, db, `SELECT status FROM deliveries WHERE key = $1`, carol.Key); got != "sent" {
		t.Errorf("the sent delivery is %s after the claims, want sent", got)
	}
}

// TestClaimDueDeliveriesOfStoppedIncidents: an acknowledgement or a
// resolution stops the pages planned before it; a manual escalation of an
// acknowledged incident plans pages after it, which go out.
func TestClaimDueDeliveriesOfStoppedIncidents(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	tests := []struct {
		name          string
		before, after oncall.Action // applied before and after the delivery is planned
		claimed       bool
	}{
		{"triggered", "", "", true},
		{"resolved", "", oncall.ActionResolve, false},
		{"acknowledged after it was planned", "", oncall.ActionAcknowledge, false},
		{"planned after the acknowledgement (a manual escalation)", oncall.ActionAcknowledge, "", true},
	}
	keys := make([]string, len(tests))
	for i, tt := range tests {
		id := openEscIncident(t, db, fmt.Sprintf("g%d", i))
		if tt.before != "" {
			act(t, db, id, tt.before)
		}
		d := plan(id, 0, 0, "UBOB", oncall.NotifySlack, escT0)
		addDelivery(t, db, d)
		if tt.after != "" {
			act(t, db, id, tt.after)
		}
		keys[i] = d.Key
	}
	got := map[string]bool{}
	n, err := db.ClaimDueDeliveries(ctx, escT0, 10, func(_ context.Context, ds []oncall.Delivery) error {
		for _, d := range ds {
			got[d.Key] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(got) {
		t.Errorf("claimed %d, published %d", n, len(got))
	}
	for i, tt := range tests {
		key := keys[i]
		if got[key] != tt.claimed {
			t.Errorf("%s: claimed %v, want %v", tt.name, got[key], tt.claimed)
		}
		if status := scalar[string](t, db, `SELECT status FROM deliveries WHERE key = $1`, key); !tt.claimed && status != "pending" {
			t.Errorf("%s: unclaimed delivery is %s, want pending", tt.name, status)
		}
	}
}

// TestClaimDueDeliveriesConcurrently: replicas claiming at once publish
// each due delivery once.
func TestClaimDueDeliveriesConcurrently(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	const total = 200
	id := openEscIncident(t, db, "g")
	if _, err := db.pool.Exec(ctx, `
		INSERT INTO deliveries (key, incident_id, step, repeat, person, channel, due_at)
		SELECT $1::bigint || ':0:' || r || ':UBOB:slack', $1, 0, r, 'UBOB', 'slack', $2
		FROM generate_series(1, $3) AS r`, id, escT0, total); err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		published = map[string]int{}
	)
	publish := func(_ context.Context, ds []oncall.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range ds {
			published[d.Key]++
		}
		return nil
	}
	claimed := make([]int, 2)
	race(t, db, "deliveries", len(claimed), func(i int) {
		for {
			n, err := db.ClaimDueDeliveries(ctx, escT0, 7, publish)
			if err != nil {
				t.Error(err)
				return
			}
			if n == 0 {
				return
			}
			claimed[i] += n
		}
	})
	if len(published) != total || claimed[0]+claimed[1] != total {
		t.Errorf("published %d keys, claimed %v; want %d", len(published), claimed, total)
	}
	for k, n := range published {
		if n != 1 {
			t.Errorf("%s published %d times, want once", k, n)
		}
	}
	if queued := scalar[int](t, db, `SELECT count(*) FROM deliveries WHERE status = 'queued'`); queued != total {
		t.Errorf("%d deliveries queued, want %d", queued, total)
	}
}

func TestBeginDelivery(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	tests := []struct {
		name          string
		before, after oncall.Action // applied to the incident before and after the delivery is planned
		status        oncall.DeliveryStatus
		step          DeliveryStep
		wantStatus    oncall.DeliveryStatus
		wantAttempts  int
	}{
		{"pending", "", "", oncall.DeliveryPending, DeliverySend, oncall.DeliverySending, 1},
		{"queued", "", "", oncall.DeliveryQueued, DeliverySend, oncall.DeliverySending, 1},
		{"sent", "", "", oncall.DeliverySent, DeliverySkip, oncall.DeliverySent, 0},
		{"delivered", "", "", oncall.DeliveryDelivered, DeliverySkip, oncall.DeliveryDelivered, 0},
		{"failed", "", "", oncall.DeliveryFailed, DeliverySkip, oncall.DeliveryFailed, 0},
		{"cancelled", "", "", oncall.DeliveryCancelled, DeliverySkip, oncall.DeliveryCancelled, 0},
		{"of a resolved incident", "", oncall.ActionResolve, oncall.DeliveryQueued, DeliverySkip, oncall.DeliveryCancelled, 0},
		{"acknowledged after it was planned", "", oncall.ActionAcknowledge, oncall.DeliveryQueued, DeliverySkip,
			oncall.DeliveryCancelled, 0},
		{"planned after the acknowledgement", oncall.ActionAcknowledge, "", oncall.DeliveryQueued, DeliverySend,
			oncall.DeliverySending, 1},
	}
	for i, tt := range tests {
		inc := openEscIncident(t, db, fmt.Sprintf("g%d", i))
		if tt.before != "" {
			act(t, db, inc, tt.before)
		}
		d := plan(inc, 0, 0, "UBOB", oncall.NotifySMS, escT0)
		d.Status = tt.status
		id := addDelivery(t, db, d)
		if tt.after != "" {
			act(t, db, inc, tt.after)
		}
		c, err := db.BeginDelivery(ctx, id, escT0, time.Minute)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if c.Step != tt.step || c.Delivery.ID != id || c.Delivery.Status != tt.wantStatus ||
			c.Delivery.Attempts != tt.wantAttempts {
			t.Errorf("%s: step %d, delivery %d %s after %d attempts; want step %d, %d %s after %d",
				tt.name, c.Step, c.Delivery.ID, c.Delivery.Status, c.Delivery.Attempts, tt.step, id, tt.wantStatus, tt.wantAttempts)
		}
		if tt.step == DeliverySend && (c.Incident.ID != inc || c.Incident.Title == "") {
			t.Errorf("%s: claim carries incident %+v, want incident %d as it is", tt.name, c.Incident, inc)
		}
		if got := getDelivery(t, db, id); got.Status != tt.wantStatus || got.Attempts != tt.wantAttempts {
			t.Errorf("%s: stored %s after %d attempts, want %s after %d",
				tt.name, got.Status, got.Attempts, tt.wantStatus, tt.wantAttempts)
		}
	}
	if _, err := db.BeginDelivery(ctx, 99999, escT0, time.Minute); !errors.Is(err, oncall.ErrNotFound) {
		t.Errorf("begin an unknown delivery: %v, want ErrNotFound", err)
	}
}

// TestBeginDeliveryLease plays workers taking one delivery in turn.
func TestBeginDeliveryLease(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	inc := openEscIncident(t, db, "g")
	id := addDelivery(t, db, plan(inc, 0, 0, "UBOB", oncall.NotifyCall, escT0))
	const lease = time.Minute
	steps := []struct {
		name     string
		resolve  bool // resolve the incident first
		now      time.Time
		step     DeliveryStep
		wait     time.Duration
		since    time.Time
		attempts int
	}{
		{"first attempt", false, escT0, DeliverySend, 0, time.Time{}, 1},
		{"another worker while the lease runs", false, escT0.Add(10 * time.Second), DeliveryWait, 50 * time.Second,
			time.Time{}, 1},
		{"the lease ran out: reconcile since the first attempt", false, escT0.Add(2 * time.Minute), DeliveryReconcile, 0,
			escT0, 2},
		{"the reconciling worker holds a new lease", false, escT0.Add(2*time.Minute + 30*time.Second), DeliveryWait,
			30 * time.Second, time.Time{}, 2},
		{"resolved meanwhile: reconciled still, since the first attempt", true, escT0.Add(5 * time.Minute),
			DeliveryReconcile, 0, escT0, 3},
	}
	for _, s := range steps {
		if s.resolve {
			act(t, db, inc, oncall.ActionResolve)
		}
		c, err := db.BeginDelivery(ctx, id, s.now, lease)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if c.Step != s.step || c.Wait != s.wait || !c.Since.Equal(s.since) {
			t.Errorf("%s: step %d, wait %s, since %s; want step %d, wait %s, since %s",
				s.name, c.Step, c.Wait, c.Since, s.step, s.wait, s.since)
		}
		if c.Step == DeliveryWait && (c.Wait <= 0 || c.Wait > lease) {
			t.Errorf("%s: wait %s, want within the lease %s", s.name, c.Wait, lease)
		}
		if c.Step == DeliveryReconcile && c.Incident.ID != inc {
			t.Errorf("%s: claim carries incident %d, want %d", s.name, c.Incident.ID, inc)
		}
		if got := getDelivery(t, db, id); got.Status != oncall.DeliverySending || got.Attempts != s.attempts {
			t.Errorf("%s: stored %s after %d attempts, want sending after %d", s.name, got.Status, got.Attempts, s.attempts)
		}
	}
}

func TestDeliverySent(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	inc := openEscIncident(t, db, "g")
	id := addDelivery(t, db, plan(inc, 0, 0, "bob@example.com", oncall.NotifySlack, escT0))
	const providerID = "D0BOB:1700000000.000100"
	calls := []struct {
		name  string
		begin bool // a worker takes it first
		want  bool
	}{
		{"not being sent yet", false, false},
		{"being sent", true, true},
		{"recorded already", false, false},
	}
	for _, c := range calls {
		if c.begin {
			beginSend(t, db, id, escT0)
		}
		ok, err := db.DeliverySent(ctx, id, providerID, "paged by DM")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if ok != c.want {
			t.Errorf("%s: DeliverySent = %v, want %v", c.name, ok, c.want)
		}
	}
	d := getDelivery(t, db, id)
	if d.Status != oncall.DeliverySent || d.ProviderID != providerID || d.SentAt.IsZero() {
		t.Errorf("delivery %s, provider id %q, sent at %s; want sent, %q, a time", d.Status, d.ProviderID, d.SentAt, providerID)
	}
	want := []pageEvent{{oncall.EventPaged, "bob@example.com", oncall.NotifySlack, "paged by DM"}}
	if got := pageEvents(t, db, inc); !slices.Equal(got, want) {
		t.Errorf("events %+v, want %+v", got, want)
	}
	unposted, err := db.UnpostedEvents(ctx, inc)
	if err != nil {
		t.Fatal(err)
	}
	var paged []pageEvent
	for _, e := range unposted {
		if e.Kind == oncall.EventPaged {
			paged = append(paged, pageEvent{e.Kind, e.Target, e.Channel, e.Note})
		}
	}
	if !slices.Equal(paged, want) {
		t.Errorf("unposted paged events %+v, want %+v", paged, want)
	}
}

func TestRetryDelivery(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	const delay = time.Hour
	tests := []struct {
		name      string
		uncertain bool
		status    oncall.DeliveryStatus
	}{
		{"the provider refused it: queued again", false, oncall.DeliveryQueued},
		{"it may have been made: sending under a lease", true, oncall.DeliverySending},
	}
	for i, tt := range tests {
		inc := openEscIncident(t, db, fmt.Sprintf("g%d", i))
		id := addDelivery(t, db, plan(inc, 0, 0, "UBOB", oncall.NotifySMS, escT0))
		beginSend(t, db, id, escT0)
		if err := db.RetryDelivery(ctx, id, Retry{Error: "twilio: 503", Uncertain: tt.uncertain, Delay: delay}); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if d := getDelivery(t, db, id); d.Status != tt.status || d.Error != "twilio: 503" {
			t.Errorf("%s: %s with error %q, want %s with the error", tt.name, d.Status, d.Error, tt.status)
		}
		if !tt.uncertain {
			if c := beginSend(t, db, id, time.Now()); c.Delivery.Attempts != 2 {
				t.Errorf("%s: attempts %d on the retry, want 2", tt.name, c.Delivery.Attempts)
			}
			continue
		}
		c, err := db.BeginDelivery(ctx, id, time.Now(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if c.Step != DeliveryWait || c.Wait <= 0 || c.Wait > delay {
			t.Errorf("%s: before the delay: step %d, wait %s; want DeliveryWait within %s", tt.name, c.Step, c.Wait, delay)
		}
		c, err = db.BeginDelivery(ctx, id, time.Now().Add(delay+time.Minute), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if c.Step != DeliveryReconcile || !c.Since.Equal(escT0) || c.Delivery.Attempts != 2 {
			t.Errorf("%s: after the delay: step %d since %s, attempts %d; want DeliveryReconcile since %s, 2",
				tt.name, c.Step, c.Since, c.Delivery.Attempts, escT0)
		}
	}

	// Only a delivery being sent is retried.
	inc := openEscIncident(t, db, "sent")
	d := plan(inc, 0, 0, "UBOB", oncall.NotifySMS, escT0)
	d.Status = oncall.DeliverySent
	id := addDelivery(t, db, d)
	if err := db.RetryDelivery(ctx, id, Retry{Error: "late", Delay: delay}); err != nil {
		t.Fatal(err)
	}
	if got := getDelivery(t, db, id); got.Status != oncall.DeliverySent || got.Error != "" {
		t.Errorf("a sent delivery retried: %s with error %q, want it untouched", got.Status, got.Error)
	}
}

// planned is a delivery of a FailDelivery case, at a time after the test
// starts.
type planned struct {
	step, repeat int
	person       string
	ch           oncall.NotifyChannel
	due          time.Duration
	status       oncall.DeliveryStatus
}

func TestFailDelivery(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	const why = "carrier refused (21610)"
	bob := func(ch oncall.NotifyChannel, due time.Duration, status oncall.DeliveryStatus) planned {
		return planned{0, 0, "UBOB", ch, due, status}
	}
	tests := []struct {
		name    string
		failing oncall.NotifyChannel // UBOB's page at step 0, repeat 0
		others  []planned
		ack     bool // the incident is acknowledged after the pages were planned
		next    int  // index in others of the page due now; -1: none
		slack   bool // a Slack message is planned instead
		note    string
	}{
		{
			name: "the person's next page at the step is due now", failing: oncall.NotifySlack,
			others: []planned{
				bob(oncall.NotifyCall, 20*time.Minute, oncall.DeliveryPending),
				bob(oncall.NotifySMS, 10*time.Minute, oncall.DeliveryPending),
				{0, 0, "UALICE", oncall.NotifySMS, time.Minute, oncall.DeliveryPending},
				{1, 0, "UBOB", oncall.NotifySMS, time.Minute, oncall.DeliveryPending},
				{0, 1, "UBOB", oncall.NotifySMS, time.Minute, oncall.DeliveryPending},
			},
			next: 1, note: why + "; paging by SMS now",
		},
		{
			name: "none left: a Slack message instead", failing: oncall.NotifyCall,
			others: []planned{
				bob(oncall.NotifySMS, 0, oncall.DeliveryFailed),
				{1, 0, "UBOB", oncall.NotifySlack, time.Minute, oncall.DeliveryPending},
			},
			next: -1, slack: true, note: why + "; paging by Slack now",
		},
		{
			name: "none left, messaged in Slack at the step already", failing: oncall.NotifySMS,
			others: []planned{bob(oncall.NotifySlack, 0, oncall.DeliverySent)},
			next:   -1, note: why + "; no other way to reach them at this step",
		},
		{
			name: "a failed Slack message has no Slack fallback", failing: oncall.NotifySlack,
			next: -1, note: why + "; no other way to reach them at this step",
		},
		{
			name: "acknowledged: nothing more", failing: oncall.NotifySMS,
			others: []planned{bob(oncall.NotifyCall, 10*time.Minute, oncall.DeliveryPending)},
			ack:    true, next: -1, note: why,
		},
	}
	for i, tt := range tests {
		inc := openEscIncident(t, db, fmt.Sprintf("g%d", i))
		start := time.Now()
		failing := plan(inc, 0, 0, "UBOB", tt.failing, start)
		failing.Status = oncall.DeliverySending
		id := addDelivery(t, db, failing)
		var others []oncall.Delivery
		for _, p := range tt.others {
			d := plan(inc, p.step, p.repeat, p.person, p.ch, start.Add(p.due))
			d.Status = p.status
			d.ID = addDelivery(t, db, d)
			others = append(others, getDelivery(t, db, d.ID))
		}
		if tt.ack {
			act(t, db, inc, oncall.ActionAcknowledge)
		}

		fallback, ok, err := db.FailDelivery(ctx, id, why)
		if err != nil || !ok {
			t.Errorf("%s: ok %v, %v; want ok", tt.name, ok, err)
			continue
		}
		switch {
		case tt.next >= 0:
			if fallback == nil || fallback.ID != others[tt.next].ID || fallback.DueAt.After(time.Now()) {
				t.Errorf("%s: fallback %+v, want %s due now", tt.name, fallback, others[tt.next].Key)
			}
		case tt.slack:
			if fallback == nil || fallback.Key != failing.Key+":fallback" || fallback.Channel != oncall.NotifySlack ||
				fallback.Person != "UBOB" || fallback.Step != 0 || fallback.Repeat != 0 ||
				fallback.Status != oncall.DeliveryPending || fallback.DueAt.After(time.Now()) {
				t.Errorf("%s: fallback %+v, want a pending Slack message of UBOB at step 0 due now, key %s:fallback",
					tt.name, fallback, failing.Key)
			}
		default:
			if fallback != nil {
				t.Errorf("%s: fallback %+v, want none", tt.name, fallback)
			}
		}
		if d := getDelivery(t, db, id); d.Status != oncall.DeliveryFailed || d.Error != why {
			t.Errorf("%s: failed delivery is %s with error %q, want failed with %q", tt.name, d.Status, d.Error, why)
		}
		for j, before := range others {
			if j == tt.next {
				continue
			}
			if after := getDelivery(t, db, before.ID); !after.DueAt.Equal(before.DueAt) || after.Status != before.Status {
				t.Errorf("%s: %s moved from %s %s to %s %s", tt.name, before.Key, before.Status, before.DueAt,
					after.Status, after.DueAt)
			}
		}
		want := []pageEvent{{oncall.EventPageFailed, "UBOB", tt.failing, tt.note}}
		if got := pageEvents(t, db, inc); !slices.Equal(got, want) {
			t.Errorf("%s: events %+v, want %+v", tt.name, got, want)
		}

		// Recorded already: a second call changes nothing.
		count := scalar[int](t, db, `SELECT count(*) FROM deliveries WHERE incident_id = $1`, inc)
		fallback, ok, err = db.FailDelivery(ctx, id, "again")
		if err != nil || ok || fallback != nil {
			t.Errorf("%s: second call: %+v, %v, %v; want nil, false, nil", tt.name, fallback, ok, err)
		}
		if got := scalar[int](t, db, `SELECT count(*) FROM deliveries WHERE incident_id = $1`, inc); got != count {
			t.Errorf("%s: second call: %d deliveries, want %d", tt.name, got, count)
		}
		if got := pageEvents(t, db, inc); !slices.Equal(got, want) {
			t.Errorf("%s: second call: events %+v, want %+v", tt.name, got, want)
		}
		if d := getDelivery(t, db, id); d.Error != why {
			t.Errorf("%s: second call: error %q, want %q", tt.name, d.Error, why)
		}
	}
}

func TestRecordDeliveryStatus(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	tests := []struct {
		name      string
		sentFirst bool // the worker records the send before the status arrives
		status    oncall.DeliveryStatus
		detail    string
		events    []pageEvent
		fallback  bool // a Slack message is planned
	}{
		{
			name: "delivered", sentFirst: true, status: oncall.DeliveryDelivered, detail: "delivered",
			events: []pageEvent{
				{oncall.EventPaged, "UBOB", oncall.NotifySMS, "sms sent"},
				{oncall.EventPageDelivered, "UBOB", oncall.NotifySMS, "delivered"},
			},
		},
		{
			name: "failed: falls back", sentFirst: true, status: oncall.DeliveryFailed, detail: "undelivered (30003)",
			events: []pageEvent{
				{oncall.EventPaged, "UBOB", oncall.NotifySMS, "sms sent"},
				{oncall.EventPageFailed, "UBOB", oncall.NotifySMS, "undelivered (30003); paging by Slack now"},
			},
			fallback: true,
		},
		{
			name: "delivered while still sending", status: oncall.DeliveryDelivered, detail: "delivered",
			events: []pageEvent{
				{oncall.EventPageDelivered, "UBOB", oncall.NotifySMS, "delivered"},
				{oncall.EventPaged, "UBOB", oncall.NotifySMS, "sms sent"},
			},
		},
		{
			name: "failed while still sending", status: oncall.DeliveryFailed, detail: "undelivered (30005)",
			events: []pageEvent{
				{oncall.EventPageFailed, "UBOB", oncall.NotifySMS, "undelivered (30005); paging by Slack now"},
				{oncall.EventPaged, "UBOB", oncall.NotifySMS, "sms sent"},
			},
			fallback: true,
		},
	}
	for i, tt := range tests {
		inc := openEscIncident(t, db, fmt.Sprintf("g%d", i))
		d := plan(inc, 0, 0, "UBOB", oncall.NotifySMS, escT0)
		id := addDelivery(t, db, d)
		beginSend(t, db, id, escT0)
		providerID := fmt.Sprintf("SM%d", i)
		sent := func() {
			t.Helper()
			if ok, err := db.DeliverySent(ctx, id, providerID, "sms sent"); err != nil || !ok {
				t.Errorf("%s: DeliverySent: %v, %v; want true", tt.name, ok, err)
			}
		}
		if tt.sentFirst {
			sent()
		}
		if changed, err := db.RecordDeliveryStatus(ctx, id, tt.status, tt.detail); err != nil || !changed {
			t.Errorf("%s: RecordDeliveryStatus: %v, %v; want true", tt.name, changed, err)
		}
		if !tt.sentFirst {
			sent()
		}
		check := func(when string) {
			t.Helper()
			got := getDelivery(t, db, id)
			if got.Status != tt.status || got.ProviderID != providerID || got.SentAt.IsZero() {
				t.Errorf("%s, %s: %s, provider id %q, sent at %s; want %s, %q, a time",
					tt.name, when, got.Status, got.ProviderID, got.SentAt, tt.status, providerID)
			}
			if detail := scalar[string](t, db, `SELECT detail FROM deliveries WHERE id = $1`, id); detail != tt.detail {
				t.Errorf("%s, %s: detail %q, want %q", tt.name, when, detail, tt.detail)
			}
			if evs := pageEvents(t, db, inc); !slices.Equal(evs, tt.events) {
				t.Errorf("%s, %s: events %+v, want %+v", tt.name, when, evs, tt.events)
			}
			fallbacks := scalar[int](t, db, `
				SELECT count(*) FROM deliveries WHERE key = $1 AND channel = 'slack' AND status = 'pending'`,
				d.Key+":fallback")
			if want := map[bool]int{true: 1}[tt.fallback]; fallbacks != want {
				t.Errorf("%s, %s: %d Slack fallbacks, want %d", tt.name, when, fallbacks, want)
			}
		}
		check("recorded")

		// Repeated and late callbacks, and a repeated send, change nothing.
		for _, s := range []oncall.DeliveryStatus{oncall.DeliveryDelivered, oncall.DeliveryFailed} {
			if changed, err := db.RecordDeliveryStatus(ctx, id, s, "again"); err != nil || changed {
				t.Errorf("%s: repeated %s callback: %v, %v; want false", tt.name, s, changed, err)
			}
		}
		if ok, err := db.DeliverySent(ctx, id, "other", "sms sent again"); err != nil || ok {
			t.Errorf("%s: repeated DeliverySent: %v, %v; want false", tt.name, ok, err)
		}
		check("after repeats")
	}

	if _, err := db.RecordDeliveryStatus(ctx, 99999, oncall.DeliveryDelivered, ""); !errors.Is(err, oncall.ErrNotFound) {
		t.Errorf("status of an unknown delivery: %v, want ErrNotFound", err)
	}
	inc := openEscIncident(t, db, "invalid")
	id := addDelivery(t, db, plan(inc, 0, 0, "UBOB", oncall.NotifySMS, escT0))
	beginSend(t, db, id, escT0)
	for _, s := range []oncall.DeliveryStatus{oncall.DeliverySent, oncall.DeliveryCancelled, "bogus"} {
		if changed, err := db.RecordDeliveryStatus(ctx, id, s, ""); err == nil || changed {
			t.Errorf("status %q: %v, %v; want an error", s, changed, err)
		}
	}
	if got := getDelivery(t, db, id); got.Status != oncall.DeliverySending {
		t.Errorf("after invalid statuses: %s, want sending", got.Status)
	}
}
