package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/bot"
	"github.com/oncallbot/oncall/escalation"
	"github.com/oncallbot/oncall/internal/fakeslack"
	"github.com/oncallbot/oncall/internal/faketwilio"
	"github.com/oncallbot/oncall/internal/pgtest"
	"github.com/oncallbot/oncall/queue"
	"github.com/oncallbot/oncall/storage"
)

// The people of the paging config. alice is paged by Slack at once, by SMS
// 5 minutes later and by a call 5 minutes after that; bob by Slack.
const (
	aliceEmail = "alice@example.com"
	aliceSlack = "U0ALICE"
	alicePhone = "+4915100000001"
	bobEmail   = "bob@example.com"
	bobSlack   = "U0BOB"
	// twilioFrom is the number pages are sent from.
	twilioFrom = "+15550000001"
)

// The paging chain's steps (indexes in the chain: the waits count) and the
// times they fall due after the alert.
const (
	stepAlice = 0 // at once
	stepBob   = 2 // after 10 minutes
	stepHere  = 4 // after 20 minutes
)

// pagingConfig is the config of the paging tests: the webhook integration
// of writeConfig, escalating by the chain "default": alice, wait 10m, bob,
// wait 10m, @here in the channel; no repeat.
var pagingConfig = fmt.Sprintf(`users:
  - email: %s
    slack: %s
    phone: "%s"
    notify: [slack, {wait: 5m}, sms, {wait: 5m}, call]
  - email: %s
    slack: %s
escalation_chains:
  - name: default
    steps:
      - notify_users: [%s]
      - wait: 10m
      - notify_users: [%s]
      - wait: 10m
      - notify_channel: here
integrations:
  - name: deploys
    kind: webhook
    token: %s
    channel: %s
    escalation: default
`, aliceEmail, aliceSlack, alicePhone, bobEmail, bobSlack, aliceEmail, bobEmail, webhookToken, webhookChannel)

// fakeClock is the escalation engine's clock: it stands still until the
// test moves it, and counts how often it was read (the engine reads it at
// every tick).
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	reads int
}

// newFakeClock starts an hour ahead: a chain starts when its alert was
// received, by the wall clock, so it is due at once on this one.
func newFakeClock() *fakeClock { return &fakeClock{now: time.Now().Add(time.Hour)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) readCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// waitTicks waits until the engines have read the clock n more times: with
// nothing due, each read is a tick's, so n >= 2 means a whole tick ran
// since the call.
func (c *fakeClock) waitTicks(t *testing.T, n int) {
	t.Helper()
	want := c.readCount() + n
	poll(t, fmt.Sprintf("%d reads of the clock", n), func() (bool, error) {
		got := c.readCount()
		return got >= want, fmt.Errorf("%d of %d reads", got, want)
	})
}

// pager is serve running with the paging config, a fake Slack, a fake
// Twilio and a fake clock.
type pager struct {
	srv    *running
	slack  *fakeslack.Server
	twilio *faketwilio.Server
	clock  *fakeClock
	dbURL  string
}

// startPager runs serve for the paging tests on the database dbURL ("": a
// fresh one of the shared cluster). Failed pages are retried after
// 20-200ms, 5 attempts at most.
func startPager(t *testing.T, dbURL string) *pager {
	t.Helper()
	p := &pager{slack: newPagingSlack(t), twilio: newFakeTwilio(t), clock: newFakeClock(), dbURL: dbURL}
	if p.dbURL == "" {
		p.dbURL = pgtest.NewDatabase(t)
	}
	p.srv = startServe(t, serveOptions{
		ConfigPath:  writeFile(t, "oncall.yaml", pagingConfig),
		DataDir:     t.TempDir(),
		DatabaseURL: p.dbURL,
		Slack:       slackOptions(p.slack),
		Twilio:      twilioOptionsOf(p.twilio),
		clock:       p.clock,
		tuneWorker: func(c *escalation.WorkerConfig) {
			c.MinBackoff, c.MaxBackoff, c.MaxAttempts = 20*time.Millisecond, 200*time.Millisecond, 5
		},
	})
	p.twilio.SetSMSWebhook(p.srv.URL + "/twilio/sms")
	return p
}

// newPagingSlack starts a fake Slack with alice and bob, the incident
// channel and their direct messages.
func newPagingSlack(t *testing.T) *fakeslack.Server {
	t.Helper()
	fake, err := fakeslack.New(fakeslack.Config{
		Channels: []string{webhookChannel, fakeslack.DMChannel(aliceSlack), fakeslack.DMChannel(bobSlack)},
		Users:    []fakeslack.User{{ID: aliceSlack, Email: aliceEmail, Name: "alice"}, {ID: bobSlack, Email: bobEmail, Name: "bob"}},
	})
	if err != nil {
		t.Fatalf("start fake Slack: %v", err)
	}
	t.Cleanup(fake.Close)
	return fake
}

func newFakeTwilio(t *testing.T) *faketwilio.Server {
	t.Helper()
	fake, err := faketwilio.New(faketwilio.Config{})
	if err != nil {
		t.Fatalf("start fake Twilio: %v", err)
	}
	t.Cleanup(fake.Close)
	return fake
}

func slackOptions(fake *fakeslack.Server) bot.Config {
	return bot.Config{BotToken: fake.BotToken(), AppToken: fake.AppToken(), APIURL: fake.APIURL()}
}

func twilioOptionsOf(fake *faketwilio.Server) twilioOptions {
	return twilioOptions{AccountSID: fake.AccountSID(), AuthToken: fake.AuthToken(), From: twilioFrom, APIURL: fake.URL()}
}

// alert posts a webhook alert and returns the id of its incident.
func (p *pager) alert(t *testing.T, title, dedupKey string) int64 {
	t.Helper()
	post(t, webhookURL(p.srv.URL), webhookAlert(t, title, dedupKey, "firing")).accepted(t, 1)
	return waitIncidentID(t, p.dbURL, "dedup:"+dedupKey)
}

// waitIncidentID waits for the incident of a group and returns its id.
func waitIncidentID(t *testing.T, dbURL, groupKey string) int64 {
	t.Helper()
	var id int
	pollFor(t, processTimeout, "the incident of "+groupKey, func() (bool, error) {
		var err error
		id, err = tryQueryInt(t.Context(), dbURL, "SELECT coalesce(max(id), 0) FROM incidents WHERE group_key = $1", groupKey)
		return id > 0, fmt.Errorf("no incident yet (%v)", err)
	})
	return int64(id)
}

// deliveryKey is the key of person's page by ch at a step of an
// incident's chain (first pass).
func deliveryKey(incidentID int64, step int, person string, ch oncall.NotifyChannel) string {
	return escalation.DeliveryKey(incidentID, step, 0, person, ch)
}

// aliceKeys are the keys of alice's pages at the chain's first step: by
// Slack, by SMS and by a call.
func aliceKeys(incidentID int64) (slack, sms, call string) {
	return deliveryKey(incidentID, stepAlice, aliceEmail, oncall.NotifySlack),
		deliveryKey(incidentID, stepAlice, aliceEmail, oncall.NotifySMS),
		deliveryKey(incidentID, stepAlice, aliceEmail, oncall.NotifyCall)
}

// waitDelivery waits until the delivery with key has the status. It waits
// as long as waits across a restart need.
func waitDelivery(t *testing.T, dbURL, key string, status oncall.DeliveryStatus) {
	t.Helper()
	pollFor(t, processTimeout, fmt.Sprintf("delivery %s to be %s", key, status), func() (bool, error) {
		got, err := deliveryStatus(t.Context(), dbURL, key)
		return err == nil && strings.HasPrefix(got, string(status)+" "), fmt.Errorf("%s (%v)", got, err)
	})
}

// deliveryStatus says how a delivery stands: "sent after 2 attempts".
func deliveryStatus(ctx context.Context, dbURL, key string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", fmt.Errorf("connect to the database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var (
		status   string
		attempts int
		errText  string
	)
	err = conn.QueryRow(ctx, "SELECT status, attempts, error FROM deliveries WHERE key = $1", key).Scan(&status, &attempts, &errText)
	if errors.Is(err, pgx.ErrNoRows) {
		return "not planned", nil
	}
	if err != nil {
		return "", fmt.Errorf("load delivery %s: %w", key, err)
	}
	return fmt.Sprintf("%s after %d attempts (error %q)", status, attempts, errText), nil
}

// deliveries returns the deliveries of an incident by key.
func deliveries(t *testing.T, dbURL string, incidentID int64) map[string]oncall.Delivery {
	t.Helper()
	db, err := storage.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ds, err := db.Deliveries(t.Context(), incidentID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]oncall.Delivery{}
	for _, d := range ds {
		out[d.Key] = d
	}
	return out
}

func findDelivery(t *testing.T, dbURL, key string) (oncall.Delivery, bool) {
	t.Helper()
	var id int64
	if _, err := fmt.Sscanf(key, "%d:", &id); err != nil {
		t.Fatalf("delivery key %q does not start with an incident id", key)
	}
	d, ok := deliveries(t, dbURL, id)[key]
	return d, ok
}

// wantDeliveries checks the deliveries of an incident: exactly the keys of
// want, each with its status.
func wantDeliveries(t *testing.T, dbURL string, incidentID int64, want map[string]oncall.DeliveryStatus) {
	t.Helper()
	got := deliveries(t, dbURL, incidentID)
	for k, status := range want {
		if d, ok := got[k]; !ok || d.Status != status {
			t.Errorf("delivery %s is %q, want %s", k, d.Status, status)
		}
	}
	for k, d := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected delivery %s (%s)", k, d.Status)
		}
	}
}

// pagingEvents lists the paging events of an incident (and its
// acknowledgements) as "kind target channel: note".
func pagingEvents(t *testing.T, dbURL string, incidentID int64) []string {
	t.Helper()
	_, events := loadIncident(t, dbURL, incidentID)
	var out []string
	for _, e := range events {
		switch e.Kind {
		case oncall.EventCreated, oncall.EventAlert:
			continue
		}
		s := string(e.Kind)
		if e.Target != "" {
			s += " " + e.Target + " " + string(e.Channel)
		} else if e.Actor != oncall.ActorSystem {
			s += " by " + string(e.Actor)
		}
		if e.Note != "" {
			s += ": " + e.Note
		}
		out = append(out, s)
	}
	return out
}

// slackPages returns the Slack pages of delivery key: the messages whose
// metadata carry it.
func slackPages(st fakeslack.State, key string) []fakeslack.Message {
	var out []fakeslack.Message
	for _, m := range st.Messages {
		if pageKey(m) == key {
			out = append(out, m)
		}
	}
	return out
}

// pageKey is the delivery key of a page in Slack, "" for other messages.
func pageKey(m fakeslack.Message) string {
	var meta struct {
		EventType    string `json:"event_type"`
		EventPayload struct {
			DeliveryKey string `json:"delivery_key"`
		} `json:"event_payload"`
	}
	if json.Unmarshal(m.Metadata, &meta) != nil || meta.EventType != "oncall_page" {
		return ""
	}
	return meta.EventPayload.DeliveryKey
}

// postsTo counts the chat.postMessage calls to a channel, failed ones
// included, and lists their results.
func postsTo(st fakeslack.State, channel string) []string {
	var out []string
	for _, c := range st.Calls {
		if c.Method == "chat.postMessage" && c.Params["channel"] == channel {
			out = append(out, cmp.Or(c.Error, "ok"))
		}
	}
	return out
}

// smsTo and callsTo return the messages and calls made to a number.
func smsTo(fake *faketwilio.Server, number string) []faketwilio.Message {
	var out []faketwilio.Message
	for _, m := range fake.Messages() {
		if m.To == number && m.Direction == "outbound-api" {
			out = append(out, m)
		}
	}
	return out
}

func callsTo(fake *faketwilio.Server, number string) []faketwilio.Call {
	var out []faketwilio.Call
	for _, c := range fake.Calls() {
		if c.To == number {
			out = append(out, c)
		}
	}
	return out
}

// incidentThread waits for the incident's message and returns its ts.
func incidentThread(t *testing.T, fake *fakeslack.Server, channel string) string {
	t.Helper()
	st := waitSlack(t, fake, "the incident message", func(st fakeslack.State) bool {
		return len(st.TopLevel(channel)) > 0
	})
	return st.TopLevel(channel)[0].TS
}

// waitReplies waits until the thread of ts has a reply starting with each
// of want, and returns the replies.
func waitReplies(t *testing.T, fake *fakeslack.Server, channel, ts string, want ...string) []string {
	t.Helper()
	var texts []string
	waitSlack(t, fake, fmt.Sprintf("thread replies %q", want), func(st fakeslack.State) bool {
		texts = texts[:0]
		for _, r := range st.Replies(channel, ts) {
			texts = append(texts, r.Text)
		}
		for _, w := range want {
			if !slices.ContainsFunc(texts, func(s string) bool { return strings.HasPrefix(s, w) }) {
				return false
			}
		}
		return true
	})
	return texts
}

// TestPagingChain follows an incident through the chain with the clock
// moved by hand: alice by Slack at once, by SMS 5 minutes later, by a call
// after 10 along with bob by Slack; then alice acknowledges by SMS and
// nobody is paged any more.
func TestPagingChain(t *testing.T) {
	t.Parallel()
	p := startPager(t, "")
	id := p.alert(t, "Disk full on db-1", "chain")
	thread := incidentThread(t, p.slack, webhookChannel)
	aliceDM, bobDM := fakeslack.DMChannel(aliceSlack), fakeslack.DMChannel(bobSlack)
	kSlack, kSMS, kCall := aliceKeys(id)
	kBob := deliveryKey(id, stepBob, bobEmail, oncall.NotifySlack)

	// At once: a direct message to alice with the incident's buttons.
	st := waitSlack(t, p.slack, "alice's page", func(st fakeslack.State) bool { return len(slackPages(st, kSlack)) > 0 })
	dm := slackPages(st, kSlack)[0]
	if dm.Channel != aliceDM || dm.ThreadTS != "" {
		t.Errorf("alice's page is in %s (thread %q), want a message in %s", dm.Channel, dm.ThreadTS, aliceDM)
	}
	wantButtons := []string{"Acknowledge=" + bot.ActionIDAcknowledge, "Resolve=" + bot.ActionIDResolve}
	if got := buttonTexts(dm); !slices.Equal(got, wantButtons) {
		t.Errorf("page buttons = %q, want %q", got, wantButtons)
	}
	if text := messageText(dm); !strings.Contains(text, "You are paged") || !strings.Contains(text, "Disk full on db-1") {
		t.Errorf("page does not say who is paged for what:\n%s", text)
	}
	waitDelivery(t, p.dbURL, kSlack, oncall.DeliverySent)
	wantDeliveries(t, p.dbURL, id, map[string]oncall.DeliveryStatus{
		kSlack: oncall.DeliverySent, kSMS: oncall.DeliveryPending, kCall: oncall.DeliveryPending,
	})

	// 5 minutes: an SMS with the reply codes.
	p.clock.Advance(5 * time.Minute)
	waitDelivery(t, p.dbURL, kSMS, oncall.DeliverySent)
	sms := smsTo(p.twilio, alicePhone)
	if len(sms) != 1 || sms[0].From != twilioFrom || !strings.Contains(sms[0].Body, fmt.Sprintf("Reply A%d to acknowledge", id)) {
		t.Fatalf("SMS to alice = %+v, want one from %s with the reply codes", sms, twilioFrom)
	}
	if n := len(callsTo(p.twilio, alicePhone)); n != 0 {
		t.Errorf("%d calls to alice after 5 minutes, want none yet", n)
	}

	// 10 minutes: a call to alice, and the chain's next step pages bob.
	p.clock.Advance(5 * time.Minute)
	waitDelivery(t, p.dbURL, kCall, oncall.DeliverySent)
	waitDelivery(t, p.dbURL, kBob, oncall.DeliverySent)
	waitReplies(t, p.slack, webhookChannel, thread,
		"Paged <@U0ALICE> by Slack", "Paged <@U0ALICE> by SMS", "Paged <@U0ALICE> by phone call",
		"No acknowledgement yet: escalating to step 3 of default: bob@example.com", "Paged <@U0BOB> by Slack")

	// alice acknowledges by SMS.
	answer, err := p.twilio.ReplySMS(t.Context(), alicePhone, twilioFrom, fmt.Sprintf("A%d", id))
	if err != nil {
		t.Fatalf("reply A%d by SMS: %v", id, err)
	}
	if want := fmt.Sprintf("Incident #%d acknowledged.", id); !strings.Contains(string(answer), want) {
		t.Errorf("SMS reply answered %s, want %q", answer, want)
	}
	waitReplies(t, p.slack, webhookChannel, thread, "Acknowledged by <@U0ALICE>")

	// Nothing more, however long nobody else does anything.
	p.clock.Advance(30 * time.Minute)
	p.clock.waitTicks(t, 3)
	inc, _ := loadIncident(t, p.dbURL, id)
	if inc.Status != oncall.StatusAcknowledged || inc.AckedBy != oncall.SlackActor(aliceSlack) {
		t.Errorf("incident is %s by %q, want acknowledged by alice", inc.Status, inc.AckedBy)
	}
	wantDeliveries(t, p.dbURL, id, map[string]oncall.DeliveryStatus{
		kSlack: oncall.DeliverySent, kSMS: oncall.DeliverySent, kCall: oncall.DeliverySent, kBob: oncall.DeliverySent,
	})
	events := pagingEvents(t, p.dbURL, id)
	wantEvents := []string{
		"paged alice@example.com slack", "paged alice@example.com sms", "paged alice@example.com call",
		"escalation_step: escalating to step 3 of default: bob@example.com", "paged bob@example.com slack",
		"acknowledged by slack:U0ALICE",
	}
	if !sameElements(events, wantEvents) {
		t.Errorf("events = %q, want %q (in any order)", events, wantEvents)
	}

	st = p.slack.State()
	for _, k := range []string{kSlack, kBob} {
		if n := len(slackPages(st, k)); n != 1 {
			t.Errorf("%d Slack pages of %s, want 1", n, k)
		}
	}
	if n := len(st.TopLevel(bobDM)); n != 1 {
		t.Errorf("bob has %d direct messages, want 1", n)
	}
	if n := len(st.TopLevel(webhookChannel)); n != 1 {
		t.Errorf("the channel has %d top-level messages, want only the incident's (no @here after the acknowledgement):\n%s",
			n, dumpMessages(st))
	}
	if s, c := len(smsTo(p.twilio, alicePhone)), len(callsTo(p.twilio, alicePhone)); s != 1 || c != 1 {
		t.Errorf("alice got %d SMS and %d calls, want 1 and 1", s, c)
	}
}

// TestPagingSlackFaults fails alice's direct message for a while: it
// arrives once in the end, after as many attempts as it took (waiting for
// a rate limit is not one).
func TestPagingSlackFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fail       func(fake *fakeslack.Server, channel string)
		attempts   int
		postErrors []string
	}{
		{
			name: "429 with Retry-After, then 200",
			fail: func(fake *fakeslack.Server, channel string) {
				fake.FailNextIn("chat.postMessage", channel, 1, http.StatusTooManyRequests, time.Second)
			},
			attempts:   1, // a rate limit does not count
			postErrors: []string{"http 429", "ok"},
		},
		{
			name: "500 three times, then 200",
			fail: func(fake *fakeslack.Server, channel string) {
				fake.FailNextIn("chat.postMessage", channel, 3, http.StatusInternalServerError, 0)
			},
			attempts:   4,
			postErrors: []string{"http 500", "http 500", "http 500", "ok"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startPager(t, "")
			aliceDM := fakeslack.DMChannel(aliceSlack)
			tt.fail(p.slack, aliceDM)
			id := p.alert(t, "Flaky Slack", "flaky")
			k := deliveryKey(id, stepAlice, aliceEmail, oncall.NotifySlack)
			waitDelivery(t, p.dbURL, k, oncall.DeliverySent)

			d, _ := findDelivery(t, p.dbURL, k)
			if d.Attempts != tt.attempts || d.Error != "" || d.ProviderID == "" {
				t.Errorf("delivery = %d attempts, error %q, provider id %q; want %d attempts, no error, an id",
					d.Attempts, d.Error, d.ProviderID, tt.attempts)
			}
			st := p.slack.State()
			if got := postsTo(st, aliceDM); !slices.Equal(got, tt.postErrors) {
				t.Errorf("posts to alice = %q, want %q", got, tt.postErrors)
			}
			if pages := slackPages(st, k); len(pages) != 1 || d.ProviderID != pages[0].Channel+":"+pages[0].TS {
				t.Errorf("%d pages of %s in Slack (delivery's provider id %q), want 1, that one", len(pages), k, d.ProviderID)
			}
			thread := incidentThread(t, p.slack, webhookChannel)
			waitReplies(t, p.slack, webhookChannel, thread, "Paged <@U0ALICE> by Slack")
			if events := pagingEvents(t, p.dbURL, id); !slices.Equal(events, []string{"paged alice@example.com slack"}) {
				t.Errorf("events = %q, want one page of alice by Slack", events)
			}
		})
	}
}

// TestPagingTwilioPermanentFailure makes Twilio refuse alice's SMS for
// good: the failure is recorded and shown, and the call planned 5 minutes
// later is placed at once instead.
func TestPagingTwilioPermanentFailure(t *testing.T) {
	t.Parallel()
	p := startPager(t, "")
	id := p.alert(t, "Payments down", "payments")
	thread := incidentThread(t, p.slack, webhookChannel)
	kSlack, kSMS, kCall := aliceKeys(id)
	waitDelivery(t, p.dbURL, kSlack, oncall.DeliverySent)

	p.twilio.FailNextWith(faketwilio.Messages, 1, faketwilio.Fault{Status: http.StatusBadRequest, Code: 21211,
		Message: "Invalid 'To' Phone Number"})
	p.clock.Advance(5 * time.Minute)
	waitDelivery(t, p.dbURL, kSMS, oncall.DeliveryFailed)
	waitDelivery(t, p.dbURL, kCall, oncall.DeliverySent)
	replies := waitReplies(t, p.slack, webhookChannel, thread, "Could not page <@U0ALICE> by SMS", "Paged <@U0ALICE> by phone call")

	d, _ := findDelivery(t, p.dbURL, kSMS)
	if d.Attempts != 1 || !strings.Contains(d.Error, "21211") {
		t.Errorf("SMS delivery: %d attempts, error %q; want 1 attempt and Twilio's error 21211", d.Attempts, d.Error)
	}
	for _, r := range replies {
		if strings.HasPrefix(r, "Could not page") && !(strings.Contains(r, "21211") && strings.Contains(r, "phone call now")) {
			t.Errorf("failure reply %q does not say why, and that a phone call is tried now", r)
		}
	}
	events := pagingEvents(t, p.dbURL, id)
	if !slices.ContainsFunc(events, func(e string) bool {
		return strings.HasPrefix(e, "page_failed alice@example.com sms: ") && strings.Contains(e, "21211")
	}) {
		t.Errorf("events = %q, want alice's SMS failed with 21211", events)
	}
	if n := len(smsTo(p.twilio, alicePhone)); n != 0 {
		t.Errorf("Twilio holds %d SMS to alice, want none", n)
	}
	if n := len(callsTo(p.twilio, alicePhone)); n != 1 {
		t.Errorf("%d calls to alice, want 1", n)
	}
	var creates int
	for _, r := range p.twilio.Requests() {
		if r.Method == http.MethodPost && r.Resource == faketwilio.Messages {
			creates++
		}
	}
	if creates != 1 {
		t.Errorf("%d SMS requests to Twilio, want 1: a permanent error is not retried", creates)
	}
}

// TestPagingKilledWhileSending kills the real binary while alice's direct
// message is in flight (Slack has it, the answer has not come back) and
// starts it again: after the lease, the delivery is found in Slack by its
// metadata and recorded, not sent twice.
func TestPagingKilledWhileSending(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the oncall binary")
	}
	t.Parallel()
	bin := buildOncall(t)
	fake := newPagingSlack(t)
	dbURL := pgtest.NewDatabase(t)
	dataDir, cfg := t.TempDir(), writeFile(t, "oncall.yaml", pagingConfig)
	env := []string{"DATABASE_URL=" + dbURL, "SLACK_BOT_TOKEN=" + fake.BotToken(), "SLACK_APP_TOKEN=" + fake.AppToken(),
		"SLACK_API_URL=" + fake.APIURL(), "ONCALL_DELIVERY_LEASE=2s"}
	aliceDM := fakeslack.DMChannel(aliceSlack)
	release := fake.HoldNext("chat.postMessage", aliceDM)
	defer release()

	first := startOncallEnv(t, "first", bin, env, dataDir, cfg)
	waitReady(t, first.url)
	post(t, webhookURL(first.url), webhookAlert(t, "Killed mid-page", "killed-mid-page", "firing")).accepted(t, 1)
	id := waitIncidentID(t, dbURL, "dedup:killed-mid-page")
	k := deliveryKey(id, stepAlice, aliceEmail, oncall.NotifySlack)
	waitSlack(t, fake, "alice's page to reach Slack", func(st fakeslack.State) bool { return len(slackPages(st, k)) == 1 })
	if d, _ := findDelivery(t, dbURL, k); d.Status != oncall.DeliverySending {
		t.Fatalf("delivery is %s while Slack's answer is held, want sending", d.Status)
	}
	first.kill(t)

	second := startOncallEnv(t, "second", bin, env, dataDir, cfg)
	// The message the dead process held comes back after the queue's ack
	// wait.
	waitDelivery(t, dbURL, k, oncall.DeliverySent)
	st := fake.State()
	pages := slackPages(st, k)
	if len(pages) != 1 {
		t.Fatalf("%d pages of %s in Slack, want 1", len(pages), k)
	}
	d, _ := findDelivery(t, dbURL, k)
	if want := pages[0].Channel + ":" + pages[0].TS; d.ProviderID != want || d.Attempts != 2 {
		t.Errorf("delivery: provider id %q after %d attempts, want %q after 2 (the send, the reconciliation)",
			d.ProviderID, d.Attempts, want)
	}
	if got := postsTo(st, aliceDM); len(got) != 1 {
		t.Errorf("%d posts to alice (%q), want 1", len(got), got)
	}
	if n := st.CallCount("conversations.history"); n == 0 {
		t.Error("no conversations.history call: the delivery was not reconciled with Slack")
	}
	if events := pagingEvents(t, dbURL, id); !slices.Equal(events, []string{"paged alice@example.com slack"}) {
		t.Errorf("events = %q, want one page of alice by Slack, without a note", events)
	}
	second.stop(t)
}

// TestPagingPostgresRestart restarts PostgreSQL after the first page: the
// chain goes on, and its next pages go out once each.
func TestPagingPostgresRestart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cluster, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := cluster.Stop(); err != nil {
			t.Errorf("stop PostgreSQL: %v", err)
		}
	})
	dbURL, err := cluster.CreateDatabase(ctx, "oncall")
	if err != nil {
		t.Fatal(err)
	}
	p := startPager(t, dbURL)
	id := p.alert(t, "Replica lag", "lag")
	kSlack, kSMS, kCall := aliceKeys(id)
	kBob := deliveryKey(id, stepBob, bobEmail, oncall.NotifySlack)
	waitDelivery(t, dbURL, kSlack, oncall.DeliverySent)

	if err := cluster.Restart(ctx); err != nil {
		t.Fatalf("restart PostgreSQL: %v", err)
	}
	p.clock.Advance(5 * time.Minute)
	waitDelivery(t, dbURL, kSMS, oncall.DeliverySent)
	p.clock.Advance(5 * time.Minute)
	waitDelivery(t, dbURL, kCall, oncall.DeliverySent)
	waitDelivery(t, dbURL, kBob, oncall.DeliverySent)
	thread := incidentThread(t, p.slack, webhookChannel)
	waitReplies(t, p.slack, webhookChannel, thread, "Paged <@U0ALICE> by Slack", "Paged <@U0ALICE> by SMS",
		"Paged <@U0ALICE> by phone call", "No acknowledgement yet", "Paged <@U0BOB> by Slack")

	wantDeliveries(t, dbURL, id, map[string]oncall.DeliveryStatus{
		kSlack: oncall.DeliverySent, kSMS: oncall.DeliverySent, kCall: oncall.DeliverySent, kBob: oncall.DeliverySent,
	})
	st := p.slack.State()
	for _, k := range []string{kSlack, kBob} {
		if n := len(slackPages(st, k)); n != 1 {
			t.Errorf("%d Slack pages of %s, want 1", n, k)
		}
	}
	if s, c := len(smsTo(p.twilio, alicePhone)), len(callsTo(p.twilio, alicePhone)); s != 1 || c != 1 {
		t.Errorf("alice got %d SMS and %d calls, want 1 and 1", s, c)
	}
	wantEvents := []string{"paged alice@example.com slack", "paged alice@example.com sms", "paged alice@example.com call",
		"escalation_step: escalating to step 3 of default: bob@example.com", "paged bob@example.com slack"}
	if events := pagingEvents(t, dbURL, id); !sameElements(events, wantEvents) {
		t.Errorf("events = %q, want %q (in any order)", events, wantEvents)
	}
}

// The replicas test: teams of two people, each team with its own channel
// and chain, so that the bot's pace of one message a second per channel
// (the incident messages, their thread replies and the @here pages share
// it) does not make it slow.
const (
	replicaTeams     = 50
	replicaIncidents = 100
)

// replicaConfig is a config of replicaTeams teams: team k's alerts (label
// team=tKK) go to channel C0TEAMKK and page akk (Slack, SMS after 5m, call
// after 10m), then bkk after 10m, then @here after 20m.
func replicaConfig() string {
	var users, chains, routes strings.Builder
	for k := range replicaTeams {
		fmt.Fprintf(&users, `  - {email: a%02d@example.com, slack: U0A%02d, phone: "%s", notify: [slack, {wait: 5m}, sms, {wait: 5m}, call]}
  - {email: b%02d@example.com, slack: U0B%02d}
`, k, k, replicaPhone(k), k, k)
		fmt.Fprintf(&chains, `  - name: team-%02d
    steps:
      - notify_users: [a%02d@example.com]
      - wait: 10m
      - notify_users: [b%02d@example.com]
      - wait: 10m
      - notify_channel: here
`, k, k, k)
		fmt.Fprintf(&routes, `      - {match: {team: t%02d}, escalation: team-%02d, channel: %s}
`, k, k, replicaChannel(k))
	}
	return fmt.Sprintf(`users:
%sescalation_chains:
%sintegrations:
  - name: deploys
    kind: webhook
    token: %s
    channel: %s
    routes:
%s`, &users, &chains, webhookToken, webhookChannel, &routes)
}

func replicaPhone(team int) string   { return fmt.Sprintf("+49151000001%02d", team) }
func replicaChannel(team int) string { return fmt.Sprintf("C0TEAM%02d", team) }

// TestPagingReplicas runs two serves on one database and one NATS, with
// one clock: every step of every chain fires once, and every page is made
// once, by one replica or the other.
func TestPagingReplicas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	q, err := queue.Open(ctx, queue.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start NATS: %v", err)
	}
	t.Cleanup(q.Close) // after the serves' cleanups stop them
	fake, err := fakeslack.New(fakeslack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	tw := newFakeTwilio(t)
	clock := newFakeClock()
	o := serveOptions{
		ConfigPath:  writeFile(t, "oncall.yaml", replicaConfig()),
		DatabaseURL: pgtest.NewDatabase(t),
		NATSURL:     q.ClientURL(),
		Slack:       slackOptions(fake),
		Twilio:      twilioOptionsOf(tw),
		clock:       clock,
		tuneWorker: func(c *escalation.WorkerConfig) {
			c.MinBackoff, c.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
		},
	}
	replicas := []*running{startServe(t, o), startServe(t, o)}
	dbURL := o.DatabaseURL
	for _, r := range replicas {
		waitReady(t, r.URL)
	}

	for i := range replicaIncidents {
		body := mustJSON(t, map[string]any{
			"title": fmt.Sprintf("Replica test %d", i), "dedup_key": fmt.Sprintf("replica-%d", i), "severity": "critical",
			"labels": map[string]string{"team": fmt.Sprintf("t%02d", i%replicaTeams)},
		})
		post(t, webhookURL(replicas[i%2].URL), body).accepted(t, 1)
	}
	start := time.Now()
	sent := func(what string, step int, ch oncall.NotifyChannel) {
		t.Helper()
		defer func() { t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond)) }()
		pollFor(t, processTimeout, fmt.Sprintf("%d %s", replicaIncidents, what), func() (bool, error) {
			n, err := tryQueryInt(ctx, dbURL, `SELECT count(*) FROM deliveries WHERE step = $1 AND channel = $2 AND status = 'sent'`,
				step, ch)
			return n == replicaIncidents, fmt.Errorf("%d sent (%v)", n, err)
		})
	}
	sent("Slack pages of the first step", stepAlice, oncall.NotifySlack)
	clock.Advance(5 * time.Minute)
	sent("SMS of the first step", stepAlice, oncall.NotifySMS)
	clock.Advance(5 * time.Minute)
	sent("calls of the first step", stepAlice, oncall.NotifyCall)
	sent("Slack pages of the second step", stepBob, oncall.NotifySlack)
	clock.Advance(10 * time.Minute)
	sent("@here posts of the last step", stepHere, oncall.NotifySlack)

	const perIncident = 5 // a's Slack, SMS and call; b's Slack; @here
	for _, c := range []struct {
		sql  string
		want int
	}{
		{"SELECT count(*) FROM incidents", replicaIncidents},
		{"SELECT count(*) FROM deliveries", replicaIncidents * perIncident},
		{"SELECT count(*) FROM deliveries WHERE status = 'sent'", replicaIncidents * perIncident},
		// Waits for the pace of a channel do not count.
		{"SELECT count(*) FROM deliveries WHERE attempts <> 1", 0},
		{"SELECT count(*) FROM incident_escalations WHERE state = 'exhausted'", replicaIncidents},
		{"SELECT count(*) FROM incident_events WHERE kind = 'escalation_step'", replicaIncidents * 2},
		{`SELECT count(*) FROM (SELECT incident_id, note FROM incident_events WHERE kind = 'escalation_step'
		  GROUP BY 1, 2 HAVING count(*) > 1) twice`, 0},
		{"SELECT count(*) FROM incident_events WHERE kind = 'paged'", replicaIncidents * perIncident},
		{"SELECT count(*) FROM incident_events WHERE kind = 'page_failed'", 0},
	} {
		if got := queryInt(t, dbURL, c.sql); got != c.want {
			t.Errorf("%s = %d, want %d", c.sql, got, c.want)
		}
	}

	// Each Slack page once: a's and b's direct messages and the @here posts.
	st := fake.State()
	pages := map[string]int{}
	for _, m := range st.Messages {
		if k := pageKey(m); k != "" {
			pages[k]++
		}
	}
	if len(pages) != replicaIncidents*3 {
		t.Errorf("Slack has pages of %d delivery keys, want %d", len(pages), replicaIncidents*3)
	}
	for k, n := range pages {
		if n != 1 {
			t.Errorf("Slack has %d pages of %s, want 1", n, k)
		}
	}
	// Each SMS once (they name their incident), each team's phone called
	// once per incident of the team.
	smsOf := map[string]int{}
	for _, m := range tw.Messages() {
		prefix, _, _ := strings.Cut(m.Body, ":")
		smsOf[prefix]++
	}
	if len(smsOf) != replicaIncidents {
		t.Errorf("SMS of %d incidents, want %d", len(smsOf), replicaIncidents)
	}
	for prefix, n := range smsOf {
		if n != 1 {
			t.Errorf("%d SMS %q..., want 1", n, prefix)
		}
	}
	for k := range replicaTeams {
		if n := len(callsTo(tw, replicaPhone(k))); n != replicaIncidents/replicaTeams {
			t.Errorf("%d calls to team %d, want %d", n, k, replicaIncidents/replicaTeams)
		}
	}
	// Both replicas paged, and together made each page once.
	total := 0
	for i, r := range replicas {
		code, metrics, err := get(r.URL + "/metrics")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET /metrics of replica %d = %d (%v)", i, code, err)
		}
		lines := grepLines(string(metrics), "oncall_deliveries_total{")
		made := metricSum(lines, `result="sent"`) + metricSum(lines, `result="found"`)
		if made == 0 || metricSum(lines, `result="failed"`) != 0 {
			t.Errorf("replica %d made %d pages, want some and no failure:\n%s", i, made, lines)
		}
		total += made
	}
	if total != replicaIncidents*perIncident {
		t.Errorf("the replicas made %d pages, want %d", total, replicaIncidents*perIncident)
	}
}

// metricSum adds up the values of the metric lines that contain label.
func metricSum(lines, label string) int {
	sum := 0
	for line := range strings.Lines(lines) {
		if !strings.Contains(line, label) {
			continue
		}
		var v float64
		if _, err := fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v); err == nil {
			sum += int(v)
		}
	}
	return sum
}

// TestPagingSettingsRefused starts serve with paging settings it cannot
// use: it stops at once and says which.
func TestPagingSettingsRefused(t *testing.T) {
	cfg := writeFile(t, "oncall.yaml", pagingConfig)
	base := map[string]string{"DATABASE_URL": "postgres://oncall@127.0.0.1:1/never-reached", "ONCALL_CONFIG": cfg}
	tests := []struct {
		name string
		env  map[string]string
		code int
		want []string // in stderr
	}{
		{"Twilio by half", map[string]string{"TWILIO_ACCOUNT_SID": faketwilio.DefaultAccountSID}, 1,
			[]string{"Twilio is half configured", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"}},
		{"Twilio without a number", map[string]string{"TWILIO_ACCOUNT_SID": faketwilio.DefaultAccountSID,
			"TWILIO_AUTH_TOKEN": faketwilio.DefaultAuthToken}, 1, []string{"Twilio is half configured", "TWILIO_FROM_NUMBER"}},
		{"lease not a duration", map[string]string{"ONCALL_DELIVERY_LEASE": "soon"}, 1, []string{"ONCALL_DELIVERY_LEASE", `"soon"`}},
		{"lease under a second", map[string]string{"ONCALL_DELIVERY_LEASE": "500ms"}, 1, []string{"ONCALL_DELIVERY_LEASE", "at least 1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for _, m := range []map[string]string{base, tt.env} {
				for k, v := range m {
					env[k] = v
				}
			}
			got := runCLI(t, env, "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
			if got.code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", got.code, tt.code, got.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(got.stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, got.stderr)
				}
			}
			if strings.Contains(got.stderr, `"msg":"listening"`) {
				t.Errorf("serve started listening with bad settings:\n%s", got.stderr)
			}
		})
	}
}

// sameElements says whether a and b hold the same strings, in any order.
func sameElements(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}
