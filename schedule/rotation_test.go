package schedule

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oncallbot/oncall"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load zone %q: %v", name, err)
	}
	return loc
}

// rotFmt renders shifts one a line as "person start end" in loc, with the
// offset, so a failure shows local wall times.
func rotFmt(shifts []oncall.Shift, loc *time.Location) string {
	var b strings.Builder
	for _, s := range shifts {
		fmt.Fprintf(&b, "%s %s %s [%s]\n", s.Person, s.Start.In(loc).Format("2006-01-02 Mon 15:04 -07"),
			s.End.In(loc).Format("2006-01-02 Mon 15:04 -07"), s.Source)
	}
	return b.String()
}

func TestRotationShifts(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	newYork := mustZone(t, "America/New_York")
	sydney := mustZone(t, "Australia/Sydney")
	at := func(loc *time.Location, y int, m time.Month, d, h, min int) time.Time {
		return time.Date(y, m, d, h, min, 0, 0, loc)
	}
	abc := []string{"alice", "bob", "carol"}

	tests := []struct {
		name     string
		rot      Rotation
		from, to time.Time
		want     string // rotFmt in the rotation's zone
	}{
		{
			name: "weekly across the spring DST change in Berlin keeps 09:00",
			rot:  Rotation{Users: abc, Shift: 7 * 24 * time.Hour, Handoff: at(time.UTC, 2026, 1, 5, 9, 0), Location: berlin},
			from: at(berlin, 2026, 3, 25, 0, 0), to: at(berlin, 2026, 4, 1, 0, 0),
			// 2026-01-05 + 11 weeks = 03-23 (k=11: carol), + 12 weeks = 03-30 (k=12: alice).
			want: "carol 2026-03-23 Mon 09:00 +01 2026-03-30 Mon 09:00 +02 [rotation]\n" +
				"alice 2026-03-30 Mon 09:00 +02 2026-04-06 Mon 09:00 +02 [rotation]\n",
		},
		{
			name: "weekly across the autumn DST change in Berlin keeps 09:00",
			rot:  Rotation{Users: abc, Shift: 7 * 24 * time.Hour, Handoff: at(berlin, 2026, 1, 5, 9, 0), Location: berlin},
			from: at(berlin, 2026, 10, 20, 0, 0), to: at(berlin, 2026, 10, 27, 0, 0),
			// 2026-01-05 + 41 weeks = 10-19 (k=41: carol).
			want: "carol 2026-10-19 Mon 09:00 +02 2026-10-26 Mon 09:00 +01 [rotation]\n" +
				"alice 2026-10-26 Mon 09:00 +01 2026-11-02 Mon 09:00 +01 [rotation]\n",
		},
		{
			name: "weekly in the southern hemisphere (Sydney, DST starts 4 October)",
			rot:  Rotation{Users: []string{"ann", "ben"}, Shift: 7 * 24 * time.Hour, Handoff: at(sydney, 2026, 9, 28, 9, 0), Location: sydney},
			from: at(sydney, 2026, 9, 28, 9, 0), to: at(sydney, 2026, 10, 12, 9, 0),
			want: "ann 2026-09-28 Mon 09:00 +10 2026-10-05 Mon 09:00 +11 [rotation]\n" +
				"ben 2026-10-05 Mon 09:00 +11 2026-10-12 Mon 09:00 +11 [rotation]\n",
		},
		{
			name: "daily across fall back in New York: the shift with the change is 25h",
			rot:  Rotation{Users: []string{"ann", "ben"}, Shift: 24 * time.Hour, Handoff: at(newYork, 2026, 10, 31, 8, 0), Location: newYork},
			from: at(newYork, 2026, 10, 31, 8, 0), to: at(newYork, 2026, 11, 2, 8, 0),
			want: "ann 2026-10-31 Sat 08:00 -04 2026-11-01 Sun 08:00 -05 [rotation]\n" +
				"ben 2026-11-01 Sun 08:00 -05 2026-11-02 Mon 08:00 -05 [rotation]\n",
		},
		{
			name: "12h is exact: the local handoff moves by an hour across the change",
			rot:  Rotation{Users: []string{"day", "night"}, Shift: 12 * time.Hour, Handoff: at(berlin, 2026, 3, 28, 8, 0), Location: berlin},
			from: at(berlin, 2026, 3, 28, 8, 0), to: at(berlin, 2026, 3, 29, 12, 0),
			want: "day 2026-03-28 Sat 08:00 +01 2026-03-28 Sat 20:00 +01 [rotation]\n" +
				"night 2026-03-28 Sat 20:00 +01 2026-03-29 Sun 09:00 +02 [rotation]\n" +
				"day 2026-03-29 Sun 09:00 +02 2026-03-29 Sun 21:00 +02 [rotation]\n",
		},
		{
			name: "extends backwards from the handoff, users in reverse",
			rot:  Rotation{Users: abc, Shift: 24 * time.Hour, Handoff: at(time.UTC, 2026, 6, 10, 0, 0), Location: time.UTC},
			from: at(time.UTC, 2026, 6, 7, 12, 0), to: at(time.UTC, 2026, 6, 10, 0, 0),
			want: "alice 2026-06-07 Sun 00:00 +00 2026-06-08 Mon 00:00 +00 [rotation]\n" +
				"bob 2026-06-08 Mon 00:00 +00 2026-06-09 Tue 00:00 +00 [rotation]\n" +
				"carol 2026-06-09 Tue 00:00 +00 2026-06-10 Wed 00:00 +00 [rotation]\n",
		},
		{
			name: "whole shifts overlapping the span, not clipped",
			rot:  Rotation{Users: abc, Shift: 8 * time.Hour, Handoff: at(time.UTC, 2026, 6, 10, 6, 0), Location: time.UTC},
			from: at(time.UTC, 2026, 6, 10, 13, 0), to: at(time.UTC, 2026, 6, 10, 15, 0),
			want: "alice 2026-06-10 Wed 06:00 +00 2026-06-10 Wed 14:00 +00 [rotation]\n" +
				"bob 2026-06-10 Wed 14:00 +00 2026-06-10 Wed 22:00 +00 [rotation]\n",
		},
		{
			name: "Location nil uses the handoff's own zone",
			rot:  Rotation{Users: abc, Shift: 7 * 24 * time.Hour, Handoff: at(berlin, 2026, 3, 23, 9, 0)},
			from: at(berlin, 2026, 3, 30, 9, 0), to: at(berlin, 2026, 3, 30, 10, 0),
			want: "bob 2026-03-30 Mon 09:00 +02 2026-04-06 Mon 09:00 +02 [rotation]\n",
		},
		{
			name: "window 08:00-16:00 on a daily rotation",
			rot: Rotation{Users: []string{"ann", "ben"}, Shift: 24 * time.Hour, Handoff: at(berlin, 2026, 3, 28, 0, 0), Location: berlin,
				Window: &DailyWindow{Start: 8 * time.Hour, End: 16 * time.Hour}},
			from: at(berlin, 2026, 3, 28, 0, 0), to: at(berlin, 2026, 3, 30, 0, 0),
			want: "ann 2026-03-28 Sat 08:00 +01 2026-03-28 Sat 16:00 +01 [rotation]\n" +
				"ben 2026-03-29 Sun 08:00 +02 2026-03-29 Sun 16:00 +02 [rotation]\n",
		},
		{
			name: "window crossing midnight, a weekly handoff inside the window",
			rot: Rotation{Users: []string{"ann", "ben"}, Shift: 7 * 24 * time.Hour, Handoff: at(time.UTC, 2026, 6, 1, 0, 0), Location: time.UTC,
				Window: &DailyWindow{Start: 22 * time.Hour, End: 6 * time.Hour}},
			from: at(time.UTC, 2026, 6, 7, 12, 0), to: at(time.UTC, 2026, 6, 8, 12, 0),
			want: "ann 2026-06-07 Sun 22:00 +00 2026-06-08 Mon 00:00 +00 [rotation]\n" +
				"ben 2026-06-08 Mon 00:00 +00 2026-06-08 Mon 06:00 +00 [rotation]\n",
		},
		{
			name: "window: the piece before from is left out",
			rot: Rotation{Users: []string{"ann"}, Shift: 24 * time.Hour, Handoff: at(time.UTC, 2026, 6, 1, 0, 0), Location: time.UTC,
				Window: &DailyWindow{Start: 8 * time.Hour, End: 16 * time.Hour}},
			from: at(time.UTC, 2026, 6, 1, 16, 0), to: at(time.UTC, 2026, 6, 2, 8, 0),
			want: "",
		},
		{
			name: "empty span", rot: Rotation{Users: abc, Shift: time.Hour, Handoff: at(time.UTC, 2026, 1, 1, 0, 0)},
			from: at(time.UTC, 2026, 1, 2, 0, 0), to: at(time.UTC, 2026, 1, 2, 0, 0), want: "",
		},
		{
			name: "no users", rot: Rotation{Shift: time.Hour, Handoff: at(time.UTC, 2026, 1, 1, 0, 0)},
			from: at(time.UTC, 2026, 1, 1, 0, 0), to: at(time.UTC, 2026, 1, 2, 0, 0), want: "",
		},
		{
			name: "shift too short", rot: Rotation{Users: abc, Shift: time.Second, Handoff: at(time.UTC, 2026, 1, 1, 0, 0)},
			from: at(time.UTC, 2026, 1, 1, 0, 0), to: at(time.UTC, 2026, 1, 2, 0, 0), want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := tt.rot.Location
			if loc == nil {
				loc = tt.rot.Handoff.Location()
			}
			got := rotFmt(tt.rot.Shifts(tt.from, tt.to), loc)
			if got != tt.want {
				t.Errorf("Shifts(%s, %s):\ngot\n%s\nwant\n%s", tt.from, tt.to, got, tt.want)
			}
		})
	}
}

// A weekly rotation over a year in Europe/Berlin: 52 handoffs, every one on
// a Monday at 09:00 local (none at 08:00 or 10:00 after a DST change),
// back to back, and the users in turn.
func TestRotationWeeklyYearBerlin(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	users := []string{"alice", "bob", "carol", "dave"}
	rot := Rotation{Users: users, Shift: 7 * 24 * time.Hour, Handoff: time.Date(2026, 1, 5, 9, 0, 0, 0, berlin), Location: berlin}
	from := time.Date(2026, 1, 5, 9, 0, 0, 0, berlin)
	to := time.Date(2027, 1, 4, 9, 0, 0, 0, berlin)

	shifts := rot.Shifts(from, to)
	if len(shifts) != 52 {
		t.Fatalf("got %d shifts, want 52:\n%s", len(shifts), rotFmt(shifts, berlin))
	}
	lengths := map[time.Duration]int{}
	for i, s := range shifts {
		start := s.Start.In(berlin)
		if start.Weekday() != time.Monday || start.Hour() != 9 || start.Minute() != 0 {
			t.Errorf("shift %d starts %s, want a Monday 09:00 local", i, start.Format(time.RFC3339))
		}
		if i > 0 && !shifts[i-1].End.Equal(s.Start) {
			t.Errorf("shift %d starts %s, previous ends %s: gap or overlap", i, s.Start, shifts[i-1].End)
		}
		if want := users[i%len(users)]; s.Person != want {
			t.Errorf("shift %d is %s's, want %s's", i, s.Person, want)
		}
		lengths[s.End.Sub(s.Start)]++
	}
	// One week is an hour short (spring), one an hour long (autumn).
	want := map[time.Duration]int{168 * time.Hour: 50, 167 * time.Hour: 1, 169 * time.Hour: 1}
	if fmt.Sprint(lengths) != fmt.Sprint(want) {
		t.Errorf("shift lengths %v, want %v", lengths, want)
	}
	if !shifts[0].Start.Equal(from) || !shifts[51].End.Equal(to) {
		t.Errorf("shifts span %s to %s, want %s to %s", shifts[0].Start, shifts[51].End, from, to)
	}
}

// Three rotations with daily windows cover the day between them, every day
// of a year that has both DST changes: no gaps, and never two people at
// once.
func TestRotationFollowTheSun(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	tests := []struct {
		name    string
		windows [3]DailyWindow
	}{
		{"00-08, 08-16, 16-24", [3]DailyWindow{{0, 8 * time.Hour}, {8 * time.Hour, 16 * time.Hour}, {16 * time.Hour, 24 * time.Hour}}},
		{"22-06 across midnight, 06-14, 14-22", [3]DailyWindow{{22 * time.Hour, 6 * time.Hour}, {6 * time.Hour, 14 * time.Hour}, {14 * time.Hour, 22 * time.Hour}}},
		{"01:30-09:30 (in the DST gap), 09:30-17:30, 17:30-01:30", [3]DailyWindow{
			{90 * time.Minute, 570 * time.Minute}, {570 * time.Minute, 1050 * time.Minute}, {1050 * time.Minute, 90 * time.Minute}}},
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, berlin)
	to := time.Date(2027, 1, 1, 0, 0, 0, 0, berlin)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var all []oncall.Shift
			for i, w := range tt.windows {
				rot := Rotation{
					Users:    []string{fmt.Sprintf("r%d-a", i), fmt.Sprintf("r%d-b", i)},
					Shift:    7 * 24 * time.Hour,
					Handoff:  time.Date(2026, 1, 5, 9, 0, 0, 0, berlin),
					Location: berlin,
					Window:   &w,
				}
				shifts := rot.Shifts(from, to)
				if len(shifts) < 365 {
					t.Fatalf("rotation %d: %d shifts in a year, want at least one a day", i, len(shifts))
				}
				all = append(all, shifts...)
			}
			if gaps := Gaps(all, from, to); len(gaps) != 0 {
				t.Errorf("gaps: %v", gaps)
			}
			ix := NewIndex(all)
			for at := from; at.Before(to); at = at.Add(17 * time.Minute) {
				if got := ix.At(at); len(got) != 1 {
					t.Fatalf("at %s: %d on call, want 1: %v", at, len(got), got)
				}
			}
		})
	}
}

func TestRotationValidate(t *testing.T) {
	handoff := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		rot     Rotation
		wantErr string // substring; "" for valid
	}{
		{"valid", Rotation{Users: []string{"a"}, Shift: 24 * time.Hour, Handoff: handoff}, ""},
		{"valid with window to midnight", Rotation{Users: []string{"a"}, Shift: time.Hour, Handoff: handoff,
			Window: &DailyWindow{16 * time.Hour, 24 * time.Hour}}, ""},
		{"no users", Rotation{Shift: time.Hour, Handoff: handoff}, "no users"},
		{"empty user", Rotation{Users: []string{"a", ""}, Shift: time.Hour, Handoff: handoff}, "user 2 is empty"},
		{"short shift", Rotation{Users: []string{"a"}, Shift: time.Second, Handoff: handoff}, "shorter than"},
		{"empty window", Rotation{Users: []string{"a"}, Shift: time.Hour, Handoff: handoff,
			Window: &DailyWindow{8 * time.Hour, 8 * time.Hour}}, "08:00-08:00 is empty"},
		{"window start out of range", Rotation{Users: []string{"a"}, Shift: time.Hour, Handoff: handoff,
			Window: &DailyWindow{25 * time.Hour, 8 * time.Hour}}, "window start"},
		{"window end out of range", Rotation{Users: []string{"a"}, Shift: time.Hour, Handoff: handoff,
			Window: &DailyWindow{8 * time.Hour, 0}}, "window end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rot.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// Bounded work: a one-minute rotation over a century stops at the cap, and
// a year of hourly shifts far from the handoff is still exact.
func TestRotationBounded(t *testing.T) {
	rot := Rotation{Users: []string{"a", "b"}, Shift: time.Minute, Handoff: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	got := rot.Shifts(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	if len(got) != rotMaxShifts {
		t.Errorf("got %d shifts, want the cap %d", len(got), rotMaxShifts)
	}
	rot.Shift = time.Hour
	from := time.Date(2200, 3, 1, 0, 30, 0, 0, time.UTC)
	got = rot.Shifts(from, from.Add(3*time.Hour))
	if len(got) != 4 || !got[0].Start.Equal(from.Add(-30*time.Minute)) {
		t.Errorf("far from the handoff: got %v", got)
	}
}
