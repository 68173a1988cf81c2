package integrations

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/queue"
)

const (
	amToken      = "am-secret-7f3a"
	webhookToken = "wh-secret-19bc"
	sharedToken  = "shared-secret-55d0" // configured for both kinds
	grafanaToken = "gf-secret-3c81"
	// waitLimit bounds every wait for the queue so a broken test fails
	// instead of hanging; it is not a performance expectation.
	waitLimit = 20 * time.Second
)

var testIntegrations = []oncall.Integration{
	{Name: "prometheus", Kind: "alertmanager", Token: amToken, Channel: "C1", Routes: []oncall.Route{
		{Match: map[string]string{"team": "payments", "severity": "critical"}, Channel: "C0PAYMENTS", Escalation: "payments"},
	}},
	{Name: "hooks", Kind: "webhook", Token: webhookToken, Channel: "C2", Routes: []oncall.Route{
		{Match: map[string]string{"team": "payments"}, Channel: "C0HOOKPAY"},
		{Match: map[string]string{"severity": "critical"}, Escalation: "urgent"},
	}},
	{Name: "shared-am", Kind: "alertmanager", Token: sharedToken},
	{Name: "shared-hook", Kind: "webhook", Token: sharedToken},
	{Name: "no-token", Kind: "webhook"},
	{Name: "future", Kind: "zabbix", Token: "zabbix-secret-0123"},
	{Name: "grafana", Kind: "grafana", Token: grafanaToken, Channel: "C3"},
}

// env is a handler in front of a real embedded queue.
type env struct {
	q      *queue.Queue
	srv    *httptest.Server
	reg    *prometheus.Registry
	logs   *syncBuffer
	closed chan struct{} // closed once the consumer has returned
	cancel context.CancelFunc
	got    chan oncall.AlertBatch
}

// newEnv opens a queue under t.TempDir and serves a Handler for
// testIntegrations in front of it.
func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	q, err := queue.Open(ctx, queue.Options{DataDir: t.TempDir(), Logger: log.With("component", "queue")})
	if err != nil {
		t.Fatalf("open queue: %v", err)
	}
	t.Cleanup(q.Close)

	e := &env{q: q, reg: prometheus.NewRegistry(), logs: logs}
	h := NewHandler(testIntegrations, q, log.With("component", "ingest"), e.reg, opts...)
	mux := http.NewServeMux()
	h.Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	return e
}

// consume starts consuming the ALERTS stream into e.got.
func (e *env) consume(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.got, e.closed = cancel, make(chan oncall.AlertBatch, 100), make(chan struct{})
	go func() {
		defer close(e.closed)
		err := e.q.ConsumeAlerts(ctx, func(_ context.Context, b oncall.AlertBatch) error {
			e.got <- b
			return nil
		})
		if err != nil {
			t.Errorf("consume alerts: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-e.closed })
}

// next returns the next consumed batch.
func (e *env) next(t *testing.T) oncall.AlertBatch {
	t.Helper()
	select {
	case b := <-e.got:
		return b
	case <-time.After(waitLimit):
		t.Fatal("no alert batch consumed from the queue")
		return oncall.AlertBatch{}
	}
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (e *env) post(t *testing.T, method, path string, body []byte) response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: data}
}

// accepted checks r is a 202 for n alerts and returns the batch id.
func accepted(t *testing.T, r response, n int) string {
	t.Helper()
	if r.code != http.StatusAccepted {
		t.Fatalf("status %d, want 202; body %s", r.code, r.body)
	}
	var got acceptedResponse
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatalf("decode 202 body %s: %v", r.body, err)
	}
	if got.Status != "accepted" || got.Alerts != n || !batchIDPattern.MatchString(got.ID) {
		t.Errorf("202 body %s, want status accepted, %d alerts and a batch id", r.body, n)
	}
	return got.ID
}

var batchIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func errorBody(t *testing.T, r response) string {
	t.Helper()
	var got errorResponse
	if err := json.Unmarshal(r.body, &got); err != nil || got.Error == "" {
		t.Fatalf("body %s is not a JSON error (%v)", r.body, err)
	}
	return got.Error
}

// sentinel posts a valid webhook and checks it is the next batch consumed:
// whatever was rejected before it never reached the queue.
func (e *env) sentinel(t *testing.T) {
	t.Helper()
	id := accepted(t, e.post(t, http.MethodPost, "/integrations/webhook/"+webhookToken, []byte(`{"title":"sentinel"}`)), 1)
	if b := e.next(t); b.ID != id || b.Title != "sentinel" {
		t.Fatalf("first batch consumed is %q (%q), want the sentinel %q", b.ID, b.Title, id)
	}
}

// TestHandlerAccepts posts every golden input and checks the 202 and the
// batch consumed from the queue.
func TestHandlerAccepts(t *testing.T) {
	e := newEnv(t)
	e.consume(t)
	tokens := map[string]string{"webhook": webhookToken, "alertmanager": amToken, "grafana": grafanaToken}
	names := map[string]string{"webhook": "hooks", "alertmanager": "prometheus", "grafana": "grafana"}
	for kind := range builtinParsers() {
		var parse Parser
		for _, it := range testIntegrations {
			if it.Name == names[kind] {
				parse = ParserFor(it, kind) // as the handler parses for it
			}
		}
		inputs, err := filepath.Glob(filepath.Join("testdata", kind, "*.json"))
		if err != nil || len(inputs) == 0 {
			t.Fatalf("golden inputs of %s: %v", kind, err)
		}
		for _, in := range inputs {
			t.Run(kind+"/"+filepath.Base(in), func(t *testing.T) {
				body, err := os.ReadFile(in)
				if err != nil {
					t.Fatal(err)
				}
				want, err := parse(body, testNow)
				if err != nil {
					t.Fatal(err)
				}
				before := time.Now().UTC()
				id := accepted(t, e.post(t, http.MethodPost, "/integrations/"+kind+"/"+tokens[kind], body), len(want.Alerts))

				b := e.next(t)
				if b.ID != id || b.Integration != names[kind] || b.Kind != kind {
					t.Errorf("batch id/integration/kind = %q/%q/%q, want %q/%q/%q", b.ID, b.Integration, b.Kind, id, names[kind], kind)
				}
				if b.ReceivedAt.Before(before.Add(-time.Minute)) {
					t.Errorf("received_at %s, want about now", b.ReceivedAt)
				}
				if b.GroupKey != want.GroupKey || b.Status != want.Status || b.Title != want.Title || len(b.Alerts) != len(want.Alerts) {
					t.Errorf("batch %q/%q/%q with %d alerts, want %q/%q/%q with %d",
						b.GroupKey, b.Status, b.Title, len(b.Alerts), want.GroupKey, want.Status, want.Title, len(want.Alerts))
				}
				checkBatch(t, b)
				checkStorableJSON(t, b.Raw)
				if utf8.Valid(body) && !hasNULEscape(body) && !sameJSON(t, b.Raw, body) {
					t.Errorf("raw %s, want the request body", b.Raw)
				}
			})
		}
	}

	t.Run("one token for two kinds", func(t *testing.T) {
		for kind, name := range map[string]string{"webhook": "shared-hook", "alertmanager": "shared-am"} {
			body, err := os.ReadFile(filepath.Join("testdata", kind, "firing_"+map[string]string{"webhook": "minimal", "alertmanager": "group_of_3"}[kind]+".json"))
			if err != nil {
				t.Fatal(err)
			}
			id := accepted(t, e.post(t, http.MethodPost, "/integrations/"+kind+"/"+sharedToken, body), map[string]int{"webhook": 1, "alertmanager": 3}[kind])
			if b := e.next(t); b.ID != id || b.Integration != name {
				t.Errorf("%s: batch %q of integration %q, want %q of %q", kind, b.ID, b.Integration, id, name)
			}
		}
	})
}

// TestHandlerRoutes checks that a consumed batch carries the channel and
// escalation of the first route of its integration matching its labels
// (for Alertmanager, the group's common labels), and none without a match.
func TestHandlerRoutes(t *testing.T) {
	e := newEnv(t)
	e.consume(t)
	am, err := os.ReadFile(filepath.Join("testdata", "alertmanager", "firing_group_of_3.json"))
	if err != nil {
		t.Fatal(err)
	}
	const amNotCommon = `{"version":"4","groupKey":"g","status":"firing","commonLabels":{"alertname":"A"},
		"alerts":[{"status":"firing","labels":{"alertname":"A","team":"payments","severity":"critical"}},
		          {"status":"firing","labels":{"alertname":"A","team":"db","severity":"critical"}}]}`
	tests := []struct {
		name, path, body       string
		wantChannel, wantEscal string
	}{
		{"alertmanager common labels match", "/integrations/alertmanager/" + amToken, string(am), "C0PAYMENTS", "payments"},
		{"alertmanager labels of some alerts only", "/integrations/alertmanager/" + amToken, amNotCommon, "", ""},
		{"webhook first route", "/integrations/webhook/" + webhookToken,
			`{"title":"t","labels":{"team":"payments"}}`, "C0HOOKPAY", ""},
		{"webhook first of two matching routes", "/integrations/webhook/" + webhookToken,
			`{"title":"t","labels":{"team":"payments","severity":"critical"}}`, "C0HOOKPAY", ""},
		{"webhook second route", "/integrations/webhook/" + webhookToken,
			`{"title":"t","labels":{"team":"db","severity":"critical"}}`, "", "urgent"},
		{"webhook no match", "/integrations/webhook/" + webhookToken,
			`{"title":"t","labels":{"team":"db"}}`, "", ""},
		{"integration without routes", "/integrations/alertmanager/" + sharedToken, string(am), "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(t, http.MethodPost, tc.path, []byte(tc.body))
			if r.code != http.StatusAccepted {
				t.Fatalf("status %d, want 202; body %s", r.code, r.body)
			}
			b := e.next(t)
			if b.Channel != tc.wantChannel || b.Escalation != tc.wantEscal {
				t.Errorf("batch with channel %q and escalation %q, want %q and %q",
					b.Channel, b.Escalation, tc.wantChannel, tc.wantEscal)
			}
		})
	}
}

// sameJSON reports whether a and b encode the same value. (The queue
// re-encodes Raw, escaping HTML characters.)
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// TestHandlerRejects checks every refusal and that none of them queued
// anything.
func TestHandlerRejects(t *testing.T) {
	e := newEnv(t)
	e.consume(t)
	valid := []byte(`{"title":"t"}`)
	unauthorized := `{"error":"unknown or disabled integration token"}` + "\n"
	tests := []struct {
		name     string
		method   string
		path     string
		body     []byte
		wantCode int
		wantBody string // exact, when set
		wantErr  string // substring of the error, when set
	}{
		{"unknown token", "POST", "/integrations/webhook/nope", valid, 401, unauthorized, ""},
		{"token of another kind", "POST", "/integrations/webhook/" + amToken, valid, 401, unauthorized, ""},
		{"blank token", "POST", "/integrations/webhook/%20", valid, 401, unauthorized, ""},
		{"token prefix", "POST", "/integrations/webhook/" + webhookToken[:5], valid, 401, unauthorized, ""},
		{"kind without parser", "POST", "/integrations/zabbix/zabbix-secret-0123", valid, 404, "", `unknown integration kind "zabbix"`},
		{"unknown kind", "POST", "/integrations/nagios/" + webhookToken, valid, 404, "", `unknown integration kind "nagios"`},
		{"GET", "GET", "/integrations/webhook/" + webhookToken, nil, 405, "", "method not allowed"},
		{"PUT", "PUT", "/integrations/webhook/" + webhookToken, valid, 405, "", "method not allowed"},
		{"body over 1 MiB", "POST", "/integrations/webhook/" + webhookToken, oversized(MaxBodyBytes + 1), 413, "", "request body larger than 1048576 bytes"},
		{"body of exactly 1 MiB is read", "POST", "/integrations/webhook/" + webhookToken, oversized(MaxBodyBytes), 400, "", "title: expected string, got number"},
		{"bad payload", "POST", "/integrations/alertmanager/" + amToken, valid, 400, "", "groupKey: required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(t, tc.method, tc.path, tc.body)
			if r.code != tc.wantCode {
				t.Fatalf("status %d, want %d; body %s", r.code, tc.wantCode, r.body)
			}
			if tc.wantBody != "" && string(r.body) != tc.wantBody {
				t.Errorf("body %q, want %q", r.body, tc.wantBody)
			}
			if msg := errorBody(t, r); tc.wantErr != "" && !strings.Contains(msg, tc.wantErr) {
				t.Errorf("error %q, want it to contain %q", msg, tc.wantErr)
			}
			if tc.wantCode == 405 && r.header.Get("Allow") != "POST" {
				t.Errorf("Allow %q, want POST", r.header.Get("Allow"))
			}
		})
	}
	e.sentinel(t)

	for _, secret := range []string{amToken, webhookToken, sharedToken, "zabbix-secret-0123"} {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("a token appears in the logs")
		}
	}
}

// oversized is a JSON object of exactly n bytes without a title.
func oversized(n int) []byte {
	prefix, suffix := `{"title":1,"message":"`, `"}` // a bad title: any other JSON object is an alert
	return []byte(prefix + strings.Repeat("x", n-len(prefix)-len(suffix)) + suffix)
}

// TestHandlerBadInput posts every bad input of the parser tests: each is a
// 400 naming the problem, and nothing is queued.
func TestHandlerBadInput(t *testing.T) {
	e := newEnv(t)
	e.consume(t)
	tokens := map[string]string{"webhook": webhookToken, "alertmanager": amToken}
	for _, tc := range badInputs {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			r := e.post(t, http.MethodPost, "/integrations/"+tc.kind+"/"+tokens[tc.kind], []byte(tc.body))
			if r.code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", r.code, r.body)
			}
			if msg := errorBody(t, r); msg != tc.wantErr {
				t.Errorf("error %q, want %q", msg, tc.wantErr)
			}
		})
	}
	e.sentinel(t)
}

// TestHandlerQueueClosed checks that a queue that cannot take the batch
// gets a 503 with Retry-After, within the publish timeout.
func TestHandlerQueueClosed(t *testing.T) {
	e := newEnv(t, WithPublishTimeout(3*time.Second))
	e.q.Close()
	r := e.post(t, http.MethodPost, "/integrations/webhook/"+webhookToken, []byte(`{"title":"t"}`))
	if r.code != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503; body %s", r.code, r.body)
	}
	if msg := errorBody(t, r); msg != "queue unavailable, retry" {
		t.Errorf("error %q, want queue unavailable, retry", msg)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After header")
	}
}

// TestHandlerLargeBatch checks that a batch too large for the queue's
// messages loses its raw body first and is refused only if still too large.
func TestHandlerLargeBatch(t *testing.T) {
	e := newEnv(t, WithMaxBatchBytes(4096))
	e.consume(t)
	body := []byte(`{"title":"big","message":"` + strings.Repeat("m", 1500) + `"}`)
	id := accepted(t, e.post(t, http.MethodPost, "/integrations/webhook/"+webhookToken, body), 1)
	b := e.next(t)
	if b.ID != id || b.Raw != nil || len(b.Message) != 1500 {
		t.Errorf("batch %q with %d bytes of raw and %d of message, want %q without raw and with the message", b.ID, len(b.Raw), len(b.Message), id)
	}

	body = []byte(`{"title":"bigger","message":"` + strings.Repeat("m", 3000) + `"}`)
	r := e.post(t, http.MethodPost, "/integrations/webhook/"+webhookToken, body)
	if r.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413; body %s", r.code, r.body)
	}
	if msg := errorBody(t, r); !strings.Contains(msg, "alert batch too large") {
		t.Errorf("error %q", msg)
	}
	e.sentinel(t)
}

func TestHandlerMetrics(t *testing.T) {
	e := newEnv(t)
	e.consume(t)
	body, err := os.ReadFile(filepath.Join("testdata", "alertmanager", "firing_group_of_3.json"))
	if err != nil {
		t.Fatal(err)
	}
	accepted(t, e.post(t, http.MethodPost, "/integrations/alertmanager/"+amToken, body), 3)
	e.next(t)
	e.post(t, http.MethodPost, "/integrations/alertmanager/wrong", body)
	e.post(t, http.MethodPost, "/integrations/nagios/wrong", body)

	// A second handler on the same registry shares the collectors.
	NewHandler(testIntegrations, e.q, slog.New(slog.DiscardHandler), e.reg)

	got := gather(t, e.reg)
	want := map[string]float64{
		`oncall_ingest_requests_total{code="202",kind="alertmanager"}`: 1,
		`oncall_ingest_requests_total{code="401",kind="alertmanager"}`: 1,
		`oncall_ingest_requests_total{code="404",kind="unknown"}`:      1,
		`oncall_ingest_alerts_total{integration="prometheus"}`:         3,
		`oncall_ingest_duration_seconds_count{kind="alertmanager"}`:    2,
		`oncall_ingest_duration_seconds_count{kind="unknown"}`:         1,
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
}

// gather flattens the counters and histogram counts of reg into
// `name{label="value",...}` keys (labels sorted by name).
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			key := "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out[f.GetName()+key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[f.GetName()+"_count"+key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func TestLookupConstantTimeOverAll(t *testing.T) {
	h := NewHandler(testIntegrations, nil, slog.New(slog.DiscardHandler), nil)
	tests := []struct {
		kind, token, want string
	}{
		{"alertmanager", amToken, "prometheus"},
		{"webhook", webhookToken, "hooks"},
		{"webhook", sharedToken, "shared-hook"},
		{"alertmanager", sharedToken, "shared-am"},
		{"webhook", amToken, ""},
		{"webhook", "", ""},
		{"zabbix", "zabbix-secret-0123", ""},
	}
	for _, tc := range tests {
		in, ok := h.lookup(tc.kind, tc.token)
		if ok != (tc.want != "") || in.Name != tc.want {
			t.Errorf("lookup(%q, token of %q) = %q, %v; want %q", tc.kind, tc.want, in.Name, ok, tc.want)
		}
		if in.Token != "" {
			t.Errorf("lookup returned the token in clear")
		}
	}
}

func TestStorableJSON(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"kept as is", `{"b": 1, "a": "x"}`, `{"b": 1, "a": "x"}`},
		{"NUL escapes removed", `{"a\u0000": "x\u0000y", "n": 12345678901234567890}`, `{"a":"xy","n":12345678901234567890}`},
		{"invalid UTF-8 replaced", "{\"a\": \"\xff\"}", "{\"a\":\"\ufffd\"}"},
		{"escaped backslash is not a NUL", `{"a": "\\u0000"}`, `{"a":"\\u0000"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := storableJSON([]byte(tc.body))
			if string(got) != tc.want {
				t.Errorf("storableJSON(%q) = %q, want %q", tc.body, got, tc.want)
			}
			checkStorableJSON(t, got)
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
