package bot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/internal/fakeslack"
	"github.com/oncallbot/oncall/internal/golden"
)

func baseIncident() oncall.Incident {
	created := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	return oncall.Incident{
		ID:          42,
		Integration: "prometheus",
		Kind:        "alertmanager",
		Channel:     "C0INCIDENTS",
		GroupKey:    `{}:{alertname="HighErrorRate"}`,
		Status:      oncall.StatusTriggered,
		Title:       "HighErrorRate: checkout 5xx > 5%",
		Message:     "Error rate of *checkout* is 7.3% for 10m.\nRunbook: https://runbooks.example.com/checkout <see #payments>",
		Severity:    oncall.SeverityCritical,
		Link:        "https://prometheus.example.com/graph?g0.expr=rate(http_requests_total{code=~\"5..\"}[5m])",
		Labels:      map[string]string{"alertname": "HighErrorRate", "service": "checkout", "env": "prod"},
		AlertCount:  3,
		Firing:      2,
		Resolved:    0,
		CreatedAt:   created,
		UpdatedAt:   created,
	}
}

// renderNow is when the tests render incidents: an hour after
// baseIncident was created.
var renderNow = time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC)

func TestRenderIncidentGolden(t *testing.T) {
	acked := baseIncident()
	acked.Status = oncall.StatusAcknowledged
	acked.AckedBy = oncall.SlackActor("U0ALICE")
	acked.AckedAt = acked.CreatedAt.Add(4 * time.Minute)

	resolved := baseIncident()
	resolved.Status = oncall.StatusResolved
	resolved.ResolvedBy = oncall.ActorSource
	resolved.ResolvedAt = resolved.CreatedAt.Add(25 * time.Minute)
	resolved.Firing, resolved.Resolved, resolved.AlertCount = 0, 2, 5

	long := baseIncident()
	long.Title = strings.Repeat("Very long title ", 20)
	long.Message = strings.Repeat("x", 2990) + " a&b <c> " + strings.Repeat("y", 3000)
	long.Severity = oncall.SeverityWarning
	long.Link = "javascript:alert(1)" // not a link Slack would take: left out

	many := baseIncident()
	many.Severity = oncall.SeverityInfo
	many.Labels = map[string]string{}
	for i := range 300 {
		many.Labels[fmt.Sprintf("label_%03d", i)] = fmt.Sprintf("value `%d` <x>", i)
	}

	image := baseIncident()
	image.Kind, image.Integration = "grafana", "grafana"
	image.Severity = oncall.SeverityError
	image.ImageURL = "https://grafana.example.com/render/d-solo/abc?panelId=2&width=1000"
	image.Message = ""
	image.Labels = nil

	bare := oncall.Incident{ID: 7, Kind: "webhook", Integration: "ci", Channel: "C0INCIDENTS", Status: oncall.StatusTriggered, AlertCount: 1}

	silenced := baseIncident()
	silenced.SilencedUntil = time.Date(2026, 3, 1, 16, 0, 0, 0, time.UTC)

	silencedAcked := acked
	silencedAcked.SilencedUntil = oncall.UntilResolved

	tests := []struct {
		name string
		inc  oncall.Incident
	}{
		{"triggered", baseIncident()},
		{"acknowledged", acked},
		{"resolved", resolved},
		{"long_message", long},
		{"many_labels", many},
		{"image", image},
		{"bare", bare},
		{"silenced", silenced},
		{"silenced_until_resolved", silencedAcked},
	}
	fake, err := fakeslack.New(fakeslack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	api := slack.New(fake.BotToken(), slack.OptionAPIURL(fake.APIURL()))

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, blocks := IncidentText(tt.inc), RenderIncident(tt.inc, renderNow)
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false) // keep <@U1> and &amp; readable
			enc.SetIndent("", "  ")
			if err := enc.Encode(map[string]any{"text": text, "blocks": blocks}); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			golden.Check(t, filepath.Join("testdata", "render_"+tt.name+".golden.json"), got)

			// Slack takes the message as rendered.
			if _, _, err := api.PostMessageContext(t.Context(), tt.inc.Channel, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...)); err != nil {
				t.Errorf("Slack refuses the message: %v", err)
			}
			// Rendering is deterministic, so an unchanged incident is not updated.
			h1, _ := messageHash(text, blocks)
			h2, _ := messageHash(IncidentText(tt.inc), RenderIncident(tt.inc, renderNow))
			if h1 != h2 {
				t.Error("rendering the same incident twice gives different hashes")
			}
		})
	}
}

func TestRenderButtons(t *testing.T) {
	silenceOptions := "42:30m,42:1h,42:4h,42:24h,42:resolved"
	tests := []struct {
		name     string
		status   oncall.IncidentStatus
		silenced time.Time
		want     []string
		menu     string // the values of the Silence menu's options, "" for no menu
	}{
		{"triggered", oncall.StatusTriggered, time.Time{}, []string{ActionIDAcknowledge, ActionIDResolve, ActionIDEscalate}, silenceOptions},
		{"acknowledged", oncall.StatusAcknowledged, time.Time{}, []string{ActionIDUnacknowledge, ActionIDResolve, ActionIDEscalate}, silenceOptions},
		{"resolved", oncall.StatusResolved, time.Time{}, []string{ActionIDReopen}, ""},
		{"triggered silenced", oncall.StatusTriggered, renderNow.Add(time.Second),
			[]string{ActionIDAcknowledge, ActionIDResolve, ActionIDEscalate, ActionIDUnsilence}, ""},
		{"acknowledged silenced until resolved", oncall.StatusAcknowledged, oncall.UntilResolved,
			[]string{ActionIDUnacknowledge, ActionIDResolve, ActionIDEscalate, ActionIDUnsilence}, ""},
		{"resolved while silenced", oncall.StatusResolved, oncall.UntilResolved, []string{ActionIDReopen}, ""},
		{"silence ending now", oncall.StatusTriggered, renderNow,
			[]string{ActionIDAcknowledge, ActionIDResolve, ActionIDEscalate}, silenceOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inc := baseIncident()
			inc.Status, inc.SilencedUntil = tt.status, tt.silenced
			raw, err := json.Marshal(RenderIncident(inc, renderNow))
			if err != nil {
				t.Fatal(err)
			}
			msg := fakeslack.Message{Blocks: raw}
			var got []string
			for _, b := range msg.Buttons() {
				if b.Value != "42" {
					t.Errorf("button %s has value %q, want the incident id 42", b.ActionID, b.Value)
				}
				got = append(got, b.ActionID)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("buttons = %v, want %v", got, tt.want)
			}
			var menu []string
			if sel, ok := msg.Select(ActionIDSilence); ok {
				for _, o := range sel.Options {
					menu = append(menu, o.Value)
				}
			}
			if strings.Join(menu, ",") != tt.menu {
				t.Errorf("Silence menu = %v, want %s", menu, tt.menu)
			}
		})
	}
}

func TestSilenceUntil(t *testing.T) {
	now := time.Date(2026, 11, 25, 15, 30, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		choice string
		want   time.Time
		ok     bool
	}{
		{"30m", time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC), true},
		{"1h", time.Date(2026, 11, 25, 15, 30, 0, 0, time.UTC), true},
		{"4h", time.Date(2026, 11, 25, 18, 30, 0, 0, time.UTC), true},
		{"24h", time.Date(2026, 11, 26, 14, 30, 0, 0, time.UTC), true},
		{"resolved", oncall.UntilResolved, true},
		{"2h", time.Time{}, false},
		{"", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := silenceUntil(tt.choice, now)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("silenceUntil(%q) = %v, %v; want %v, %v", tt.choice, got, ok, tt.want, tt.ok)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 4, "abc…"},
		{"ab&amp;cd", 5, "ab…"}, // never half an escape
		{"ab&amp;cd", 8, "ab&amp;…"},
		{"äöüäöü", 4, "äöü…"},
	}
	for _, tt := range tests {
		if got := truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
