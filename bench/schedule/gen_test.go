package main

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/oncallbot/oncall/schedule"
)

// The generated calendar expands, through ParseCalendar, to the shifts the
// generator computed from its rules: the benchmark times correct work.
func TestGeneratedCalendarExpands(t *testing.T) {
	loc, err := time.LoadLocation(genTZ)
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range []uint64{1, 2, 3} {
		gen := generate(rand.New(rand.NewPCG(seed, 2026)), 1000, 2026, loc)
		st := gen.Stats
		if st.Events != 1000 || st.Series != 300 || st.Overrides != 200 || st.Singles != 500 {
			t.Fatalf("seed %d: stats %+v, want 1000 events: 300 series, 200 overrides, 500 singles", seed, st)
		}
		if st.Cancelled == 0 || st.ExDates == 0 || st.AllDay == 0 || st.Duration == 0 || st.Attendee == 0 {
			t.Errorf("seed %d: a kind of event is missing: %+v", seed, st)
		}
		if n := strings.Count(string(gen.Data), "BEGIN:VEVENT"); n != st.Events {
			t.Errorf("seed %d: %d VEVENTs in the text, stats say %d", seed, n, st.Events)
		}
		cal, err := schedule.ParseCalendar(gen.Data, loc)
		if err != nil {
			t.Fatalf("seed %d: parse: %v", seed, err)
		}
		got := cal.Shifts(gen.From, gen.To)
		if diff := compareShifts(got, gen.Want); diff != "" {
			t.Errorf("seed %d: %s", seed, diff)
		}
		if len(gen.Want) < 2*st.Events {
			t.Errorf("seed %d: only %d shifts from %d events: the series hardly recur", seed, len(gen.Want), st.Events)
		}
	}
}

func TestCompareShiftsFindsDifferences(t *testing.T) {
	loc := time.UTC
	gen := generate(rand.New(rand.NewPCG(9, 9)), 100, 2026, loc)
	if d := compareShifts(gen.Want, gen.Want); d != "" {
		t.Errorf("same shifts: %s", d)
	}
	moved := append(gen.Want[:0:0], gen.Want...)
	moved[3].End = moved[3].End.Add(time.Minute)
	if d := compareShifts(moved[1:], gen.Want); !strings.Contains(d, "2 missing") || !strings.Contains(d, "1 unexpected") {
		t.Errorf("one dropped, one moved: %q", d)
	}
}
