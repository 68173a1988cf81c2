package integrations

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/internal/golden"
)

const (
	pdToken        = "pd-routing-key-3b1e" // the token of every golden input
	pdLimitedToken = "pd-limited-key-0a77"
)

var pdIntegrations = []oncall.Integration{
	{Name: "pd", Kind: "pagerduty", Token: pdToken, Channel: "C9", Routes: []oncall.Route{
		{Match: map[string]string{"component": "mysql"}, Channel: "C0DB", Escalation: "dba"},
	}},
	{Name: "limited", Kind: "pagerduty", Token: pdLimitedToken, RateLimit: 1},
	{Name: "hooks", Kind: "webhook", Token: "wh-token-not-a-routing-key"},
}

var dedupKeyPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestParsePagerDutyGolden parses every testdata/pagerduty/*.json and
// compares the event (dedup key, raw record, batch) with the .golden file
// next to it. A generated dedup key is shown as "<generated>".
func TestParsePagerDutyGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "pagerduty", "*.json"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("golden inputs: %v", err)
	}
	for _, in := range inputs {
		t.Run(strings.TrimSuffix(filepath.Base(in), ".json"), func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := ParsePagerDuty(body, testNow)
			if err != nil {
				t.Fatalf("parse %s: %v", in, err)
			}
			checkPagerDutyEvent(t, ev)
			if ev.RoutingKey != pdToken {
				t.Errorf("routing key %q, want %q", ev.RoutingKey, pdToken)
			}
			got, err := json.MarshalIndent(struct {
				DedupKey string            `json:"dedup_key"`
				Raw      json.RawMessage   `json:"raw"`
				Batch    oncall.AlertBatch `json:"batch"`
			}{ev.DedupKey, ev.Raw, ev.Batch}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(body, []byte(`"dedup_key"`)) {
				if !dedupKeyPattern.MatchString(ev.DedupKey) {
					t.Errorf("generated dedup key %q, want 32 hex digits", ev.DedupKey)
				}
				got = bytes.ReplaceAll(got, []byte(ev.DedupKey), []byte("<generated>"))
			}
			golden.Check(t, strings.TrimSuffix(in, ".json")+".golden", append(got, '\n'))
		})
	}
}

// TestParsePagerDutyGeneratesKeys checks that triggers without a dedup key
// are distinct alerts, as in PagerDuty, and that the key is answered back
// by being the group's.
func TestParsePagerDutyGeneratesKeys(t *testing.T) {
	body := []byte(`{"routing_key":"k","event_action":"trigger","payload":{"summary":"s","source":"h","severity":"info"}}`)
	a, err := ParsePagerDuty(body, testNow)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParsePagerDuty(body, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if a.DedupKey == b.DedupKey || a.Batch.GroupKey != "pd:"+a.DedupKey || a.Batch.Alerts[0].Fingerprint != a.DedupKey {
		t.Errorf("dedup keys %q and %q, group key %q, fingerprint %q: want distinct keys naming the group and the alert",
			a.DedupKey, b.DedupKey, a.Batch.GroupKey, a.Batch.Alerts[0].Fingerprint)
	}
}

// TestParsePagerDutyGrouping checks that trigger, acknowledge and resolve
// of a dedup key act on one group, and that long keys stay distinct.
func TestParsePagerDutyGrouping(t *testing.T) {
	event := func(action, key string) oncall.AlertBatch {
		t.Helper()
		body, err := json.Marshal(map[string]any{"routing_key": "k", "event_action": action, "dedup_key": key,
			"payload": map[string]string{"summary": "s", "source": "h", "severity": "info"}})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := ParsePagerDuty(body, testNow)
		if err != nil {
			t.Fatal(err)
		}
		return ev.Batch
	}
	trigger, ack, resolve := event("trigger", "k1"), event("acknowledge", "k1"), event("resolve", "k1")
	if trigger.GroupKey != ack.GroupKey || trigger.GroupKey != resolve.GroupKey ||
		resolve.Alerts[0].Fingerprint != trigger.Alerts[0].Fingerprint {
		t.Errorf("group keys %q, %q, %q: want one group", trigger.GroupKey, ack.GroupKey, resolve.GroupKey)
	}
	long1, long2 := strings.Repeat("x", maxIDBytes)+"1", strings.Repeat("x", maxIDBytes)+"2"
	if a, b := event("trigger", long1), event("trigger", long2); a.GroupKey == b.GroupKey || len(a.GroupKey) > len("pd:")+maxIDBytes {
		t.Errorf("long dedup keys: group keys %q and %q, want distinct and bounded", a.GroupKey, b.GroupKey)
	}
}

const pdTrigger = `"routing_key":"k","event_action":"trigger"`

// TestParsePagerDutyInvalid checks the refusal of every malformed event,
// worded as PagerDuty words it.
func TestParsePagerDutyInvalid(t *testing.T) {
	unrecognized := &PagerDutyError{Status: "Unrecognized object", Message: "Event object format is unrecognized",
		Errors: []string{"JSON parse error"}}
	invalid := func(errs ...string) *PagerDutyError {
		return &PagerDutyError{Status: "invalid event", Message: "Event object is invalid", Errors: errs}
	}
	manyBadLinks := `{` + pdTrigger + `,"payload":{"summary":"s","source":"h","severity":"info"},"links":[` +
		strings.Repeat(`1,`, 30) + `1]}`
	manyErrors := make([]string, maxPagerDutyErrors)
	for i := range manyErrors {
		manyErrors[i] = "'links[" + strconv.Itoa(i) + "]' is invalid (expected object, got number)"
	}
	tests := []struct {
		name string
		body string
		want *PagerDutyError
	}{
		{"empty body", ``, unrecognized},
		{"not JSON", `routing_key=k&event_action=trigger`, unrecognized},
		{"truncated", `{"routing_key":"k","event_action":"trig`, unrecognized},
		{"array", `[{"routing_key":"k"}]`, unrecognized},
		{"null", `null`, unrecognized},
		{"empty object", `{}`, invalid("'routing_key' is missing or blank", "'event_action' is missing or blank")},
		{"blank routing key", `{"routing_key":" ","event_action":"resolve","dedup_key":"d"}`, invalid("'routing_key' is missing or blank")},
		{"routing key not a string", `{"routing_key":12345,"event_action":"resolve","dedup_key":"d"}`,
			invalid("'routing_key' is invalid (expected string, got number)")},
		{"unknown action", `{"routing_key":"k","event_action":"escalate","dedup_key":"d"}`,
			invalid("'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')")},
		{"v1 event_type", `{"routing_key":"k","event_type":"trigger","description":"d"}`, invalid("'event_action' is missing or blank")},
		{"action not a string", `{"routing_key":"k","event_action":["trigger"]}`,
			invalid("'event_action' is invalid (expected string, got array)")},
		{"acknowledge without dedup key", `{"routing_key":"k","event_action":"acknowledge"}`, invalid("'dedup_key' is missing or blank")},
		{"resolve with blank dedup key", `{"routing_key":"k","event_action":"resolve","dedup_key":" \u0000"}`,
			invalid("'dedup_key' is missing or blank")},
		{"dedup key not a string", `{"routing_key":"k","event_action":"resolve","dedup_key":7}`,
			invalid("'dedup_key' is invalid (expected string, got number)")},
		{"trigger without payload", `{` + pdTrigger + `}`, invalid("'payload' is missing or blank")},
		{"payload not an object", `{` + pdTrigger + `,"payload":"disk full"}`, invalid("'payload' is invalid (expected object, got string)")},
		{"empty payload", `{` + pdTrigger + `,"payload":{}}`, invalid("'payload.summary' is missing or blank",
			"'payload.source' is missing or blank", "'payload.severity' is missing or blank")},
		{"NUL summary", `{` + pdTrigger + `,"payload":{"summary":"\u0000","source":"h","severity":"info"}}`,
			invalid("'payload.summary' is missing or blank")},
		{"unknown severity", `{` + pdTrigger + `,"payload":{"summary":"s","source":"h","severity":"high"}}`,
			invalid("'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')")},
		{"source not a string", `{` + pdTrigger + `,"payload":{"summary":"s","source":42,"severity":"info"}}`,
			invalid("'payload.source' is invalid (expected string, got number)")},
		{"component not a string", `{` + pdTrigger + `,"payload":{"summary":"s","source":"h","severity":"info","component":{}}}`,
			invalid("'payload.component' is invalid (expected string, got object)")},
		{"timestamp not a string", `{` + pdTrigger + `,"payload":{"summary":"s","source":"h","severity":"info","timestamp":1700000000}}`,
			invalid("'payload.timestamp' is invalid (expected string, got number)")},
		{"client_url not a string", `{` + pdTrigger + `,"payload":{"summary":"s","source":"h","severity":"info"},"client_url":true}`,
			invalid("'client_url' is invalid (expected string, got boolean)")},
		{"links not an array", `{` + pdTrigger + `,"payload":{"summary":"s","source":"h","severity":"info"},"links":{"href":"https://x.example"}}`,
			invalid("'links' is invalid (expected array, got object)")},
		{"link not an object", `{` + pdTrigger + `,"payload":{"summary":"s","source":"h","severity":"info"},"links":[{"href":"https://x.example"},"https://y.example"]}`,
			invalid("'links[1]' is invalid (expected object, got string)")},
		{"href not a string", `{` + pdTrigger + `,"payload":{"summary":"s","source":"h","severity":"info"},"links":[{"href":["https://x.example"]}]}`,
			invalid("'links[0].href' is invalid (expected string, got array)")},
		{"image src not a string", `{` + pdTrigger + `,"payload":{"summary":"s","source":"h","severity":"info"},"images":[{"src":false}]}`,
			invalid("'images[0].src' is invalid (expected string, got boolean)")},
		{"every problem listed", `{"routing_key":"","event_action":"trigger","payload":{"summary":"","source":1,"severity":"fatal"}}`,
			invalid("'routing_key' is missing or blank", "'payload.summary' is missing or blank",
				"'payload.source' is invalid (expected string, got number)",
				"'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')")},
		{"errors capped", manyBadLinks, invalid(manyErrors...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := ParsePagerDuty([]byte(tc.body), testNow)
			if err == nil {
				t.Fatalf("parse succeeded, want %v; event %+v", tc.want, ev)
			}
			pe, ok := errors.AsType[*PagerDutyError](err)
			if !ok {
				t.Fatalf("error %v is %T, want *PagerDutyError", err, err)
			}
			if !reflect.DeepEqual(pe, tc.want) {
				t.Errorf("error\n got %#v\nwant %#v", pe, tc.want)
			}
		})
	}
}

// checkPagerDutyEvent fails t unless ev satisfies what ParsePagerDuty
// promises: a batch like every parser's (an acknowledge has no alerts),
// and a storable record without the routing key.
func checkPagerDutyEvent(t *testing.T, ev PagerDutyEvent) {
	t.Helper()
	for _, p := range pagerDutyBatchProblems(ev.Batch) {
		t.Error(p)
	}
	if ev.DedupKey == "" || !strings.HasPrefix(ev.Batch.GroupKey, "pd:") {
		t.Errorf("dedup key %q, group key %q", ev.DedupKey, ev.Batch.GroupKey)
	}
	raw := storableJSON(ev.Raw)
	if raw == nil {
		t.Fatalf("raw %q is not storable", ev.Raw)
	}
	checkStorableJSON(t, raw)
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		t.Fatalf("raw %s: %v", raw, err)
	}
	if _, ok := members["routing_key"]; ok {
		t.Errorf("raw %s holds the routing key", raw)
	}
}

// pagerDutyBatchProblems is batchProblems for PagerDuty's batches, whose
// acknowledgements hold no alerts.
func pagerDutyBatchProblems(b oncall.AlertBatch) []string {
	problems := batchProblems(b)
	if b.Action == oncall.ActionAcknowledge {
		problems = slices.DeleteFunc(problems, func(p string) bool { return p == "no alerts" })
		if len(b.Alerts) != 0 || b.Status != oncall.AlertFiring {
			problems = append(problems, "acknowledge with alerts or not firing")
		}
	}
	return problems
}

// pdPublisher records the batches published; err, when set, fails every
// publish, and onPublish, when set, runs first.
type pdPublisher struct {
	mu        sync.Mutex
	batches   []oncall.AlertBatch
	err       error
	onPublish func()
}

func (p *pdPublisher) PublishAlertData(_ context.Context, id, kind string, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.onPublish != nil {
		p.onPublish()
	}
	if p.err != nil {
		return p.err
	}
	var b oncall.AlertBatch
	if err := json.Unmarshal(data, &b); err != nil {
		return err
	}
	if b.ID != id || b.Kind != kind {
		return errors.New("published id or kind differs from the batch's")
	}
	p.batches = append(p.batches, b)
	return nil
}

// published returns the batches published since the last call.
func (p *pdPublisher) published() []oncall.AlertBatch {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.batches
	p.batches = nil
	return b
}

func (p *pdPublisher) set(err error, onPublish func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err, p.onPublish = err, onPublish
}

type pdEnv struct {
	pub  *pdPublisher
	mux  *http.ServeMux
	srv  *httptest.Server
	reg  *prometheus.Registry
	logs *syncBuffer
}

func newPDEnv(t *testing.T) *pdEnv {
	t.Helper()
	e := &pdEnv{pub: &pdPublisher{}, mux: http.NewServeMux(), reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	NewHandler(pdIntegrations, e.pub, log, e.reg).Register(e.mux)
	e.srv = httptest.NewServer(e.mux)
	t.Cleanup(e.srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", e.logs.String())
		}
	})
	return e
}

func (e *pdEnv) do(t *testing.T, method, path string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: data}
}

// pdComparable clears what the handler adds to a parsed batch and the times
// that depend on when it was parsed.
func pdComparable(b oncall.AlertBatch) oncall.AlertBatch {
	b.ID, b.Integration, b.Kind, b.ReceivedAt, b.Raw = "", "", "", time.Time{}, nil
	b.Channel, b.Escalation = "", ""
	b.Alerts = slices.Clone(b.Alerts)
	for i := range b.Alerts {
		b.Alerts[i].StartsAt, b.Alerts[i].EndsAt = time.Time{}, time.Time{}
	}
	return b
}

// TestPagerDutyEndpointAccepts posts every golden input to /v2/enqueue and
// checks PagerDuty's 202 and the batch published.
func TestPagerDutyEndpointAccepts(t *testing.T) {
	e := newPDEnv(t)
	inputs, err := filepath.Glob(filepath.Join("testdata", "pagerduty", "*.json"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("golden inputs: %v", err)
	}
	for i, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ParsePagerDuty(body, testNow)
			if err != nil {
				t.Fatal(err)
			}
			path := []string{"/v2/enqueue", "/v2/enqueue/"}[i%2]
			r := e.do(t, http.MethodPost, path, body)
			if r.code != http.StatusAccepted {
				t.Fatalf("status %d, want 202; body %s", r.code, r.body)
			}
			var got pdResponse
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("decode %s: %v", r.body, err)
			}
			dedupKey := want.DedupKey
			if !bytes.Contains(body, []byte(`"dedup_key"`)) {
				dedupKey = got.DedupKey // generated
				if !dedupKeyPattern.MatchString(dedupKey) {
					t.Errorf("generated dedup key %q, want 32 hex digits", dedupKey)
				}
			}
			quotedKey, err := json.Marshal(dedupKey)
			if err != nil {
				t.Fatal(err)
			}
			wantBody := `{"status":"success","message":"Event processed","dedup_key":` + string(quotedKey) + "}\n"
			if string(r.body) != wantBody || r.header.Get("Content-Type") != "application/json" {
				t.Errorf("answer %s (%s), want %s (application/json)", r.body, r.header.Get("Content-Type"), wantBody)
			}

			published := e.pub.published()
			if len(published) != 1 {
				t.Fatalf("%d batches published, want 1", len(published))
			}
			b := published[0]
			if !batchIDPattern.MatchString(b.ID) || b.Integration != "pd" || b.Kind != "pagerduty" || b.ReceivedAt.IsZero() {
				t.Errorf("batch id/integration/kind/received_at %q/%q/%q/%s", b.ID, b.Integration, b.Kind, b.ReceivedAt)
			}
			if b.GroupKey != "pd:"+boundedID(dedupKey) {
				t.Errorf("group key %q, want that of dedup key %q", b.GroupKey, dedupKey)
			}
			wantBatch := want.Batch
			if dedupKey != want.DedupKey { // each trigger without a key gets its own
				wantBatch.GroupKey = "pd:" + dedupKey
				wantBatch.Alerts = slices.Clone(wantBatch.Alerts)
				wantBatch.Alerts[0].Fingerprint = dedupKey
			}
			if g, w := pdComparable(b), pdComparable(wantBatch); !reflect.DeepEqual(g, w) {
				t.Errorf("published batch\n got %+v\nwant %+v", g, w)
			}
			if !sameJSON(t, b.Raw, storableJSON(want.Raw)) || bytes.Contains(b.Raw, []byte(pdToken)) {
				t.Errorf("raw %s, want the event without its routing key", b.Raw)
			}
		})
	}

	t.Run("routes apply", func(t *testing.T) {
		body, err := os.ReadFile(filepath.Join("testdata", "pagerduty", "trigger_full.json"))
		if err != nil {
			t.Fatal(err)
		}
		if r := e.do(t, http.MethodPost, "/v2/enqueue", body); r.code != http.StatusAccepted {
			t.Fatalf("status %d; body %s", r.code, r.body)
		}
		if b := e.pub.published(); len(b) != 1 || b[0].Channel != "C0DB" || b[0].Escalation != "dba" {
			t.Errorf("published %+v, want one batch routed to C0DB/dba by its component", b)
		}
	})

	got := gather(t, e.reg)
	if n := got[`oncall_ingest_requests_total{code="202",kind="pagerduty"}`]; n != float64(len(inputs)+1) {
		t.Errorf("202s of kind pagerduty counted %v, want %d", n, len(inputs)+1)
	}
	if strings.Contains(e.logs.String(), pdToken) {
		t.Error("the routing key appears in the logs")
	}
}

// TestPagerDutyEndpointRejects checks every refusal, its exact answer, and
// that nothing was published.
func TestPagerDutyEndpointRejects(t *testing.T) {
	e := newPDEnv(t)
	valid := func(token string) []byte {
		return []byte(`{"routing_key":"` + token + `","event_action":"trigger","payload":{"summary":"s","source":"h","severity":"info"}}`)
	}
	tooLarge := append([]byte(`{"routing_key":"`+pdToken+`","event_action":"trigger","payload":{"summary":"`),
		bytes.Repeat([]byte("x"), MaxBodyBytes)...)
	tests := []struct {
		name        string
		method      string
		path        string
		body        []byte
		wantCode    int
		wantBody    string
		contentType string
	}{
		{"unknown routing key", "POST", "/v2/enqueue", valid("nope"), 400, `{"status":"invalid event","message":"Invalid routing key","errors":["Invalid routing key"]}` + "\n", "application/json"},
		{"token of another kind", "POST", "/v2/enqueue", valid("wh-token-not-a-routing-key"), 400, `{"status":"invalid event","message":"Invalid routing key","errors":["Invalid routing key"]}` + "\n", "application/json"},
		{"token prefix", "POST", "/v2/enqueue", valid(pdToken[:6]), 400, `{"status":"invalid event","message":"Invalid routing key","errors":["Invalid routing key"]}` + "\n", "application/json"},
		{"malformed JSON", "POST", "/v2/enqueue", []byte(`{"routing_key":`), 400,
			`{"status":"Unrecognized object","message":"Event object format is unrecognized","errors":["JSON parse error"]}` + "\n", "application/json"},
		{"invalid event", "POST", "/v2/enqueue/", []byte(`{"routing_key":"` + pdToken + `","event_action":"trigger","payload":{"summary":"s","source":"h"}}`), 400,
			`{"status":"invalid event","message":"Event object is invalid","errors":["'payload.severity' is missing or blank"]}` + "\n", "application/json"},
		{"invalid event, unknown key", "POST", "/v2/enqueue", []byte(`{"routing_key":"nope","event_action":"resolve"}`), 400,
			`{"status":"invalid event","message":"Event object is invalid","errors":["'dedup_key' is missing or blank"]}` + "\n", "application/json"},
		{"GET", "GET", "/v2/enqueue", nil, 405, `{"status":"method not allowed","message":"Method not allowed, use POST"}` + "\n", "application/json"},
		{"PUT", "PUT", "/v2/enqueue/", valid(pdToken), 405, `{"status":"method not allowed","message":"Method not allowed, use POST"}` + "\n", "application/json"},
		{"body over 1 MiB", "POST", "/v2/enqueue", tooLarge, 413,
			`{"status":"invalid event","message":"Event object is invalid","errors":["Event is larger than 1048576 bytes"]}` + "\n", "application/json"},
		{"other path", "POST", "/v2/enqueue/extra", valid(pdToken), 404, "", ""},
		{"v1 path", "POST", "/generic/2010-04-15/create_event.json", valid(pdToken), 404, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, tc.method, tc.path, tc.body)
			if r.code != tc.wantCode {
				t.Fatalf("status %d, want %d; body %s", r.code, tc.wantCode, r.body)
			}
			if tc.wantBody != "" && string(r.body) != tc.wantBody {
				t.Errorf("body\n got %q\nwant %q", r.body, tc.wantBody)
			}
			if ct := r.header.Get("Content-Type"); tc.contentType != "" && ct != tc.contentType {
				t.Errorf("Content-Type %q, want %q", ct, tc.contentType)
			}
			if tc.wantCode == 405 && r.header.Get("Allow") != "POST" {
				t.Errorf("Allow %q, want POST", r.header.Get("Allow"))
			}
			if b := e.pub.published(); len(b) != 0 {
				t.Errorf("%d batches published, want none", len(b))
			}
		})
	}
	if strings.Contains(e.logs.String(), pdToken) {
		t.Error("the routing key appears in the logs")
	}
}

// TestPagerDutyEndpointQueue checks the answers that depend on the queue
// and the rate limit: 202 only once the publish returned, 503 with
// Retry-After when it failed, 429 with Retry-After beyond the limit.
func TestPagerDutyEndpointQueue(t *testing.T) {
	e := newPDEnv(t)
	body := []byte(`{"routing_key":"` + pdToken + `","event_action":"trigger","dedup_key":"q","payload":{"summary":"s","source":"h","severity":"info"}}`)

	t.Run("answered after the publish", func(t *testing.T) {
		// The publish runs in the handler's goroutine: whatever the
		// recorder holds when it starts was written before it.
		rec := httptest.NewRecorder()
		answeredEarly := true
		e.pub.set(nil, func() { answeredEarly = rec.Code != http.StatusOK || rec.Body.Len() > 0 || rec.Flushed })
		defer e.pub.set(nil, nil)
		e.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v2/enqueue", bytes.NewReader(body)))
		if answeredEarly {
			t.Error("the request was answered before its batch was published (or not published)")
		}
		if rec.Code != http.StatusAccepted || len(e.pub.published()) != 1 {
			t.Errorf("status %d; want 202 and one batch published", rec.Code)
		}
	})

	t.Run("queue unavailable", func(t *testing.T) {
		e.pub.set(errors.New("nats: timeout"), nil)
		defer e.pub.set(nil, nil)
		r := e.do(t, http.MethodPost, "/v2/enqueue", body)
		want := `{"status":"service unavailable","message":"queue unavailable, retry"}` + "\n"
		if r.code != http.StatusServiceUnavailable || string(r.body) != want {
			t.Errorf("answer %d %q, want 503 %q", r.code, r.body, want)
		}
		if ra := r.header.Get("Retry-After"); ra != "5" {
			t.Errorf("Retry-After %q, want 5", ra)
		}
		if b := e.pub.published(); len(b) != 0 {
			t.Errorf("%d batches published, want none", len(b))
		}
	})

	t.Run("rate limited", func(t *testing.T) {
		limited := bytes.Replace(body, []byte(pdToken), []byte(pdLimitedToken), 1)
		if r := e.do(t, http.MethodPost, "/v2/enqueue", limited); r.code != http.StatusAccepted {
			t.Fatalf("first event: status %d, want 202; body %s", r.code, r.body)
		}
		r := e.do(t, http.MethodPost, "/v2/enqueue", limited)
		if r.code != http.StatusTooManyRequests {
			t.Fatalf("second event: status %d, want 429; body %s", r.code, r.body)
		}
		var got pdResponse
		if err := json.Unmarshal(r.body, &got); err != nil || got.Status != "too many requests" ||
			!strings.HasPrefix(got.Message, `rate limit of integration "limited" exceeded (1 requests a minute)`) {
			t.Errorf("429 body %s (%v)", r.body, err)
		}
		if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("Retry-After %q, want a number of seconds", r.header.Get("Retry-After"))
		}
		if b := e.pub.published(); len(b) != 1 {
			t.Errorf("%d batches published, want the first only", len(b))
		}
	})
}

// FuzzParsePagerDuty checks that any body either is refused with a
// *PagerDutyError and nothing published, or parses into a valid event
// that the endpoint publishes before answering 2xx. The seed corpus is
// under testdata/fuzz/FuzzParsePagerDuty: the golden inputs and near
// misses.
func FuzzParsePagerDuty(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, parseErr := ParsePagerDuty(body, testNow)
		if parseErr != nil {
			pe, ok := errors.AsType[*PagerDutyError](parseErr)
			if !ok || len(pe.Errors) == 0 || len(pe.Errors) > maxPagerDutyErrors {
				t.Fatalf("error %#v (%T), want a *PagerDutyError listing 1 to %d errors", parseErr, parseErr, maxPagerDutyErrors)
			}
		} else {
			checkPagerDutyEvent(t, ev)
		}

		pub := &pdPublisher{}
		mux := http.NewServeMux()
		NewHandler(pdIntegrations, pub, slog.New(slog.DiscardHandler), nil).Register(mux)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v2/enqueue", bytes.NewReader(body)))
		published := pub.published()
		if rec.Code < 200 || rec.Code > 299 {
			if rec.Code < 400 || rec.Code > 499 || len(published) != 0 {
				t.Fatalf("status %d with %d batches published, want 4xx and none", rec.Code, len(published))
			}
			if parseErr == nil && ev.RoutingKey == pdToken {
				t.Fatalf("valid event for a known routing key answered %d: %s", rec.Code, rec.Body)
			}
			return
		}
		if parseErr != nil || rec.Code != http.StatusAccepted || len(published) != 1 {
			t.Fatalf("status %d with %d batches published for an event parsed with %v, want 202 and one",
				rec.Code, len(published), parseErr)
		}
		b := published[0]
		for _, p := range pagerDutyBatchProblems(b) {
			t.Error(p)
		}
		if !batchIDPattern.MatchString(b.ID) || b.Integration != "pd" || b.Kind != pagerDutyKind {
			t.Errorf("batch id/integration/kind %q/%q/%q", b.ID, b.Integration, b.Kind)
		}
		checkStorableJSON(t, b.Raw)
		var answer pdResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil || answer.Status != "success" ||
			b.GroupKey != "pd:"+boundedID(answer.DedupKey) {
			t.Errorf("answer %s (%v) for group %q", rec.Body, err, b.GroupKey)
		}
	})
}
