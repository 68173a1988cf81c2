package fakeslack

import (
	"fmt"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

func TestReplies(t *testing.T) {
	s := start(t)
	ctx := t.Context()
	api := slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()))
	post := func(text, threadTS string) string {
		t.Helper()
		opts := []slack.MsgOption{slack.MsgOptionText(text, false),
			slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "test_event", EventPayload: map[string]any{"text": text}})}
		if threadTS != "" {
			opts = append(opts, slack.MsgOptionTS(threadTS))
		}
		_, ts, err := api.PostMessageContext(ctx, "C0TEST", opts...)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	parent := post("parent", "")
	var replies []string
	for i := range 4 {
		replies = append(replies, post(fmt.Sprint("r", i), parent))
		post(fmt.Sprint("elsewhere", i), "") // not in the thread
	}
	other := post("other parent", "")
	post("other reply", other)

	tests := []struct {
		name   string
		params slack.GetConversationRepliesParameters
		want   []string // texts of each page, parent first
	}{
		{"whole thread", slack.GetConversationRepliesParameters{Timestamp: parent}, []string{"parent r0 r1 r2 r3"}},
		{"the thread of a reply", slack.GetConversationRepliesParameters{Timestamp: replies[2]}, []string{"parent r0 r1 r2 r3"}},
		{"pages", slack.GetConversationRepliesParameters{Timestamp: parent, Limit: 3},
			[]string{"parent r0 r1 r2", "parent r3"}},
		{"pages of one", slack.GetConversationRepliesParameters{Timestamp: parent, Limit: 1},
			[]string{"parent r0", "parent r1", "parent r2", "parent r3"}},
		{"oldest", slack.GetConversationRepliesParameters{Timestamp: parent, Oldest: replies[1]}, []string{"parent r2 r3"}},
		{"oldest inclusive, paged", slack.GetConversationRepliesParameters{Timestamp: parent, Oldest: replies[1], Inclusive: true, Limit: 2},
			[]string{"parent r1 r2", "parent r3"}},
		{"latest", slack.GetConversationRepliesParameters{Timestamp: parent, Latest: replies[2]}, []string{"parent r0 r1"}},
		{"no replies", slack.GetConversationRepliesParameters{Timestamp: replies[3], Oldest: replies[3]}, []string{"parent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.params
			p.ChannelID = "C0TEST"
			p.IncludeAllMetadata = true
			var pages []string
			for range 10 {
				msgs, more, cursor, err := api.GetConversationRepliesContext(ctx, &p)
				if err != nil {
					t.Fatal(err)
				}
				var texts []string
				for _, m := range msgs {
					texts = append(texts, m.Text)
					if m.Metadata.EventType != "test_event" || m.Metadata.EventPayload["text"] != m.Text {
						t.Errorf("message %q has metadata %+v, want its own", m.Text, m.Metadata)
					}
				}
				pages = append(pages, strings.Join(texts, " "))
				if more != (cursor != "") {
					t.Errorf("has_more %v with cursor %q", more, cursor)
				}
				if !more {
					break
				}
				p.Cursor = cursor
			}
			if strings.Join(pages, " | ") != strings.Join(tt.want, " | ") {
				t.Errorf("pages %q, want %q", pages, tt.want)
			}
		})
	}

	// Metadata only when asked for.
	msgs, _, _, err := api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: "C0TEST", Timestamp: parent})
	if err != nil || len(msgs) != 5 || msgs[1].Metadata.EventType != "" {
		t.Errorf("replies without include_all_metadata: %d messages, %v; first reply's metadata %+v, want none",
			len(msgs), err, msgs[1].Metadata)
	}

	errs := []struct {
		name   string
		params slack.GetConversationRepliesParameters
		want   string
	}{
		{"unknown message", slack.GetConversationRepliesParameters{ChannelID: "C0TEST", Timestamp: "1.000001"}, "thread_not_found"},
		{"bad cursor", slack.GetConversationRepliesParameters{ChannelID: "C0TEST", Timestamp: parent, Cursor: "nope"}, "invalid_cursor"},
		{"bad oldest", slack.GetConversationRepliesParameters{ChannelID: "C0TEST", Timestamp: parent, Oldest: "yesterday"}, "invalid_ts_oldest"},
		{"unknown channel", slack.GetConversationRepliesParameters{ChannelID: "nope", Timestamp: parent}, "channel_not_found"},
	}
	for _, tt := range errs {
		if _, _, _, err := api.GetConversationRepliesContext(ctx, &tt.params); err == nil || err.Error() != tt.want {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.want)
		}
	}
	// A deleted message's thread cannot be read any more.
	if !s.DeleteMessage("C0TEST", parent) {
		t.Fatal("cannot delete the parent")
	}
	if _, _, _, err := api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: "C0TEST", Timestamp: parent}); err == nil || err.Error() != "thread_not_found" {
		t.Errorf("replies of a deleted message: %v, want thread_not_found", err)
	}
	if n := s.Calls("conversations.replies"); n < len(tests)+len(errs)+2 {
		t.Errorf("%d conversations.replies calls recorded, want at least %d", n, len(tests)+len(errs)+2)
	}
}
