package bot_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/bot"
	"github.com/oncallbot/oncall/internal/fakeslack"
)

// choose picks the option of the incident message's Silence menu and waits
// until the choice's work is done.
func (h *harness) choose(id int64, user, choice string) (fakeslack.Ack, error) {
	h.t.Helper()
	m := h.message(id)
	ack, err := h.fake.ChooseOption(h.t.Context(), fakeslack.Choice{Channel: m.Channel, TS: m.TS, UserID: user,
		ActionID: bot.ActionIDSilence, Value: fmt.Sprintf("%d:%s", id, choice)})
	if err != nil {
		h.t.Fatalf("choose %s: %v", choice, err)
	}
	return ack, h.workDone()
}

// slackDate is how the bot shows t.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func TestSilenceFromTheMessage(t *testing.T) {
	h := newHarness(t)
	id := h.record("checkout", oncall.AlertFiring)
	h.sync(id)
	if _, ok := h.message(id).Select(bot.ActionIDSilence); !ok {
		t.Fatalf("no Silence menu on a new incident: %s", h.message(id).Blocks)
	}

	// 1 hour from the bot's clock, which is not the wall clock.
	h.clock.Advance(10 * time.Minute)
	until := h.clock.Now().Add(time.Hour).UTC()
	ack, err := h.choose(id, "U0ALICE", "1h")
	if err != nil {
		t.Fatal(err)
	}
	if inc := h.incident(id); !inc.SilencedUntil.Equal(until) {
		t.Fatalf("silenced until %v, want %v", inc.SilencedUntil, until)
	}
	m := h.message(id)
	if want := "\n:no_bell: Silenced until " + slackDate(until) + ": nobody is paged"; !strings.HasSuffix(statusLine(t, m), want) {
		t.Errorf("status = %q, want it to end with %q", statusLine(t, m), want)
	}
	if got := actionIDs(m); got != "incident_acknowledge,incident_resolve,incident_escalate,incident_unsilence" {
		t.Errorf("buttons while silenced = %s", got)
	}
	if _, ok := m.Select(bot.ActionIDSilence); ok {
		t.Error("the Silence menu is still there while silenced")
	}
	want := []string{"Silenced by <@U0ALICE> until " + slackDate(until)}
	if got := h.replies(m); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("thread = %q, want %q", got, want)
	}

	// The envelope again silences once.
	if _, err := h.fake.Redeliver(t.Context(), ack.EnvelopeID); err != nil {
		t.Fatal(err)
	}
	if err := h.workDone(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(h.eventKinds(id), ","); got != "created,silenced" {
		t.Errorf("events after a redelivered choice = %s", got)
	}

	// Unsilence, then until resolved.
	if _, err := h.click(id, "U0BOB", bot.ActionIDUnsilence, nil); err != nil {
		t.Fatal(err)
	}
	if inc := h.incident(id); !inc.SilencedUntil.IsZero() {
		t.Errorf("silenced until %v after Unsilence", inc.SilencedUntil)
	}
	m = h.message(id)
	if _, ok := m.Select(bot.ActionIDSilence); !ok || strings.Contains(statusLine(t, m), "Silenced") {
		t.Errorf("after Unsilence: status %q, blocks %s", statusLine(t, m), m.Blocks)
	}
	if _, err := h.choose(id, "U0ALICE", "resolved"); err != nil {
		t.Fatal(err)
	}
	if inc := h.incident(id); !inc.SilencedUntil.Equal(oncall.UntilResolved) {
		t.Errorf("silenced until %v, want until resolved", inc.SilencedUntil)
	}
	m = h.message(id)
	if !strings.HasSuffix(statusLine(t, m), "\n:no_bell: Silenced until resolved: nobody is paged") {
		t.Errorf("status = %q", statusLine(t, m))
	}
	want = append(want, "Unsilenced by <@U0BOB>", "Silenced by <@U0ALICE> until resolved")
	if got := h.replies(m); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("thread = %q, want %q", got, want)
	}

	// Resolved: neither the silence nor its controls are shown.
	if _, err := h.click(id, "U0BOB", bot.ActionIDResolve, nil); err != nil {
		t.Fatal(err)
	}
	m = h.message(id)
	if got := actionIDs(m); got != "incident_reopen" || strings.Contains(statusLine(t, m), "Silenced") {
		t.Errorf("resolved: buttons %s, status %q", got, statusLine(t, m))
	}
	if _, ok := m.Select(bot.ActionIDSilence); ok {
		t.Error("a resolved incident has the Silence menu")
	}
}

func TestSilenceShownUntilItEnds(t *testing.T) {
	h := newHarness(t)
	id := h.record("disk", oncall.AlertFiring)
	h.sync(id)
	if _, err := h.choose(id, "U0ALICE", "30m"); err != nil {
		t.Fatal(err)
	}
	if got := actionIDs(h.message(id)); !strings.HasSuffix(got, "incident_unsilence") {
		t.Fatalf("buttons while silenced = %s", got)
	}
	// Once the silence is over, the next sync shows the menu again.
	h.clock.Advance(30 * time.Minute)
	h.sync(id)
	m := h.message(id)
	if _, ok := m.Select(bot.ActionIDSilence); !ok || strings.Contains(statusLine(t, m), "Silenced") {
		t.Errorf("after the silence: status %q, buttons %s", statusLine(t, m), actionIDs(m))
	}
}

func TestSilenceOfAResolvedIncident(t *testing.T) {
	h := newHarness(t)
	id := h.record("api", oncall.AlertFiring)
	h.sync(id)
	// Resolved meanwhile; the message still shows the menu.
	if _, _, err := h.db.Transition(t.Context(), id, oncall.ActionResolve, oncall.SlackActor("U0BOB"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.fake.ChooseOption(t.Context(), fakeslack.Choice{Channel: channel, TS: h.message(id).TS, UserID: "U0ALICE",
		ActionID: bot.ActionIDSilence, Value: fmt.Sprintf("%d:4h", id)}); err != nil {
		t.Fatal(err)
	}
	if err := h.workDone(); err != nil {
		t.Fatal(err)
	}
	st, err := h.fake.WaitFor(t.Context(), func(st fakeslack.State) bool { return len(st.Ephemerals) > 0 })
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("Incident #%d is resolved: there is nothing to silence.", id)
	if e := st.Ephemerals[0]; e.User != "U0ALICE" || e.Channel != channel || e.Text != want {
		t.Errorf("ephemeral = %+v, want %q", e, want)
	}
	if inc := h.incident(id); !inc.SilencedUntil.IsZero() {
		t.Errorf("a resolved incident was silenced until %v", inc.SilencedUntil)
	}
}
