package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// UserRef is a user from the config: the names schedules may use for them
// and who they are in Slack. Email, Slack or both identify the Slack user.
type UserRef struct {
	Email string
	Slack string // Slack user id, e.g. U0123456789
	Name  string // as calendars may name them, e.g. "Alice Smith"
}

// peopleTTL is how long an answer of Slack about a user is kept: an email
// looked up, a user's time zone.
const peopleTTL = time.Hour

// slackUsers is the part of the Slack API that tells who users are.
type slackUsers interface {
	GetUserByEmailContext(ctx context.Context, email string) (*slack.User, error)
	GetUserInfoContext(ctx context.Context, user string, options ...slack.GetUserInfoOption) (*slack.User, error)
}

// people maps the people schedules name (Shift.Person: a Slack id, an
// @handle, an email or a name) to Slack users, and back. Slack's answers
// are cached for peopleTTL; errors are not cached.
type people struct {
	api   slackUsers
	users []UserRef
	now   func() time.Time
	log   *slog.Logger

	mu      sync.Mutex
	byEmail map[string]cachedUser // lower-case email -> user
	byID    map[string]cachedUser // Slack id -> user
}

// cachedUser is Slack's answer about one user; a zero ID caches that
// there is no such user.
type cachedUser struct {
	ID    string
	Email string
	TZ    string
	at    time.Time
}

func newPeople(api slackUsers, users []UserRef, now func() time.Time, log *slog.Logger) *people {
	return &people{api: api, users: users, now: now, log: log,
		byEmail: map[string]cachedUser{}, byID: map[string]cachedUser{}}
}

var mention = regexp.MustCompile(`^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$`)

// SlackUser returns the Slack user id of a person as a schedule names
// them (a Slack id or mention, an email, a config user's name, an
// @handle), and false when nobody matches or Slack could not be asked.
// Answers of Slack are cached.
func (b *Bot) SlackUser(ctx context.Context, person string) (string, bool) {
	return b.sched.people.slackID(ctx, person)
}

// LookupSlackUser is SlackUser telling a person nobody matches (false, nil
// error) from one Slack could not be asked about now (an error: the
// network, a server error, a rate limit). It is a SlackUserFunc, for the
// Announcer.
func (b *Bot) LookupSlackUser(ctx context.Context, person string) (string, bool, error) {
	return b.sched.people.lookupSlackID(ctx, person)
}

// isSlackID says whether s is a Slack user id: U or W, then capitals and
// digits with at least one digit (so that "UWE", a name, is not one).
func isSlackID(s string) bool {
	return slackUserID.MatchString(s) && strings.ContainsAny(s, "0123456789")
}

// slackID returns the Slack user id of a person as a schedule names them,
// and false when nobody matches or Slack could not be asked (logged).
func (p *people) slackID(ctx context.Context, person string) (string, bool) {
	id, ok, err := p.lookupSlackID(ctx, person)
	if err != nil {
		p.log.Warn("look up a Slack user", "person", person, "err", err)
		return "", false
	}
	return id, ok
}

// lookupSlackID returns the Slack user id of a person as a schedule names
// them, false when nobody matches, and an error when Slack could not be
// asked now (see transientSlackError). "U0123" and "<@U0123>" are ids
// already; config users match by Slack id, email or name (an "@handle" by
// name or by the part of their email before the @, when only one user has
// it); an email of nobody in the config is looked up in Slack.
func (p *people) lookupSlackID(ctx context.Context, person string) (string, bool, error) {
	s := strings.TrimSpace(person)
	if strings.HasPrefix(strings.ToLower(s), "mailto:") {
		s = s[len("mailto:"):]
	}
	if m := mention.FindStringSubmatch(s); m != nil {
		return m[1], true, nil
	}
	if isSlackID(s) {
		return s, true, nil
	}
	handle, isHandle := strings.CutPrefix(s, "@")
	if u, ok := p.configUser(s, handle, isHandle); ok {
		if u.Slack != "" {
			return u.Slack, true, nil
		}
		return p.lookupEmail(ctx, u.Email)
	}
	if isEmail(s) {
		return p.lookupEmail(ctx, s)
	}
	return "", false, nil
}

// configUser finds the config user a person string names.
func (p *people) configUser(s, handle string, isHandle bool) (UserRef, bool) {
	for _, u := range p.users {
		if strings.EqualFold(u.Slack, s) && u.Slack != "" || strings.EqualFold(u.Email, s) && u.Email != "" ||
			u.Name != "" && (strings.EqualFold(u.Name, s) || isHandle && strings.EqualFold(u.Name, handle)) {
			return u, true
		}
	}
	if !isHandle || handle == "" {
		return UserRef{}, false
	}
	var found []UserRef
	for _, u := range p.users {
		if local, _, ok := strings.Cut(u.Email, "@"); ok && strings.EqualFold(local, handle) {
			found = append(found, u)
		}
	}
	if len(found) == 1 {
		return found[0], true
	}
	return UserRef{}, false
}

func isEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && strings.Contains(s, "@")
}

// lookupEmail asks Slack for the user with the email, through the cache.
// A refusal of Slack that asking again will not change (a missing scope)
// is logged and answers "nobody"; a transient failure is an error. Only
// answers are cached.
func (p *people) lookupEmail(ctx context.Context, email string) (string, bool, error) {
	if email == "" {
		return "", false, nil
	}
	key := strings.ToLower(email)
	p.mu.Lock()
	c, ok := p.byEmail[key]
	p.mu.Unlock()
	if ok && p.now().Sub(c.at) < peopleTTL {
		return c.ID, c.ID != "", nil
	}
	u, err := p.api.GetUserByEmailContext(ctx, email)
	switch {
	case slackErrorIs(err, "users_not_found"):
		c = cachedUser{Email: email, at: p.now()}
	case err != nil && transientSlackError(err):
		return "", false, fmt.Errorf("look up the Slack user with email %q: %w", email, err)
	case err != nil:
		p.log.Warn("look up a Slack user by email", "email", email, "err", err)
		return "", false, nil
	default:
		c = cachedUser{ID: u.ID, Email: email, TZ: u.TZ, at: p.now()}
	}
	p.mu.Lock()
	p.byEmail[key] = c
	p.mu.Unlock()
	return c.ID, c.ID != "", nil
}

// transientSlackError says whether a failed call of Slack may succeed if
// made again: it failed on the way (network, timeout, HTTP status, rate
// limit) or Slack says it had a problem of its own. Other errors Slack
// answers with (missing_scope, invalid_auth, ...) stay until someone acts.
func transientSlackError(err error) bool {
	var slackErr slack.SlackErrorResponse
	if !errors.As(err, &slackErr) {
		return true
	}
	switch slackErr.Err {
	case "internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited":
		return true
	}
	return false
}

// info returns what Slack says of a user (email, time zone), through the
// cache; ok is false when Slack could not tell.
func (p *people) info(ctx context.Context, id string) (cachedUser, bool) {
	p.mu.Lock()
	c, ok := p.byID[id]
	p.mu.Unlock()
	if ok && p.now().Sub(c.at) < peopleTTL {
		return c, true
	}
	u, err := p.api.GetUserInfoContext(ctx, id)
	if err != nil {
		p.log.Warn("get a Slack user's profile", "user", id, "err", err)
		return cachedUser{}, false
	}
	c = cachedUser{ID: u.ID, Email: u.Profile.Email, TZ: u.TZ, at: p.now()}
	p.mu.Lock()
	p.byID[id] = c
	p.mu.Unlock()
	return c, true
}

// location is the user's time zone in Slack, UTC when unknown.
func (p *people) location(ctx context.Context, id string) *time.Location {
	c, ok := p.info(ctx, id)
	if !ok || c.TZ == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(c.TZ)
	if err != nil {
		p.log.Warn("unknown time zone of a Slack user", "user", id, "tz", c.TZ)
		return time.UTC
	}
	return loc
}

// personFor is how an override names a Slack user: as the config names
// them (their email when the config knows them by email only), so that
// the rest of oncall finds their config entry; else their Slack id.
func (p *people) personFor(ctx context.Context, id string) string {
	for _, u := range p.users {
		if strings.EqualFold(u.Slack, id) {
			return id
		}
	}
	hasEmailOnly := false
	for _, u := range p.users {
		if u.Slack == "" && u.Email != "" {
			hasEmailOnly = true
		}
	}
	if !hasEmailOnly {
		return id
	}
	if c, ok := p.info(ctx, id); ok && c.Email != "" {
		for _, u := range p.users {
			if u.Slack == "" && strings.EqualFold(u.Email, c.Email) {
				return u.Email
			}
		}
	}
	return id
}
