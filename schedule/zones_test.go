package schedule

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
)

func TestLoadZone(t *testing.T) {
	tests := []struct {
		name, want string
	}{
		{"Europe/Berlin", "Europe/Berlin"},
		{"UTC", "UTC"},
		{"W. Europe Standard Time", "Europe/Berlin"},
		{"w. europe standard time", "Europe/Berlin"},
		{`"W. Europe Standard Time"`, "Europe/Berlin"},
		{"Pacific Standard Time", "America/Los_Angeles"},
		{"Eastern Standard Time", "America/New_York"},
		{"GMT Standard Time", "Europe/London"},
		{"AUS Eastern Standard Time", "Australia/Sydney"},
		{"Tokyo Standard Time", "Asia/Tokyo"},
		{"India Standard Time", "Asia/Calcutta"},
		{"Central Europe Standard Time", "Europe/Budapest"},
		{"Romance Standard Time", "Europe/Paris"},
		{"/mozilla.org/20050126_1/America/New_York", "America/New_York"},
		{"/freeassociation.sourceforge.net/Tzfile/America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"},
	}
	for _, tt := range tests {
		loc, err := LoadZone(tt.name)
		if err != nil {
			t.Errorf("LoadZone(%q): %v", tt.name, err)
			continue
		}
		if loc.String() != tt.want {
			t.Errorf("LoadZone(%q) = %s, want %s", tt.name, loc, tt.want)
		}
	}
	for _, name := range []string{"", "Local", "Mars/Olympus_Mons", "Customized Time Zone", "../etc/passwd"} {
		if loc, err := LoadZone(name); err == nil {
			t.Errorf("LoadZone(%q) = %s, want an error", name, loc)
		} else if !strings.Contains(err.Error(), "unknown time zone") {
			t.Errorf("LoadZone(%q): %v, want an unknown time zone error", name, err)
		}
	}
}

func TestWindowsZonesLoad(t *testing.T) {
	for win, iana := range calWindowsZones {
		if _, err := time.LoadLocation(iana); err != nil {
			t.Errorf("%q maps to %q: %v", win, iana, err)
		}
	}
}

// A zone built from a VTIMEZONE must agree with the IANA zone it describes
// at every hour of a decade (both hemispheres, RFC 5545 and RFC 2445 rules).
func TestZoneFromVTimezoneMatchesIANA(t *testing.T) {
	tests := []struct {
		iana string
		vtz  string
	}{
		{"Europe/Berlin", `BEGIN:VTIMEZONE
TZID:X
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE`},
		{"Australia/Sydney", `BEGIN:VTIMEZONE
TZID:X
BEGIN:STANDARD
DTSTART:16010401T030000
RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=4
TZOFFSETFROM:+1100
TZOFFSETTO:+1000
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16011007T020000
RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=10
TZOFFSETFROM:+1000
TZOFFSETTO:+1100
END:DAYLIGHT
END:VTIMEZONE`},
		{"America/New_York", `BEGIN:VTIMEZONE
TZID:X
BEGIN:STANDARD
DTSTART:19671029T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10;UNTIL=20061029T060000Z
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
END:STANDARD
BEGIN:STANDARD
DTSTART:20071104T020000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=SU;BYMONTHDAY=1,2,3,4,5,6,7
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:20070311T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=SU;BYMONTHDAY=8,9,10,11,12,13,14
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
END:DAYLIGHT
END:VTIMEZONE`},
		{"Asia/Kolkata", `BEGIN:VTIMEZONE
TZID:X
BEGIN:STANDARD
DTSTART:16010101T000000
TZOFFSETFROM:+0530
TZOFFSETTO:+0530
END:STANDARD
END:VTIMEZONE`},
	}
	for _, tt := range tests {
		t.Run(tt.iana, func(t *testing.T) {
			comp := calDecodeComponent(t, tt.vtz)
			got, err := calZoneFromVTimezone("Custom "+tt.iana, comp)
			if err != nil {
				t.Fatal(err)
			}
			want := calMustZone(t, tt.iana)
			for at := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC); at.Year() < 2030; at = at.Add(time.Hour) {
				_, g := at.In(got).Zone()
				_, w := at.In(want).Zone()
				if g != w {
					t.Fatalf("at %s: offset %d, %s has %d", at, g, tt.iana, w)
				}
			}
		})
	}
}

func TestZoneFromVTimezoneErrors(t *testing.T) {
	for _, vtz := range []string{
		"BEGIN:VTIMEZONE\nTZID:X\nEND:VTIMEZONE",
		"BEGIN:VTIMEZONE\nTZID:X\nBEGIN:STANDARD\nDTSTART:16010101T000000\nTZOFFSETTO:+25\nEND:STANDARD\nEND:VTIMEZONE",
		"BEGIN:VTIMEZONE\nTZID:X\nBEGIN:STANDARD\nDTSTART:16010101T000000\nTZOFFSETTO:+0100\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=3XX\nEND:STANDARD\n" +
			"BEGIN:DAYLIGHT\nDTSTART:16010101T000000\nTZOFFSETTO:+0200\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\nEND:DAYLIGHT\nEND:VTIMEZONE",
	} {
		if loc, err := calZoneFromVTimezone("X", calDecodeComponent(t, vtz)); err == nil {
			t.Errorf("%q: got zone %v, want an error", vtz, loc)
		}
	}
}

func calDecodeComponent(t *testing.T, text string) *ical.Component {
	t.Helper()
	cal, err := ical.NewDecoder(strings.NewReader("BEGIN:VCALENDAR\n" + text + "\nEND:VCALENDAR\n")).Decode()
	if err != nil || len(cal.Children) != 1 {
		t.Fatalf("decode %q: %v", text, err)
	}
	return cal.Children[0]
}

// RFC 5545 section 3.3.5: a time in the spring-forward gap takes the offset
// before the gap; a time in the repeated hour is its first occurrence.
func TestCalInstantDST(t *testing.T) {
	berlin := calMustZone(t, "Europe/Berlin")
	sydney := calMustZone(t, "Australia/Sydney")
	tests := []struct {
		wall string
		zone *time.Location
		want string
	}{
		{"2025-03-30T02:30:00", berlin, "2025-03-30T01:30:00Z"},
		{"2025-10-26T02:30:00", berlin, "2025-10-26T00:30:00Z"},
		{"2025-10-26T03:30:00", berlin, "2025-10-26T02:30:00Z"},
		{"2025-04-06T02:30:00", sydney, "2025-04-05T15:30:00Z"},
		{"2025-10-05T02:30:00", sydney, "2025-10-04T16:30:00Z"},
		{"2025-07-01T12:00:00", sydney, "2025-07-01T02:00:00Z"},
	}
	for _, tt := range tests {
		w, _ := time.Parse("2006-01-02T15:04:05", tt.wall)
		got := calInstant(w, tt.zone).UTC().Format(time.RFC3339)
		if got != tt.want {
			t.Errorf("calInstant(%s, %s) = %s, want %s", tt.wall, tt.zone, got, tt.want)
		}
	}
}
