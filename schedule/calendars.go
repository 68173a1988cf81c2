package schedule

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/oncallbot/oncall"
)

// Calendars serves every schedule and every person as an iCal feed that
// Google Calendar and Outlook can subscribe to, at GET /calendars/{token}.ics.
// A token is an HMAC of the schedule or person under a secret the replicas
// share, so the URLs are unguessable and stay the same across restarts.
type Calendars struct {
	secret []byte
	svc    *Service
	dir    *Directory
	people []Person
	log    *slog.Logger
	now    func() time.Time
}

// Feeds cover this much of the past and the future.
const (
	feedPast   = 30 * 24 * time.Hour
	feedFuture = 180 * 24 * time.Hour
)

// NewCalendars returns the calendar feeds of svc's schedules and of people.
func NewCalendars(secret []byte, svc *Service, people []Person, log *slog.Logger) *Calendars {
	return &Calendars{secret: secret, svc: svc, dir: NewDirectory(people), people: people, log: log, now: time.Now}
}

// ScheduleToken is the token of a schedule's feed.
func (c *Calendars) ScheduleToken(name string) string { return c.token("schedule\x00" + name) }

// PersonToken is the token of a person's feed (their shifts in every schedule).
func (c *Calendars) PersonToken(p Person) string { return c.token("person\x00" + p.Key()) }

func (c *Calendars) token(what string) string {
	m := hmac.New(sha256.New, c.secret)
	m.Write([]byte(what))
	return hex.EncodeToString(m.Sum(nil)[:20])
}

// Path is the URL path of a feed token.
func Path(token string) string { return "/calendars/" + token + ".ics" }

// Register adds the feeds to mux.
func (c *Calendars) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /calendars/{file}", c.serve)
}

func (c *Calendars) serve(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutSuffix(r.PathValue("file"), ".ics")
	if !ok {
		calendarError(w, http.StatusNotFound, "no such calendar")
		return
	}
	name, shifts, found, err := c.feed(r, token)
	if err != nil {
		c.log.Error("calendar feed", "err", err)
		calendarError(w, http.StatusInternalServerError, "could not build the calendar")
		return
	}
	if !found {
		calendarError(w, http.StatusNotFound, "no such calendar")
		return
	}
	var buf bytes.Buffer
	if err := ExportICal(&buf, name, shifts); err != nil {
		c.log.Error("calendar feed", "calendar", name, "err", err)
		calendarError(w, http.StatusInternalServerError, "could not build the calendar")
		return
	}
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	w.Header().Set("Cache-Control", "private, max-age=300")
	_, _ = w.Write(buf.Bytes())
}

// feed finds the schedule or person of token, comparing it with every
// token in constant time, and returns their shifts.
func (c *Calendars) feed(r *http.Request, token string) (string, []oncall.Shift, bool, error) {
	now := c.now()
	from, to := now.Add(-feedPast), now.Add(feedFuture)
	var schedule string
	var person *Person
	for _, name := range c.svc.Schedules() {
		if equalToken(token, c.ScheduleToken(name)) {
			schedule = name
		}
	}
	for i := range c.people {
		if equalToken(token, c.PersonToken(c.people[i])) {
			person = &c.people[i]
		}
	}
	switch {
	case schedule != "":
		shifts, err := c.svc.Shifts(r.Context(), schedule, from, to)
		return schedule, shifts, true, err
	case person != nil:
		var mine []oncall.Shift
		for _, name := range c.svc.Schedules() {
			shifts, err := c.svc.Shifts(r.Context(), name, from, to)
			if err != nil {
				return "", nil, false, err
			}
			for _, s := range shifts {
				if c.dir.Matches(s.Person, *person) {
					mine = append(mine, s)
				}
			}
		}
		label := person.Name
		if label == "" {
			label = person.Key()
		}
		return "On call: " + label, mine, true, nil
	}
	return "", nil, false, nil
}

func equalToken(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func calendarError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// Links makes the feeds' full URLs under base (the server's public URL,
// e.g. https://oncall.example.com; empty gives paths). slackUser maps a
// person's email to their Slack user, for people the config knows by email.
func (c *Calendars) Links(base string, slackUser func(ctx context.Context, person string) (string, bool)) *Links {
	return &Links{base: strings.TrimSuffix(base, "/"), cal: c, slackUser: slackUser}
}

// Links are the feed URLs that the bot shows.
type Links struct {
	base      string
	cal       *Calendars
	slackUser func(ctx context.Context, person string) (string, bool)
}

// ScheduleFeed is the URL of a schedule's feed.
func (l *Links) ScheduleFeed(schedule string) string {
	return l.base + Path(l.cal.ScheduleToken(schedule))
}

// PersonFeed is the URL of the feed of the config's person who is the
// Slack user, if there is one.
func (l *Links) PersonFeed(ctx context.Context, slackUser string) (string, bool) {
	for _, p := range l.cal.people {
		match := p.Slack != "" && p.Slack == slackUser
		if !match && p.Slack == "" && p.Email != "" && l.slackUser != nil {
			id, ok := l.slackUser(ctx, p.Email)
			match = ok && id == slackUser
		}
		if match {
			return l.base + Path(l.cal.PersonToken(p)), true
		}
	}
	return "", false
}
