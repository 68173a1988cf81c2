package schedule

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests do not depend on the machine's zoneinfo

	"github.com/oncallbot/oncall"
)

var calUpdate = flag.Bool("update-ical", false, "rewrite the calendar golden files in testdata/ical")

func calMustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := LoadZone(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func calMustParse(t testing.TB, path string, loc *time.Location) *Calendar {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCalendar(data, loc)
	if err != nil {
		t.Fatalf("ParseCalendar(%s): %v", path, err)
	}
	return c
}

// calLines renders shifts as golden lines "start end person", each time in
// the zone of its event.
func calLines(shifts []oncall.Shift) string {
	var b strings.Builder
	for _, s := range shifts {
		b.WriteString(s.Start.Format(time.RFC3339) + " " + s.End.Format(time.RFC3339) + " " + s.Person + "\n")
	}
	return b.String()
}

func TestCalendarGolden(t *testing.T) {
	berlin := calMustZone(t, "Europe/Berlin")
	tests := []struct {
		file     string
		loc      *time.Location
		from, to string
	}{
		{"google-rotation-year.ics", berlin, "2025-01-01T00:00:00Z", "2026-01-10T00:00:00Z"},
		{"google-exceptions.ics", berlin, "2025-03-01T00:00:00Z", "2025-06-01T00:00:00Z"},
		{"outlook.ics", berlin, "2025-03-01T00:00:00Z", "2025-11-01T00:00:00Z"},
		{"recurrence.ics", berlin, "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c := calMustParse(t, filepath.Join("testdata", "ical", tt.file), tt.loc)
			from, _ := time.Parse(time.RFC3339, tt.from)
			to, _ := time.Parse(time.RFC3339, tt.to)
			got := calLines(c.Shifts(from, to))
			golden := filepath.Join("testdata", "ical", strings.TrimSuffix(tt.file, ".ics")+".golden")
			if *calUpdate {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("shifts differ from %s (rerun with -update-ical to accept)\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

// calWrap makes a calendar of VEVENT bodies (one string per event).
func calWrap(events ...string) []byte {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//oncall tests//EN\r\n")
	for _, ev := range events {
		b.WriteString("BEGIN:VEVENT\r\n" + strings.ReplaceAll(strings.TrimSpace(ev), "\n", "\r\n") + "\r\nEND:VEVENT\r\n")
	}
	b.WriteString("END:VCALENDAR\r\n")
	return []byte(b.String())
}

func TestCalendarShiftsTable(t *testing.T) {
	berlin := calMustZone(t, "Europe/Berlin")
	sydney := calMustZone(t, "Australia/Sydney")
	tests := []struct {
		name     string
		loc      *time.Location
		events   []string
		from, to string
		want     string // golden lines
	}{
		{
			name:   "rule without end expands only within the window",
			loc:    berlin,
			events: []string{"UID:a\nSUMMARY:ann\nDTSTART;TZID=Europe/Berlin:20000103T090000\nDTEND;TZID=Europe/Berlin:20000103T170000\nRRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR"},
			from:   "2030-03-29T00:00:00Z", to: "2030-04-02T00:00:00Z",
			want: "2030-03-29T09:00:00+01:00 2030-03-29T17:00:00+01:00 ann\n" +
				"2030-04-01T09:00:00+02:00 2030-04-01T17:00:00+02:00 ann\n",
		},
		{
			name:   "shift in progress at the start of the window",
			loc:    berlin,
			events: []string{"UID:a\nSUMMARY:ann\nDTSTART;TZID=Europe/Berlin:20250106T090000\nDTEND;TZID=Europe/Berlin:20250113T090000\nRRULE:FREQ=WEEKLY"},
			from:   "2025-06-18T00:00:00Z", to: "2025-06-18T00:00:01Z",
			want: "2025-06-16T09:00:00+02:00 2025-06-23T09:00:00+02:00 ann\n",
		},
		{
			name:   "floating times and all-day events use the schedule's zone",
			loc:    sydney,
			events: []string{"UID:a\nSUMMARY:ann\nDTSTART:20250704T090000\nDTEND:20250704T170000", "UID:b\nSUMMARY:bob\nDTSTART;VALUE=DATE:20250705\nDTEND;VALUE=DATE:20250707"},
			from:   "2025-07-01T00:00:00Z", to: "2025-07-10T00:00:00Z",
			want: "2025-07-04T09:00:00+10:00 2025-07-04T17:00:00+10:00 ann\n" +
				"2025-07-05T00:00:00+10:00 2025-07-07T00:00:00+10:00 bob\n",
		},
		{
			name:   "all-day event without DTEND lasts its day",
			loc:    berlin,
			events: []string{"UID:a\nSUMMARY:ann\nDTSTART;VALUE=DATE:20251026"},
			from:   "2025-10-01T00:00:00Z", to: "2025-11-01T00:00:00Z",
			want: "2025-10-26T00:00:00+02:00 2025-10-27T00:00:00+01:00 ann\n",
		},
		{
			name:   "daily 02:30 in the DST gap and the repeated hour",
			loc:    berlin,
			events: []string{"UID:a\nSUMMARY:ann\nDTSTART;TZID=Europe/Berlin:20250329T023000\nDURATION:PT1H\nRRULE:FREQ=DAILY;COUNT=2", "UID:b\nSUMMARY:bob\nDTSTART;TZID=Europe/Berlin:20251026T023000\nDURATION:PT1H"},
			from:   "2025-01-01T00:00:00Z", to: "2026-01-01T00:00:00Z",
			want: "2025-03-29T02:30:00+01:00 2025-03-29T03:30:00+01:00 ann\n" +
				"2025-03-30T03:30:00+02:00 2025-03-30T04:30:00+02:00 ann\n" +
				"2025-10-26T02:30:00+02:00 2025-10-26T02:30:00+01:00 bob\n",
		},
		{
			name: "highest SEQUENCE of a repeated event wins",
			loc:  berlin,
			events: []string{"UID:a\nSEQUENCE:2\nSUMMARY:new\nDTSTART:20250301T100000Z\nDTEND:20250301T120000Z",
				"UID:a\nSEQUENCE:1\nSUMMARY:old\nDTSTART:20250301T080000Z\nDTEND:20250301T120000Z"},
			from: "2025-03-01T00:00:00Z", to: "2025-03-02T00:00:00Z",
			want: "2025-03-01T10:00:00Z 2025-03-01T12:00:00Z new\n",
		},
		{
			name: "override without SUMMARY keeps the master's person; DATE EXDATE drops a timed instance",
			loc:  berlin,
			events: []string{"UID:a\nSUMMARY:ann\nDTSTART:20250301T100000Z\nDTEND:20250301T120000Z\nRRULE:FREQ=DAILY;COUNT=3\nEXDATE;VALUE=DATE:20250303",
				"UID:a\nRECURRENCE-ID:20250302T100000Z\nDTSTART:20250302T130000Z\nDTEND:20250302T140000Z"},
			from: "2025-03-01T00:00:00Z", to: "2025-03-05T00:00:00Z",
			want: "2025-03-01T10:00:00Z 2025-03-01T12:00:00Z ann\n" +
				"2025-03-02T13:00:00Z 2025-03-02T14:00:00Z ann\n",
		},
		{
			name: "override moved into the window from outside it",
			loc:  berlin,
			events: []string{"UID:a\nSUMMARY:ann\nDTSTART:20250301T100000Z\nDTEND:20250301T120000Z\nRRULE:FREQ=WEEKLY",
				"UID:a\nSUMMARY:bob\nRECURRENCE-ID:20250315T100000Z\nDTSTART:20250310T100000Z\nDTEND:20250310T120000Z"},
			from: "2025-03-09T00:00:00Z", to: "2025-03-12T00:00:00Z",
			want: "2025-03-10T10:00:00Z 2025-03-10T12:00:00Z bob\n",
		},
		{
			name:   "orphan override (no master) is an event",
			loc:    berlin,
			events: []string{"UID:a\nSUMMARY:ann\nRECURRENCE-ID:20250315T100000Z\nDTSTART:20250315T110000Z\nDTEND:20250315T120000Z"},
			from:   "2025-03-01T00:00:00Z", to: "2025-04-01T00:00:00Z",
			want: "2025-03-15T11:00:00Z 2025-03-15T12:00:00Z ann\n",
		},
		{
			name:   "cancelled master cancels its overrides",
			loc:    berlin,
			events: []string{"UID:a\nSTATUS:CANCELLED\nSUMMARY:ann\nDTSTART:20250301T100000Z\nDTEND:20250301T120000Z\nRRULE:FREQ=DAILY", "UID:a\nSUMMARY:bob\nRECURRENCE-ID:20250302T100000Z\nDTSTART:20250302T110000Z\nDTEND:20250302T120000Z"},
			from:   "2025-03-01T00:00:00Z", to: "2025-04-01T00:00:00Z",
			want: "",
		},
		{
			name:   "DTSTART and DTEND in different zones: exact length",
			loc:    berlin,
			events: []string{"UID:a\nSUMMARY:ann\nDTSTART;TZID=Europe/Berlin:20250329T200000\nDTEND:20250330T060000Z\nRRULE:FREQ=DAILY;COUNT=2"},
			from:   "2025-03-01T00:00:00Z", to: "2025-04-01T00:00:00Z",
			want: "2025-03-29T20:00:00+01:00 2025-03-30T08:00:00+02:00 ann\n" +
				"2025-03-30T20:00:00+02:00 2025-03-31T07:00:00+02:00 ann\n",
		},
		{
			name:   "zero-length events are no shifts",
			loc:    berlin,
			events: []string{"UID:a\nSUMMARY:ann\nDTSTART:20250301T100000Z"},
			from:   "2025-03-01T00:00:00Z", to: "2025-04-01T00:00:00Z",
			want: "",
		},
		{
			name:   "MONTHLY on the 31st skips short months; BYSETPOS picks the last weekday",
			loc:    berlin,
			events: []string{"UID:a\nSUMMARY:ann\nDTSTART:20250131T100000Z\nDURATION:PT1H\nRRULE:FREQ=MONTHLY;COUNT=3", "UID:b\nSUMMARY:bob\nDTSTART:20250131T120000Z\nDURATION:PT1H\nRRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=3"},
			from:   "2025-01-01T00:00:00Z", to: "2026-01-01T00:00:00Z",
			want: "2025-01-31T10:00:00Z 2025-01-31T11:00:00Z ann\n" +
				"2025-01-31T12:00:00Z 2025-01-31T13:00:00Z bob\n" +
				"2025-02-28T12:00:00Z 2025-02-28T13:00:00Z bob\n" +
				"2025-03-31T10:00:00Z 2025-03-31T11:00:00Z ann\n" +
				"2025-03-31T12:00:00Z 2025-03-31T13:00:00Z bob\n" +
				"2025-05-31T10:00:00Z 2025-05-31T11:00:00Z ann\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCalendar(calWrap(tt.events...), tt.loc)
			if err != nil {
				t.Fatal(err)
			}
			from, _ := time.Parse(time.RFC3339, tt.from)
			to, _ := time.Parse(time.RFC3339, tt.to)
			if got := calLines(c.Shifts(from, to)); got != tt.want {
				t.Errorf("got:\n%swant:\n%s", got, tt.want)
			}
		})
	}
}

func TestParseCalendarErrors(t *testing.T) {
	ev := func(body string) []byte { return calWrap("UID:x\nSUMMARY:ann\n" + body) }
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "parse calendar"},
		{"not a calendar", []byte("hello world\n"), "parse calendar"},
		{"other top component", []byte("BEGIN:VCARD\r\nEND:VCARD\r\n"), "VCALENDAR"},
		{"unterminated", []byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n"), "parse calendar"},
		{"parameter at end of line", []byte("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;X=a"), "parse calendar"},
		{"too deep", []byte(strings.Repeat("BEGIN:X\r\n", 100)), "nested"},
		{"unknown zone", ev("DTSTART;TZID=Mars/Olympus_Mons:20250301T100000\nDURATION:PT1H"), `unknown time zone "Mars/Olympus_Mons"`},
		{"unknown X-WR-TIMEZONE with nil loc", []byte("BEGIN:VCALENDAR\r\nX-WR-TIMEZONE:Nowhere/Land\r\nEND:VCALENDAR\r\n"), `unknown time zone "Nowhere/Land"`},
		{"no DTSTART", ev("DTEND:20250301T100000Z"), "no DTSTART"},
		{"bad DTSTART", ev("DTSTART:2025-03-01"), "DTSTART"},
		{"bad month", ev("DTSTART:20251301T100000Z"), "DTSTART"},
		{"DTEND before DTSTART", ev("DTSTART:20250301T100000Z\nDTEND:20250301T090000Z"), "before DTSTART"},
		{"bad DURATION", ev("DTSTART:20250301T100000Z\nDURATION:1H"), "DURATION"},
		{"negative DURATION", ev("DTSTART:20250301T100000Z\nDURATION:-PT1H"), "DURATION"},
		{"FREQ=SECONDLY", ev("DTSTART:20250301T100000Z\nDURATION:PT1H\nRRULE:FREQ=SECONDLY"), "not supported"},
		{"RRULE without FREQ", ev("DTSTART:20250301T100000Z\nDURATION:PT1H\nRRULE:COUNT=3"), "no FREQ"},
		{"COUNT and UNTIL", ev("DTSTART:20250301T100000Z\nDURATION:PT1H\nRRULE:FREQ=DAILY;COUNT=3;UNTIL=20250401T000000Z"), "both COUNT and UNTIL"},
		{"huge COUNT", ev("DTSTART:20250301T100000Z\nDURATION:PT1H\nRRULE:FREQ=DAILY;COUNT=99999999"), "COUNT"},
		{"bad BYDAY", ev("DTSTART:20250301T100000Z\nDURATION:PT1H\nRRULE:FREQ=WEEKLY;BYDAY=XX"), "BYDAY"},
		{"ordinal BYDAY in WEEKLY", ev("DTSTART:20250301T100000Z\nDURATION:PT1H\nRRULE:FREQ=WEEKLY;BYDAY=1MO"), "ordinal"},
		{"EXRULE", ev("DTSTART:20250301T100000Z\nDURATION:PT1H\nEXRULE:FREQ=DAILY"), "EXRULE"},
		{"bad EXDATE", ev("DTSTART:20250301T100000Z\nDURATION:PT1H\nEXDATE:20250301T100000Z,nope"), "EXDATE"},
		{"bad RDATE period", ev("DTSTART:20250301T100000Z\nDURATION:PT1H\nRDATE;VALUE=PERIOD:20250302T100000Z/20250302T090000Z"), "RDATE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCalendar(tt.data, nil)
			if err == nil {
				t.Fatalf("ParseCalendar = %v, want an error", c)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

// A never-matching rule costs bounded work and yields nothing.
func TestCalendarImpossibleRule(t *testing.T) {
	c, err := ParseCalendar(calWrap("UID:x\nSUMMARY:ann\nDTSTART:20250301T100000Z\nDURATION:PT1H\nRRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;COUNT=2"), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	// Only DTSTART itself, which is always an instance.
	got := c.Shifts(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2125, 1, 1, 0, 0, 0, 0, time.UTC))
	if len(got) != 1 || !got[0].Start.Equal(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("got %v, want only DTSTART", got)
	}
}

// The weekly rotation of google-rotation-year.ics: 52 handoffs at 09:00
// local time through both DST changes, with neither gap nor overlap.
func TestCalendarWeeklyRotationYear(t *testing.T) {
	berlin := calMustZone(t, "Europe/Berlin")
	c := calMustParse(t, filepath.Join("testdata", "ical", "google-rotation-year.ics"), berlin)
	shifts := c.Shifts(time.Date(2025, 1, 1, 0, 0, 0, 0, berlin), time.Date(2026, 1, 10, 0, 0, 0, 0, berlin))
	if len(shifts) != 52 {
		t.Fatalf("got %d shifts, want 52", len(shifts))
	}
	for i, s := range shifts {
		start, end := s.Start.In(berlin), s.End.In(berlin)
		if start.Weekday() != time.Monday || start.Hour() != 9 || start.Minute() != 0 || end.Hour() != 9 || end.Weekday() != time.Monday {
			t.Errorf("shift %d: %s - %s, want Monday 09:00 to Monday 09:00", i, start, end)
		}
		if want := []string{"alice@example.com", "bob@example.com"}[i%2]; s.Person != want || s.Source != "calendar" || s.Schedule != "" {
			t.Errorf("shift %d: %+v, want person %s, source calendar", i, s, want)
		}
		if i > 0 && !shifts[i-1].End.Equal(s.Start) {
			t.Errorf("shift %d starts %s, previous ends %s", i, s.Start, shifts[i-1].End)
		}
	}
	// The shifts containing the DST changes are an hour shorter and longer.
	for _, tt := range []struct {
		day  time.Time
		want time.Duration
	}{
		{time.Date(2025, 3, 24, 9, 0, 0, 0, berlin), 167 * time.Hour},
		{time.Date(2025, 10, 20, 9, 0, 0, 0, berlin), 169 * time.Hour},
	} {
		got := c.Shifts(tt.day, tt.day.Add(time.Second))
		if len(got) != 1 || got[0].End.Sub(got[0].Start) != tt.want {
			t.Errorf("shift at %s: %v, want one of %s", tt.day, got, tt.want)
		}
	}
}

func TestCalendarNilLocUsesXWRTimezone(t *testing.T) {
	data := []byte("BEGIN:VCALENDAR\r\nX-WR-TIMEZONE:Asia/Tokyo\r\nBEGIN:VEVENT\r\nUID:a\r\nSUMMARY:ann\r\nDTSTART:20250301T090000\r\nDTEND:20250301T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
	c, err := ParseCalendar(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Shifts(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if len(got) != 1 || !got[0].Start.Equal(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("got %v, want 09:00 Tokyo", got)
	}
}

func TestCalendarConcurrentShifts(t *testing.T) {
	c := calMustParse(t, filepath.Join("testdata", "ical", "google-exceptions.ics"), calMustZone(t, "Europe/Berlin"))
	from, to := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	want := calLines(c.Shifts(from, to))
	errs := make(chan string, 8)
	for range 8 {
		go func() {
			got := ""
			for range 50 {
				got = calLines(c.Shifts(from, to))
			}
			errs <- got
		}()
	}
	for range 8 {
		if got := <-errs; got != want {
			t.Errorf("concurrent Shifts differ:\n%s", got)
		}
	}
}

// calEveryMinute is a hostile calendar: n events, each with a one-minute
// instance every minute of every day from dtstart on (a 7 KB file for 20).
func calEveryMinute(n int, dtstart time.Time) []byte {
	hours, minutes := make([]string, 24), make([]string, 60)
	for i := range hours {
		hours[i] = strconv.Itoa(i)
	}
	for i := range minutes {
		minutes[i] = strconv.Itoa(i)
	}
	lines := []string{"BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//oncall tests//EN"}
	for i := range n {
		lines = append(lines,
			"BEGIN:VEVENT",
			fmt.Sprintf("UID:minute-%d@oncall.test", i),
			fmt.Sprintf("SUMMARY:person%d", i),
			"DTSTART:"+dtstart.UTC().Format("20060102T150405Z"),
			"DURATION:PT1M",
			"RRULE:FREQ=DAILY;BYHOUR="+strings.Join(hours, ",")+";BYMINUTE="+strings.Join(minutes, ","),
			"END:VEVENT")
	}
	lines = append(lines, "END:VCALENDAR", "")
	return []byte(strings.Join(lines, "\r\n"))
}

// The instances of a query are bounded across the whole calendar, not only
// per event.
func TestCalendarShiftsBudget(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		events  int
		to      time.Time
		want    int // exact count when the budget is not hit
		wantHit bool
	}{
		{"two events for a day", 2, start.AddDate(0, 0, 1), 2 * 1440, false},
		{"two events for 60 days, under the budget", 2, start.AddDate(0, 0, 60), 2 * 60 * 1440, false},
		{"three events for 60 days", 3, start.AddDate(0, 0, 60), 0, true},
		{"twenty events for 97 days", 20, start.AddDate(0, 0, 97), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCalendar(calEveryMinute(tt.events, start), time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			got, hit := c.shiftsBudgeted(start, tt.to)
			if hit != tt.wantHit {
				t.Errorf("budget hit %v, want %v", hit, tt.wantHit)
			}
			if len(got) > calMaxShiftsPerQuery {
				t.Errorf("%d shifts, more than the budget of %d", len(got), calMaxShiftsPerQuery)
			}
			if !tt.wantHit && len(got) != tt.want {
				t.Errorf("%d shifts, want %d", len(got), tt.want)
			}
			if tt.wantHit && len(got) < calMaxShiftsPerQuery/2 {
				t.Errorf("%d shifts, want most of the budget of %d", len(got), calMaxShiftsPerQuery)
			}
			if !slices.IsSortedFunc(got, func(a, b oncall.Shift) int { return a.Start.Compare(b.Start) }) {
				t.Error("shifts not sorted by start")
			}
			if n := len(c.Shifts(start, tt.to)); n != len(got) {
				t.Errorf("Shifts returned %d, shiftsBudgeted %d", n, len(got))
			}
		})
	}
}

// TestCountIncludesAnOffRuleDTSTART: DTSTART is the first instance and
// counts toward COUNT even when the rule would not produce it (RFC 5545).
func TestCountIncludesAnOffRuleDTSTART(t *testing.T) {
	ics := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" +
		"BEGIN:VEVENT\r\nUID:count@test\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:alice@example.com\r\n" +
		"DTSTART:20260303T090000Z\r\nDTEND:20260303T100000Z\r\n" + // a Tuesday
		"RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=3\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
	cal, err := ParseCalendar([]byte(ics), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	var starts []string
	for _, s := range cal.Shifts(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)) {
		starts = append(starts, s.Start.Format("Mon 01-02"))
	}
	if got, want := strings.Join(starts, ", "), "Tue 03-03, Mon 03-09, Mon 03-16"; got != want {
		t.Errorf("instances %s, want %s", got, want)
	}
}
