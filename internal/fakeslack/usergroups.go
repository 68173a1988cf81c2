package fakeslack

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
)

var (
	usergroupID = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
	userID      = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
)

// DMChannel is the id of the direct message conversation with a user that
// conversations.open answers: "D" and the user id without its first
// letter (U0ALICE: D0ALICE).
func DMChannel(user string) string { return "D" + user[1:] }

// UsergroupUsers returns the members of a user group, as the last
// usergroups.users.update (or SetUsergroupUsers) left them; nil if never
// set.
func (s *Server) UsergroupUsers(usergroup string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.usergroups[usergroup])
}

// SetUsergroupUsers sets the members of a user group, as a person can in
// Slack.
func (s *Server) SetUsergroupUsers(usergroup string, users ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setUsergroup(usergroup, slices.Clone(users))
	s.notify()
}

// setUsergroup stores a user group's members. Callers hold s.mu.
func (s *Server) setUsergroup(usergroup string, users []string) {
	if s.usergroups == nil {
		s.usergroups = map[string][]string{}
	}
	s.usergroups[usergroup] = users
}

// updateUsergroupUsers answers usergroups.users.update: it replaces every
// member of the group. Any well-formed user group id (S...) exists; the
// members must be users of the workspace (see Config.Users). As in Slack,
// a group cannot be emptied this way, and bots cannot be members.
func (s *Server) updateUsergroupUsers(p map[string]string) map[string]any {
	group := p["usergroup"]
	if problem := checkUsergroup(group); problem != nil {
		return problem
	}
	raw, ok := p["users"]
	if !ok {
		return slackError("missing_argument", "users")
	}
	users, err := userList(raw)
	if err != nil {
		return slackError("invalid_users", err.Error())
	}
	if len(users) == 0 {
		return slackError("no_users_provided")
	}
	for _, u := range users {
		if !userID.MatchString(u) {
			return slackError("invalid_users", "not a user id: "+u)
		}
		if u == BotUserID {
			return slackError("invalid_user", "bots cannot be members of a user group")
		}
		if _, ok := s.user(u); !ok {
			return slackError("failed_for_some_users", "no such user: "+u)
		}
	}
	s.setUsergroup(group, users)
	return map[string]any{"ok": true, "usergroup": map[string]any{
		"id": group, "team_id": TeamID, "is_usergroup": true, "users": users, "user_count": len(users),
	}}
}

// listUsergroupUsers answers usergroups.users.list.
func (s *Server) listUsergroupUsers(p map[string]string) map[string]any {
	group := p["usergroup"]
	if problem := checkUsergroup(group); problem != nil {
		return problem
	}
	users := slices.Clone(s.usergroups[group])
	if users == nil {
		users = []string{}
	}
	return map[string]any{"ok": true, "users": users}
}

func checkUsergroup(id string) map[string]any {
	switch {
	case id == "":
		return slackError("missing_argument", "usergroup")
	case !usergroupID.MatchString(id):
		return slackError("no_such_subteam")
	}
	return nil
}

// userList reads a users argument: a comma-separated string (spaces
// allowed around the commas) or, from a JSON body, an array of strings.
// Duplicates are dropped; the order is kept.
func userList(raw string) ([]string, error) {
	var items []string
	if strings.HasPrefix(strings.TrimSpace(raw), "[") {
		if err := json.Unmarshal([]byte(raw), &items); err != nil {
			return nil, err
		}
	} else {
		items = strings.Split(raw, ",")
	}
	var users []string
	for _, u := range items {
		if u = strings.TrimSpace(u); u != "" && !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	return users, nil
}

// openConversation answers conversations.open for a direct message with
// one user of the workspace (see Config.Users), the only kind the fake
// knows: the conversation's id is DMChannel(user).
func (s *Server) openConversation(p map[string]string) map[string]any {
	if ch := p["channel"]; ch != "" {
		if !strings.HasPrefix(ch, "D") || !s.channelExists(ch) {
			return slackError("channel_not_found")
		}
		return map[string]any{"ok": true, "no_op": true, "already_open": true, "channel": map[string]any{"id": ch}}
	}
	users, err := userList(p["users"])
	switch {
	case err != nil:
		return slackError("invalid_arguments", err.Error())
	case len(users) == 0:
		return slackError("users_list_not_supplied")
	case len(users) > 1:
		return slackError("invalid_arguments", "the fake opens direct messages with one user only")
	case users[0] == BotUserID:
		return slackError("cannot_dm_bot")
	}
	if _, ok := s.user(users[0]); !ok {
		return slackError("user_not_found")
	}
	return map[string]any{"ok": true, "channel": map[string]any{"id": DMChannel(users[0])}}
}
