// Package config reads the oncall YAML config file: users, schedules,
// escalation chains and integrations.
//
// Parse and Load report every problem of a file at once, each as
// "FILE:LINE: message" (see Errors). Scalar values may refer to the
// environment with ${NAME}; $${ stands for a literal ${.
package config

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"time"

	"github.com/oncallbot/oncall"
)

// Config is a parsed and validated config file.
type Config struct {
	// Timezone is the default time zone of schedules; empty means UTC.
	Timezone string `yaml:"timezone,omitempty"`
	// Admins may give away and cancel anyone's shifts in Slack: user
	// emails or Slack ids.
	Admins           []string          `yaml:"admins,omitempty"`
	Users            []User            `yaml:"users,omitempty"`
	Schedules        []Schedule        `yaml:"schedules,omitempty"`
	EscalationChains []EscalationChain `yaml:"escalation_chains,omitempty"`
	Integrations     []Integration     `yaml:"integrations"`
	// Routes are global: tried for every integration after its own.
	Routes []Route `yaml:"routes,omitempty"`
}

// User is a person who can be paged. Email or Slack identifies the Slack
// user. Rotations and notify_users steps refer to users by either; a
// reference may also name someone without an entry, by email or Slack id,
// who then has no phone and the default notification plan (see
// Config.User).
type User struct {
	Email string `yaml:"email,omitempty"`
	Slack string `yaml:"slack,omitempty"` // Slack user id, e.g. U0123456789
	Name  string `yaml:"name,omitempty"`
	Phone string `yaml:"phone,omitempty"` // E.164, e.g. +4915100000001
	// Notify is the personal notification plan; Important replaces it for
	// critical alerts. Either may be empty (the default plan applies).
	Notify    []NotifyRule `yaml:"notify,omitempty"`
	Important []NotifyRule `yaml:"important,omitempty"`
	Line      int          `yaml:"-"`
}

// Notification channels of a NotifyRule.
const (
	NotifySlack = "slack"
	NotifySMS   = "sms"
	NotifyCall  = "call"
)

// NotifyRule is one step of a personal notification plan: either a channel
// (NotifySlack, NotifySMS, NotifyCall), written as a bare word, or a pause,
// written as {wait: 5m}. Exactly one of Channel and Wait is set.
type NotifyRule struct {
	Channel string
	Wait    Duration
	Line    int
}

// MarshalYAML writes the rule in the form Parse reads.
func (r NotifyRule) MarshalYAML() (any, error) {
	if r.Channel != "" {
		return r.Channel, nil
	}
	return map[string]Duration{"wait": r.Wait}, nil
}

// Schedule says who is on call when. Exactly one of ICal, File, Rotation
// and Rotations is set. Rotations is follow-the-sun: several rotations,
// each with its daily window.
type Schedule struct {
	Name string `yaml:"name"`
	ICal string `yaml:"ical,omitempty"` // http(s) URL of an iCal feed
	// File is an iCal file; a relative path is resolved against the
	// directory of the config file.
	File          string     `yaml:"file,omitempty"`
	OverridesICal string     `yaml:"overrides_ical,omitempty"`
	Channel       string     `yaml:"channel,omitempty"`   // Slack channel id for handoff announcements
	Usergroup     string     `yaml:"usergroup,omitempty"` // Slack user group id kept equal to who is on call
	Timezone      string     `yaml:"timezone,omitempty"`  // empty means Config.Timezone
	Rotation      *Rotation  `yaml:"rotation,omitempty"`
	Rotations     []Rotation `yaml:"rotations,omitempty"`
	Line          int        `yaml:"-"`
}

// AllRotations returns the schedule's rotations, from either form.
func (s Schedule) AllRotations() []Rotation {
	if s.Rotation != nil {
		return append([]Rotation{*s.Rotation}, s.Rotations...)
	}
	return s.Rotations
}

// HandoffLayout is the layout of Rotation.Handoff: a local time in the
// schedule's time zone.
const HandoffLayout = "2006-01-02T15:04:05"

// Rotation hands the schedule from one user to the next every Shift,
// starting with Users[0] at Handoff.
type Rotation struct {
	Users   []string `yaml:"users"` // user emails or Slack ids
	Shift   Duration `yaml:"shift"`
	Handoff string   `yaml:"handoff"` // HandoffLayout
	// Window limits the rotation to a daily local window, "08:00-16:00"
	// (the end may be before the start to cross midnight); empty: all day.
	Window string `yaml:"window,omitempty"`
	Line   int    `yaml:"-"`
}

// ParseWindow reads a daily window "HH:MM-HH:MM" as offsets from local
// midnight.
func ParseWindow(s string) (start, end time.Duration, err error) {
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("window %q: use HH:MM-HH:MM, such as 08:00-16:00", s)
	}
	clock := func(v string) (time.Duration, error) {
		v = strings.TrimSpace(v)
		if v == "24:00" {
			return 24 * time.Hour, nil
		}
		t, err := time.Parse("15:04", v)
		if err != nil {
			return 0, fmt.Errorf("window %q: %q is not a time such as 08:00", s, v)
		}
		return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
	}
	if start, err = clock(from); err != nil {
		return 0, 0, err
	}
	if end, err = clock(to); err != nil {
		return 0, 0, err
	}
	if start == end {
		return 0, 0, fmt.Errorf("window %q is empty", s)
	}
	return start, end, nil
}

// EscalationChain is the ordered steps taken for an incident until someone
// acknowledges it. The steps run Repeat more times after the first pass.
type EscalationChain struct {
	Name   string `yaml:"name"`
	Repeat int    `yaml:"repeat,omitempty"`
	// AutoResolve resolves an incident nobody acknowledged this long after
	// the chain's last step; zero never does.
	AutoResolve Duration `yaml:"auto_resolve,omitempty"`
	// AckTimeout restarts the chain of an incident acknowledged this long
	// ago and not resolved; zero never does.
	AckTimeout Duration `yaml:"ack_timeout,omitempty"`
	Steps      []Step   `yaml:"steps"`
	Line       int      `yaml:"-"`
}

// Step keys, as written in the file and returned by Step.Kind.
const (
	StepNotifySchedule  = "notify_schedule"
	StepNotifyUsers     = "notify_users"
	StepNotifyUsergroup = "notify_usergroup"
	StepNotifyChannel   = "notify_channel"
	StepWait            = "wait"
)

// Step is one step of an escalation chain; exactly one field is set.
type Step struct {
	NotifySchedule  string   `yaml:"notify_schedule,omitempty"`  // schedule name
	NotifyUsers     []string `yaml:"notify_users,omitempty"`     // user emails or Slack ids
	NotifyUsergroup string   `yaml:"notify_usergroup,omitempty"` // Slack user group id
	NotifyChannel   string   `yaml:"notify_channel,omitempty"`   // "here" or "channel"
	Wait            Duration `yaml:"wait,omitempty"`
	Line            int      `yaml:"-"`
}

// Kind returns the key of the step's field that is set (StepWait, ...).
func (s Step) Kind() string {
	switch {
	case s.NotifySchedule != "":
		return StepNotifySchedule
	case len(s.NotifyUsers) > 0:
		return StepNotifyUsers
	case s.NotifyUsergroup != "":
		return StepNotifyUsergroup
	case s.NotifyChannel != "":
		return StepNotifyChannel
	case s.Wait > 0:
		return StepWait
	}
	return ""
}

// Integration is an inbound alert source.
type Integration struct {
	Name       string  `yaml:"name"`
	Kind       string  `yaml:"kind"` // one of Kinds()
	Token      string  `yaml:"token"`
	Channel    string  `yaml:"channel"`              // Slack channel id for its incidents
	Escalation string  `yaml:"escalation,omitempty"` // escalation chain name
	Routes     []Route `yaml:"routes,omitempty"`
	// Heartbeat, if set, is how long the integration may stay silent on
	// its heartbeat URL before an incident is opened (at least 10s).
	Heartbeat   Duration            `yaml:"heartbeat,omitempty"`
	Maintenance []MaintenanceWindow `yaml:"maintenance,omitempty"`
	// RateLimit is requests per minute accepted before 429; 0 means the
	// default.
	RateLimit int `yaml:"rate_limit,omitempty"`
	// GroupKey, if set, is a text/template of the payload whose result
	// groups the integration's alerts instead of its kind's default.
	GroupKey string `yaml:"group_key,omitempty"`
	// Mapping (webhook kind) holds text/templates of the payload for the
	// fields of an alert, by field (integrations.MappingFields).
	Mapping map[string]string `yaml:"mapping,omitempty"`
	Line    int               `yaml:"-"`
}

// MaintenanceWindow is a time when the integration's alerts are stored and
// shown but nobody is paged: [Start, End), both in UTC.
type MaintenanceWindow struct {
	Start time.Time `yaml:"start"`
	End   time.Time `yaml:"end"`
	Line  int       `yaml:"-"`
}

// Route sends the alerts whose labels match to another escalation chain
// and/or channel, and may override their severity: the first matching
// route of an integration, then of the global routes, wins, and its
// Escalation, Channel and Severity, where set, replace the integration's
// (or the source's). A route matches when every label of Match has its
// value, every label of MatchRE matches its regular expression (RE2, the
// whole value) and no label of Not has its value; an absent label has the
// empty value. A route without any matcher matches every alert.
type Route struct {
	Match      map[string]string `yaml:"match,omitempty"`
	MatchRE    map[string]string `yaml:"match_re,omitempty"`
	Not        map[string]string `yaml:"not,omitempty"`
	Escalation string            `yaml:"escalation,omitempty"`
	Channel    string            `yaml:"channel,omitempty"`
	// Severity as written: one of critical, error, warning, info or a
	// name oncall.ParseSeverity knows.
	Severity string `yaml:"severity,omitempty"`
	Line     int    `yaml:"-"`
}

// CatchAll reports whether the route has no matcher: it matches every alert.
func (r Route) CatchAll() bool {
	return len(r.Match) == 0 && len(r.MatchRE) == 0 && len(r.Not) == 0
}

// compileMatchRE compiles a match_re expression to match whole values.
func compileMatchRE(expr string) (*regexp.Regexp, error) {
	// Checked alone first: "a)|(b" would compile once wrapped, unanchored.
	if _, err := syntax.Parse(expr, syntax.Perl); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + expr + `)$`)
}

// oncall returns the route as a domain value. A route whose expression
// does not compile, possible only in a Config not made by Parse, is left
// out (ok false): it cannot match anything.
func (r Route) oncall() (oncall.Route, bool) {
	out := oncall.Route{
		Match:      maps.Clone(r.Match),
		NotMatch:   maps.Clone(r.Not),
		Channel:    r.Channel,
		Escalation: r.Escalation,
	}
	out.Severity, _ = oncall.ParseSeverity(r.Severity)
	if len(r.MatchRE) > 0 {
		out.MatchRE = make(map[string]*regexp.Regexp, len(r.MatchRE))
	}
	for label, expr := range r.MatchRE {
		re, err := compileMatchRE(expr)
		if err != nil {
			return oncall.Route{}, false
		}
		out.MatchRE[label] = re
	}
	return out, true
}

// Kinds returns the integration kinds a config may use.
func Kinds() []string {
	return []string{"alertmanager", "grafana", "opsgenie", "pagerduty", "sns", "webhook"}
}

// plannedKinds are sources still to come; naming one is an error that says so.
var plannedKinds []string

// Duration is a time.Duration written as a Go duration string (30s, 5m, 12h).
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML writes the duration in the form Parse reads.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// User returns the user a rotation, a notify_users step or a calendar
// refers to: by email (with or without "mailto:"), by Slack id ("U0123",
// "<@U0123>", "@U0123") or by name, ignoring case. For someone without an
// entry it returns a User with just that email or Slack id, and false.
func (c *Config) User(ref string) (User, bool) {
	ref = strings.TrimSpace(ref)
	email := ref
	if len(email) > len("mailto:") && strings.EqualFold(email[:len("mailto:")], "mailto:") {
		email = email[len("mailto:"):]
	}
	id := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(ref, "<@"), "@"), ">")
	for _, u := range c.Users {
		switch {
		case u.Email != "" && strings.EqualFold(u.Email, email),
			u.Slack != "" && strings.EqualFold(u.Slack, id),
			u.Name != "" && strings.EqualFold(u.Name, ref):
			return u, true
		}
	}
	if strings.Contains(ref, "@") {
		return User{Email: ref}, false
	}
	return User{Slack: ref}, false
}

// OncallIntegrations returns the integrations as domain values, routes
// included: each integration's own, then the global ones. (A method cannot
// share the name of the Integrations field.)
func (c *Config) OncallIntegrations() []oncall.Integration {
	out := make([]oncall.Integration, len(c.Integrations))
	for i, in := range c.Integrations {
		out[i] = oncall.Integration{
			Name:       in.Name,
			Kind:       in.Kind,
			Token:      in.Token,
			Channel:    in.Channel,
			Escalation: in.Escalation,
			Heartbeat:  time.Duration(in.Heartbeat),
			RateLimit:  in.RateLimit,
			GroupKey:   in.GroupKey,
			Mapping:    maps.Clone(in.Mapping),
		}
		for _, w := range in.Maintenance {
			out[i].Maintenance = append(out[i].Maintenance, oncall.TimeRange{Start: w.Start, End: w.End})
		}
		// The global routes come after the integration's own.
		for _, r := range slices.Concat(in.Routes, c.Routes) {
			if rt, ok := r.oncall(); ok {
				out[i].Routes = append(out[i].Routes, rt)
			}
		}
	}
	return out
}

// Load reads and parses the config file at path. lookupEnv resolves
// ${NAME} references; nil means os.LookupEnv. Problems in the file are
// returned as Errors; a file that cannot be read gives a plain error.
func Load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, lookupEnv)
}

// Parse parses and validates a config file. filename is used in messages
// and to resolve relative schedule files. lookupEnv resolves ${NAME}
// references; nil means os.LookupEnv. On any problem it returns Errors
// listing all of them, sorted by line.
func Parse(filename string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	d := newDecoder(filename, lookupEnv)
	c := d.decodeFile(data)
	if len(d.errs) > 0 {
		return nil, d.result()
	}
	return c, nil
}
