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
	}
	fake, err := fakeslack.New(fakeslack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	api := slack.New(fake.BotToken(), slack.OptionAPIURL(fake.APIURL()))

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, blocks := IncidentText(tt.inc), RenderIncident(tt.inc)
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
			h2, _ := messageHash(IncidentText(tt.inc), RenderIncident(tt.inc))
			if h1 != h2 {
				t.Error("rendering the same incident twice gives different hashes")
			}
		})
	}
}

func TestRenderButtons(t *testing.T) {
	tests := []struct {
		status oncall.IncidentStatus
		want   []string
	}{
		{oncall.StatusTriggered, []string{ActionIDAcknowledge, ActionIDResolve, ActionIDEscalate}},
		{oncall.StatusAcknowledged, []string{ActionIDUnacknowledge, ActionIDResolve, ActionIDEscalate}},
		{oncall.StatusResolved, []string{ActionIDReopen}},
	}
	for _, tt := range tests {
		t.Run(string(tt.status), func(t *testing.T) {
			inc := baseIncident()
			inc.Status = tt.status
			raw, err := json.Marshal(RenderIncident(inc))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range (fakeslack.Message{Blocks: raw}).Buttons() {
				if b.Value != "42" {
					t.Errorf("button %s has value %q, want the incident id 42", b.ActionID, b.Value)
				}
				got = append(got, b.ActionID)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("buttons = %v, want %v", got, tt.want)
			}
		})
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
