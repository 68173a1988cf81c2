package bot_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/bot"
	"github.com/oncallbot/oncall/internal/fakeslack"
	"github.com/oncallbot/oncall/storage"
)

// TestSyncAfterCrashBeforeSavingTheTS plays a sync that died between
// chat.postMessage and saving the ts: the message may be in Slack, and the
// database holds only the claim of the post.
func TestSyncAfterCrashBeforeSavingTheTS(t *testing.T) {
	tests := []struct {
		name          string
		posted        bool // the crashed sync's message reached Slack
		historyFails  bool
		wantTopLevel  int // messages in the channel after the sync, decoys included
		wantAdoptedTS bool
	}{
		{name: "posted before the crash", posted: true, wantTopLevel: 3, wantAdoptedTS: true},
		{name: "not posted", wantTopLevel: 3},
		// Without the history the bot cannot tell, and posts: a message
		// shown twice is better than none.
		{name: "history unreadable", posted: true, historyFails: true, wantTopLevel: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := t.Context()
			id := h.record("crash", oncall.AlertFiring)
			api := slack.New(h.fake.BotToken(), slack.OptionAPIURL(h.fake.APIURL()))
			post := func(text string, opts ...slack.MsgOption) string {
				t.Helper()
				_, ts, err := api.PostMessageContext(ctx, channel, append(opts, slack.MsgOptionText(text, false))...)
				if err != nil {
					t.Fatal(err)
				}
				return ts
			}
			// Decoys: another incident's message, and someone's message.
			post("another incident", slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "oncall_incident",
				EventPayload: map[string]any{"incident_id": id + 1}}))
			var crashed string
			if tt.posted {
				crashed = post("the crashed sync's post", slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "oncall_incident",
					EventPayload: map[string]any{"incident_id": id}}))
			}
			post("lunch?")
			if err := h.db.SaveSlackMessage(ctx, storage.SlackMessage{IncidentID: id, Channel: channel}); err != nil {
				t.Fatal(err)
			}
			if tt.historyFails {
				h.fake.FailNextError("conversations.history", 1, "internal_error")
			}

			h.sync(id)
			st := h.fake.State()
			if got := len(st.TopLevel(channel)); got != tt.wantTopLevel {
				t.Errorf("%d messages in the channel, want %d", got, tt.wantTopLevel)
			}
			m := h.message(id)
			if got := m.TS == crashed; got != tt.wantAdoptedTS {
				t.Errorf("the incident's message is %s, the crashed sync's post %q: adopted %v, want %v", m.TS, crashed, got, tt.wantAdoptedTS)
			}
			if got := actionIDs(m); got != "incident_acknowledge,incident_resolve,incident_escalate" {
				t.Errorf("the incident's message has buttons %q: not brought up to date", got)
			}
			if tt.wantAdoptedTS && m.UpdateCount != 1 {
				t.Errorf("the adopted message was updated %d times, want 1", m.UpdateCount)
			}

			// The search: the recent history of the claim's channel, with
			// metadata, from a minute before the incident was created.
			var calls int
			for _, c := range st.Calls {
				if c.Method != "conversations.history" {
					continue
				}
				calls++
				oldest, err := strconv.ParseFloat(c.Params["oldest"], 64)
				created := float64(h.incident(id).CreatedAt.Unix())
				if c.Params["channel"] != channel || c.Params["include_all_metadata"] != "1" || c.Params["limit"] != "200" ||
					err != nil || oldest < created-61 || oldest > created-59 {
					t.Errorf("conversations.history %v, want channel %s with metadata, limit 200, oldest a minute before %.0f", c.Params, channel, created)
				}
			}
			if calls != 1 {
				t.Errorf("conversations.history called %d times, want 1", calls)
			}

			// Settled: the next sync changes nothing and asks nothing.
			before := len(h.fake.CallLog())
			h.sync(id)
			if got := h.fake.CallLog()[before:]; len(got) != 0 {
				t.Errorf("a sync after the recovery called Slack: %+v", got)
			}
		})
	}
}

// TestSyncAfterCrashBeforeSavingTheReplyTS plays a sync that died between
// posting an event's thread reply and saving its ts: the reply may be in
// Slack, and the database holds only the claim of the post.
func TestSyncAfterCrashBeforeSavingTheReplyTS(t *testing.T) {
	const ackReply = "Acknowledged by <@U0ALICE>"
	tests := []struct {
		name string
		// crash leaves the acknowledged event of incident id claimed
		// with its reply maybe posted.
		crash        func(h *harness, id, event int64)
		repliesFail  bool
		wantAckReply int // replies saying who acknowledged, after the sync
		wantPages    int // conversations.replies calls
	}{
		{"posted before the crash", crashingSync, false, 1, 1},
		{"claimed, not posted", func(h *harness, _, event int64) {
			if err := h.db.ClaimEventPost(h.t.Context(), event); err != nil {
				h.t.Fatal(err)
			}
		}, false, 1, 1},
		{"posted on the second page of a busy thread", func(h *harness, id, event int64) {
			// The channel talks in the thread before the crashed sync
			// posts: its reply is the 201st.
			m := h.message(id)
			for i := range 200 {
				h.postAs(m.Channel, fmt.Sprint("looking ", i), slack.MsgOptionTS(m.TS))
			}
			crashingSync(h, id, event)
		}, false, 1, 2},
		// Without the thread the bot cannot tell, and posts: a reply shown
		// twice is better than none.
		{"thread unreadable", crashingSync, true, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := t.Context()
			id := h.record("crash-reply", oncall.AlertFiring)
			h.sync(id)
			if _, _, err := h.db.Transition(ctx, id, oncall.ActionAcknowledge, oncall.SlackActor("U0ALICE"), ""); err != nil {
				t.Fatal(err)
			}
			unposted, err := h.db.UnpostedEvents(ctx, id)
			if err != nil || len(unposted) != 1 || unposted[0].Kind != oncall.EventAcknowledged {
				t.Fatalf("unposted events %+v, %v; want the acknowledged one", unposted, err)
			}
			ack := unposted[0]

			tt.crash(h, id, ack.ID)
			if evs, err := h.db.UnpostedEvents(ctx, id); err != nil || len(evs) != 1 || !evs[0].Claimed {
				t.Fatalf("after the crash: unposted events %+v, %v; want the acknowledged one, claimed", evs, err)
			}
			// Decoys: a reply of another event, and someone's reply.
			m := h.message(id)
			h.postAs(m.Channel, ackReply, slack.MsgOptionTS(m.TS), slack.MsgOptionMetadata(slack.SlackMetadata{
				EventType: "oncall_event", EventPayload: map[string]any{"incident_id": id, "event_id": ack.ID + 1}}))
			h.postAs(m.Channel, "on it", slack.MsgOptionTS(m.TS))
			if tt.repliesFail {
				h.fake.FailNextError("conversations.replies", 1, "internal_error")
			}
			before := len(h.fake.CallLog())

			h.sync(id)
			var got int
			for _, r := range h.fake.State().Replies(m.Channel, m.TS) {
				if r.Text == ackReply && isEventReply(t, r, ack.ID) {
					got++
				}
			}
			if got != tt.wantAckReply {
				t.Errorf("%d replies of the acknowledged event, want %d", got, tt.wantAckReply)
			}
			if evs, err := h.db.UnpostedEvents(ctx, id); err != nil || len(evs) != 0 {
				t.Errorf("unposted events after the sync: %+v, %v", evs, err)
			}

			// The search: the thread of the incident's message, with
			// metadata, from a minute before the event.
			var pages int
			for _, c := range h.fake.CallLog()[before:] {
				if c.Method != "conversations.replies" {
					continue
				}
				pages++
				oldest, err := strconv.ParseFloat(c.Params["oldest"], 64)
				at := float64(ack.At.Unix())
				if c.Params["channel"] != m.Channel || c.Params["ts"] != m.TS || c.Params["include_all_metadata"] != "1" ||
					err != nil || oldest < at-61 || oldest > at-59 {
					t.Errorf("conversations.replies %v, want the thread %s of %s with metadata, oldest a minute before %.0f",
						c.Params, m.TS, m.Channel, at)
				}
			}
			if pages != tt.wantPages {
				t.Errorf("conversations.replies called %d times, want %d", pages, tt.wantPages)
			}

			// Settled: the next sync asks Slack nothing.
			before = len(h.fake.CallLog())
			h.sync(id)
			if got := h.fake.CallLog()[before:]; len(got) != 0 {
				t.Errorf("a sync after the recovery called Slack: %+v", got)
			}
		})
	}
}

// crashingSync syncs the incident and dies after Slack took the reply of
// the event, before its ts was saved.
func crashingSync(h *harness, id, event int64) {
	h.t.Helper()
	h.store.crashBeforeSavingTS(1)
	if err := h.bot.SyncIncident(h.t.Context(), id); !errors.Is(err, errCrash) {
		h.t.Fatalf("sync that crashes: %v, want the crash", err)
	}
	m := h.message(id)
	var posted int
	for _, r := range h.fake.State().Replies(m.Channel, m.TS) {
		if isEventReply(h.t, r, event) {
			posted++
		}
	}
	if posted != 1 {
		h.t.Fatalf("the crashed sync posted %d replies of event %d, want 1", posted, event)
	}
}

// isEventReply says whether the message's metadata names the event.
func isEventReply(t *testing.T, m fakeslack.Message, event int64) bool {
	t.Helper()
	if m.Metadata == nil {
		return false
	}
	var meta struct {
		EventType    string `json:"event_type"`
		EventPayload struct {
			EventID int64 `json:"event_id"`
		} `json:"event_payload"`
	}
	if err := json.Unmarshal(m.Metadata, &meta); err != nil {
		t.Fatalf("metadata of %s: %v", m.TS, err)
	}
	return meta.EventType == "oncall_event" && meta.EventPayload.EventID == event
}

func TestUpdatesOfABusyIncidentAreCoalesced(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	id := h.record("storm", oncall.AlertFiring)
	h.sync(id)
	summary := func() string { return blockText(t, h.message(id), "summary") }

	// syncHeldBack syncs and wants the update held back for wait.
	syncHeldBack := func(wait time.Duration) {
		t.Helper()
		err := h.bot.SyncIncident(ctx, id)
		ra, ok := errors.AsType[*bot.RetryAfterError](err)
		if !ok || ra.RetryDelay() != wait {
			t.Fatalf("sync within the interval: %v, want a RetryAfterError of %s", err, wait)
		}
	}

	// Right after the post, a count change waits for the interval.
	h.record("storm", oncall.AlertFiring)
	syncHeldBack(bot.UpdateInterval)
	h.clock.Advance(bot.UpdateInterval)
	h.sync(id)
	if m := h.message(id); m.UpdateCount != 1 || !strings.Contains(summary(), "2 alerts received") {
		t.Fatalf("after the interval: %d updates, summary %q; want 1 update showing 2 alerts", m.UpdateCount, summary())
	}

	// A storm: each batch changes the counts; none goes out until the
	// interval has passed, and then the latest state in one update.
	h.record("storm", oncall.AlertFiring)
	syncHeldBack(bot.UpdateInterval)
	h.clock.Advance(time.Second)
	h.record("storm", oncall.AlertFiring)
	syncHeldBack(bot.UpdateInterval - time.Second)
	if m := h.message(id); m.UpdateCount != 1 {
		t.Errorf("updated %d times during the storm, want 1", m.UpdateCount)
	}
	h.clock.Advance(bot.UpdateInterval - time.Second)
	h.sync(id)
	if m := h.message(id); m.UpdateCount != 2 || !strings.Contains(summary(), "4 alerts received") {
		t.Errorf("after the storm: %d updates, summary %q; want 2 updates showing 4 alerts", m.UpdateCount, summary())
	}
	h.sync(id) // a redelivered message with nothing left to change
	if m := h.message(id); m.UpdateCount != 2 {
		t.Errorf("a sync with nothing to change updated the message: %d updates", m.UpdateCount)
	}

	// A status change right after an update goes out at once, with its
	// thread reply; so does an escalation.
	actions := []struct {
		action oncall.Action
		want   string // in the message
	}{
		{oncall.ActionAcknowledge, "*Acknowledged* by <@U0ALICE>"},
		{oncall.ActionEscalate, "escalated 1 time"},
		{oncall.ActionResolve, "*Resolved* by <@U0ALICE>"},
	}
	for i, a := range actions {
		if _, _, err := h.db.Transition(ctx, id, a.action, oncall.SlackActor("U0ALICE"), ""); err != nil {
			t.Fatal(err)
		}
		h.sync(id)
		m := h.message(id)
		if shows := statusLine(t, m) + "\n" + summary(); m.UpdateCount != 3+i || !strings.Contains(shows, a.want) {
			t.Errorf("after %s: %d updates, showing %q; want %d updates showing %q", a.action, m.UpdateCount, shows, 3+i, a.want)
		}
		if r := h.replies(m); len(r) != i+1 {
			t.Errorf("after %s: thread %q, want %d replies", a.action, r, i+1)
		}
	}
}

func TestIncidentMessageDeletedInSlack(t *testing.T) {
	tests := []struct {
		name   string
		change func(h *harness, id int64)
		// wantReplies are the new message's thread replies.
		wantReplies []string
	}{
		{"a thread reply is due", func(h *harness, id int64) {
			if _, _, err := h.db.Transition(h.t.Context(), id, oncall.ActionAcknowledge, oncall.SlackActor("U0ALICE"), ""); err != nil {
				h.t.Fatal(err)
			}
		}, []string{"Acknowledged by <@U0ALICE>"}},
		{"an update is due", func(h *harness, id int64) {
			h.record("deleted", oncall.AlertFiring)
			h.clock.Advance(bot.UpdateInterval)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			id := h.record("deleted", oncall.AlertFiring)
			h.sync(id)
			old := h.message(id)
			if !h.fake.DeleteMessage(old.Channel, old.TS) {
				t.Fatal("cannot delete the message")
			}
			tt.change(h, id)
			h.sync(id)
			m := h.message(id)
			if m.TS == old.TS {
				t.Fatal("the deleted message is still the incident's")
			}
			if got := len(h.fake.State().TopLevel(channel)); got != 1 {
				t.Errorf("%d messages in the channel, want 1", got)
			}
			if got := h.replies(m); strings.Join(got, "\n") != strings.Join(tt.wantReplies, "\n") {
				t.Errorf("thread = %q, want %q", got, tt.wantReplies)
			}
			inc := h.incident(id)
			if !strings.HasPrefix(m.Text, bot.IncidentText(inc)) {
				t.Errorf("the new message shows %q, want %q", m.Text, bot.IncidentText(inc))
			}
		})
	}
}

func TestPostsArePacedPerChannel(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	id := h.record("paced", oncall.AlertFiring)
	for _, a := range []oncall.Action{oncall.ActionAcknowledge, oncall.ActionUnacknowledge, oncall.ActionResolve} {
		if _, _, err := h.db.Transition(ctx, id, a, oncall.SlackActor("U0ALICE"), ""); err != nil {
			t.Fatal(err)
		}
	}
	// The sync needs four posts (the message, three replies); the channel
	// allows three now and the next in an hour, which the deadline does
	// not allow: the sync stops there, at once.
	bot.SetPacing(h.bot, rate.Every(time.Hour), 3)
	short, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := h.bot.SyncIncident(short, id); err == nil || !strings.Contains(err.Error(), "pace messages to Slack channel "+channel) {
		t.Fatalf("sync beyond the channel's pace: %v, want a pacing error", err)
	}
	st := h.fake.State()
	if n := st.CallCount("chat.postMessage"); n != 3 {
		t.Errorf("%d posts, want 3", n)
	}

	// With room again, the sync goes on where it stopped.
	bot.SetPacing(h.bot, rate.Inf, 1)
	h.sync(id)
	m := h.message(id)
	want := []string{"Acknowledged by <@U0ALICE>", "Unacknowledged by <@U0ALICE>", "Resolved by <@U0ALICE>"}
	if got := h.replies(m); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("thread = %q, want %q", got, want)
	}
	if got := len(h.fake.State().TopLevel(channel)); got != 1 {
		t.Errorf("%d messages in the channel, want 1", got)
	}
}

// postAs posts to Slack as a person in the channel would (the fake tells
// no one apart).
func (h *harness) postAs(channel, text string, opts ...slack.MsgOption) string {
	h.t.Helper()
	api := slack.New(h.fake.BotToken(), slack.OptionAPIURL(h.fake.APIURL()))
	_, ts, err := api.PostMessageContext(h.t.Context(), channel, append(opts, slack.MsgOptionText(text, false))...)
	if err != nil {
		h.t.Fatal(err)
	}
	return ts
}
