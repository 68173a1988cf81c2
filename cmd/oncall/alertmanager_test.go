package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/oncallbot/oncall/bot"
	"github.com/oncallbot/oncall/internal/fakeslack"
	"github.com/oncallbot/oncall/internal/pgtest"
)

// alertmanagerBinary finds a real Prometheus Alertmanager: $ALERTMANAGER_BIN,
// else `alertmanager` on PATH, else the one .ci/run installs in .bin/.
func alertmanagerBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("ALERTMANAGER_BIN"); bin != "" {
		return bin
	}
	if bin, err := exec.LookPath("alertmanager"); err == nil {
		return bin
	}
	// The test runs in cmd/oncall; .bin/ is at the module root.
	if bin, err := filepath.Abs(filepath.Join("..", "..", ".bin", "alertmanager")); err == nil {
		if _, err := os.Stat(bin); err == nil {
			return bin
		}
	}
	t.Skip("no Alertmanager binary: install one with " +
		"`go install github.com/prometheus/alertmanager/cmd/alertmanager@v0.28.1` (as .ci/run does) or set ALERTMANAGER_BIN")
	return ""
}

// amReceiver is a receiver of the test's Alertmanager and the integration
// of serve it delivers to, in a channel of its own.
type amReceiver struct {
	name    string // of the receiver, of the integration, and the alerts' receiver label
	kind    string // of the integration
	token   string
	channel string
	// firing is how many firing alerts its incident counts for the group
	// of two: the webhook carries each alert, PagerDuty and Opsgenie one
	// event (dedup key, alias) for the whole group.
	firing int
}

var amReceivers = []amReceiver{
	{name: "webhook", kind: "alertmanager", token: "e2e-am-webhook-token-0001", channel: "C0AMWEBHOOK", firing: 2},
	{name: "pagerduty", kind: "pagerduty", token: "e2e-am-pagerduty-token-0001", channel: "C0AMPAGERDUTY", firing: 1},
	{name: "opsgenie", kind: "opsgenie", token: "e2e-am-opsgenie-token-0001", channel: "C0AMOPSGENIE", firing: 1},
}

// TestRealAlertmanager points a real Alertmanager at serve through each of
// its receivers that serve stands in for: webhook_configs at the
// alertmanager endpoint, pagerduty_configs at the PagerDuty Events API and
// opsgenie_configs at the Opsgenie Alert API. For each, a group of two
// firing alerts opens one incident of the receiver's integration and one
// Slack message, resolving the alerts resolves it, and Alertmanager counts
// no failed notification.
func TestRealAlertmanager(t *testing.T) {
	bin := alertmanagerBinary(t)
	var channels []string
	for _, r := range amReceivers {
		channels = append(channels, r.channel)
	}
	fake, err := fakeslack.New(fakeslack.Config{Channels: channels})
	if err != nil {
		t.Fatalf("start fake Slack: %v", err)
	}
	t.Cleanup(fake.Close)
	dbURL := pgtest.NewDatabase(t)
	srv := startServe(t, serveOptions{
		ConfigPath:  writeAlertmanagerConfig(t),
		DataDir:     t.TempDir(),
		DatabaseURL: dbURL,
		Slack:       bot.Config{BotToken: fake.BotToken(), AppToken: fake.AppToken(), APIURL: fake.APIURL()},
	})
	waitReady(t, srv.URL)
	amURL := startAlertmanager(t, bin, srv.URL)

	started := time.Now().UTC().Format(time.RFC3339)
	alerts := func(endsAt string) []byte {
		ends := ""
		if endsAt != "" {
			ends = fmt.Sprintf(`,"endsAt":%q`, endsAt)
		}
		var list []string
		for _, r := range amReceivers {
			for _, instance := range []string{"db-1", "db-2"} {
				list = append(list, fmt.Sprintf(
					`{"labels":{"alertname":"DiskFull","receiver":%q,"instance":%q,"severity":"critical"},"annotations":{"summary":"Disk full"},"startsAt":%q%s}`,
					r.name, instance, started, ends))
			}
		}
		return []byte("[" + strings.Join(list, ",\n") + "]")
	}
	postAlerts := func(body []byte) {
		t.Helper()
		resp, err := http.Post(amURL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST Alertmanager /api/v2/alerts = %d", resp.StatusCode)
		}
	}
	const ofIntegration = `FROM incidents i JOIN integrations n ON n.id = i.integration_id WHERE n.name = $1`

	postAlerts(alerts(""))
	for _, r := range amReceivers {
		pollFor(t, processTimeout, r.name+": an incident with the group's alerts, firing", func() (bool, error) {
			n, err := tryQueryInt(t.Context(), dbURL, `SELECT count(*) `+ofIntegration+` AND i.status = 'triggered'
				AND (SELECT count(*) FROM incident_alerts a WHERE a.incident_id = i.id AND a.status = 'firing') = $2`,
				r.name, r.firing)
			return n == 1, fmt.Errorf("%d such incidents (%v)", n, err)
		})
		waitSlack(t, fake, r.name+": the incident message", func(st fakeslack.State) bool {
			return len(st.TopLevel(r.channel)) > 0
		})
	}

	postAlerts(alerts(time.Now().UTC().Format(time.RFC3339)))
	for _, r := range amReceivers {
		pollFor(t, processTimeout, r.name+": the incident resolved by Alertmanager", func() (bool, error) {
			n, err := tryQueryInt(t.Context(), dbURL,
				`SELECT count(*) `+ofIntegration+` AND i.status = 'resolved' AND i.resolved_by = 'source'`, r.name)
			return n == 1, fmt.Errorf("%d resolved incidents (%v)", n, err)
		})
		st := waitSlack(t, fake, r.name+": the message to show the incident resolved", func(st fakeslack.State) bool {
			msgs := st.TopLevel(r.channel)
			return len(msgs) > 0 && strings.Contains(messageText(msgs[0]), "*Resolved* by the source")
		})
		wantOneMessage(t, st, r.channel)
		if n := queryInt(t, dbURL, `SELECT count(*) `+ofIntegration, r.name); n != 1 {
			t.Errorf("%s: %d incidents, want the one of the group", r.name, n)
		}
	}

	// Alertmanager counts the resolve only once our answer is in, possibly
	// after the incident resolved: wait for it, then for no failure.
	for _, r := range amReceivers {
		var m amMetrics
		poll(t, r.name+": Alertmanager to count the firing and resolved notifications", func() (bool, error) {
			var err error
			m, err = alertmanagerMetrics(amURL, r.name)
			return err == nil && m.requests >= 2, fmt.Errorf("%+v (%v)", m, err)
		})
		if m.requestsFailed != 0 || m.failed != 0 {
			t.Errorf("%s: Alertmanager counts %v failed requests and %v failed notifications, want none",
				r.name, m.requestsFailed, m.failed)
		}
	}
}

// writeAlertmanagerConfig writes a config with an integration per
// amReceivers entry and returns its path.
func writeAlertmanagerConfig(t *testing.T) string {
	t.Helper()
	var cfg strings.Builder
	cfg.WriteString("integrations:\n")
	for _, r := range amReceivers {
		fmt.Fprintf(&cfg, "  - name: %s\n    kind: %s\n    token: %s\n    channel: %s\n", r.name, r.kind, r.token, r.channel)
	}
	path := filepath.Join(t.TempDir(), "oncall.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startAlertmanager runs the Alertmanager binary with a receiver per
// amReceivers entry, each routed the alerts labelled with its name, until
// the test ends, and returns its URL once it is ready. Its output is
// logged if the test fails.
func startAlertmanager(t *testing.T, bin, serveURL string) string {
	t.Helper()
	byName := map[string]amReceiver{}
	for _, r := range amReceivers {
		byName[r.name] = r
	}
	// resolve_timeout is longer than the test: the alerts resolve when
	// the test says so, not on their own.
	config := fmt.Sprintf(`global:
  resolve_timeout: 5m
route:
  receiver: webhook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['receiver="pagerduty"']
      receiver: pagerduty
    - matchers: ['receiver="opsgenie"']
      receiver: opsgenie
receivers:
  - name: webhook
    webhook_configs:
      - url: %s/integrations/alertmanager/%s
        send_resolved: true
  - name: pagerduty
    pagerduty_configs:
      - url: %s/v2/enqueue
        routing_key: %s
        send_resolved: true
  - name: opsgenie
    opsgenie_configs:
      - api_url: %s/
        api_key: %s
        send_resolved: true
`, serveURL, byName["webhook"].token, serveURL, byName["pagerduty"].token, serveURL, byName["opsgenie"].token)

	dir := t.TempDir()
	amConfig := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(amConfig, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	amAddr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	am := exec.CommandContext(ctx, bin, "--config.file="+amConfig, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	var amLog syncBuffer
	am.Stdout, am.Stderr = &amLog, &amLog
	if err := am.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = am.Wait()
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", amLog.String())
		}
	})
	amURL := "http://" + amAddr
	poll(t, "Alertmanager to be ready", func() (bool, error) {
		code, _, err := get(amURL + "/-/ready")
		return err == nil && code == http.StatusOK, fmt.Errorf("GET /-/ready = %d (%v)", code, err)
	})
	return amURL
}

// amMetrics are Alertmanager's counts of the notifications of one
// integration kind.
type amMetrics struct {
	requests       float64 // notification requests sent
	requestsFailed float64 // of which failed (even if a retry succeeded)
	failed         float64 // notifications given up on
}

// alertmanagerMetrics reads the counts of integration (webhook, pagerduty,
// opsgenie) from Alertmanager's /metrics.
func alertmanagerMetrics(amURL, integration string) (amMetrics, error) {
	resp, err := httpClient.Get(amURL + "/metrics")
	if err != nil {
		return amMetrics{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return amMetrics{}, fmt.Errorf("GET /metrics = %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return amMetrics{}, fmt.Errorf("parse Alertmanager metrics: %w", err)
	}
	// sum adds the series of integration; a missing family is an error,
	// so that a renamed metric cannot pass for zero failures.
	sum := func(name string) (float64, error) {
		f, ok := families[name]
		if !ok {
			return 0, fmt.Errorf("no metric %s", name)
		}
		var total float64
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "integration" && l.GetValue() == integration {
					total += m.GetCounter().GetValue()
				}
			}
		}
		return total, nil
	}
	var m amMetrics
	var errs [3]error
	m.requests, errs[0] = sum("alertmanager_notification_requests_total")
	m.requestsFailed, errs[1] = sum("alertmanager_notification_requests_failed_total")
	m.failed, errs[2] = sum("alertmanager_notifications_failed_total")
	return m, errors.Join(errs[:]...)
}

// freeAddr returns a loopback address with a free port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
