package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oncallbot/oncall/internal/pgtest"
)

// TestDurability kills the real binary right after it answered 202 and
// starts it again: the alert becomes an incident, exactly once.
func TestDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the oncall binary")
	}
	t.Parallel()
	bin := buildOncall(t)

	t.Run("database down", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		cluster, err := pgtest.Start(ctx, pgtest.Options{})
		if err != nil {
			t.Fatalf("start PostgreSQL: %v", err)
		}
		t.Cleanup(func() {
			if err := cluster.Stop(); err != nil {
				t.Errorf("stop PostgreSQL: %v", err)
			}
		})
		dbURL, err := cluster.CreateDatabase(ctx, "oncall")
		if err != nil {
			t.Fatal(err)
		}
		if err := cluster.StopServer(ctx); err != nil {
			t.Fatalf("stop the PostgreSQL server: %v", err)
		}
		dataDir, cfg := t.TempDir(), writeConfig(t)

		first := startOncall(t, "first", bin, dbURL, dataDir, cfg)
		// Ready to ingest, not ready as a whole.
		if code, body, err := get(first.url + "/readyz/ingest"); err != nil || code != http.StatusOK {
			t.Errorf("GET /readyz/ingest with the database down = %d %s (%v), want 200", code, body, err)
		}
		if code, body, err := get(first.url + "/readyz"); err != nil || code != http.StatusServiceUnavailable || !strings.Contains(string(body), `"database":"not connected yet"`) {
			t.Errorf("GET /readyz with the database down = %d %s (%v), want 503 naming the database", code, body, err)
		}
		post(t, webhookURL(first.url), webhookAlert(t, "Database down", "db-down", "firing")).accepted(t, 1)
		first.kill(t)

		if err := cluster.StartServer(ctx); err != nil {
			t.Fatalf("start the PostgreSQL server again: %v", err)
		}
		second := startOncall(t, "second", bin, dbURL, dataDir, cfg)
		waitIncidents(t, dbURL, "dedup:db-down")
		wantStoredOnce(t, dbURL, second, "dedup:db-down")
		second.stop(t)
	})

	t.Run("database up", func(t *testing.T) {
		t.Parallel()
		dbURL := pgtest.NewDatabase(t)
		dataDir, cfg := t.TempDir(), writeConfig(t)

		first := startOncall(t, "first", bin, dbURL, dataDir, cfg)
		waitReady(t, first.url)
		post(t, webhookURL(first.url), webhookAlert(t, "Killed after 202", "killed", "firing")).accepted(t, 1)
		first.kill(t)

		second := startOncall(t, "second", bin, dbURL, dataDir, cfg)
		waitIncidents(t, dbURL, "dedup:killed")
		wantStoredOnce(t, dbURL, second, "dedup:killed")
		second.stop(t)
	})
}

// buildOncall builds the binary of this package with the go command of
// PATH (and the environment's GOFLAGS).
func buildOncall(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "oncall")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a running `oncall serve`.
type process struct {
	name    string
	cmd     *exec.Cmd
	output  *syncBuffer
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
	url     string        // of its HTTP listener
}

// startOncall starts `oncall serve` without Slack on a free port and
// returns once /healthz answers. Its output is logged if the test fails.
func startOncall(t *testing.T, name, bin, dbURL, dataDir, config string) *process {
	t.Helper()
	return startOncallEnv(t, name, bin, []string{"DATABASE_URL=" + dbURL}, dataDir, config)
}

// startOncallEnv is startOncall with the environment env (NAME=value;
// DATABASE_URL at least).
func startOncallEnv(t *testing.T, name, bin string, env []string, dataDir, config string) *process {
	t.Helper()
	p := &process{name: name, output: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--config", config)
	p.cmd.Env = append(slices.Clone(env), "ONCALL_LOG_LEVEL=info")
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start oncall: %v", err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of the %s oncall process (%v):\n%s", p.name, p.waitErr, p.output)
		}
	})

	pollFor(t, processTimeout, "oncall to listen", func() (bool, error) {
		if p.exited() {
			t.Fatalf("oncall exited before listening: %v", p.waitErr)
		}
		p.url = ""
		for _, line := range p.logLines() {
			switch line["msg"] {
			case "listening":
				p.url = "http://" + fmt.Sprint(line["addr"])
			}
		}
		return p.url != "", errors.New("no \"listening\" log line yet")
	})
	poll(t, "GET /healthz to answer 200", func() (bool, error) {
		code, body, err := get(p.url + "/healthz")
		return err == nil && code == http.StatusOK, fmt.Errorf("%d %s (%v)", code, body, err)
	})
	return p
}

// logLines returns the process's JSON log lines decoded.
func (p *process) logLines() []map[string]any {
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.output.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil {
			lines = append(lines, line)
		}
	}
	return lines
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends the process at once, as a crash or an OOM kill would.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill oncall: %v", err)
	}
	<-p.done
}

// stop asks the process to shut down (SIGTERM) and checks it exits 0.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal oncall: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(processTimeout):
		t.Fatal("oncall did not exit after SIGTERM")
	}
	if p.waitErr != nil {
		t.Errorf("oncall exited with %v after SIGTERM, want 0", p.waitErr)
	}
}

// waitIncidents waits until an incident of the group exists.
func waitIncidents(t *testing.T, dbURL, groupKey string) {
	t.Helper()
	pollFor(t, processTimeout, "the incident of "+groupKey, func() (bool, error) {
		n, err := tryQueryInt(t.Context(), dbURL, "SELECT count(*) FROM incidents WHERE group_key = $1", groupKey)
		return n > 0, fmt.Errorf("%d incidents (%v)", n, err)
	})
}

// wantStoredOnce waits until the process's queue holds no alert batch any
// more (every batch processed and acked, a redelivered one included), and
// checks that the group's single alert was stored once.
func wantStoredOnce(t *testing.T, dbURL string, p *process, groupKey string) {
	t.Helper()
	// The embedded server takes only its own process's connections, so
	// the backlog is read from the process's metrics.
	pollFor(t, processTimeout, "the ALERTS stream to be empty", func() (bool, error) {
		code, body, err := get(p.url + "/metrics")
		if err != nil || code != http.StatusOK {
			return false, fmt.Errorf("GET /metrics = %d (%v)", code, err)
		}
		return strings.Contains(string(body), `oncall_queue_messages{stream="ALERTS"} 0`+"\n"),
			errors.New("ALERTS still holds messages")
	})

	for _, q := range []struct {
		sql  string
		want int
	}{
		{"SELECT count(*) FROM incidents", 1},
		{"SELECT alert_count FROM incidents WHERE group_key = $1", 1},
		{"SELECT count(*) FROM alerts", 1},
		{"SELECT count(*) FROM alert_batches", 1},
	} {
		var args []any
		if strings.Contains(q.sql, "$1") {
			args = append(args, groupKey)
		}
		if got := queryInt(t, dbURL, q.sql, args...); got != q.want {
			t.Errorf("%s = %d, want %d", q.sql, got, q.want)
		}
	}
}
