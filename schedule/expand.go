package schedule

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Recurrence expansion (RFC 5545 section 3.3.10) in local wall time.
//
// Wall times are time.Time values in UTC whose fields are the local clock
// reading in the event's zone; calInstant turns one into an instant. Rules
// step through periods (a day, a week, a month, a year) of the wall
// calendar, so a weekly Monday 09:00 Europe/Berlin shift stays at 09:00
// across DST, and a query jumps straight to the first period that can
// reach its window: the work of Shifts(from, to) is proportional to the
// instances in the window, not to the age of the series. COUNT is resolved
// once at parse time into the instant of the last counted instance, so a
// counted series jumps ahead the same way.
//
// github.com/teambition/rrule-go is not used: it always iterates from
// DTSTART, and it has no bound on the work spent looking for an instance
// of a rule that never matches (FREQ=MONTHLY;BYMONTHDAY=31;BYMONTH=2).

// Bounds on the work of one expansion.
const (
	calMaxCount          = 100_000 // largest COUNT accepted
	calMaxInterval       = 10_000  // largest INTERVAL accepted
	calMaxTimesPerDay    = 1_440   // BYHOUR x BYMINUTE x BYSECOND
	calMaxPeriodsPerRule = 400_000 // periods stepped per rule and query (a daily rule: 1,000 years)
	calMaxInstances      = 100_000 // instances of one event per query
	// calMaxShiftsPerQuery bounds the instances of a whole calendar per
	// query, shared by all its events: without it, every event of a
	// hostile calendar may spend calMaxInstances. 200,000 shifts are about
	// 20 MB; a real calendar has a few hundred in the loader's 97 days.
	calMaxShiftsPerQuery = 200_000
	calCountBudget       = 20_000_000
)

type calFreq int

const (
	calDaily calFreq = iota
	calWeekly
	calMonthly
	calYearly
)

var calFreqs = map[string]calFreq{"DAILY": calDaily, "WEEKLY": calWeekly, "MONTHLY": calMonthly, "YEARLY": calYearly}

var calWeekdays = map[string]time.Weekday{
	"SU": time.Sunday, "MO": time.Monday, "TU": time.Tuesday, "WE": time.Wednesday,
	"TH": time.Thursday, "FR": time.Friday, "SA": time.Saturday,
}

// calByDay is one BYDAY entry: a weekday, with an ordinal in the month or
// year (1MO is the first Monday, -1FR the last Friday) or 0 for every one.
type calByDay struct {
	n  int
	wd time.Weekday
}

// calRule is a parsed RRULE bound to its event's DTSTART.
type calRule struct {
	freq       calFreq
	interval   int
	count      int
	until      time.Time // last allowed start instant; zero when unbounded
	byMonth    []int
	byMonthDay []int
	byYearDay  []int
	byDay      []calByDay
	bySetPos   []int
	times      []time.Duration // times of day, sorted
	wkst       time.Weekday

	dtstart time.Time // wall
	zone    *time.Location
	origin  time.Time // wall midnight of the first period's first day
}

// calParseRule parses an RRULE value for an event starting at the wall
// time dtstart in zone (all-day events: midnight, allDay true).
func calParseRule(value string, dtstart time.Time, zone *time.Location, allDay bool) (*calRule, error) {
	r := &calRule{interval: 1, wkst: time.Monday, dtstart: dtstart, zone: zone}
	var hours, minutes, seconds []int
	seen := map[string]bool{}
	for _, part := range strings.Split(strings.TrimSpace(value), ";") {
		if part == "" {
			continue
		}
		key, val, ok := strings.Cut(part, "=")
		key, val = strings.ToUpper(strings.TrimSpace(key)), strings.ToUpper(strings.TrimSpace(val))
		if !ok || val == "" {
			return nil, fmt.Errorf("RRULE part %q: want KEY=VALUE", part)
		}
		if seen[key] {
			return nil, fmt.Errorf("RRULE: %s given twice", key)
		}
		seen[key] = true
		var err error
		switch key {
		case "FREQ":
			f, ok := calFreqs[val]
			if !ok {
				return nil, fmt.Errorf("RRULE: FREQ=%s not supported (DAILY, WEEKLY, MONTHLY or YEARLY)", val)
			}
			r.freq = f
		case "INTERVAL":
			r.interval, err = calAtoiRange(val, 1, calMaxInterval)
		case "COUNT":
			r.count, err = calAtoiRange(val, 1, calMaxCount)
		case "UNTIL":
			r.until, err = calParseUntil(val, zone)
		case "BYMONTH":
			r.byMonth, err = calIntList(val, 1, 12, false)
		case "BYMONTHDAY":
			r.byMonthDay, err = calIntList(val, 1, 31, true)
		case "BYYEARDAY":
			r.byYearDay, err = calIntList(val, 1, 366, true)
		case "BYSETPOS":
			r.bySetPos, err = calIntList(val, 1, 366, true)
		case "BYHOUR":
			hours, err = calIntList(val, 0, 23, false)
		case "BYMINUTE":
			minutes, err = calIntList(val, 0, 59, false)
		case "BYSECOND":
			seconds, err = calIntList(val, 0, 59, false)
		case "BYDAY":
			r.byDay, err = calParseByDay(val)
		case "WKST":
			wd, ok := calWeekdays[val]
			if !ok {
				err = fmt.Errorf("bad weekday %q", val)
			}
			r.wkst = wd
		default:
			if !strings.HasPrefix(key, "X-") {
				return nil, fmt.Errorf("RRULE: %s not supported", key)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("RRULE %s: %w", key, err)
		}
	}
	if !seen["FREQ"] {
		return nil, fmt.Errorf("RRULE %q: no FREQ", value)
	}
	if seen["COUNT"] && seen["UNTIL"] {
		return nil, fmt.Errorf("RRULE %q: both COUNT and UNTIL", value)
	}
	switch {
	case r.freq != calYearly && r.byYearDay != nil:
		return nil, fmt.Errorf("RRULE %q: BYYEARDAY needs FREQ=YEARLY", value)
	case r.freq == calWeekly && r.byMonthDay != nil:
		return nil, fmt.Errorf("RRULE %q: BYMONTHDAY with FREQ=WEEKLY", value)
	case r.bySetPos != nil && r.byDay == nil && r.byMonthDay == nil && r.byYearDay == nil && r.byMonth == nil && hours == nil && minutes == nil && seconds == nil:
		return nil, fmt.Errorf("RRULE %q: BYSETPOS without another BYxxx", value)
	}
	for _, d := range r.byDay {
		if d.n != 0 && (r.freq == calDaily || r.freq == calWeekly || (r.freq == calYearly && d.n > 53) || (r.freq == calMonthly && d.n > 5)) {
			return nil, fmt.Errorf("RRULE %q: BYDAY ordinal %d not allowed here", value, d.n)
		}
	}
	if allDay && (hours != nil || minutes != nil || seconds != nil) {
		return nil, fmt.Errorf("RRULE %q: BYHOUR/BYMINUTE/BYSECOND on an all-day event", value)
	}
	if hours == nil {
		hours = []int{dtstart.Hour()}
	}
	if minutes == nil {
		minutes = []int{dtstart.Minute()}
	}
	if seconds == nil {
		seconds = []int{dtstart.Second()}
	}
	if len(hours)*len(minutes)*len(seconds) > calMaxTimesPerDay {
		return nil, fmt.Errorf("RRULE %q: more than %d times a day", value, calMaxTimesPerDay)
	}
	for _, h := range hours {
		for _, m := range minutes {
			for _, s := range seconds {
				r.times = append(r.times, time.Duration(h)*time.Hour+time.Duration(m)*time.Minute+time.Duration(s)*time.Second)
			}
		}
	}
	slices.Sort(r.times)
	r.times = slices.Compact(r.times)

	day := calDay(dtstart)
	switch r.freq {
	case calDaily:
		r.origin = day
	case calWeekly:
		r.origin = day.AddDate(0, 0, -((int(day.Weekday()) - int(r.wkst) + 7) % 7))
	case calMonthly:
		r.origin = time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, time.UTC)
	case calYearly:
		r.origin = time.Date(day.Year(), time.January, 1, 0, 0, 0, 0, time.UTC)
	}
	return r, nil
}

func calAtoiRange(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(s, "+"))
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q is not a number in [%d, %d]", s, lo, hi)
	}
	return n, nil
}

// calIntList parses a comma list of numbers in [lo, hi], or in [-hi, -lo]
// too when negative is allowed.
func calIntList(s string, lo, hi int, negative bool) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(f), "+"))
		if err != nil || !(n >= lo && n <= hi || negative && n <= -lo && n >= -hi) {
			return nil, fmt.Errorf("%q is out of range", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func calParseByDay(s string) ([]calByDay, error) {
	var out []calByDay
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if len(f) < 2 {
			return nil, fmt.Errorf("bad weekday %q", f)
		}
		wd, ok := calWeekdays[f[len(f)-2:]]
		if !ok {
			return nil, fmt.Errorf("bad weekday %q", f)
		}
		d := calByDay{wd: wd}
		if ord := f[:len(f)-2]; ord != "" {
			n, err := strconv.Atoi(strings.TrimPrefix(ord, "+"))
			if err != nil || n == 0 || n > 53 || n < -53 {
				return nil, fmt.Errorf("bad weekday %q", f)
			}
			d.n = n
		}
		out = append(out, d)
	}
	return out, nil
}

// calParseUntil parses UNTIL: a UTC date-time (Z), a floating date-time in
// the event's zone, or a date, which includes the whole day.
func calParseUntil(s string, zone *time.Location) (time.Time, error) {
	switch len(s) {
	case len("20060102T150405Z"):
		return time.Parse("20060102T150405Z", s)
	case len("20060102T150405"):
		w, err := time.Parse("20060102T150405", s)
		if err != nil {
			return time.Time{}, err
		}
		return calInstant(w, zone), nil
	case len("20060102"):
		d, err := time.Parse("20060102", s)
		if err != nil {
			return time.Time{}, err
		}
		return calInstant(d.AddDate(0, 0, 1), zone).Add(-time.Second), nil
	}
	return time.Time{}, fmt.Errorf("bad date %q", s)
}

// calDay is the wall midnight of a wall time.
func calDay(w time.Time) time.Time {
	return time.Date(w.Year(), w.Month(), w.Day(), 0, 0, 0, 0, time.UTC)
}

// calDaysIn is the number of days of a month.
func calDaysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// calWall is the local clock reading of an instant in zone.
func calWall(t time.Time, zone *time.Location) time.Time {
	t = t.In(zone)
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// calInstant turns a wall time in zone into an instant as RFC 5545 asks: a
// time in a DST gap uses the offset before the gap (02:30 becomes 03:30
// summer time), an ambiguous time in the repeated hour is the first one.
func calInstant(w time.Time, zone *time.Location) time.Time {
	t := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), zone)
	_, off := t.Zone()
	_, before := t.Add(-3 * time.Hour).Zone()
	if before > off {
		// Clocks went back within the last hours: the earlier reading of the
		// same wall time, if it exists, comes first.
		earlier := t.Add(-time.Duration(before-off) * time.Second)
		if calWall(earlier, zone).Equal(w) {
			return earlier
		}
	}
	return t
}

// calPeriodIndex is the index of the period containing the wall day d,
// counted from the rule's first period (may be negative).
func (r *calRule) periodIndex(d time.Time) int {
	switch r.freq {
	case calDaily:
		return calDaysBetween(r.origin, d)
	case calWeekly:
		return calFloorDiv(calDaysBetween(r.origin, d), 7)
	case calMonthly:
		return (d.Year()-r.origin.Year())*12 + int(d.Month()) - int(r.origin.Month())
	default:
		return d.Year() - r.origin.Year()
	}
}

// period returns the first wall day and the number of days of period k.
func (r *calRule) period(k int) (time.Time, int) {
	switch r.freq {
	case calDaily:
		return r.origin.AddDate(0, 0, k), 1
	case calWeekly:
		return r.origin.AddDate(0, 0, 7*k), 7
	case calMonthly:
		first := r.origin.AddDate(0, k, 0)
		return first, calDaysIn(first.Year(), first.Month())
	default:
		first := r.origin.AddDate(k, 0, 0)
		return first, time.Date(first.Year(), time.December, 31, 0, 0, 0, 0, time.UTC).YearDay()
	}
}

func calDaysBetween(a, b time.Time) int {
	return int(calFloorDiv64(b.Unix()-a.Unix(), 86400))
}

func calFloorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func calFloorDiv64(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// matches reports whether the wall day d (in a period of the rule) is an
// occurrence day.
func (r *calRule) matches(d time.Time) bool {
	year, month, day := d.Date()
	if r.byMonth != nil && !slices.Contains(r.byMonth, int(month)) {
		return false
	}
	if r.byMonthDay == nil && r.byYearDay == nil && r.byDay == nil {
		// No day rule: the day of DTSTART.
		switch r.freq {
		case calWeekly:
			return d.Weekday() == r.dtstart.Weekday()
		case calMonthly:
			return day == r.dtstart.Day()
		case calYearly:
			return day == r.dtstart.Day() && (r.byMonth != nil || month == r.dtstart.Month())
		}
		return true
	}
	dim := calDaysIn(year, month)
	if r.byMonthDay != nil && !slices.Contains(r.byMonthDay, day) && !slices.Contains(r.byMonthDay, day-dim-1) {
		return false
	}
	if r.byYearDay != nil {
		diy := time.Date(year, time.December, 31, 0, 0, 0, 0, time.UTC).YearDay()
		if !slices.Contains(r.byYearDay, d.YearDay()) && !slices.Contains(r.byYearDay, d.YearDay()-diy-1) {
			return false
		}
	}
	return r.byDay == nil || r.matchesByDay(d, dim)
}

func (r *calRule) matchesByDay(d time.Time, dim int) bool {
	for _, bd := range r.byDay {
		if bd.wd != d.Weekday() {
			continue
		}
		if bd.n == 0 {
			return true
		}
		// Ordinals count in the month (MONTHLY, or YEARLY with BYMONTH) or in the year.
		pos, last := d.Day(), dim
		if r.freq == calYearly && r.byMonth == nil {
			pos = d.YearDay()
			last = time.Date(d.Year(), time.December, 31, 0, 0, 0, 0, time.UTC).YearDay()
		}
		if bd.n == (pos-1)/7+1 || bd.n == -((last-pos)/7+1) {
			return true
		}
	}
	return false
}

// occurrences appends the wall start times of period k, in order, after
// BYSETPOS.
func (r *calRule) occurrences(k int, out []time.Time) []time.Time {
	first, n := r.period(k)
	start := len(out)
	for i := 0; i < n; i++ {
		d := first.Add(time.Duration(i) * 24 * time.Hour) // wall days are UTC: no DST
		if !r.matches(d) {
			continue
		}
		for _, tod := range r.times {
			out = append(out, d.Add(tod))
		}
	}
	if r.bySetPos == nil {
		return out
	}
	set := out[start:]
	var picked []time.Time
	for _, p := range r.bySetPos {
		i := p - 1
		if p < 0 {
			i = len(set) + p
		}
		if i >= 0 && i < len(set) {
			picked = append(picked, set[i])
		}
	}
	slices.SortFunc(picked, time.Time.Compare)
	picked = slices.CompactFunc(picked, time.Time.Equal)
	return append(out[:start], picked...)
}

// resolveCount replaces COUNT by the instant of the last counted instance,
// spending at most *budget day checks.
func (r *calRule) resolveCount(budget *int) error {
	if r.count == 0 {
		return nil
	}
	// DTSTART is always the first instance (RFC 5545 3.3.10), also when
	// the rule itself would not produce it; it counts then too.
	n := 0
	if !slices.ContainsFunc(r.occurrences(0, nil), r.dtstart.Equal) {
		n = 1
		if r.count == 1 {
			r.until = calInstant(r.dtstart, r.zone)
			return nil
		}
	}
	var buf []time.Time
	for k := 0; k < calMaxPeriodsPerRule*r.interval; k += r.interval {
		first, days := r.period(k)
		if first.Year() > 9999 {
			break
		}
		if *budget -= days * len(r.times); *budget < 0 {
			return fmt.Errorf("recurrence rules too expensive to expand")
		}
		buf = r.occurrences(k, buf[:0])
		for _, w := range buf {
			if w.Before(r.dtstart) {
				continue
			}
			n++
			if n == r.count {
				r.until = calInstant(w, r.zone)
				return nil
			}
		}
	}
	// Fewer instances than COUNT exist: the series ends where we stopped.
	first, _ := r.period(calMaxPeriodsPerRule * r.interval)
	r.until = calInstant(first, r.zone)
	return nil
}

// expand calls emit with the wall start (and its instant) of each
// occurrence whose start wall time lies in [lo, hi), in order, until emit
// returns false.
func (r *calRule) expand(lo, hi time.Time, emit func(w, at time.Time) bool) {
	if lo.Before(r.dtstart) {
		lo = r.dtstart
	}
	if !lo.Before(hi) {
		return
	}
	k := r.periodIndex(calDay(lo))
	k = max(0, calFloorDiv(k, r.interval)*r.interval)
	var buf []time.Time
	for steps := 0; steps < calMaxPeriodsPerRule; steps, k = steps+1, k+r.interval {
		first, _ := r.period(k)
		if !first.Before(hi) {
			return
		}
		buf = r.occurrences(k, buf[:0])
		for _, w := range buf {
			if w.Before(lo) {
				continue
			}
			if !w.Before(hi) {
				return
			}
			at := calInstant(w, r.zone)
			if !r.until.IsZero() && at.After(r.until) {
				return
			}
			if !emit(w, at) {
				return
			}
		}
	}
}
