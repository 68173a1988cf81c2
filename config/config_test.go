package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/internal/golden"
)

// testEnv is the environment the test files and examples/oncall.yaml are
// parsed with; the example uses every variable.
var testEnv = map[string]string{
	"PROM_TOKEN":           "prom-0123456789abcdef",
	"GRAFANA_TOKEN":        "grafana-0123456789abcdef",
	"DEPLOY_WEBHOOK_TOKEN": "deploy-0123456789abcdef",
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

func TestParseSmallest(t *testing.T) {
	c, err := Load("testdata/valid/smallest.yaml", lookup(testEnv))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{Integrations: []Integration{{
		Name: "prometheus", Kind: "alertmanager", Token: "prom-0123456789abcdef", Channel: "C0123456789", Line: 2,
	}}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

func TestParseFuller(t *testing.T) {
	c, err := Load("testdata/valid/fuller.yaml", lookup(testEnv))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Timezone: "Europe/Berlin",
		Users: []User{{
			Email: "alice@example.com",
			Phone: "+4915100000001",
			Notify: []NotifyRule{
				{Channel: NotifySlack, Line: 6},
				{Wait: Duration(5 * time.Minute), Line: 7},
				{Channel: NotifySMS, Line: 8},
				{Wait: Duration(5 * time.Minute), Line: 9},
				{Channel: NotifyCall, Line: 10},
			},
			Line: 3,
		}},
		Schedules: []Schedule{{
			Name:          "primary",
			ICal:          "https://calendar.example.com/primary.ics",
			OverridesICal: "https://calendar.example.com/overrides.ics",
			Channel:       "C0123456789",
			Usergroup:     "S0123456789",
			Line:          12,
		}, {
			Name: "secondary",
			Rotation: &Rotation{
				Users:   []string{"bob@example.com", "carol@example.com"},
				Shift:   Duration(168 * time.Hour),
				Handoff: "2026-01-05T09:00:00",
				Line:    19,
			},
			Line: 17,
		}},
		EscalationChains: []EscalationChain{{
			Name:   "default",
			Repeat: 2,
			Steps: []Step{
				{NotifySchedule: "primary", Line: 26},
				{Wait: Duration(5 * time.Minute), Line: 27},
				{NotifySchedule: "secondary", Line: 28},
				{Wait: Duration(10 * time.Minute), Line: 29},
				{NotifyChannel: "here", Line: 30},
			},
			Line: 23,
		}},
		Integrations: []Integration{{
			Name:       "prometheus",
			Kind:       "alertmanager",
			Token:      "prom-0123456789abcdef",
			Channel:    "C0123456789",
			Escalation: "default",
			Routes: []Route{{
				Match:      map[string]string{"severity": "critical", "team": "payments"},
				Escalation: "default",
				Channel:    "C0PAYMENTS",
				Line:       38,
			}},
			Line: 32,
		}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	for i, step := range c.EscalationChains[0].Steps {
		wantKind := []string{StepNotifySchedule, StepWait, StepNotifySchedule, StepWait, StepNotifyChannel}[i]
		if step.Kind() != wantKind {
			t.Errorf("step %d: Kind() = %q, want %q", i, step.Kind(), wantKind)
		}
	}
}

func TestExample(t *testing.T) {
	const path = "../examples/oncall.yaml"
	c, err := Load(path, lookup(testEnv))
	if err != nil {
		t.Fatal(err)
	}
	// The example must show every feature; check the less common ones.
	var kinds []string
	for _, in := range c.Integrations {
		kinds = append(kinds, in.Kind)
	}
	var steps []string
	for _, ch := range c.EscalationChains {
		for _, s := range ch.Steps {
			steps = append(steps, s.Kind())
		}
	}
	var sources []string
	for _, s := range c.Schedules {
		switch {
		case s.ICal != "" && s.OverridesICal != "":
			sources = append(sources, "ical+overrides")
		case s.File != "":
			sources = append(sources, "file")
		case s.Rotation != nil:
			sources = append(sources, "rotation")
		}
	}
	checks := []struct {
		what string
		ok   bool
	}{
		{"integration kinds webhook and alertmanager", slices.Contains(kinds, "webhook") && slices.Contains(kinds, "alertmanager")},
		{"every step kind", !slices.ContainsFunc(stepKeys, func(k string) bool { return !slices.Contains(steps, k) })},
		{"ical with overrides, file and rotation schedules", len(sources) == 3 && sources[0] != sources[1] && sources[1] != sources[2] && sources[0] != sources[2]},
		{"a schedule time zone", slices.ContainsFunc(c.Schedules, func(s Schedule) bool { return s.Timezone != "" })},
		{"a schedule channel and usergroup", slices.ContainsFunc(c.Schedules, func(s Schedule) bool { return s.Channel != "" && s.Usergroup != "" })},
		{"routes", slices.ContainsFunc(c.Integrations, func(in Integration) bool { return len(in.Routes) > 1 })},
		{"routes with match_re, not and severity", slices.ContainsFunc(slices.Concat(c.Routes, c.Integrations[0].Routes), func(r Route) bool {
			return len(r.MatchRE) > 0 && len(r.Not) > 0 && r.Severity != ""
		})},
		{"global routes", len(c.Routes) > 0},
		{"a catch-all route", slices.ContainsFunc(c.Integrations, func(in Integration) bool {
			return len(in.Routes) > 0 && in.Routes[len(in.Routes)-1].CatchAll()
		})},
		{"heartbeat, maintenance and rate_limit", slices.ContainsFunc(c.Integrations, func(in Integration) bool {
			return in.Heartbeat > 0 && len(in.Maintenance) > 0 && in.RateLimit > 0
		})},
		{"a user by Slack id", slices.ContainsFunc(c.Users, func(u User) bool { return u.Slack != "" && u.Email == "" })},
		{"important notify rules", slices.ContainsFunc(c.Users, func(u User) bool { return len(u.Important) > 0 })},
		{"repeat", slices.ContainsFunc(c.EscalationChains, func(ch EscalationChain) bool { return ch.Repeat > 0 })},
		{"top-level timezone", c.Timezone != ""},
	}
	for _, check := range checks {
		if !check.ok {
			t.Errorf("example does not show %s", check.what)
		}
	}
	if want := filepath.Join("..", "examples", "database-oncall.ics"); c.Schedules[2].File != want {
		t.Errorf("relative file resolved to %q, want %q", c.Schedules[2].File, want)
	}

	// Every ${VAR} of the example is needed: without any one, it fails.
	for name := range testEnv {
		env := maps.Clone(testEnv)
		delete(env, name)
		_, err := Load(path, lookup(env))
		if err == nil || !strings.Contains(err.Error(), "environment variable "+name+" is not set") {
			t.Errorf("without %s: got %v", name, err)
		}
	}
}

// TestMarshalRoundTrip checks that the yaml tags of the types agree with
// the keys Parse reads: a parsed file written back parses to the same Config.
func TestMarshalRoundTrip(t *testing.T) {
	path, err := filepath.Abs("../examples/oncall.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, lookup(testEnv))
	if err != nil {
		t.Fatal(err)
	}
	data, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(path, data, lookup(nil))
	if err != nil {
		t.Fatalf("parse marshaled config: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(withoutLines(c), withoutLines(again)) {
		t.Errorf("round trip changed the config:\n%s", data)
	}
}

// withoutLines returns a copy of c with every Line zeroed.
func withoutLines(c *Config) Config {
	out := *c
	out.Users = slices.Clone(c.Users)
	for i := range out.Users {
		u := &out.Users[i]
		u.Line = 0
		u.Notify = zeroRuleLines(u.Notify)
		u.Important = zeroRuleLines(u.Important)
	}
	out.Schedules = slices.Clone(c.Schedules)
	for i := range out.Schedules {
		s := &out.Schedules[i]
		s.Line = 0
		if s.Rotation != nil {
			r := *s.Rotation
			r.Line = 0
			s.Rotation = &r
		}
		s.Rotations = slices.Clone(s.Rotations)
		for j := range s.Rotations {
			s.Rotations[j].Line = 0
		}
	}
	out.EscalationChains = slices.Clone(c.EscalationChains)
	for i := range out.EscalationChains {
		ch := &out.EscalationChains[i]
		ch.Line = 0
		ch.Steps = slices.Clone(ch.Steps)
		for j := range ch.Steps {
			ch.Steps[j].Line = 0
		}
	}
	out.Integrations = slices.Clone(c.Integrations)
	for i := range out.Integrations {
		in := &out.Integrations[i]
		in.Line = 0
		in.Routes = zeroRouteLines(in.Routes)
		in.Maintenance = slices.Clone(in.Maintenance)
		for j := range in.Maintenance {
			in.Maintenance[j].Line = 0
		}
	}
	out.Routes = zeroRouteLines(c.Routes)
	return out
}

func zeroRouteLines(routes []Route) []Route {
	out := slices.Clone(routes)
	for i := range out {
		out[i].Line = 0
	}
	return out
}

func zeroRuleLines(rules []NotifyRule) []NotifyRule {
	out := slices.Clone(rules)
	for i := range out {
		out[i].Line = 0
	}
	return out
}

// TestInvalid parses each testdata/invalid/NAME.yaml and compares the
// problems reported with NAME.errors. Run with -update to rewrite them.
func TestInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test files")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := Load(file, lookup(testEnv))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("got %v, want Errors", err)
			}
			for _, e := range errs {
				if e.File != file || e.Line < 1 || e.Msg == "" {
					t.Errorf("malformed error %#v", e)
				}
			}
			got := err.Error() + "\n"
			goldenFile := strings.TrimSuffix(file, ".yaml") + ".errors"
			golden.Check(t, goldenFile, []byte(got))
		})
	}
}

func TestValidFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			c, err := Load(file, lookup(testEnv))
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Integrations) == 0 {
				t.Error("no integrations")
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml", nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want a wrapped os.ErrNotExist", err)
	}
	var errs Errors
	if errors.As(err, &errs) {
		t.Errorf("an unreadable file is not a problem in the file: %v", err)
	}
}

func TestParseNilLookupUsesEnvironment(t *testing.T) {
	t.Setenv("CONFIG_TEST_TOKEN", "env-0123456789abcdef")
	data := []byte("integrations:\n  - {name: a, kind: webhook, token: '${CONFIG_TEST_TOKEN}', channel: C0A}\n")
	c, err := Parse("x.yaml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Integrations[0].Token; got != "env-0123456789abcdef" {
		t.Errorf("token = %q", got)
	}
}

func TestErrorsSortedByLine(t *testing.T) {
	errs := Errors{
		{File: "f.yaml", Line: 9, Msg: "c"},
		{File: "f.yaml", Line: 2, Msg: "a"},
		{File: "f.yaml", Line: 9, Msg: "d"},
		{File: "f.yaml", Line: 5, Msg: "b"},
	}
	want := "f.yaml:2: a\nf.yaml:5: b\nf.yaml:9: c\nf.yaml:9: d"
	if got := errs.Error(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if errs[0].Line != 9 {
		t.Error("Error() reordered the list it was called on")
	}
}

func TestOncallIntegrations(t *testing.T) {
	c, err := Load("testdata/valid/fuller.yaml", lookup(testEnv))
	if err != nil {
		t.Fatal(err)
	}
	want := []oncall.Integration{{
		Name: "prometheus", Kind: "alertmanager", Token: "prom-0123456789abcdef",
		Channel: "C0123456789", Escalation: "default",
		Routes: []oncall.Route{{
			Match:   map[string]string{"severity": "critical", "team": "payments"},
			Channel: "C0PAYMENTS", Escalation: "default",
		}},
	}}
	if got := c.OncallIntegrations(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestUser(t *testing.T) {
	c := &Config{Users: []User{
		{Email: "alice@example.com", Phone: "+4915100000001"},
		{Slack: "U0DAVE"},
	}}
	tests := []struct {
		ref        string
		want       User
		configured bool
	}{
		{"alice@example.com", c.Users[0], true},
		{"Alice@Example.COM", c.Users[0], true},
		{"U0DAVE", c.Users[1], true},
		{"bob@example.com", User{Email: "bob@example.com"}, false},
		{"U0BOB", User{Slack: "U0BOB"}, false},
	}
	for _, tt := range tests {
		got, ok := c.User(tt.ref)
		if !reflect.DeepEqual(got, tt.want) || ok != tt.configured {
			t.Errorf("User(%q) = %+v, %v; want %+v, %v", tt.ref, got, ok, tt.want, tt.configured)
		}
	}
}

func TestKinds(t *testing.T) {
	tests := []struct {
		kind    string
		problem string // "" when the kind is served
	}{
		{"webhook", ""},
		{"alertmanager", ""},
		{"grafana", ""},
		{"pagerduty", ""},
		{"opsgenie", ""},
		{"sns", ""},
		{"nagios", `k.yaml:2: kind: unknown kind "nagios" (use one of alertmanager, grafana, opsgenie, pagerduty, sns, webhook)`},
	}
	for _, tt := range tests {
		data := "integrations:\n  - {name: a, kind: " + tt.kind + ", token: 0123456789abcdef, channel: C0A}\n"
		_, err := Parse("k.yaml", []byte(data), lookup(nil))
		if got := fmt.Sprint(err); (tt.problem == "" && err != nil) || (tt.problem != "" && got != tt.problem) {
			t.Errorf("kind %s: %v, want %q", tt.kind, err, tt.problem)
		}
	}
}

func TestAliasesAndMergeKeys(t *testing.T) {
	c, err := Load("testdata/valid/anchors.yaml", lookup(testEnv))
	if err != nil {
		t.Fatal(err)
	}
	b := c.Integrations[1]
	want := Integration{
		Name: "b", Kind: "webhook", Token: "b-0123456789abcdef", Channel: "C0123456789",
		Routes: []Route{{Match: map[string]string{"severity": "critical"}, Channel: "C0OTHER", Line: 15}},
		Line:   11,
	}
	if !reflect.DeepEqual(b, want) {
		t.Errorf("got  %+v\nwant %+v", b, want)
	}
}

// TestSyntaxErrorLines checks that YAML syntax errors are reported on the
// line of the problem, not where the enclosing construct starts.
func TestSyntaxErrorLines(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"bad indentation", "integrations:\n  - name: a\n    kind: webhook\n   token: x\n", "s.yaml:4: invalid YAML: did not find expected '-' indicator"},
		{"tab", "integrations:\n  - name: a\n\tkind: webhook\n", "s.yaml:3: invalid YAML: found a tab character that violates indentation"},
		{"unclosed flow", "timezone: UTC\nintegrations: [{name: a\n", "s.yaml:2: invalid YAML: did not find expected ',' or '}'"},
		{"unknown anchor", "timezone: UTC\n\nintegrations: *nope\n", "s.yaml:3: invalid YAML: unknown anchor 'nope' referenced"},
		{"control character", "timezone: UTC\ntimezone: \x01\n", "s.yaml:2: invalid YAML: control characters are not allowed"},
		{"bad second document", "integrations: []\n---\na: [\n", "s.yaml:3: invalid YAML: did not find expected node content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("s.yaml", []byte(tt.in), lookup(nil))
			if err == nil || err.Error() != tt.want {
				t.Errorf("got  %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestFollowTheSun(t *testing.T) {
	data := `timezone: Europe/Berlin
users:
  - email: alice@example.com
  - email: bob@example.com
schedules:
  - name: sun
    rotations:
      - users: [alice@example.com]
        shift: 24h
        handoff: 2026-01-05T00:00:00
        window: "08:00-20:00"
      - users: [bob@example.com]
        shift: 24h
        handoff: 2026-01-05T00:00:00
        window: "20:00-08:00"
      - users: [bob@example.com]
        shift: 24h
        handoff: 2026-01-05T00:00:00
        window: "8 to 5"
integrations:
  - {name: a, kind: webhook, token: 0123456789abcdef, channel: C0A}
`
	_, err := Parse("sun.yaml", []byte(data), lookup(nil))
	want := `sun.yaml:19: window "8 to 5": use HH:MM-HH:MM, such as 08:00-16:00`
	if fmt.Sprint(err) != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	c, err := Parse("sun.yaml", []byte(strings.Replace(data, `"8 to 5"`, `"08:00-09:00"`, 1)), lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.Schedules[0].AllRotations()); got != 3 {
		t.Errorf("%d rotations, want 3", got)
	}
}

func TestParseWindow(t *testing.T) {
	tests := []struct {
		in         string
		start, end time.Duration
		ok         bool
	}{
		{"08:00-16:00", 8 * time.Hour, 16 * time.Hour, true},
		{"22:30-06:15", 22*time.Hour + 30*time.Minute, 6*time.Hour + 15*time.Minute, true},
		{"00:00-24:00", 0, 24 * time.Hour, true},
		{"08:00-08:00", 0, 0, false},
		{"8-16", 0, 0, false},
		{"08:00", 0, 0, false},
		{"25:00-26:00", 0, 0, false},
	}
	for _, tt := range tests {
		start, end, err := ParseWindow(tt.in)
		if (err == nil) != tt.ok || (tt.ok && (start != tt.start || end != tt.end)) {
			t.Errorf("ParseWindow(%q) = %s, %s, %v; want %s, %s, ok %v", tt.in, start, end, err, tt.start, tt.end, tt.ok)
		}
	}
}

func TestAdmins(t *testing.T) {
	data := `admins: [alice@example.com, U0BOB, nobody]
users:
  - email: alice@example.com
  - slack: U0BOB
integrations:
  - {name: a, kind: webhook, token: 0123456789abcdef, channel: C0A}
`
	_, err := Parse("a.yaml", []byte(data), lookup(nil))
	if err == nil || !strings.Contains(err.Error(), `a.yaml:1: `) || !strings.Contains(err.Error(), "nobody") {
		t.Fatalf("an unknown admin: %v, want an error at line 1 naming it", err)
	}
	c, err := Parse("a.yaml", []byte(strings.Replace(data, ", nobody", "", 1)), lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Admins, ",") != "alice@example.com,U0BOB" {
		t.Errorf("admins = %q", c.Admins)
	}
}

func TestRouting(t *testing.T) {
	c, err := Load("testdata/valid/routing.yaml", lookup(testEnv))
	if err != nil {
		t.Fatal(err)
	}
	prom := c.Integrations[0]
	wantOwn := []Route{{
		Match:      map[string]string{"team": "payments"},
		MatchRE:    map[string]string{"severity": "critical|error"},
		Not:        map[string]string{"env": "staging"},
		Channel:    "C0PAYMENTS",
		Escalation: "payments",
		Severity:   "P1",
		Line:       20,
	}}
	wantGlobal := []Route{
		{MatchRE: map[string]string{"service": "db-.*"}, Escalation: "payments", Line: 31},
		{Severity: "info", Line: 33},
	}
	if !reflect.DeepEqual(prom.Routes, wantOwn) {
		t.Errorf("integration routes:\n got  %+v\nwant %+v", prom.Routes, wantOwn)
	}
	if !reflect.DeepEqual(c.Routes, wantGlobal) {
		t.Errorf("global routes:\n got  %+v\nwant %+v", c.Routes, wantGlobal)
	}
	if !wantGlobal[1].CatchAll() || wantGlobal[0].CatchAll() {
		t.Error("CatchAll: want only the route without matchers")
	}

	ins := c.OncallIntegrations()
	if len(ins) != 2 {
		t.Fatalf("%d integrations, want 2", len(ins))
	}
	window := oncall.TimeRange{
		Start: time.Date(2026, 3, 1, 21, 0, 0, 0, time.UTC),
		End:   time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC),
	}
	if got := ins[0]; got.Heartbeat != 5*time.Minute || got.RateLimit != 1200 || !reflect.DeepEqual(got.Maintenance, []oncall.TimeRange{window}) {
		t.Errorf("prometheus: heartbeat %s, rate limit %d, maintenance %v; want 5m, 1200, %v", got.Heartbeat, got.RateLimit, got.Maintenance, window)
	}
	if got := ins[1]; got.Heartbeat != 0 || got.RateLimit != 0 || got.Maintenance != nil {
		t.Errorf("deploys: heartbeat %s, rate limit %d, maintenance %v; want none of them", got.Heartbeat, got.RateLimit, got.Maintenance)
	}

	// Routes with their expressions as source text, to compare.
	type route struct {
		Match, MatchRE, NotMatch map[string]string
		Channel, Escalation      string
		Severity                 oncall.Severity
	}
	flat := func(rs []oncall.Route) []route {
		var out []route
		for _, r := range rs {
			f := route{Match: r.Match, NotMatch: r.NotMatch, Channel: r.Channel, Escalation: r.Escalation, Severity: r.Severity}
			for label, re := range r.MatchRE {
				if f.MatchRE == nil {
					f.MatchRE = map[string]string{}
				}
				f.MatchRE[label] = re.String()
			}
			out = append(out, f)
		}
		return out
	}
	own := route{
		Match:    map[string]string{"team": "payments"},
		MatchRE:  map[string]string{"severity": "^(?:critical|error)$"},
		NotMatch: map[string]string{"env": "staging"},
		Channel:  "C0PAYMENTS", Escalation: "payments", Severity: oncall.SeverityCritical,
	}
	global := []route{
		{MatchRE: map[string]string{"service": "^(?:db-.*)$"}, Escalation: "payments"},
		{Severity: oncall.SeverityInfo},
	}
	if got, want := flat(ins[0].Routes), append([]route{own}, global...); !reflect.DeepEqual(got, want) {
		t.Errorf("prometheus routes (own, then global):\n got  %+v\nwant %+v", got, want)
	}
	if got := flat(ins[1].Routes); !reflect.DeepEqual(got, global) {
		t.Errorf("deploys routes (global only):\n got  %+v\nwant %+v", got, global)
	}

	// The expressions match whole values only.
	re := ins[0].Routes[0].MatchRE["severity"]
	for value, want := range map[string]bool{"critical": true, "error": true, "critical-ish": false, "not-error": false, "": false} {
		if re.MatchString(value) != want {
			t.Errorf("match_re critical|error on %q: %v, want %v", value, !want, want)
		}
	}
	// The domain routes do not share maps with the config.
	ins[0].Routes[0].Match["team"] = "changed"
	if prom.Routes[0].Match["team"] != "payments" {
		t.Error("OncallIntegrations shares the Match map with the config")
	}
}

func TestRouteProblems(t *testing.T) {
	const head = "escalation_chains: [{name: default, steps: [{notify_channel: here}]}]\n" +
		"integrations:\n  - {name: a, kind: webhook, token: 0123456789abcdef, channel: C0A, routes: [%s]}\n"
	tests := []struct {
		name   string
		routes string
		want   string // "" for a valid route list
	}{
		{"equals", "{match: {team: db}, channel: C0DB}", ""},
		{"regexp", `{match_re: {team: "db|web"}, channel: C0DB}`, ""},
		{"not", "{not: {env: staging}, channel: C0DB}", ""},
		{"severity synonym", "{match: {team: db}, severity: warn}", ""},
		{"catch-all last", "{match: {team: db}, channel: C0DB}, {escalation: default}", ""},
		{"empty matchers are a catch-all", "{match: {}, channel: C0DB}, {channel: C0WEB}", "r.yaml:3: route: routes after a catch-all route never match (the route at line 3 has no match, match_re or not)"},
		{"catch-all first", "{escalation: default}, {match: {team: db}, channel: C0DB}", "r.yaml:3: route: routes after a catch-all route never match (the route at line 3 has no match, match_re or not)"},
		{"bad regexp", `{match_re: {team: "db("}, channel: C0DB}`, `r.yaml:3: match_re.team: invalid regexp "db(": missing closing )`},
		{"regexp escaping its anchors", `{match_re: {team: "a)|(b"}, channel: C0DB}`, `r.yaml:3: match_re.team: invalid regexp "a)|(b": unexpected )`},
		{"unknown severity", "{match: {team: db}, severity: sev1}", `r.yaml:3: severity: unknown severity "sev1" (use critical, error, warning or info)`},
		{"unknown chain", "{match: {team: db}, escalation: nope}", `r.yaml:3: escalation: no escalation chain named "nope"`},
		{"nothing to do", "{match: {team: db}}", "r.yaml:3: route: set channel, escalation, severity or several of them"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("r.yaml", fmt.Appendf(nil, head, tt.routes), lookup(nil))
			if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}
