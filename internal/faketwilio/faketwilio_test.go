package faketwilio

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"
)

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// do sends a raw REST request with the fake's credentials unless user is
// set, and decodes the JSON answer.
func do(t *testing.T, s *Server, method, path string, form url.Values, user, pass string) (int, http.Header, map[string]any) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(form.Encode())
	} else if form != nil {
		path += "?" + form.Encode()
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user == "" {
		user, pass = s.AccountSID(), s.AuthToken()
	}
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: decode answer: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, out
}

func messagesPath(s *Server) string {
	return "/2010-04-01/Accounts/" + s.AccountSID() + "/Messages.json"
}

func TestCreateMessageErrors(t *testing.T) {
	s := start(t, Config{})
	ok := url.Values{"To": {"+15550001111"}, "From": {"+15550002222"}, "Body": {"hi"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vals := range ok {
			f[key] = vals
		}
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	tests := []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		code       int
	}{
		{"wrong token", ok, s.AccountSID(), "wrong", 401, 20003},
		{"wrong account", ok, "ACother", s.AuthToken(), 401, 20003},
		{"invalid To", with("To", "555-0001"), "", "", 400, 21211},
		{"missing To", with("To", ""), "", "", 400, 21604},
		{"invalid From", with("From", "me"), "", "", 400, 21212},
		{"missing body", with("Body", ""), "", "", 400, 21602},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := do(t, s, http.MethodPost, messagesPath(s), tt.form, tt.user, tt.pass)
			if status != tt.status || body["code"] != float64(tt.code) || body["status"] != float64(tt.status) {
				t.Fatalf("answer %d %v, want status %d code %d", status, body, tt.status, tt.code)
			}
			if body["message"] == "" || body["more_info"] != "https://www.twilio.com/docs/errors/"+itoa(tt.code) {
				t.Errorf("error body %v lacks message or more_info", body)
			}
		})
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d messages created by failed requests", n)
	}
	if n := len(s.Requests()); n != len(tests) {
		t.Errorf("%d requests recorded, want %d", n, len(tests))
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestCreateMessageShape(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	s := start(t, Config{Now: func() time.Time { return now }})
	form := url.Values{"To": {"+15550001111"}, "From": {"+15550002222"}, "Body": {"hi"}, "StatusCallback": {"https://example.com/cb"}}
	status, _, m := do(t, s, http.MethodPost, messagesPath(s), form, "", "")
	if status != http.StatusCreated {
		t.Fatalf("status %d: %v", status, m)
	}
	sid, _ := m["sid"].(string)
	if !strings.HasPrefix(sid, "SM") || len(sid) != 34 {
		t.Errorf("sid %q is not SM + 32 hex digits", sid)
	}
	want := map[string]any{
		"status": "queued", "to": "+15550001111", "from": "+15550002222", "body": "hi",
		"date_created": "Sun, 01 Mar 2026 09:30:00 +0000", "date_sent": nil, "direction": "outbound-api",
		"account_sid": s.AccountSID(), "error_code": nil,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if got := s.Messages(); len(got) != 1 || got[0].StatusCallback != "https://example.com/cb" {
		t.Errorf("stored messages %+v", got)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	s := start(t, Config{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	var sids []string
	for i, to := range []string{"+15550000001", "+15550000002", "+15550000001", "+15550000001"} {
		mu.Lock()
		now = now.Add(time.Hour)
		mu.Unlock()
		_, _, m := do(t, s, http.MethodPost, messagesPath(s), url.Values{"To": {to}, "From": {"+15559999999"}, "Body": {itoa(i)}}, "", "")
		sids = append(sids, m["sid"].(string))
	}
	// Only delivered messages have a date_sent.
	for _, sid := range sids[1:] {
		if err := s.Deliver(t.Context(), sid); err != nil {
			t.Fatal(err)
		}
	}
	list := func(q url.Values) []string {
		t.Helper()
		status, _, body := do(t, s, http.MethodGet, messagesPath(s), q, "", "")
		if status != http.StatusOK {
			t.Fatalf("list %v: %d %v", q, status, body)
		}
		var out []string
		for _, m := range body["messages"].([]any) {
			out = append(out, m.(map[string]any)["sid"].(string))
		}
		return out
	}
	tests := []struct {
		name string
		q    url.Values
		want []string
	}{
		{"all newest first", url.Values{}, []string{sids[3], sids[2], sids[1], sids[0]}},
		{"by To", url.Values{"To": {"+15550000001"}}, []string{sids[3], sids[2], sids[0]}},
		{"DateSent> excludes queued", url.Values{"To": {"+15550000001"}, "DateSent>": {"2026-03-01"}}, []string{sids[3], sids[2]}},
		// Deliver stamped all three with the clock's last time, 13:00.
		{"DateSent> RFC 3339 on", url.Values{"DateSent>": {"2026-03-01T13:00:00Z"}}, []string{sids[3], sids[2], sids[1]}},
		{"DateSent> RFC 3339 after", url.Values{"DateSent>": {"2026-03-01T13:00:01Z"}}, nil},
		{"DateSent day", url.Values{"DateSent": {"2026-03-01"}}, []string{sids[3], sids[2], sids[1]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := list(tt.q); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	_, _, first := do(t, s, http.MethodGet, messagesPath(s), url.Values{"PageSize": {"3"}}, "", "")
	next, _ := first["next_page_uri"].(string)
	if len(first["messages"].([]any)) != 3 || next == "" {
		t.Fatalf("first page %v", first)
	}
	u, _ := url.Parse(next)
	_, _, second := do(t, s, http.MethodGet, u.Path, u.Query(), "", "")
	msgs := second["messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["sid"] != sids[0] || second["next_page_uri"] != nil {
		t.Errorf("second page %v", second)
	}
}

func TestFaults(t *testing.T) {
	s := start(t, Config{})
	form := url.Values{"To": {"+15550001111"}, "From": {"+15550002222"}, "Body": {"hi"}}
	s.FailNextWith(Messages, 1, Fault{Status: 429, Code: 20429, RetryAfter: 1500 * time.Millisecond})
	s.FailNext(Messages, 1, 500, 20500)
	s.RejectNumber("+15550003333", Fault{Status: 400, Code: 21614, Message: "not a mobile number"})

	status, h, body := do(t, s, http.MethodPost, messagesPath(s), form, "", "")
	if status != 429 || h.Get("Retry-After") != "2" || body["code"] != float64(20429) {
		t.Errorf("first: %d Retry-After %q %v", status, h.Get("Retry-After"), body)
	}
	if status, _, body = do(t, s, http.MethodPost, messagesPath(s), form, "", ""); status != 500 {
		t.Errorf("second: %d %v", status, body)
	}
	if status, _, body = do(t, s, http.MethodPost, messagesPath(s), form, "", ""); status != 201 {
		t.Errorf("third: %d %v", status, body)
	}
	form.Set("To", "+15550003333")
	if status, _, body = do(t, s, http.MethodPost, messagesPath(s), form, "", ""); status != 400 || body["code"] != float64(21614) {
		t.Errorf("rejected number: %d %v", status, body)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

// TestSignKnownAnswers checks Sign against the examples in Twilio's
// documentation and in twilio-go's own tests.
func TestSignKnownAnswers(t *testing.T) {
	const docURL = "https://mycompany.com/myapp.php?foo=1&bar=2"
	params := func(caller string, extra ...string) url.Values {
		v := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {caller}, "Digits": {"1234"}, "From": {caller}, "To": {"+18005551212"}}
		for i := 0; i < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v
	}
	tests := []struct {
		name string
		form url.Values
		want string
	}{
		{"twilio docs", params("+14158675310"), "GvWf1cFY/Q7PnoempGyD5oXAezc="},
		{"twilio docs, older", params("+14158675309"), "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{"twilio-go tests", params("+14158675309", "ReasonConferenceEnded", "test", "Reason", "Participant"), "vOEb5UThFn24KEfnOFLQY2AE5FY="},
	}
	for _, tt := range tests {
		if got := Sign("12345", docURL, tt.form); got != tt.want {
			t.Errorf("%s: Sign = %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestCallbacksSigned checks every kind of callback against twilio-go's
// own validator.
func TestCallbacksSigned(t *testing.T) {
	validator := client.NewRequestValidator(DefaultAuthToken)
	var mu sync.Mutex
	var got []url.Values
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		full := "http://" + r.Host + r.URL.RequestURI()
		if !validator.ValidateBody(full, body, r.Header.Get("X-Twilio-Signature")) {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		form, _ := url.ParseQuery(string(body))
		mu.Lock()
		got = append(got, form)
		mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/voice") {
			w.Header().Set("Content-Type", "text/xml")
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Gather numDigits="1" action="/action?incident=7&amp;x=1"><Say>Disk full</Say></Gather></Response>`)
		}
	}))
	defer app.Close()
	s := start(t, Config{SMSWebhook: app.URL + "/sms"})

	_, _, m := do(t, s, http.MethodPost, messagesPath(s), url.Values{"To": {"+15550001111"}, "From": {"+15550002222"}, "Body": {"hi"}, "StatusCallback": {app.URL + "/status?kind=sms"}}, "", "")
	if err := s.Deliver(t.Context(), m["sid"].(string)); err != nil {
		t.Fatalf("deliver: %v", err)
	}
	if _, err := s.ReplySMS(t.Context(), "+15550001111", "+15550002222", "ACK 42"); err != nil {
		t.Fatalf("reply: %v", err)
	}
	_, _, c := do(t, s, http.MethodPost, "/2010-04-01/Accounts/"+s.AccountSID()+"/Calls.json", url.Values{
		"To": {"+15550001111"}, "From": {"+15550002222"}, "Url": {app.URL + "/voice"},
		"StatusCallback": {app.URL + "/status?kind=call"}, "StatusCallbackEvent": {"answered", "completed"},
	}, "", "")
	ans, err := s.Answer(t.Context(), c["sid"].(string), "12")
	if err != nil {
		t.Fatalf("answer: %v", err)
	}
	if ans.Action != app.URL+"/action?incident=7&x=1" {
		t.Errorf("action %q", ans.Action)
	}
	if err := s.Deliver(t.Context(), c["sid"].(string)); err != nil {
		t.Fatalf("complete call: %v", err)
	}

	want := []struct{ key, value string }{
		{"MessageStatus", "delivered"},
		{"Body", "ACK 42"},
		{"CallStatus", "in-progress"}, // answered event
		{"CallStatus", "in-progress"}, // TwiML fetch
		{"Digits", "1"},               // numDigits=1 keeps one key
		{"CallStatus", "completed"},
	}
	if len(got) != len(want) {
		t.Fatalf("app got %d requests, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Get(w.key) != w.value {
			t.Errorf("request %d: %s = %q, want %q (%v)", i, w.key, got[i].Get(w.key), w.value, got[i])
		}
	}
	for _, cb := range s.Callbacks() {
		if cb.Status != http.StatusOK {
			t.Errorf("callback %s answered %d", cb.URL, cb.Status)
		}
	}
}

func TestCallbackRefused(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusForbidden)
	}))
	defer app.Close()
	s := start(t, Config{SMSWebhook: app.URL})
	_, err := s.ReplySMS(t.Context(), "+15550001111", "+15550002222", "hi")
	var ce *CallbackError
	if !errors.As(err, &ce) || ce.Status != http.StatusForbidden {
		t.Fatalf("err = %v, want a CallbackError with 403", err)
	}
	if err := s.Deliver(t.Context(), "SMnope"); err == nil {
		t.Error("Deliver of an unknown sid succeeded")
	}
}
