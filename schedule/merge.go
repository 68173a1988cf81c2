package schedule

import (
	"cmp"
	"slices"
	"sort"
	"time"

	"github.com/oncallbot/oncall"
)

// Merge combines layers of shifts, lowest priority first: the base
// calendar or rotation, then the overrides calendar, then the overrides
// made in Slack. Each later layer replaces the earlier ones wherever it has
// someone on call: an earlier shift is cut around it, and what remains of
// it stays (an override from 10:00 to 12:00 inside a day-long shift leaves
// the shift's owner on call before 10:00 and after 12:00). Within one
// layer, overlapping shifts all count: several people are on call at once.
//
// Within a layer, shifts of the same person (same Schedule and Source too)
// that overlap or meet end to start are joined into one: seven daily
// events of one person become one week, so a handoff is a change of person.
// Shifts with End <= Start are dropped. The result is a new slice sorted
// by Start, then Person; the layers are not modified.
func Merge(layers ...[]oncall.Shift) []oncall.Shift {
	total := 0
	for _, l := range layers {
		total += len(l)
	}
	if total == 0 {
		return nil
	}
	out := make([]oncall.Shift, 0, total+total/8)
	var cover []mergeSpan // what the later layers cover: sorted, disjoint
	for i := len(layers) - 1; i >= 0; i-- {
		layer := mergeJoin(layers[i])
		for _, s := range layer {
			out = mergeSubtract(out, s, cover)
		}
		if i > 0 {
			cover = mergeCover(cover, layer)
		}
	}
	return mergeSort(out)
}

// mergeSort returns shifts sorted by mergeCompare, in a new slice. It
// sorts small keys (the start as seconds and nanoseconds, and an index) and
// compares whole shifts only when starts are equal: moving and comparing
// 88-byte shifts in every step costs several times more.
func mergeSort(shifts []oncall.Shift) []oncall.Shift {
	type key struct {
		sec  int64
		nsec int32
		i    int32
	}
	keys := make([]key, len(shifts))
	for i := range shifts {
		keys[i] = key{shifts[i].Start.Unix(), int32(shifts[i].Start.Nanosecond()), int32(i)}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.sec != b.sec {
			return cmp.Compare(a.sec, b.sec)
		}
		if a.nsec != b.nsec {
			return cmp.Compare(a.nsec, b.nsec)
		}
		return mergeComparePtr(&shifts[a.i], &shifts[b.i])
	})
	out := make([]oncall.Shift, len(shifts))
	for i, k := range keys {
		out[i] = shifts[k.i]
	}
	return out
}

// Gaps returns the spans within [from, to) where nobody is on call, in
// order, or nil when someone always is.
func Gaps(shifts []oncall.Shift, from, to time.Time) [][2]time.Time {
	if !from.Before(to) {
		return nil
	}
	var gaps [][2]time.Time
	at := from // everything before at is covered or already reported
	for _, c := range mergeCover(nil, shifts) {
		if !c.start.Before(to) {
			break
		}
		if c.start.After(at) {
			gaps = append(gaps, [2]time.Time{at, c.start})
		}
		if c.end.After(at) {
			at = c.end
		}
	}
	if at.Before(to) {
		gaps = append(gaps, [2]time.Time{at, to})
	}
	return gaps
}

// mergeSpan is a half-open span of time [start, end).
type mergeSpan struct{ start, end time.Time }

// mergeCompare orders shifts by Start, then Person, End, Source, Schedule.
func mergeCompare(a, b oncall.Shift) int { return mergeComparePtr(&a, &b) }

func mergeComparePtr(a, b *oncall.Shift) int {
	if c := a.Start.Compare(b.Start); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Person, b.Person); c != 0 {
		return c
	}
	if c := a.End.Compare(b.End); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Source, b.Source); c != 0 {
		return c
	}
	return cmp.Compare(a.Schedule, b.Schedule)
}

// mergeJoin returns a copy of layer without empty shifts, sorted by
// Start, with the overlapping or adjacent shifts of each person (same
// Schedule and Source) joined.
func mergeJoin(layer []oncall.Shift) []oncall.Shift {
	valid := make([]oncall.Shift, 0, len(layer))
	for _, s := range layer {
		if s.Start.Before(s.End) {
			valid = append(valid, s)
		}
	}
	sorted := mergeSort(valid)
	// In Start order, a person's shift joins their latest one when it
	// starts before that one ends.
	type who struct{ person, schedule, source string }
	latest := make(map[who]int) // index in joined
	joined := sorted[:0]
	for _, s := range sorted {
		k := who{s.Person, s.Schedule, s.Source}
		if i, ok := latest[k]; ok && !s.Start.After(joined[i].End) {
			if s.End.After(joined[i].End) {
				joined[i].End = s.End
			}
			continue
		}
		latest[k] = len(joined)
		joined = append(joined, s)
	}
	return joined
}

// mergeSubtract appends to out what remains of s outside cover.
func mergeSubtract(out []oncall.Shift, s oncall.Shift, cover []mergeSpan) []oncall.Shift {
	// The first covered span that ends after s starts.
	i := sort.Search(len(cover), func(i int) bool { return cover[i].end.After(s.Start) })
	for ; i < len(cover) && cover[i].start.Before(s.End); i++ {
		if cover[i].start.After(s.Start) {
			piece := s
			piece.End = cover[i].start
			out = append(out, piece)
		}
		s.Start = cover[i].end
		if !s.Start.Before(s.End) {
			return out
		}
	}
	return append(out, s)
}

// mergeCover returns the union of cover (sorted, disjoint) and the spans of
// shifts (any order), sorted and disjoint: spans that overlap or meet are
// one.
func mergeCover(cover []mergeSpan, shifts []oncall.Shift) []mergeSpan {
	spans := make([]mergeSpan, 0, len(cover)+len(shifts))
	spans = append(spans, cover...)
	for _, s := range shifts {
		if s.Start.Before(s.End) {
			spans = append(spans, mergeSpan{s.Start, s.End})
		}
	}
	slices.SortFunc(spans, func(a, b mergeSpan) int { return a.start.Compare(b.start) })
	union := spans[:0]
	for _, sp := range spans {
		if n := len(union); n > 0 && !sp.start.After(union[n-1].end) {
			if sp.end.After(union[n-1].end) {
				union[n-1].end = sp.end
			}
			continue
		}
		union = append(union, sp)
	}
	return union
}
