package bot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/internal/fakeslack"
	"github.com/oncallbot/oncall/internal/golden"
)

// TestPagingTimelineGolden renders the thread replies of the paging events
// for each way of paging and each kind of target.
func TestPagingTimelineGolden(t *testing.T) {
	// alice and U0BOB resolve to Slack users; "Carol C" is a name nobody
	// in Slack matches.
	known := map[string]string{"alice@example.com": "U0ALICE", "U0BOB": "U0BOB"}
	slackUser := func(person string) (string, bool) { id, ok := known[person]; return id, ok }

	events := []oncall.Event{
		{Kind: oncall.EventPaged, Target: "alice@example.com", Channel: oncall.NotifySlack},
		{Kind: oncall.EventPaged, Target: "alice@example.com", Channel: oncall.NotifySMS},
		{Kind: oncall.EventPaged, Target: "U0BOB", Channel: oncall.NotifyCall, Note: "step 2 of 3: schedule secondary"},
		{Kind: oncall.EventPaged, Target: "Carol <C>", Channel: oncall.NotifySMS},
		{Kind: oncall.EventPaged, Target: oncall.MentionHere, Channel: oncall.NotifySlack},
		{Kind: oncall.EventPaged, Target: oncall.MentionChannel, Channel: oncall.NotifySlack},
		{Kind: oncall.EventPaged, Target: "!subteam^S0ONCALL", Channel: oncall.NotifySlack},
		{Kind: oncall.EventPageDelivered, Target: "alice@example.com", Channel: oncall.NotifySMS},
		{Kind: oncall.EventPageDelivered, Target: "U0BOB", Channel: oncall.NotifyCall, Note: "after 3 rings"},
		{Kind: oncall.EventPageDelivered, Target: "alice@example.com", Channel: oncall.NotifySlack},
		{Kind: oncall.EventPageFailed, Target: "alice@example.com", Channel: oncall.NotifySMS,
			Note: "undelivered (30003); calling next"},
		{Kind: oncall.EventPageFailed, Target: "U0BOB", Channel: oncall.NotifyCall, Note: "no answer & busy <twice>"},
		{Kind: oncall.EventPageFailed, Target: "Carol <C>", Channel: oncall.NotifySlack, Note: "no Slack user matches"},
		{Kind: oncall.EventEscalationStep, Note: "escalating to step 3: schedule secondary"},
		{Kind: oncall.EventEscalationStep},
	}
	inc := baseIncident()
	var out strings.Builder
	for _, ev := range events {
		text, ok := eventText(inc, ev, targetName(ev.Target, slackUser))
		if !ok {
			t.Errorf("no thread reply for %s", ev.Kind)
		}
		fmt.Fprintf(&out, "%s %s %q\n\t%s\n", ev.Kind, ev.Channel, ev.Target, text)
	}
	golden.Check(t, filepath.Join("testdata", "timeline_paging.golden"), []byte(out.String()))
}

// TestNoteAndSilenceTimelineGolden renders the thread replies of notes,
// silences and their ends.
func TestNoteAndSilenceTimelineGolden(t *testing.T) {
	alice := oncall.SlackActor("U0ALICE")
	events := []oncall.Event{
		{Kind: oncall.EventNote, Actor: oncall.ActorSource, Note: "Restarted the consumer <by hand> & it recovered"},
		{Kind: oncall.EventNote, Actor: oncall.ActorSystem, Note: `mapping template "title" failed: map has no entry for key "name"`},
		{Kind: oncall.EventNote, Actor: alice, Note: "looking at it"},
		{Kind: oncall.EventSilenced, Actor: alice, Note: "until 2026-11-25T16:00:00Z"},
		{Kind: oncall.EventSilenced, Actor: alice, Note: "until resolved"},
		{Kind: oncall.EventSilenced, Actor: alice, Note: "until tomorrow <maybe>"}, // not one the store writes: shown as it is
		{Kind: oncall.EventSilenced, Actor: alice},
		{Kind: oncall.EventUnsilenced, Actor: oncall.SlackActor("U0BOB")},
		{Kind: oncall.EventUnsilenced, Actor: oncall.ActorSystem},
	}
	inc := baseIncident()
	inc.Kind = "opsgenie"
	var out strings.Builder
	for _, ev := range events {
		text, ok := eventText(inc, ev, "")
		if !ok {
			t.Errorf("no thread reply for %s %q", ev.Kind, ev.Note)
		}
		fmt.Fprintf(&out, "%s %s %q\n\t%s\n", ev.Kind, ev.Actor, ev.Note, text)
	}
	golden.Check(t, filepath.Join("testdata", "timeline_silence.golden"), []byte(out.String()))

	if text, ok := eventText(inc, oncall.Event{Kind: oncall.EventNote, Actor: oncall.ActorSource}, ""); ok {
		t.Errorf("an empty note has a thread reply: %q", text)
	}
}

// TestRenderPageGolden renders a page by direct message and the post of a
// mention target, with and without a link to the incident's message.
func TestRenderPageGolden(t *testing.T) {
	fake, err := fakeslack.New(fakeslack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	api := slack.New(fake.BotToken(), slack.OptionAPIURL(fake.APIURL()))

	inc := baseIncident()
	linked := incidentLink{Channel: inc.Channel, URL: fakeslack.PermalinkURL(inc.Channel, "1772357400.000100")}
	unposted := incidentLink{Channel: inc.Channel}
	long := baseIncident()
	long.Message = strings.Repeat("a&b ", 300)
	long.Title = strings.Repeat("Long title ", 30)

	tests := []struct {
		name string
		inc  oncall.Incident
		link incidentLink
	}{
		{"linked", inc, linked},
		{"unposted", inc, unposted},
		{"long", long, incidentLink{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, blocks := pageText(tt.inc), pageBlocks(tt.inc, tt.link)
			mention := mentionText(tt.inc, oncall.MentionHere, tt.link)
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(map[string]any{"text": text, "blocks": blocks, "mention": mention}); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "page_"+tt.name+".golden.json"), buf.Bytes())

			// Slack takes both as rendered.
			if _, _, err := api.PostMessageContext(t.Context(), "D0ALICE", slack.MsgOptionText(text, false),
				slack.MsgOptionBlocks(blocks...)); err != nil {
				t.Errorf("Slack refuses the page: %v", err)
			}
			if _, _, err := api.PostMessageContext(t.Context(), tt.inc.Channel, slack.MsgOptionText(mention, false)); err != nil {
				t.Errorf("Slack refuses the mention: %v", err)
			}
		})
	}
}

func TestValidMention(t *testing.T) {
	tests := map[string]bool{
		"!here": true, "!channel": true, "!subteam^S0ONCALL": true,
		"!everyone": false, "!subteam^": false, "!subteam^s0lower": false, "!subteam^S0>x": false, "!": false,
	}
	for target, want := range tests {
		if got := validMention(target); got != want {
			t.Errorf("validMention(%q) = %v, want %v", target, got, want)
		}
	}
}
