package twilio_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oncallbot/oncall/integrations/twilio"
	"github.com/oncallbot/oncall/internal/faketwilio"
)

const (
	alice = "+15550000001"
	bob   = "+15550000002"
	bot   = "+15559999999"
)

// clock is a settable time for the fake's date_created.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func setup(t *testing.T) (*faketwilio.Server, *twilio.Client, *clock) {
	t.Helper()
	clk := &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	fake, err := faketwilio.New(faketwilio.Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	c, err := twilio.NewClient(fake.AccountSID(), fake.AuthToken(), fake.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return fake, c, clk
}

func TestSendSMS(t *testing.T) {
	fake, c, _ := setup(t)
	sid, err := c.SendSMS(t.Context(), alice, bot, "[oncall] Disk full on db1. Reply 4821 to ack.", "https://oncall.example.com/twilio/status?d=9")
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	msgs := fake.Messages()
	if len(msgs) != 1 || msgs[0].SID != sid || msgs[0].To != alice || msgs[0].From != bot ||
		msgs[0].Body != "[oncall] Disk full on db1. Reply 4821 to ack." ||
		msgs[0].StatusCallback != "https://oncall.example.com/twilio/status?d=9" {
		t.Fatalf("sid %s, fake holds %+v", sid, msgs)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 || reqs[0].User != fake.AccountSID() || reqs[0].Method != http.MethodPost {
		t.Errorf("requests %+v", reqs)
	}
}

func TestCall(t *testing.T) {
	fake, c, _ := setup(t)
	sid, err := c.Call(t.Context(), alice, bot, "https://oncall.example.com/twilio/voice?d=9", "https://oncall.example.com/twilio/status?d=9")
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	calls := fake.Calls()
	if len(calls) != 1 || calls[0].SID != sid || calls[0].To != alice || calls[0].From != bot ||
		calls[0].URL != "https://oncall.example.com/twilio/voice?d=9" || calls[0].Method != http.MethodPost ||
		calls[0].StatusCallback != "https://oncall.example.com/twilio/status?d=9" ||
		!slices.Equal(calls[0].StatusCallbackEvents, []string{"initiated", "ringing", "answered", "completed"}) {
		t.Fatalf("sid %s, fake holds %+v", sid, calls)
	}
}

func TestCallTwiML(t *testing.T) {
	fake, c, _ := setup(t)
	twiml := string(twilio.Say("Incident 42: disk full."))
	sid, err := c.CallTwiML(t.Context(), alice, bot, twiml, "https://oncall.example.com/twilio/status?d=9")
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	calls := fake.Calls()
	if len(calls) != 1 || calls[0].SID != sid || calls[0].To != alice || calls[0].From != bot ||
		calls[0].TwiML != twiml || calls[0].URL != "" ||
		calls[0].StatusCallback != "https://oncall.example.com/twilio/status?d=9" ||
		!slices.Equal(calls[0].StatusCallbackEvents, []string{"initiated", "ringing", "answered", "completed"}) {
		t.Fatalf("sid %s, fake holds %+v", sid, calls)
	}
}

func TestFindMessages(t *testing.T) {
	fake, c, clk := setup(t)
	send := func(to, body string) string {
		t.Helper()
		clk.Add(time.Minute)
		sid, err := c.SendSMS(t.Context(), to, bot, body, "")
		if err != nil {
			t.Fatal(err)
		}
		return sid
	}
	send(alice, "old")
	since := clk.Now().Add(30 * time.Second)
	// More than one page (100) of recent messages to alice, none delivered:
	// a queued message must be found, it may be the one sent before a crash.
	var want []string
	for i := range 105 {
		want = append(want, send(alice, fmt.Sprint(i)))
		if i == 50 {
			send(bob, "other")
		}
	}
	slices.Reverse(want)

	got, err := c.FindMessages(t.Context(), alice, since)
	if err != nil {
		t.Fatalf("find: %v", err)
	}
	var sids []string
	for _, m := range got {
		sids = append(sids, m.SID)
		if m.To != alice || m.Status != "queued" || m.Created.Before(since) {
			t.Errorf("found %+v", m)
		}
	}
	if !slices.Equal(sids, want) {
		t.Errorf("found %d messages, want %d newest first", len(sids), len(want))
	}
	if got[0].Body != "104" {
		t.Errorf("newest body %q", got[0].Body)
	}
	var lists int
	for _, r := range fake.Requests() {
		if r.Method == http.MethodGet {
			lists++
		}
	}
	if lists != 2 {
		t.Errorf("%d list requests, want 2 pages", lists)
	}

	none, err := c.FindMessages(t.Context(), bob, clk.Now().Add(time.Second))
	if err != nil || len(none) != 0 {
		t.Errorf("find after the last message: %v, %v", none, err)
	}
}

func TestFindCalls(t *testing.T) {
	fake, c, clk := setup(t)
	if _, err := c.Call(t.Context(), alice, bot, "https://x.example/voice", ""); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	since := clk.Now()
	recent, err := c.Call(t.Context(), alice, bot, "https://x.example/voice", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(t.Context(), bob, bot, "https://x.example/voice", ""); err != nil {
		t.Fatal(err)
	}
	if err := fake.NoAnswer(t.Context(), recent); err != nil {
		t.Fatal(err)
	}
	got, err := c.FindCalls(t.Context(), alice, since)
	if err != nil {
		t.Fatalf("find: %v", err)
	}
	if len(got) != 1 || got[0].SID != recent || got[0].Status != "no-answer" || !got[0].Created.Equal(since) {
		t.Errorf("found %+v, want only %s with no-answer", got, recent)
	}
}

func TestErrorsClassified(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(*faketwilio.Server)
		to         string
		token      string
		permanent  bool
		retryAfter time.Duration
		status     int
		code       int
	}{
		{name: "invalid number", to: "12345", permanent: true, status: 400, code: 21211},
		{name: "wrong token", to: alice, token: "0000", permanent: true, status: 401, code: 20003},
		{name: "landline", to: alice, permanent: true, status: 400, code: 21614,
			setup: func(f *faketwilio.Server) { f.RejectNumber(alice, faketwilio.Fault{Status: 400, Code: 21614}) }},
		{name: "unsubscribed", to: alice, permanent: true, status: 400, code: 21610,
			setup: func(f *faketwilio.Server) { f.RejectNumber(alice, faketwilio.Fault{Status: 400, Code: 21610}) }},
		{name: "server error", to: alice, status: 500, code: 20500,
			setup: func(f *faketwilio.Server) { f.FailNext(faketwilio.Messages, 1, 500, 20500) }},
		{name: "rate limited", to: alice, status: 429, code: 20429, retryAfter: 3 * time.Second,
			setup: func(f *faketwilio.Server) {
				f.FailNextWith(faketwilio.Messages, 1, faketwilio.Fault{Status: 429, Code: 20429, RetryAfter: 3 * time.Second})
			}},
		{name: "unknown 400", to: alice, permanent: true, status: 400, code: 29999,
			setup: func(f *faketwilio.Server) { f.FailNext(faketwilio.Messages, 1, 400, 29999) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, c, _ := setup(t)
			if tt.token != "" {
				var err error
				if c, err = twilio.NewClient(fake.AccountSID(), tt.token, fake.URL(), nil); err != nil {
					t.Fatal(err)
				}
			}
			if tt.setup != nil {
				tt.setup(fake)
			}
			_, err := c.SendSMS(t.Context(), tt.to, bot, "hello", "")
			var te *twilio.Error
			if !errors.As(err, &te) || te.Status != tt.status || te.Code != tt.code {
				t.Fatalf("err = %v, want a twilio.Error with HTTP %d, code %d", err, tt.status, tt.code)
			}
			permanent, retryAfter := twilio.Classify(err)
			if permanent != tt.permanent || retryAfter != tt.retryAfter {
				t.Errorf("Classify = %v, %v; want %v, %v", permanent, retryAfter, tt.permanent, tt.retryAfter)
			}
			if len(fake.Messages()) != 0 {
				t.Error("a failed request created a message")
			}
		})
	}
}

func TestTemporaryThenSuccess(t *testing.T) {
	fake, c, _ := setup(t)
	fake.FailNext(faketwilio.Calls, 1, 503, 20503)
	_, err := c.Call(t.Context(), alice, bot, "https://x.example/voice", "")
	if permanent, _ := twilio.Classify(err); err == nil || permanent {
		t.Fatalf("first call: err %v, permanent %v; want a temporary error", err, permanent)
	}
	sid, err := c.Call(t.Context(), alice, bot, "https://x.example/voice", "")
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if calls := fake.Calls(); len(calls) != 1 || calls[0].SID != sid {
		t.Errorf("calls %+v, want only %s", calls, sid)
	}
}

func TestTimeoutAndCancelAreTemporary(t *testing.T) {
	fake, _, _ := setup(t)
	fake.FailNextWith(faketwilio.Messages, 2, faketwilio.Fault{Hang: true})
	c, err := twilio.NewClient(fake.AccountSID(), fake.AuthToken(), fake.URL(), &http.Client{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.SendSMS(t.Context(), alice, bot, "hello", "")
	if permanent, _ := twilio.Classify(err); err == nil || permanent || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: err %v, permanent %v", err, permanent)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = c.SendSMS(ctx, alice, bot, "hello", "")
	if permanent, _ := twilio.Classify(err); err == nil || permanent || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: err %v, permanent %v", err, permanent)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		permanent  bool
		retryAfter time.Duration
	}{
		{"nil", nil, false, 0},
		{"connection refused", errors.New("dial tcp: connection refused"), false, 0},
		{"wrapped permanent", fmt.Errorf("page alice: %w", &twilio.Error{Status: 400, Code: 21211}), true, 0},
		{"voice invalid number", &twilio.Error{Status: 400, Code: 13224}, true, 0},
		{"bad gateway without body", &twilio.Error{Status: 502}, false, 0},
		{"429 with retry-after", &twilio.Error{Status: 429, RetryAfter: time.Minute}, false, time.Minute},
		{"404", &twilio.Error{Status: 404, Code: 20404}, true, 0},
		{"408", &twilio.Error{Status: 408}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			permanent, retryAfter := twilio.Classify(tt.err)
			if permanent != tt.permanent || retryAfter != tt.retryAfter {
				t.Errorf("Classify = %v, %v; want %v, %v", permanent, retryAfter, tt.permanent, tt.retryAfter)
			}
		})
	}
}

func TestNewClientRejectsBadURL(t *testing.T) {
	for _, u := range []string{"localhost:8080", "ftp://x", "http://"} {
		if _, err := twilio.NewClient("AC1", "tok", u, nil); err == nil {
			t.Errorf("NewClient accepted API URL %q", u)
		}
	}
}
