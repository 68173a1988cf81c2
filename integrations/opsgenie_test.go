package integrations

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/internal/golden"
)

const (
	ogToken      = "og-secret-3c1e"
	ogLimitToken = "og-limited-77aa"
	ogHookToken  = "og-hook-0b9d" // a webhook integration's: no GenieKey
)

var ogIntegrations = []oncall.Integration{
	{Name: "opsgenie-main", Kind: "opsgenie", Token: ogToken, Channel: "C9", RateLimit: 1 << 20, Routes: []oncall.Route{
		{Match: map[string]string{"tag_team:payments": "true"}, Channel: "C0PAY", Escalation: "payments"},
	}},
	{Name: "opsgenie-limited", Kind: "opsgenie", Token: ogLimitToken, RateLimit: 1},
	{Name: "hook", Kind: "webhook", Token: ogHookToken},
}

// ogPublisher records the batches published, or fails with err.
type ogPublisher struct {
	mu      sync.Mutex
	err     error
	batches []oncall.AlertBatch
}

func (p *ogPublisher) PublishAlertData(_ context.Context, id, kind string, data []byte) error {
	if p.err != nil {
		return p.err
	}
	var b oncall.AlertBatch
	if err := json.Unmarshal(data, &b); err != nil {
		return fmt.Errorf("decode batch: %w", err)
	}
	if b.ID != id || b.Kind != kind {
		return fmt.Errorf("batch %q of kind %q published as %q of kind %q", b.ID, b.Kind, id, kind)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batches = append(p.batches, b)
	return nil
}

// take returns the batches published since the last call.
func (p *ogPublisher) take() []oncall.AlertBatch {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.batches
	p.batches = nil
	return b
}

// ogEnv is a Handler for ogIntegrations serving on a mux.
type ogEnv struct {
	h   *Handler
	mux *http.ServeMux
	pub *ogPublisher
}

func newOgEnv(t testing.TB) *ogEnv {
	t.Helper()
	e := &ogEnv{pub: &ogPublisher{}, mux: http.NewServeMux()}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.h = NewHandler(ogIntegrations, e.pub, log, nil)
	e.h.Register(e.mux)
	return e
}

// do serves one request; auth is the Authorization header ("" for none).
func (e *ogEnv) do(method, target, auth string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	return rec
}

// ogAnswer decodes the members of an answer the tests look at.
type ogAnswer struct {
	Message   string `json:"message"`
	RequestID string `json:"requestId"`
}

var (
	ogTookPattern      = regexp.MustCompile(`"took":\d+\.\d{3}`)
	ogRequestIDPattern = regexp.MustCompile(`"requestId":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"`)
)

// ogNormalize replaces the took and request id of an answer, checked to
// be well formed, by fixed values.
func ogNormalize(t *testing.T, body []byte) string {
	t.Helper()
	if !ogTookPattern.Match(body) || !ogRequestIDPattern.Match(body) {
		t.Errorf("answer %s lacks a took in seconds or a request id", body)
	}
	s := ogTookPattern.ReplaceAllString(string(body), `"took":0.012`)
	return ogRequestIDPattern.ReplaceAllString(s, `"requestId":"<id>"`)
}

// ogBatchProblems is batchProblems for any batch the Alert API publishes:
// acknowledge, unacknowledge and notes carry no alerts.
func ogBatchProblems(b oncall.AlertBatch) []string {
	problems := batchProblems(b)
	if b.Action != "" || b.Note != "" && b.Status == oncall.AlertFiring {
		problems = slices.DeleteFunc(problems, func(p string) bool { return p == "no alerts" })
	}
	return problems
}

var ogGoldenCases = []struct {
	name, method, target string
}{
	{"create_full", "POST", "/v2/alerts"},
	{"create_minimal", "POST", "/v2/alerts"},
	{"alertmanager_create", "POST", "/v2/alerts"},
	{"alertmanager_close", "POST", "/v2/alerts/d4061866bc333de2350285b0452a21f78349e3d63b4f06b6c956f64f95d7be36/close?identifierType=alias"},
	{"zabbix_create", "POST", "/v2/alerts/"},
	{"zabbix_acknowledge", "POST", "/v2/alerts/4711/acknowledge?identifierType=alias"},
	{"zabbix_unacknowledge", "POST", "/v2/alerts/4711/unacknowledge?identifierType=alias"},
	{"zabbix_notes", "POST", "/v2/alerts/4711/notes?identifierType=alias"},
	{"zabbix_close", "POST", "/v2/alerts/4711/close?identifierType=alias"},
	// d2ViLTMtY3B1 is the id of alias web-3-cpu (create_full).
	{"close_by_id", "POST", "/v2/alerts/d2ViLTMtY3B1/close"},
	{"acknowledge_by_id_empty_body", "POST", "/v2/alerts/d2ViLTMtY3B1/acknowledge?identifierType=id"},
}

// TestOpsgenieGolden sends each testdata/opsgenie/<name>.json to its
// endpoint and compares the answer and the batch published with
// <name>.golden.
func TestOpsgenieGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "opsgenie", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) != len(ogGoldenCases) {
		t.Errorf("%d inputs under testdata/opsgenie, %d cases: give each input a case", len(inputs), len(ogGoldenCases))
	}
	e := newOgEnv(t)
	for _, tc := range ogGoldenCases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join("testdata", "opsgenie", tc.name+".json")
			body, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			before := time.Now().UTC()
			rec := e.do(tc.method, tc.target, "GenieKey "+ogToken, body)
			if rec.Code != http.StatusAccepted {
				t.Fatalf("status %d, want 202; body %s", rec.Code, rec.Body)
			}
			published := e.pub.take()
			if len(published) != 1 {
				t.Fatalf("%d batches published, want 1", len(published))
			}
			b := published[0]
			var answer ogAnswer
			if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil || answer.RequestID != b.ID {
				t.Errorf("answer %s (%v), want the request id %q of the batch", rec.Body, err, b.ID)
			}
			for _, p := range ogBatchProblems(b) {
				t.Error(p)
			}
			if b.Kind != "opsgenie" || b.Integration != "opsgenie-main" || b.ReceivedAt.Before(before) {
				t.Errorf("batch kind/integration/received %q/%q/%s, want opsgenie/opsgenie-main/now", b.Kind, b.Integration, b.ReceivedAt)
			}
			if len(bytes.TrimSpace(body)) > 0 && !sameJSON(t, b.Raw, body) {
				t.Errorf("raw %s, want the request body", b.Raw)
			}
			// Times are the receive time; the golden file shows testNow.
			for i := range b.Alerts {
				a := &b.Alerts[i]
				for _, at := range []*time.Time{&a.StartsAt, &a.EndsAt} {
					if !at.IsZero() && !at.Equal(b.ReceivedAt) {
						t.Errorf("alert %d time %s, want the receive time %s", i, at, b.ReceivedAt)
					}
					if !at.IsZero() {
						*at = testNow
					}
				}
			}
			b.ID, b.ReceivedAt, b.Raw = "<request id>", testNow, nil
			var batch bytes.Buffer
			enc := json.NewEncoder(&batch)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(b); err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("%s %s\n%d %s%s", tc.method, tc.target, rec.Code,
				strings.Replace(ogNormalize(t, rec.Body.Bytes()), `"<id>"`, `"<request id>"`, 1), batch.Bytes())
			// A generated alias differs on every run.
			if alias := strings.TrimPrefix(b.GroupKey, ogGroupPrefix); isBatchID(alias) {
				got = strings.ReplaceAll(got, alias, "<generated alias>")
			}
			golden.Check(t, filepath.Join("testdata", "opsgenie", tc.name+".golden"), []byte(got))
		})
	}
}

// TestOpsgenieRejects checks the exact answer to each request refused,
// and that none published anything.
func TestOpsgenieRejects(t *testing.T) {
	const (
		genie  = "GenieKey " + ogToken
		unauth = `{"message":"Could not authenticate","took":0.012,"requestId":"<id>"}`
	)
	notProcessable := func(field, msg string) string {
		return `{"message":"Request body is not processable. Please check the errors.","errors":{` +
			strconvQuote(field) + `:` + strconvQuote(msg) + `},"took":0.012,"requestId":"<id>"}`
	}
	tests := []struct {
		name, method, target, auth, body string
		wantCode                         int
		want                             string
		wantAllow                        string
	}{
		{"no Authorization", "POST", "/v2/alerts", "", `{"message":"m"}`, 401, unauth, ""},
		{"other scheme", "POST", "/v2/alerts", "Bearer " + ogToken, `{"message":"m"}`, 401, unauth, ""},
		{"GenieKey without token", "POST", "/v2/alerts", "GenieKey ", `{"message":"m"}`, 401, unauth, ""},
		{"unknown GenieKey", "POST", "/v2/alerts", "GenieKey nope", `{"message":"m"}`, 401, unauth, ""},
		{"token of another kind", "POST", "/v2/alerts", "GenieKey " + ogHookToken, `{"message":"m"}`, 401, unauth, ""},
		{"action without auth", "POST", "/v2/alerts/a/close?identifierType=alias", "", ``, 401, unauth, ""},
		{"request status without auth", "GET", "/v2/alerts/requests/" + newBatchID(), "", ``, 401, unauth, ""},
		{"list alerts", "GET", "/v2/alerts", genie, ``, 405,
			`{"message":"Method not allowed, use POST","took":0.012,"requestId":"<id>"}`, "POST"},
		{"GET on an action", "GET", "/v2/alerts/a/close", genie, ``, 405,
			`{"message":"Method not allowed, use POST","took":0.012,"requestId":"<id>"}`, "POST"},
		{"POST on message", "POST", "/v2/alerts/a/message?identifierType=alias", genie, `{"message":"m"}`, 405,
			`{"message":"Method not allowed, use PUT","took":0.012,"requestId":"<id>"}`, "PUT"},
		{"unsupported action", "POST", "/v2/alerts/a/snooze?identifierType=alias", genie, `{}`, 404,
			`{"message":"Alert action \"snooze\" is not supported; supported: close, acknowledge, unacknowledge, notes","took":0.012,"requestId":"<id>"}`, ""},

		{"empty body", "POST", "/v2/alerts", genie, ``, 400,
			`{"message":"Could not parse request body: empty body: expected a JSON object","took":0.012,"requestId":"<id>"}`, ""},
		{"malformed JSON", "POST", "/v2/alerts", genie, `{"message":"m",}`, 400,
			`{"message":"Could not parse request body: malformed JSON at byte 16: invalid character '}' looking for beginning of object key string","took":0.012,"requestId":"<id>"}`, ""},
		{"array body", "POST", "/v2/alerts/a/close?identifierType=alias", genie, `[]`, 400,
			`{"message":"Could not parse request body: expected a JSON object, got array","took":0.012,"requestId":"<id>"}`, ""},
		{"no message", "POST", "/v2/alerts", genie, `{"alias":"a"}`, 422, notProcessable("message", "Message can not be empty."), ""},
		{"blank message", "POST", "/v2/alerts", genie, `{"message":" \u0000\t"}`, 422, notProcessable("message", "Message can not be empty."), ""},
		{"message not a string", "POST", "/v2/alerts", genie, `{"message":42}`, 422, notProcessable("message", "expected string, got number"), ""},
		{"unknown priority", "POST", "/v2/alerts", genie, `{"message":"m","priority":"P0"}`, 422,
			notProcessable("priority", "should be one of [ P1, P2, P3, P4, P5 ]"), ""},
		{"tags not an array", "POST", "/v2/alerts", genie, `{"message":"m","tags":"a,b"}`, 422, notProcessable("tags", "expected array, got string"), ""},
		{"tag not a string", "POST", "/v2/alerts", genie, `{"message":"m","tags":["a",1]}`, 422, notProcessable("tags[1]", "expected string, got number"), ""},
		{"detail an object", "POST", "/v2/alerts", genie, `{"message":"m","details":{"x":{}}}`, 422, notProcessable("details.x", "expected string, got object"), ""},
		{"details an array", "POST", "/v2/alerts", genie, `{"message":"m","details":[]}`, 422, notProcessable("details", "expected object, got array"), ""},
		{"responders not an array", "POST", "/v2/alerts", genie, `{"message":"m","responders":{}}`, 422, notProcessable("responders", "expected array, got object"), ""},
		{"first of two wrong members", "POST", "/v2/alerts", genie, `{"message":1,"note":2}`, 422, notProcessable("message", "expected string, got number"), ""},
		{"tiny id", "POST", "/v2/alerts/12/close?identifierType=tiny", genie, `{}`, 422,
			notProcessable("identifierType", "tiny ids are not supported; use id or alias"), ""},
		{"unknown identifierType", "POST", "/v2/alerts/12/close?identifierType=name", genie, `{}`, 422,
			notProcessable("identifierType", "should be one of [ id, alias, tiny ]"), ""},
		{"id not ours", "POST", "/v2/alerts/8743a1b2-11da-480e-8493-744660987bef/acknowledge", genie, `{}`, 422,
			notProcessable("identifier", `"8743a1b2-11da-480e-8493-744660987bef" is not an alert id of this server; name the alert by its alias with identifierType=alias`), ""},
		{"id of a NUL", "POST", "/v2/alerts/AA/acknowledge", genie, `{}`, 422,
			notProcessable("identifier", `"AA" is not an alert id of this server; name the alert by its alias with identifierType=alias`), ""},
		{"blank alias", "POST", "/v2/alerts/%20/close?identifierType=alias", genie, `{}`, 422, notProcessable("identifier", "may not be empty"), ""},
		{"note without note", "POST", "/v2/alerts/a/notes?identifierType=alias", genie, `{"user":"bob"}`, 422, notProcessable("note", "Note can not be empty."), ""},
		{"note not a string", "POST", "/v2/alerts/a/acknowledge?identifierType=alias", genie, `{"note":["x"]}`, 422, notProcessable("note", "expected string, got array"), ""},
		{"body too large", "POST", "/v2/alerts", genie, `{"message":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, 413,
			`{"message":"Request body larger than 1048576 bytes","took":0.012,"requestId":"<id>"}`, ""},
	}
	e := newOgEnv(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.do(tc.method, tc.target, tc.auth, []byte(tc.body))
			if rec.Code != tc.wantCode {
				t.Errorf("status %d, want %d; body %s", rec.Code, tc.wantCode, rec.Body)
			}
			if got := ogNormalize(t, rec.Body.Bytes()); got != tc.want+"\n" {
				t.Errorf("answer\n got %s\nwant %s", got, tc.want)
			}
			if got := rec.Header().Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow %q, want %q", got, tc.wantAllow)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if b := e.pub.take(); len(b) != 0 {
				t.Errorf("%d batches published, want none: %+v", len(b), b)
			}
		})
	}
}

// strconvQuote quotes s as writeJSON does.
func strconvQuote(s string) string {
	q, _ := json.Marshal(s) // a string always encodes
	return string(q)
}

// TestOpsgenieAcceptErrors checks the rate limit and a queue failure are
// answered in Opsgenie's shape, with Retry-After.
func TestOpsgenieAcceptErrors(t *testing.T) {
	e := newOgEnv(t)
	body := []byte(`{"message":"m","alias":"a"}`)
	if rec := e.do("POST", "/v2/alerts", "GenieKey "+ogLimitToken, body); rec.Code != http.StatusAccepted {
		t.Fatalf("first request: status %d, want 202; body %s", rec.Code, rec.Body)
	}
	e.pub.take()
	rec := e.do("POST", "/v2/alerts/a/close?identifierType=alias", "GenieKey "+ogLimitToken, nil)
	var answer ogAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
		t.Fatalf("decode %s: %v", rec.Body, err)
	}
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" ||
		!strings.HasPrefix(answer.Message, `rate limit of integration "opsgenie-limited" exceeded`) {
		t.Errorf("over the limit: status %d, Retry-After %q, answer %s; want 429 with Retry-After and why",
			rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}

	e.pub.err = errors.New("queue down")
	rec = e.do("POST", "/v2/alerts", "GenieKey "+ogToken, body)
	want := `{"message":"queue unavailable, retry","took":0.012,"requestId":"<id>"}` + "\n"
	if got := ogNormalize(t, rec.Body.Bytes()); rec.Code != http.StatusServiceUnavailable || got != want ||
		rec.Header().Get("Retry-After") != "5" {
		t.Errorf("queue down: status %d, Retry-After %q, answer %s; want 503, 5, %s", rec.Code, rec.Header().Get("Retry-After"), got, want)
	}
	e.pub.err = nil
	if b := e.pub.take(); len(b) != 0 {
		t.Errorf("%d batches published, want none", len(b))
	}
}

// TestOpsgenieRoutesAndIgnoredUpdates checks that routes see the labels
// made of tags, and that Alertmanager's message and description updates
// are accepted without publishing anything.
func TestOpsgenieRoutesAndIgnoredUpdates(t *testing.T) {
	e := newOgEnv(t)
	rec := e.do("POST", "/v2/alerts", "GenieKey "+ogToken, []byte(`{"message":"m","tags":["team:payments"]}`))
	if rec.Code != http.StatusAccepted {
		t.Fatalf("status %d; body %s", rec.Code, rec.Body)
	}
	if b := e.pub.take(); len(b) != 1 || b[0].Channel != "C0PAY" || b[0].Escalation != "payments" {
		t.Errorf("batches %+v, want one routed to C0PAY/payments", b)
	}
	for _, update := range []string{"message", "description"} {
		rec := e.do("PUT", "/v2/alerts/abc/"+update+"?identifierType=alias", "GenieKey "+ogToken, []byte(`{"`+update+`":"new"}`))
		want := `{"result":"Request will be processed","took":0.012,"requestId":"<id>"}` + "\n"
		if got := ogNormalize(t, rec.Body.Bytes()); rec.Code != http.StatusAccepted || got != want {
			t.Errorf("PUT %s: status %d, answer %s; want 202 %s", update, rec.Code, got, want)
		}
	}
	if b := e.pub.take(); len(b) != 0 {
		t.Errorf("updates published %d batches, want none", len(b))
	}
}

// ogOutcomes is a BatchOutcomes holding outcomes by batch id; an outcome
// is reported unprocessed for its first pending[id] lookups.
type ogOutcomes struct {
	mu       sync.Mutex
	outcomes map[string]oncall.BatchOutcome
	pending  map[string]int
	err      error
}

func (o *ogOutcomes) BatchOutcome(_ context.Context, id string) (oncall.BatchOutcome, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return oncall.BatchOutcome{}, o.err
	}
	out, ok := o.outcomes[id]
	if !ok {
		return oncall.BatchOutcome{}, fmt.Errorf("batch %q: %w", id, oncall.ErrNotFound)
	}
	if o.pending[id] > 0 {
		o.pending[id]--
		return oncall.BatchOutcome{}, nil
	}
	return out, nil
}

func TestOpsgenieRequestStatus(t *testing.T) {
	const (
		created, resolved, missing, waited, unknown = "2b7e0c35-3c1e-4a9f-8d2b-0e6f3a1c9b10", "b1c9a0e2-5d4f-4e3a-9b8c-7d6e5f4a3b21",
			"c3d2e1f0-a9b8-4c7d-8e6f-5a4b3c2d1e02", "d4e3f2a1-b0c9-4d8e-9f7a-6b5c4d3e2f13", "e5f4a3b2-c1d0-4e9f-a8b7-c6d5e4f3a204"
		notProcessed = `{"message":"Request not found. It might not be processed, yet.","took":0.012,"requestId":"<id>"}`
	)
	at := time.Date(2026, 3, 1, 12, 0, 0, 250_000_000, time.UTC)
	outcomes := &ogOutcomes{
		outcomes: map[string]oncall.BatchOutcome{
			created:  {Processed: true, IncidentID: 42, GroupKey: "og:web-3-cpu", Action: "created", ProcessedAt: at},
			resolved: {Processed: true, IncidentID: 42, GroupKey: "og:web-3-cpu", Action: "resolved", ProcessedAt: at},
			missing:  {Processed: true, GroupKey: "og:4711", Action: "no_incident", ProcessedAt: at},
			waited:   {Processed: true, IncidentID: 7, GroupKey: "og:4711", Action: "acknowledged", ProcessedAt: at},
		},
		pending: map[string]int{waited: 2},
	}
	status := func(action, status, alertID, alias string, success bool) string {
		return fmt.Sprintf(`{"data":{"success":%t,"action":%q,"processedAt":"2026-03-01T12:00:00.250Z","integrationId":"opsgenie-main",`+
			`"isSuccess":%t,"status":%q,"alertId":%q,"alias":%q},"took":0.012,"requestId":"<id>"}`, success, action, success, status, alertID, alias)
	}
	e := newOgEnv(t)
	get := func(t *testing.T, id string) (int, string) {
		t.Helper()
		rec := e.do("GET", "/v2/alerts/requests/"+id, "GenieKey "+ogToken, nil)
		return rec.Code, strings.TrimSuffix(ogNormalize(t, rec.Body.Bytes()), "\n")
	}

	t.Run("database not reached", func(t *testing.T) {
		if code, body := get(t, created); code != http.StatusNotFound || body != notProcessed {
			t.Errorf("status %d %s, want 404 %s", code, body, notProcessed)
		}
	})
	e.h.SetBatchOutcomes(outcomes)
	tests := []struct {
		name, id string
		wantCode int
		want     string
	}{
		{"created", created, 200, status("Create", "Created alert", "d2ViLTMtY3B1", "web-3-cpu", true)},
		{"closed", resolved, 200, status("Close", "Closed alert", "d2ViLTMtY3B1", "web-3-cpu", true)},
		{"nothing open", missing, 200, status("Update", "There is no open alert with this alias", "", "", false)},
		{"processed while waiting", waited, 200, status("Acknowledge", "Acknowledged alert", "NDcxMQ", "4711", true)},
		{"not processed in time", unknown, 404, notProcessed},
		{"not a request id", "req-1", 404, notProcessed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := get(t, tc.id); code != tc.wantCode || body != tc.want {
				t.Errorf("status %d %s\nwant %d %s", code, body, tc.wantCode, tc.want)
			}
		})
	}
	t.Run("database error", func(t *testing.T) {
		outcomes.mu.Lock()
		outcomes.err = errors.New("connection refused")
		outcomes.mu.Unlock()
		want := `{"message":"Internal error","took":0.012,"requestId":"<id>"}`
		if code, body := get(t, created); code != http.StatusInternalServerError || body != want {
			t.Errorf("status %d %s, want 500 %s", code, body, want)
		}
	})
}

// TestOpsgenieStatusTexts checks what each outcome is reported as.
func TestOpsgenieStatusTexts(t *testing.T) {
	tests := []struct {
		outcome, action, status string
		success                 bool
	}{
		{"created", "Create", "Created alert", true},
		{"joined", "Create", "Alert already exists; its count was increased", true},
		{"resolved", "Close", "Closed alert", true},
		{"acknowledged", "Acknowledge", "Acknowledged alert", true},
		{"unacknowledged", "UnAcknowledge", "UnAcknowledged alert", true},
		{"noted", "AddNote", "Added note", true},
		{"unchanged", "Update", "Alert is already in the requested state", true},
		{"stale", "Update", "Request was older than the alert's latest state; alert left unchanged", true},
		{"no_incident", "Update", "There is no open alert with this alias", false},
	}
	for _, tc := range tests {
		s := opsgenieRequestStatus(oncall.BatchOutcome{Processed: true, IncidentID: 1, GroupKey: "og:a", Action: tc.outcome},
			oncall.Integration{Name: "og"})
		if s.Action != tc.action || s.Status != tc.status || s.Success != tc.success || s.IsSuccess != tc.success {
			t.Errorf("%s: %+v, want action %q, status %q, success %t", tc.outcome, s, tc.action, tc.status, tc.success)
		}
	}
}

// TestOpsgenieIDRoundTrip creates an alert, reads its id from the request
// status, and closes it by that id: the close is for the alert's group.
func TestOpsgenieIDRoundTrip(t *testing.T) {
	e := newOgEnv(t)
	outcomes := &ogOutcomes{outcomes: map[string]oncall.BatchOutcome{}}
	e.h.SetBatchOutcomes(outcomes)
	alias := "checkout/p99 ✓ " + strings.Repeat("x", 300) // hashed: longer than an id may be
	body, err := json.Marshal(map[string]string{"message": "slow", "alias": alias})
	if err != nil {
		t.Fatal(err)
	}
	rec := e.do("POST", "/v2/alerts", "GenieKey "+ogToken, body)
	b := e.pub.take()
	if rec.Code != http.StatusAccepted || len(b) != 1 {
		t.Fatalf("create: status %d, %d batches; body %s", rec.Code, len(b), rec.Body)
	}
	outcomes.mu.Lock()
	outcomes.outcomes[b[0].ID] = oncall.BatchOutcome{Processed: true, IncidentID: 3, GroupKey: b[0].GroupKey, Action: "created"}
	outcomes.mu.Unlock()

	rec = e.do("GET", "/v2/alerts/requests/"+b[0].ID, "GenieKey "+ogToken, nil)
	var status struct{ Data ogRequestStatus }
	if err := json.Unmarshal(rec.Body.Bytes(), &status); err != nil || rec.Code != http.StatusOK || status.Data.AlertID == "" {
		t.Fatalf("request status %d %s (%v), want an alert id", rec.Code, rec.Body, err)
	}
	for _, target := range []string{
		"/v2/alerts/" + status.Data.AlertID + "/close",
		"/v2/alerts/" + status.Data.AlertID + "/close?identifierType=id",
		"/v2/alerts/" + status.Data.Alias + "/close?identifierType=alias",
	} {
		rec = e.do("POST", target, "GenieKey "+ogToken, nil)
		closed := e.pub.take()
		if rec.Code != http.StatusAccepted || len(closed) != 1 || closed[0].GroupKey != b[0].GroupKey ||
			closed[0].Status != oncall.AlertResolved {
			t.Errorf("POST %s: status %d, batches %+v; want a resolve of group %q", target, rec.Code, closed, b[0].GroupKey)
		}
	}
}

// TestOpsgenieTruncates checks the limits Opsgenie cuts fields to.
func TestOpsgenieTruncates(t *testing.T) {
	body, err := json.Marshal(map[string]any{
		"message": strings.Repeat("m", 200), "description": strings.Repeat("d", 20000),
		"tags": []string{strings.Repeat("t", 60)}, "note": strings.Repeat("n", 30000),
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseOpsgenieCreate(body, testNow, newBatchID)
	if err != nil {
		t.Fatal(err)
	}
	tag := strings.Repeat("t", ogMaxTagRunes-1) + "…"
	if n := len([]rune(b.Title)); n != ogMaxMessageRunes || len([]rune(b.Message)) != ogMaxDescriptionRunes ||
		len([]rune(b.Note)) != ogMaxNoteRunes || b.Labels["tag_"+tag] != "true" {
		t.Errorf("title %d runes, message %d, note %d, labels %v; want %d, %d, %d and the tag cut to %d",
			n, len([]rune(b.Message)), len([]rune(b.Note)), b.Labels, ogMaxMessageRunes, ogMaxDescriptionRunes, ogMaxNoteRunes, ogMaxTagRunes)
	}
	if b1, _ := parseOpsgenieCreate([]byte(`{"message":"m"}`), testNow, newBatchID); b1.GroupKey == b.GroupKey {
		t.Errorf("two alerts without alias share group key %q", b.GroupKey)
	}
}

// ogFuzzTargets are the endpoints FuzzParseOpsgenie sends bodies to.
var ogFuzzTargets = []string{
	"/v2/alerts",
	"/v2/alerts/4711/close?identifierType=alias",
	"/v2/alerts/4711/acknowledge?identifierType=alias",
	"/v2/alerts/d2ViLTMtY3B1/unacknowledge",
	"/v2/alerts/4711/notes?identifierType=alias",
}

// FuzzParseOpsgenie posts any body to an Alert API endpoint: the answer is
// 202 with exactly one valid batch published, or an Opsgenie error below
// 500 with nothing published.
func FuzzParseOpsgenie(f *testing.F) {
	e := newOgEnv(f)
	f.Fuzz(func(t *testing.T, target byte, body []byte) {
		rec := e.do("POST", ogFuzzTargets[int(target)%len(ogFuzzTargets)], "GenieKey "+ogToken, body)
		published := e.pub.take()
		if rec.Code != http.StatusAccepted {
			var answer ogAnswer
			if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil || answer.Message == "" || rec.Code >= 500 {
				t.Fatalf("status %d, answer %s (%v): want a 4xx Opsgenie error", rec.Code, rec.Body, err)
			}
			if len(published) != 0 {
				t.Fatalf("status %d, yet %d batches published", rec.Code, len(published))
			}
			return
		}
		if len(published) != 1 {
			t.Fatalf("202 with %d batches published, want 1", len(published))
		}
		for _, p := range ogBatchProblems(published[0]) {
			t.Error(p)
		}
		if published[0].Raw != nil {
			checkStorableJSON(t, published[0].Raw)
		}
	})
}
