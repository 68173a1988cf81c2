package config

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/oncallbot/oncall"
)

// This file decodes each part of the file and checks it. Each function
// reports problems at the line of the offending value, or at the line of
// its entry when a field is missing.

var (
	slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	e164        = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)
	tokenChars  = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)
)

const minTokenLen = 16

func (d *decoder) config(n *yaml.Node) *Config {
	c := &Config{}
	found := d.mapping(n, "config", map[string]field{
		"timezone": d.str(&c.Timezone),
		"admins":   d.refs(&c.Admins, refUser),
		"users": d.list(func(e *yaml.Node) {
			c.Users = append(c.Users, d.user(e))
		}),
		"schedules": d.list(func(e *yaml.Node) {
			c.Schedules = append(c.Schedules, d.schedule(e))
		}),
		"escalation_chains": d.list(func(e *yaml.Node) {
			c.EscalationChains = append(c.EscalationChains, d.chain(e))
		}),
		"integrations": d.list(func(e *yaml.Node) {
			c.Integrations = append(c.Integrations, d.integration(e))
		}),
		"routes": d.routes(&c.Routes),
	})
	if d.failed[n] {
		return c
	}
	d.checkTimezone(found, "timezone", c.Timezone)
	if !d.given(found, "integrations", len(c.Integrations) > 0) {
		d.errorf(found.line("integrations", 1), "integrations: at least one integration is required")
	}
	return c
}

func (d *decoder) user(n *yaml.Node) User {
	u := User{Line: n.Line}
	e := d.item(n, "user")
	if e == nil {
		return u
	}
	found := d.mapping(e, "user", map[string]field{
		"email":     d.str(&u.Email),
		"slack":     d.str(&u.Slack),
		"name":      d.str(&u.Name),
		"phone":     d.str(&u.Phone),
		"notify":    d.notifyRules(&u.Notify),
		"important": d.notifyRules(&u.Important),
	})
	if !d.given(found, "email", u.Email != "") && !d.given(found, "slack", u.Slack != "") {
		d.errorf(u.Line, "user: email or slack is required")
	}
	if u.Email != "" {
		line := found.line("email", u.Line)
		if !isEmail(u.Email) {
			d.errorf(line, "email: %q is not an email address", u.Email)
		}
		d.define(line, "email", "user", strings.ToLower(u.Email))
	}
	if u.Slack != "" {
		line := found.line("slack", u.Line)
		if !slackUserID.MatchString(u.Slack) {
			d.errorf(line, "slack: %q is not a Slack user id (like U0123456789)", u.Slack)
		}
		d.define(line, "slack", "user", u.Slack)
	}
	if u.Phone != "" && !e164.MatchString(u.Phone) {
		d.errorf(found.line("phone", u.Line), "phone: %q is not in E.164 form (+ and 8 to 15 digits, e.g. +4915100000001)", u.Phone)
	}
	if !d.given(found, "phone", u.Phone != "") {
		for _, r := range slices.Concat(u.Notify, u.Important) {
			if r.Channel == NotifySMS || r.Channel == NotifyCall {
				d.errorf(r.Line, "%s: %s needs a phone number", label("user", cmp.Or(u.Email, u.Slack)), r.Channel)
			}
		}
	}
	return u
}

func (d *decoder) notifyRules(dst *[]NotifyRule) field {
	return func(key string, v *yaml.Node) {
		d.sequence(v, key, func(e *yaml.Node) {
			if r, ok := d.notifyRule(e, key); ok {
				*dst = append(*dst, r)
			}
		})
	}
}

// notifyRule decodes a bare channel word or {wait: DURATION}.
func (d *decoder) notifyRule(n *yaml.Node, key string) (NotifyRule, bool) {
	const use = "use slack, sms, call or wait: 5m"
	r := NotifyRule{Line: n.Line}
	e := d.resolve(n)
	switch {
	case e == nil:
		d.errorf(n.Line, "%s: empty entry (%s)", key, use)
		return r, false
	case e.Kind == yaml.MappingNode:
		found := d.mapping(e, "notify rule", map[string]field{"wait": d.duration(&r.Wait)})
		if d.need(e.Line, "notify rule", found, "wait", !found.has("wait")) {
			d.checkPositive(found, "wait", r.Wait)
		}
		return r, r.Wait > 0
	}
	s, ok := d.scalar(e, key)
	if !ok {
		return r, false
	}
	switch s {
	case NotifySlack, NotifySMS, NotifyCall:
		r.Channel = s
		return r, true
	}
	d.errorf(e.Line, "%s: unknown channel %q (%s)", key, s, use)
	return r, false
}

func (d *decoder) schedule(n *yaml.Node) Schedule {
	s := Schedule{Line: n.Line}
	e := d.item(n, "schedule")
	if e == nil {
		return s
	}
	found := d.mapping(e, "schedule", map[string]field{
		"name":           d.str(&s.Name),
		"ical":           d.str(&s.ICal),
		"file":           d.str(&s.File),
		"overrides_ical": d.str(&s.OverridesICal),
		"channel":        d.str(&s.Channel),
		"usergroup":      d.str(&s.Usergroup),
		"timezone":       d.str(&s.Timezone),
		"rotation":       func(_ string, v *yaml.Node) { s.Rotation = d.rotation(v) },
		"rotations": d.list(func(e *yaml.Node) {
			if r := d.rotation(e); r != nil {
				s.Rotations = append(s.Rotations, *r)
			}
		}),
	})
	what := label("schedule", s.Name)
	if d.need(s.Line, what, found, "name", s.Name == "") {
		d.define(found.line("name", s.Line), "name", "schedule", s.Name)
	}
	var sources []string
	for _, src := range []struct {
		key string
		set bool
	}{{"ical", s.ICal != ""}, {"file", s.File != ""}, {"rotation", s.Rotation != nil}, {"rotations", len(s.Rotations) > 0}} {
		if d.given(found, src.key, src.set) {
			sources = append(sources, src.key)
		}
	}
	switch len(sources) {
	case 0:
		d.errorf(s.Line, "%s: one of ical, file, rotation or rotations is required", what)
	case 1:
	default:
		d.errorf(s.Line, "%s: use only one of ical, file, rotation or rotations, not %s", what, strings.Join(sources, " and "))
	}
	d.checkURL(found, "ical", s.ICal)
	d.checkURL(found, "overrides_ical", s.OverridesICal)
	d.checkChannel(found, "channel", s.Channel)
	d.checkTimezone(found, "timezone", s.Timezone)
	if s.File != "" && !filepath.IsAbs(s.File) {
		s.File = filepath.Join(filepath.Dir(d.file), s.File)
	}
	return s
}

// rotation returns nil when the rotation is absent or not a mapping.
func (d *decoder) rotation(n *yaml.Node) *Rotation {
	e := d.resolve(n)
	if e == nil {
		return nil
	}
	r := &Rotation{Line: e.Line}
	found := d.mapping(e, "rotation", map[string]field{
		"users":   d.refs(&r.Users, refUser),
		"shift":   d.duration(&r.Shift),
		"handoff": d.str(&r.Handoff),
		"window":  d.str(&r.Window),
	})
	if d.failed[e] {
		return nil
	}
	d.need(r.Line, "rotation", found, "users", len(r.Users) == 0)
	if d.need(r.Line, "rotation", found, "shift", !found.has("shift")) {
		d.checkPositive(found, "shift", r.Shift)
	}
	if d.need(r.Line, "rotation", found, "handoff", r.Handoff == "") {
		if _, err := time.Parse(HandoffLayout, r.Handoff); err != nil {
			d.errorf(found.line("handoff", r.Line), "handoff: invalid time %q (use a local time such as 2026-01-05T09:00:00)", r.Handoff)
		}
	}
	if r.Window != "" {
		if _, _, err := ParseWindow(r.Window); err != nil {
			d.errorf(found.line("window", r.Line), "%v", err)
		}
	}
	return r
}

func (d *decoder) chain(n *yaml.Node) EscalationChain {
	c := EscalationChain{Line: n.Line}
	e := d.item(n, "escalation chain")
	if e == nil {
		return c
	}
	found := d.mapping(e, "escalation chain", map[string]field{
		"name":         d.str(&c.Name),
		"repeat":       d.integer(&c.Repeat),
		"auto_resolve": d.duration(&c.AutoResolve),
		"ack_timeout":  d.duration(&c.AckTimeout),
		"steps": d.list(func(e *yaml.Node) {
			c.Steps = append(c.Steps, d.step(e))
		}),
	})
	what := label("escalation chain", c.Name)
	if d.need(c.Line, what, found, "name", c.Name == "") {
		d.define(found.line("name", c.Line), "name", refChain, c.Name)
	}
	if c.Repeat < 0 {
		d.errorf(found.line("repeat", c.Line), "repeat: must be 0 or more")
	}
	for key, v := range map[string]Duration{"auto_resolve": c.AutoResolve, "ack_timeout": c.AckTimeout} {
		if v < 0 {
			d.errorf(found.line(key, c.Line), "%s: must not be negative", key)
		}
	}
	if d.need(c.Line, what, found, "steps", len(c.Steps) == 0) &&
		!slices.ContainsFunc(c.Steps, func(s Step) bool { return s.Wait == 0 }) {
		d.errorf(c.Line, "%s: has only wait steps, add a step that notifies", what)
	}
	return c
}

// stepKeys lists the keys of a step, of which exactly one is set.
var stepKeys = []string{StepNotifySchedule, StepNotifyUsers, StepNotifyUsergroup, StepNotifyChannel, StepWait}

func (d *decoder) step(n *yaml.Node) Step {
	s := Step{Line: n.Line}
	e := d.item(n, "step")
	if e == nil {
		return s
	}
	found := d.mapping(e, "step", map[string]field{
		StepNotifySchedule:  d.ref(&s.NotifySchedule, refSchedule),
		StepNotifyUsers:     d.refs(&s.NotifyUsers, refUser),
		StepNotifyUsergroup: d.str(&s.NotifyUsergroup),
		StepNotifyChannel:   d.str(&s.NotifyChannel),
		StepWait:            d.duration(&s.Wait),
	})
	var set []string
	for _, key := range stepKeys {
		if _, ok := found.values[key]; ok {
			set = append(set, key)
		}
	}
	switch len(set) {
	case 0:
		if len(e.Content) == 0 { // otherwise only unknown keys, already reported
			d.errorf(s.Line, "step: empty, use one of %s", strings.Join(stepKeys, ", "))
		}
		return s
	case 1:
	default:
		d.errorf(s.Line, "step: use one key per step, not %s", strings.Join(set, " and "))
		return s
	}
	key := set[0]
	empty := map[string]bool{
		StepNotifySchedule:  s.NotifySchedule == "",
		StepNotifyUsers:     len(s.NotifyUsers) == 0,
		StepNotifyUsergroup: s.NotifyUsergroup == "",
		StepNotifyChannel:   s.NotifyChannel == "",
		StepWait:            !found.has(StepWait),
	}[key]
	if empty {
		if !d.failed[found.values[key]] {
			d.errorf(found.line(key, s.Line), "%s: a value is required", key)
		}
		return s
	}
	switch key {
	case StepNotifyChannel:
		if s.NotifyChannel != "here" && s.NotifyChannel != "channel" {
			d.errorf(found.line(key, s.Line), "notify_channel: must be here or channel, not %q", s.NotifyChannel)
		}
	case StepWait:
		d.checkPositive(found, key, s.Wait)
	}
	return s
}

func (d *decoder) integration(n *yaml.Node) Integration {
	in := Integration{Line: n.Line}
	e := d.item(n, "integration")
	if e == nil {
		return in
	}
	found := d.mapping(e, "integration", map[string]field{
		"name":       d.str(&in.Name),
		"kind":       d.str(&in.Kind),
		"token":      d.str(&in.Token),
		"channel":    d.str(&in.Channel),
		"escalation": d.ref(&in.Escalation, refChain),
		"routes":     d.routes(&in.Routes),
		"heartbeat":  d.duration(&in.Heartbeat),
		"maintenance": d.list(func(e *yaml.Node) {
			if w, ok := d.maintenanceWindow(e); ok {
				in.Maintenance = append(in.Maintenance, w)
			}
		}),
		"rate_limit": d.integer(&in.RateLimit),
		"group_key":  d.template(&in.GroupKey),
		"mapping":    d.templateMapping(&in.Mapping),
	})
	what := label("integration", in.Name)
	if d.need(in.Line, what, found, "name", in.Name == "") {
		d.define(found.line("name", in.Line), "name", "integration", in.Name)
	}
	if d.need(in.Line, what, found, "kind", in.Kind == "") && !slices.Contains(Kinds(), in.Kind) {
		if slices.Contains(plannedKinds, in.Kind) {
			d.errorf(found.line("kind", in.Line), "kind: %q is not supported yet (use one of %s)", in.Kind, strings.Join(Kinds(), ", "))
		} else {
			d.errorf(found.line("kind", in.Line), "kind: unknown kind %q (use one of %s)", in.Kind, strings.Join(Kinds(), ", "))
		}
	}
	if d.need(in.Line, what, found, "token", in.Token == "") {
		line := found.line("token", in.Line)
		switch {
		case len(in.Token) < minTokenLen:
			d.errorf(line, "token: too short, use at least %d random characters", minTokenLen)
		case !tokenChars.MatchString(in.Token):
			d.errorf(line, "token: use only letters, digits, '-', '_', '.' and '~' (it is part of a URL)")
		}
		prev, taken := d.tokens[in.Token]
		switch {
		case taken && prev == line:
			d.errorf(line, "token: shared by integrations through an alias or merge key, each integration needs its own")
		case taken:
			d.errorf(line, "token: already used at line %d, each integration needs its own", prev)
		default:
			d.tokens[in.Token] = line
		}
	}
	if d.need(in.Line, what, found, "channel", in.Channel == "") {
		d.checkChannel(found, "channel", in.Channel)
	}
	if h := in.Heartbeat; h != 0 && h < minHeartbeat && !d.failed[found.values["heartbeat"]] {
		d.errorf(found.line("heartbeat", in.Line), "heartbeat: must be at least %s (or 0: not watched)", minHeartbeat)
	}
	if found.has("rate_limit") && in.RateLimit < 1 && !d.failed[found.values["rate_limit"]] {
		d.errorf(found.line("rate_limit", in.Line), "rate_limit: must be at least 1 (requests per minute)")
	}
	if in.GroupKey != "" && (in.Kind == "pagerduty" || in.Kind == "opsgenie") {
		// Their acknowledge and resolve carry only the key the sender
		// chose: a template of anything else would not find the incident.
		d.errorf(found.line("group_key", in.Line),
			"group_key: integrations of kind %s are grouped by the sender's key (dedup_key, alias); remove group_key", in.Kind)
	}
	if len(in.Mapping) > 0 && in.Kind != "" && in.Kind != "webhook" {
		d.errorf(found.line("mapping", in.Line), "mapping: only integrations of kind webhook take a mapping, not kind %q (use group_key to group its alerts)", in.Kind)
	}
	return in
}

// minHeartbeat is the shortest heartbeat timeout: shorter ones would fire
// on the ordinary jitter of the monitoring tools that send them.
const minHeartbeat = Duration(10 * time.Second)

// maintenanceWindow decodes {start, end}; ok is false when either is
// missing or invalid.
func (d *decoder) maintenanceWindow(n *yaml.Node) (MaintenanceWindow, bool) {
	w := MaintenanceWindow{Line: n.Line}
	e := d.item(n, "maintenance window")
	if e == nil {
		return w, false
	}
	found := d.mapping(e, "maintenance window", map[string]field{
		"start": d.timestamp(&w.Start),
		"end":   d.timestamp(&w.End),
	})
	start := d.need(w.Line, "maintenance window", found, "start", w.Start.IsZero())
	end := d.need(w.Line, "maintenance window", found, "end", w.End.IsZero())
	if !start || !end {
		return w, false
	}
	if !w.End.After(w.Start) {
		d.errorf(found.line("end", w.Line), "end: must be after start")
		return w, false
	}
	return w, true
}

// routes decodes a list of routes into dst. A catch-all route matches
// every alert, so only the last route of a list may be one.
func (d *decoder) routes(dst *[]Route) field {
	return func(key string, v *yaml.Node) {
		catchAll := 0 // line of the catch-all route met so far
		d.sequence(v, key, func(e *yaml.Node) {
			r, all := d.route(e)
			if catchAll > 0 {
				d.errorf(r.Line, "route: routes after a catch-all route never match (the route at line %d has no match, match_re or not)", catchAll)
				catchAll = -1 // reported once per list
			} else if all && catchAll == 0 {
				catchAll = r.Line
			}
			*dst = append(*dst, r)
		})
	}
}

// route decodes one route; all reports a catch-all, a route without
// matchers. A matcher that could not be decoded or was misspelt (both
// reported) does not make one.
func (d *decoder) route(n *yaml.Node) (r Route, all bool) {
	r = Route{Line: n.Line}
	e := d.item(n, "route")
	if e == nil {
		return r, false
	}
	found := d.mapping(e, "route", map[string]field{
		"match":      d.stringMap(&r.Match),
		"match_re":   d.matchRE(&r.MatchRE),
		"not":        d.stringMap(&r.Not),
		"escalation": d.ref(&r.Escalation, refChain),
		"channel":    d.str(&r.Channel),
		"severity":   d.str(&r.Severity),
	})
	if !d.given(found, "escalation", r.Escalation != "") && !d.given(found, "channel", r.Channel != "") &&
		!d.given(found, "severity", r.Severity != "") {
		d.errorf(r.Line, "route: set channel, escalation, severity or several of them")
	}
	d.checkChannel(found, "channel", r.Channel)
	if _, ok := oncall.ParseSeverity(r.Severity); r.Severity != "" && !ok {
		d.errorf(found.line("severity", r.Line), "severity: unknown severity %q (use critical, error, warning or info)", r.Severity)
	}
	all = !d.given(found, "match", len(r.Match) > 0) && !d.given(found, "match_re", len(r.MatchRE) > 0) &&
		!d.given(found, "not", len(r.Not) > 0)
	return r, all
}

// matchRE decodes match_re, a mapping of labels to regular expressions,
// and reports each expression that does not compile at its line.
func (d *decoder) matchRE(dst *map[string]string) field {
	return func(key string, v *yaml.Node) {
		d.stringMap(dst)(key, v)
		n := d.resolve(v)
		if n == nil || n.Kind != yaml.MappingNode {
			return // reported by stringMap
		}
		checked := map[string]bool{}
		for _, p := range d.pairs(n, 0) {
			label := p.key.Value
			expr, ok := (*dst)[label]
			if !ok || checked[label] {
				continue // not decoded (reported), or overridden by an earlier key
			}
			checked[label] = true
			if _, err := compileMatchRE(expr); err != nil {
				d.errorf(p.value.Line, "%s.%s: invalid regexp %q: %s", key, label, expr, regexpProblem(err))
			}
		}
	}
}

// regexpProblem says what is wrong with an expression, without repeating
// the expression as the error of regexp/syntax does.
func regexpProblem(err error) string {
	if se, ok := errors.AsType[*syntax.Error](err); ok {
		return se.Code.String()
	}
	return err.Error()
}

// checkRefs reports names that refer to nothing defined in c.
func (d *decoder) checkRefs(c *Config) {
	defined := map[string]map[string]bool{refUser: {}, refSchedule: {}, refChain: {}}
	for _, u := range c.Users {
		for _, id := range []string{u.Email, u.Slack} {
			if id != "" {
				defined[refUser][strings.ToLower(id)] = true
			}
		}
	}
	for _, s := range c.Schedules {
		defined[refSchedule][s.Name] = true
	}
	for _, ch := range c.EscalationChains {
		defined[refChain][ch.Name] = true
	}
	for _, r := range d.pending {
		name := r.name
		if r.to == refUser {
			name = strings.ToLower(name)
		}
		if defined[r.to][name] {
			continue
		}
		if r.to == refUser {
			// A user needs an entry only for a phone or notification
			// rules; others are found in Slack by email or id.
			if !isEmail(r.name) && !slackUserID.MatchString(r.name) {
				d.errorf(r.line, "%s: %q is not a configured user, an email address or a Slack user id", r.key, r.name)
			}
		} else {
			d.errorf(r.line, "%s: no %s named %q", r.key, r.to, r.name)
		}
	}
}

func (d *decoder) checkPositive(found keys, key string, v Duration) {
	if v <= 0 && !d.failed[found.values[key]] {
		d.errorf(found.line(key, 1), "%s: must be positive", key)
	}
}

func (d *decoder) checkTimezone(found keys, key, name string) {
	if name == "" {
		return
	}
	if _, err := time.LoadLocation(name); err != nil {
		d.errorf(found.line(key, 1), "%s: unknown time zone %q", key, name)
	}
}

func (d *decoder) checkURL(found keys, key, value string) {
	if value == "" {
		return
	}
	u, err := url.Parse(value)
	switch {
	case err == nil && u.Scheme == "webcal":
		d.errorf(found.line(key, 1), "%s: use https:// instead of webcal://", key)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		d.errorf(found.line(key, 1), "%s: %q is not an http(s) URL", key, value)
	}
}

// checkChannel catches the usual mistake of a channel name for its id.
func (d *decoder) checkChannel(found keys, key, value string) {
	if strings.HasPrefix(value, "#") {
		d.errorf(found.line(key, 1), "%s: use the channel id (like C0123456789), not its name", key)
	}
}

// label names an entry in messages: `integration "prometheus"`, or just
// `integration` when it has no name.
func label(kind, name string) string {
	if name == "" {
		return kind
	}
	return fmt.Sprintf("%s %q", kind, name)
}

func isEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.ContainsAny(s, " \t<>,;") && !strings.Contains(domain, "@")
}
