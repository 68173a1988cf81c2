package bot_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/bot"
	"github.com/oncallbot/oncall/internal/fakeslack"
	"github.com/oncallbot/oncall/storage"
)

// maintenanceStore is the database's maintenance windows, which can be
// made to fail.
type maintenanceStore struct {
	mu   sync.Mutex
	db   *storage.DB
	fail error
}

func (s *maintenanceStore) failWith(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *maintenanceStore) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail
}

func (s *maintenanceStore) StartMaintenance(ctx context.Context, integration string, until time.Time, by oncall.Actor) error {
	if err := s.err(); err != nil {
		return err
	}
	return s.db.StartMaintenance(ctx, integration, until, by)
}

func (s *maintenanceStore) Maintenance(ctx context.Context, now time.Time) ([]storage.MaintenanceWindow, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.db.Maintenance(ctx, now)
}

// newMaintenanceHarness is newHarness with /oncall maintenance for the
// integrations prometheus (which posts to channel) and "Grafana" (no
// channel).
func newMaintenanceHarness(t *testing.T) (*harness, *maintenanceStore) {
	t.Helper()
	store := &maintenanceStore{}
	h := newHarnessWith(t, fakeslack.Config{}, bot.Config{
		Integrations:        []string{"prometheus", "Grafana"},
		IntegrationChannels: map[string]string{"prometheus": channel},
		Maintenance:         store,
	})
	store.db = h.db
	return h, store
}

// notes returns the texts of the top-level messages in the channel.
func (h *harness) notes(channel string) []string {
	var out []string
	for _, m := range h.fake.State().TopLevel(channel) {
		out = append(out, m.Text)
	}
	return out
}

func TestMaintenanceCommand(t *testing.T) {
	h, _ := newMaintenanceHarness(t)
	ctx := t.Context()

	// Nothing in maintenance yet.
	ack := h.command(alice, "maintenance", nil)
	if got := h.answer(ack, 1).Text; !strings.HasPrefix(got, "No integration is in maintenance from Slack.") {
		t.Errorf("list = %q", got)
	}

	// Named regardless of case; 1d12h from the bot's clock.
	h.clock.Advance(time.Hour)
	until := h.clock.Now().Add(36 * time.Hour).UTC().Truncate(time.Second)
	ack = h.command(alice, "maintenance PROMETHEUS 1d12h", nil)
	if text := ackText(t, ack); text != "" {
		t.Fatalf("the ack answers %q; the maintenance should start after it", text)
	}
	want := "*prometheus* is in maintenance until " + slackDate(until) +
		": its alerts are shown, nobody is paged. End it sooner with `/oncall maintenance prometheus off`."
	if got := h.answer(ack, 1).Text; got != want {
		t.Errorf("answer = %q, want %q", got, want)
	}
	windows, err := h.db.Maintenance(ctx, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(windows) != 1 || windows[0].Integration != "prometheus" || !windows[0].Until.Equal(until) ||
		windows[0].StartedBy != oncall.SlackActor(alice) {
		t.Errorf("windows = %+v, want prometheus until %v by %s", windows, until, alice)
	}
	wantNotes := []string{"<@U0ALICE> put *prometheus* in maintenance until " + slackDate(until) +
		": its alerts are shown, nobody is paged."}
	if got := h.notes(channel); strings.Join(got, "\n") != strings.Join(wantNotes, "\n") {
		t.Errorf("channel = %q, want %q", got, wantNotes)
	}

	// An integration without a channel: nobody else to tell.
	ack = h.command(bob, "maintenance grafana 90m", nil)
	if got := h.answer(ack, 1).Text; !strings.HasPrefix(got, "*Grafana* is in maintenance until ") {
		t.Errorf("answer = %q", got)
	}
	if got := h.notes(channel); len(got) != 1 {
		t.Errorf("channel = %q after a maintenance of an integration posting elsewhere", got)
	}

	ack = h.command(carol, "maintenance", nil)
	wantList := "*In maintenance* (alerts are shown, nobody is paged):\n" +
		"• *Grafana* until " + slackDate(h.clock.Now().Add(90*time.Minute).UTC().Truncate(time.Second)) + ", started by <@U0BOB>\n" +
		"• *prometheus* until " + slackDate(until) + ", started by <@U0ALICE>"
	if got := h.answer(ack, 1).Text; got != wantList {
		t.Errorf("list = %q, want %q", got, wantList)
	}

	// Off ends it, and says so; a second off has nothing to end.
	ack = h.command(carol, "maintenance prometheus off", nil)
	if got := h.answer(ack, 1).Text; got != "Ended the maintenance of *prometheus*: new incidents page again; one opened during the maintenance stays quiet (Escalate it to page)." {
		t.Errorf("answer = %q", got)
	}
	if windows, err := h.db.Maintenance(ctx, h.clock.Now()); err != nil || len(windows) != 1 || windows[0].Integration != "Grafana" {
		t.Errorf("windows after off = %+v, %v; want Grafana's alone", windows, err)
	}
	wantNotes = append(wantNotes, "<@U0CAROL> ended the maintenance of *prometheus*: new incidents page again (one opened during the maintenance stays quiet: Escalate it to page).")
	if got := h.notes(channel); strings.Join(got, "\n") != strings.Join(wantNotes, "\n") {
		t.Errorf("channel = %q, want %q", got, wantNotes)
	}
	ack = h.command(carol, "maintenance prometheus OFF", nil)
	if got := h.answer(ack, 1).Text; !strings.HasPrefix(got, "*prometheus* is not in maintenance from Slack") {
		t.Errorf("answer = %q", got)
	}
	if got := h.notes(channel); len(got) != len(wantNotes) {
		t.Errorf("channel = %q after an off with nothing to end", got)
	}
}

func TestMaintenanceCommandRefusals(t *testing.T) {
	h, _ := newMaintenanceHarness(t)
	usage := "Usage: `/oncall maintenance &lt;integration&gt; &lt;duration&gt;`"
	tests := []struct {
		text string
		want string // the ack's answer starts with it
	}{
		{"maintenance prometheus", usage},
		{"maintenance prometheus 2h now", usage},
		{"maintenance nosuch 2h", "Unknown integration `nosuch`. Integrations: `prometheus`, `Grafana`."},
		{"maintenance <!channel> 2h", "Unknown integration `&lt;!channel&gt;`."},
		{"maintenance prometheus soon", "`soon` is not a duration. " + usage},
		{"maintenance prometheus -1h", "`-1h` is not a duration."},
		{"maintenance prometheus 1.5d", "`1.5d` is not a duration."},
		{"maintenance prometheus d", "`d` is not a duration."},
		{"maintenance prometheus 30s", "A maintenance lasts at least a minute."},
		{"maintenance prometheus 0d", "A maintenance lasts at least a minute."},
		{"maintenance prometheus 7d1m", "A maintenance from Slack lasts at most 7 days"},
		{"maintenance prometheus 169h", "A maintenance from Slack lasts at most 7 days"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			if got := ackText(t, h.command(alice, tt.text, nil)); !strings.HasPrefix(got, tt.want) {
				t.Errorf("/oncall %s answers %q, want %q", tt.text, got, tt.want)
			}
		})
	}
	if windows, err := h.db.Maintenance(t.Context(), h.clock.Now()); err != nil || len(windows) != 0 {
		t.Errorf("windows after refused commands = %+v, %v", windows, err)
	}
	if got := h.notes(channel); len(got) != 0 {
		t.Errorf("refused commands posted %q", got)
	}

	// The longest one allowed.
	ack := h.command(alice, "maintenance prometheus 7d", nil)
	if got := h.answer(ack, 1).Text; !strings.HasPrefix(got, "*prometheus* is in maintenance until") {
		t.Errorf("7d: answer = %q", got)
	}
}

func TestMaintenanceCommandErrors(t *testing.T) {
	h, store := newMaintenanceHarness(t)
	store.failWith(errors.New("database down"))
	tests := map[string]string{
		"maintenance":                  ":x: Could not read the maintenance windows because of an internal error. Please try again.",
		"maintenance prometheus 1h":    ":x: Could not put `prometheus` in maintenance because of an internal error. Please try again.",
		"maintenance prometheus off":   ":x: Could not end the maintenance of `prometheus` because of an internal error. Please try again.",
		"maintenance Grafana 2d":       ":x: Could not put `Grafana` in maintenance because of an internal error. Please try again.",
		"maintenance prometheus 1d12h": ":x: Could not put `prometheus` in maintenance because of an internal error. Please try again.",
	}
	for text, want := range tests {
		ack := h.command(alice, text, nil)
		if got := h.answer(ack, 1).Text; got != want {
			t.Errorf("/oncall %s answers %q, want %q", text, got, want)
		}
	}
	if got := h.notes(channel); len(got) != 0 {
		t.Errorf("failed commands posted %q", got)
	}

	// Without a store, the command says it is unavailable.
	plain := newHarness(t)
	if got := ackText(t, plain.command(alice, "maintenance prometheus 1h", nil)); !strings.HasPrefix(got, "Maintenance from Slack is unavailable") {
		t.Errorf("without a store: %q", got)
	}
}

func TestRateLimitNotice(t *testing.T) {
	h := newHarness(t)
	in := oncall.Integration{Name: "prometheus <prod>", Kind: "alertmanager", Channel: channel}
	h.bot.RateLimitNotice(t.Context(), in, 600)
	want := []string{":warning: *prometheus &lt;prod&gt;* is sending more than 600 alerts a minute: requests beyond that " +
		"are refused with 429 and retried by the sender; alerts already accepted are kept."}
	if got := h.notes(channel); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("channel = %q, want %q", got, want)
	}

	// Failures are logged, not returned; an integration without a channel
	// tells nobody.
	h.fake.FailNextError("chat.postMessage", 1, "channel_not_found")
	h.bot.RateLimitNotice(t.Context(), in, 600)
	h.bot.RateLimitNotice(t.Context(), oncall.Integration{Name: "quiet"}, 10)
	if got := h.notes(channel); len(got) != 1 {
		t.Errorf("channel = %q, want the first notice alone", got)
	}
	if n := h.fake.Calls("chat.postMessage"); n != 2 {
		t.Errorf("chat.postMessage called %d times, want 2", n)
	}
}
