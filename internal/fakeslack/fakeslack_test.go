package fakeslack

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

func start(t *testing.T) *Server {
	t.Helper()
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestWebAPIWithSlackGo(t *testing.T) {
	s := start(t)
	ctx := t.Context()
	api := slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()))

	if _, err := api.AuthTestContext(ctx); err != nil {
		t.Fatalf("auth.test: %v", err)
	}
	blocks := []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*hello*", false, false), nil, nil),
		slack.NewActionBlock("actions", slack.NewButtonBlockElement("ack", "7", slack.NewTextBlockObject(slack.PlainTextType, "Ack", true, false))),
	}
	meta := slack.SlackMetadata{EventType: "oncall_incident", EventPayload: map[string]any{"incident_id": 7}}
	channel, ts, err := api.PostMessageContext(ctx, "C0TEST",
		slack.MsgOptionText("hello", false), slack.MsgOptionBlocks(blocks...), slack.MsgOptionMetadata(meta))
	if err != nil {
		t.Fatalf("chat.postMessage: %v", err)
	}
	if channel != "C0TEST" || ts == "" {
		t.Fatalf("chat.postMessage answered channel %q ts %q", channel, ts)
	}
	if _, _, err := api.PostMessageContext(ctx, channel, slack.MsgOptionText("reply", false), slack.MsgOptionTS(ts)); err != nil {
		t.Fatalf("thread reply: %v", err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, channel, ts, slack.MsgOptionText("updated", false), slack.MsgOptionBlocks(blocks[0])); err != nil {
		t.Fatalf("chat.update: %v", err)
	}
	if _, err := api.PostEphemeralContext(ctx, channel, "U1", slack.MsgOptionText("only you", false)); err != nil {
		t.Fatalf("chat.postEphemeral: %v", err)
	}
	hist, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: channel, IncludeAllMetadata: true})
	if err != nil {
		t.Fatalf("conversations.history: %v", err)
	}

	st := s.State()
	m, ok := st.Message(channel, ts)
	if !ok {
		t.Fatal("posted message not recorded")
	}
	if m.Text != "updated" || m.UpdateCount != 1 || len(m.History) != 1 || m.History[0].Text != "hello" {
		t.Errorf("message after update = %+v", m)
	}
	if _, ok := m.Button("ack"); ok {
		t.Error("the update removed the actions block, but the button is still there")
	}
	if b, ok := (Message{Blocks: m.History[0].Blocks}).Button("ack"); !ok || b.Value != "7" || b.Text != "Ack" {
		t.Errorf("first version's button = %+v, %v", b, ok)
	}
	var md slack.SlackMetadata
	if err := json.Unmarshal(m.Metadata, &md); err != nil || md.EventType != "oncall_incident" || md.EventPayload["incident_id"] != float64(7) {
		t.Errorf("metadata = %s (%v)", m.Metadata, err)
	}
	if r := st.Replies(channel, ts); len(r) != 1 || r[0].Text != "reply" {
		t.Errorf("replies = %+v", r)
	}
	if e := st.Ephemerals; len(e) != 1 || e[0].User != "U1" || e[0].Text != "only you" {
		t.Errorf("ephemerals = %+v", e)
	}
	if len(hist.Messages) != 1 || hist.Messages[0].Timestamp != ts || hist.Messages[0].Metadata.EventType != "oncall_incident" {
		t.Errorf("history = %+v", hist.Messages)
	}
	if n := s.Calls("chat.postMessage"); n != 2 {
		t.Errorf("chat.postMessage calls = %d, want 2", n)
	}
}

func TestWebAPIErrors(t *testing.T) {
	s := start(t)
	ctx := t.Context()
	good := slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()))
	longHeader := slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, strings.Repeat("x", 151), false, false))

	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"wrong bot token", func() error {
			_, err := slack.New("xoxb-wrong", slack.OptionAPIURL(s.APIURL())).AuthTestContext(ctx)
			return err
		}, "invalid_auth"},
		{"app token for a bot method", func() error {
			_, _, err := slack.New(s.AppToken(), slack.OptionAPIURL(s.APIURL())).PostMessageContext(ctx, "C0TEST", slack.MsgOptionText("x", false))
			return err
		}, "not_allowed_token_type"},
		{"bot token for apps.connections.open", func() error {
			_, _, err := slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()), slack.OptionAppLevelToken(s.BotToken())).StartSocketModeContext(ctx)
			return err
		}, "not_allowed_token_type"},
		{"missing channel", func() error {
			_, _, err := good.PostMessageContext(ctx, "", slack.MsgOptionText("x", false))
			return err
		}, "channel_not_found"},
		{"no text or blocks", func() error {
			_, _, err := good.PostMessageContext(ctx, "C0TEST")
			return err
		}, "no_text"},
		{"header too long", func() error {
			_, _, err := good.PostMessageContext(ctx, "C0TEST", slack.MsgOptionText("x", false), slack.MsgOptionBlocks(longHeader))
			return err
		}, "invalid_blocks"},
		{"update of an unknown message", func() error {
			_, _, _, err := good.UpdateMessageContext(ctx, "C0TEST", "1.000001", slack.MsgOptionText("x", false))
			return err
		}, "message_not_found"},
		{"reply to an unknown thread", func() error {
			_, _, err := good.PostMessageContext(ctx, "C0TEST", slack.MsgOptionText("x", false), slack.MsgOptionTS("1.000001"))
			return err
		}, "thread_not_found"},
		{"unknown method", func() error {
			_, err := good.GetUserPresenceContext(ctx, "U1")
			return err
		}, "unknown_method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %s", err, tt.want)
			}
		})
	}
	if n := s.Calls("users.getPresence"); n != 1 {
		t.Errorf("unknown method users.getPresence recorded %d times, want 1", n)
	}
	if len(s.Messages()) != 0 {
		t.Errorf("rejected calls stored messages: %+v", s.Messages())
	}
}

func TestHistoryWindowAndDelete(t *testing.T) {
	s := start(t)
	ctx := t.Context()
	api := slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()))
	var ts []string
	for i := range 4 {
		_, t1, err := api.PostMessageContext(ctx, "C0TEST", slack.MsgOptionText(fmt.Sprint("m", i), false))
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, t1)
	}
	if _, _, err := api.PostMessageContext(ctx, "C0TEST", slack.MsgOptionText("reply", false), slack.MsgOptionTS(ts[0])); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		params   slack.GetConversationHistoryParameters
		want     string // texts, newest first
		wantMore bool
	}{
		{"all", slack.GetConversationHistoryParameters{}, "m3 m2 m1 m0", false},
		{"limit", slack.GetConversationHistoryParameters{Limit: 2}, "m3 m2", true},
		{"oldest", slack.GetConversationHistoryParameters{Oldest: ts[1]}, "m3 m2", false},
		{"oldest inclusive", slack.GetConversationHistoryParameters{Oldest: ts[1], Inclusive: true}, "m3 m2 m1", false},
		{"latest", slack.GetConversationHistoryParameters{Latest: ts[2]}, "m1 m0", false},
		{"oldest in whole seconds", slack.GetConversationHistoryParameters{Oldest: strings.Split(ts[0], ".")[0]}, "m3 m2 m1 m0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.params
			p.ChannelID = "C0TEST"
			hist, err := api.GetConversationHistoryContext(ctx, &p)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range hist.Messages {
				got = append(got, m.Text)
			}
			if strings.Join(got, " ") != tt.want || hist.HasMore != tt.wantMore {
				t.Errorf("history = %q, has_more %v; want %q, %v", got, hist.HasMore, tt.want, tt.wantMore)
			}
		})
	}
	if _, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: "C0TEST", Oldest: "yesterday"}); err == nil || err.Error() != "invalid_ts_oldest" {
		t.Errorf("history with a bad oldest: %v, want invalid_ts_oldest", err)
	}

	// A deleted message is gone and takes no more replies; its thread stays.
	if !s.DeleteMessage("C0TEST", ts[0]) || s.DeleteMessage("C0TEST", ts[0]) {
		t.Fatal("DeleteMessage does not delete once")
	}
	if _, ok := s.State().Message("C0TEST", ts[0]); ok {
		t.Error("the deleted message is still there")
	}
	if r := s.State().Replies("C0TEST", ts[0]); len(r) != 1 {
		t.Errorf("the deleted message's thread has %d replies, want 1", len(r))
	}
	if _, _, err := api.PostMessageContext(ctx, "C0TEST", slack.MsgOptionText("late", false), slack.MsgOptionTS(ts[0])); err == nil || err.Error() != "thread_not_found" {
		t.Errorf("reply to a deleted message: %v, want thread_not_found", err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C0TEST", ts[0], slack.MsgOptionText("x", false)); err == nil || err.Error() != "message_not_found" {
		t.Errorf("update of a deleted message: %v, want message_not_found", err)
	}
}

func TestJSONBody(t *testing.T) {
	s := start(t)
	post := func(token, body string) map[string]any {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.APIURL()+"chat.postMessage", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	body := `{"channel":"C0TEST","text":"hi","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"*hi*"}}]}`
	if out := post("xoxb-other", body); out["error"] != "invalid_auth" {
		t.Errorf("wrong token answered %v", out)
	}
	if out := post(s.BotToken(), body); out["ok"] != true {
		t.Fatalf("JSON post answered %v", out)
	}
	m := s.Messages()
	if len(m) != 1 || m[0].Text != "hi" || !strings.Contains(string(m[0].Blocks), `"*hi*"`) {
		t.Errorf("messages = %+v", m)
	}
}

func TestFailNext(t *testing.T) {
	s := start(t)
	ctx := t.Context()
	api := slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()))
	s.FailNext("chat.postMessage", 1, 429, 1500*time.Millisecond)
	s.FailNextError("chat.postMessage", 1, "fatal_error")

	_, _, err := api.PostMessageContext(ctx, "C0TEST", slack.MsgOptionText("x", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Fatalf("first call: %v, want a rate limit with Retry-After 2s", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C0TEST", slack.MsgOptionText("x", false)); err == nil || err.Error() != "fatal_error" {
		t.Fatalf("second call: %v, want fatal_error", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C0TEST", slack.MsgOptionText("x", false)); err != nil {
		t.Fatalf("third call: %v", err)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

func TestSocketModeAck(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	api := slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()), slack.OptionAppLevelToken(s.AppToken()))
	client := socketmode.New(api)
	go func() { _ = client.RunContext(ctx) }()

	type seen struct {
		typ        socketmode.EventType
		retry      int
		actionID   string
		slashText  string
		envelopeID string
	}
	got := make(chan seen, 10)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-client.Events:
				if evt.Request == nil || evt.Request.EnvelopeID == "" {
					continue
				}
				e := seen{typ: evt.Type, retry: evt.Request.RetryAttempt, envelopeID: evt.Request.EnvelopeID}
				var payload any
				switch d := evt.Data.(type) {
				case slack.InteractionCallback:
					if len(d.ActionCallback.BlockActions) > 0 {
						e.actionID = d.ActionCallback.BlockActions[0].ActionID
					}
				case slack.SlashCommand:
					e.slashText = d.Text
					payload = map[string]string{"text": "echo " + d.Text}
				}
				_ = client.Ack(*evt.Request, payload)
				got <- e
			}
		}
	}()

	api2 := slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()))
	block := slack.NewActionBlock("a", slack.NewButtonBlockElement("incident_acknowledge", "1", slack.NewTextBlockObject(slack.PlainTextType, "Acknowledge", true, false)))
	ch, ts, err := api2.PostMessageContext(ctx, "C0TEST", slack.MsgOptionText("x", false), slack.MsgOptionBlocks(block))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := s.ClickButton(ctx, Click{Channel: ch, TS: ts, UserID: "U1", ActionID: "incident_acknowledge"})
	if err != nil {
		t.Fatalf("click: %v", err)
	}
	if e := <-got; e.typ != socketmode.EventTypeInteractive || e.actionID != "incident_acknowledge" || e.envelopeID != ack.EnvelopeID {
		t.Errorf("client saw %+v for envelope %s", e, ack.EnvelopeID)
	}
	if _, err := s.Redeliver(ctx, ack.EnvelopeID); err != nil {
		t.Fatalf("redeliver: %v", err)
	}
	if e := <-got; e.retry != 1 || e.envelopeID != ack.EnvelopeID {
		t.Errorf("redelivery seen as %+v", e)
	}
	if _, err := s.ClickButton(ctx, Click{Channel: ch, TS: ts, UserID: "U1", ActionID: "no_such_button"}); err == nil {
		t.Error("clicking a button the message lacks succeeded")
	}

	ack, err = s.SendSlashCommand(ctx, map[string]string{"text": "help"})
	if err != nil {
		t.Fatalf("slash command: %v", err)
	}
	if e := <-got; e.typ != socketmode.EventTypeSlashCommand || e.slashText != "help" {
		t.Errorf("client saw %+v", e)
	}
	if string(ack.Payload) != `{"text":"echo help"}` {
		t.Errorf("ack payload = %s", ack.Payload)
	}
}

func TestSendWithoutAckTimesOut(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := s.SendInteraction(ctx, map[string]string{"type": "block_actions"}); err == nil {
		t.Fatal("SendInteraction with no client connected succeeded")
	}
}

func TestFailNextIn(t *testing.T) {
	s := start(t)
	ctx := t.Context()
	api := slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()))
	s.FailNextIn("chat.postMessage", "D0ALICE", 1, http.StatusInternalServerError, 0)

	// A post elsewhere is not the one that fails.
	if _, _, err := api.PostMessageContext(ctx, "C0TEST", slack.MsgOptionText("channel", false)); err != nil {
		t.Fatalf("post in C0TEST: %v", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "D0ALICE", slack.MsgOptionText("dm", false)); err == nil {
		t.Fatal("first post in D0ALICE succeeded, want HTTP 500")
	}
	if _, _, err := api.PostMessageContext(ctx, "D0ALICE", slack.MsgOptionText("dm", false)); err != nil {
		t.Fatalf("second post in D0ALICE: %v", err)
	}
	var texts []string
	for _, m := range s.Messages() {
		texts = append(texts, m.Channel+":"+m.Text)
	}
	if want := []string{"C0TEST:channel", "D0ALICE:dm"}; strings.Join(texts, " ") != strings.Join(want, " ") {
		t.Errorf("messages = %q, want %q", texts, want)
	}
	if errs := callErrors(s.CallLog()); errs != "ok, http 500, ok" {
		t.Errorf("call results = %s, want ok, http 500, ok", errs)
	}
}

func TestHoldNext(t *testing.T) {
	s := start(t)
	api := slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()))
	release := s.HoldNext("chat.postMessage", "D0ALICE")

	if _, _, err := api.PostMessageContext(t.Context(), "C0TEST", slack.MsgOptionText("not held", false)); err != nil {
		t.Fatalf("post in C0TEST: %v", err)
	}
	answered := make(chan error, 1)
	go func() {
		_, _, err := api.PostMessageContext(t.Context(), "D0ALICE", slack.MsgOptionText("held", false))
		answered <- err
	}()
	// The held post is done before it is answered.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := s.WaitFor(ctx, func(st State) bool { return len(st.TopLevel("D0ALICE")) == 1 }); err != nil {
		t.Fatalf("held post not recorded: %v", err)
	}
	select {
	case err := <-answered:
		t.Fatalf("held post answered (%v) before release", err)
	default:
	}
	release()
	if err := <-answered; err != nil {
		t.Fatalf("held post after release: %v", err)
	}

	// A client that gives up leaves the post done, unanswered.
	s.HoldNext("chat.postMessage", "")
	ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := api.PostMessageContext(ctx, "C0TEST", slack.MsgOptionText("abandoned", false)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("abandoned post: %v, want the client's deadline", err)
	}
	if n := len(s.Messages()); n != 3 {
		t.Errorf("%d messages stored, want 3", n)
	}
}

// callErrors lists the calls' results: "ok" or their error.
func callErrors(calls []Call) string {
	var out []string
	for _, c := range calls {
		out = append(out, cmp.Or(c.Error, "ok"))
	}
	return strings.Join(out, ", ")
}
