package twilio_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/integrations/twilio"
	"github.com/oncallbot/oncall/internal/faketwilio"
	"github.com/oncallbot/oncall/internal/golden"
)

const public = "https://oncall.example.com"

var diskFull = oncall.Incident{ID: 12, Title: "Disk full on db1", Severity: oncall.SeverityCritical, Status: oncall.StatusTriggered}

// page is a page of diskFull for alice by channel, delivery 7.
func page(channel oncall.NotifyChannel) oncall.Page {
	return oncall.Page{
		Delivery: oncall.Delivery{ID: 7, IncidentID: 12, Person: "alice@example.com", Channel: channel},
		Incident: diskFull,
		Phone:    alice,
	}
}

func TestSMSBodyGolden(t *testing.T) {
	tests := []struct {
		file string
		inc  oncall.Incident
	}{
		{"testdata/sms_short.txt", diskFull},
		{"testdata/sms_no_severity.txt", oncall.Incident{ID: 3, Title: "  Backup\tfailed\non   db2.  "}},
		{"testdata/sms_long.txt", oncall.Incident{ID: 4821, Severity: oncall.SeverityWarning, Title: strings.Repeat(
			`HighLatency {job="api", instance="api-1:9090"} p99 above 2s for 10m; `, 6)}},
		{"testdata/sms_unicode.txt", oncall.Incident{ID: 5, Severity: oncall.SeverityError, Title: strings.Repeat(
			"Диск заполнен на db1 🔥 ", 8)}},
	}
	for _, tt := range tests {
		body := twilio.SMSBody(tt.inc)
		if n := utf8.RuneCountInString(body); n > 300 {
			t.Errorf("%s: %d characters", tt.file, n)
		}
		golden.Check(t, tt.file, []byte(body+"\n"))
	}
}

// TestSMSBodyFitsTwoSegments shortens titles of every length: the body
// fits two segments (300 GSM-7 septets, or 134 UTF-16 units when a
// character needs UCS-2), the reply codes are whole, and a title that fits
// is not cut.
func TestSMSBodyFitsTwoSegments(t *testing.T) {
	tests := []struct {
		name string
		unit string
		// length of a body in its encoding's units
		length func(string) int
		limit  int
	}{
		{"ascii", "x", septets, 300},
		{"gsm extension", "€", septets, 300},
		{"ucs-2", "ж", utf16Units, 134},
		{"surrogate pairs", "🔥", utf16Units, 134},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, id := range []int64{12, 9_223_372_036_854_775_807} {
				inc := oncall.Incident{ID: id, Severity: oncall.SeverityCritical}
				tail := " Reply A" + itoa(id) + " to acknowledge, R" + itoa(id) + " to resolve."
				for n := 1; n <= 400; n++ {
					inc.Title = strings.Repeat(tt.unit, n)
					body := twilio.SMSBody(inc)
					if !utf8.ValidString(body) || !strings.HasPrefix(body, "[oncall] #"+itoa(id)+" CRITICAL: ") ||
						!strings.HasSuffix(body, tail) || tt.length(body) > tt.limit {
						t.Fatalf("title of %d %q: body %q (%d units)", n, tt.unit, body, tt.length(body))
					}
					whole := strings.Contains(body, inc.Title+"."+tail)
					if fits := tt.length("[oncall] #"+itoa(id)+" CRITICAL: "+inc.Title+"."+tail) <= tt.limit; whole != fits {
						t.Fatalf("title of %d %q: whole %v, fits %v: %q", n, tt.unit, whole, fits, body)
					}
				}
			}
		})
	}
}

// septets is the length of GSM-7 text: the extension characters take two.
func septets(s string) int {
	n := utf8.RuneCountInString(s)
	for _, r := range `[]{}\~^|€` {
		n += strings.Count(s, string(r))
	}
	return n
}

func utf16Units(s string) int { return len(utf16.Encode([]rune(s))) }

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

func TestPagerSend(t *testing.T) {
	fake, c, _ := setup(t)
	p := twilio.NewPager(c, bot, public+"/", nil)

	sid, err := p.Send(t.Context(), page(oncall.NotifySMS))
	if err != nil {
		t.Fatalf("sms: %v", err)
	}
	msgs := fake.Messages()
	if len(msgs) != 1 || msgs[0].SID != sid || msgs[0].To != alice || msgs[0].From != bot ||
		msgs[0].Body != "[oncall] #12 CRITICAL: Disk full on db1. Reply A12 to acknowledge, R12 to resolve." ||
		msgs[0].StatusCallback != public+"/twilio/status?delivery=7" {
		t.Errorf("sms %s, fake holds %+v", sid, msgs)
	}

	sid, err = p.Send(t.Context(), page(oncall.NotifyCall))
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	calls := fake.Calls()
	if len(calls) != 1 || calls[0].SID != sid || calls[0].To != alice || calls[0].From != bot ||
		calls[0].URL != public+"/twilio/voice?incident=12&delivery=7" || calls[0].Method != http.MethodPost ||
		calls[0].TwiML != "" || calls[0].StatusCallback != public+"/twilio/status?delivery=7" {
		t.Errorf("call %s, fake holds %+v", sid, calls)
	}
}

// TestPagerWithoutPublicURL: Twilio cannot reach the bot, so there are no
// status callbacks and a call reads the incident from inline TwiML; the
// missing setting is logged once.
func TestPagerWithoutPublicURL(t *testing.T) {
	fake, c, _ := setup(t)
	var logs bytes.Buffer
	p := twilio.NewPager(c, bot, "", slog.New(slog.NewTextHandler(&logs, nil)))
	for _, ch := range []oncall.NotifyChannel{oncall.NotifySMS, oncall.NotifyCall, oncall.NotifyCall} {
		if _, err := p.Send(t.Context(), page(ch)); err != nil {
			t.Fatalf("%s: %v", ch, err)
		}
	}
	if msgs := fake.Messages(); len(msgs) != 1 || msgs[0].StatusCallback != "" {
		t.Errorf("messages %+v", msgs)
	}
	calls := fake.Calls()
	if len(calls) != 2 {
		t.Fatalf("calls %+v", calls)
	}
	for _, call := range calls {
		if call.URL != "" || call.StatusCallback != "" {
			t.Errorf("call %+v", call)
		}
	}
	golden.Check(t, "testdata/call_inline.xml", []byte(calls[0].TwiML))
	if n := strings.Count(logs.String(), "ONCALL_PUBLIC_URL"); n != 1 {
		t.Errorf("ONCALL_PUBLIC_URL logged %d times:\n%s", n, &logs)
	}
}

func TestPagerRefusesWhatItCannotSend(t *testing.T) {
	fake, c, _ := setup(t)
	p := twilio.NewPager(c, bot, public, nil)
	noPhone := page(oncall.NotifySMS)
	noPhone.Phone = ""
	noPhoneCall := page(oncall.NotifyCall)
	noPhoneCall.Phone = ""
	for _, pg := range []oncall.Page{noPhone, noPhoneCall, page(oncall.NotifySlack)} {
		_, err := p.Send(t.Context(), pg)
		if !errors.Is(err, oncall.ErrPermanent) {
			t.Errorf("send by %s to %q: %v, want a permanent error", pg.Delivery.Channel, pg.Phone, err)
		}
		if pg.Phone == "" && !strings.Contains(err.Error(), "no phone number for alice@example.com") {
			t.Errorf("error %q does not say whose number is missing", err)
		}
		if _, _, err := p.Find(t.Context(), pg, time.Time{}); !errors.Is(err, oncall.ErrPermanent) {
			t.Errorf("find by %s to %q: %v, want a permanent error", pg.Delivery.Channel, pg.Phone, err)
		}
	}
	if reqs := fake.Requests(); len(reqs) != 0 {
		t.Errorf("requests made: %+v", reqs)
	}
}

// retryDelay is what the delivery worker reads of a rate-limited error.
func retryDelay(err error) time.Duration {
	var r interface{ RetryDelay() time.Duration }
	if errors.As(err, &r) {
		return r.RetryDelay()
	}
	return 0
}

func TestPagerErrorsClassified(t *testing.T) {
	tests := []struct {
		name      string
		fault     *faketwilio.Fault
		phone     string
		permanent bool
		delay     time.Duration
	}{
		{name: "server error", fault: &faketwilio.Fault{Status: 500, Code: 20500}},
		{name: "rate limited", fault: &faketwilio.Fault{Status: 429, Code: 20429, RetryAfter: 3 * time.Second}, delay: 3 * time.Second},
		{name: "invalid number", phone: "12345", permanent: true},
		{name: "unsubscribed", fault: &faketwilio.Fault{Status: 400, Code: 21610}, permanent: true},
	}
	for _, tt := range tests {
		for _, ch := range []oncall.NotifyChannel{oncall.NotifySMS, oncall.NotifyCall} {
			t.Run(tt.name+" "+string(ch), func(t *testing.T) {
				fake, c, _ := setup(t)
				p := twilio.NewPager(c, bot, public, nil)
				if tt.fault != nil {
					fake.FailNextWith(faketwilio.Messages, 1, *tt.fault)
					fake.FailNextWith(faketwilio.Calls, 1, *tt.fault)
				}
				pg := page(ch)
				if tt.phone != "" {
					pg.Phone = tt.phone
				}
				sid, err := p.Send(t.Context(), pg)
				var te *twilio.Error
				if err == nil || sid != "" || !errors.As(err, &te) {
					t.Fatalf("send = %q, %v; want a twilio.Error", sid, err)
				}
				if errors.Is(err, oncall.ErrPermanent) != tt.permanent || retryDelay(err) != tt.delay {
					t.Errorf("%v: permanent %v, retry delay %v; want %v, %v",
						err, errors.Is(err, oncall.ErrPermanent), retryDelay(err), tt.permanent, tt.delay)
				}
				if !strings.Contains(err.Error(), "page alice@example.com by "+string(ch)) {
					t.Errorf("error %q does not say what was being done", err)
				}
			})
		}
	}
}

// TestPagerFind reconciles after a crash between the send and recording
// it: the page made before the crash is found; pages of other numbers,
// from other numbers, of other incidents or before since are not.
func TestPagerFind(t *testing.T) {
	fake, c, clk := setup(t)
	const otherFrom = "+15558888888"
	p := twilio.NewPager(c, bot, public, nil)
	send := func(pg oncall.Page) string {
		t.Helper()
		clk.Add(time.Minute)
		sid, err := p.Send(t.Context(), pg)
		if err != nil {
			t.Fatal(err)
		}
		return sid
	}
	forBob := func(pg oncall.Page) oncall.Page { pg.Phone = bob; return pg }
	otherIncident := func(pg oncall.Page) oncall.Page { pg.Incident.ID = 13; return pg }

	for _, ch := range []oncall.NotifyChannel{oncall.NotifySMS, oncall.NotifyCall} {
		send(page(ch)) // before since
		send(forBob(page(ch)))
		since := clk.Now().Add(time.Second)
		sent := send(page(ch)) // the process crashed before recording it
		bobSent := send(forBob(page(ch)))
		afterSent := clk.Now()
		// Newer calls and messages to alice that are not this page.
		clk.Add(time.Minute)
		if ch == oncall.NotifySMS {
			send(otherIncident(page(ch)))
			if _, err := c.SendSMS(t.Context(), alice, otherFrom, "[oncall] #12 CRITICAL: not ours", ""); err != nil {
				t.Fatal(err)
			}
		} else if _, err := c.Call(t.Context(), alice, otherFrom, "https://x.example/voice", ""); err != nil {
			t.Fatal(err)
		}

		restarted := twilio.NewPager(c, bot, public, nil)
		tests := []struct {
			name  string
			page  oncall.Page
			since time.Time
			want  string
		}{
			{"sent before the crash", page(ch), since, sent},
			{"newer ones are not this page", page(ch), afterSent, ""},
			{"another number", forBob(page(ch)), since, bobSent},
			{"nothing since", forBob(page(ch)), clk.Now().Add(time.Second), ""},
		}
		for _, tt := range tests {
			sid, found, err := restarted.Find(t.Context(), tt.page, tt.since)
			if err != nil || found != (tt.want != "") || sid != tt.want {
				t.Errorf("%s %s: Find = %q, %v, %v; want %q", ch, tt.name, sid, found, err, tt.want)
			}
		}
	}

	fake.FailNext(faketwilio.Messages, 1, 503, 20503)
	sid, found, err := p.Find(t.Context(), page(oncall.NotifySMS), time.Time{})
	if err == nil || found || sid != "" || errors.Is(err, oncall.ErrPermanent) {
		t.Errorf("Find during an outage = %q, %v, %v; want a transient error", sid, found, err)
	}
}
