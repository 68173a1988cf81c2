package escalation_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/config"
	"github.com/oncallbot/oncall/escalation"
	"github.com/oncallbot/oncall/storage"
)

// deliverConfig adds to testConfig dave, whose only way to be paged is SMS.
var deliverConfig = &config.Config{Users: append(slices.Clone(testConfig.Users),
	config.User{Slack: "UDAVE", Phone: "+4915100000004", Notify: []config.NotifyRule{rule("sms")}})}

const (
	alicePhone = "+4915100000001"
	davePhone  = "+4915100000004"

	testLease      = time.Minute
	testMaxBackoff = 40 * time.Millisecond
)

// recordingQueue is a DeliveryQueue that keeps the deliveries it is given.
type recordingQueue struct {
	mu sync.Mutex
	ds []oncall.Delivery
}

func (q *recordingQueue) PublishDeliveries(_ context.Context, ds []oncall.Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ds = append(q.ds, ds...)
	return nil
}

// take removes and returns the deliveries of an incident queued so far.
func (q *recordingQueue) take(incidentID int64) []oncall.Delivery {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out, rest []oncall.Delivery
	for _, d := range q.ds {
		if d.IncidentID == incidentID {
			out = append(out, d)
		} else {
			rest = append(rest, d)
		}
	}
	q.ds = rest
	return out
}

// recordingNotifier counts the announcements of each incident.
type recordingNotifier struct {
	mu        sync.Mutex
	announced map[int64]int
}

func (n *recordingNotifier) PublishIncidentChanged(_ context.Context, id int64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.announced == nil {
		n.announced = map[int64]int{}
	}
	n.announced[id]++
	return nil
}

func (n *recordingNotifier) count(id int64) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.announced[id]
}

type sendResult struct {
	providerID string
	err        error
}

type findResult struct {
	providerID string
	found      bool
	err        error
}

type findCall struct {
	page  oncall.Page
	since time.Time
}

// scriptedSender is a Sender that records its calls and answers them from
// its scripts, in order; past the end of a script Send succeeds and Find
// finds nothing.
type scriptedSender struct {
	name  string
	mu    sync.Mutex
	sends []sendResult
	finds []findResult
	sent  []oncall.Page
	found []findCall
}

func (s *scriptedSender) Send(_ context.Context, p oncall.Page) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, p)
	if len(s.sends) == 0 {
		return fmt.Sprintf("%s-%d", s.name, len(s.sent)), nil
	}
	r := s.sends[0]
	s.sends = s.sends[1:]
	return r.providerID, r.err
}

func (s *scriptedSender) Find(_ context.Context, p oncall.Page, since time.Time) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.found = append(s.found, findCall{page: p, since: since})
	if len(s.finds) == 0 {
		return "", false, nil
	}
	r := s.finds[0]
	s.finds = s.finds[1:]
	return r.providerID, r.found, r.err
}

func (s *scriptedSender) script(sends []sendResult, finds []findResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sends, s.finds = sends, finds
}

func (s *scriptedSender) calls() (sent []oncall.Page, found []findCall) {
	if s == nil {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent), slices.Clone(s.found)
}

// rateLimited is a provider's "too many requests" with its Retry-After.
type rateLimited struct{ after time.Duration }

func (e rateLimited) Error() string {
	return fmt.Sprintf("429 too many requests, retry after %s", e.after)
}
func (e rateLimited) RetryDelay() time.Duration { return e.after }

// deliverHarness runs the engine with a recording queue, and a worker over
// scripted senders, on one database. Its clock starts at the wall clock:
// the store stamps some times (a fallback's due time, a timeout's lease)
// with the database's.
type deliverHarness struct {
	*engineHarness
	start    time.Time
	queue    *recordingQueue
	senders  map[oncall.NotifyChannel]*scriptedSender
	notifier *recordingNotifier
	wakes    atomic.Int64
	worker   *escalation.Worker
}

// newDeliverHarness has a sender for each of channels, for all if none
// are given. Its chains are "to-<person>" for UALICE and UDAVE, and
// "alice-then-bob".
func newDeliverHarness(t *testing.T, db *storage.DB, channels ...oncall.NotifyChannel) *deliverHarness {
	t.Helper()
	if len(channels) == 0 {
		channels = []oncall.NotifyChannel{oncall.NotifySlack, oncall.NotifySMS, oncall.NotifyCall}
	}
	users := func(u ...string) oncall.EscalationStep {
		return oncall.EscalationStep{Kind: oncall.StepNotifyUsers, Users: u}
	}
	chains := map[string]oncall.EscalationChain{
		"to-UALICE": {Name: "to-UALICE", Steps: []oncall.EscalationStep{users("UALICE")}},
		"to-UDAVE":  {Name: "to-UDAVE", Steps: []oncall.EscalationStep{users("UDAVE")}},
		"alice-then-bob": {Name: "alice-then-bob", Steps: []oncall.EscalationStep{
			users("UALICE"), {Kind: oncall.StepWait, Wait: 20 * time.Minute}, users("UBOB"),
		}},
	}
	start := time.Now().UTC().Truncate(time.Millisecond)
	plans := escalation.NewPlans(deliverConfig)
	h := &deliverHarness{
		engineHarness: &engineHarness{db: db, clock: &fakeClock{now: start}, people: &countingPeople{plans: plans},
			rota: &rota{}},
		start: start, queue: &recordingQueue{}, notifier: &recordingNotifier{},
		senders: map[oncall.NotifyChannel]*scriptedSender{},
	}
	e, err := escalation.NewEngine(escalation.EngineConfig{
		Store: db, Chains: chains, Schedules: h.rota, People: h.people, Clock: h.clock,
		Deliveries: db, Queue: h.queue,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.engine = e
	senders := map[oncall.NotifyChannel]escalation.Sender{}
	for _, ch := range channels {
		s := &scriptedSender{name: string(ch)}
		h.senders[ch], senders[ch] = s, s
	}
	h.worker, err = escalation.NewWorker(escalation.WorkerConfig{
		Store: db, Senders: senders, Phones: plans, Notifier: h.notifier,
		Wake:  func() { h.wakes.Add(1) },
		Lease: testLease, MaxAttempts: 3, MinBackoff: 10 * time.Millisecond, MaxBackoff: testMaxBackoff,
		Now: h.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// tickAt moves the clock to at and ticks, and returns the deliveries of
// the incident the tick queued.
func (h *deliverHarness) tickAt(t *testing.T, incidentID int64, at time.Time) []oncall.Delivery {
	t.Helper()
	h.clock.Set(at)
	if _, err := h.engine.Tick(t.Context()); err != nil {
		t.Fatal(err)
	}
	return h.queue.take(incidentID)
}

// queuedBy returns the delivery by ch among ds.
func queuedBy(t *testing.T, ds []oncall.Delivery, ch oncall.NotifyChannel) oncall.Delivery {
	t.Helper()
	for _, d := range ds {
		if d.Channel == ch {
			return d
		}
	}
	t.Fatalf("no delivery by %s was queued, only %v", ch, ds)
	return oncall.Delivery{}
}

func (h *deliverHarness) delivery(t *testing.T, id int64) oncall.Delivery {
	t.Helper()
	d, err := h.db.Delivery(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (h *deliverHarness) deliveries(t *testing.T, incidentID int64) []oncall.Delivery {
	t.Helper()
	ds, err := h.db.Deliveries(t.Context(), incidentID)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// pagingEvents returns the paging events of an incident as
// "kind target channel: note".
func (h *deliverHarness) pagingEvents(t *testing.T, incidentID int64) []string {
	t.Helper()
	evs, err := h.db.Events(t.Context(), incidentID)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		switch e.Kind {
		case oncall.EventPaged, oncall.EventPageDelivered, oncall.EventPageFailed:
			out = append(out, fmt.Sprintf("%s %s %s: %s", e.Kind, e.Target, e.Channel, e.Note))
		}
	}
	return out
}

// sendCalls is how many times the sender of ch was asked to send and to
// find.
func (h *deliverHarness) sendCalls(ch oncall.NotifyChannel) (sends, finds int) {
	sent, found := h.senders[ch].calls()
	return len(sent), len(found)
}

// retryDelay is the RetryDelay of err, 0 if it has none.
func retryDelay(err error) time.Duration {
	var r interface{ RetryDelay() time.Duration }
	if errors.As(err, &r) {
		return r.RetryDelay()
	}
	return 0
}

// keyOf is a delivery's key without its incident.
func keyOf(d oncall.Delivery) string {
	_, key, _ := strings.Cut(d.Key, ":")
	return key
}

// anyBackoff, as the RetryDelay wanted of Handle's error, is one of the
// worker's own backoffs.
const anyBackoff time.Duration = -1

func TestWorkerSendsAndFallsBack(t *testing.T) {
	t.Parallel()
	var (
		unavailable = errors.New("503 service unavailable")
		limited     = fmt.Errorf("post message: %w", rateLimited{7 * time.Second})
		invalid     = fmt.Errorf("page UDAVE by sms: %w: %w", oncall.ErrPermanent, errors.New("21211 invalid 'To' number"))
	)
	type handle struct {
		wantDelay  time.Duration // of Handle's error: 0 for none, anyBackoff, or exactly this
		wantStatus oncall.DeliveryStatus
		wantError  string // the delivery's error after it
		// rateLimited: the attempt does not count against the delivery.
		rateLimited bool
	}
	cases := []struct {
		name     string
		chain    string
		at       time.Duration // when the delivery is due
		channel  oncall.NotifyChannel
		channels []oncall.NotifyChannel // with a sender; nil: all
		sends    []sendResult
		handles  []handle
		// wantFinds: how many times the sender was asked whether an
		// earlier attempt went out (after server errors, which may have).
		wantFinds int
		// wantProviderID of the delivery after the handles.
		wantProviderID string
		wantEvents     []string
		// wantChanges to the incident's other deliveries: "new <key>
		// <channel>" or "moved <key>" (due earlier). The one changed is
		// then due now, and queued and sent by the next tick.
		wantChanges []string
	}{
		{
			name: "accepted: sent, recorded and announced", chain: "to-UALICE", channel: oncall.NotifySlack,
			sends:          []sendResult{{providerID: "C0HOOK:1700000000.000100"}},
			handles:        []handle{{wantStatus: oncall.DeliverySent}},
			wantProviderID: "C0HOOK:1700000000.000100",
			wantEvents:     []string{"paged UALICE slack: "},
		},
		{
			name: "rate limited: tried again after the provider's delay", chain: "to-UALICE",
			channel: oncall.NotifySlack,
			sends:   []sendResult{{err: limited}, {providerID: "C0HOOK:1700000000.000200"}},
			handles: []handle{
				{wantDelay: 7 * time.Second, wantStatus: oncall.DeliveryQueued, wantError: limited.Error(),
					rateLimited: true},
				{wantStatus: oncall.DeliverySent},
			},
			wantProviderID: "C0HOOK:1700000000.000200",
			wantEvents:     []string{"paged UALICE slack: "},
		},
		{
			name: "an SMS failing until the last attempt fails, and the call is due now", chain: "to-UALICE",
			at: 5 * time.Minute, channel: oncall.NotifySMS,
			sends: []sendResult{{err: unavailable}, {err: unavailable}, {err: unavailable}},
			// A server error may come after the page went out: it stays
			// sending, and each next attempt asks the provider first.
			wantFinds: 2,
			handles: []handle{
				{wantDelay: anyBackoff, wantStatus: oncall.DeliverySending, wantError: unavailable.Error()},
				{wantDelay: anyBackoff, wantStatus: oncall.DeliverySending, wantError: unavailable.Error()},
				{wantStatus: oncall.DeliveryFailed, wantError: "503 service unavailable (after 3 attempts)"},
			},
			wantEvents: []string{
				"paged UALICE slack: ", // the plan's earlier page, sent
				"page_failed UALICE sms: 503 service unavailable (after 3 attempts); paging by phone call now",
			},
			wantChanges: []string{"moved 0:0:UALICE:call"},
		},
		{
			name:  "a failed call, the last way at its step (Slack was planned), falls back to nothing",
			chain: "to-UALICE", at: 10 * time.Minute, channel: oncall.NotifyCall,
			sends: []sendResult{{err: unavailable}, {err: unavailable}, {err: unavailable}},
			// A server error may come after the page went out: it stays
			// sending, and each next attempt asks the provider first.
			wantFinds: 2,
			handles: []handle{
				{wantDelay: anyBackoff, wantStatus: oncall.DeliverySending, wantError: unavailable.Error()},
				{wantDelay: anyBackoff, wantStatus: oncall.DeliverySending, wantError: unavailable.Error()},
				{wantStatus: oncall.DeliveryFailed, wantError: "503 service unavailable (after 3 attempts)"},
			},
			wantEvents: []string{
				"paged UALICE slack: ", "paged UALICE sms: ", // the plan's earlier pages, sent
				"page_failed UALICE call: 503 service unavailable (after 3 attempts); no other way to reach them at this step",
			},
		},
		{
			name:  "a permanent error fails at once, and an SMS-only person gets a Slack message",
			chain: "to-UDAVE", channel: oncall.NotifySMS,
			sends:       []sendResult{{err: invalid}},
			handles:     []handle{{wantStatus: oncall.DeliveryFailed, wantError: invalid.Error()}},
			wantEvents:  []string{"page_failed UDAVE sms: " + invalid.Error() + "; paging by Slack now"},
			wantChanges: []string{"new 0:0:UDAVE:sms:fallback slack"},
		},
		{
			name:  "a channel without a sender fails naming it, and falls back to Slack",
			chain: "to-UDAVE", channel: oncall.NotifySMS, channels: []oncall.NotifyChannel{oncall.NotifySlack},
			handles:     []handle{{wantStatus: oncall.DeliveryFailed, wantError: "SMS is not configured"}},
			wantEvents:  []string{"page_failed UDAVE sms: SMS is not configured; paging by Slack now"},
			wantChanges: []string{"new 0:0:UDAVE:sms:fallback slack"},
		},
	}
	db, _ := newEngineDB(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			h := newDeliverHarness(t, db, c.channels...)
			if s := h.senders[c.channel]; s != nil {
				s.script(c.sends, nil)
			}
			inc := h.open(t, fmt.Sprintf("deliver%d", i), c.chain, oncall.SeverityWarning)
			// The earlier pages of the plan are sent; only this one is
			// scripted.
			queued := h.tickAt(t, inc.ID, h.start)
			if c.at > 0 {
				queued = append(queued, h.tickAt(t, inc.ID, h.start.Add(c.at))...)
			}
			d := queuedBy(t, queued, c.channel)
			for _, o := range queued {
				if o.ID == d.ID {
					continue
				}
				if err := h.worker.Handle(ctx, o.ID); err != nil {
					t.Fatalf("sending %s: %v", o.Key, err)
				}
			}
			announcedBefore := h.notifier.count(inc.ID)
			before := map[int64]oncall.Delivery{}
			for _, o := range h.deliveries(t, inc.ID) {
				before[o.ID] = o
			}

			free := 0
			for n, want := range c.handles {
				err := h.worker.Handle(ctx, d.ID)
				if want.rateLimited {
					free++
				}
				got := retryDelay(err)
				switch {
				case want.wantDelay == 0 && err != nil:
					t.Fatalf("handle %d: %v, want no error", n+1, err)
				case want.wantDelay == anyBackoff && (got <= 0 || got > testMaxBackoff):
					t.Errorf("handle %d: error %v asks to retry in %s, want a backoff in (0, %s]", n+1, err, got,
						testMaxBackoff)
				case want.wantDelay > 0 && got != want.wantDelay:
					t.Errorf("handle %d: error %v asks to retry in %s, want %s", n+1, err, got, want.wantDelay)
				}
				row := h.delivery(t, d.ID)
				if row.Status != want.wantStatus || row.Error != want.wantError || row.Attempts != n+1-free {
					t.Errorf("handle %d: delivery %s, error %q, %d attempts; want %s, %q, %d", n+1,
						row.Status, row.Error, row.Attempts, want.wantStatus, want.wantError, n+1-free)
				}
			}

			row := h.delivery(t, d.ID)
			if row.ProviderID != c.wantProviderID {
				t.Errorf("provider id %q, want %q", row.ProviderID, c.wantProviderID)
			}
			if sent := row.Status == oncall.DeliverySent; sent == row.SentAt.IsZero() {
				t.Errorf("delivery %s with sent_at %v", row.Status, row.SentAt)
			}
			sent, found := h.senders[c.channel].calls()
			if len(sent) != len(c.sends) || len(found) != c.wantFinds {
				t.Errorf("%d sends and %d finds, want %d and %d", len(sent), len(found), len(c.sends), c.wantFinds)
			}
			wantPhone := map[string]string{"UALICE": alicePhone, "UDAVE": davePhone}[d.Person]
			if c.channel == oncall.NotifySlack {
				wantPhone = ""
			}
			for _, p := range sent {
				if p.Delivery.ID != d.ID || p.Incident.ID != inc.ID || p.Incident.Title != "Disk full" ||
					p.Phone != wantPhone {
					t.Errorf("sent delivery %d of incident %d %q to %q, want %d of %d \"Disk full\" to %q",
						p.Delivery.ID, p.Incident.ID, p.Incident.Title, p.Phone, d.ID, inc.ID, wantPhone)
				}
			}
			if got := h.pagingEvents(t, inc.ID); !slices.Equal(got, c.wantEvents) {
				t.Errorf("events\n got %q\nwant %q", got, c.wantEvents)
			}
			if got := h.notifier.count(inc.ID) - announcedBefore; got != 1 {
				t.Errorf("incident announced %d times, want once", got)
			}

			var (
				changes []string
				next    oncall.Delivery
			)
			for _, o := range h.deliveries(t, inc.ID) {
				old, ok := before[o.ID]
				switch {
				case o.ID == d.ID:
					continue
				case !ok:
					changes = append(changes, fmt.Sprintf("new %s %s", keyOf(o), o.Channel))
				case !o.DueAt.Equal(old.DueAt):
					changes = append(changes, "moved "+keyOf(o))
				default:
					continue
				}
				next = o
			}
			if !slices.Equal(changes, c.wantChanges) {
				t.Fatalf("other deliveries changed: %q, want %q", changes, c.wantChanges)
			}
			if len(changes) == 0 {
				if n := h.wakes.Load(); n != 0 {
					t.Errorf("engine woken %d times with no page due", n)
				}
				return
			}

			// The fallback is due now: the engine is woken, and its next
			// tick queues it.
			if now := time.Now(); next.DueAt.After(now) || next.Status != oncall.DeliveryPending {
				t.Errorf("fallback %s %s due at %v, want pending and due by now (%v)", next.Key, next.Status,
					next.DueAt, now)
			}
			if n := h.wakes.Load(); n != 1 {
				t.Errorf("engine woken %d times, want once", n)
			}
			queued = h.tickAt(t, inc.ID, later(h.clock.Now(), time.Now()))
			if len(queued) != 1 || queued[0].ID != next.ID {
				t.Fatalf("the tick after the failure queued %v, want only %s", queued, next.Key)
			}
			if err := h.worker.Handle(ctx, next.ID); err != nil {
				t.Fatal(err)
			}
			if got := h.delivery(t, next.ID); got.Status != oncall.DeliverySent {
				t.Errorf("fallback %s is %s, want sent", got.Key, got.Status)
			}
			evs := h.pagingEvents(t, inc.ID)
			if want := fmt.Sprintf("paged %s %s: ", next.Person, next.Channel); evs[len(evs)-1] != want {
				t.Errorf("last event %q, want %q", evs[len(evs)-1], want)
			}
		})
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// TestWorkerReconcilesAfterCrash: a worker died between calling the
// provider and recording it. Once its lease ran out, the next attempt asks
// the provider whether the page went out before sending it again.
func TestWorkerReconcilesAfterCrash(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name           string
		find           findResult
		wantSends      int // counting the dead worker's
		wantProviderID string
		wantNote       string
	}{
		{
			name: "found: recorded, not sent again", find: findResult{providerID: "C0HOOK:1.1", found: true},
			wantSends: 1, wantProviderID: "C0HOOK:1.1",
		},
		{
			name: "not found: sent", find: findResult{},
			wantSends: 2, wantProviderID: "slack-2",
		},
		{
			name: "cannot tell: sent again, and the timeline says so", find: findResult{err: errors.New("502 bad gateway")},
			wantSends: 2, wantProviderID: "slack-2",
			wantNote: "an earlier attempt was cut short and the provider could not say whether it went out; paged again",
		},
	}
	db, _ := newEngineDB(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			h := newDeliverHarness(t, db)
			slack := h.senders[oncall.NotifySlack]
			slack.script(nil, []findResult{c.find})
			inc := h.open(t, fmt.Sprintf("crash%d", i), "to-UALICE", oncall.SeverityWarning)
			d := queuedBy(t, h.tickAt(t, inc.ID, h.start), oncall.NotifySlack)

			// The worker that dies: it takes the delivery and pages.
			claim, err := db.BeginDelivery(ctx, d.ID, h.start, testLease)
			if err != nil {
				t.Fatal(err)
			}
			if claim.Step != storage.DeliverySend {
				t.Fatalf("first claim: step %v, want DeliverySend", claim.Step)
			}
			if _, err := slack.Send(ctx, oncall.Page{Delivery: claim.Delivery, Incident: claim.Incident}); err != nil {
				t.Fatal(err)
			}

			h.clock.Set(h.start.Add(testLease + time.Second))
			if err := h.worker.Handle(ctx, d.ID); err != nil {
				t.Fatal(err)
			}
			sent, found := slack.calls()
			if len(found) != 1 {
				t.Fatalf("%d finds, want 1", len(found))
			}
			if f := found[0]; !f.since.Equal(h.start) || f.page.Delivery.ID != d.ID || f.page.Incident.ID != inc.ID {
				t.Errorf("found delivery %d of incident %d since %v, want %d of %d since the first attempt %v",
					f.page.Delivery.ID, f.page.Incident.ID, f.since, d.ID, inc.ID, h.start)
			}
			if len(sent) != c.wantSends {
				t.Errorf("%d sends, want %d", len(sent), c.wantSends)
			}
			row := h.delivery(t, d.ID)
			if row.Status != oncall.DeliverySent || row.ProviderID != c.wantProviderID || row.Attempts != 2 {
				t.Errorf("delivery %s with provider id %q after %d attempts, want sent with %q after 2",
					row.Status, row.ProviderID, row.Attempts, c.wantProviderID)
			}
			want := []string{"paged UALICE slack: " + c.wantNote}
			if got := h.pagingEvents(t, inc.ID); !slices.Equal(got, want) {
				t.Errorf("events\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestWorkerLeavesALeaseToItsHolder: another worker is sending the
// delivery; the message comes back when its lease ends.
func TestWorkerLeavesALeaseToItsHolder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, _ := newEngineDB(t)
	h := newDeliverHarness(t, db)
	inc := h.open(t, "leased", "to-UALICE", oncall.SeverityWarning)
	d := queuedBy(t, h.tickAt(t, inc.ID, h.start), oncall.NotifySlack)
	if _, err := db.BeginDelivery(ctx, d.ID, h.start, testLease); err != nil {
		t.Fatal(err)
	}

	h.clock.Set(h.start.Add(20 * time.Second))
	err := h.worker.Handle(ctx, d.ID)
	if got, want := retryDelay(err), testLease-20*time.Second; got != want {
		t.Errorf("Handle: %v, retry in %s; want a retry in %s, when the lease ends", err, got, want)
	}
	if sends, finds := h.sendCalls(oncall.NotifySlack); sends+finds != 0 {
		t.Errorf("%d sends and %d finds, want none", sends, finds)
	}
	if row := h.delivery(t, d.ID); row.Status != oncall.DeliverySending || row.Attempts != 1 {
		t.Errorf("delivery %s after %d attempts, want still sending after 1", row.Status, row.Attempts)
	}
}

// TestWorkerTimeout: a Send that timed out may have paged. The delivery
// stays sending under a lease until the retry, which asks the provider
// first.
func TestWorkerTimeout(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, _ := newEngineDB(t)
	h := newDeliverHarness(t, db)
	slack := h.senders[oncall.NotifySlack]
	timeout := fmt.Errorf("post message: %w", context.DeadlineExceeded)
	slack.script([]sendResult{{err: timeout}}, []findResult{{providerID: "C0HOOK:1.2", found: true}})
	inc := h.open(t, "timeout", "to-UALICE", oncall.SeverityWarning)
	d := queuedBy(t, h.tickAt(t, inc.ID, h.start), oncall.NotifySlack)

	err := h.worker.Handle(ctx, d.ID)
	if got := retryDelay(err); got <= 0 || got > testMaxBackoff || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Handle: %v, retry in %s; want the timeout, retried in (0, %s]", err, got, testMaxBackoff)
	}
	if row := h.delivery(t, d.ID); row.Status != oncall.DeliverySending || row.Error != timeout.Error() {
		t.Errorf("after the timeout: delivery %s, error %q; want sending, %q", row.Status, row.Error, timeout)
	}

	// The clock has not passed the retry: the lease holds.
	if err := h.worker.Handle(ctx, d.ID); retryDelay(err) <= 0 {
		t.Errorf("Handle before the lease ends: %v, want a retry later", err)
	}
	if sends, finds := h.sendCalls(oncall.NotifySlack); sends != 1 || finds != 0 {
		t.Errorf("before the lease ends: %d sends and %d finds, want 1 and none", sends, finds)
	}

	h.clock.Set(time.Now().Add(time.Second))
	if err := h.worker.Handle(ctx, d.ID); err != nil {
		t.Fatalf("Handle after the lease: %v", err)
	}
	sent, found := slack.calls()
	if len(sent) != 1 || len(found) != 1 {
		t.Fatalf("after the lease: %d sends and %d finds, want 1 and 1", len(sent), len(found))
	}
	if !found[0].since.Equal(h.start) {
		t.Errorf("found since %v, want the timed out attempt's start %v", found[0].since, h.start)
	}
	row := h.delivery(t, d.ID)
	if row.Status != oncall.DeliverySent || row.ProviderID != "C0HOOK:1.2" || row.Error != "" {
		t.Errorf("delivery %s with provider id %q, error %q; want sent with C0HOOK:1.2, no error",
			row.Status, row.ProviderID, row.Error)
	}
	if got, want := h.pagingEvents(t, inc.ID), []string{"paged UALICE slack: "}; !slices.Equal(got, want) {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
}

// TestWorkerCancelsPagesNoLongerNeeded: the incident changed between the
// tick that queued a page and the worker taking it.
func TestWorkerCancelsPagesNoLongerNeeded(t *testing.T) {
	t.Parallel()
	db, _ := newEngineDB(t)

	t.Run("resolved", func(t *testing.T) {
		ctx := t.Context()
		h := newDeliverHarness(t, db)
		inc := h.open(t, "resolved", "to-UALICE", oncall.SeverityWarning)
		d := queuedBy(t, h.tickAt(t, inc.ID, h.start), oncall.NotifySlack)
		if _, _, err := db.Transition(ctx, inc.ID, oncall.ActionResolve, oncall.SlackActor("UALICE"), ""); err != nil {
			t.Fatal(err)
		}
		if err := h.worker.Handle(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		assertCancelled(t, h, inc.ID, d.ID)
	})

	t.Run("acknowledged", func(t *testing.T) {
		ctx := t.Context()
		h := newDeliverHarness(t, db)
		inc := h.open(t, "acked", "alice-then-bob", oncall.SeverityWarning)
		d := queuedBy(t, h.tickAt(t, inc.ID, h.start), oncall.NotifySlack)
		if _, _, err := db.Transition(ctx, inc.ID, oncall.ActionAcknowledge, oncall.SlackActor("UALICE"), ""); err != nil {
			t.Fatal(err)
		}
		if err := h.worker.Handle(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		assertCancelled(t, h, inc.ID, d.ID)

		// A manual escalation of the acknowledged incident pages still.
		h.act(t, inc.ID, oncall.ActionEscalate)
		bob := h.tickAt(t, inc.ID, h.start.Add(time.Minute))
		if len(bob) != 1 || bob[0].Person != "UBOB" {
			t.Fatalf("the escalation queued %v, want bob's page", bob)
		}
		if err := h.worker.Handle(ctx, bob[0].ID); err != nil {
			t.Fatal(err)
		}
		if row := h.delivery(t, bob[0].ID); row.Status != oncall.DeliverySent {
			t.Errorf("bob's page planned after the acknowledgement is %s, want sent", row.Status)
		}
	})
}

func assertCancelled(t *testing.T, h *deliverHarness, incidentID, id int64) {
	t.Helper()
	if row := h.delivery(t, id); row.Status != oncall.DeliveryCancelled {
		t.Errorf("delivery %s, want cancelled", row.Status)
	}
	if sends, _ := h.sendCalls(oncall.NotifySlack); sends != 0 {
		t.Errorf("%d sends, want none", sends)
	}
	if evs := h.pagingEvents(t, incidentID); len(evs) != 0 {
		t.Errorf("paging events %q, want none", evs)
	}
	if n := h.notifier.count(incidentID); n != 0 {
		t.Errorf("incident announced %d times, want never", n)
	}
}

func TestWorkerDropsUnknownDelivery(t *testing.T) {
	t.Parallel()
	db, _ := newEngineDB(t)
	h := newDeliverHarness(t, db)
	if err := h.worker.Handle(t.Context(), 12345); err != nil {
		t.Errorf("Handle of an unknown delivery: %v, want nil (dropped)", err)
	}
	for ch := range h.senders {
		if sends, finds := h.sendCalls(ch); sends+finds != 0 {
			t.Errorf("%s: %d sends and %d finds, want none", ch, sends, finds)
		}
	}
}

// TestWorkerReconcilesAResolvedIncident: the incident was resolved while
// an attempt that may have paged (a crash, or a timeout) was unsettled.
// The provider's record is kept if the page went out; if it did not, the
// page is no longer needed and must not be sent.
func TestWorkerReconcilesAResolvedIncident(t *testing.T) {
	t.Parallel()
	timeout := fmt.Errorf("post message: %w", context.DeadlineExceeded)
	cases := []struct {
		name string
		// unsettle leaves the delivery sending: a worker that dies after
		// taking it, or one whose Send timed out.
		unsettle       func(t *testing.T, h *deliverHarness, id int64)
		find           findResult
		wantSends      int                   // before the incident was resolved
		wantStatus     oncall.DeliveryStatus // "": any but sending or sent; events not checked
		wantProviderID string
		wantEvents     []string
	}{
		{
			name: "a crashed attempt that paged is recorded", unsettle: crashWhileSending,
			find:       findResult{providerID: "C0HOOK:1.3", found: true},
			wantStatus: oncall.DeliverySent, wantProviderID: "C0HOOK:1.3",
			wantEvents: []string{"paged UALICE slack: "},
		},
		{
			name: "a crashed attempt that did not page is not sent", unsettle: crashWhileSending,
			wantStatus: oncall.DeliveryCancelled,
		},
		{
			name: "a crashed attempt the provider cannot tell about is not sent", unsettle: crashWhileSending,
			find: findResult{err: errors.New("502 bad gateway")},
			// How this is recorded is open; it is not "sent".
		},
		{
			name: "a timed out attempt that did not page is not sent",
			unsettle: func(t *testing.T, h *deliverHarness, id int64) {
				h.senders[oncall.NotifySlack].script([]sendResult{{err: timeout}}, nil)
				if err := h.worker.Handle(t.Context(), id); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Handle: %v, want the timeout", err)
				}
			},
			wantSends: 1, wantStatus: oncall.DeliveryCancelled,
		},
	}
	db, _ := newEngineDB(t)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			h := newDeliverHarness(t, db)
			slack := h.senders[oncall.NotifySlack]
			inc := h.open(t, fmt.Sprintf("resolved%d", i), "to-UALICE", oncall.SeverityWarning)
			d := queuedBy(t, h.tickAt(t, inc.ID, h.start), oncall.NotifySlack)
			c.unsettle(t, h, d.ID)
			slack.script(nil, []findResult{c.find})
			if _, _, err := db.Transition(ctx, inc.ID, oncall.ActionResolve, oncall.SlackActor("UALICE"), ""); err != nil {
				t.Fatal(err)
			}

			h.clock.Set(later(h.start.Add(testLease+time.Second), time.Now().Add(time.Second)))
			if err := h.worker.Handle(ctx, d.ID); err != nil {
				t.Fatal(err)
			}
			sent, found := slack.calls()
			if len(found) != 1 {
				t.Errorf("%d finds, want 1: what the unsettled attempt did is recorded", len(found))
			}
			if len(sent) != c.wantSends {
				t.Errorf("BUG: the worker paged UALICE again for a resolved incident (%d sends, want %d): "+
					"after a reconciliation that found no page (or could not tell), Handle sends without checking the incident, "+
					"which BeginDelivery reconciles even when resolved", len(sent), c.wantSends)
			}
			row := h.delivery(t, d.ID)
			if c.wantStatus == "" {
				if row.Status == oncall.DeliverySending || row.Status == oncall.DeliverySent {
					t.Errorf("delivery %s, want it settled and not sent", row.Status)
				}
				return
			}
			if row.Status != c.wantStatus || row.ProviderID != c.wantProviderID {
				t.Errorf("delivery %s with provider id %q, want %s with %q", row.Status, row.ProviderID,
					c.wantStatus, c.wantProviderID)
			}
			if got := h.pagingEvents(t, inc.ID); !slices.Equal(got, c.wantEvents) {
				t.Errorf("events\n got %q\nwant %q", got, c.wantEvents)
			}
		})
	}
}

// crashWhileSending takes a delivery as a worker that then dies, at the
// harness's start, without paging.
func crashWhileSending(t *testing.T, h *deliverHarness, id int64) {
	t.Helper()
	if _, err := h.db.BeginDelivery(t.Context(), id, h.start, testLease); err != nil {
		t.Fatal(err)
	}
}
