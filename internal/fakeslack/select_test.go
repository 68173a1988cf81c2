package fakeslack

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

func TestStaticSelectInMessages(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	text := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	menu := func(actionID string, options ...*slack.OptionBlockObject) *slack.SelectBlockElement {
		return slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, text("Silence"), actionID, options...)
	}
	thirty := slack.NewOptionBlockObject("7:30m", text("30 minutes"), nil)
	hour := slack.NewOptionBlockObject("7:1h", text("1 hour"), nil)
	api := slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()), slack.OptionAppLevelToken(s.AppToken()))

	// Refused as Slack refuses them.
	for name, blocks := range map[string]slack.Block{
		"no options":       slack.NewActionBlock("a", menu("silence")),
		"empty value":      slack.NewActionBlock("a", menu("silence", slack.NewOptionBlockObject("", text("x"), nil))),
		"long option text": slack.NewActionBlock("a", menu("silence", slack.NewOptionBlockObject("v", text(strings.Repeat("x", 76)), nil))),
		"duplicate action": slack.NewActionBlock("a", menu("x", thirty), slack.NewButtonBlockElement("x", "1", text("X"))),
	} {
		if _, _, err := api.PostMessageContext(ctx, "C0TEST", slack.MsgOptionText("x", false), slack.MsgOptionBlocks(blocks)); err == nil ||
			!strings.Contains(err.Error(), "invalid_blocks") {
			t.Errorf("%s: post = %v, want invalid_blocks", name, err)
		}
	}

	block := slack.NewActionBlock("actions", slack.NewButtonBlockElement("ack", "7", text("Acknowledge")), menu("silence", thirty, hour))
	ch, ts, err := api.PostMessageContext(ctx, "C0TEST", slack.MsgOptionText("x", false), slack.MsgOptionBlocks(block))
	if err != nil {
		t.Fatalf("a message with a select menu: %v", err)
	}
	msg, _ := s.State().Message(ch, ts)
	sel, ok := msg.Select("silence")
	if !ok || sel.BlockID != "actions" || len(sel.Options) != 2 || sel.Options[1] != (Option{Text: "1 hour", Value: "7:1h"}) {
		t.Errorf("Select = %+v, %v", sel, ok)
	}

	client := socketmode.New(api)
	go func() { _ = client.RunContext(ctx) }()
	got := make(chan *slack.BlockAction, 1)
	go func() {
		for evt := range client.Events {
			if evt.Request == nil || evt.Request.EnvelopeID == "" {
				continue
			}
			_ = client.Ack(*evt.Request)
			if cb, ok := evt.Data.(slack.InteractionCallback); ok && len(cb.ActionCallback.BlockActions) > 0 {
				got <- cb.ActionCallback.BlockActions[0]
				return
			}
		}
	}()

	if _, err := s.ChooseOption(ctx, Choice{Channel: ch, TS: ts, UserID: "U1", ActionID: "silence", Value: "7:4h"}); err == nil {
		t.Error("choosing an option the menu lacks succeeded")
	}
	if _, err := s.ChooseOption(ctx, Choice{Channel: ch, TS: ts, UserID: "U1", ActionID: "ack", Value: "7:1h"}); err == nil {
		t.Error("choosing from a button succeeded")
	}
	if _, err := s.ChooseOption(ctx, Choice{Channel: ch, TS: ts, UserID: "U1", ActionID: "silence", Value: "7:1h"}); err != nil {
		t.Fatalf("choose: %v", err)
	}
	select {
	case a := <-got:
		if a.Type != "static_select" || a.ActionID != "silence" || a.BlockID != "actions" || a.SelectedOption.Value != "7:1h" ||
			a.ActionTs == "" {
			t.Errorf("slack-go read the choice as %+v", a)
		}
	case <-ctx.Done():
		t.Fatal("the client saw no block action")
	}
}
