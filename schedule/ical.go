package schedule

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-ical"

	"github.com/oncallbot/oncall"
)

// Limits on what ParseCalendar accepts.
const (
	calMaxBytes     = 64 << 20 // a 5,000-event export is a few MB
	calMaxDepth     = 16       // BEGIN nesting (VCALENDAR > VEVENT > VALARM is 3)
	calMaxParamsLen = 8 << 10  // parameters of one property
	calMaxDuration  = 10 * 366 * 24 * time.Hour
	calDSTSlack     = 3 * time.Hour // largest change of a UTC offset within a day
)

// Calendar is a parsed iCalendar file, ready to be expanded into shifts.
// It is immutable after ParseCalendar and safe for concurrent use.
//
// Events that do not recur are expanded once, at parse time, into a slice
// sorted by start, which Shifts binary-searches. Recurring events are
// expanded per query from their parsed rules, jumping straight to the
// window (see expand.go), so a query costs O(log n + instances returned)
// for single events and O(instances in the window) for series: no cache is
// needed, and nothing is shared between queries.
type Calendar struct {
	singles   []oncall.Shift // sorted by Start, Person
	singleMax time.Duration  // longest single shift
	series    []*calEvent
}

// calEvent is one VEVENT with its recurrence, after overrides have been
// applied: a RECURRENCE-ID override is an event of its own, and the
// instance it replaces is excluded from its master.
type calEvent struct {
	uid     string
	person  string
	zone    *time.Location // zone of the wall times
	allDay  bool
	start   time.Time // DTSTART wall time
	startAt time.Time // DTSTART instant
	span    calSpan
	rules   []*calRule
	rdates  []calRDate
	exAt    map[int64]bool // excluded start instants, Unix seconds
	exDay   map[int]bool   // excluded days (yyyymmdd) of a timed event

	maxLen  time.Duration // bound on an instance's length
	firstAt time.Time     // earliest instance start
	lastAt  time.Time     // latest instance start; zero when unbounded
}

// calSpan is the length of an instance: wall is added to the start's wall
// time (nominal days of DURATION, DTEND-DTSTART in the same zone), exact to
// the resulting instant (DURATION's hours, DTEND in another zone).
type calSpan struct {
	wall, exact time.Duration
}

// calRDate is an RDATE: a start, with an end when given as a PERIOD.
type calRDate struct {
	wall, at time.Time
	end      time.Time // zero: the event's span
}

// ParseCalendar parses an iCalendar file as Google Calendar, Outlook and
// others export it. loc is the schedule's zone, used for floating times and
// all-day (DATE) events; when nil, the calendar's X-WR-TIMEZONE is used, or
// UTC when it has none.
//
// Malformed input, an unknown time zone or an unsupported recurrence rule
// is an error: a calendar is never half read.
func ParseCalendar(data []byte, loc *time.Location) (_ *Calendar, err error) {
	if err := calCheckStructure(data); err != nil {
		return nil, fmt.Errorf("parse calendar: %w", err)
	}
	defer func() {
		// go-ical panics on a few malformed lines (a parameter at the end of a line).
		if r := recover(); r != nil {
			err = fmt.Errorf("parse calendar: malformed input: %v", r)
		}
	}()
	cal, err := ical.NewDecoder(bytes.NewReader(data)).Decode()
	if err != nil {
		return nil, fmt.Errorf("parse calendar: %w", err)
	}
	p := &calParser{zones: newCalZones(cal), loc: loc}
	if p.loc == nil {
		p.loc = time.UTC
		if prop := cal.Props.Get("X-WR-TIMEZONE"); prop != nil {
			if p.loc, err = p.zones.resolve(prop.Value); err != nil {
				return nil, fmt.Errorf("parse calendar: X-WR-TIMEZONE: %w", err)
			}
		}
	}
	c, err := p.build(cal)
	if err != nil {
		return nil, fmt.Errorf("parse calendar: %w", err)
	}
	return c, nil
}

// calCheckStructure bounds what go-ical will be asked to decode: its
// decoder recurses on BEGIN and is quadratic in the length of a parameter.
func calCheckStructure(data []byte) error {
	if len(data) > calMaxBytes {
		return fmt.Errorf("calendar is %d bytes, more than %d", len(data), calMaxBytes)
	}
	unfolded := strings.NewReplacer("\r\n ", "", "\r\n\t", "", "\n ", "", "\n\t", "").Replace(string(data))
	depth := 0
	for line := range strings.Lines(unfolded) {
		inQuote, params := false, 0
	scan:
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case c == '"':
				inQuote = !inQuote
			case c == ':' && !inQuote:
				break scan
			case c == ';' && params == 0 && !inQuote:
				params = i
			}
			if params > 0 && i-params > calMaxParamsLen {
				return fmt.Errorf("property parameters longer than %d bytes", calMaxParamsLen)
			}
		}
		name, _, _ := strings.Cut(line, ":")
		name, _, _ = strings.Cut(name, ";")
		switch strings.ToUpper(strings.TrimSpace(name)) {
		case "BEGIN":
			if depth++; depth > calMaxDepth {
				return fmt.Errorf("components nested more than %d deep", calMaxDepth)
			}
		case "END":
			depth--
		}
	}
	return nil
}

type calParser struct {
	zones *calZones
	loc   *time.Location
}

// calRaw is a VEVENT before overrides are matched to their masters.
type calRaw struct {
	ev        *calEvent
	rid       *calValue // RECURRENCE-ID
	sequence  int
	cancelled bool
	named     bool // has its own SUMMARY or ATTENDEE
}

func (p *calParser) build(cal *ical.Calendar) (*Calendar, error) {
	type key struct {
		uid string
		rid int64
	}
	latest := map[key]*calRaw{}
	var order []key
	for i, child := range cal.Children {
		if child.Name != ical.CompEvent {
			continue
		}
		raw, err := p.event(child)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		if raw.ev.uid == "" {
			raw.ev.uid = fmt.Sprintf("\x00event %d", i) // no UID: an event of its own
		}
		k := key{uid: raw.ev.uid, rid: -1 << 63}
		if raw.rid != nil {
			k.rid = raw.rid.at.Unix()
		}
		// The same event twice (a feed concatenating updates): the highest SEQUENCE wins.
		if prev, ok := latest[k]; !ok {
			order = append(order, k)
		} else if raw.sequence < prev.sequence {
			continue
		}
		latest[k] = raw
	}

	masters := map[string]*calRaw{}
	for _, k := range order {
		if r := latest[k]; r.rid == nil {
			masters[k.uid] = r
		}
	}
	var events []*calEvent
	for _, k := range order {
		r := latest[k]
		if r.rid == nil {
			if !r.cancelled {
				events = append(events, r.ev)
			}
			continue
		}
		if m, ok := masters[k.uid]; ok {
			if m.cancelled {
				continue // the whole series is cancelled
			}
			m.ev.exclude(*r.rid)
			if !r.named {
				r.ev.person = m.ev.person
			}
		}
		if !r.cancelled {
			events = append(events, r.ev)
		}
	}

	c := &Calendar{}
	budget := calCountBudget
	for _, ev := range events {
		if err := ev.finish(&budget); err != nil {
			return nil, fmt.Errorf("event %q: %w", ev.uid, err)
		}
		if len(ev.rules) > 0 || len(ev.rdates) > 0 {
			c.series = append(c.series, ev)
			continue
		}
		if ev.excluded(ev.start, ev.startAt) {
			continue
		}
		s := ev.shift(ev.start, ev.startAt)
		if s.End.After(s.Start) {
			c.singles = append(c.singles, s)
			c.singleMax = max(c.singleMax, s.End.Sub(s.Start))
		}
	}
	calSortShifts(c.singles)
	return c, nil
}

func (p *calParser) event(comp *ical.Component) (*calRaw, error) {
	ev := &calEvent{exAt: map[int64]bool{}, exDay: map[int]bool{}}
	raw := &calRaw{ev: ev}
	if prop := comp.Props.Get(ical.PropUID); prop != nil {
		ev.uid = strings.TrimSpace(prop.Value)
	}
	if prop := comp.Props.Get(ical.PropSequence); prop != nil {
		raw.sequence, _ = strconv.Atoi(strings.TrimSpace(prop.Value))
	}
	if prop := comp.Props.Get(ical.PropStatus); prop != nil {
		raw.cancelled = strings.EqualFold(strings.TrimSpace(prop.Value), string(ical.EventCancelled))
	}
	ev.person = calPerson(comp)
	raw.named = ev.person != ""

	dtstart := comp.Props.Get(ical.PropDateTimeStart)
	if dtstart == nil {
		return nil, fmt.Errorf("event %q: no DTSTART", ev.uid)
	}
	start, err := p.value(dtstart.Value, dtstart.Params)
	if err != nil {
		return nil, fmt.Errorf("event %q: DTSTART: %w", ev.uid, err)
	}
	ev.zone, ev.allDay, ev.start, ev.startAt = start.zone, start.date, start.wall, start.at

	if ev.span, err = p.span(comp, start); err != nil {
		return nil, fmt.Errorf("event %q: %w", ev.uid, err)
	}
	if prop := comp.Props.Get(ical.PropRecurrenceID); prop != nil {
		rid, err := p.value(prop.Value, prop.Params)
		if err != nil {
			return nil, fmt.Errorf("event %q: RECURRENCE-ID: %w", ev.uid, err)
		}
		raw.rid = &rid
	}
	if len(comp.Props.Values("EXRULE")) > 0 {
		return nil, fmt.Errorf("event %q: EXRULE is not supported", ev.uid)
	}
	for _, prop := range comp.Props.Values(ical.PropRecurrenceRule) {
		rule, err := calParseRule(prop.Value, ev.start, ev.zone, ev.allDay)
		if err != nil {
			return nil, fmt.Errorf("event %q: %w", ev.uid, err)
		}
		ev.rules = append(ev.rules, rule)
	}
	for _, prop := range comp.Props.Values(ical.PropExceptionDates) {
		for _, item := range strings.Split(prop.Value, ",") {
			v, err := p.value(item, prop.Params)
			if err != nil {
				return nil, fmt.Errorf("event %q: EXDATE: %w", ev.uid, err)
			}
			ev.exclude(v)
		}
	}
	for _, prop := range comp.Props.Values(ical.PropRecurrenceDates) {
		for _, item := range strings.Split(prop.Value, ",") {
			rd, err := p.rdate(item, prop.Params, ev)
			if err != nil {
				return nil, fmt.Errorf("event %q: RDATE: %w", ev.uid, err)
			}
			ev.rdates = append(ev.rdates, rd)
		}
	}
	return raw, nil
}

// calPerson names who is on call: the SUMMARY as written, or the first
// ATTENDEE (its mailto: address, else its CN).
func calPerson(comp *ical.Component) string {
	if prop := comp.Props.Get(ical.PropSummary); prop != nil {
		if s := strings.TrimSpace(calUnescape(prop.Value)); s != "" {
			return s
		}
	}
	if prop := comp.Props.Get(ical.PropAttendee); prop != nil {
		v := strings.TrimSpace(prop.Value)
		if len(v) > len("mailto:") && strings.EqualFold(v[:len("mailto:")], "mailto:") {
			return strings.TrimSpace(v[len("mailto:"):])
		}
		if cn := strings.TrimSpace(prop.Params.Get(ical.ParamCommonName)); cn != "" {
			return cn
		}
		return v
	}
	return ""
}

// calUnescape undoes TEXT escaping (RFC 5545 section 3.3.11), keeping
// unknown escapes as written rather than failing on them.
func calUnescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n', 'N':
			b.WriteByte('\n')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// calValue is a DATE or DATE-TIME value.
type calValue struct {
	wall time.Time // clock reading in zone
	zone *time.Location
	at   time.Time
	date bool
}

// value parses a DATE or DATE-TIME: UTC when it ends in Z, in its TZID
// zone, else floating (in the schedule's zone); a DATE is midnight in the
// schedule's zone.
func (p *calParser) value(s string, params ical.Params) (calValue, error) {
	s = strings.TrimSpace(s)
	switch {
	case len(s) == len("20060102"):
		w, err := time.Parse("20060102", s)
		if err != nil {
			return calValue{}, err
		}
		return calValue{wall: w, zone: p.loc, at: calInstant(w, p.loc), date: true}, nil
	case len(s) == len("20060102T150405Z") && (s[15] == 'Z' || s[15] == 'z'):
		at, err := time.Parse("20060102T150405", s[:15])
		if err != nil {
			return calValue{}, err
		}
		return calValue{wall: at, zone: time.UTC, at: at}, nil
	case len(s) == len("20060102T150405"):
		w, err := time.Parse("20060102T150405", s)
		if err != nil {
			return calValue{}, err
		}
		zone := p.loc
		if tzid := params.Get(ical.ParamTimezoneID); tzid != "" {
			if zone, err = p.zones.resolve(tzid); err != nil {
				return calValue{}, err
			}
		}
		return calValue{wall: w, zone: zone, at: calInstant(w, zone)}, nil
	}
	return calValue{}, fmt.Errorf("bad date or date-time %q", s)
}

// span computes the length of the event's instances from DTEND or DURATION.
func (p *calParser) span(comp *ical.Component, start calValue) (calSpan, error) {
	if prop := comp.Props.Get(ical.PropDateTimeEnd); prop != nil {
		end, err := p.value(prop.Value, prop.Params)
		if err != nil {
			return calSpan{}, fmt.Errorf("DTEND: %w", err)
		}
		var sp calSpan
		if end.zone.String() == start.zone.String() && end.date == start.date {
			sp.wall = end.wall.Sub(start.wall) // same zone: the clock readings
		} else {
			sp.exact = end.at.Sub(start.at)
		}
		if sp.wall < 0 || sp.exact < 0 || sp.wall+sp.exact > calMaxDuration {
			return calSpan{}, fmt.Errorf("DTEND %s is before DTSTART or too far after it", prop.Value)
		}
		return sp, nil
	}
	if prop := comp.Props.Get(ical.PropDuration); prop != nil {
		sp, err := calParseDuration(prop.Value)
		if err != nil {
			return calSpan{}, fmt.Errorf("DURATION: %w", err)
		}
		return sp, nil
	}
	if start.date {
		return calSpan{wall: 24 * time.Hour}, nil // an all-day event lasts its day
	}
	return calSpan{}, nil // a moment: no shift
}

// calParseDuration parses a DURATION: weeks and days are nominal (wall
// clock) days, hours, minutes and seconds exact.
func calParseDuration(s string) (calSpan, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	rest := strings.TrimPrefix(s, "+")
	if strings.HasPrefix(rest, "-") {
		return calSpan{}, fmt.Errorf("negative duration %q", s)
	}
	rest, ok := strings.CutPrefix(rest, "P")
	if !ok || rest == "" || rest == "T" {
		return calSpan{}, fmt.Errorf("bad duration %q", s)
	}
	var sp calSpan
	inTime := false
	for rest != "" {
		if rest[0] == 'T' && !inTime {
			inTime, rest = true, rest[1:]
			continue
		}
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) || i > 9 {
			return calSpan{}, fmt.Errorf("bad duration %q", s)
		}
		n, _ := strconv.Atoi(rest[:i])
		d := time.Duration(n)
		switch unit := rest[i]; {
		case !inTime && unit == 'W':
			sp.wall += d * 7 * 24 * time.Hour
		case !inTime && unit == 'D':
			sp.wall += d * 24 * time.Hour
		case inTime && unit == 'H':
			sp.exact += d * time.Hour
		case inTime && unit == 'M':
			sp.exact += d * time.Minute
		case inTime && unit == 'S':
			sp.exact += d * time.Second
		default:
			return calSpan{}, fmt.Errorf("bad duration %q", s)
		}
		if sp.wall+sp.exact > calMaxDuration {
			return calSpan{}, fmt.Errorf("duration %q longer than %s", s, calMaxDuration)
		}
		rest = rest[i+1:]
	}
	return sp, nil
}

// rdate parses one RDATE item: a DATE-TIME, a DATE (at DTSTART's time of
// day for a timed event) or a PERIOD (start/end or start/duration).
func (p *calParser) rdate(item string, params ical.Params, ev *calEvent) (calRDate, error) {
	startText, endText, isPeriod := strings.Cut(strings.TrimSpace(item), "/")
	v, err := p.value(startText, params)
	if err != nil {
		return calRDate{}, err
	}
	rd := calRDate{at: v.at, wall: calWall(v.at, ev.zone)}
	if v.date && !ev.allDay {
		rd.wall = v.wall.Add(ev.start.Sub(calDay(ev.start)))
		rd.at = calInstant(rd.wall, ev.zone)
	}
	if !isPeriod {
		return rd, nil
	}
	if strings.HasPrefix(strings.ToUpper(strings.TrimLeft(endText, "+")), "P") {
		sp, err := calParseDuration(endText)
		if err != nil {
			return calRDate{}, err
		}
		rd.end = calInstant(calWall(rd.at, v.zone).Add(sp.wall), v.zone).Add(sp.exact)
	} else {
		end, err := p.value(endText, params)
		if err != nil {
			return calRDate{}, err
		}
		rd.end = end.at
	}
	if rd.end.Before(rd.at) || rd.end.Sub(rd.at) > calMaxDuration {
		return calRDate{}, fmt.Errorf("period %q ends before it starts or is too long", item)
	}
	return rd, nil
}

// exclude removes the instance starting at v (an EXDATE or the
// RECURRENCE-ID of an override). A DATE excludes the day of a timed event.
func (ev *calEvent) exclude(v calValue) {
	if v.date && !ev.allDay {
		ev.exDay[calDayKey(v.wall)] = true
		return
	}
	ev.exAt[v.at.Unix()] = true
}

func (ev *calEvent) excluded(wall, at time.Time) bool {
	return ev.exAt[at.Unix()] || (len(ev.exDay) > 0 && ev.exDay[calDayKey(wall)])
}

func calDayKey(w time.Time) int {
	return w.Year()*10000 + int(w.Month())*100 + w.Day()
}

// finish resolves COUNT and computes the bounds used to skip the event.
func (ev *calEvent) finish(budget *int) error {
	ev.maxLen = ev.span.wall + ev.span.exact + calDSTSlack
	ev.firstAt, ev.lastAt = ev.startAt, ev.startAt
	bounded := true
	for _, r := range ev.rules {
		if err := r.resolveCount(budget); err != nil {
			return err
		}
		if r.until.IsZero() {
			bounded = false
		} else if r.until.After(ev.lastAt) {
			ev.lastAt = r.until
		}
	}
	for _, rd := range ev.rdates {
		if rd.at.Before(ev.firstAt) {
			ev.firstAt = rd.at
		}
		if rd.at.After(ev.lastAt) {
			ev.lastAt = rd.at
		}
		if !rd.end.IsZero() {
			ev.maxLen = max(ev.maxLen, rd.end.Sub(rd.at))
		}
	}
	if !bounded {
		ev.lastAt = time.Time{}
	}
	return nil
}

// shift is the instance starting at the wall time w (instant at).
func (ev *calEvent) shift(w, at time.Time) oncall.Shift {
	end := calInstant(w.Add(ev.span.wall), ev.zone).Add(ev.span.exact)
	return oncall.Shift{Person: ev.person, Start: at, End: end, Source: "calendar"}
}

// Shifts returns the occurrences overlapping [from, to), sorted by Start
// then Person. Person is the SUMMARY (trimmed) or the first ATTENDEE;
// Schedule is "" and Source "calendar". Cancelled events and instances,
// and instances of zero length, are not returned.
//
// A query is bounded: at most calMaxShiftsPerQuery (200,000) instances in
// all, 100,000 per event and 400,000 recurrence periods per rule (a daily
// rule over 1,000 years) are expanded. Past the total, single events are
// taken earliest first and series in calendar order, and the rest are
// dropped; the source loader rejects a calendar that reaches it in its
// usual window, so a calendar in use only reaches it on unusually long
// queries.
func (c *Calendar) Shifts(from, to time.Time) []oncall.Shift {
	out, _ := c.shiftsBudgeted(from, to)
	return out
}

// shiftsBudgeted is Shifts, also reporting whether instances were dropped
// because the query reached calMaxShiftsPerQuery.
func (c *Calendar) shiftsBudgeted(from, to time.Time) ([]oncall.Shift, bool) {
	if c == nil || !from.Before(to) {
		return nil, false
	}
	var out []oncall.Shift
	budget := calMaxShiftsPerQuery
	lo := from.Add(-c.singleMax)
	i := sort.Search(len(c.singles), func(i int) bool { return c.singles[i].Start.After(lo) })
	for ; i < len(c.singles) && c.singles[i].Start.Before(to); i++ {
		if !c.singles[i].End.After(from) {
			continue
		}
		if budget == 0 {
			calSortShifts(out)
			return out, true
		}
		budget--
		out = append(out, c.singles[i])
	}
	for _, ev := range c.series {
		var hit bool
		if out, hit = ev.appendShifts(out, from, to, &budget); hit {
			calSortShifts(out)
			return out, true
		}
	}
	calSortShifts(out)
	return out, false
}

// appendShifts appends the event's instances overlapping [from, to),
// spending one unit of *budget per instance start considered (starts just
// outside the window and excluded ones included). hit reports that the
// budget ran out before the event's instances did.
func (ev *calEvent) appendShifts(out []oncall.Shift, from, to time.Time, budget *int) (_ []oncall.Shift, hit bool) {
	if !ev.firstAt.Before(to) || (!ev.lastAt.IsZero() && !ev.lastAt.Add(ev.maxLen).After(from)) {
		return out, false
	}
	// Wall-time window of starts that can reach [from, to).
	lo := calWall(from.Add(-ev.maxLen), ev.zone)
	hi := calWall(to, ev.zone).Add(calDSTSlack)
	type start struct {
		wall, at, end time.Time
	}
	var starts []start
	add := func(s start) bool {
		if *budget <= 0 {
			hit = true
			return false
		}
		*budget--
		starts = append(starts, s)
		return len(starts) < calMaxInstances
	}
	if !ev.start.Before(lo) && ev.start.Before(hi) {
		add(start{wall: ev.start, at: ev.startAt}) // DTSTART is always an instance
	}
	for _, r := range ev.rules {
		if hit {
			break
		}
		r.expand(lo, hi, func(w, at time.Time) bool { return add(start{wall: w, at: at}) })
	}
	for _, rd := range ev.rdates {
		if hit {
			break
		}
		if !rd.wall.Before(lo) && rd.wall.Before(hi) {
			add(start{wall: rd.wall, at: rd.at, end: rd.end})
		}
	}
	slices.SortStableFunc(starts, func(a, b start) int { return a.at.Compare(b.at) })
	for i, s := range starts {
		if i > 0 && s.at.Equal(starts[i-1].at) {
			continue // RFC 5545: the recurrence set has no duplicates
		}
		if ev.excluded(s.wall, s.at) || !s.at.Before(to) {
			continue
		}
		sh := ev.shift(s.wall, s.at)
		if !s.end.IsZero() {
			sh.End = s.end
		}
		if sh.End.After(from) && sh.End.After(sh.Start) {
			out = append(out, sh)
		}
	}
	return out, hit
}

func calSortShifts(s []oncall.Shift) {
	slices.SortFunc(s, func(a, b oncall.Shift) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		if c := strings.Compare(a.Person, b.Person); c != 0 {
			return c
		}
		return a.End.Compare(b.End)
	})
}
