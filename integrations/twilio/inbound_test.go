package twilio_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/integrations/twilio"
	"github.com/oncallbot/oncall/internal/faketwilio"
)

const carol = "+15550000003" // not on the on-call list

// act is one call of IncidentActions.Act.
type act struct {
	ID     int64
	Action oncall.Action
	Actor  oncall.Actor
	Key    string
}

// incidents is IncidentActions over a map: Act changes an incident once
// per key, and refuses to change a resolved one.
type incidents struct {
	mu      sync.Mutex
	byID    map[int64]oncall.Incident
	fail    error // Act's answer when set
	reads   int
	acts    []act // every call
	applied []act // the calls that changed something
}

func newIncidents() *incidents {
	resolved := oncall.Incident{ID: 13, Title: "Old", Severity: oncall.SeverityWarning, Status: oncall.StatusResolved}
	return &incidents{byID: map[int64]oncall.Incident{12: diskFull, 13: resolved}}
}

func (f *incidents) Incident(_ context.Context, id int64) (oncall.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	inc, ok := f.byID[id]
	if !ok {
		return oncall.Incident{}, fmt.Errorf("incident %d: %w", id, oncall.ErrNotFound)
	}
	return inc, nil
}

func (f *incidents) Act(_ context.Context, id int64, a oncall.Action, actor oncall.Actor, key string) (oncall.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acts = append(f.acts, act{id, a, actor, key})
	if f.fail != nil {
		return oncall.Incident{}, f.fail
	}
	inc, ok := f.byID[id]
	switch {
	case !ok:
		return oncall.Incident{}, fmt.Errorf("incident %d: %w", id, oncall.ErrNotFound)
	case slices.ContainsFunc(f.applied, func(x act) bool { return x.Key == key }):
		return inc, nil
	case inc.Status == oncall.StatusResolved:
		// As escalation.Service: an action that does not apply changes
		// nothing and is no error.
		return inc, nil
	}
	inc.Status = oncall.StatusAcknowledged
	if a == oncall.ActionResolve {
		inc.Status = oncall.StatusResolved
	}
	f.byID[id] = inc
	f.applied = append(f.applied, act{id, a, actor, key})
	return inc, nil
}

func (f *incidents) state() (reads int, acts, applied []act) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads, slices.Clone(f.acts), slices.Clone(f.applied)
}

type statusRecord struct {
	Delivery int64
	Status   oncall.DeliveryStatus
	Detail   string
}

// deliveries is DeliveryStatuses knowing delivery 7 only.
type deliveries struct {
	mu       sync.Mutex
	calls    int
	recorded []statusRecord
}

func (f *deliveries) RecordDeliveryStatus(_ context.Context, id int64, status oncall.DeliveryStatus, detail string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if id != 7 {
		return false, fmt.Errorf("delivery %d: %w", id, oncall.ErrNotFound)
	}
	f.recorded = append(f.recorded, statusRecord{id, status, detail})
	return true, nil
}

func (f *deliveries) state() (calls int, recorded []statusRecord) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, slices.Clone(f.recorded)
}

type phoneBook map[string]oncall.Actor

func (p phoneBook) ActorForPhone(_ context.Context, phone string) (oncall.Actor, bool) {
	a, ok := p[phone]
	return a, ok
}

var aliceActor = oncall.SlackActor("UALICE")

// env is the bot's side of Twilio: the Inbound routes on an HTTP server the
// fake reaches, and a Pager whose pages point there.
type env struct {
	fake       *faketwilio.Server
	client     *twilio.Client
	srv        *httptest.Server
	pager      *twilio.Pager
	incidents  *incidents
	deliveries *deliveries
}

// newEnv starts an env; with publicURL false the Inbound has no PublicURL
// and checks signatures against the URL requests arrive at.
func newEnv(t *testing.T, publicURL bool) *env {
	t.Helper()
	fake, c, _ := setup(t)
	e := &env{fake: fake, client: c, incidents: newIncidents(), deliveries: &deliveries{}}
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	cfg := twilio.InboundConfig{
		AuthToken:  fake.AuthToken(),
		Incidents:  e.incidents,
		Deliveries: e.deliveries,
		People:     phoneBook{alice: aliceActor, bob: oncall.SlackActor("UBOB")},
	}
	if publicURL {
		cfg.PublicURL = e.srv.URL
	}
	twilio.NewInbound(cfg).Register(mux)
	fake.SetSMSWebhook(e.srv.URL + "/twilio/sms")
	e.pager = twilio.NewPager(c, bot, e.srv.URL, nil)
	return e
}

// twiml is what the tests read of a TwiML answer.
type twiml struct {
	Messages []string `xml:"Message"`
	Says     []string `xml:"Say"`
	Gather   *struct {
		Action string   `xml:"action,attr"`
		Says   []string `xml:"Say"`
	}
}

func parseTwiML(t *testing.T, doc []byte) twiml {
	t.Helper()
	var r twiml
	if err := xml.Unmarshal(doc, &r); err != nil {
		t.Fatalf("parse TwiML %q: %v", doc, err)
	}
	return r
}

func TestInboundSMS(t *testing.T) {
	tests := []struct {
		name  string
		from  string
		body  string
		fail  error
		reply string
		act   *act // the call of Act; its Key is checked apart
		apply bool // whether it changed the incident
	}{
		{name: "A12", from: alice, body: "A12", reply: "Incident #12 acknowledged.",
			act: &act{ID: 12, Action: oncall.ActionAcknowledge, Actor: aliceActor}, apply: true},
		{name: "ack with space", from: alice, body: " ack 12\n", reply: "Incident #12 acknowledged.",
			act: &act{ID: 12, Action: oncall.ActionAcknowledge, Actor: aliceActor}, apply: true},
		{name: "acknowledge", from: bob, body: "Acknowledge #12", reply: "Incident #12 acknowledged.",
			act: &act{ID: 12, Action: oncall.ActionAcknowledge, Actor: oncall.SlackActor("UBOB")}, apply: true},
		{name: "r12", from: alice, body: "r12", reply: "Incident #12 resolved.",
			act: &act{ID: 12, Action: oncall.ActionResolve, Actor: aliceActor}, apply: true},
		{name: "resolve", from: alice, body: "RESOLVE 12", reply: "Incident #12 resolved.",
			act: &act{ID: 12, Action: oncall.ActionResolve, Actor: aliceActor}, apply: true},
		{name: "res", from: alice, body: "Res 12", reply: "Incident #12 resolved.",
			act: &act{ID: 12, Action: oncall.ActionResolve, Actor: aliceActor}, apply: true},
		{name: "unknown incident", from: alice, body: "A99", reply: "Incident #99 does not exist.",
			act: &act{ID: 99, Action: oncall.ActionAcknowledge, Actor: aliceActor}},
		{name: "resolved incident", from: alice, body: "A13", reply: "Incident #13 is resolved; it cannot be acknowledged.",
			act: &act{ID: 13, Action: oncall.ActionAcknowledge, Actor: aliceActor}},
		{name: "store down", from: alice, body: "A12", fail: errors.New("connection refused"),
			reply: "Incident #12 could not be acknowledged. Try again, or use Slack.",
			act:   &act{ID: 12, Action: oncall.ActionAcknowledge, Actor: aliceActor}},
		{name: "bad code", from: alice, body: "ok thanks", reply: twilioUsage},
		{name: "no number", from: alice, body: "ACK", reply: twilioUsage},
		{name: "zero", from: alice, body: "A0", reply: twilioUsage},
		{name: "code then text", from: alice, body: "A12 on it", reply: twilioUsage},
		{name: "unknown number", from: carol, body: "A12", reply: "This number is not on the on-call list."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, true)
			e.incidents.fail = tt.fail
			doc, err := e.fake.ReplySMS(t.Context(), tt.from, bot, tt.body)
			if err != nil {
				t.Fatalf("reply: %v", err)
			}
			if got := parseTwiML(t, doc).Messages; len(got) != 1 || got[0] != tt.reply {
				t.Errorf("reply %q, want %q", got, tt.reply)
			}
			_, acts, applied := e.incidents.state()
			if tt.act == nil {
				if len(acts) != 0 {
					t.Errorf("acted: %+v", acts)
				}
				return
			}
			msgs := e.fake.Messages()
			want := *tt.act
			want.Key = "twilio-sms:" + msgs[len(msgs)-1].SID
			if len(acts) != 1 || acts[0] != want {
				t.Errorf("acts %+v, want %+v", acts, want)
			}
			if (len(applied) == 1) != tt.apply {
				t.Errorf("applied %+v, want a change: %v", applied, tt.apply)
			}
		})
	}
}

const twilioUsage = "Reply A and the incident number to acknowledge it (A12 or ACK 12), R and the number to resolve it (R12 or RESOLVE 12)."

// TestInboundSMSRetried: Twilio sending the same message again changes
// nothing twice, and answers the same.
func TestInboundSMSRetried(t *testing.T) {
	e := newEnv(t, true)
	if _, err := e.fake.ReplySMS(t.Context(), alice, bot, "A12"); err != nil {
		t.Fatal(err)
	}
	cbs := e.fake.Callbacks()
	first := cbs[len(cbs)-1]
	status, body := post(t, first.URL, first.Form, first.Signature)
	if status != http.StatusOK || !strings.Contains(string(body), "<Message>Incident #12 acknowledged.</Message>") {
		t.Errorf("retry answered %d %s", status, body)
	}
	_, acts, applied := e.incidents.state()
	if len(acts) != 2 || acts[0].Key != acts[1].Key || len(applied) != 1 {
		t.Errorf("acts %+v, applied %+v; want the same key twice, one change", acts, applied)
	}
}

// post sends a form to target with the signature sig and returns the
// answer.
func post(t *testing.T, target string, form url.Values, sig string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sig != "" {
		req.Header.Set("X-Twilio-Signature", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// TestInboundCall answers paging calls and presses keys, with and without
// a PublicURL (the Gather action is then relative).
func TestInboundCall(t *testing.T) {
	tests := []struct {
		name     string
		incident int64
		digits   string
		twiml    string // the first thing the call says
		answer   string // what it says after the key
		gather   bool   // whether it asks again
		act      oncall.Action
	}{
		{name: "1 acknowledges", incident: 12, digits: "1", twiml: "This is oncall. Incident 12, critical: Disk full on db1.",
			answer: "Incident 12 acknowledged. Goodbye.", act: oncall.ActionAcknowledge},
		{name: "2 resolves", incident: 12, digits: "2", twiml: "This is oncall. Incident 12, critical: Disk full on db1.",
			answer: "Incident 12 resolved. Goodbye.", act: oncall.ActionResolve},
		{name: "other key", incident: 12, digits: "9", twiml: "This is oncall. Incident 12, critical: Disk full on db1.",
			answer: "Sorry, that key is not an option.", gather: true},
		{name: "unknown incident", incident: 99, twiml: "This incident no longer exists."},
		{name: "resolved incident", incident: 13, twiml: "This is oncall. Incident 13 is already resolved. Goodbye."},
	}
	for _, publicURL := range []bool{true, false} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s public %v", tt.name, publicURL), func(t *testing.T) {
				e := newEnv(t, publicURL)
				pg := page(oncall.NotifyCall)
				pg.Incident.ID = tt.incident
				sid, err := e.pager.Send(t.Context(), pg)
				if err != nil {
					t.Fatal(err)
				}
				ans, err := e.fake.Answer(t.Context(), sid, tt.digits)
				if tt.digits == "" {
					// No <Gather> to press a key in.
					if err == nil || ans == nil {
						t.Fatalf("answer: %v", err)
					}
					if got := parseTwiML(t, ans.TwiML); len(got.Says) != 1 || got.Says[0] != tt.twiml || got.Gather != nil {
						t.Errorf("call said %+v, want %q", got, tt.twiml)
					}
					if _, acts, _ := e.incidents.state(); len(acts) != 0 {
						t.Errorf("acted: %+v", acts)
					}
					return
				}
				if err != nil {
					t.Fatalf("answer: %v", err)
				}
				doc := parseTwiML(t, ans.TwiML)
				wantAction := fmt.Sprintf("/twilio/voice/gather?incident=%d&delivery=7", tt.incident)
				if publicURL {
					wantAction = e.srv.URL + wantAction
				}
				if doc.Gather == nil || doc.Gather.Action != wantAction || len(doc.Gather.Says) != 2 ||
					doc.Gather.Says[0] != tt.twiml || ans.Action != e.srv.URL+strings.TrimPrefix(wantAction, e.srv.URL) {
					t.Errorf("call TwiML %s, action followed %q", ans.TwiML, ans.Action)
				}

				resp := parseTwiML(t, ans.Response)
				said := resp.Says
				if tt.gather {
					if resp.Gather == nil || resp.Gather.Action != wantAction {
						t.Fatalf("no Gather again: %s", ans.Response)
					}
					said = resp.Gather.Says
				}
				if len(said) == 0 || said[0] != tt.answer {
					t.Errorf("answered %s, want %q", ans.Response, tt.answer)
				}

				_, acts, applied := e.incidents.state()
				if tt.act == "" {
					if len(acts) != 0 {
						t.Errorf("acted: %+v", acts)
					}
				} else if want := (act{12, tt.act, aliceActor, "twilio-call:" + sid + ":" + tt.digits}); len(applied) != 1 || applied[0] != want {
					t.Errorf("applied %+v, want %+v", applied, want)
				}
				// Answering posted the "answered" status callback.
				if _, recorded := e.deliveries.state(); len(recorded) != 1 ||
					recorded[0] != (statusRecord{7, oncall.DeliveryDelivered, "answered"}) {
					t.Errorf("recorded %+v", recorded)
				}
			})
		}
	}
}

// TestInboundCallFromUnknownNumber: a key pressed in a call to a number
// that has left the on-call list changes nothing.
func TestInboundCallFromUnknownNumber(t *testing.T) {
	e := newEnv(t, true)
	pg := page(oncall.NotifyCall)
	pg.Phone = carol
	sid, err := e.pager.Send(t.Context(), pg)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := e.fake.Answer(t.Context(), sid, "1")
	if err != nil {
		t.Fatal(err)
	}
	if got := parseTwiML(t, ans.Response).Says; len(got) != 1 || got[0] != "This number is not on the on-call list. Goodbye." {
		t.Errorf("answered %q", got)
	}
	if _, acts, _ := e.incidents.state(); len(acts) != 0 {
		t.Errorf("acted: %+v", acts)
	}
}

func TestInboundStatus(t *testing.T) {
	tests := []struct {
		name     string
		channel  oncall.NotifyChannel
		delivery int64
		report   func(ctx context.Context, f *faketwilio.Server, sid string) error
		want     []statusRecord
	}{
		{"sms delivered", oncall.NotifySMS, 7, func(ctx context.Context, f *faketwilio.Server, sid string) error { return f.Deliver(ctx, sid) },
			[]statusRecord{{7, oncall.DeliveryDelivered, ""}}},
		{"sms undelivered", oncall.NotifySMS, 7, func(ctx context.Context, f *faketwilio.Server, sid string) error { return f.Fail(ctx, sid, 30003) },
			[]statusRecord{{7, oncall.DeliveryFailed, "undelivered (30003)"}}},
		{"call completed", oncall.NotifyCall, 7, func(ctx context.Context, f *faketwilio.Server, sid string) error { return f.Deliver(ctx, sid) },
			[]statusRecord{{7, oncall.DeliveryDelivered, "answered"}}},
		{"call failed", oncall.NotifyCall, 7, func(ctx context.Context, f *faketwilio.Server, sid string) error { return f.Fail(ctx, sid, 0) },
			[]statusRecord{{7, oncall.DeliveryFailed, "failed"}}},
		{"call not answered", oncall.NotifyCall, 7, func(ctx context.Context, f *faketwilio.Server, sid string) error { return f.NoAnswer(ctx, sid) },
			[]statusRecord{{7, oncall.DeliveryFailed, "no answer"}}},
		{"unknown delivery", oncall.NotifySMS, 404, func(ctx context.Context, f *faketwilio.Server, sid string) error { return f.Deliver(ctx, sid) },
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, true)
			pg := page(tt.channel)
			pg.Delivery.ID = tt.delivery
			sid, err := e.pager.Send(t.Context(), pg)
			if err != nil {
				t.Fatal(err)
			}
			// The fake's callbacks fail on any answer but 2xx.
			if err := tt.report(t.Context(), e.fake, sid); err != nil {
				t.Fatalf("status callback: %v", err)
			}
			calls, recorded := e.deliveries.state()
			if calls != 1 || !slices.Equal(recorded, tt.want) {
				t.Errorf("%d calls, recorded %+v; want %+v", calls, recorded, tt.want)
			}
		})
	}
}

// TestInboundStatusProgress: statuses on the way record nothing, and a
// status callback for no delivery is a 400.
func TestInboundStatusProgress(t *testing.T) {
	e := newEnv(t, true)
	tests := []struct {
		query  string
		form   url.Values
		status int
	}{
		{"?delivery=7", url.Values{"MessageStatus": {"sent"}, "MessageSid": {"SM1"}}, http.StatusOK},
		{"?delivery=7", url.Values{"MessageStatus": {"queued"}}, http.StatusOK},
		{"?delivery=7", url.Values{"CallStatus": {"ringing"}, "CallSid": {"CA1"}}, http.StatusOK},
		{"?delivery=7", url.Values{"CallStatus": {"initiated"}}, http.StatusOK},
		{"?delivery=7", url.Values{"AccountSid": {faketwilio.DefaultAccountSID}}, http.StatusOK},
		{"?delivery=abc", url.Values{"MessageStatus": {"delivered"}}, http.StatusBadRequest},
		{"?delivery=0", url.Values{"MessageStatus": {"delivered"}}, http.StatusBadRequest},
		{"", url.Values{"MessageStatus": {"delivered"}}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		target := e.srv.URL + "/twilio/status" + tt.query
		status, body := post(t, target, tt.form, faketwilio.Sign(e.fake.AuthToken(), target, tt.form))
		if status != tt.status {
			t.Errorf("%s %v: %d %s, want %d", tt.query, tt.form, status, body, tt.status)
		}
		if status == http.StatusBadRequest {
			var answer map[string]string
			if err := json.Unmarshal(body, &answer); err != nil || answer["error"] != "invalid_query" {
				t.Errorf("%s: 400 body %s", tt.query, body)
			}
		}
	}
	if calls, _ := e.deliveries.state(); calls != 0 {
		t.Errorf("%d statuses recorded", calls)
	}
}

// TestInboundRefusesUnsigned: a request not signed with the auth token, or
// signed for another URL than PublicURL, gets 403 and changes nothing; a
// GET gets 405.
func TestInboundRefusesUnsigned(t *testing.T) {
	e := newEnv(t, true)
	routes := []struct {
		path string
		form url.Values
	}{
		{"/twilio/sms", url.Values{"From": {alice}, "Body": {"A12"}, "MessageSid": {"SM1"}}},
		{"/twilio/voice?incident=12&delivery=7", url.Values{"CallSid": {"CA1"}, "To": {alice}}},
		{"/twilio/voice/gather?incident=12&delivery=7", url.Values{"CallSid": {"CA1"}, "To": {alice}, "Digits": {"1"}}},
		{"/twilio/status?delivery=7", url.Values{"MessageStatus": {"delivered"}, "MessageSid": {"SM1"}}},
	}
	for _, r := range routes {
		target := e.srv.URL + r.path
		for name, sig := range map[string]string{
			"missing":       "",
			"another token": faketwilio.Sign("ffffffffffffffffffffffffffffffff", target, r.form),
			"another URL":   faketwilio.Sign(e.fake.AuthToken(), "https://evil.example"+r.path, r.form),
		} {
			status, body := post(t, target, r.form, sig)
			var answer map[string]string
			if status != http.StatusForbidden || json.Unmarshal(body, &answer) != nil || answer["error"] != "invalid_signature" {
				t.Errorf("%s, signature %s: %d %s", r.path, name, status, body)
			}
		}
		resp, err := http.Get(target)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d", r.path, resp.StatusCode)
		}
	}
	reads, acts, _ := e.incidents.state()
	if calls, _ := e.deliveries.state(); reads != 0 || len(acts) != 0 || calls != 0 {
		t.Errorf("reached the handlers: %d reads, acts %+v, %d statuses", reads, acts, calls)
	}
}

// TestInboundSignedForPublicURL: behind a proxy, Twilio signs the public
// URL, not the one the request arrives at.
func TestInboundSignedForPublicURL(t *testing.T) {
	incs := newIncidents()
	mux := http.NewServeMux()
	twilio.NewInbound(twilio.InboundConfig{
		AuthToken:  faketwilio.DefaultAuthToken,
		PublicURL:  "https://oncall.example.com/",
		Incidents:  incs,
		Deliveries: &deliveries{},
		People:     phoneBook{alice: aliceActor},
	}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	form := url.Values{"From": {alice}, "Body": {"A12"}, "MessageSid": {"SM1"}}
	status, _ := post(t, srv.URL+"/twilio/sms", form, faketwilio.Sign(faketwilio.DefaultAuthToken, srv.URL+"/twilio/sms", form))
	if status != http.StatusForbidden {
		t.Errorf("signed for the listener's URL: %d, want 403", status)
	}
	status, body := post(t, srv.URL+"/twilio/sms", form, faketwilio.Sign(faketwilio.DefaultAuthToken, "https://oncall.example.com/twilio/sms", form))
	if status != http.StatusOK || !strings.Contains(string(body), "Incident #12 acknowledged.") {
		t.Errorf("signed for the public URL: %d %s", status, body)
	}
	if _, acts, _ := incs.state(); len(acts) != 1 {
		t.Errorf("acts %+v, want one", acts)
	}
}
