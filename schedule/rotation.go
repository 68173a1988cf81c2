package schedule

import (
	"errors"
	"fmt"
	"time"

	"github.com/oncallbot/oncall"
)

// SourceRotation is the Source of the shifts a Rotation produces.
const SourceRotation = "rotation"

// rotMinShift is the shortest shift a rotation accepts, and
// rotMaxShifts the most shifts one call of Rotation.Shifts produces: both
// keep the work of a call bounded whatever the configuration and the span.
const (
	rotMinShift  = time.Minute
	rotMaxShifts = 1 << 20
)

const rotDay = 24 * time.Hour

// Rotation is a native rotation defined in the config: Users take turns,
// each for Shift, starting with Users[0] at Handoff.
type Rotation struct {
	Users []string      // people in order
	Shift time.Duration // shift length, e.g. 12h, 24h, 168h
	// Handoff is a local wall time in Location when Users[0]'s shift starts
	// (any date: the rotation extends back and forth from it). Only its
	// wall clock (date and time of day) is used, not its own location.
	Handoff  time.Time
	Location *time.Location // nil means Handoff's own location
	// Window, when set, limits on-call to a daily local window
	// (follow-the-sun): e.g. 08:00-16:00.
	Window *DailyWindow
}

// DailyWindow is a daily span of local wall-clock time. Start and End are
// times of day written as offsets from midnight (8*time.Hour is 08:00,
// 24*time.Hour the next midnight): they are wall-clock times, so on a day
// with a DST change a window that contains the change is an hour shorter or
// longer, and windows that meet at the same time of day never leave a gap.
// End < Start crosses midnight (22:00-06:00 runs into the next day).
type DailyWindow struct {
	Start, End time.Duration
}

// Validate reports why the rotation cannot produce shifts, or nil.
func (r Rotation) Validate() error {
	var errs []error
	if len(r.Users) == 0 {
		errs = append(errs, errors.New("rotation has no users"))
	}
	for i, u := range r.Users {
		if u == "" {
			errs = append(errs, fmt.Errorf("rotation user %d is empty", i+1))
		}
	}
	if r.Shift < rotMinShift {
		errs = append(errs, fmt.Errorf("rotation shift %s is shorter than %s", r.Shift, rotMinShift))
	}
	if w := r.Window; w != nil {
		if w.Start < 0 || w.Start >= rotDay {
			errs = append(errs, fmt.Errorf("rotation window start %s is not a time of day (00:00 to 23:59)", w.Start))
		}
		if w.End <= 0 || w.End > rotDay {
			errs = append(errs, fmt.Errorf("rotation window end %s is not a time of day (00:01 to 24:00)", w.End))
		}
		if w.Start == w.End {
			errs = append(errs, fmt.Errorf("rotation window %s-%s is empty", rotClock(w.Start), rotClock(w.End)))
		}
	}
	return errors.Join(errs...)
}

// Shifts returns the rotation's shifts overlapping [from, to), sorted by
// Start, each whole (not clipped to the span), with Source "rotation" and
// Schedule "" (the caller sets it).
//
// When Shift is a whole number of days, handoffs fall on the handoff's
// local time of day every time, computed in calendar days: a weekly Monday
// 09:00 handoff stays 09:00 local across DST changes, and the shift that
// contains the change is an hour shorter or longer. Other shift lengths
// (12h, 8h) are exact durations, so their local handoff times move by an
// hour at a DST change.
//
// With a Window, the person of each shift is on call only within the
// window each day: the result is every shift cut to the windows.
//
// It returns nil for an invalid rotation (see Validate), and at most
// 2^20 shifts for a very long span.
func (r Rotation) Shifts(from, to time.Time) []oncall.Shift {
	if r.Validate() != nil || !from.Before(to) {
		return nil
	}
	if r.Window == nil {
		var out []oncall.Shift
		r.eachShift(from, to, func(user string, s, e time.Time) bool {
			out = append(out, rotShift(user, s, e))
			return len(out) < rotMaxShifts
		})
		return out
	}
	return r.windowed(from, to)
}

// windowed cuts the rotation's shifts to the daily windows. Each piece lies
// within one window, so only the windows overlapping [from, to) matter, and
// the shifts overlapping those windows.
func (r Rotation) windowed(from, to time.Time) []oncall.Shift {
	wins := r.windows(from, to)
	if len(wins) == 0 {
		return nil
	}
	var out []oncall.Shift
	w := 0
	r.eachShift(wins[0][0], wins[len(wins)-1][1], func(user string, s, e time.Time) bool {
		// Windows are sorted and disjoint, and so are shifts: skip the
		// windows that end before this shift starts, then cut.
		for w < len(wins) && !wins[w][1].After(s) {
			w++
		}
		for i := w; i < len(wins) && wins[i][0].Before(e); i++ {
			ps, pe := rotMax(s, wins[i][0]), rotMin(e, wins[i][1])
			if ps.Before(pe) && ps.Before(to) && pe.After(from) {
				out = append(out, rotShift(user, ps, pe))
			}
		}
		return len(out) < rotMaxShifts
	})
	return out
}

// windows returns the daily windows overlapping [from, to), sorted.
func (r Rotation) windows(from, to time.Time) [][2]time.Time {
	loc := r.loc()
	// A window that crosses midnight starts the day before; start one day
	// earlier still to be safe around DST changes.
	y, m, d := from.In(loc).Date()
	day := time.Date(y, m, d-2, 0, 0, 0, 0, loc)
	var out [][2]time.Time
	for i := 0; i <= rotMaxShifts; i++ {
		ws := rotAt(day, r.Window.Start, loc)
		if !ws.Before(to) {
			break
		}
		end := r.Window.End
		if end <= r.Window.Start {
			end += rotDay
		}
		we := rotAt(day, end, loc)
		if we.After(from) && ws.Before(we) {
			out = append(out, [2]time.Time{ws, we})
		}
		day = time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc)
	}
	return out
}

// eachShift calls fn for each shift overlapping [from, to) in order, until
// fn returns false.
func (r Rotation) eachShift(from, to time.Time, fn func(user string, start, end time.Time) bool) {
	anchor := r.anchor()
	n := int64(len(r.Users))
	user := func(k int64) string { return r.Users[((k%n)+n)%n] }

	if r.Shift%rotDay == 0 {
		days := int64(r.Shift / rotDay)
		at := func(k int64) time.Time { return anchor.AddDate(0, 0, int(k*days)) }
		// Start a period or two early (a DST change moves local midnight
		// by an hour) and step forward.
		k := rotFloorDiv(rotCivilDay(from.In(anchor.Location()))-rotCivilDay(anchor), days) - 1
		for s := at(k); ; k++ {
			e := at(k + 1)
			if !s.Before(to) {
				return
			}
			if e.After(from) && !fn(user(k), s, e) {
				return
			}
			s = e
		}
	}

	// Exact durations. Spans more than ~292 years from the handoff (where
	// Sub saturates) yield nothing rather than loop: the loop is bounded.
	k := rotFloorDiv(int64(from.Sub(anchor)), int64(r.Shift))
	for i := 0; i <= rotMaxShifts+2; i, k = i+1, k+1 {
		s := anchor.Add(time.Duration(k) * r.Shift)
		e := s.Add(r.Shift)
		if !s.Before(to) {
			return
		}
		if e.After(from) && !fn(user(k), s, e) {
			return
		}
	}
}

func (r Rotation) loc() *time.Location {
	if r.Location != nil {
		return r.Location
	}
	return r.Handoff.Location()
}

// anchor is the handoff's wall clock in the rotation's location.
func (r Rotation) anchor() time.Time {
	h := r.Handoff
	return time.Date(h.Year(), h.Month(), h.Day(), h.Hour(), h.Minute(), h.Second(), h.Nanosecond(), r.loc())
}

func rotShift(user string, start, end time.Time) oncall.Shift {
	return oncall.Shift{Person: user, Start: start, End: end, Source: SourceRotation}
}

// rotAt is the wall-clock time of day off (up to 48h) on the local day that
// starts at midnight day.
func rotAt(day time.Time, off time.Duration, loc *time.Location) time.Time {
	off = off.Truncate(time.Second)
	return time.Date(day.Year(), day.Month(), day.Day(), 0, 0, int(off/time.Second), 0, loc)
}

// rotCivilDay numbers t's calendar date (days since 1970-01-01).
func rotCivilDay(t time.Time) int64 {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func rotFloorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func rotClock(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

func rotMin(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func rotMax(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
