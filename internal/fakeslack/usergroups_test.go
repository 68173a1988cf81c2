package fakeslack

import (
	"errors"
	"slices"
	"testing"

	"github.com/slack-go/slack"
)

func TestUsergroupsWithSlackGo(t *testing.T) {
	s := start(t)
	ctx := t.Context()
	api := slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()))

	members, err := api.GetUserGroupMembersContext(ctx, "S0ONCALL")
	if err != nil || len(members) != 0 {
		t.Fatalf("usergroups.users.list of a new group = %v, %v; want none", members, err)
	}
	group, err := api.UpdateUserGroupMembersContext(ctx, "S0ONCALL", "U0ALICE, U0BOB,U0ALICE")
	if err != nil {
		t.Fatalf("usergroups.users.update: %v", err)
	}
	want := []string{"U0ALICE", "U0BOB"}
	if group.ID != "S0ONCALL" || !slices.Equal(group.Users, want) || group.UserCount != 2 {
		t.Errorf("usergroups.users.update answered %+v", group)
	}
	if members, err := api.GetUserGroupMembersContext(ctx, "S0ONCALL"); err != nil || !slices.Equal(members, want) {
		t.Errorf("usergroups.users.list = %v, %v; want %v", members, err, want)
	}
	if got := s.UsergroupUsers("S0ONCALL"); !slices.Equal(got, want) {
		t.Errorf("UsergroupUsers = %v, want %v", got, want)
	}

	s.SetUsergroupUsers("S0ONCALL", "U0CAROL")
	if members, err := api.GetUserGroupMembersContext(ctx, "S0ONCALL"); err != nil || !slices.Equal(members, []string{"U0CAROL"}) {
		t.Errorf("usergroups.users.list after a change by hand = %v, %v", members, err)
	}

	refused := []struct {
		name, group, users, code string
	}{
		{"empty", "S0ONCALL", "", "no_users_provided"},
		{"not a user", "S0ONCALL", "alice@example.com", "invalid_users"},
		{"the bot", "S0ONCALL", "U0ALICE," + BotUserID, "invalid_user"},
		{"bad group", "oncall", "U0ALICE", "no_such_subteam"},
	}
	for _, tt := range refused {
		_, err := api.UpdateUserGroupMembersContext(ctx, tt.group, tt.users)
		var slackErr slack.SlackErrorResponse
		if !errors.As(err, &slackErr) || slackErr.Err != tt.code {
			t.Errorf("%s: usergroups.users.update = %v, want %s", tt.name, err, tt.code)
		}
	}
	if got := s.UsergroupUsers("S0ONCALL"); !slices.Equal(got, []string{"U0CAROL"}) {
		t.Errorf("refused updates changed the group: %v", got)
	}
}

func TestOpenConversationWithSlackGo(t *testing.T) {
	s := start(t)
	ctx := t.Context()
	api := slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()))

	ch, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U0ALICE"}})
	if err != nil {
		t.Fatalf("conversations.open: %v", err)
	}
	if ch.ID != DMChannel("U0ALICE") || ch.ID != "D0ALICE" {
		t.Fatalf("conversations.open answered channel %q, want D0ALICE", ch.ID)
	}
	if _, _, err := api.PostMessageContext(ctx, ch.ID, slack.MsgOptionText("hi", false)); err != nil {
		t.Fatalf("chat.postMessage to the direct message: %v", err)
	}
	if top := s.State().TopLevel("D0ALICE"); len(top) != 1 || top[0].Text != "hi" {
		t.Errorf("direct message channel holds %+v", top)
	}
	for _, users := range [][]string{{"not-a-user"}, {"U0ALICE", "U0BOB"}, {BotUserID}} {
		if _, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: users}); err == nil {
			t.Errorf("conversations.open with %v succeeded", users)
		}
	}
}

func TestUsergroupsAndDMsKnowOnlyTheWorkspaceUsers(t *testing.T) {
	s, err := New(Config{Users: []User{{ID: "U0ALICE", Email: "alice@example.com"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx := t.Context()
	api := slack.New(s.BotToken(), slack.OptionAPIURL(s.APIURL()))

	if _, err := api.UpdateUserGroupMembersContext(ctx, "S0ONCALL", "U0ALICE"); err != nil {
		t.Errorf("update with a workspace user: %v", err)
	}
	_, err = api.UpdateUserGroupMembersContext(ctx, "S0ONCALL", "U0ALICE,U0STRANGER")
	if slackErr, ok := errors.AsType[slack.SlackErrorResponse](err); !ok || slackErr.Err != "failed_for_some_users" {
		t.Errorf("update with a stranger = %v, want failed_for_some_users", err)
	}
	if got := s.UsergroupUsers("S0ONCALL"); !slices.Equal(got, []string{"U0ALICE"}) {
		t.Errorf("user group %v after the refused update", got)
	}
	if _, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U0ALICE"}}); err != nil {
		t.Errorf("DM with a workspace user: %v", err)
	}
	_, _, _, err = api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U0STRANGER"}})
	if slackErr, ok := errors.AsType[slack.SlackErrorResponse](err); !ok || slackErr.Err != "user_not_found" {
		t.Errorf("DM with a stranger = %v, want user_not_found", err)
	}
}
