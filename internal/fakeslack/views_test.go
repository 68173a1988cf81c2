package fakeslack

import (
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

func TestUsersAndViews(t *testing.T) {
	s, err := New(Config{Users: []User{{ID: "U0ALICE", Email: "alice@example.com", Name: "alice", TZ: "Europe/Berlin"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	api := slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()))

	u, err := api.GetUserByEmailContext(ctx, "ALICE@example.com")
	if err != nil || u.ID != "U0ALICE" || u.TZ != "Europe/Berlin" {
		t.Errorf("lookupByEmail = %+v, %v", u, err)
	}
	if _, err := api.GetUserByEmailContext(ctx, "bob@example.com"); err == nil || !strings.Contains(err.Error(), "users_not_found") {
		t.Errorf("lookupByEmail of a stranger: %v, want users_not_found", err)
	}
	u, err = api.GetUserInfoContext(ctx, "U0ALICE")
	if err != nil || u.Profile.Email != "alice@example.com" || u.TZ != "Europe/Berlin" {
		t.Errorf("users.info = %+v, %v", u, err)
	}
	if _, err := api.GetUserInfoContext(ctx, "U0BOB"); err == nil || !strings.Contains(err.Error(), "user_not_found") {
		t.Errorf("users.info of a stranger: %v, want user_not_found", err)
	}

	trigger, responseURL := s.nextInteraction("commands", "U0ALICE", "C0TEST")
	modal := func(title string, blocks ...slack.Block) slack.ModalViewRequest {
		return slack.ModalViewRequest{Type: slack.VTModal, Title: slack.NewTextBlockObject(slack.PlainTextType, title, false, false),
			Submit: slack.NewTextBlockObject(slack.PlainTextType, "Go", false, false), CallbackID: "cb", Blocks: slack.Blocks{BlockSet: blocks}}
	}
	input := slack.NewInputBlock("when", slack.NewTextBlockObject(slack.PlainTextType, "When", false, false), nil,
		slack.NewDateTimePickerBlockElement("when"))
	tests := []struct {
		name    string
		trigger string
		view    slack.ModalViewRequest
		want    string // "" for ok
	}{
		{"unknown trigger", "1.nope", modal("Hi", input), "invalid_trigger_id"},
		{"title too long", trigger, modal(strings.Repeat("x", 25), input), "invalid_arguments"},
		{"bad select", trigger, modal("Hi", slack.NewInputBlock("s", slack.NewTextBlockObject(slack.PlainTextType, "S", false, false), nil,
			slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, nil, "s"))), "invalid_arguments"},
		{"ok", trigger, modal("Hi", input), ""},
		{"trigger used", trigger, modal("Hi", input), "exchanged_trigger_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := api.OpenViewContext(ctx, tt.trigger, tt.view)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("views.open: %v, want %q", err, tt.want)
			}
		})
	}
	views := s.Views()
	if len(views) != 1 || views[0].User != "U0ALICE" || views[0].CallbackID != "cb" || views[0].Title != "Hi" {
		t.Fatalf("views = %+v", views)
	}
	if _, err := s.SubmitView(ctx, Submission{ViewID: views[0].ID, Values: map[string]string{}}); err == nil ||
		!strings.Contains(err.Error(), "required input") {
		t.Errorf("submitting without a required input: %v", err)
	}

	// response_url: known ones take a message, others are not found.
	msg := &slack.WebhookMessage{ResponseType: "ephemeral", Text: "hello"}
	if err := slack.PostWebhookContext(ctx, responseURL, msg); err != nil {
		t.Fatal(err)
	}
	if err := slack.PostWebhookContext(ctx, s.URL()+"/commands/999", msg); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("an unknown response_url: %v, want a 404", err)
	}
	if err := slack.PostWebhookContext(ctx, responseURL, &slack.WebhookMessage{}); err == nil {
		t.Error("an empty message to a response_url was taken")
	}
	if r := s.Responses(); len(r) != 1 || r[0].User != "U0ALICE" || r[0].Channel != "C0TEST" || r[0].Text != "hello" {
		t.Errorf("responses = %+v", r)
	}
}
