package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/oncallbot/oncall/internal/pgtest"
)

// TestSourcesEndToEnd drives serve (no Slack) through the sources of
// issue 5 and checks what Postgres records: a PagerDuty trigger opens an
// incident, its acknowledge acknowledges it and its resolve resolves it;
// an Opsgenie alert is created and closed by alias and its request status
// is reported; a heartbeat is recorded; an alert in a maintenance window
// opens an incident that pages nobody.
func TestSourcesEndToEnd(t *testing.T) {
	t.Parallel()
	const (
		pdKey    = "e2e-pagerduty-key-0001"
		ogKey    = "e2e-opsgenie-key-0001"
		maintTok = "e2e-maintenance-token-0001"
	)
	now := time.Now().UTC()
	cfg := fmt.Sprintf(`escalation_chains:
  - name: page
    steps:
      - notify_channel: here
integrations:
  - name: pd
    kind: pagerduty
    token: %s
    channel: C0PD
    escalation: page
  - name: og
    kind: opsgenie
    token: %s
    channel: C0OG
  - name: quiet
    kind: webhook
    token: %s
    channel: C0QUIET
    escalation: page
    heartbeat: 1h
    maintenance:
      - {start: %s, end: %s}
`, pdKey, ogKey, maintTok, now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	path := filepath.Join(t.TempDir(), "oncall.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dbURL := pgtest.NewDatabase(t)
	srv := startServe(t, serveOptions{ConfigPath: path, DataDir: t.TempDir(), DatabaseURL: dbURL})
	waitReady(t, srv.URL)

	send := func(method, url, auth string, body any) (int, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(mustJSON(t, body))
		}
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+url, rd)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		data, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(data, &out)
		return resp.StatusCode, out
	}
	// waitStatus waits for the one incident of a group to have a status.
	waitStatus := func(groupKey, want string) {
		t.Helper()
		poll(t, groupKey+" "+want, func() (bool, error) {
			n, err := tryQueryInt(t.Context(), dbURL,
				`SELECT count(*) FROM incidents WHERE group_key = $1 AND status = $2`, groupKey, want)
			return n == 1, err
		})
	}

	// PagerDuty: trigger, acknowledge, resolve.
	code, body := send("POST", "/v2/enqueue", "", map[string]any{"routing_key": pdKey, "event_action": "trigger",
		"dedup_key": "disk-db1", "payload": map[string]any{"summary": "Disk full on db1", "source": "db1", "severity": "critical"}})
	if code != http.StatusAccepted || body["status"] != "success" || body["dedup_key"] != "disk-db1" {
		t.Fatalf("PagerDuty trigger: %d %v", code, body)
	}
	waitStatus("pd:disk-db1", "triggered")
	if code, _ := send("POST", "/v2/enqueue", "", map[string]any{"routing_key": pdKey, "event_action": "acknowledge",
		"dedup_key": "disk-db1"}); code != http.StatusAccepted {
		t.Fatalf("PagerDuty acknowledge: %d", code)
	}
	waitStatus("pd:disk-db1", "acknowledged")
	if code, _ := send("POST", "/v2/enqueue", "", map[string]any{"routing_key": pdKey, "event_action": "resolve",
		"dedup_key": "disk-db1"}); code != http.StatusAccepted {
		t.Fatalf("PagerDuty resolve: %d", code)
	}
	waitStatus("pd:disk-db1", "resolved")
	if code, _ := send("POST", "/v2/enqueue", "", map[string]any{"routing_key": "nobody-knows-this-key",
		"event_action": "trigger", "payload": map[string]any{"summary": "x", "source": "y", "severity": "info"}}); code != http.StatusBadRequest {
		t.Errorf("PagerDuty with an unknown routing key: %d, want 400", code)
	}

	// Opsgenie: create, request status, close by alias.
	code, body = send("POST", "/v2/alerts", "GenieKey "+ogKey, map[string]any{"message": "Queue stuck", "alias": "queue-1",
		"priority": "P1"})
	if code != http.StatusAccepted || body["result"] != "Request will be processed" {
		t.Fatalf("Opsgenie create: %d %v", code, body)
	}
	requestID, _ := body["requestId"].(string)
	waitStatus("og:queue-1", "triggered")
	code, body = send("GET", "/v2/alerts/requests/"+requestID, "GenieKey "+ogKey, nil)
	data, _ := body["data"].(map[string]any)
	if code != http.StatusOK || data["success"] != true || data["alias"] != "queue-1" {
		t.Errorf("Opsgenie request status: %d %v", code, body)
	}
	if code, _ := send("POST", "/v2/alerts/queue-1/close?identifierType=alias", "GenieKey "+ogKey,
		map[string]any{"note": "fixed"}); code != http.StatusAccepted {
		t.Fatalf("Opsgenie close: %d", code)
	}
	waitStatus("og:queue-1", "resolved")
	if code, _ := send("POST", "/v2/alerts", "GenieKey wrong-key", map[string]any{"message": "x"}); code != http.StatusUnauthorized {
		t.Errorf("Opsgenie with a wrong key: %d, want 401", code)
	}

	// A heartbeat is recorded; a wrong token is refused.
	if code, _ := send("GET", "/integrations/webhook/"+maintTok+"/heartbeat", "", nil); code != http.StatusAccepted {
		t.Fatalf("heartbeat: %d, want 202", code)
	}
	poll(t, "heartbeat recorded", func() (bool, error) {
		n, err := tryQueryInt(t.Context(), dbURL, `SELECT count(*) FROM integration_heartbeats`)
		return n == 1, err
	})
	if code, _ := send("POST", "/integrations/webhook/not-a-token-at-all/heartbeat", "", nil); code != http.StatusUnauthorized {
		t.Errorf("heartbeat with a wrong token: %d, want 401", code)
	}

	// In maintenance: the incident is there, its chain never starts.
	post(t, srv.URL+"/integrations/webhook/"+maintTok, webhookAlert(t, "Deploy noise", "noise-1", "firing")).accepted(t, 1)
	waitStatus("dedup:noise-1", "triggered")
	id := queryInt(t, dbURL, `SELECT id FROM incidents WHERE group_key = 'dedup:noise-1'`)
	if n := queryInt(t, dbURL, `SELECT count(*) FROM incident_escalations WHERE incident_id = $1`, id); n != 0 {
		t.Errorf("an incident in maintenance has %d escalation rows, want 0 (nobody paged)", n)
	}
	if n := queryInt(t, dbURL, `SELECT count(*) FROM incident_events WHERE incident_id = $1 AND kind = 'note'`, id); n != 1 {
		t.Errorf("an incident in maintenance has %d notes, want 1 saying so", n)
	}
}
