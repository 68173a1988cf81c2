package twilio_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/oncallbot/oncall/integrations/twilio"
	"github.com/oncallbot/oncall/internal/faketwilio"
)

// docParams are the POST parameters of the example in Twilio's webhook
// security documentation (https://www.twilio.com/docs/usage/security),
// whose URL is https://mycompany.com/myapp.php?foo=1&bar=2 and auth token
// 12345.
func docParams(caller string) url.Values {
	return url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {caller},
		"Digits":  {"1234"},
		"From":    {caller},
		"To":      {"+18005551212"},
	}
}

const docURL = "https://mycompany.com/myapp.php?foo=1&bar=2"

func TestVerifySignature(t *testing.T) {
	goParams := docParams("+14158675309")
	goParams.Set("ReasonConferenceEnded", "test")
	goParams.Set("Reason", "Participant")
	tampered := docParams("+14158675310")
	tampered.Set("Digits", "2")

	tests := []struct {
		name  string
		token string
		url   string
		form  url.Values
		sig   string
		want  bool
	}{
		// Known answers: Twilio's documentation (current and older
		// versions of the example) and twilio-go's own test vector.
		{"twilio docs", "12345", docURL, docParams("+14158675310"), "GvWf1cFY/Q7PnoempGyD5oXAezc=", true},
		{"twilio docs, older", "12345", docURL, docParams("+14158675309"), "RSOYDt4T1cUTdK1PDd93/VVr8B8=", true},
		{"twilio-go vector", "12345", docURL, goParams, "vOEb5UThFn24KEfnOFLQY2AE5FY=", true},
		{"signed without the port", "12345", strings.Replace(docURL, ".com", ".com:443", 1), docParams("+14158675310"), "GvWf1cFY/Q7PnoempGyD5oXAezc=", true},
		{"wrong token", "54321", docURL, docParams("+14158675310"), "GvWf1cFY/Q7PnoempGyD5oXAezc=", false},
		{"tampered parameter", "12345", docURL, tampered, "GvWf1cFY/Q7PnoempGyD5oXAezc=", false},
		{"other URL", "12345", "https://mycompany.com/myapp.php?foo=1&bar=3", docParams("+14158675310"), "GvWf1cFY/Q7PnoempGyD5oXAezc=", false},
		{"empty signature", "12345", docURL, docParams("+14158675310"), "", false},
		{"empty token", "", docURL, docParams("+14158675310"), "GvWf1cFY/Q7PnoempGyD5oXAezc=", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := twilio.VerifySignature(tt.token, tt.url, tt.form, tt.sig); got != tt.want {
				t.Errorf("VerifySignature = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRequireSignature(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	const public = "https://oncall.example.com/twilio/sms"
	form := url.Values{"From": {"+15550000001"}, "Body": {"ACK 4821"}}
	tests := []struct {
		name   string
		sig    string
		status int
	}{
		{"valid", faketwilio.Sign(token, public, form), http.StatusOK},
		{"missing", "", http.StatusForbidden},
		{"signed by another token", faketwilio.Sign("ffff", public, form), http.StatusForbidden},
		{"signed for another URL", faketwilio.Sign(token, "https://evil.example.com/twilio/sms", form), http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				if r.PostForm.Get("Body") != "ACK 4821" {
					t.Errorf("handler sees Body %q", r.PostForm.Get("Body"))
				}
			})
			h := twilio.RequireSignature(token, func(*http.Request) string { return public }, next)
			req := httptest.NewRequest(http.MethodPost, "/twilio/sms", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.sig != "" {
				req.Header.Set("X-Twilio-Signature", tt.sig)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status || called != (tt.status == http.StatusOK) {
				t.Fatalf("status %d, handler called %v; want %d", rec.Code, called, tt.status)
			}
			if tt.status == http.StatusForbidden {
				var body map[string]string
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["error"] != "invalid_signature" ||
					!strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
					t.Errorf("403 body %q (%v), content type %q", rec.Body, err, rec.Header().Get("Content-Type"))
				}
			}
		})
	}
}

// app is the bot's side of Twilio as far as this package goes: every route
// behind RequireSignature, recording what reached it.
type app struct {
	mu   sync.Mutex
	seen []string // "path key=value"
}

func (a *app) note(r *http.Request, key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen = append(a.seen, r.URL.Path+" "+key+"="+r.PostForm.Get(key))
}

func (a *app) handler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /twilio/status", func(w http.ResponseWriter, r *http.Request) {
		key := "MessageStatus"
		if r.PostForm.Has("CallStatus") {
			key = "CallStatus"
		}
		a.note(r, key)
	})
	mux.HandleFunc("POST /twilio/sms", func(w http.ResponseWriter, r *http.Request) {
		a.note(r, "Body")
		w.Header().Set("Content-Type", "text/xml")
		w.Write(twilio.ReplyMessage("Acknowledged."))
	})
	mux.HandleFunc("POST /twilio/voice", func(w http.ResponseWriter, r *http.Request) {
		a.note(r, "CallStatus")
		w.Header().Set("Content-Type", "text/xml")
		w.Write(twilio.SayAndGather("Disk full on db1", "/twilio/voice/action?incident=42&d=9"))
	})
	mux.HandleFunc("POST /twilio/voice/action", func(w http.ResponseWriter, r *http.Request) {
		a.note(r, "Digits")
		w.Header().Set("Content-Type", "text/xml")
		w.Write(twilio.Say("Acknowledged. Goodbye."))
	})
	return twilio.RequireSignature(token, nil, mux)
}

// TestFakeCallbacksPassRequireSignature drives a whole page through the
// real client, the fake, and the signature check: SMS delivered and
// answered, a call answered with a key press.
func TestFakeCallbacksPassRequireSignature(t *testing.T) {
	fake, c, _ := setup(t)
	a := &app{}
	srv := httptest.NewServer(a.handler(fake.AuthToken()))
	defer srv.Close()
	fake.SetSMSWebhook(srv.URL + "/twilio/sms")
	ctx := t.Context()

	sms, err := c.SendSMS(ctx, alice, bot, "Disk full. Reply 4821 to ack.", srv.URL+"/twilio/status?d=1")
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.Deliver(ctx, sms); err != nil {
		t.Fatalf("deliver: %v", err)
	}
	reply, err := fake.ReplySMS(ctx, alice, bot, "4821")
	if err != nil {
		t.Fatalf("reply: %v", err)
	}
	if !strings.Contains(string(reply), "<Message>Acknowledged.</Message>") {
		t.Errorf("reply TwiML %s", reply)
	}
	call, err := c.Call(ctx, alice, bot, srv.URL+"/twilio/voice?d=2", srv.URL+"/twilio/status?d=2")
	if err != nil {
		t.Fatal(err)
	}
	ans, err := fake.Answer(ctx, call, "1")
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	if ans.Action != srv.URL+"/twilio/voice/action?incident=42&d=9" || !strings.Contains(string(ans.Response), "Acknowledged.") {
		t.Errorf("action %q answered %s", ans.Action, ans.Response)
	}
	if err := fake.Deliver(ctx, call); err != nil {
		t.Fatalf("complete call: %v", err)
	}

	want := []string{
		"/twilio/status MessageStatus=delivered",
		"/twilio/sms Body=4821",
		"/twilio/status CallStatus=in-progress",
		"/twilio/voice CallStatus=in-progress",
		"/twilio/voice/action Digits=1",
		"/twilio/status CallStatus=completed",
	}
	if strings.Join(a.seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("app saw:\n%s\nwant:\n%s", strings.Join(a.seen, "\n"), strings.Join(want, "\n"))
	}
}

// TestForgedCallbacksRefused: a Twilio signing with another auth token (an
// attacker) gets 403 everywhere and reaches no handler.
func TestForgedCallbacksRefused(t *testing.T) {
	fake, c, _ := setup(t)
	a := &app{}
	srv := httptest.NewServer(a.handler("ffffffffffffffffffffffffffffffff"))
	defer srv.Close()
	fake.SetSMSWebhook(srv.URL + "/twilio/sms")

	sms, err := c.SendSMS(t.Context(), alice, bot, "hi", srv.URL+"/twilio/status")
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"status": fake.Deliver(t.Context(), sms),
		"reply":  func() error { _, err := fake.ReplySMS(t.Context(), alice, bot, "4821"); return err }(),
	} {
		var ce *faketwilio.CallbackError
		if !errors.As(err, &ce) || ce.Status != http.StatusForbidden {
			t.Errorf("%s: %v, want 403", name, err)
		}
	}
	if len(a.seen) != 0 {
		t.Errorf("handlers reached: %v", a.seen)
	}
}
