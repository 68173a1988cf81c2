package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/oncallbot/oncall"
	"github.com/oncallbot/oncall/config"
	"github.com/oncallbot/oncall/schedule"
)

// runConfig implements `oncall config check FILE`: exit 0 on a valid file,
// otherwise one "FILE:LINE: message" per problem and exit 1.
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
	return 0
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
