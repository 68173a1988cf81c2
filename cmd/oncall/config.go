package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/config"
	"github.com/oncallbot/oncall/schedule"
)

// runConfig implements `oncall config check FILE`: exit 0 on a valid file,
// with the routing of each integration, otherwise one "FILE:LINE: message"
// per problem and exit 1.
func runConfig(args []string, stdout, stderr io.Writer, lookup env) int {
	if len(args) != 2 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: oncall config check FILE")
		return 2
	}
	file := args[1]
	cfg, err := config.Load(file, lookup)
	if err != nil {
		var problems config.Errors
		if errors.As(err, &problems) {
			fmt.Fprintln(stdout, problems.Error())
		} else {
			fmt.Fprintf(stdout, "%s: %v\n", file, err)
		}
		return 1
	}
	for _, w := range rotationGaps(cfg, time.Now()) {
		fmt.Fprintf(stdout, "%s:%d: warning: %s\n", file, w.line, w.msg)
	}
	fmt.Fprintf(stdout, "%s: ok (integrations: %d, schedules: %d, escalation chains: %d, users: %d)\n",
		file, len(cfg.Integrations), len(cfg.Schedules), len(cfg.EscalationChains), len(cfg.Users))
	writeRouting(stdout, cfg)
	return 0
}

// writeRouting prints where each integration's alerts go, route by route in
// the order they are tried:
//
//	integration prometheus (alertmanager) -> channel C0123, escalation default
//	  route 1: team=payments -> channel C0PAYMENTS, escalation payments
//	  route 2 (global): service=~"db-.*", env!=staging -> escalation database, severity critical
func writeRouting(w io.Writer, cfg *config.Config) {
	for _, in := range cfg.Integrations {
		fmt.Fprintf(w, "integration %s (%s) -> %s\n", in.Name, in.Kind, routeTargets(in.Channel, in.Escalation, ""))
		n := 0
		for _, list := range []struct {
			routes []config.Route
			tag    string
		}{{in.Routes, ""}, {cfg.Routes, " (global)"}} {
			for _, r := range list.routes {
				n++
				fmt.Fprintf(w, "  route %d%s: %s -> %s\n", n, list.tag, routeMatchers(r), routeTargets(r.Channel, r.Escalation, r.Severity))
			}
			if len(list.routes) > 0 && list.routes[len(list.routes)-1].CatchAll() {
				if list.tag == "" && len(cfg.Routes) > 0 {
					fmt.Fprintf(w, "  global routes: never tried, route %d matches every alert\n", n)
				}
				break
			}
		}
	}
}

// routeMatchers writes a route's matchers as in Prometheus:
// label=value, label=~"regexp", label!=value.
func routeMatchers(r config.Route) string {
	if r.CatchAll() {
		return "every alert"
	}
	var out []string
	for _, m := range []struct {
		labels map[string]string
		op     string
		quote  func(string) string
	}{{r.Match, "=", quoteValue}, {r.MatchRE, "=~", quoteRegexp}, {r.Not, "!=", quoteValue}} {
		for _, label := range slices.Sorted(maps.Keys(m.labels)) {
			out = append(out, label+m.op+m.quote(m.labels[label]))
		}
	}
	return strings.Join(out, ", ")
}

// plainValue is a label value printed without quotes.
var plainValue = regexp.MustCompile(`^[A-Za-z0-9_.:/@+-]+$`)

func quoteValue(v string) string {
	if plainValue.MatchString(v) {
		return v
	}
	return strconv.Quote(v)
}

// quoteRegexp quotes an expression; one with backslashes in backquotes,
// where they need no escaping, so that it reads as written.
func quoteRegexp(expr string) string {
	if strings.Contains(expr, `\`) && strconv.CanBackquote(expr) {
		return "`" + expr + "`"
	}
	return strconv.Quote(expr)
}

// routeTargets says what a route (or an integration) sets; a route sets
// at least one of them.
func routeTargets(channel, escalation, severity string) string {
	var out []string
	if channel != "" {
		out = append(out, "channel "+channel)
	}
	if escalation != "" {
		out = append(out, "escalation "+escalation)
	}
	if severity != "" {
		if s, ok := oncall.ParseSeverity(severity); ok {
			severity = string(s)
		}
		out = append(out, "severity "+severity)
	}
	return strings.Join(out, ", ")
}

// gapHorizon is how far ahead config check looks for gaps in rotations;
// it names at most maxGapWarnings of them per schedule.
const (
	gapHorizon     = 14 * 24 * time.Hour
	maxGapWarnings = 3
)

type warning struct {
	line int
	msg  string
}

// rotationGaps warns about the times in the next 14 days when a schedule
// made only of rotations has nobody on call. Calendars are not fetched
// here; the bot warns about theirs in Slack once a day.
func rotationGaps(cfg *config.Config, now time.Time) []warning {
	defs, err := scheduleDefinitions(cfg)
	if err != nil {
		return []warning{{1, err.Error()}}
	}
	var out []warning
	for i, def := range defs {
		if def.ICal != "" || def.File != "" || len(def.Rotations) == 0 {
			continue
		}
		var shifts []oncall.Shift
		for _, r := range def.Rotations {
			shifts = append(shifts, r.Shifts(now, now.Add(gapHorizon))...)
		}
		gaps := schedule.Gaps(schedule.Merge(shifts), now, now.Add(gapHorizon))
		for j, gap := range gaps {
			line := cfg.Schedules[i].Line
			if j == maxGapWarnings {
				out = append(out, warning{line, fmt.Sprintf("schedule %q has %d more gaps in the next 14 days", def.Name, len(gaps)-j)})
				break
			}
			out = append(out, warning{line, fmt.Sprintf("schedule %q has nobody on call from %s to %s",
				def.Name, gap[0].In(def.Location).Format(time.RFC3339), gap[1].In(def.Location).Format(time.RFC3339))})
		}
	}
	return out
}
