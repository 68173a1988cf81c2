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

func TestAlsoOnCall(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 3, 2, h, 0, 0, 0, time.UTC) }
	slots := []slot{
		{Person: "alice", Slack: "UA", Start: at(9), End: at(17)},
		{Person: "carol", Slack: "UC", Start: at(12), End: at(13)},
		{Person: "bob", Slack: "UB", Start: at(17), End: at(20)},
	}
	tests := []struct {
		name     string
		from, to time.Time
		users    []string
		want     string // Person of the one found; "" for none
	}{
		{"carol overlaps alice's afternoon", at(9), at(17), []string{"UA", "UB"}, "carol"},
		{"only alice in the morning", at(9), at(12), []string{"UA", "UB"}, ""},
		{"a shift that ends at from does not count", at(13), at(17), []string{"UA", "UB"}, ""},
		{"bob counts unless he is one of the users", at(16), at(18), []string{"UA"}, "bob"},
	}
	for _, tt := range tests {
		got, ok := alsoOnCall(slots, tt.from, tt.to, tt.users...)
		if (tt.want == "") == ok || got.Person != tt.want {
			t.Errorf("%s: alsoOnCall = %q, %v; want %q", tt.name, got.Person, ok, tt.want)
		}
	}
}

func TestGapWarningTimeOnDSTDays(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, day := range []time.Time{
		time.Date(2026, 3, 29, 12, 0, 0, 0, berlin),  // clocks go forward
		time.Date(2026, 10, 25, 12, 0, 0, 0, berlin), // clocks go back
		time.Date(2026, 6, 1, 12, 0, 0, 0, berlin),
	} {
		got := gapWarningTime(day, berlin, 0)
		if h, m, _ := got.Clock(); h != 9 || m != 0 || got.Day() != day.Day() {
			t.Errorf("gap warning on %s at %s, want 09:00 local that day", day.Format(time.DateOnly), got)
		}
	}
}
