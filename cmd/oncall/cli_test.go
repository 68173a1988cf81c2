package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oncallbot/oncall/internal/golden"
	"github.com/oncallbot/oncall/internal/pgtest"
)

// cli is one run of the command line, in process.
type cli struct {
	code           int
	stdout, stderr string
}

// runCLI calls run with args and the environment env (nothing else).
func runCLI(t *testing.T, env map[string]string, args ...string) cli {
	t.Helper()
	// run sets the default logger to one writing to its stderr; give the
	// next tests theirs back.
	prev := slog.Default()
	defer slog.SetDefault(prev)
	lookup := func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, &stdout, &stderr, lookup)
	return cli{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigCheck(t *testing.T) {
	valid := writeFile(t, "valid.yaml", `integrations:
  - name: prometheus
    kind: alertmanager
    token: ${PROM_TOKEN}
    channel: C0123456789
`)
	invalid := writeFile(t, "invalid.yaml", `integrations:
  - name: prometheus
    kind: alertmanager
    token: short
    channel: "#alerts"
`)
	env := map[string]string{"PROM_TOKEN": "prom-token-0123456789"}
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stdout string
		stderr string // a part of it
	}{
		{
			name: "valid file",
			env:  env,
			args: []string{"config", "check", valid},
			stdout: valid + ": ok (integrations: 1, schedules: 0, escalation chains: 0, users: 0)\n" +
				"integration prometheus (alertmanager) -> channel C0123456789\n",
		},
		{
			name: "two problems",
			env:  env,
			args: []string{"config", "check", invalid},
			code: 1,
			stdout: invalid + ":4: token: too short, use at least 16 random characters\n" +
				invalid + ":5: channel: use the channel id (like C0123456789), not its name\n",
		},
		{
			name:   "unset variable",
			args:   []string{"config", "check", valid},
			code:   1,
			stdout: valid + ":4: environment variable PROM_TOKEN is not set\n",
		},
		{
			name:   "missing file",
			args:   []string{"config", "check", valid + ".missing"},
			code:   1,
			stdout: valid + ".missing: read config: open " + valid + ".missing: no such file or directory\n",
		},
		{
			name:   "no file",
			args:   []string{"config", "check"},
			code:   2,
			stderr: "usage: oncall config check FILE",
		},
		{
			name:   "two files",
			args:   []string{"config", "check", valid, invalid},
			code:   2,
			stderr: "usage: oncall config check FILE",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCLI(t, tt.env, tt.args...)
			if got.code != tt.code || got.stdout != tt.stdout || !strings.Contains(got.stderr, tt.stderr) {
				t.Errorf("oncall %s = exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d\nstdout:\n%s\nstderr containing %q",
					strings.Join(tt.args, " "), got.code, got.stdout, got.stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestConfigCheckRouting checks the routing config check shows: each
// integration's routes in the order they are tried, then the global ones.
func TestConfigCheckRouting(t *testing.T) {
	got := runCLI(t, nil, "config", "check", "testdata/routing.yaml")
	if got.code != 0 {
		t.Fatalf("exit %d\n%s%s", got.code, got.stdout, got.stderr)
	}
	golden.Check(t, "testdata/routing.golden", []byte(got.stdout))
}

// TestConfigCheckExample keeps the example configs valid.
func TestConfigCheckExample(t *testing.T) {
	tests := map[string]map[string]string{
		"../../examples/oncall.yaml": {
			"PROM_TOKEN":           "prom-token-0123456789",
			"GRAFANA_TOKEN":        "grafana-token-0123456789",
			"DEPLOY_WEBHOOK_TOKEN": "deploy-token-0123456789",
		},
		"../../examples/dev.yaml": {"ONCALL_DEV_CHANNEL": devChannel},
	}
	for file, env := range tests {
		if got := runCLI(t, env, "config", "check", file); got.code != 0 || !strings.HasPrefix(got.stdout, file+": ok (") {
			t.Errorf("oncall config check %s = exit %d\n%s%s", file, got.code, got.stdout, got.stderr)
		}
	}
}

func TestMigrate(t *testing.T) {
	t.Run("without DATABASE_URL", func(t *testing.T) {
		got := runCLI(t, nil, "migrate")
		if got.code != 1 || got.stderr != "oncall migrate: DATABASE_URL is not set\n" {
			t.Errorf("oncall migrate = exit %d, stderr %q; want exit 1 saying DATABASE_URL is not set", got.code, got.stderr)
		}
	})
	t.Run("twice", func(t *testing.T) {
		env := map[string]string{"DATABASE_URL": pgtest.NewDatabase(t)}
		const versions = "SELECT count(*) FROM goose_db_version"
		got := runCLI(t, env, "migrate")
		if got.code != 0 || got.stdout != "migrations applied\n" {
			t.Fatalf("first oncall migrate = exit %d\n%s%s", got.code, got.stdout, got.stderr)
		}
		if !strings.Contains(got.stderr, "applied database migration") {
			t.Errorf("first oncall migrate logged no applied migration:\n%s", got.stderr)
		}
		applied := queryInt(t, env["DATABASE_URL"], versions)
		if n := queryInt(t, env["DATABASE_URL"], "SELECT count(*) FROM information_schema.tables WHERE table_name = 'incidents'"); n != 1 {
			t.Errorf("after oncall migrate, %d incidents tables", n)
		}

		got = runCLI(t, env, "migrate")
		if got.code != 0 || got.stdout != "migrations applied\n" {
			t.Fatalf("second oncall migrate = exit %d\n%s%s", got.code, got.stdout, got.stderr)
		}
		if strings.Contains(got.stderr, "applied database migration") {
			t.Errorf("second oncall migrate applied a migration again:\n%s", got.stderr)
		}
		if again := queryInt(t, env["DATABASE_URL"], versions); again != applied {
			t.Errorf("goose_db_version has %d rows after the second run, %d after the first", again, applied)
		}
	})
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stdout string // a part of it
		stderr string // a part of it
	}{
		{name: "no command", code: 2, stderr: "Usage:"},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: `oncall: unknown command "frobnicate"`},
		{name: "version", args: []string{"version"}, stdout: "oncall " + version + "\n"},
		{name: "help", args: []string{"help"}, stdout: "oncall config check FILE"},
		{name: "serve without DATABASE_URL", args: []string{"serve"}, code: 1, stderr: "oncall serve: DATABASE_URL is not set"},
		{name: "serve with an argument", args: []string{"serve", "extra"}, code: 2, stderr: `oncall serve: unexpected argument "extra"`},
		{name: "serve with a bad replica count", args: []string{"serve"}, env: map[string]string{"ONCALL_NATS_REPLICAS": "three"}, code: 1,
			stderr: `oncall serve: ONCALL_NATS_REPLICAS: "three" is not a replica count from 1 to 5`},
		{name: "migrate with an argument", args: []string{"migrate", "now"}, code: 2, stderr: `oncall migrate: unexpected argument "now"`},
		{name: "serve with an unknown flag", args: []string{"serve", "--frobnicate"}, code: 2, stderr: "flag provided but not defined: -frobnicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCLI(t, tt.env, tt.args...)
			if got.code != tt.code || !strings.Contains(got.stdout, tt.stdout) || !strings.Contains(got.stderr, tt.stderr) {
				t.Errorf("oncall %s = exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stdout containing %q, stderr containing %q",
					strings.Join(tt.args, " "), got.code, got.stdout, got.stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestServeStopsOnSignal runs `oncall serve` through run, as main does,
// and cancels it as SIGTERM does: it exits 0.
func TestServeStopsOnSignal(t *testing.T) {
	env := map[string]string{
		"DATABASE_URL":    pgtest.NewDatabase(t),
		"ONCALL_CONFIG":   writeConfig(t),
		"ONCALL_LISTEN":   "127.0.0.1:0",
		"ONCALL_DATA_DIR": t.TempDir(),
	}
	ctx, cancel := context.WithCancel(t.Context())
	var stderr syncBuffer
	done := make(chan int, 1)
	prev := slog.Default()
	defer slog.SetDefault(prev)
	go func() {
		done <- run(ctx, []string{"serve"}, &bytes.Buffer{}, &stderr, func(name string) (string, bool) {
			v, ok := env[name]
			return v, ok
		})
	}()
	pollFor(t, processTimeout, "serve to be ready", func() (bool, error) {
		select {
		case code := <-done:
			t.Fatalf("oncall serve exited %d before it was ready:\n%s", code, stderr.String())
		default:
		}
		return strings.Contains(stderr.String(), `"msg":"ready"`), nil
	})
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("oncall serve exited %d after SIGTERM, want 0:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"stopped"`) {
		t.Errorf("oncall serve did not log that it stopped:\n%s", stderr.String())
	}
}
