package schedule

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
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
	feeds  []feed // one per schedule and person, tokens made once
	log    *slog.Logger
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]cachedFeed // by token
	// slackUser, once Links has it, matches people as Slack does too
	// (handles, emails of people the config knows by Slack id), so a
	// person's feed holds the shifts the bot shows them.
	slackUser func(ctx context.Context, person string) (string, bool)
}

// feed is a schedule's or a person's feed.
type feed struct {
	token    string
	schedule string  // set for a schedule's feed
	person   *Person // set for a person's feed
}

// cachedFeed is an exported feed kept for feedCacheTTL: calendar apps poll
// often, and a person's feed reads every schedule.
type cachedFeed struct {
	body    []byte
	at      time.Time
	version uint64 // of the service's answers it was made from
}

// feedCacheTTL matches how often the service reads overrides made through
// other replicas; changes made through this one drop the cache at once.
const feedCacheTTL = svcMaxAge

// Feeds cover this much of the past and the future.
const (
	feedPast   = 30 * 24 * time.Hour
	feedFuture = 180 * 24 * time.Hour
)

// NewCalendars returns the calendar feeds of svc's schedules and of people.
func NewCalendars(secret []byte, svc *Service, people []Person, log *slog.Logger) *Calendars {
	c := &Calendars{secret: secret, svc: svc, dir: NewDirectory(people), people: people, log: log, now: time.Now,
		cache: map[string]cachedFeed{}}
	for _, name := range svc.Schedules() {
		c.feeds = append(c.feeds, feed{token: c.ScheduleToken(name), schedule: name})
	}
	for i := range c.people {
		c.feeds = append(c.feeds, feed{token: c.PersonToken(c.people[i]), person: &c.people[i]})
	}
	return c
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
	f, found := c.find(token)
	if !found {
		calendarError(w, http.StatusNotFound, "no such calendar")
		return
	}
	body, err := c.export(r.Context(), f)
	if err != nil {
		c.log.Error("calendar feed", "err", err)
		calendarError(w, http.StatusInternalServerError, "could not build the calendar")
		return
	}
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	w.Header().Set("Cache-Control", "private, max-age=300")
	_, _ = w.Write(body)
}

// find compares token with every feed's token in constant time.
func (c *Calendars) find(token string) (feed, bool) {
	var found feed
	ok := false
	for _, f := range c.feeds {
		if equalToken(token, f.token) {
			found, ok = f, true
		}
	}
	return found, ok
}

// export returns the feed's calendar, from the cache when fresh.
func (c *Calendars) export(ctx context.Context, f feed) ([]byte, error) {
	now, version := c.now(), c.svc.version()
	c.mu.Lock()
	cached, ok := c.cache[f.token]
	c.mu.Unlock()
	if ok && cached.version == version && now.Sub(cached.at) < feedCacheTTL {
		return cached.body, nil
	}
	name, shifts, err := c.shifts(ctx, f, now)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := ExportICal(&buf, name, shifts); err != nil {
		return nil, fmt.Errorf("export calendar %q: %w", name, err)
	}
	c.mu.Lock()
	c.cache[f.token] = cachedFeed{body: buf.Bytes(), at: now, version: version}
	c.mu.Unlock()
	return buf.Bytes(), nil
}

// samePerson returns whether a shift's person is p: by the config's
// names, or as the same Slack user.
func (c *Calendars) samePerson(ctx context.Context, p Person) func(name string) bool {
	c.mu.Lock()
	lookup := c.slackUser
	c.mu.Unlock()
	want := p.Slack
	if want == "" && p.Email != "" && lookup != nil {
		want, _ = lookup(ctx, p.Email)
	}
	return func(name string) bool {
		if c.dir.Matches(name, p) {
			return true
		}
		if lookup == nil || want == "" {
			return false
		}
		got, ok := lookup(ctx, name)
		return ok && got == want
	}
}

// shifts returns the feed's name and shifts around now.
func (c *Calendars) shifts(ctx context.Context, f feed, now time.Time) (string, []oncall.Shift, error) {
	from, to := now.Add(-feedPast), now.Add(feedFuture)
	if f.person == nil {
		shifts, err := c.svc.Shifts(ctx, f.schedule, from, to)
		return f.schedule, shifts, err
	}
	same := c.samePerson(ctx, *f.person)
	var mine []oncall.Shift
	for _, name := range c.svc.Schedules() {
		shifts, err := c.svc.Shifts(ctx, name, from, to)
		if err != nil {
			return "", nil, err
		}
		for _, s := range shifts {
			if same(s.Person) {
				mine = append(mine, s)
			}
		}
	}
	label := f.person.Name
	if label == "" {
		label = f.person.Key()
	}
	return "On call: " + label, mine, nil
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
	c.mu.Lock()
	c.slackUser = slackUser
	c.mu.Unlock()
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
