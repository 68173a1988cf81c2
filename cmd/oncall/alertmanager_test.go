package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/oncallbot/oncall/internal/pgtest"
)

// alertmanagerBinary finds a real Prometheus Alertmanager: $ALERTMANAGER_BIN,
// else `alertmanager` on PATH (.ci/run installs one with go install).
func alertmanagerBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("ALERTMANAGER_BIN"); bin != "" {
		return bin
	}
	bin, err := exec.LookPath("alertmanager")
	if err != nil {
		t.Skip("no Alertmanager binary: install one with " +
			"`go install github.com/prometheus/alertmanager/cmd/alertmanager@v0.28.1` (as .ci/run does) or set ALERTMANAGER_BIN")
	}
	return bin
}

// TestRealAlertmanager points a real Alertmanager's webhook receiver at
// serve: a group of two firing alerts opens one incident with both alerts,
// and when Alertmanager resolves them the incident resolves.
func TestRealAlertmanager(t *testing.T) {
	bin := alertmanagerBinary(t)
	dbURL := pgtest.NewDatabase(t)
	srv := startServe(t, serveOptions{ConfigPath: writeConfig(t), DataDir: t.TempDir(), DatabaseURL: dbURL})
	waitReady(t, srv.URL)

	dir := t.TempDir()
	amConfig := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(amConfig, fmt.Appendf(nil, `route:
  receiver: oncall
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: oncall
    webhook_configs:
      - url: %s
        send_resolved: true
`, alertmanagerURL(srv.URL)), 0o600); err != nil {
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

	started := time.Now().UTC().Format(time.RFC3339)
	alerts := func(endsAt string) []byte {
		ends := ""
		if endsAt != "" {
			ends = fmt.Sprintf(`,"endsAt":%q`, endsAt)
		}
		return fmt.Appendf(nil, `[
 {"labels":{"alertname":"DiskFull","instance":"db-1","severity":"critical"},"annotations":{"summary":"Disk full"},"startsAt":%q%s},
 {"labels":{"alertname":"DiskFull","instance":"db-2","severity":"critical"},"annotations":{"summary":"Disk full"},"startsAt":%q%s}]`,
			started, ends, started, ends)
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

	postAlerts(alerts(""))
	pollFor(t, processTimeout, "an incident with both alerts, firing", func() (bool, error) {
		n, err := tryQueryInt(t.Context(), dbURL,
			`SELECT count(*) FROM incidents i WHERE status = 'triggered'
			   AND (SELECT count(*) FROM incident_alerts a WHERE a.incident_id = i.id AND a.status = 'firing') = 2`)
		return n == 1, fmt.Errorf("%d such incidents (%v)", n, err)
	})

	postAlerts(alerts(time.Now().UTC().Format(time.RFC3339)))
	pollFor(t, processTimeout, "the incident resolved by Alertmanager", func() (bool, error) {
		n, err := tryQueryInt(t.Context(), dbURL, `SELECT count(*) FROM incidents WHERE status = 'resolved' AND resolved_by = 'source'`)
		return n == 1, fmt.Errorf("%d resolved incidents (%v)", n, err)
	})
	if n := queryInt(t, dbURL, "SELECT count(*) FROM incidents"); n != 1 {
		t.Errorf("%d incidents, want the one of the group", n)
	}
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
