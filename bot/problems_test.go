package bot

import (
	"context"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
)

// brokenCalendars is a Schedules whose calendar for "primary" fails.
type brokenCalendars struct{}

func (brokenCalendars) Schedules() []string { return []string{"primary", "secondary"} }
func (brokenCalendars) OnCall(context.Context, string, time.Time) ([]oncall.Shift, error) {
	return nil, nil
}
func (brokenCalendars) Shifts(context.Context, string, time.Time, time.Time) ([]oncall.Shift, error) {
	return nil, nil
}
func (brokenCalendars) OverridesChanged(string) {}
func (brokenCalendars) Problem(name string) string {
	if name == "primary" {
		return "the calendar cannot be refreshed (never loaded): 503 <Service Unavailable>"
	}
	return ""
}

func TestSourceProblemsAreShown(t *testing.T) {
	b := &Bot{sched: scheduling{schedules: brokenCalendars{}}}
	got := b.sourceProblems([]string{"primary", "secondary"})
	want := "\n:warning: *primary*: the calendar cannot be refreshed (never loaded): 503 &lt;Service Unavailable&gt;"
	if got != want {
		t.Errorf("sourceProblems = %q, want %q", got, want)
	}
	if got := b.sourceProblems([]string{"secondary"}); got != "" {
		t.Errorf("sourceProblems of a healthy schedule = %q, want none", got)
	}
}
