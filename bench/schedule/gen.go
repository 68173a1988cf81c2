package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/oncallbot/oncall"
)

// genTZ is the calendar's zone, written as Google Calendar writes it.
const genTZ = "Europe/Berlin"

const genVTimezone = `BEGIN:VTIMEZONE
TZID:Europe/Berlin
X-LIC-LOCATION:Europe/Berlin
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
END:VTIMEZONE
`

// genStats counts what a generated calendar holds.
type genStats struct {
	Events    int // VEVENTs
	Series    int // recurring VEVENTs
	Overrides int // RECURRENCE-ID VEVENTs, Cancelled of them STATUS:CANCELLED
	Cancelled int
	ExDates   int
	Singles   int // single VEVENTs, of them AllDay, Duration (DURATION
	AllDay    int // instead of DTEND) and Attendee (no SUMMARY, the person
	Duration  int // from ATTENDEE)
	Attendee  int
}

// genCalendar is a generated calendar: its text, and the shifts a correct
// expansion gives for the year (any order).
type genCalendar struct {
	Data  []byte
	Want  []oncall.Shift
	Stats genStats
	From  time.Time // the year, in the calendar's zone
	To    time.Time
}

// genSeries is a recurring event and every instance start it has, in
// order, as the rule produces them.
type genSeries struct {
	uid, person string
	start       time.Time
	length      time.Duration
	rule        string
	instances   []time.Time
	exdate      int             // index of the excluded instance; -1 when none
	overridden  map[int]genOver // by instance index
}

type genOver struct {
	person     string
	start, end time.Time
	cancelled  bool
}

// generate builds a calendar of n VEVENTs for year in Europe/Berlin: 30 %
// recurring series (weekly with BYDAY and COUNT, daily with INTERVAL and
// UNTIL, biweekly until the end of the year, monthly with COUNT; one in five
// with an EXDATE), 20 % RECURRENCE-ID overrides of single instances (moved
// and given to someone else; one in ten cancelled), 50 % single events
// (UTC, TZID, DURATION instead of DTEND, all-day, ATTENDEE without
// SUMMARY). It also returns the shifts a correct expansion yields, computed
// independently from the rules it wrote.
//
// Recurring events and TZID singles stay within one local day and start at
// 03:00 or later, so no instance contains a DST change or starts in one:
// the expected shifts do not depend on how an expansion treats those.
func generate(r *rand.Rand, n, year int, loc *time.Location) genCalendar {
	g := genCalendar{
		From: time.Date(year, 1, 1, 0, 0, 0, 0, loc),
		To:   time.Date(year+1, 1, 1, 0, 0, 0, 0, loc),
	}
	nSeries := n * 30 / 100
	nOverrides := n * 20 / 100
	nSingles := n - nSeries - nOverrides
	person := func() string { return fmt.Sprintf("person%03d@example.com", r.IntN(200)) }

	series := make([]*genSeries, nSeries)
	for i := range series {
		series[i] = genNewSeries(r, i, person(), year, loc)
	}
	// Overrides of random instances, never the first (DTSTART) nor the
	// excluded one, each instance at most once.
	for placed, tries := 0, 0; len(series) > 0 && placed < nOverrides && tries < 100*nOverrides; tries++ {
		s := series[r.IntN(len(series))]
		if len(s.instances) < 3 {
			continue
		}
		k := 1 + r.IntN(len(s.instances)-1)
		if _, taken := s.overridden[k]; taken || k == s.exdate {
			continue
		}
		orig := s.instances[k]
		o := genOver{person: person(), start: orig.Add(time.Duration(r.IntN(5)-2) * time.Hour)}
		o.end = o.start.Add(time.Duration(1+r.IntN(10)) * time.Hour)
		if r.IntN(10) == 0 {
			o = genOver{start: orig, end: orig.Add(s.length), cancelled: true}
		}
		s.overridden[k] = o
		placed++
	}

	var b bytes.Buffer
	b.WriteString("BEGIN:VCALENDAR\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\nVERSION:2.0\r\n" +
		"CALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\nX-WR-CALNAME:Bench on call\r\nX-WR-TIMEZONE:" + genTZ + "\r\n")
	b.WriteString(strings.ReplaceAll(genVTimezone, "\n", "\r\n"))
	for _, s := range series {
		g.Want = genWriteSeries(&b, s, g.Want, &g.Stats)
	}
	for i := range nSingles {
		g.Want = genWriteSingle(&b, r, i, person(), year, loc, g.Want, &g.Stats)
	}
	b.WriteString("END:VCALENDAR\r\n")
	g.Data = b.Bytes()

	// Only what overlaps the year.
	g.Want = slices.DeleteFunc(g.Want, func(s oncall.Shift) bool { return !s.Start.Before(g.To) || !s.End.After(g.From) })
	return g
}

func genNewSeries(r *rand.Rand, i int, person string, year int, loc *time.Location) *genSeries {
	// A start in the first half of the year, 03:00 to 14:00 local, lasting
	// at most until midnight.
	hour := 3 + r.IntN(12)
	start := time.Date(year, time.Month(1+r.IntN(6)), 1+r.IntN(28), hour, 15*r.IntN(4), 0, 0, loc)
	s := &genSeries{
		uid:        fmt.Sprintf("series-%04d@bench.example.com", i),
		person:     person,
		length:     time.Duration(1+r.IntN(min(12, 23-hour))) * time.Hour,
		exdate:     -1,
		overridden: map[int]genOver{},
	}
	days := func(t time.Time, n int) time.Time { return t.AddDate(0, 0, n) }
	switch p := r.IntN(100); {
	case p < 40: // weekly on 1 to 3 days, the first DTSTART's weekday
		offs := []int{0}
		for d := 1; d < 7 && len(offs) < 3; d++ {
			if r.IntN(3) == 0 {
				offs = append(offs, d)
			}
		}
		var byDay []string
		for _, o := range offs {
			byDay = append(byDay, genWeekday(start.AddDate(0, 0, o).Weekday()))
		}
		count := 4 + r.IntN(23)
		s.rule = fmt.Sprintf("FREQ=WEEKLY;BYDAY=%s;COUNT=%d", strings.Join(byDay, ","), count)
		// Every week (INTERVAL=1), so the instances are the days from
		// DTSTART on with a weekday in BYDAY, whatever WKST: the k-th is in
		// week k/len(offs), at offset offs[k%len(offs)].
		for k := 0; k < count; k++ {
			s.instances = append(s.instances, days(start, k/len(offs)*7+offs[k%len(offs)]))
		}
	case p < 65: // every 1 to 3 days for 2 to 8 weeks
		step := 1 + r.IntN(3)
		last := days(start, step*(14/step+r.IntN(43/step)))
		s.rule = fmt.Sprintf("FREQ=DAILY;INTERVAL=%d;UNTIL=%s", step, last.UTC().Format("20060102T150405Z"))
		for t := start; !t.After(last); t = days(t, step) {
			s.instances = append(s.instances, t)
		}
	case p < 85: // every other week until the end of the year
		until := time.Date(year, 12, 31, 23, 59, 59, 0, time.UTC)
		s.rule = fmt.Sprintf("FREQ=WEEKLY;INTERVAL=2;BYDAY=%s;UNTIL=%s", genWeekday(start.Weekday()), until.Format("20060102T150405Z"))
		for t := start; !t.After(until); t = days(t, 14) {
			s.instances = append(s.instances, t)
		}
	default: // monthly, 3 to 12 times
		count := 3 + r.IntN(10)
		s.rule = fmt.Sprintf("FREQ=MONTHLY;COUNT=%d", count)
		for k := 0; k < count; k++ {
			s.instances = append(s.instances, start.AddDate(0, k, 0))
		}
	}
	s.start = start
	if r.IntN(5) == 0 && len(s.instances) > 2 {
		s.exdate = 1
	}
	return s
}

func genWriteSeries(b *bytes.Buffer, s *genSeries, want []oncall.Shift, st *genStats) []oncall.Shift {
	st.Events++
	st.Series++
	fmt.Fprintf(b, "BEGIN:VEVENT\r\nDTSTART;TZID=%s:%s\r\nDTEND;TZID=%s:%s\r\nRRULE:%s\r\n",
		genTZ, genLocal(s.start), genTZ, genLocal(s.start.Add(s.length)), s.rule)
	if s.exdate >= 0 {
		st.ExDates++
		fmt.Fprintf(b, "EXDATE;TZID=%s:%s\r\n", genTZ, genLocal(s.instances[s.exdate]))
	}
	fmt.Fprintf(b, "DTSTAMP:20260101T000000Z\r\nUID:%s\r\nSUMMARY:%s\r\nSTATUS:CONFIRMED\r\nTRANSP:OPAQUE\r\nEND:VEVENT\r\n", s.uid, s.person)

	for k, t := range s.instances {
		o, over := s.overridden[k]
		switch {
		case k == s.exdate:
		case over:
			st.Events++
			st.Overrides++
			status := "CONFIRMED"
			if o.cancelled {
				st.Cancelled++
				status = "CANCELLED"
			} else {
				want = append(want, genShift(o.person, o.start, o.end))
			}
			summary := o.person
			if o.cancelled {
				summary = s.person
			}
			fmt.Fprintf(b, "BEGIN:VEVENT\r\nDTSTART:%s\r\nDTEND:%s\r\nDTSTAMP:20260101T000000Z\r\nUID:%s\r\n"+
				"RECURRENCE-ID;TZID=%s:%s\r\nSUMMARY:%s\r\nSTATUS:%s\r\nSEQUENCE:1\r\nEND:VEVENT\r\n",
				genUTC(o.start), genUTC(o.end), s.uid, genTZ, genLocal(t), summary, status)
		default:
			want = append(want, genShift(s.person, t, t.Add(s.length)))
		}
	}
	return want
}

func genWriteSingle(b *bytes.Buffer, r *rand.Rand, i int, person string, year int, loc *time.Location, want []oncall.Shift, st *genStats) []oncall.Shift {
	st.Events++
	st.Singles++
	day := time.Date(year, 1, 1, 0, 0, 0, 0, loc).AddDate(0, 0, r.IntN(365))
	fmt.Fprintf(b, "BEGIN:VEVENT\r\nDTSTAMP:20260101T000000Z\r\nUID:single-%04d@bench.example.com\r\n", i)
	summary := "SUMMARY:" + person + "\r\n"
	var start, end time.Time
	switch p := r.IntN(100); {
	case p < 50: // UTC, up to a day, across midnight
		start = time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(365*24*4)) * 15 * time.Minute)
		end = start.Add(time.Duration(1+r.IntN(24)) * time.Hour)
		fmt.Fprintf(b, "DTSTART:%s\r\nDTEND:%s\r\n", genUTC(start), genUTC(end))
	case p < 70: // local time with TZID, within the day, from 03:00
		hour := 3 + r.IntN(18)
		start = time.Date(day.Year(), day.Month(), day.Day(), hour, 30*r.IntN(2), 0, 0, loc)
		end = start.Add(time.Duration(1+r.IntN(23-hour)) * time.Hour)
		fmt.Fprintf(b, "DTSTART;TZID=%s:%s\r\nDTEND;TZID=%s:%s\r\n", genTZ, genLocal(start), genTZ, genLocal(end))
	case p < 80: // DURATION instead of DTEND
		st.Duration++
		start = time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(365*24)) * time.Hour)
		hours := 1 + r.IntN(12)
		end = start.Add(time.Duration(hours) * time.Hour)
		fmt.Fprintf(b, "DTSTART:%s\r\nDURATION:PT%dH\r\n", genUTC(start), hours)
	case p < 90: // all day, 1 to 7 days, in the calendar's zone
		st.AllDay++
		start = day
		end = day.AddDate(0, 0, 1+r.IntN(7))
		fmt.Fprintf(b, "DTSTART;VALUE=DATE:%s\r\nDTEND;VALUE=DATE:%s\r\n", start.Format("20060102"), end.Format("20060102"))
	default: // the person as the attendee, no SUMMARY
		st.Attendee++
		start = time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(365*24)) * time.Hour)
		end = start.Add(time.Duration(1+r.IntN(12)) * time.Hour)
		fmt.Fprintf(b, "DTSTART:%s\r\nDTEND:%s\r\nATTENDEE;CN=On call;ROLE=REQ-PARTICIPANT:mailto:%s\r\n", genUTC(start), genUTC(end), person)
		summary = ""
	}
	b.WriteString(summary)
	b.WriteString("END:VEVENT\r\n")
	return append(want, genShift(person, start, end))
}

func genShift(person string, start, end time.Time) oncall.Shift {
	return oncall.Shift{Person: person, Start: start, End: end, Source: "calendar"}
}

func genLocal(t time.Time) string { return t.Format("20060102T150405") }
func genUTC(t time.Time) string   { return t.UTC().Format("20060102T150405Z") }

func genWeekday(d time.Weekday) string {
	return [...]string{"SU", "MO", "TU", "WE", "TH", "FR", "SA"}[d]
}

// genOverrides is a layer of n overrides made in Slack: 1 to 12 hours
// each, anywhere in [from, to).
func genOverrides(r *rand.Rand, n int, from, to time.Time) []oncall.Shift {
	hours := int(to.Sub(from) / time.Hour)
	out := make([]oncall.Shift, n)
	for i := range out {
		start := from.Add(time.Duration(r.IntN(hours)) * time.Hour)
		out[i] = oncall.Shift{
			Person: fmt.Sprintf("person%03d@example.com", r.IntN(200)),
			Start:  start,
			End:    start.Add(time.Duration(1+r.IntN(12)) * time.Hour),
			Source: "override",
		}
	}
	return out
}
