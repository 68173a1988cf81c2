package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oncallbot/oncall/internal/fakeslack"
	"github.com/oncallbot/oncall/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// The integrations of the test config. Each kind posts to its own channel.
const (
	webhookToken      = "e2e-webhook-token-0001"
	alertmanagerToken = "e2e-alertmanager-token-0001"
	webhookChannel    = "C0WEBHOOK01"
	alertsChannel     = "C0ALERTS01"
)

// waitTimeout bounds every wait for something asynchronous. It is generous
// because the machine is shared and slow; a passing test never waits it out.
const waitTimeout = 20 * time.Second

// processTimeout bounds the waits for an alert across a restart. A batch
// that the stopped process had taken from the queue, or given back while
// stopping, comes back only after the consumer's ack wait (30s), so it is
// longer than waitTimeout.
const processTimeout = 90 * time.Second

// writeConfig writes the test config (a webhook and an Alertmanager
// integration) and returns its path.
func writeConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "oncall.yaml")
	cfg := fmt.Sprintf(`integrations:
  - name: deploys
    kind: webhook
    token: %s
    channel: %s
  - name: prometheus
    kind: alertmanager
    token: %s
    channel: %s
`, webhookToken, webhookChannel, alertmanagerToken, alertsChannel)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newFakeSlack starts a fake Slack in which only the config's channels
// exist, so a post anywhere else fails loudly.
func newFakeSlack(t *testing.T) *fakeslack.Server {
	t.Helper()
	fake, err := fakeslack.New(fakeslack.Config{Channels: []string{webhookChannel, alertsChannel}})
	if err != nil {
		t.Fatalf("start fake Slack: %v", err)
	}
	t.Cleanup(fake.Close)
	return fake
}

// running is a serve call running in a goroutine of the test.
type running struct {
	URL string // http://127.0.0.1:port

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	stopErr  error
}

// startServe runs serve(o) until the test ends (or stop is called) and
// returns once it listens. o.Listen defaults to a free loopback port.
func startServe(t *testing.T, o serveOptions) *running {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Lookup == nil {
		o.Lookup = func(string) (string, bool) { return "", false }
	}
	addr := make(chan net.Addr, 1)
	o.onListen = func(a net.Addr) { addr <- a }
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))

	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- serve(ctx, o, log) }()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("serve returned %v after its context was cancelled, want nil", err)
		}
	})

	select {
	case a := <-addr:
		r.URL = "http://" + a.String()
	case err := <-r.done:
		r.done <- err // for stop
		t.Fatalf("serve returned before listening: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("serve did not start listening")
	}
	return r
}

// stop cancels serve's context and returns what serve returned.
func (r *running) stop() error {
	r.stopOnce.Do(func() {
		r.cancel()
		select {
		case r.stopErr = <-r.done:
		case <-time.After(time.Minute):
			r.stopErr = errors.New("serve did not return within a minute of its context being cancelled")
		}
	})
	return r.stopErr
}

// waitReady waits until /readyz answers 200: the database is migrated and
// the processors run.
func waitReady(t *testing.T, baseURL string) {
	t.Helper()
	poll(t, "GET /readyz to answer 200", func() (bool, error) {
		code, body, err := get(baseURL + "/readyz")
		if err != nil {
			return false, err
		}
		if code != http.StatusOK {
			return false, fmt.Errorf("%d %s", code, body)
		}
		return true, nil
	})
}

// poll calls check until it reports true, for up to waitTimeout. The last
// error check returned explains a timeout.
func poll(t *testing.T, what string, check func() (bool, error)) {
	t.Helper()
	pollFor(t, waitTimeout, what, check)
}

func pollFor(t *testing.T, timeout time.Duration, what string, check func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; last: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func get(url string) (int, []byte, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// response is an answer of the ingest endpoint.
type response struct {
	Code        int
	ContentType string
	Body        []byte
}

func post(t *testing.T, url string, body []byte) response {
	t.Helper()
	resp, err := httpClient.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: read answer: %v", url, err)
	}
	return response{Code: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: got}
}

// accepted checks that r is the 202 of n accepted alerts.
func (r response) accepted(t *testing.T, n int) {
	t.Helper()
	var got struct {
		Status string `json:"status"`
		ID     string `json:"id"`
		Alerts int    `json:"alerts"`
	}
	if r.Code != http.StatusAccepted || r.ContentType != "application/json" {
		t.Fatalf("answer = %d %s %s, want 202 application/json", r.Code, r.ContentType, r.Body)
	}
	if err := json.Unmarshal(r.Body, &got); err != nil || got.Status != "accepted" || got.ID == "" || got.Alerts != n {
		t.Fatalf("202 body = %s (%v), want {status: accepted, id: ..., alerts: %d}", r.Body, err, n)
	}
}

// webhookURL and alertmanagerURL are the ingest URLs of the test config.
func webhookURL(base string) string { return base + "/integrations/webhook/" + webhookToken }
func alertmanagerURL(base string) string {
	return base + "/integrations/alertmanager/" + alertmanagerToken
}

// webhookAlert is a body in our webhook format.
func webhookAlert(t *testing.T, title, dedupKey, status string) []byte {
	t.Helper()
	return mustJSON(t, map[string]any{
		"title":     title,
		"message":   "Free space on /var is below 3%.",
		"status":    status,
		"dedup_key": dedupKey,
		"severity":  "critical",
		"link":      "https://grafana.example.com/d/disk",
		"labels":    map[string]string{"host": "db-1", "team": "storage"},
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// amAlert is one alert of an Alertmanager payload.
type amAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    string            `json:"startsAt"`
	EndsAt      string            `json:"endsAt"`
	Fingerprint string            `json:"fingerprint"`
}

// alertmanagerGroup is an Alertmanager webhook payload for the group
// HighLatency of service api in status, with one alert per alertStatus
// (instances api-1, api-2, ...).
func alertmanagerGroup(t *testing.T, status string, alertStatuses ...string) []byte {
	t.Helper()
	var alerts []amAlert
	for i, alertStatus := range alertStatuses {
		a := amAlert{
			Status:      alertStatus,
			Labels:      map[string]string{"alertname": "HighLatency", "service": "api", "severity": "critical", "instance": fmt.Sprintf("api-%d", i+1)},
			Annotations: map[string]string{"summary": "API latency is high"},
			StartsAt:    "2026-03-01T10:00:00Z",
			EndsAt:      "0001-01-01T00:00:00Z",
			Fingerprint: fmt.Sprintf("f00d%012d", i),
		}
		if alertStatus == "resolved" {
			a.EndsAt = "2026-03-01T10:30:00Z"
		}
		alerts = append(alerts, a)
	}
	return mustJSON(t, map[string]any{
		"version":           "4",
		"groupKey":          `{}:{alertname="HighLatency", service="api"}`,
		"status":            status,
		"receiver":          "oncall",
		"groupLabels":       map[string]string{"alertname": "HighLatency", "service": "api"},
		"commonLabels":      map[string]string{"alertname": "HighLatency", "service": "api", "severity": "critical"},
		"commonAnnotations": map[string]string{"summary": "API latency is high"},
		"externalURL":       "http://alertmanager.example.com:9093",
		"alerts":            alerts,
	})
}

// queryInt runs a query that answers one integer.
func queryInt(t *testing.T, dbURL, sql string, args ...any) int {
	t.Helper()
	n, err := tryQueryInt(t.Context(), dbURL, sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func tryQueryInt(ctx context.Context, dbURL, sql string, args ...any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, fmt.Errorf("connect to the database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("query %q: %w", sql, err)
	}
	return n, nil
}

// messageText is everything a message's blocks say, their text objects
// joined by newlines, JSON escapes undone.
func messageText(m fakeslack.Message) string {
	var blocks any
	if err := json.Unmarshal(m.Blocks, &blocks); err != nil {
		return fmt.Sprintf("(unreadable blocks %s: %v)", m.Blocks, err)
	}
	var texts []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if s, ok := v["text"].(string); ok {
				texts = append(texts, s)
			}
			for _, k := range slices.Sorted(maps.Keys(v)) {
				walk(v[k])
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(blocks)
	return strings.Join(texts, "\n")
}

// buttonTexts lists a message's buttons as "text=action_id".
func buttonTexts(m fakeslack.Message) []string {
	var out []string
	for _, b := range m.Buttons() {
		out = append(out, b.Text+"="+b.ActionID)
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
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
