package schedule

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// FuzzParseCalendar: any input either parses or is an error, never a panic,
// and a parsed calendar answers a query with sorted shifts of positive
// length that overlap the window. Seeds: testdata/fuzz/FuzzParseCalendar.
func FuzzParseCalendar(f *testing.F) {
	f.Add([]byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nSUMMARY:ann\r\nDTSTART:20250301T100000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=DAILY;COUNT=3\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"))
	berlin, err := LoadZone("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	from := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCalendar(data, berlin)
		if err != nil {
			if c != nil {
				t.Fatalf("error %v with a calendar", err)
			}
			return
		}
		shifts := c.Shifts(from, to)
		for i, s := range shifts {
			if !s.End.After(s.Start) || !s.Start.Before(to) || !s.End.After(from) {
				t.Fatalf("shift %d %+v: empty or outside the window", i, s)
			}
			if i > 0 && s.Start.Before(shifts[i-1].Start) {
				t.Fatalf("shifts not sorted at %d", i)
			}
		}
	})
}

// BenchmarkCalendarShifts: a one-year calendar of 5,000 events (weekly
// series with EXDATEs and overrides, and single shifts) expanded for a year.
func BenchmarkCalendarShifts(b *testing.B) {
	data := calBenchCalendar(5000)
	berlin, err := LoadZone("Europe/Berlin")
	if err != nil {
		b.Fatal(err)
	}
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, berlin)
	to := from.AddDate(1, 0, 0)
	b.Run("parse", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := ParseCalendar(data, berlin); err != nil {
				b.Fatal(err)
			}
		}
	})
	c, err := ParseCalendar(data, berlin)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	b.Run("year", func(b *testing.B) {
		for b.Loop() {
			n = len(c.Shifts(from, to))
		}
		b.ReportMetric(float64(n), "shifts")
	})
	b.Run("week", func(b *testing.B) {
		for b.Loop() {
			n = len(c.Shifts(from.AddDate(0, 6, 0), from.AddDate(0, 6, 7)))
		}
		b.ReportMetric(float64(n), "shifts")
	})
}

// calBenchCalendar writes n events: a fifth weekly series (each with two
// EXDATEs and one moved instance), the rest single 8-hour shifts.
func calBenchCalendar(n int) []byte {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//oncall bench//EN\r\n")
	start := time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)
	for i := range n {
		person := fmt.Sprintf("user%d@example.com", i%40)
		if i%5 == 0 {
			s := start.AddDate(0, 0, i%7)
			fmt.Fprintf(&b, "BEGIN:VEVENT\r\nUID:series-%d\r\nSUMMARY:%s\r\nDTSTART;TZID=Europe/Berlin:%s\r\nDTEND;TZID=Europe/Berlin:%s\r\n"+
				"RRULE:FREQ=WEEKLY;UNTIL=20260101T000000Z\r\nEXDATE;TZID=Europe/Berlin:%s,%s\r\nEND:VEVENT\r\n",
				i, person, s.Format("20060102T150405"), s.Add(8*time.Hour).Format("20060102T150405"),
				s.AddDate(0, 0, 14).Format("20060102T150405"), s.AddDate(0, 0, 28).Format("20060102T150405"))
			moved := s.AddDate(0, 0, 21)
			fmt.Fprintf(&b, "BEGIN:VEVENT\r\nUID:series-%d\r\nSUMMARY:override%d@example.com\r\nRECURRENCE-ID;TZID=Europe/Berlin:%s\r\n"+
				"DTSTART;TZID=Europe/Berlin:%s\r\nDTEND;TZID=Europe/Berlin:%s\r\nEND:VEVENT\r\n",
				i, i%7, moved.Format("20060102T150405"), moved.Add(2*time.Hour).Format("20060102T150405"), moved.Add(10*time.Hour).Format("20060102T150405"))
			continue
		}
		s := start.Add(time.Duration(i) * 105 * time.Minute)
		fmt.Fprintf(&b, "BEGIN:VEVENT\r\nUID:single-%d\r\nSUMMARY:%s\r\nDTSTART:%s\r\nDTEND:%s\r\nEND:VEVENT\r\n",
			i, person, s.Format("20060102T150405Z"), s.Add(8*time.Hour).Format("20060102T150405Z"))
	}
	b.WriteString("END:VCALENDAR\r\n")
	return []byte(b.String())
}
