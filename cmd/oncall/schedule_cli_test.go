package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oncallbot/oncall/config"
	"github.com/oncallbot/oncall/internal/golden"
)

// TestScheduleCommands runs `oncall who` and `oncall schedule shifts`
// against a weekly rotation across the March DST change in Berlin and
// against a calendar file; the output is compared with golden files.
func TestScheduleCommands(t *testing.T) {
	env := map[string]string{}
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"who", []string{"who", "--config", "testdata/rotation.yaml", "--at", "2026-03-30T08:00:00+02:00"}, 0},
		{"who-one-schedule", []string{"who", "--config", "testdata/rotation.yaml", "--schedule", "primary", "--at", "2026-03-30T09:00:00+02:00"}, 0},
		{"shifts-rotation", []string{"schedule", "shifts", "--config", "testdata/rotation.yaml", "--schedule", "primary",
			"--from", "2026-03-20", "--to", "2026-04-10", "--tz", "Europe/Berlin"}, 0},
		{"shifts-rotation-json", []string{"schedule", "shifts", "--config", "testdata/rotation.yaml", "--schedule", "primary",
			"--from", "2026-03-20T00:00:00Z", "--to", "2026-03-31T00:00:00Z", "--json"}, 0},
		{"shifts-ics", []string{"schedule", "shifts", "--ics", "../../schedule/testdata/ical/outlook.ics",
			"--from", "2025-03-01", "--to", "2025-04-01", "--tz", "Europe/Berlin"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCLI(t, env, tt.args...)
			if got.code != tt.code {
				t.Fatalf("exit %d, want %d\nstderr:\n%s", got.code, tt.code, got.stderr)
			}
			golden.Check(t, filepath.Join("testdata", tt.name+".golden"), []byte(got.stdout))
		})
	}
}

func TestScheduleCommandErrors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no source", []string{"schedule", "shifts", "--from", "2026-01-01", "--to", "2026-01-02"}, 2, "give exactly one of --schedule NAME and --ics FILE"},
		{"unknown zone", []string{"schedule", "shifts", "--ics", "x.ics", "--from", "2026-01-01", "--to", "2026-01-02", "--tz", "Mars/Olympus"}, 2, "--tz"},
		{"bad from", []string{"schedule", "shifts", "--ics", "x.ics", "--from", "yesterday", "--to", "2026-01-02"}, 2, `--from "yesterday"`},
		{"to before from", []string{"schedule", "shifts", "--ics", "x.ics", "--from", "2026-01-02", "--to", "2026-01-01"}, 2, "--to must be after --from"},
		{"missing file", []string{"schedule", "shifts", "--ics", "testdata/none.ics", "--from", "2026-01-01", "--to", "2026-01-02"}, 1, "read calendar"},
		{"unknown schedule", []string{"who", "--config", "testdata/rotation.yaml", "--schedule", "nope"}, 1, "unknown schedule"},
		{"no subcommand", []string{"schedule"}, 2, "usage: oncall schedule shifts"},
		{"bad at", []string{"who", "--config", "testdata/rotation.yaml", "--at", "noon"}, 2, "--at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCLI(t, nil, tt.args...)
			if got.code != tt.code || !strings.Contains(got.stderr, tt.stderr) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", got.code, got.stderr, tt.code, tt.stderr)
			}
		})
	}
}

func TestConfigCheckWarnsAboutRotationGaps(t *testing.T) {
	cfg, err := config.Load("testdata/gaps.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC) // the DST change in Berlin is in the window
	var got []string
	for _, w := range rotationGaps(cfg, now) {
		got = append(got, fmt.Sprintf("%d: %s", w.line, w.msg))
	}
	golden.Check(t, "testdata/gaps.golden", []byte(strings.Join(got, "\n")+"\n"))
}

// TestWhoWithAMissingCalendar: a schedule whose calendar cannot be loaded
// is "unknown", never "nobody", and the command fails.
func TestWhoWithAMissingCalendar(t *testing.T) {
	cfg := writeFile(t, "missing.yaml", `users:
  - email: alice@example.com
schedules:
  - name: from-file
    file: ./no-such.ics
  - name: rota
    rotation: {users: [alice@example.com], shift: 24h, handoff: 2026-01-05T00:00:00}
integrations:
  - {name: a, kind: webhook, token: 0123456789abcdef, channel: C0A}
`)
	got := runCLI(t, nil, "who", "--config", cfg, "--at", "2026-03-02T12:00:00Z")
	if got.code != 1 || !strings.Contains(got.stdout, "from-file  unknown (calendar not loaded)") ||
		!strings.Contains(got.stdout, "rota       alice@example.com") || !strings.Contains(got.stderr, "from-file could not be loaded") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", got.code, got.stdout, got.stderr)
	}
}
